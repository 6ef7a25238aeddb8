/* SPDX-License-Identifier: MIT */
/*
 * store: the Redis adapter (DESIGN.md section 3), the only module that
 * speaks to Redis. It works on batches so that a whole batch of requests
 * costs four pipelined round trips when no courier is contended:
 *
 *   RT1 dd_store_load()    GET of the store id marker (once this process
 *                          has an id), ledger GET result:{rid}, HMGET
 *                          parcel:{pid}, HMGET courier:{c} for every
 *                          courier involved
 *   RT2 dd_store_eta_get() GET eta:v1:... for every leg needed
 *   RT3 dd_store_reserve() GET of the store id marker, then SET
 *                          reservation:{c} rid NX EX and GET
 *                          reservation:{c} per request, best candidate
 *                          first; one more round per candidate refused
 *   RT4 dd_store_record()  SET eta:... EX for every cache miss, SET
 *                          result:{rid} NX EX per request; a GET of
 *                          result:{rid} in one more round for those whose
 *                          NX was refused (see src/store_commit.c)
 *
 * Every command names one key, at argv[1], so that each can be routed to
 * the node of its hash slot (Redis Cluster).
 *
 * Every key is written and read with the configured prefix in front of it
 * (DD_STORE_PREFIX_MAX); callers pass keys and ids without it.
 *
 * The API uses plain C types only (no hiredis types), so the domain
 * (dispatch.c) can include it and unit tests can link
 * tests/fakes/fake_store.c in place of src/store.c, store_read.c and
 * store_commit.c.
 *
 * DESIGN: a dd_store_t owns one hiredis context and is NOT thread-safe: it
 * belongs to one worker thread, which creates the connection (lazily, on the
 * first call) and makes every call.
 *
 * Errors come in two classes (dd_store_error_class(), the one place that
 * decides):
 *   - transient: a dead context (connect failure, I/O error, timeout, EOF)
 *     or an error reply that says "not now" for every key (LOADING, BUSY,
 *     MASTERDOWN, TRYAGAIN, CLUSTERDOWN, READONLY, OOM, MISCONF, NOAUTH,
 *     NOPERM, ...). The call returns DD_ERR and nothing of the batch may be
 *     considered done; the context is dropped and the next call reconnects,
 *     but not before a capped exponential backoff with jitter
 *     (dd_store_backoff_ms(); the first reconnect after a connection that
 *     worked is immediate). The caller retries later, which is safe because
 *     the reservations and the NX writes are idempotent (src/store_commit.c).
 *   - data: an error reply about the key itself (WRONGTYPE, any other ERR)
 *     or a reply of the wrong type or shape. Since the replies of a
 *     pipeline map one-to-one to its commands, it is charged to the load,
 *     reservation or record whose key caused it (data_error set, error
 *     naming the command, the key and Redis's text); the call still returns
 *     DD_OK, the others are valid, and the connection stays up. ETA cache
 * errors stay what they were: a miss to recompute (DD_STORE_ETA_ERROR,
 * put.error).
 *
 * While Redis is known to have lost dispatchd's state (store_marker.c: the
 * store id marker went missing or changed), every batch call fails with
 * "redis state lost ..." (DD_ERR, like a transient error) until
 * dd_store_state_ack().
 */
#ifndef DD_STORE_H
#define DD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "redis_url.h"

#define DD_STORE_PREFIX_MAX         64   /* longest key prefix, bytes */
#define DD_STORE_VEHICLE_MAX        16   /* vehicle buffer, with the NUL */
#define DD_STORE_TIMEOUT_MS_DEFAULT 2000 /* used when timeout_ms <= 0 */
#define DD_STORE_BACKOFF_MIN_MS     50   /* first delayed reconnect */
#define DD_STORE_BACKOFF_MAX_MS     5000 /* backoff cap */

#define DD_STORE_CLIENT_NAME "dispatchd" /* CLIENT SETNAME on connect */

#define DD_STORE_ETA_MISS  (-1) /* dd_store_eta_get(): key absent */
#define DD_STORE_ETA_ERROR (-2) /* dd_store_eta_get(): error reply or junk */

