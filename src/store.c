/* SPDX-License-Identifier: MIT */
/*
 * store: the command layer of the Redis adapter (DESIGN.md section 3): the
 * store's lifecycle and counters, PING, and the command helpers the two
 * halves of the adapter share through store_cmd.h (keys, appends, the
 * marker's GET and its reply, the round-trip count, the one place an error
 * reply is classed). The reads are in store_read.c (RT1 loads, RT2 ETA
 * cache), the writes in store_commit.c (RT3 reservations, RT4 records).
 * Connecting, the handshake, timeouts and the reconnect backoff live in the
 * connection layer (store_conn.c); the reply parsers in store_parse.c; the
 * argv builder in store_argv.c; where replies live in store_reply.c.
 *
 * The commands reach Redis only through the small interface of
 * store_int.h: dd_store_conn_ensure() before a batch,
 * dd_store_conn_append_argv() for every command, dd_store_conn_get_reply()
 * for every reply in order, dd_store_conn_command() for a lone command,
 * and dd_store_conn_lost()/_drop()/_ok() to report how the batch went.
 * Redis Cluster routing (slot map, MOVED/ASK redirections, one pipeline
 * per node: store_cluster.c) sits behind that seam, so the commands are
 * the same for one server and for a cluster: each names one key (the one
 * exception, MGET on one server, is store_read.c's).
 *
 * DESIGN: one store, one connection, used by one thread. Every batch call
 * appends all of its commands and then reads exactly as many replies: one
 * round trip. Every error reply goes through dd_store_reply_error(), which
 * classes it with dd_store_error_class() (store_parse.c): a transient one fails
 * the call like a lost connection (DD_ERR; the connection is dropped so the
 * batch is retried at the backoff's pace, never in a hot loop); a data
 * error is charged to the load, reservation or record whose command got
 * it, since the
 * replies of a pipeline come back one per command in order, and the call
 * goes on. A reply of the wrong type or shape is a data error too.
 *
 * The reservations and records, and why they are safe without a script
 * (every command names one key), are in store_commit.c.
 */
#include "store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store_cmd.h"
#include "store_int.h"
#include "util.h"

/* Connects if needed; then, while the state is lost, refuses the batch
 * (dropping the connection, so that retries come at the backoff's pace and
 * each reconnect checks the marker again). */
