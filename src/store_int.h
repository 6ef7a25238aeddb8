/* SPDX-License-Identifier: MIT */
/*
 * store internals shared by the files of the Redis adapter: the connection
 * layer (store_conn.c, with its Redis Cluster routing in store_cluster.c),
 * the argv builder (store_argv.c) and the pure reply parsers
 * (store_parse.c), all used by the command layer (store.c). The command
 * layer reaches Redis only through dd_store_conn_ensure(),
 * dd_store_conn_append_argv(), dd_store_conn_get_reply(),
 * dd_store_conn_command() and the drop/lost/ok calls, so that Redis Cluster
 * routing (slot map, MOVED/ASK, one pipeline per node) sits between the two
 * layers without touching the commands.
 *
 * DESIGN: a dd_store_conn_t belongs to its dd_store_t and so to one worker
 * thread; nothing here locks. The parsers own no state and do no I/O.
 */
#ifndef DD_STORE_INT_H
#define DD_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "redis_cluster.h"
#include "redis_url.h"
#include "store.h"

#define DD_STORE_MARKER_ID_SIZE 33 /* store id: 32 hex + NUL */
#define DD_STORE_MARKER_KEY     "dispatchd:store_id" /* after the prefix */
/* A marker key in cluster mode: the key above, then ":{tag}". */
#define DD_STORE_MARKER_KEY_MAX                                                \
    (DD_STORE_PREFIX_MAX + sizeof(DD_STORE_MARKER_KEY) + 16)

/*----- Connection layer (store_conn.c) -----*/

/** Redis Cluster routing of a connection (store_cluster.c); opaque. */
typedef struct dd_store_cluster dd_store_cluster_t;

/**
 * @brief One Redis connection: where to connect, the handshake to run, and
 *        the reconnect state (capped exponential backoff with jitter).
 */
/*----- Reply objects (store_reply.c) -----*/

typedef struct dd_store_chunk dd_store_chunk_t;

/** @brief The arena the replies of one connection's contexts live in. */
typedef struct dd_store_replies {
    dd_store_chunk_t *first, *cur; /* owned chunk list; NULL: none yet */
} dd_store_replies_t;

/** @brief An empty arena (no memory until the first reply). */
void dd_store_replies_init(dd_store_replies_t *a);

/**
 * @brief Makes @p reader (a context's c->reader) build its replies in
 *        @p a: ordinary redisReply objects, valid until
 *        dd_store_replies_reset(a).
 * @param a borrowed, must outlive the reader
 * @param reader borrowed; a fresh one, before its first reply
 * @locality the thread that owns the store
 * @remark freeReplyObject() must never see such a reply: use
 *         dd_store_reply_done().
 */
void dd_store_replies_attach(dd_store_replies_t *a, redisReader *reader);

/**
 * @brief Ends the life of every reply built in @p a since the last reset;
 *        keeps one ordinary chunk for the next call.
 * @locality the thread that owns the store; called at the start of each
 *           store call (no reply of an earlier call may be held)
 */
void dd_store_replies_reset(dd_store_replies_t *a);

/** @brief How many chunks @p a holds now (for tests). */
size_t dd_store_replies_chunks(const dd_store_replies_t *a);

/** @brief Frees all of @p a's memory (the connection is closing). */
void dd_store_replies_free(dd_store_replies_t *a);

/**
 * @brief Marks the end of a reader's use of @p r; frees nothing (the arena
 *        is reset at the next store call). Accepts NULL.
 */
void dd_store_reply_done(redisReply *r);

typedef struct dd_store_conn {
    redisContext *c; /* NULL when not connected */
    char *host;      /* owned, "" for a unix socket */
    int port;
    char *unix_path; /* owned, NULL for TCP */
    char *user;      /* owned, NULL for none: AUTH as the default user */
    char *password;  /* owned, NULL for none; wiped on close */
    int db;
    int timeout_ms;          /* connect and command timeout, ms */
    int failures;            /* consecutive failed attempts */
    int64_t next_attempt_ms; /* monotonic; no connect before */
    uint64_t rng;            /* xorshift64 state for jitter */
    dd_store_stats_t *stats; /* borrowed: the store's counters */
    char marker_key[DD_STORE_PREFIX_MAX + sizeof(DD_STORE_MARKER_KEY)];
    dd_store_cluster_t *cluster; /* owned; NULL: one server (c above) */
    dd_store_replies_t replies;  /* where every context's replies live */
    /* Handshakes done since dd_store_conn_init() (every node's in cluster
     * mode), and of them those whose server is older than Redis 7.0.0 or
     * did not say (INFO server refused or without redis_version). */
    unsigned servers_seen;
    unsigned servers_pre7;
} dd_store_conn_t;

