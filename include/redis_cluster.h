/* SPDX-License-Identifier: MIT */
/*
 * redis_cluster: the pure parts of Redis Cluster routing, in the terms of
 * the Redis Cluster specification: the CRC16 (XMODEM) of a key, its hash
 * slot (with the {hash tag} rule), the slot map built from a CLUSTER SLOTS
 * reply (masters only), and the MOVED and ASK redirections of an error
 * reply. No I/O and no state beyond what the caller holds, so that the
 * connection layer (store_conn.c, store_cluster.c) routes with it and the
 * unit tests and the fuzz harness check it on replies built by hand.
 */
#ifndef DD_REDIS_CLUSTER_H
#define DD_REDIS_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

/** Hash slots of a Redis Cluster. */
#define DD_REDIS_CLUSTER_SLOTS 16384

/** Slot map entry of a slot no master serves. */
#define DD_REDIS_CLUSTER_NO_NODE UINT16_MAX

/** The most masters a slot map may name. */
#define DD_REDIS_CLUSTER_MAX_NODES 1024

/** Longest host name kept (NUL included). */
#define DD_REDIS_CLUSTER_HOST_MAX 256

/** One master of a slot map: where to connect. */
typedef struct dd_redis_cluster_node {
    char host[DD_REDIS_CLUSTER_HOST_MAX]; /* "" when CLUSTER SLOTS gave none
                                           * (the node that answered) */
    int port;                             /* 1..65535 */
} dd_redis_cluster_node_t;

/** A slot map: the masters, and for every slot the index of its master. */
typedef struct dd_redis_cluster_map {
    dd_redis_cluster_node_t *nodes; /* owned, nnodes entries */
    size_t nnodes;
    uint16_t slot_node[DD_REDIS_CLUSTER_SLOTS]; /* index, or _NO_NODE */
} dd_redis_cluster_map_t;

/** What an error reply asks for. */
typedef enum dd_redis_cluster_redirect_kind {
    DD_REDIS_CLUSTER_MOVED = 1, /* the slot has a new master for good */
    DD_REDIS_CLUSTER_ASK = 2    /* this one command, after ASKING */
} dd_redis_cluster_redirect_kind_t;

/** A parsed MOVED or ASK error. */
typedef struct dd_redis_cluster_redirect {
    dd_redis_cluster_redirect_kind_t kind;
    unsigned slot;
    char host[DD_REDIS_CLUSTER_HOST_MAX]; /* "" for "MOVED s :port": the host
                                           * of the node that answered */
    int port;
} dd_redis_cluster_redirect_t;

/*----- Keys -----*/

/**
 * @brief CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0) of @p len
 *        bytes, the checksum of the Redis Cluster specification.
 * @param buf borrowed
 * @returns the checksum; "123456789" gives 0x31C3.
 * @locality any thread; pure
 */
uint16_t dd_redis_cluster_crc16(const char *buf, size_t len);

/**
 * @brief The hash slot of a key: CRC16 mod 16384 of the key, or of the
 *        bytes between its first '{' and the next '}' when there are some.
 * @param key borrowed, binary-safe, @p len bytes
 * @returns 0..16383
 * @locality any thread; pure
 */
unsigned dd_redis_cluster_key_slot(const char *key, size_t len);

/** The most tags dd_redis_cluster_tag_key() tries. */
#define DD_REDIS_CLUSTER_TAG_TRIES 1000000

/**
 * @brief A key of the form "<base>:{<tag>}" whose hash slot lies in
 *        lo..hi: the tag is the smallest decimal number (so the shortest
 *        tag) that puts the whole key (base included, so a hash tag in
 *        base wins as Redis would have it) in that range.
 * @param base borrowed, NUL-terminated
 * @param lo, hi the slot range, lo <= hi <= 16383
 * @param out out, size bytes: the key, NUL-terminated
 * @returns DD_OK, or DD_ERR when no tag of the first
 *          DD_REDIS_CLUSTER_TAG_TRIES puts the key there (base holds a
 *          hash tag of another slot) or the key does not fit in out
 * @locality any thread; pure
 */
int dd_redis_cluster_tag_key(const char *base, unsigned lo, unsigned hi,
                             char *out, size_t size);

/*----- Slot map -----*/

/**
 * @brief Builds a slot map from a CLUSTER SLOTS reply: an array of
 *        [start, end, [host, port, ...], replicas...] entries. Masters
 *        only; the replicas are checked for shape and ignored. Slots no
 *        entry names stay without a node.
 * @param r borrowed reply
 * @param m out, overwritten; on DD_OK free with dd_redis_cluster_map_close()
 * @returns DD_OK, or DD_ERR with errstr for an error reply, a reply of
 *          another shape, a slot out of range or served twice, a bad
 *          host or port, no slot at all or too many masters (m then holds
 *          nothing).
 * @locality any thread; pure
 */
int dd_redis_cluster_map_parse(const redisReply *r, dd_redis_cluster_map_t *m,
                               char *errstr, size_t errstr_size);

/** @brief Frees what @p m owns; safe twice and on a zeroed map. */
void dd_redis_cluster_map_close(dd_redis_cluster_map_t *m);

/**
 * @brief Index of host:port among the masters of @p m, or -1.
 * @locality any thread; pure
 */
int dd_redis_cluster_map_find(const dd_redis_cluster_map_t *m, const char *host,
                              int port);

/**
 * @brief 1 when @p a and @p b name the same masters in the same order
 *        and give every slot the same one.
 */
int dd_redis_cluster_map_equal(const dd_redis_cluster_map_t *a,
                               const dd_redis_cluster_map_t *b);

/*----- Redirections -----*/

/**
 * @brief Parses "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>"
 *        (the host may be empty, an IPv6 address keeps its colons: the
 *        port is after the last one).
 * @param err borrowed error text, NUL-terminated
 * @param rd out on DD_OK
 * @returns DD_OK for a well-formed redirection, DD_ERR for anything else
 * @locality any thread; pure
 */
int dd_redis_cluster_parse_redirect(const char *err,
                                    dd_redis_cluster_redirect_t *rd);

#endif /* DD_REDIS_CLUSTER_H */
