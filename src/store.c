/* SPDX-License-Identifier: MIT */
/*
 * store: the command layer of the Redis adapter (DESIGN.md section 3).
 * Batched, pipelined lookups (RT1), the ETA cache reads (RT2), and the
 * store's lifecycle and counters; the courier reservations (RT3) and the
 * result records (RT4) are in store_commit.c. Connecting, the
 * handshake, timeouts and the reconnect backoff live in the connection layer
 * (store_conn.c); the reply parsers in store_parse.c; the argv builder in
 * store_argv.c.
 *
 * The commands reach Redis only through the small interface of
 * store_int.h: dd_store_conn_ensure() before a batch,
 * dd_store_conn_append_argv() for every command, dd_store_conn_get_reply()
 * for every reply in order, dd_store_conn_command() for a lone command,
 * and dd_store_conn_lost()/_drop()/_ok() to report how the batch went.
 * Redis Cluster routing (slot map, MOVED/ASK redirections, one pipeline
 * per node: store_cluster.c) sits behind that seam, so the commands below
 * are the same for one server and for a cluster: each names one key. The
 * one exception is a read of many string keys: on one server the ETA keys
 * of RT2 and the result keys of RT1 are read with one MGET per
 * DD_STORE_MGET_MAX keys (fewer commands for dispatchd to format and read
 * back, and for Redis to parse), in a cluster with one GET each (the keys
 * hash to different slots). MGET answers nil for a key of another type where
 * GET answered WRONGTYPE; what that means for each caller is said where it
 * reads.
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

/* A command key: the prefix, then kind and id; in st->key when it can be
 * (an allocation and a free per command were a measured cost). */
void dd_store_cmd_add_key(dd_store_argv_t *a, dd_store_t *st, const char *kind,
                          const char *id) {
    size_t lp = strlen(st->prefix), lk = strlen(kind), li = strlen(id);

    if (st->key_used || lp + lk + li >= sizeof(st->key)) {
        dd_store_argv_add_key(a, st->prefix, kind, id);
        return;
    }
    memcpy(st->key, st->prefix, lp);
    memcpy(st->key + lp, kind, lk);
    memcpy(st->key + lp + lk, id, li);
    st->key[lp + lk + li] = '\0';
    st->key_used = 1;
    dd_store_argv_add(a, st->key, lp + lk + li);
}

/* prefix + kind + id into buf, cut to size - 1 bytes as snprintf() would
 * cut it: the text of a key in an error message. memcpy(), not snprintf():
 * this runs for every reply. */