/**
 * @brief Checks the connection part of @p conf (host, port, db) and fills
 *        @p cn, not connected; the first dd_store_conn_ensure() connects.
 * @param conf borrowed; strings are copied
 * @param stats borrowed, must outlive cn: connects, connect_errors,
 *        io_errors and commands are counted there
 * @returns DD_OK, or DD_ERR with "store: ..." in errstr (cn then needs no
 *          dd_store_conn_close()).
 * @locality any thread, before the owning thread uses cn
 */
int dd_store_conn_init(dd_store_conn_t *cn, const dd_store_conf_t *conf,
                       dd_store_stats_t *stats, char *errstr,
                       size_t errstr_size);

/** @brief Frees the context and the copies; wipes the password. */
void dd_store_conn_close(dd_store_conn_t *cn);

/**
 * @brief Connects (TCP or unix socket, then AUTH [user] password, SELECT,
 *        CLIENT SETNAME and INFO server in one pipeline, then the marker
 *        check of dd_store_marker_check()) when there is no context, unless
 *        the backoff says not yet.
 * @returns DD_OK with a usable context, or DD_ERR with errstr filled.
 * @locality the owning thread
 */
int dd_store_conn_ensure(dd_store_conn_t *cn, char *errstr, size_t errstr_size);

/**
 * @brief Buffers one command (no I/O) and counts it.
 * @param argv, argvlen borrowed; copied by the call
 * @returns DD_OK, or DD_ERR on out of memory (the pipeline is then half
 *          built: the caller calls dd_store_conn_lost()).
 */
int dd_store_conn_append_argv(dd_store_conn_t *cn, int argc, const char **argv,
                              const size_t *argvlen);

/**
 * @brief Reads the next reply of a pipeline (sending the buffer first).
 * @param r out: owned reply (freeReplyObject) on DD_OK
 * @returns DD_OK, or DD_ERR when the context was lost (counted as an I/O
 *          error, dropped, errstr "redis read: ...").
 */
int dd_store_conn_get_reply(dd_store_conn_t *cn, redisReply **r, char *errstr,
                            size_t errstr_size);

/**
 * @brief One command in its own round trip; counts the command.
 * @param what names the command in errstr ("PING", "GET")
 * @param r out: owned reply on DD_OK
 * @returns DD_OK, or DD_ERR when the context was lost (I/O error counted,
 *          dropped, errstr "redis <what>: ...").
 */
int dd_store_conn_command(dd_store_conn_t *cn, const char *what, int argc,
                          const char **argv, const size_t *argvlen,
                          redisReply **r, char *errstr, size_t errstr_size);

/**
 * @brief Frees the context and schedules the next attempt. Also used after
 *        an error reply failed a batch, so that a batch that keeps failing
 *        is retried at the backoff's pace, not in a hot loop.
 */
void dd_store_conn_drop(dd_store_conn_t *cn);

/**
 * @brief The context is dead or unusable: drops it, with
 *        "redis <what>: <hiredis error>" in errstr.
 */
void dd_store_conn_lost(dd_store_conn_t *cn, const char *what, char *errstr,
                        size_t errstr_size);

/** @brief A call succeeded: the next failure reconnects at once. */
void dd_store_conn_ok(dd_store_conn_t *cn);

/**
 * @brief 1 when every server this connection has handshaken (every node,
 *        in cluster mode) said it is Redis >= 7.0.0, the first version that
 *        takes SET ... NX GET; 0 before the first handshake.
 * @locality the owning thread
 */
int dd_store_conn_set_nx_get_ok(const dd_store_conn_t *cn);

/** @brief 1 while a context is open. */
int dd_store_conn_is_up(const dd_store_conn_t *cn);

/** @brief ms until the next connect attempt may start (0: now or up). */
int dd_store_conn_backoff_ms(const dd_store_conn_t *cn);

/**
 * @brief Opens one context to host:port with the connection's timeouts and
 *        runs the handshake (AUTH [user] password, CLIENT SETNAME, INFO
 *        server for the version; SELECT only outside cluster mode). Counts
 * connects and connect_errors.
 * @param c out: owned context on DD_OK, NULL on DD_ERR
 * @returns DD_OK, or DD_ERR with "redis connect host:port: ..." or the
 *          handshake's error reply in errstr (never the password).
 * @locality the owning thread
 */
int dd_store_conn_open(dd_store_conn_t *cn, const char *host, int port,
                       redisContext **c, char *errstr, size_t errstr_size);