#define DD_STORE_ERROR_MAX 240 /* data error text, with the NUL */

#define DD_STORE_RESERVE_NONE   (-1) /* no candidate free (or none asked) */
#define DD_STORE_CANDIDATES_MAX 64   /* candidates of one reservation */

/** @brief What an error from Redis means for the batch that got it. */
typedef enum dd_store_error_class {
    DD_STORE_ERROR_TRANSIENT = 0, /* Redis cannot serve now: retry later */
    DD_STORE_ERROR_DATA,          /* the key's data: permanent for the
                                   * request(s) whose key it is */
} dd_store_error_class_t;

/**
 * @brief One Redis connection with its reconnect state. NOT thread-safe:
 *        owned by one worker thread, which makes every call on it.
 */
typedef struct dd_store dd_store_t;

/** @brief Connection and TTL settings; dd_store_new() copies them. */
typedef struct dd_store_conf {
    const char *host;      /* TCP host; ignored when unix_path is set */
    int port;              /* TCP port, 1..65535 */
    const char *unix_path; /* (optional) unix socket path, NULL or "" = TCP */
    const char *user;      /* (optional) ACL user for AUTH user password */
    const char *password;  /* (optional) AUTH password, never logged */
    int db;                /* SELECT index, >= 0 (0 = no SELECT) */
    const dd_redis_seed_t *cluster_seeds; /* (optional) Redis Cluster seeds
                                           * (redis_url.h): when set, host,
                                           * port, unix_path and db are
                                           * ignored and keys are routed */
    size_t cluster_nseeds; /* entries of cluster_seeds; 0 = one server */
    int timeout_ms;        /* connect and command timeout, ms; <= 0 default */
    const char *prefix;    /* (optional) key prefix, NULL = "" */
    int eta_ttl_s;         /* TTL of eta:v1:... keys, s, > 0 */
    int reservation_ttl_s; /* TTL of reservation:{c} keys, s, > 0 */
    int idempotency_ttl_s; /* TTL of result:{rid} keys, s, > 0 */
    int reserve_two_commands; /* 1: RT3 sends SET NX EX and GET per
                               * candidate even where every server takes
                               * SET NX GET (Redis >= 7.0.0); 0: one
                               * command there (tests keep both tested) */
} dd_store_conf_t;

/** @brief A courier as read from `courier:{id}` in RT1. */
typedef struct dd_store_courier {
    int found;             /* 1: the hash has lat, lon, vehicle and status, all
                            * valid (see invalid); 0 otherwise */
    int invalid;           /* 1: the key exists but holds invalid data: a field
                            * is missing or not a valid value (found = 0,
                            * bad_field names the field); a key that is not
                            * a hash is a data error of the load instead */
    const char *bad_field; /* static: "lat", "lon", "vehicle" or "status";
                            * NULL unless invalid */
    double lat;            /* degrees, -90..90 */
    double lon;            /* degrees, -180..180 */
    char vehicle[DD_STORE_VEHICLE_MAX]; /* foot, bike, scooter or car */
    int available; /* 1 when status is "available" (else busy or
                    * offline) */
} dd_store_courier_t;

/** @brief A parcel as read from `parcel:{id}` in RT1. */
typedef struct dd_store_parcel {
    int found;             /* 1: all four fields present and valid positions */
    int invalid;           /* 1: the key exists but holds invalid data (found =
                            * 0, bad_field names the field) */
    const char *bad_field; /* static: "pickup_lat", "pickup_lon",
                            * "dropoff_lat" or "dropoff_lon";
                            * NULL unless invalid */
    double pickup_lat;     /* degrees */
    double pickup_lon;     /* degrees */
    double dropoff_lat;    /* degrees */
    double dropoff_lon;    /* degrees */
} dd_store_parcel_t;

