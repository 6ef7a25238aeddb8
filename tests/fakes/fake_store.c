/* SPDX-License-Identifier: MIT */
/*
 * fake_store: an in-memory implementation of exactly the store.h API, for
 * unit tests (see fake_store.h for the controls). Linear lists: tests hold
 * a few dozen keys. The writes follow the real store's steps
 * (src/store_commit.c): reservation rounds, each a round trip, that SET NX
 * the next candidate of every open request and keep it when the key was
 * free or already holds the request's id; then a record round trip that
 * SETs result:{rid} NX, and one more that reads the stored bytes back for
 * the requests whose NX was refused. A crash can be injected after any of
 * these round trips (fake_store_crash_after()).
 *
 * DESIGN: the data (string keys, couriers and parcels with their stored
 * field strings), the poisoned keys, the failure controls and the counters
 * live in a "server" (struct fake_redis) that several stores may share, as
 * worker threads share one Redis: fake_store_share() makes every later
 * dd_store_new() (a pool's workers) connect to the same server. One mutex
 * per server serialises every store.h call and every control; it is a leaf
 * (nothing else is locked while it is held). The server is reference
 * counted by its stores and freed with the last one.
 */
#include "fake_store.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "store_int.h"
#include "util.h"

typedef struct kv {
    char *key;
    char *val;
    int ttl; /* s, -1 none */
    struct kv *next;
} kv_t;

/* A hash of four fields, as stored strings (NULL: field absent), read
 * through the real field checks (dd_store_parse_*_fields()). */
typedef struct courier {
    char *id;
    char *f[4]; /* lat, lon, vehicle, status */
    struct courier *next;
} courier_t;

typedef struct parcel {
    char *id;
    char *f[4]; /* pickup_lat, pickup_lon, dropoff_lat, dropoff_lon */
    struct parcel *next;
} parcel_t;

/* One fake Redis server, shared by the stores connected to it. */
typedef struct fake_redis {
    pthread_mutex_t lock; /* everything below; a leaf */
    int refs;             /* stores connected */
    kv_t *kvs;
    courier_t *couriers;
    parcel_t *parcels;
    kv_t *bad; /* poisoned keys: val = error text, ttl = 1 transient */
    int rt[FAKE_STORE_NCALLS];
    int fail_in;    /* fail when it reaches 1; 0 = disarmed */
    int fail_next;  /* round trips left to fail in a row */
    int down;       /* every round trip fails */
    int backoff_ms; /* dd_store_backoff_ms() after a failure */
    int fail_puts;
    int fail_gets;
    int crash_in;  /* crash after this write round trip; 0 = disarmed */
    int inject_in; /* before this write round trip, set inject_key */
    char *inject_key;
    char *inject_val;
    dd_store_stats_t stats;
} fake_redis_t;

struct dd_store {
    dd_store_conf_t conf; /* TTLs only; strings not kept */
    fake_redis_t *srv;    /* shared, reference counted */
    int failed;           /* the last round trip of this store failed */
};

/* The server dd_store_new() connects to (fake_store_share()). */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static fake_redis_t *shared_srv; /* protected by shared_lock */

static fake_redis_t *srv_lock(const dd_store_t *st) {
    pthread_mutex_lock(&st->srv->lock);
    return st->srv;
}

static void srv_unlock(const dd_store_t *st) {
    pthread_mutex_unlock(&st->srv->lock);
}