/*----- Redis Cluster routing (store_cluster.c) -----*/

/** @brief Counters of the routing, for tests and diagnostics. */
typedef struct dd_store_cluster_stats {
    uint64_t refreshes;    /* slot maps read (CLUSTER SLOTS) */
    uint64_t map_changes;  /* ... that differed from the one before */
    uint64_t flushes;      /* pipelines sent to their nodes at once */
    uint64_t flush_nodes;  /* nodes written by the last such flush */
    uint64_t moved;        /* MOVED followed */
    uint64_t ask;          /* ASK followed */
    uint64_t reply_writes; /* writes done while a pipeline's replies were
                            * being read: redirections only */
    uint64_t read_ahead;   /* replies read early, before a redirected
                            * command went to their node */
} dd_store_cluster_stats_t;

/**
 * @brief Cluster mode for @p cn: copies the seeds; connects nothing.
 * @param seeds borrowed, nseeds >= 1 entries
 */
dd_store_cluster_t *dd_store_cluster_new(const dd_redis_seed_t *seeds,
                                         size_t nseeds);

/** @brief Closes every context and frees @p cl. NULL is allowed. */
void dd_store_cluster_destroy(dd_store_cluster_t *cl);

/**
 * @brief Cluster part of dd_store_conn_ensure(): when the slot map is
 *        stale or a master has no context, reads CLUSTER SLOTS from a
 *        known node or a seed (logging a changed map), then connects every
 *        master. Not counted as a failure here: the caller drops on DD_ERR.
 * @returns DD_OK when every master has a context, else DD_ERR with errstr.
 */
int dd_store_cluster_ensure(dd_store_conn_t *cn, char *errstr,
                            size_t errstr_size);

/** @brief Cluster part of dd_store_conn_append_argv(): routes by argv[1]. */
int dd_store_cluster_append(dd_store_conn_t *cn, int argc, const char **argv,
                            const size_t *argvlen);

/**
 * @brief Cluster part of dd_store_conn_get_reply(): flushes every node's
 *        output first (once per pipeline), follows MOVED and ASK.
 * @param what names the call in errstr ("read", "PING")
 * @returns DD_OK with *r, or DD_ERR with errstr (the caller drops).
 */
int dd_store_cluster_get_reply(dd_store_conn_t *cn, const char *what,
                               redisReply **r, char *errstr,
                               size_t errstr_size);

/** @brief Cluster PING: every master must answer PONG; *r is the first
 *         reply that is not PONG, else the last PONG. */
int dd_store_cluster_ping(dd_store_conn_t *cn, redisReply **r, char *errstr,
                          size_t errstr_size);

/** @brief Frees every context and the pipeline in flight; the slot map is
 *         read again at the next ensure. */
void dd_store_cluster_close_all(dd_store_cluster_t *cl);

/** @brief 1 while there is a slot map and every master in it has a
 *         context. */
int dd_store_cluster_is_up(const dd_store_cluster_t *cl);

/** @brief 1 when the next ensure is to read the slot map again (after a
 *         MOVED, CLUSTERDOWN, TRYAGAIN or a failure). */
int dd_store_cluster_is_stale(const dd_store_cluster_t *cl);

/** @brief Why the last append failed ("out of memory" when nothing
 *         else), for dd_store_conn_lost(). */
const char *dd_store_cluster_why(const dd_store_cluster_t *cl);

/** @brief The lost-state marker of one master (store_marker.c). */
typedef struct dd_store_cluster_marker {
    char key[DD_STORE_MARKER_KEY_MAX]; /* <prefix>dispatchd:store_id:{tag} */
    char node[DD_REDIS_CLUSTER_HOST_MAX + 8]; /* host:port of its master */
} dd_store_cluster_marker_t;

/** @brief How many markers the current slot map has: one per master that
 *         can hold a key of ours, computed at the ensure that read the
 *         map. 0 before the first map. */
size_t dd_store_cluster_marker_count(const dd_store_cluster_t *cl);

/** @brief Marker @p i (< dd_store_cluster_marker_count()), borrowed until
 *         the next ensure. */
const dd_store_cluster_marker_t *
dd_store_cluster_marker(const dd_store_cluster_t *cl, size_t i);

/** @brief The routing counters of @p cl. */
void dd_store_cluster_get_stats(const dd_store_cluster_t *cl,
                                dd_store_cluster_stats_t *out);

/*----- Lost-state marker (store_marker.c): process-wide -----*/