/** @brief One request's RT1 lookups. */
typedef struct dd_store_load {
    /* in */
    const char *request_id;         /* borrowed; the ledger key */
    const char *parcel_id;          /* (optional) borrowed; NULL: none */
    const char *const *courier_ids; /* borrowed, ncouriers ids */
    size_t ncouriers;               /* 0 for no courier lookup */
    /* out */
    char *ledger;                   /* owned (dd_free), NUL-terminated
                                     * copy of result:{rid}, or NULL */
    size_t ledger_len;              /* bytes in ledger, without the NUL */
    dd_store_parcel_t parcel;       /* found = 0 when parcel_id is NULL */
    dd_store_courier_t *couriers;   /* borrowed caller storage of
                                     * ncouriers entries, filled */
    int data_error;                 /* 1: a key of this load gave a data
                                     * error; the fields above are not
                                     * to be used */
    char error[DD_STORE_ERROR_MAX]; /* on data_error: "GET result:r-1:
                                     * WRONGTYPE ..." (key with prefix) */
} dd_store_load_t;

/** @brief One ETA cache write of RT4. */
typedef struct dd_store_eta_put {
    const char *key; /* in, borrowed, without the prefix (dd_route_eta_key()) */
    int64_t secs;    /* in, leg seconds, >= 0 */
    int error;       /* out: 1 when the SET got an error reply */
} dd_store_eta_put_t;

/** @brief One request's courier reservation of RT3. */
typedef struct dd_store_reserve {
    /* in */
    const char *request_id;           /* borrowed; the reservations' value */
    const char *const *candidate_ids; /* borrowed, ranked best first */
    size_t ncandidates;               /* 0..DD_STORE_CANDIDATES_MAX */
    /* out */
    int chosen;                     /* index of the candidate now reserved
                                     * by request_id (taken now, or held
                                     * already), or DD_STORE_RESERVE_NONE */
    int data_error;                 /* 1: a reservation key gave a data
                                     * error (chosen NONE) */
    char error[DD_STORE_ERROR_MAX]; /* on data_error: "redis GET
                                     * reservation:c-1: WRONGTYPE ..." */
} dd_store_reserve_t;

/** @brief One request's result record of RT4. */
typedef struct dd_store_record {
    /* in */
    const char *request_id; /* borrowed; the ledger key */
    const char *json;       /* borrowed, json_len bytes: the result built */
    size_t json_len;
    /* out */
    char *stored;      /* owned (dd_free), NUL-terminated: the bytes
                        * result:{rid} held when the SET NX was refused
                        * (another delivery recorded first); NULL when
                        * json was stored */
    size_t stored_len; /* bytes in stored, without the NUL */
    int data_error;    /* 1: result:{rid} gave a data error */
    char error[DD_STORE_ERROR_MAX]; /* on data_error: "redis GET
                                     * result:r-1: WRONGTYPE ..." */
} dd_store_record_t;

/** @brief Cumulative counters since dd_store_new(); callers diff them. */
typedef struct dd_store_stats {
    uint64_t round_trips;    /* batches sent: RT1/2, every round of RT3
                              * and RT4, PING; not the connect handshake */
    uint64_t commands;       /* commands in those round trips */
    uint64_t connects;       /* successful (re)connects */
    uint64_t connect_errors; /* failed connect/AUTH/SELECT/SETNAME */
    uint64_t io_errors;      /* contexts lost mid-call (I/O, timeout, EOF) */
    uint64_t reply_errors;   /* error replies (WRONGTYPE, OOM, ...) */
    uint64_t data_errors;    /* loads, reservations and records failed by
                              * a data error */
    uint64_t eta_hits;       /* dd_store_eta_get() */
    uint64_t eta_misses;     /* dd_store_eta_get() */
    uint64_t eta_errors;     /* dd_store_eta_get() errors + failed puts */
    uint64_t reserve_rounds; /* RT3 rounds (1 per batch when uncontended) */
    uint64_t record_reads;   /* RT4: GET of a result whose NX was refused */
} dd_store_stats_t;

/*----- Lifecycle -----*/