static kv_t *kv_find(const fake_redis_t *r, const char *key) {
    for (kv_t *e = r->kvs; e != NULL; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void kv_set(fake_redis_t *r, const char *key, const char *val, int ttl) {
    kv_t *e = kv_find(r, key);

    if (e == NULL) {
        e = dd_xcalloc(1, sizeof(*e));
        e->key = dd_xstrdup(key);
        e->next = r->kvs;
        r->kvs = e;
    }
    dd_free(e->val);
    e->val = dd_xstrdup(val);
    e->ttl = ttl;
}

static const char *kv_get2(const fake_redis_t *r, const char *kind,
                           const char *id) {
    char key[512];
    const kv_t *e;

    snprintf(key, sizeof(key), "%s%s", kind, id);
    e = kv_find(r, key);
    return e ? e->val : NULL;
}

static void kv_set2(fake_redis_t *r, const char *kind, const char *id,
                    const char *val, int ttl) {
    char key[512];

    snprintf(key, sizeof(key), "%s%s", kind, id);
    kv_set(r, key, val, ttl);
}

static void kv_free_list(kv_t *e) {
    while (e != NULL) {
        kv_t *next = e->next;
        dd_free(e->key);
        dd_free(e->val);
        dd_free(e);
        e = next;
    }
}

/* The poisoned entry of kind + id, or NULL. */
static const kv_t *bad_find(const fake_redis_t *r, const char *kind,
                            const char *id) {
    char key[512];

    snprintf(key, sizeof(key), "%s%s", kind, id);
    for (const kv_t *e = r->bad; e != NULL; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* Checks one key of a call: a transient poison fails the whole call
 * (*transient, errstr); a data poison is written to text once (*data). */
static void bad_check(const fake_redis_t *r, const char *cmd, const char *kind,
                      const char *id, int *transient, int *data, char *text,
                      size_t text_size, char *errstr, size_t errstr_size) {
    const kv_t *e = bad_find(r, kind, id);

    if (e == NULL)
        return;
    if (e->ttl == 1) {
        if (!*transient)
            dd_set_error(errstr, errstr_size, "redis %s %s: %s", cmd, e->key,
                         e->val);
        *transient = 1;
    } else if (!*data) {
        dd_set_error(text, text_size, "redis %s %s: %s", cmd, e->key, e->val);
        *data = 1;
    }
}

/* One round trip of a call type; DD_ERR (with no effect) when a failure is
 * due. Failures that concern the connection are decided here; a fault of
 * one key (a poisoned key, see bad_check()) belongs where the calls below
 * read or write that key. */
static int round_trip(dd_store_t *st, fake_redis_t *r, fake_store_call_t call,
                      char *errstr, size_t errstr_size) {
    const char *why = NULL;

    r->rt[call]++;
    r->stats.round_trips++;
    if (r->down)
        why = "fake redis: down";
    else if (r->fail_next > 0 && r->fail_next-- > 0)
        why = "fake redis: injected failure";
    else if (r->fail_in > 0 && --r->fail_in == 0)
        why = "fake redis: injected failure";
    st->failed = why != NULL;
    if (why == NULL)
        return DD_OK;
    r->stats.io_errors++;
    dd_set_error(errstr, errstr_size, "%s", why);
    return DD_ERR;
}

static fake_redis_t *srv_new(void) {
    fake_redis_t *r = dd_xcalloc(1, sizeof(*r));

    pthread_mutex_init(&r->lock, NULL);
    return r;
}

static void srv_free(fake_redis_t *r) {
    kv_free_list(r->kvs);
    kv_free_list(r->bad);
    dd_free(r->inject_key);
    dd_free(r->inject_val);
    while (r->couriers != NULL) {
        courier_t *c = r->couriers;
        r->couriers = c->next;
        dd_free(c->id);
        for (int i = 0; i < 4; i++)
            dd_free(c->f[i]);
        dd_free(c);
    }
    while (r->parcels != NULL) {
        parcel_t *p = r->parcels;
        r->parcels = p->next;
        dd_free(p->id);
        for (int i = 0; i < 4; i++)
            dd_free(p->f[i]);
        dd_free(p);
    }
    pthread_mutex_destroy(&r->lock);
    dd_free(r);
}

/*----- store.h -----*/

dd_store_t *dd_store_new(const dd_store_conf_t *conf, char *errstr,
                         size_t errstr_size) {
    dd_store_t *st;

    if (conf->eta_ttl_s <= 0 || conf->reservation_ttl_s <= 0 ||
        conf->idempotency_ttl_s <= 0) {
        dd_set_error(errstr, errstr_size, "store: TTLs must be > 0 s");
        return NULL;
    }
    st = dd_xcalloc(1, sizeof(*st));
    st->conf.eta_ttl_s = conf->eta_ttl_s;
    st->conf.reservation_ttl_s = conf->reservation_ttl_s;
    st->conf.idempotency_ttl_s = conf->idempotency_ttl_s;
    pthread_mutex_lock(&shared_lock);
    st->srv = shared_srv != NULL ? shared_srv : srv_new();
    pthread_mutex_lock(&st->srv->lock);
    st->srv->refs++;
    pthread_mutex_unlock(&st->srv->lock);
    pthread_mutex_unlock(&shared_lock);
    return st;
}

void dd_store_destroy(dd_store_t *st) {
    int last;

    if (st == NULL)
        return;
    pthread_mutex_lock(&shared_lock);
    last = --srv_lock(st)->refs == 0;
    srv_unlock(st);
    if (last && shared_srv == st->srv)
        shared_srv = NULL;
    pthread_mutex_unlock(&shared_lock);
    if (last)
        srv_free(st->srv);
    dd_free(st);
}

int dd_store_ping(dd_store_t *st, char *errstr, size_t errstr_size) {
    fake_redis_t *r = srv_lock(st);
    int rc = round_trip(st, r, FAKE_STORE_PING, errstr, errstr_size);

    srv_unlock(st);
    return rc;
}

int dd_store_backoff_ms(dd_store_t *st) {
    int ms = st->failed ? srv_lock(st)->backoff_ms : 0;

    if (st->failed)
        srv_unlock(st);
    return ms;
}

void dd_store_get_stats(const dd_store_t *st, dd_store_stats_t *out) {
    *out = srv_lock(st)->stats;
    srv_unlock(st);
}

void dd_store_load_clear(dd_store_load_t *load) {
    dd_free(load->ledger);
    load->ledger = NULL;
    load->ledger_len = 0;
    memset(&load->parcel, 0, sizeof(load->parcel));
    load->data_error = 0;
    load->error[0] = '\0';
}

static courier_t *find_courier(const fake_redis_t *r, const char *id) {
    for (courier_t *c = r->couriers; c != NULL; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

static parcel_t *find_parcel(const fake_redis_t *r, const char *id) {
    for (parcel_t *p = r->parcels; p != NULL; p = p->next)
        if (strcmp(p->id, id) == 0)
            return p;
    return NULL;
}

/* The HMGET view of four stored fields. */
static void to_fields(char *const v[4], dd_store_field_t f[4]) {
    for (int i = 0; i < 4; i++) {
        f[i].s = v[i];
        f[i].len = v[i] != NULL ? strlen(v[i]) : 0;
    }
}

/* Checks the keys of every load for poison; 1 when a transient one fails
 * the whole call (errstr set). */
static int load_poisoned(const fake_redis_t *r, dd_store_load_t *loads,
                         size_t n, char *errstr, size_t errstr_size) {
    int transient = 0;

    for (size_t i = 0; i < n; i++) {
        dd_store_load_t *l = &loads[i];
        bad_check(r, "GET", "result:", l->request_id, &transient,
                  &l->data_error, l->error, sizeof(l->error), errstr,
                  errstr_size);
        if (l->parcel_id != NULL)
            bad_check(r, "HMGET", "parcel:", l->parcel_id, &transient,
                      &l->data_error, l->error, sizeof(l->error), errstr,
                      errstr_size);
        for (size_t j = 0; j < l->ncouriers; j++)
            bad_check(r, "HMGET", "courier:", l->courier_ids[j], &transient,
                      &l->data_error, l->error, sizeof(l->error), errstr,
                      errstr_size);
    }
    return transient;
}

static void load_one(fake_redis_t *r, dd_store_load_t *l) {
    const char *led = kv_get2(r, "result:", l->request_id);

    r->stats.commands++;
    if (l->data_error) {
        r->stats.data_errors++;
        for (size_t j = 0; j < l->ncouriers; j++)
            memset(&l->couriers[j], 0, sizeof(l->couriers[j]));
        return;
    }
    if (led != NULL) {
        l->ledger = dd_xstrdup(led);
        l->ledger_len = strlen(led);
    }
    if (l->parcel_id != NULL) {
        const parcel_t *p = find_parcel(r, l->parcel_id);
        r->stats.commands++;
        if (p != NULL) {
            dd_store_field_t f[4];
            to_fields(p->f, f);
            dd_store_parse_parcel_fields(f, &l->parcel);
        }
    }
    for (size_t j = 0; j < l->ncouriers; j++) {
        const courier_t *c = find_courier(r, l->courier_ids[j]);
        dd_store_courier_t *co = &l->couriers[j];
        r->stats.commands++;
        memset(co, 0, sizeof(*co));
        if (c != NULL) {
            dd_store_field_t f[4];
            to_fields(c->f, f);
            dd_store_parse_courier_fields(f, co);
        }
    }
}

int dd_store_load(dd_store_t *st, dd_store_load_t *loads, size_t n,
                  char *errstr, size_t errstr_size) {
    fake_redis_t *r;

    for (size_t i = 0; i < n; i++) {
        dd_store_load_t *l = &loads[i];
        l->ledger = NULL;
        l->ledger_len = 0;
        memset(&l->parcel, 0, sizeof(l->parcel));
        l->data_error = 0;
        l->error[0] = '\0';
    }
    if (n == 0)
        return DD_OK;
    r = srv_lock(st);
    if (round_trip(st, r, FAKE_STORE_LOAD, errstr, errstr_size) != DD_OK) {
        srv_unlock(st);
        return DD_ERR;
    }
    if (load_poisoned(r, loads, n, errstr, errstr_size)) {
        for (size_t i = 0; i < n; i++)
            dd_store_load_clear(&loads[i]);
        r->stats.reply_errors++;
        srv_unlock(st);
        return DD_ERR;
    }
    for (size_t i = 0; i < n; i++)
        load_one(r, &loads[i]);
    srv_unlock(st);
    return DD_OK;
}

int dd_store_eta_get(dd_store_t *st, const char *const *keys, size_t n,
                     int64_t *secs_out, char *errstr, size_t errstr_size) {
    fake_redis_t *r;

    if (n == 0)
        return DD_OK;
    r = srv_lock(st);
    if (round_trip(st, r, FAKE_STORE_ETA_GET, errstr, errstr_size) != DD_OK) {
        srv_unlock(st);
        return DD_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        const kv_t *e = kv_find(r, keys[i]);
        long long v;
        int used = 0;

        r->stats.commands++;
        if (!r->fail_gets && e == NULL) {
            secs_out[i] = DD_STORE_ETA_MISS;
            r->stats.eta_misses++;
        } else if (!r->fail_gets && sscanf(e->val, "%lld%n", &v, &used) == 1 &&
                   v >= 0 && e->val[used] == '\0') {
            secs_out[i] = v;
            r->stats.eta_hits++;
        } else {
            /* Injected error, or a value the store did not write. */
            secs_out[i] = DD_STORE_ETA_ERROR;
            r->stats.eta_errors++;
        }
    }
    srv_unlock(st);
    return DD_OK;
}

/* Before a write round trip: another client's write, when one is due. */
static void inject_due(fake_redis_t *r) {
    if (r->inject_in <= 0 || --r->inject_in > 0)
        return;
    kv_set(r, r->inject_key, r->inject_val, -1);
}

/* After a write round trip ran on the server: DD_ERR when the injected
 * crash is due (the process died before it read the replies). */
static int crash_due(dd_store_t *st, fake_redis_t *r, char *errstr,
                     size_t errstr_size) {
    if (r->crash_in <= 0 || --r->crash_in > 0)
        return DD_OK;
    st->failed = 1;
    r->stats.io_errors++;
    dd_set_error(errstr, errstr_size, "fake redis: crashed after a write");
    return DD_ERR;
}

/* One reservation round: every open request's candidate next[i] is SET NX
 * and kept when free or already its own. DD_ERR when the round failed
 * (nothing done) or crashed (done). */
static int reserve_round(dd_store_t *st, fake_redis_t *r,
                         dd_store_reserve_t *rs, size_t n, size_t *next,
                         int *open, char *errstr, size_t errstr_size) {
    int transient = 0;

    if (round_trip(st, r, FAKE_STORE_RESERVE, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    inject_due(r);
    r->stats.reserve_rounds++;
    for (size_t i = 0; i < n; i++)
        if (open[i]) {
            const kv_t *e =
                bad_find(r, "reservation:", rs[i].candidate_ids[next[i]]);
            transient |= e != NULL && e->ttl == 1;
        }
    if (transient) {
        r->stats.reply_errors++;
        dd_set_error(errstr, errstr_size, "fake redis: transient error");
        return DD_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        dd_store_reserve_t *rv = &rs[i];
        const char *c, *cur;
        int data = 0;

        if (!open[i])
            continue;
        c = rv->candidate_ids[next[i]];
        r->stats.commands += 2;
        bad_check(r, "GET", "reservation:", c, &transient, &data, rv->error,
                  sizeof(rv->error), errstr, errstr_size);
        if (data) {
            rv->data_error = 1;
            r->stats.data_errors++;
            open[i] = 0;
            continue;
        }
        cur = kv_get2(r, "reservation:", c);
        if (cur == NULL)
            kv_set2(r, "reservation:", c, rv->request_id,
                    st->conf.reservation_ttl_s);
        if (cur == NULL || strcmp(cur, rv->request_id) == 0) {
            rv->chosen = (int)next[i];
            open[i] = 0;
        } else if (++next[i] == rv->ncandidates) {
            open[i] = 0;
        }
    }
    return crash_due(st, r, errstr, errstr_size);
}

int dd_store_reserve(dd_store_t *st, dd_store_reserve_t *rs, size_t n,
                     char *errstr, size_t errstr_size) {
    size_t *next;
    int *open, nopen = 0, rc = DD_OK;
    fake_redis_t *r;

    for (size_t i = 0; i < n; i++) {
        rs[i].chosen = DD_STORE_RESERVE_NONE;
        rs[i].data_error = 0;
        rs[i].error[0] = '\0';
        nopen += rs[i].ncandidates > 0;
    }
    if (nopen == 0)
        return DD_OK;
    next = dd_xcalloc(n, sizeof(*next));
    open = dd_xcalloc(n, sizeof(*open));
    for (size_t i = 0; i < n; i++)
        open[i] = rs[i].ncandidates > 0;
    r = srv_lock(st);
    while (nopen > 0 && rc == DD_OK) {
        rc = reserve_round(st, r, rs, n, next, open, errstr, errstr_size);
        nopen = 0;
        for (size_t i = 0; i < n; i++)
            nopen += open[i];
    }
    srv_unlock(st);
    if (rc != DD_OK)
        for (size_t i = 0; i < n; i++)
            rs[i].chosen = DD_STORE_RESERVE_NONE;
    dd_free(next);
    dd_free(open);
    return rc;
}

void dd_store_record_clear(dd_store_record_t *rec) {
    dd_free(rec->stored);
    rec->stored = NULL;
    rec->stored_len = 0;
    rec->data_error = 0;
    rec->error[0] = '\0';
}

/* The record round trip: ETA puts and SET result:{rid} NX; refused[i] set
 * where the NX was refused. DD_ERR when it failed (nothing done) or
 * crashed (done). */
static int record_round(dd_store_t *st, fake_redis_t *r,
                        dd_store_eta_put_t *puts, size_t nputs,
                        dd_store_record_t *recs, size_t n, int *refused,
                        int *put_errors, char *errstr, size_t errstr_size) {
    int transient = 0;

    if (round_trip(st, r, FAKE_STORE_RECORD, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    inject_due(r);
    for (size_t i = 0; i < n; i++) {
        const kv_t *e = bad_find(r, "result:", recs[i].request_id);
        transient |= e != NULL && e->ttl == 1;
    }
    if (transient) {
        r->stats.reply_errors++;
        dd_set_error(errstr, errstr_size, "fake redis: transient error");
        return DD_ERR;
    }
    for (size_t i = 0; i < nputs; i++) {
        char secs[24];
        r->stats.commands++;
        if (r->fail_puts) {
            puts[i].error = 1;
            (*put_errors)++;
            continue;
        }
        snprintf(secs, sizeof(secs), "%lld", (long long)puts[i].secs);
        kv_set(r, puts[i].key, secs, st->conf.eta_ttl_s);
    }
    for (size_t i = 0; i < n; i++) {
        r->stats.commands++;
        /* SET NX on a key of another type is refused like on a string. */
        refused[i] = kv_get2(r, "result:", recs[i].request_id) != NULL ||
                     bad_find(r, "result:", recs[i].request_id) != NULL;
        if (!refused[i])
            kv_set2(r, "result:", recs[i].request_id, recs[i].json,
                    st->conf.idempotency_ttl_s);
    }
    return crash_due(st, r, errstr, errstr_size);
}

/* The follow-up round trip: GET result:{rid} where the NX was refused. */
static int record_read(dd_store_t *st, fake_redis_t *r, dd_store_record_t *recs,
                       size_t n, const int *refused, char *errstr,
                       size_t errstr_size) {
    if (round_trip(st, r, FAKE_STORE_RECORD, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    inject_due(r);
    for (size_t i = 0; i < n; i++) {
        int transient = 0;
        const char *v;

        if (!refused[i])
            continue;
        r->stats.commands++;
        r->stats.record_reads++;
        bad_check(r, "GET", "result:", recs[i].request_id, &transient,
                  &recs[i].data_error, recs[i].error, sizeof(recs[i].error),
                  errstr, errstr_size);
        if (recs[i].data_error) {
            r->stats.data_errors++;
            continue;
        }
        v = kv_get2(r, "result:", recs[i].request_id);
        recs[i].stored = dd_xstrdup(v);
        recs[i].stored_len = strlen(v);
    }
    return crash_due(st, r, errstr, errstr_size);
}

int dd_store_record(dd_store_t *st, dd_store_eta_put_t *puts, size_t nputs,
                    dd_store_record_t *recs, size_t n, int *eta_put_errors,
                    char *errstr, size_t errstr_size) {
    int put_errors = 0, nrefused = 0, rc;
    int *refused;
    fake_redis_t *r;

    for (size_t i = 0; i < n; i++) {
        recs[i].stored = NULL;
        recs[i].stored_len = 0;
        recs[i].data_error = 0;
        recs[i].error[0] = '\0';
    }
    for (size_t i = 0; i < nputs; i++)
        puts[i].error = 0;
    if (eta_put_errors != NULL)
        *eta_put_errors = 0;
    if (nputs == 0 && n == 0)
        return DD_OK;
    refused = dd_xcalloc(n ? n : 1, sizeof(*refused));
    r = srv_lock(st);
    rc = record_round(st, r, puts, nputs, recs, n, refused, &put_errors, errstr,
                      errstr_size);
    for (size_t i = 0; i < n; i++)
        nrefused += refused[i];
    if (rc == DD_OK && nrefused > 0)
        rc = record_read(st, r, recs, n, refused, errstr, errstr_size);
    if (rc == DD_OK)
        r->stats.eta_errors += (uint64_t)put_errors;
    srv_unlock(st);
    dd_free(refused);
    if (rc != DD_OK) {
        for (size_t i = 0; i < n; i++)
            dd_store_record_clear(&recs[i]);
        return DD_ERR;
    }
    if (eta_put_errors != NULL)
        *eta_put_errors = put_errors;
    return DD_OK;
}

/*----- Controls -----*/

dd_store_t *fake_store_new(void) {
    dd_store_conf_t conf;

    memset(&conf, 0, sizeof(conf));
    conf.host = "fake";
    conf.port = 6379;
    conf.eta_ttl_s = 60;
    conf.reservation_ttl_s = 30;
    conf.idempotency_ttl_s = 3600;
    return dd_store_new(&conf, NULL, 0);
}

void fake_store_share(dd_store_t *st) {
    pthread_mutex_lock(&shared_lock);
    shared_srv = st != NULL ? st->srv : NULL;
    pthread_mutex_unlock(&shared_lock);
}

/* Replaces four stored fields by copies of v (NULL: absent). */
static void set_fields(char *f[4], const char *const v[4]) {
    for (int i = 0; i < 4; i++) {
        dd_free(f[i]);
        f[i] = v[i] != NULL ? dd_xstrdup(v[i]) : NULL;
    }
}

void fake_store_add_courier_fields(dd_store_t *st, const char *id,
                                   const char *lat, const char *lon,
                                   const char *vehicle, const char *status) {
    const char *v[4] = {lat, lon, vehicle, status};
    fake_redis_t *r = srv_lock(st);
    courier_t *c = find_courier(r, id);

    if (c == NULL) {
        c = dd_xcalloc(1, sizeof(*c));
        c->id = dd_xstrdup(id);
        c->next = r->couriers;
        r->couriers = c;
    }
    set_fields(c->f, v);
    srv_unlock(st);
}

void fake_store_add_courier(dd_store_t *st, const char *id, double lat,
                            double lon, const char *vehicle,
                            const char *status) {
    char a[32], b[32];

    /* %.17g reads back as the same double. */
    snprintf(a, sizeof(a), "%.17g", lat);
    snprintf(b, sizeof(b), "%.17g", lon);
    fake_store_add_courier_fields(st, id, a, b, vehicle, status);
}

void fake_store_add_parcel_fields(dd_store_t *st, const char *id,
                                  const char *pickup_lat,
                                  const char *pickup_lon,
                                  const char *dropoff_lat,
                                  const char *dropoff_lon) {
    const char *v[4] = {pickup_lat, pickup_lon, dropoff_lat, dropoff_lon};
    fake_redis_t *r = srv_lock(st);
    parcel_t *p = find_parcel(r, id);

    if (p == NULL) {
        p = dd_xcalloc(1, sizeof(*p));
        p->id = dd_xstrdup(id);
        p->next = r->parcels;
        r->parcels = p;
    }
    set_fields(p->f, v);
    srv_unlock(st);
}

void fake_store_add_parcel(dd_store_t *st, const char *id, double pickup_lat,
                           double pickup_lon, double dropoff_lat,
                           double dropoff_lon) {
    char v[4][32];

    snprintf(v[0], sizeof(v[0]), "%.17g", pickup_lat);
    snprintf(v[1], sizeof(v[1]), "%.17g", pickup_lon);
    snprintf(v[2], sizeof(v[2]), "%.17g", dropoff_lat);
    snprintf(v[3], sizeof(v[3]), "%.17g", dropoff_lon);
    fake_store_add_parcel_fields(st, id, v[0], v[1], v[2], v[3]);
}

void fake_store_set(dd_store_t *st, const char *key, const char *value) {
    kv_set(srv_lock(st), key, value, -1);
    srv_unlock(st);
}

const char *fake_store_get(const dd_store_t *st, const char *key) {
    const kv_t *e = kv_find(srv_lock(st), key);

    srv_unlock(st);
    return e ? e->val : NULL;
}

int fake_store_ttl(const dd_store_t *st, const char *key) {
    const kv_t *e = kv_find(srv_lock(st), key);
    int ttl = e ? e->ttl : -1;

    srv_unlock(st);
    return ttl;
}

size_t fake_store_count(const dd_store_t *st, const char *prefix) {
    size_t n = 0, len = strlen(prefix);

    for (const kv_t *e = srv_lock(st)->kvs; e != NULL; e = e->next)
        if (strncmp(e->key, prefix, len) == 0)
            n++;
    srv_unlock(st);
    return n;
}

const char *fake_store_reservation(const dd_store_t *st,
                                   const char *courier_id) {
    const char *v = kv_get2(srv_lock(st), "reservation:", courier_id);

    srv_unlock(st);
    return v;
}

const char *fake_store_ledger(const dd_store_t *st, const char *request_id) {
    const char *v = kv_get2(srv_lock(st), "result:", request_id);

    srv_unlock(st);
    return v;
}

int fake_store_round_trips(const dd_store_t *st, fake_store_call_t call) {
    int n = srv_lock(st)->rt[call];

    srv_unlock(st);
    return n;
}

int fake_store_total_round_trips(const dd_store_t *st) {
    const fake_redis_t *r = srv_lock(st);
    int n = 0;

    for (int i = 0; i < FAKE_STORE_NCALLS; i++)
        n += r->rt[i];
    srv_unlock(st);
    return n;
}

void fake_store_reset_counts(dd_store_t *st) {
    memset(srv_lock(st)->rt, 0, sizeof(st->srv->rt));
    srv_unlock(st);
}

void fake_store_fail_nth(dd_store_t *st, int nth) {
    srv_lock(st)->fail_in = nth > 0 ? nth : 0;
    srv_unlock(st);
}

void fake_store_fail_next(dd_store_t *st, int n) {
    srv_lock(st)->fail_next = n > 0 ? n : 0;
    srv_unlock(st);
}

void fake_store_set_down(dd_store_t *st, int down) {
    srv_lock(st)->down = down;
    srv_unlock(st);
}

void fake_store_set_backoff_ms(dd_store_t *st, int ms) {
    srv_lock(st)->backoff_ms = ms > 0 ? ms : 0;
    srv_unlock(st);
}

void fake_store_crash_after(dd_store_t *st, int nth) {
    srv_lock(st)->crash_in = nth > 0 ? nth : 0;
    srv_unlock(st);
}

void fake_store_set_before_write(dd_store_t *st, int nth, const char *key,
                                 const char *value) {
    fake_redis_t *r = srv_lock(st);

    dd_free(r->inject_key);
    dd_free(r->inject_val);
    r->inject_key = dd_xstrdup(key);
    r->inject_val = dd_xstrdup(value);
    r->inject_in = nth > 0 ? nth : 0;
    srv_unlock(st);
}

void fake_store_fail_eta_puts(dd_store_t *st, int on) {
    srv_lock(st)->fail_puts = on;
    srv_unlock(st);
}

void fake_store_fail_eta_gets(dd_store_t *st, int on) {
    srv_lock(st)->fail_gets = on;
    srv_unlock(st);
}

void fake_store_poison(dd_store_t *st, const char *key, const char *text,
                       int transient) {
    kv_t *e = dd_xcalloc(1, sizeof(*e));
    fake_redis_t *r;

    e->key = dd_xstrdup(key);
    e->val = dd_xstrdup(text);
    e->ttl = transient ? 1 : 0;
    r = srv_lock(st);
    e->next = r->bad;
    r->bad = e;
    srv_unlock(st);
}