/**
 * @brief GET the marker (in cluster mode every master's, in one pipeline)
 *        and compare it with the id this process remembers:
 *        adopts a marker when none is remembered; declares the state lost
 *        when it is missing or holds another id; clears a loss when it holds
 *        the remembered id again (every marker, in cluster mode); after
 *        dd_store_state_ack(), writes the remembered id back (SET NX; in
 *        cluster mode to the first marker, then what it holds to the
 *        others) and adopts the marker's value. Cluster mode: a missing
 *        marker of a master or slot not seen yet is written, not judged.
 * @returns DD_OK (whatever the verdict: see dd_store_marker_is_lost()), or
 *          DD_ERR when the connection was lost or the reply was unusable
 *          (then dropped, errstr filled).
 * @locality the owning thread of cn; takes the marker's leaf lock, never
 *           during I/O
 */
int dd_store_marker_check(dd_store_conn_t *cn, char *errstr,
                          size_t errstr_size);

/**
 * @brief Before the first write of this process: SET NX a new random id in
 *        the (first) marker, GET it and remember what it holds; in cluster
 *        mode also every marker of a master or slot not seen yet (SET NX
 *        of the remembered id, GET: another id there is a loss).
 * @param id out: the remembered id, for the marker check of
 *        dd_store_reserve()
 * @param gen out: the recovery generation id belongs to, for
 *        dd_store_marker_verdict()
 * @returns DD_OK, or DD_ERR (connection lost or unusable reply, dropped)
 * @locality the owning thread of cn
 */
int dd_store_marker_ensure(dd_store_conn_t *cn, char *id, size_t id_size,
                           uint64_t *gen, char *errstr, size_t errstr_size);

/**
 * @brief The id this process remembers, without any I/O (a process that
 *        never wrote and found no marker at connect has none).
 * @param id out: the id, "" when none; gen out: its recovery generation
 * @returns 1 when an id is remembered, else 0
 * @locality any thread; takes the marker's leaf lock
 */
int dd_store_marker_known(char *id, size_t id_size, uint64_t *gen);

/**
 * @brief Judges the reply of a batch's GET of marker @p i: DD_OK when it
 *        holds id; otherwise DD_ERR with errstr, the loss declared first
 *        when the marker is missing or holds another id (unless a
 *        recovery happened since gen was taken: then the GET saw the
 *        marker before another worker wrote it back, and the caller just
 *        retries), not for an error reply, a reply of another
 *        type, or a missing marker of a master or slot this process has
 *        not seen yet (cluster mode: the next connect writes it). The
 *        caller drops the connection either way.
 * @param i marker index (< dd_store_marker_count()); r borrowed reply; id
 *        the id taken by dd_store_marker_ensure()
 * @locality the owning thread of cn; takes the marker's leaf lock
 */
int dd_store_marker_verdict(const dd_store_conn_t *cn, size_t i,
                            const redisReply *r, const char *id, uint64_t gen,
                            char *errstr, size_t errstr_size);

/**
 * @brief How many markers a check of @p cn GETs: 1 for one server; in
 *        cluster mode one per master of the current slot map
 *        (dd_store_cluster_marker_count()).
 * @locality the owning thread of cn
 */
size_t dd_store_marker_count(const dd_store_conn_t *cn);

/**
 * @brief The key of marker @p i of @p cn: <prefix>dispatchd:store_id for
 *        one server, <prefix>dispatchd:store_id:{tag} in cluster mode.
 * @returns borrowed, valid until the next dd_store_conn_ensure()
 * @locality the owning thread of cn
 */
const char *dd_store_marker_key(const dd_store_conn_t *cn, size_t i);

/** @brief 1 while the state is lost and not acknowledged. @locality any */
int dd_store_marker_is_lost(void);

/*----- Argv builder (store_argv.c) -----*/

/**
 * @brief A growable argv for dd_store_conn_append_argv(): values are
 *        borrowed, keys are built in owned buffers.
 */
typedef struct dd_store_argv {
    const char **argv;
    size_t *argvlen;
    char **owned; /* per slot: owned copy to free, or NULL */
    int argc;
    int cap;
} dd_store_argv_t;

/** @brief Room for @p cap arguments per command. */
void dd_store_argv_init(dd_store_argv_t *a, int cap);

/** @brief Frees the keys built so far and empties @p a. */
void dd_store_argv_reset(dd_store_argv_t *a);

/** @brief Resets @p a and frees its arrays. */
void dd_store_argv_close(dd_store_argv_t *a);

/** @brief Borrowed argument of @p len bytes: must outlive the append. */
void dd_store_argv_add(dd_store_argv_t *a, const char *s, size_t len);

/** @brief Borrowed NUL-terminated argument. */
void dd_store_argv_add_str(dd_store_argv_t *a, const char *s);