static void key_text(char *buf, size_t size, const char *prefix,
                     const char *kind, const char *id) {
    const char *parts[3] = {prefix, kind, id};
    size_t used = 0;

    for (int i = 0; i < 3 && used + 1 < size; i++) {
        size_t len = strlen(parts[i]);

        if (len > size - 1 - used)
            len = size - 1 - used;
        memcpy(buf + used, parts[i], len);
        used += len;
    }
    buf[used] = '\0';
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

/*----- MGET (one server) -----*/

/* Appends MGET of prefix + kind + ids[i] for every i < n, in commands of
 * at most DD_STORE_MGET_MAX keys (dd_store_mget_count() of them). The keys
 * of one command are built in one buffer, freed once it is appended (the
 * append copies them). */
static int append_mget(dd_store_t *st, const char *kind, const char *const *ids,
                       size_t n) {
    size_t lp = strlen(st->prefix), lk = strlen(kind);
    int failed = 0;

    for (size_t base = 0; base < n && !failed; base += DD_STORE_MGET_MAX) {
        size_t cnt =
            n - base < DD_STORE_MGET_MAX ? n - base : DD_STORE_MGET_MAX;
        size_t total = 0, used = 0;
        dd_store_argv_t a;
        char *buf;

        for (size_t i = 0; i < cnt; i++)
            total += lp + lk + strlen(ids[base + i]) + 1;
        buf = dd_xmalloc(total);
        dd_store_argv_init(&a, (int)cnt + 1);
        dd_store_argv_add_str(&a, "MGET");
        for (size_t i = 0; i < cnt; i++) {
            size_t li = strlen(ids[base + i]);
            char *k = buf + used;

            memcpy(k, st->prefix, lp);
            memcpy(k + lp, kind, lk);
            memcpy(k + lp + lk, ids[base + i], li);
            k[lp + lk + li] = '\0';
            used += lp + lk + li + 1;
            dd_store_argv_add(&a, k, lp + lk + li);
        }
        failed = dd_store_cmd_append(st, &a) != DD_OK;
        dd_store_argv_close(&a);
        dd_free(buf);
    }
    return failed ? DD_ERR : DD_OK;
}

/* 1 when r answers an MGET of cnt keys: an array of cnt elements. */
static int mget_shape_ok(const redisReply *r, size_t cnt) {
    return r->type == REDIS_REPLY_ARRAY && r->elements == cnt;
}

/*----- RT1: loads -----*/

void dd_store_load_clear(dd_store_load_t *load) {
    dd_free(load->ledger);
    load->ledger = NULL;
    load->ledger_len = 0;
    memset(&load->parcel, 0, sizeof(load->parcel));
    load->data_error = 0;
    load->error[0] = '\0';
}

static void loads_clear(dd_store_load_t *loads, size_t n) {
    for (size_t i = 0; i < n; i++)
        dd_store_load_clear(&loads[i]);
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

/* A data error on one of a load's keys: the load is answered by it alone. */
static void load_fail(dd_store_t *st, dd_store_load_t *l) {
    dd_free(l->ledger);
    l->ledger = NULL;
    l->ledger_len = 0;
    memset(&l->parcel, 0, sizeof(l->parcel));
    for (size_t j = 0; j < l->ncouriers; j++)
        memset(&l->couriers[j], 0, sizeof(l->couriers[j]));
    l->data_error = 1;
    st->stats.data_errors++;
}

/* The text of a load's key (prefix + kind + id) for an error message;
 * built only when one is written. */
typedef struct load_key {
    const char *kind, *id;
    char text[DD_STORE_PREFIX_MAX + 16 + 256];
} load_key_t;

static const char *load_key_text(const dd_store_t *st, load_key_t *k) {
    key_text(k->text, sizeof(k->text), st->prefix, k->kind, k->id);
    return k->text;
}

/* Takes one reply of load l for the command cmd on key k. Returns 1 when r
 * can be parsed; 0 when it was charged to l as a data error, or when the
 * batch already failed (*failed) or l already did. */
static int take_load_reply(dd_store_t *st, const redisReply *r,
                           dd_store_load_t *l, const char *cmd, load_key_t *k,
                           int *failed, char *errstr, size_t errstr_size) {
    int cls;

    if (*failed || l->data_error)
        return 0;
    if (r->type != REDIS_REPLY_ERROR)
        return 1;
    cls = dd_store_reply_error(st, r, cmd, load_key_text(st, k), l->error,
                               sizeof(l->error), errstr, errstr_size);
    if (cls == DD_STORE_ERROR_DATA)
        load_fail(st, l);
    else if (cls >= 0)
        *failed = 1;
    return cls < 0;
}

/* The parser refused a reply that is no error: a data error of l. */
static void load_unparsable(dd_store_t *st, dd_store_load_t *l, const char *cmd,
                            load_key_t *k) {
    dd_set_error(l->error, sizeof(l->error), "redis %s %s: unexpected reply",
                 cmd, load_key_text(st, k));
    load_fail(st, l);
}

/* A load's ledger from r, the reply of its GET result:{rid} or its element
 * of the batch's MGET: the bytes, absent (nil), or a data error of l. */
static void take_ledger(dd_store_t *st, dd_store_load_t *l, const redisReply *r,
                        const char *cmd, load_key_t *k) {
    if (r->type == REDIS_REPLY_STRING) {
        /* Every byte (a NUL included): ledger_len must be what is there. */
        l->ledger = dd_xmalloc(r->len + 1);
        memcpy(l->ledger, r->str, r->len);
        l->ledger[r->len] = '\0';
        l->ledger_len = r->len;
    } else if (r->type != REDIS_REPLY_NIL) {
        load_unparsable(st, l, cmd, k);
    }
}

/* Reads the replies of one load, in the order they were appended (its
 * GET result:{rid} first unless the batch read the ledgers with MGET).
 * Returns DD_ERR only when the context was lost (then nothing more can be
 * read); *failed is set for a transient error reply, which fails the batch;
 * a data error is charged to l (data_error) and the batch goes on. */
static int read_load(dd_store_t *st, dd_store_load_t *l, int ledger_get,
                     int *failed, char *errstr, size_t errstr_size) {
    load_key_t key;
    char perr[128];
    redisReply *r;

    if (ledger_get) {
        if (dd_store_conn_get_reply(&st->conn, &r, errstr, errstr_size) !=
            DD_OK)
            return DD_ERR;
        key.kind = "result:";
        key.id = l->request_id;
        if (take_load_reply(st, r, l, "GET", &key, failed, errstr, errstr_size))
            take_ledger(st, l, r, "GET", &key);
        dd_store_reply_done(r);
    }

    if (l->parcel_id != NULL) {
        if (dd_store_conn_get_reply(&st->conn, &r, errstr, errstr_size) !=
            DD_OK)
            return DD_ERR;
        key.kind = "parcel:";
        key.id = l->parcel_id;
        if (take_load_reply(st, r, l, "HMGET", &key, failed, errstr,
                            errstr_size) &&
            dd_store_parse_parcel(r, &l->parcel, perr, sizeof(perr)) != DD_OK)
            load_unparsable(st, l, "HMGET", &key);
        dd_store_reply_done(r);
    }
    for (size_t j = 0; j < l->ncouriers; j++) {
        if (!l->data_error)
            memset(&l->couriers[j], 0, sizeof(l->couriers[j]));
        if (dd_store_conn_get_reply(&st->conn, &r, errstr, errstr_size) !=
            DD_OK)
            return DD_ERR;
        key.kind = "courier:";
        key.id = l->courier_ids[j];
        if (take_load_reply(st, r, l, "HMGET", &key, failed, errstr,
                            errstr_size) &&
            dd_store_parse_courier(r, &l->couriers[j], perr, sizeof(perr)) !=
                DD_OK)
            load_unparsable(st, l, "HMGET", &key);
        dd_store_reply_done(r);
    }
    return DD_OK;
}

/* One server: the replies of the batch's MGETs of result:{rid}, in load
 * order. A result key of another type reads as absent here (MGET answers
 * nil where GET answered WRONGTYPE): the request is then decided, its
 * record's SET NX is refused and the GET that reads the stored bytes back
 * gets WRONGTYPE, a data error of that request alone (store_commit.c).
 * An error reply to a whole MGET is classed once: transient fails the
 * batch (*failed), a data error is charged to every load of that MGET.
 * Returns DD_ERR only when the context was lost. */
static int read_ledgers(dd_store_t *st, dd_store_load_t *loads, size_t n,
                        int *failed, char *errstr, size_t errstr_size) {
    for (size_t base = 0; base < n; base += DD_STORE_MGET_MAX) {
        size_t cnt =
            n - base < DD_STORE_MGET_MAX ? n - base : DD_STORE_MGET_MAX;
        redisReply *r;
        load_key_t key;

        if (dd_store_conn_get_reply(&st->conn, &r, errstr, errstr_size) !=
            DD_OK)
            return DD_ERR;
        key.kind = "result:";
        for (size_t i = 0; i < cnt && !*failed; i++) {
            dd_store_load_t *l = &loads[base + i];

            key.id = l->request_id;
            if (mget_shape_ok(r, cnt))
                take_ledger(st, l, r->element[i], "MGET", &key);
            else if (r->type != REDIS_REPLY_ERROR)
                load_unparsable(st, l, "MGET", &key);
            else if (i == 0) /* counted and classed once */
                (void)take_load_reply(st, r, l, "MGET", &key, failed, errstr,
                                      errstr_size);
            else {
                dd_set_error(l->error, sizeof(l->error), "redis MGET %s: %s",
                             load_key_text(st, &key), r->str);
                load_fail(st, l);
            }
        }
        dd_store_reply_done(r);
    }
    return DD_OK;
}

int dd_store_load(dd_store_t *st, dd_store_load_t *loads, size_t n,
                  char *errstr, size_t errstr_size) {
    dd_store_argv_t a;
    char id[DD_STORE_MARKER_ID_SIZE];
    uint64_t gen;
    int failed = 0, check, mget;

    for (size_t i = 0; i < n; i++) {
        loads[i].ledger = NULL;
        loads[i].ledger_len = 0;
        memset(&loads[i].parcel, 0, sizeof(loads[i].parcel));
        loads[i].data_error = 0;
        loads[i].error[0] = '\0';
    }
    if (n == 0)
        return DD_OK;
    if (dd_store_begin(st, errstr, errstr_size) != DD_OK)
        return DD_ERR;

    /* Once this process has an id, the loads check the marker first: a
     * loss found here fails the batch before anything of it is written
     * (the writes check again, store_commit.c). */
    check = dd_store_marker_known(id, sizeof(id), &gen);
    mget = st->conn.cluster == NULL;
    dd_store_argv_init(&a, 6);
    if (check)
        failed |= dd_store_cmd_marker_get(st, &a) != DD_OK;
    if (mget && !failed) {
        const char **rids = dd_xcalloc(n, sizeof(*rids));

        for (size_t i = 0; i < n; i++)
            rids[i] = loads[i].request_id;
        failed |= append_mget(st, "result:", rids, n) != DD_OK;
        dd_free(rids);
    }
    for (size_t i = 0; i < n && !failed; i++) {
        const dd_store_load_t *l = &loads[i];

        if (!mget) {
            dd_store_argv_add_str(&a, "GET");
            dd_store_cmd_add_key(&a, st, "result:", l->request_id);
            failed |= dd_store_cmd_append(st, &a) != DD_OK;
        }
        if (l->parcel_id != NULL) {
            dd_store_argv_add_str(&a, "HMGET");
            dd_store_cmd_add_key(&a, st, "parcel:", l->parcel_id);
            dd_store_argv_add_str(&a, "pickup_lat");
            dd_store_argv_add_str(&a, "pickup_lon");
            dd_store_argv_add_str(&a, "dropoff_lat");
            dd_store_argv_add_str(&a, "dropoff_lon");
            failed |= dd_store_cmd_append(st, &a) != DD_OK;
        }
        for (size_t j = 0; j < l->ncouriers; j++) {
            dd_store_argv_add_str(&a, "HMGET");
            dd_store_cmd_add_key(&a, st, "courier:", l->courier_ids[j]);
            dd_store_argv_add_str(&a, "lat");
            dd_store_argv_add_str(&a, "lon");
            dd_store_argv_add_str(&a, "vehicle");
            dd_store_argv_add_str(&a, "status");
            failed |= dd_store_cmd_append(st, &a) != DD_OK;
        }
    }
    dd_store_argv_close(&a);
    if (dd_store_cmd_sent(st, failed, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    if (check &&
        dd_store_cmd_marker_reply(st, id, gen, errstr, errstr_size) != DD_OK) {
        if (dd_store_conn_is_up(&st->conn))
            dd_store_conn_drop(&st->conn);
        return DD_ERR;
    }
    if (mget &&
        read_ledgers(st, loads, n, &failed, errstr, errstr_size) != DD_OK) {
        loads_clear(loads, n);
        return DD_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        if (read_load(st, &loads[i], !mget, &failed, errstr, errstr_size) !=
            DD_OK) {
            loads_clear(loads, n);
            return DD_ERR;
        }
    }
    if (failed) { /* a transient error reply */
        loads_clear(loads, n);
        dd_store_conn_drop(&st->conn);
        return DD_ERR;
    }
    dd_store_conn_ok(&st->conn);
    return DD_OK;
}

/*----- RT2: ETA cache reads -----*/

/* One ETA reply (a GET's, or an element of an MGET's): seconds, a miss,
 * or an error to recompute. */
static int64_t eta_of(dd_store_t *st, const redisReply *r) {
    int64_t secs;

    if (r->type == REDIS_REPLY_NIL)
        return DD_STORE_ETA_MISS;
    if (dd_store_parse_secs(r, &secs) == DD_OK)
        return secs;
    /* An error reply or a value we did not write: recompute. */
    if (r->type == REDIS_REPLY_ERROR)
        st->stats.reply_errors++;
    return DD_STORE_ETA_ERROR;
}

/* One server: one MGET per DD_STORE_MGET_MAX keys. A key of another type
 * is an element nil where GET answered WRONGTYPE: a miss, recomputed, and
 * the SET EX of the record overwrites the key. */
static int eta_get_mget(dd_store_t *st, const char *const *keys, size_t n,
                        int64_t *secs_out, char *errstr, size_t errstr_size) {
    if (dd_store_cmd_sent(st, append_mget(st, "", keys, n) != DD_OK, errstr,
                          errstr_size) != DD_OK)
        return DD_ERR;
    for (size_t base = 0; base < n; base += DD_STORE_MGET_MAX) {
        size_t cnt =
            n - base < DD_STORE_MGET_MAX ? n - base : DD_STORE_MGET_MAX;
        redisReply *r;

        if (dd_store_conn_get_reply(&st->conn, &r, errstr, errstr_size) !=
            DD_OK)
            return DD_ERR;
        if (mget_shape_ok(r, cnt)) {
            for (size_t i = 0; i < cnt; i++)
                secs_out[base + i] = eta_of(st, r->element[i]);
        } else {
            /* An error reply (counted once) or another shape: every key
             * of this MGET is recomputed. */
            if (r->type == REDIS_REPLY_ERROR)
                st->stats.reply_errors++;
            for (size_t i = 0; i < cnt; i++)
                secs_out[base + i] = DD_STORE_ETA_ERROR;
        }
        dd_store_reply_done(r);
    }
    return DD_OK;
}

/* Redis Cluster: the keys hash to different slots, so one GET each. */
static int eta_get_each(dd_store_t *st, const char *const *keys, size_t n,
                        int64_t *secs_out, char *errstr, size_t errstr_size) {
    dd_store_argv_t a;
    int failed = 0;

    dd_store_argv_init(&a, 2);
    for (size_t i = 0; i < n && !failed; i++) {
        dd_store_argv_add_str(&a, "GET");
        dd_store_cmd_add_key(&a, st, "", keys[i]);
        failed |= dd_store_cmd_append(st, &a) != DD_OK;
    }
    dd_store_argv_close(&a);
    if (dd_store_cmd_sent(st, failed, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    for (size_t i = 0; i < n; i++) {
        redisReply *r;
        if (dd_store_conn_get_reply(&st->conn, &r, errstr, errstr_size) !=
            DD_OK)
            return DD_ERR;
        secs_out[i] = eta_of(st, r);
        dd_store_reply_done(r);
    }
    return DD_OK;
}

int dd_store_eta_get(dd_store_t *st, const char *const *keys, size_t n,
                     int64_t *secs_out, char *errstr, size_t errstr_size) {
    int rc;

    if (n == 0)
        return DD_OK;
    if (dd_store_begin(st, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    rc = st->conn.cluster == NULL
             ? eta_get_mget(st, keys, n, secs_out, errstr, errstr_size)
             : eta_get_each(st, keys, n, secs_out, errstr, errstr_size);
    if (rc != DD_OK)
        return DD_ERR;
    /* Counted only once the whole batch is in. */
    for (size_t i = 0; i < n; i++) {
        if (secs_out[i] >= 0)
            st->stats.eta_hits++;
        else if (secs_out[i] == DD_STORE_ETA_MISS)
            st->stats.eta_misses++;
        else
            st->stats.eta_errors++;
    }
    dd_store_conn_ok(&st->conn);
    return DD_OK;
}