/**
 * @brief Create a store. Does not connect: the first call does, so an
 *        unreachable Redis at start is not an error.
 * @param conf (borrowed) settings, copied
 * @param errstr (optional) borrowed buffer for the error text
 * @returns owned store, or NULL for a bad setting (no host nor unix path,
 *          port out of range, TTL <= 0, db < 0, prefix too long)
 * @locality any thread; the calls below then belong to one thread
 */
dd_store_t *dd_store_new(const dd_store_conf_t *conf, char *errstr,
                         size_t errstr_size);

/**
 * @brief Close the connection and free the store. NULL is allowed.
 * @param st owned store
 * @locality owner thread
 */
void dd_store_destroy(dd_store_t *st);

/*----- Connection -----*/

/**
 * @brief Readiness probe: connect if needed (honouring the backoff) and
 *        send PING.
 * @param errstr (optional) borrowed buffer for the error text
 * @returns DD_OK when Redis answered PONG, else DD_ERR
 * @locality owner thread
 */
int dd_store_ping(dd_store_t *st, char *errstr, size_t errstr_size);

/**
 * @brief Milliseconds until the store will try to connect again; 0 when
 *        connected or when the next call may try at once.
 * @locality owner thread
 * @remark A call made before then fails at once with DD_ERR, without I/O.
 *         The delay doubles from DD_STORE_BACKOFF_MIN_MS per consecutive
 *         failure up to DD_STORE_BACKOFF_MAX_MS, with jitter in [d/2, d].
 */
int dd_store_backoff_ms(dd_store_t *st);

/**
 * @brief Copy the cumulative counters into out.
 * @locality owner thread
 */
void dd_store_get_stats(const dd_store_t *st, dd_store_stats_t *out);

/**
 * @brief Class of a Redis error reply, by its text (the one table; see the
 *        file comment). The code is the first word.
 * @param text (borrowed) the error reply's text, without the '-'
 * @returns DD_STORE_ERROR_TRANSIENT for LOADING, BUSY, MASTERDOWN,
 *          TRYAGAIN, CLUSTERDOWN, READONLY, OOM, MISCONF, NOREPLICAS,
 *          NOAUTH, NOPERM, MOVED, ASK, EXECABORT and "ERR unknown command";
 *          DD_STORE_ERROR_DATA for everything else (WRONGTYPE, other ERR,
 *          unknown codes)
 * @locality any thread
 * @remark Transient codes fail every key alike, so retrying is the only
 *         answer and nothing is lost; an unknown code is charged to the
 *         key rather than retried forever.
 */
dd_store_error_class_t dd_store_error_class(const char *text);

/*----- Lost state (process-wide, see src/store_marker.c) -----*/

/** The /readyz reason while the state is lost (static). */
extern const char dd_store_state_lost_reason[];

/**
 * @brief 1 while Redis is known to have lost dispatchd's state (its store id
 *        marker went missing or changed) and no operator acknowledged it;
 *        every store's batch calls then fail with "redis state lost: ...".
 * @locality any thread; lock-free
 */
int dd_store_state_lost(void);

/**
 * @brief The operator accepts the loss: the next marker check of any store
 *        writes the marker again and the stores answer again.
 * @returns 1 when a loss was pending (acknowledged now or before), 0 when
 *          nothing is lost
 * @locality any thread
 */
int dd_store_state_ack(void);

/**
 * @brief Forget the remembered store id and any loss (tests that flush the
 *        database between cases).
 * @locality any thread, with no store call in progress
 */
void dd_store_state_reset(void);

/*----- Batches -----*/

/**
 * @brief RT1: for each load, read the ledger (on one server one MGET of
 *        result:{rid} per 1,024 loads, in a cluster a GET each), HMGET the
 *        parcel (when parcel_id) and HMGET each courier, all in one
 *        pipeline. On one server a result key of another type reads as
 *        absent (MGET answers nil): the record's read-back GET then gets
 *        WRONGTYPE, a data error of that request (dd_store_record()).
 * @param loads (borrowed) n loads; their out fields are overwritten
 * @returns DD_OK, each load either filled or with data_error set (a data
 *          error reply or an unparsable reply on one of its keys); or
 *          DD_ERR (connection lost, a transient error reply, or the marker
 *          missing or changed: the state is declared lost) with every
 *          ledger NULL again
 * @locality owner thread
 * @remark Release the ledgers with dd_store_load_clear().
 */