int dd_store_begin(dd_store_t *st, char *errstr, size_t errstr_size) {
    int rc;

    /* A store call starts: the replies of the last one are dead. */
    dd_store_replies_reset(&st->conn.replies);
    rc = dd_store_conn_ensure(&st->conn, errstr, errstr_size);

    if (rc == DD_OK && dd_store_marker_is_lost() &&
        dd_store_marker_check(&st->conn, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    if (!dd_store_marker_is_lost())
        return rc;
    if (dd_store_conn_is_up(&st->conn))
        dd_store_conn_drop(&st->conn);
    dd_set_error(errstr, errstr_size, "%s", dd_store_state_lost_reason);
    return DD_ERR;
}

/* Appends the command held in a, then empties a. The append only buffers
 * (no I/O), so it fails only on out of memory. */
int dd_store_cmd_append(dd_store_t *st, dd_store_argv_t *a) {
    int rc = dd_store_conn_append_argv(&st->conn, a->argc, a->argv, a->argvlen);
    dd_store_argv_reset(a);
    st->key_used = 0;
    return rc;
}

int dd_store_cmd_marker_get(dd_store_t *st, dd_store_argv_t *a) {
    size_t n = dd_store_marker_count(&st->conn);
    int rc = DD_OK;

    for (size_t i = 0; i < n && rc == DD_OK; i++) {
        dd_store_argv_add_str(a, "GET");
        dd_store_argv_add_str(a, dd_store_marker_key(&st->conn, i));
        rc = dd_store_cmd_append(st, a);
    }
    return rc;
}

int dd_store_cmd_marker_reply(dd_store_t *st, const char *id, uint64_t gen,
                              char *errstr, size_t errstr_size) {
    size_t n = dd_store_marker_count(&st->conn);
    int rc = DD_OK;

    /* Every marker's reply is read (and judged) even after a failed one. */
    for (size_t i = 0; i < n; i++) {
        redisReply *r;
        char e[256];

        if (dd_store_conn_get_reply(&st->conn, &r, errstr, errstr_size) !=
            DD_OK)
            return DD_ERR;
        if (dd_store_marker_verdict(&st->conn, i, r, id, gen, e, sizeof(e)) !=
            DD_OK) {
            if (r->type == REDIS_REPLY_ERROR)
                st->stats.reply_errors++;
            if (rc == DD_OK || dd_store_marker_is_lost())
                dd_set_error(errstr, errstr_size, "%s", e);
            rc = DD_ERR;
        }
        dd_store_reply_done(r);
    }
    /* Reconnecting checks every marker again and writes those not seen
     * yet (dd_store_marker_check()). */
    if (rc != DD_OK && dd_store_conn_is_up(&st->conn))
        dd_store_conn_drop(&st->conn);
    return rc;
}

size_t dd_store_key_write(char *dst, const char *prefix, const char *kind,
                          const char *id) {
    size_t lp = strlen(prefix), lk = strlen(kind), li = strlen(id);

    memcpy(dst, prefix, lp);
    memcpy(dst + lp, kind, lk);
    memcpy(dst + lp + lk, id, li);
    dst[lp + lk + li] = '\0';
    return lp + lk + li;
}

/* A command key: the prefix, then kind and id; in st->key when it can be
 * (an allocation and a free per command were a measured cost). */
void dd_store_cmd_add_key(dd_store_argv_t *a, dd_store_t *st, const char *kind,
                          const char *id) {
    size_t lp = strlen(st->prefix), lk = strlen(kind), li = strlen(id);

    if (st->key_used || lp + lk + li >= sizeof(st->key)) {
        dd_store_argv_add_key(a, st->prefix, kind, id);
        return;
    }
    dd_store_key_write(st->key, st->prefix, kind, id);
    st->key_used = 1;
    dd_store_argv_add(a, st->key, lp + lk + li);
}

int dd_store_cmd_sent(dd_store_t *st, int failed, char *errstr,
                      size_t errstr_size) {
    if (failed) {
        /* Half a pipeline sits in the output buffer: drop the context. */
        dd_store_conn_lost(&st->conn, "append", errstr, errstr_size);
        return DD_ERR;
    }
    st->stats.round_trips++;
    return DD_OK;
}

/* v in decimal, the bytes "%lld" writes; buf holds at least 21 bytes. */
const char *dd_store_dec_str(char *buf, long long v) {
    char tmp[24];
    size_t n = 0;
    unsigned long long u =
        v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        tmp[n++] = '-';
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return buf;
}

/*----- Lifecycle -----*/

static int ttl_str(char *buf, size_t size, int ttl, const char *name,
                   char *errstr, size_t errstr_size) {
    if (ttl <= 0) {
        dd_set_error(errstr, errstr_size, "store: %s must be > 0 s", name);
        return DD_ERR;
    }
    snprintf(buf, size, "%d", ttl);
    return DD_OK;
}

dd_store_t *dd_store_new(const dd_store_conf_t *conf, char *errstr,
                         size_t errstr_size) {
    dd_store_t *st = dd_xcalloc(1, sizeof(*st));
    const char *prefix = conf->prefix ? conf->prefix : "";

    if (dd_store_conn_init(&st->conn, conf, &st->stats, errstr, errstr_size) !=
        DD_OK) {
        dd_free(st);
        return NULL;
    }
    if (strlen(prefix) >= DD_STORE_PREFIX_MAX) {
        dd_set_error(errstr, errstr_size, "store: key prefix longer than %d",
                     DD_STORE_PREFIX_MAX - 1);
        goto err;
    }
    if (ttl_str(st->eta_ttl, sizeof(st->eta_ttl), conf->eta_ttl_s, "eta ttl",
                errstr, errstr_size) != DD_OK ||
        ttl_str(st->reservation_ttl, sizeof(st->reservation_ttl),
                conf->reservation_ttl_s, "reservation ttl", errstr,
                errstr_size) != DD_OK ||
        ttl_str(st->idempotency_ttl, sizeof(st->idempotency_ttl),
                conf->idempotency_ttl_s, "idempotency ttl", errstr,
                errstr_size) != DD_OK)
        goto err;
    dd_strlcpy(st->prefix, prefix, sizeof(st->prefix));
    st->set_nx_get_off = conf->reserve_two_commands != 0;
    return st;

err:
    dd_store_conn_close(&st->conn);
    dd_free(st);
    return NULL;
}

void dd_store_destroy(dd_store_t *st) {
    if (st == NULL)
        return;
    dd_store_conn_close(&st->conn);
#ifndef DD_BUILD_release
    memset(st, 0xff, sizeof(*st));
#endif
    dd_free(st);
}

/*----- Connection -----*/

int dd_store_ping(dd_store_t *st, char *errstr, size_t errstr_size) {
    const char *argv[1] = {"PING"};
    const size_t argvlen[1] = {4};
    redisReply *r;

    dd_store_replies_reset(&st->conn.replies);
    if (dd_store_conn_ensure(&st->conn, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    /* While the state is lost, idle workers look for an acknowledgement. */
    if (dd_store_marker_is_lost() &&
        dd_store_marker_check(&st->conn, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    st->stats.round_trips++;
    if (dd_store_conn_command(&st->conn, "PING", 1, argv, argvlen, &r, errstr,
                              errstr_size) != DD_OK)
        return DD_ERR;
    if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0) {
        st->stats.reply_errors++;
        dd_set_error(errstr, errstr_size, "redis PING: %s",
                     r->type == REDIS_REPLY_ERROR ? r->str
                                                  : "unexpected reply");
        dd_store_reply_done(r);
        dd_store_conn_drop(&st->conn); /* LOADING, NOAUTH...: not ready */
        return DD_ERR;
    }
    dd_store_reply_done(r);
    dd_store_conn_ok(&st->conn);
    return DD_OK;
}

int dd_store_backoff_ms(dd_store_t *st) {
    return dd_store_conn_backoff_ms(&st->conn);
}

void dd_store_get_stats(const dd_store_t *st, dd_store_stats_t *out) {
    *out = st->stats;
}

/* The one place an error reply is taken: counts it and classes it. A
 * transient one fills errstr with "redis <cmd> <key>: <text>" and returns
 * DD_STORE_ERROR_TRANSIENT; a data error fills text (the load's,
 * reservation's or record's error) the same way. Returns -1 when r is no
 * error reply. */
int dd_store_reply_error(dd_store_t *st, const redisReply *r, const char *cmd,
                         const char *key, char *text, size_t text_size,
                         char *errstr, size_t errstr_size) {
    dd_store_error_class_t cls;

    if (r->type != REDIS_REPLY_ERROR)
        return -1;
    st->stats.reply_errors++;
    cls = dd_store_error_class(r->str);
    if (cls == DD_STORE_ERROR_DATA) {
        dd_set_error(text, text_size, "redis %s %s: %s", cmd, key, r->str);
        return DD_STORE_ERROR_DATA;
    }
    dd_set_error(errstr, errstr_size, "redis %s %s: %s", cmd, key, r->str);
    return DD_STORE_ERROR_TRANSIENT;
}
