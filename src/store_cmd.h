/* SPDX-License-Identifier: MIT */
/*
 * store_cmd: what the parts of the command layer, store.c (lifecycle,
 * shared helpers), store_read.c (RT1, RT2) and store_commit.c (RT3, RT4),
 * share and nothing else uses: the store itself and the helpers every
 * batch call goes through. Apart from store_int.h so that the test fake of
 * the store can keep its own struct.
 */
#ifndef DD_STORE_CMD_H
#define DD_STORE_CMD_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "store.h"
#include "store_int.h"

/* The store: the connection and what every command needs. */
struct dd_store {
    dd_store_conn_t conn;                   /* the connection layer */
    char prefix[DD_STORE_PREFIX_MAX];       /* key prefix */
    char eta_ttl[16];                       /* seconds, as a decimal string */
    char reservation_ttl[16];               /* seconds, as a decimal string */
    char idempotency_ttl[16];               /* seconds, as a decimal string */
    char store_id[DD_STORE_MARKER_ID_SIZE]; /* the marker must hold it */
    uint64_t store_id_gen; /* recovery generation of store_id */
    int set_nx_get_off;    /* RT3: never SET NX GET (conf, or the server
                            * refused it: store_commit.c) */
    dd_store_stats_t stats;
    /* The key of the command being built (see dd_store_cmd_add_key()). */
    char key[DD_STORE_PREFIX_MAX + 16 + 256];
    int key_used; /* key holds an argument of the command being built */
};

/* Connects if needed; then, while the state is lost, refuses the batch
 * (dropping the connection, so that retries come at the backoff's pace and
 * each reconnect checks the marker again). DD_OK or DD_ERR with errstr. */
int dd_store_begin(dd_store_t *st, char *errstr, size_t errstr_size);

/* Appends the command held in a, then empties a. The append only buffers
 * (no I/O), so it fails only on out of memory. */
int dd_store_cmd_append(dd_store_t *st, dd_store_argv_t *a);

/* Appends GET of every marker (dd_store_marker_count(): one per master in
 * cluster mode); an id to compare with is needed: see below. */
int dd_store_cmd_marker_get(dd_store_t *st, dd_store_argv_t *a);

/* Reads the replies of those GETs: DD_OK when every marker holds id (remembered
 * in generation gen), else DD_ERR with errstr, the loss declared when it is
 * one (dd_store_marker_verdict()). The caller fails the batch. */
int dd_store_cmd_marker_reply(dd_store_t *st, const char *id, uint64_t gen,
                              char *errstr, size_t errstr_size);

/* Adds a command key to a: the prefix, then kind and id. The key is built
 * in st->key, without an allocation, when it fits and the command has no
 * other key there; else it is an owned argument of a. Either way it lasts
 * until dd_store_cmd_append(). */
void dd_store_cmd_add_key(dd_store_argv_t *a, dd_store_t *st, const char *kind,
                          const char *id);

/* prefix + kind + id, NUL-terminated, into dst (room for all of it);
 * returns the key's length without the NUL. */
size_t dd_store_key_write(char *dst, const char *prefix, const char *kind,
                          const char *id);

/* After the appends of a pipelined batch: when one failed (failed is
 * nonzero), half a pipeline sits in the output buffer, so the connection is
 * dropped and DD_ERR returned with errstr; else the round trip whose
 * replies are read next is counted and DD_OK returned. */
int dd_store_cmd_sent(dd_store_t *st, int failed, char *errstr,
                      size_t errstr_size);

/* Keys per MGET (one server: RT1's result keys, RT2's ETA keys). A batch
 * with more sends several MGETs, so that no command (and no reply) grows
 * without bound. */
#define DD_STORE_MGET_MAX 1024

/* v in decimal, the bytes "%lld" writes; buf holds at least 21 bytes.
 * Returns buf. */
const char *dd_store_dec_str(char *buf, long long v);

/* The one place an error reply is taken: counts it and classes it (see
 * store.c). Returns a dd_store_error_class_t, or -1 when r is no error
 * reply. */
int dd_store_reply_error(dd_store_t *st, const redisReply *r, const char *cmd,
                         const char *key, char *text, size_t text_size,
                         char *errstr, size_t errstr_size);

#endif /* DD_STORE_CMD_H */