int dd_store_load(dd_store_t *st, dd_store_load_t *loads, size_t n,
                  char *errstr, size_t errstr_size);

/**
 * @brief Free a load's ledger and reset its out fields (not couriers),
 *        data_error and error included.
 * @locality any thread
 */
void dd_store_load_clear(dd_store_load_t *load);

/**
 * @brief RT2: read every ETA key in one round trip: on one server one
 *        MGET per 1,024 keys, in a cluster one GET per key (pipelined per
 *        node). n == 0 makes no call.
 * @param keys (borrowed) n keys without the prefix
 * @param secs_out (borrowed) n values: seconds >= 0 for a hit,
 *        DD_STORE_ETA_MISS (absent; on one server also a key of another
 *        type, which MGET reads as nil), or DD_STORE_ETA_ERROR (error
 *        reply, or a value that is not a non-negative integer)
 * @returns DD_OK, or DD_ERR when the connection was lost
 * @locality owner thread
 */
int dd_store_eta_get(dd_store_t *st, const char *const *keys, size_t n,
                     int64_t *secs_out, char *errstr, size_t errstr_size);

/**
 * @brief RT3: reserve a courier for each request, best candidate first.
 *        Round 1 pipelines a GET of the store id marker, then for every
 *        request with candidates SET reservation:{c0} rid NX GET EX
 *        reservation_ttl_s where every server handshaken is Redis >= 7.0.0
 *        (nil: created, ours; else the holder), otherwise SET ... NX EX
 *        and GET reservation:{c0}. A request whose SET was refused keeps
 *        the courier when the holder is its own id (a redelivery), else it
 *        moves on to its next candidate in the next round; rounds go on
 *        for those only, so a batch without conflicts costs one round
 *        trip. A SET NX GET answered "ERR syntax error" turns the one
 *        command form off for this store and fails the batch (DD_ERR,
 *        retried with two commands).
 * @param rs (borrowed) n reservations; their out fields are overwritten
 * @returns DD_OK, each reservation either decided (chosen) or with
 *          data_error set; or DD_ERR (connection lost, a transient error
 *          reply, or the marker missing or changed: the state is declared
 *          lost, dd_store_marker_lost()) with every chosen NONE again. A
 *          reservation taken before a DD_ERR stays in Redis: the retry
 *          finds it held by the same request id and keeps it.
 * @locality owner thread
 */
int dd_store_reserve(dd_store_t *st, dd_store_reserve_t *rs, size_t n,
                     char *errstr, size_t errstr_size);

/**
 * @brief RT4: SET every ETA put with EX eta_ttl_s and SET result:{rid}
 *        json NX EX idempotency_ttl_s for every record, in one pipeline;
 *        then, in one more round trip and only for the records whose NX
 *        was refused, GET result:{rid}: those bytes are the answer.
 * @param puts (borrowed) nputs ETA writes (may be 0); error is set per put
 * @param recs (borrowed) n records; their out fields are overwritten
 * @param eta_put_errors (optional) receives the number of puts that got an
 *        error reply (the results are still valid)
 * @returns DD_OK, each record stored, or with stored set, or with
 *          data_error set; or DD_ERR (connection lost, a transient error
 *          reply, or a result gone between the refused SET and the GET)
 *          with every stored NULL again
 * @locality owner thread
 * @remark Release the stored bytes with dd_store_record_clear().
 */
int dd_store_record(dd_store_t *st, dd_store_eta_put_t *puts, size_t nputs,
                    dd_store_record_t *recs, size_t n, int *eta_put_errors,
                    char *errstr, size_t errstr_size);

/**
 * @brief Free a record's stored bytes and reset its out fields.
 * @locality any thread
 */
void dd_store_record_clear(dd_store_record_t *rec);

#endif /* DD_STORE_H */
