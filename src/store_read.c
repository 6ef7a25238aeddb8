/* SPDX-License-Identifier: MIT */
/*
 * store_read: the reads of the Redis adapter (DESIGN.md section 3): RT1,
 * dd_store_load(), which reads each request's stored result (its ledger),
 * its parcel and its candidate couriers in one pipelined round trip; and
 * RT2, dd_store_eta_get(), which reads the batch's ETA cache entries in
 * another. The writes are in store_commit.c; the lifecycle and the command
 * helpers both use are in store.c (store_cmd.h).
 *
 * Every command names one key, except one: on one server the result keys
 * of RT1 and the ETA keys of RT2 are read with one MGET per
 * DD_STORE_MGET_MAX keys (fewer commands for dispatchd to format and read
 * back, and for Redis to parse); in a cluster with one GET each (the keys
 * hash to different slots). MGET answers nil for a key of another type
 * where GET answered WRONGTYPE; what that means for each caller is said
 * where it reads.
 *
 * DESIGN: as store.c: one store, one connection, used by one thread; every
 * call appends all of its commands, then reads exactly as many replies.
 * Error replies are classed by dd_store_reply_error(): a transient one
 * fails the call, a data error is charged to the load whose key got it.
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

/*----- MGET (one server) -----*/

/* Appends MGET of prefix + kind + id_at(ids, i) for every i < n, in
 * commands of at most DD_STORE_MGET_MAX keys. The keys of one command are
 * built in one buffer, freed once it is appended (the append copies them).
 * id_at reads the i-th id of ids: the loads' request ids, or the ETA keys,
 * without copying them into an array first. */
static int append_mget(dd_store_t *st, const char *kind, const void *ids,
                       const char *(*id_at)(const void *ids, size_t i),
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
            total += lp + lk + strlen(id_at(ids, base + i)) + 1;
        buf = dd_xmalloc(total);
        dd_store_argv_init(&a, (int)cnt + 1);
        dd_store_argv_add_str(&a, "MGET");
        for (size_t i = 0; i < cnt; i++) {
            char *k = buf + used;
            size_t len =
                dd_store_key_write(k, st->prefix, kind, id_at(ids, base + i));

            used += len + 1;
            dd_store_argv_add(&a, k, len);
        }
        failed = dd_store_cmd_append(st, &a) != DD_OK;
        dd_store_argv_close(&a);
        dd_free(buf);
    }
    return failed ? DD_ERR : DD_OK;
}

static const char *load_request_id(const void *loads, size_t i) {
    return ((const dd_store_load_t *)loads)[i].request_id;
}

static const char *key_at(const void *keys, size_t i) {
    return ((const char *const *)keys)[i];
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
    if (mget && !failed)
        failed |=
            append_mget(st, "result:", loads, load_request_id, n) != DD_OK;
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
    if (dd_store_cmd_sent(st, append_mget(st, "", keys, key_at, n) != DD_OK,
                          errstr, errstr_size) != DD_OK)
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