/** @brief Owned argument prefix + kind + id, freed by the reset. */
void dd_store_argv_add_key(dd_store_argv_t *a, const char *prefix,
                           const char *kind, const char *id);

/**
 * @brief Writes one command in RESP (*argc, then $len and the bytes of each
 *        argument, CRLF-terminated): the bytes redisFormatCommandArgv()
 *        produces.
 * @param buf out, size bytes
 * @param argv borrowed, argc arguments of argvlen bytes each (binary-safe)
 * @returns the number of bytes written, or 0 when the command does not fit
 *          (the caller then formats it another way)
 * @locality any thread; pure
 */
size_t dd_store_resp_format(char *buf, size_t size, int argc, const char **argv,
                            const size_t *argvlen);

/*----- Reply parsers (store_parse.c): pure, no I/O, no counters -----*/

/**
 * @brief Strict parse of a whole string reply as a finite double.
 * @returns DD_OK with *out set, or DD_ERR (other type, empty, junk,
 *          overflow, inf/nan).
 */
int dd_store_parse_double(const redisReply *r, double *out);

/**
 * @brief Strict parse of a string reply as a non-negative decimal integer
 *        of at most 18 digits (an ETA in seconds).
 * @returns DD_OK with *out set, or DD_ERR.
 */
int dd_store_parse_secs(const redisReply *r, int64_t *out);

/**
 * @brief An HMGET reply for a hash read: an array of @p n elements.
 * @param usable out: 1 when the array can be read
 * @returns DD_OK, or DD_ERR with errstr for an error reply (the caller
 *          classes it with dd_store_error_class()), another type or
 *          another length.
 */
int dd_store_parse_hmget(const redisReply *r, size_t n, int *usable,
                         char *errstr, size_t errstr_size);

/** @brief One field of an HMGET reply: borrowed bytes, or s = NULL when
 *         the field is absent (nil). */
typedef struct dd_store_field {
    const char *s;
    size_t len;
} dd_store_field_t;

/**
 * @brief Checks the four fields of parcel:{id} (pickup_lat, pickup_lon,
 *        dropoff_lat, dropoff_lon): each a finite number (strtod, leading
 *        blanks allowed), latitudes in -90..90, longitudes in -180..180.
 * @param f borrowed, four fields, NULL s for an absent one
 * @param p out, zeroed first: found = 1 when all four are valid; invalid =
 *        1 with bad_field naming the first field absent or not valid when
 *        some field is there; neither when all four are absent (no key)
 * @locality any thread
 * @remark Pure; the fake store of the unit tests calls it too, so the
 *         domain sees the same outcomes from both stores.
 */
void dd_store_parse_parcel_fields(const dd_store_field_t f[4],
                                  dd_store_parcel_t *p);

/**
 * @brief Checks the four fields of courier:{id} (lat, lon, vehicle,
 *        status): lat and lon as for a parcel, vehicle one of foot, bike,
 *        scooter, car (dd_route_vehicle_parse()), status one of available,
 *        busy, offline (exact bytes).
 * @param f borrowed, four fields, NULL s for an absent one
 * @param co out, zeroed first: found = 1 when all four are valid
 *        (available = 1 for "available"); invalid = 1 with bad_field
 *        naming the first field absent or not valid when some field is
 *        there; neither when all four are absent (no key)
 * @locality any thread
 * @remark Pure, shared with the fake store as above.
 */
void dd_store_parse_courier_fields(const dd_store_field_t f[4],
                                   dd_store_courier_t *co);

/**
 * @brief HMGET parcel:{id} pickup_lat pickup_lon dropoff_lat dropoff_lon.
 * @param p out: see dd_store_parse_parcel_fields(); an element of another
 *        type than string or nil is an invalid field (WRONGTYPE is an
 *        error reply: DD_ERR, classed by the caller as a data error)
 * @returns DD_OK, or DD_ERR with errstr (see dd_store_parse_hmget()).
 */
int dd_store_parse_parcel(const redisReply *r, dd_store_parcel_t *p,
                          char *errstr, size_t errstr_size);

/**
 * @brief HMGET courier:{id} lat lon vehicle status.
 * @param co out: see dd_store_parse_courier_fields(); other element types
 *        and WRONGTYPE as for dd_store_parse_parcel()
 * @returns DD_OK, or DD_ERR with errstr (see dd_store_parse_hmget()).
 */
int dd_store_parse_courier(const redisReply *r, dd_store_courier_t *co,
                           char *errstr, size_t errstr_size);

#endif /* DD_STORE_INT_H */
