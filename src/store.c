/* SPDX-License-Identifier: MIT */
/*
 * store: Redis over hiredis (DESIGN.md section 3). Batched, pipelined
 * lookups, the ETA cache, reservations and result records, and the
 * reconnect policy.
 *
 * DESIGN: one blocking hiredis context per store, used by one thread (a
 * redisContext is not thread-safe). Every batch call appends all of its
 * commands with redisAppendCommandArgv() and then reads exactly as many
 * replies with redisGetReply(): one round trip. A NULL reply, or
 * redisGetReply() failing, means the context is dead (hiredis sets c->err;
 * a timeout shows as an I/O error "Resource temporarily unavailable"): it
 * is freed, the call returns DD_ERR and the next call reconnects after the
 * backoff. Connecting sends AUTH, SELECT, CLIENT SETNAME and SCRIPT LOAD in
 * one pipeline.
 *
 * The reserve-and-record script runs atomically on the server, so two
 * workers (or two dispatchd instances) racing for a courier reserve it
 * once, and a redelivered request gets its stored result back unchanged.
 * It assumes a single Redis (not Cluster): its keys span hash slots.
 */
#include "store.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "util.h"

#define KEY_MAX        (DD_STORE_PREFIX_MAX + 160) /* prefix + kind + id */
#define SHA_SIZE       41                          /* 40 hex + NUL */
#define CANDIDATES_MAX 64

/*
 * KEYS[1] = result:{rid}, KEYS[1+i] = reservation:{candidate i};
 * ARGV[1] = rid, ARGV[2] = reservation TTL, ARGV[3] = result TTL,
 * ARGV[4] = fallback JSON, ARGV[4+i] = JSON for candidate i (1-based).
 * Returns {index, bytes}: -2 for an existing result, 0-based candidate
 * index for a reservation taken (or already ours), -1 for the fallback.
 */
static const char reserve_lua[] =
    "local r = redis.call('GET', KEYS[1])\n"
    "if r then return {-2, r} end\n"
    "local rid = ARGV[1]\n"
    "for i = 2, #KEYS do\n"
    "  local cur = redis.call('GET', KEYS[i])\n"
    "  if not cur then\n"
    "    redis.call('SET', KEYS[i], rid, 'EX', ARGV[2])\n"
    "  end\n"
    "  if (not cur) or cur == rid then\n"
    "    local res = ARGV[3 + i]\n"
    "    redis.call('SET', KEYS[1], res, 'EX', ARGV[3])\n"
    "    return {i - 2, res}\n"
    "  end\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[4], 'EX', ARGV[3])\n"
    "return {-1, ARGV[4]}\n";

struct dd_store {
    redisContext *c; /* NULL when not connected */
    char *host;      /* owned */
    int port;
    char *unix_path; /* owned, NULL for TCP */
    char *password;  /* owned, NULL for none */
    int db;
    int timeout_ms;                   /* ms */
    char prefix[DD_STORE_PREFIX_MAX]; /* key prefix */
    char eta_ttl[16];                 /* seconds, as a decimal string */
    char reservation_ttl[16];         /* seconds, as a decimal string */
    char idempotency_ttl[16];         /* seconds, as a decimal string */
    char sha[SHA_SIZE];               /* SHA1 of reserve_lua on this server */
    int failures;                     /* consecutive failed attempts */
    int64_t next_attempt_ms;          /* monotonic; no connect before */
    uint64_t rng;                     /* xorshift64 state for jitter */
    dd_store_stats_t stats;
};

/* A growable argv for redisAppendCommandArgv() whose keys are built in
 * owned buffers (values are borrowed). */
typedef struct argv_buf {
    const char **argv;
    size_t *argvlen;
    char **owned; /* per slot: owned copy to free, or NULL */
    int argc;
    int cap;
} argv_buf_t;

static void argv_init(argv_buf_t *a, int cap) {
    a->argv = dd_xcalloc((size_t)cap, sizeof(*a->argv));
    a->argvlen = dd_xcalloc((size_t)cap, sizeof(*a->argvlen));
    a->owned = dd_xcalloc((size_t)cap, sizeof(*a->owned));
    a->argc = 0;
    a->cap = cap;
}

static void argv_reset(argv_buf_t *a) {
    for (int i = 0; i < a->argc; i++) {
        dd_free(a->owned[i]);
        a->owned[i] = NULL;
    }
    a->argc = 0;
}

static void argv_close(argv_buf_t *a) {
    argv_reset(a);
    dd_free(a->argv);
    dd_free(a->argvlen);
    dd_free(a->owned);
}

/* Borrowed argument: must outlive the append. */
static void argv_add(argv_buf_t *a, const char *s, size_t len) {
    dd_assert(a->argc < a->cap);
    a->argv[a->argc] = s;
    a->argvlen[a->argc] = len;
    a->argc++;
}

static void argv_add_str(argv_buf_t *a, const char *s) {
    argv_add(a, s, strlen(s));
}

/* Owned argument: prefix + kind + id, freed by argv_reset(). */
static void argv_add_key(argv_buf_t *a, const dd_store_t *st, const char *kind,
                         const char *id) {
    size_t lp = strlen(st->prefix), lk = strlen(kind), li = strlen(id);
    char *k = dd_xmalloc(lp + lk + li + 1);

    memcpy(k, st->prefix, lp);
    memcpy(k + lp, kind, lk);
    memcpy(k + lp + lk, id, li);
    k[lp + lk + li] = '\0';
    dd_assert(a->argc < a->cap);
    a->owned[a->argc] = k;
    argv_add(a, k, lp + lk + li);
}

/* Appends the command held in a, then empties a. The append only buffers
 * (no I/O), so it fails only on out of memory. */
static int argv_append(dd_store_t *st, argv_buf_t *a) {
    int rc = redisAppendCommandArgv(st->c, a->argc, a->argv, a->argvlen);
    argv_reset(a);
    st->stats.commands++;
    return rc == REDIS_OK ? DD_OK : DD_ERR;
}

static uint64_t rng_next(dd_store_t *st) {
    uint64_t x = st->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    st->rng = x;
    return x;
}

/* Delay before attempt number failures + 1: none after the first failure
 * (a connection that worked gets one immediate retry), then 50 ms doubling
 * to 5 s, each with equal jitter in [d/2, d]. */
static int backoff_delay_ms(dd_store_t *st) {
    int64_t d = DD_STORE_BACKOFF_MIN_MS;

    if (st->failures <= 1)
        return 0;
    for (int i = 2; i < st->failures && d < DD_STORE_BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > DD_STORE_BACKOFF_MAX_MS)
        d = DD_STORE_BACKOFF_MAX_MS;
    return (int)(d / 2 + (int64_t)(rng_next(st) % (uint64_t)(d / 2 + 1)));
}

/* Free the context and schedule the next attempt. Also used after an error
 * reply failed a batch: the next call then waits for the backoff too, so a
 * batch that keeps failing (READONLY, OOM, a WRONGTYPE result key) is
 * retried at a falling rate instead of in a hot loop. */
static void drop_conn(dd_store_t *st) {
    redisFree(st->c);
    st->c = NULL;
    st->failures++;
    st->next_attempt_ms = dd_now_ms() + backoff_delay_ms(st);
}

/* The context is dead or unusable: drop it. errstr gets
 * "redis <what>: <hiredis error>". */
static void conn_lost(dd_store_t *st, const char *what, char *errstr,
                      size_t errstr_size) {
    const char *why = "out of memory";

    if (st->c != NULL && st->c->err)
        why = st->c->errstr;
    else if (st->c != NULL)
        why = "connection closed";
    dd_set_error(errstr, errstr_size, "redis %s: %s", what, why);
    drop_conn(st);
}

static void set_timeval(struct timeval *tv, int ms) {
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

/* AUTH, SELECT, CLIENT SETNAME and SCRIPT LOAD in one pipeline on a fresh
 * context. An error reply (wrong password, bad db) fails the connect like an
 * I/O error does; the password never goes into errstr. */
static int handshake(dd_store_t *st, char *errstr, size_t errstr_size) {
    const char *argv[3];
    size_t argvlen[3];
    char dbs[16];
    int nreplies = 0, rc = DD_OK;
    const char *step[4];

    if (st->password != NULL) {
        argv[0] = "AUTH";
        argv[1] = st->password;
        argvlen[0] = 4;
        argvlen[1] = strlen(st->password);
        redisAppendCommandArgv(st->c, 2, argv, argvlen);
        step[nreplies++] = "AUTH";
    }
    if (st->db > 0) {
        snprintf(dbs, sizeof(dbs), "%d", st->db);
        argv[0] = "SELECT";
        argv[1] = dbs;
        argvlen[0] = 6;
        argvlen[1] = strlen(dbs);
        redisAppendCommandArgv(st->c, 2, argv, argvlen);
        step[nreplies++] = "SELECT";
    }
    /* A name makes dispatchd's connections easy to find in CLIENT LIST. */
    argv[0] = "CLIENT";
    argv[1] = "SETNAME";
    argv[2] = DD_STORE_CLIENT_NAME;
    argvlen[0] = 6;
    argvlen[1] = 7;
    argvlen[2] = strlen(DD_STORE_CLIENT_NAME);
    redisAppendCommandArgv(st->c, 3, argv, argvlen);
    step[nreplies++] = "CLIENT SETNAME";
    argv[0] = "SCRIPT";
    argv[1] = "LOAD";
    argv[2] = reserve_lua;
    argvlen[0] = 6;
    argvlen[1] = 4;
    argvlen[2] = sizeof(reserve_lua) - 1;
    redisAppendCommandArgv(st->c, 3, argv, argvlen);
    step[nreplies++] = "SCRIPT LOAD";

    for (int i = 0; i < nreplies; i++) {
        redisReply *r = NULL;
        if (redisGetReply(st->c, (void **)&r) != REDIS_OK || r == NULL)
            return DD_ERR; /* the caller reports c->errstr */
        if (r->type == REDIS_REPLY_ERROR && rc == DD_OK) {
            dd_set_error(errstr, errstr_size, "redis %s: %s", step[i], r->str);
            rc = DD_ERR;
        } else if (i == nreplies - 1 && rc == DD_OK) {
            if (r->type != REDIS_REPLY_STRING || r->len != SHA_SIZE - 1) {
                dd_set_error(errstr, errstr_size,
                             "redis SCRIPT LOAD: unexpected reply");
                rc = DD_ERR;
            } else {
                memcpy(st->sha, r->str, SHA_SIZE - 1);
                st->sha[SHA_SIZE - 1] = '\0';
            }
        }
        freeReplyObject(r);
    }
    return rc;
}

/* Connects when there is no context, unless the backoff says not yet. */
static int ensure_connected(dd_store_t *st, char *errstr, size_t errstr_size) {
    struct timeval tv;
    int64_t now = dd_now_ms();
    char hs_err[256] = "";

    if (st->c != NULL)
        return DD_OK;
    if (now < st->next_attempt_ms) {
        dd_set_error(errstr, errstr_size,
                     "redis unavailable: next connect attempt in %lld ms",
                     (long long)(st->next_attempt_ms - now));
        return DD_ERR;
    }
    set_timeval(&tv, st->timeout_ms);
    if (st->unix_path != NULL)
        st->c = redisConnectUnixWithTimeout(st->unix_path, tv);
    else
        st->c = redisConnectWithTimeout(st->host, st->port, tv);
    if (st->c == NULL || st->c->err)
        goto err;
    /* redisConnectWithTimeout() bounds only the connect; the socket
     * timeouts bound every later read and write. */
    if (redisSetTimeout(st->c, tv) != REDIS_OK)
        goto err;
    (void)redisEnableKeepAlive(st->c);
    if (handshake(st, hs_err, sizeof(hs_err)) != DD_OK)
        goto err;
    st->stats.connects++;
    return DD_OK;

err:
    st->stats.connect_errors++;
    if (hs_err[0] != '\0') {
        dd_set_error(errstr, errstr_size, "%s", hs_err);
        drop_conn(st);
    } else {
        char what[300];
        if (st->unix_path != NULL)
            snprintf(what, sizeof(what), "connect %s", st->unix_path);
        else
            snprintf(what, sizeof(what), "connect %s:%d", st->host, st->port);
        conn_lost(st, what, errstr, errstr_size);
    }
    return DD_ERR;
}

/* Reads one reply of a pipeline; on failure the context is lost. */
static int get_reply(dd_store_t *st, redisReply **r, char *errstr,
                     size_t errstr_size) {
    *r = NULL;
    if (redisGetReply(st->c, (void **)r) != REDIS_OK || *r == NULL) {
        st->stats.io_errors++;
        conn_lost(st, "read", errstr, errstr_size);
        return DD_ERR;
    }
    return DD_OK;
}

/* Strict parse of a whole reply string as a finite double. */
static int parse_double(const redisReply *r, double *out) {
    char buf[64], *end;
    double v;

    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len >= sizeof(buf))
        return DD_ERR;
    memcpy(buf, r->str, r->len);
    buf[r->len] = '\0';
    errno = 0;
    v = strtod(buf, &end);
    if (errno != 0 || *end != '\0' || end == buf || !isfinite(v))
        return DD_ERR;
    *out = v;
    return DD_OK;
}

/* Strict parse of a reply string as a non-negative decimal integer. */
static int parse_secs(const redisReply *r, int64_t *out) {
    int64_t v = 0;

    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 18)
        return DD_ERR;
    for (size_t i = 0; i < r->len; i++) {
        if (r->str[i] < '0' || r->str[i] > '9')
            return DD_ERR;
        v = v * 10 + (r->str[i] - '0');
    }
    *out = v;
    return DD_OK;
}

/* An HMGET reply for a hash read: an array of n elements, or WRONGTYPE
 * (bad data, reads as not found). Any other error fails the batch. */
static int check_hmget(dd_store_t *st, const redisReply *r, size_t n,
                       int *usable, char *errstr, size_t errstr_size) {
    *usable = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        st->stats.reply_errors++;
        if (strncmp(r->str, "WRONGTYPE", 9) == 0)
            return DD_OK;
        dd_set_error(errstr, errstr_size, "redis HMGET: %s", r->str);
        return DD_ERR;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        dd_set_error(errstr, errstr_size, "redis HMGET: unexpected reply");
        return DD_ERR;
    }
    *usable = 1;
    return DD_OK;
}

static void read_parcel(const redisReply *r, dd_store_parcel_t *p) {
    memset(p, 0, sizeof(*p));
    if (parse_double(r->element[0], &p->pickup_lat) == DD_OK &&
        parse_double(r->element[1], &p->pickup_lon) == DD_OK &&
        parse_double(r->element[2], &p->dropoff_lat) == DD_OK &&
        parse_double(r->element[3], &p->dropoff_lon) == DD_OK)
        p->found = 1;
    else
        memset(p, 0, sizeof(*p));
}

static void read_courier(const redisReply *r, dd_store_courier_t *co) {
    const redisReply *veh = r->element[2], *status = r->element[3];

    memset(co, 0, sizeof(*co));
    if (parse_double(r->element[0], &co->lat) != DD_OK ||
        parse_double(r->element[1], &co->lon) != DD_OK ||
        veh->type != REDIS_REPLY_STRING || status->type != REDIS_REPLY_STRING) {
        memset(co, 0, sizeof(*co));
        return;
    }
    /* A name that does not fit is no vehicle we know: leave it empty. */
    if (veh->len < sizeof(co->vehicle)) {
        memcpy(co->vehicle, veh->str, veh->len);
        co->vehicle[veh->len] = '\0';
    }
    co->available =
        status->len == 9 && memcmp(status->str, "available", 9) == 0;
    co->found = 1;
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
    dd_store_t *st;
    int use_unix = conf->unix_path != NULL && conf->unix_path[0] != '\0';
    const char *prefix = conf->prefix ? conf->prefix : "";

    if (!use_unix && (conf->host == NULL || conf->host[0] == '\0')) {
        dd_set_error(errstr, errstr_size, "store: no redis host");
        return NULL;
    }
    if (!use_unix && (conf->port < 1 || conf->port > 65535)) {
        dd_set_error(errstr, errstr_size, "store: redis port %d out of range",
                     conf->port);
        return NULL;
    }
    if (conf->db < 0) {
        dd_set_error(errstr, errstr_size, "store: redis db %d < 0", conf->db);
        return NULL;
    }
    if (strlen(prefix) >= DD_STORE_PREFIX_MAX) {
        dd_set_error(errstr, errstr_size, "store: key prefix longer than %d",
                     DD_STORE_PREFIX_MAX - 1);
        return NULL;
    }
    st = dd_xcalloc(1, sizeof(*st));
    if (ttl_str(st->eta_ttl, sizeof(st->eta_ttl), conf->eta_ttl_s, "eta ttl",
                errstr, errstr_size) != DD_OK ||
        ttl_str(st->reservation_ttl, sizeof(st->reservation_ttl),
                conf->reservation_ttl_s, "reservation ttl", errstr,
                errstr_size) != DD_OK ||
        ttl_str(st->idempotency_ttl, sizeof(st->idempotency_ttl),
                conf->idempotency_ttl_s, "idempotency ttl", errstr,
                errstr_size) != DD_OK) {
        dd_free(st);
        return NULL;
    }
    st->host = dd_xstrdup(use_unix ? "" : conf->host);
    st->port = conf->port;
    st->unix_path = use_unix ? dd_xstrdup(conf->unix_path) : NULL;
    st->password = (conf->password != NULL && conf->password[0] != '\0')
                       ? dd_xstrdup(conf->password)
                       : NULL;
    st->db = conf->db;
    st->timeout_ms =
        conf->timeout_ms > 0 ? conf->timeout_ms : DD_STORE_TIMEOUT_MS_DEFAULT;
    dd_strlcpy(st->prefix, prefix, sizeof(st->prefix));
    st->rng =
        (uint64_t)dd_now_us() ^ (uint64_t)(uintptr_t)st ^ 0x9e3779b97f4a7c15ULL;
    if (st->rng == 0)
        st->rng = 1;
    return st;
}

void dd_store_destroy(dd_store_t *st) {
    if (st == NULL)
        return;
    redisFree(st->c);
    dd_free(st->host);
    dd_free(st->unix_path);
    if (st->password != NULL) {
        memset(st->password, 0, strlen(st->password));
        dd_free(st->password);
    }
#ifndef DD_BUILD_release
    memset(st, 0xff, sizeof(*st));
#endif
    dd_free(st);
}

/*----- Connection -----*/

int dd_store_ping(dd_store_t *st, char *errstr, size_t errstr_size) {
    redisReply *r;

    if (ensure_connected(st, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    st->stats.round_trips++;
    st->stats.commands++;
    r = redisCommand(st->c, "PING");
    if (r == NULL) {
        st->stats.io_errors++;
        conn_lost(st, "PING", errstr, errstr_size);
        return DD_ERR;
    }
    if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0) {
        st->stats.reply_errors++;
        dd_set_error(errstr, errstr_size, "redis PING: %s",
                     r->type == REDIS_REPLY_ERROR ? r->str
                                                  : "unexpected reply");
        freeReplyObject(r);
        drop_conn(st); /* LOADING, NOAUTH...: not ready */
        return DD_ERR;
    }
    freeReplyObject(r);
    st->failures = 0;
    return DD_OK;
}

int dd_store_backoff_ms(dd_store_t *st) {
    int64_t left;

    if (st->c != NULL)
        return 0;
    left = st->next_attempt_ms - dd_now_ms();
    return left > 0 ? (int)left : 0;
}

void dd_store_get_stats(const dd_store_t *st, dd_store_stats_t *out) {
    *out = st->stats;
}

/*----- RT1: loads -----*/

void dd_store_load_clear(dd_store_load_t *load) {
    dd_free(load->ledger);
    load->ledger = NULL;
    load->ledger_len = 0;
    memset(&load->parcel, 0, sizeof(load->parcel));
}

static void loads_clear(dd_store_load_t *loads, size_t n) {
    for (size_t i = 0; i < n; i++)
        dd_store_load_clear(&loads[i]);
}

/* Reads the replies of one load, in the order they were appended. Returns
 * DD_ERR only when the context was lost (then nothing more can be read);
 * *failed is set for an error reply that fails the batch. */
static int read_load(dd_store_t *st, dd_store_load_t *l, int *failed,
                     char *errstr, size_t errstr_size) {
    redisReply *r;
    int usable;

    if (get_reply(st, &r, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    if (r->type == REDIS_REPLY_STRING) {
        l->ledger = dd_xstrndup(r->str, r->len);
        l->ledger_len = r->len;
    } else if (r->type != REDIS_REPLY_NIL && !*failed) {
        st->stats.reply_errors++;
        dd_set_error(errstr, errstr_size, "redis GET result: %s",
                     r->type == REDIS_REPLY_ERROR ? r->str
                                                  : "unexpected reply");
        *failed = 1;
    }
    freeReplyObject(r);

    if (l->parcel_id != NULL) {
        if (get_reply(st, &r, errstr, errstr_size) != DD_OK)
            return DD_ERR;
        if (!*failed) {
            if (check_hmget(st, r, 4, &usable, errstr, errstr_size) != DD_OK)
                *failed = 1;
            else if (usable)
                read_parcel(r, &l->parcel);
        }
        freeReplyObject(r);
    }
    for (size_t j = 0; j < l->ncouriers; j++) {
        memset(&l->couriers[j], 0, sizeof(l->couriers[j]));
        if (get_reply(st, &r, errstr, errstr_size) != DD_OK)
            return DD_ERR;
        if (!*failed) {
            if (check_hmget(st, r, 4, &usable, errstr, errstr_size) != DD_OK)
                *failed = 1;
            else if (usable)
                read_courier(r, &l->couriers[j]);
        }
        freeReplyObject(r);
    }
    return DD_OK;
}

int dd_store_load(dd_store_t *st, dd_store_load_t *loads, size_t n,
                  char *errstr, size_t errstr_size) {
    argv_buf_t a;
    int failed = 0;

    for (size_t i = 0; i < n; i++) {
        loads[i].ledger = NULL;
        loads[i].ledger_len = 0;
        memset(&loads[i].parcel, 0, sizeof(loads[i].parcel));
    }
    if (n == 0)
        return DD_OK;
    if (ensure_connected(st, errstr, errstr_size) != DD_OK)
        return DD_ERR;

    argv_init(&a, 6);
    for (size_t i = 0; i < n && !failed; i++) {
        const dd_store_load_t *l = &loads[i];

        argv_add_str(&a, "GET");
        argv_add_key(&a, st, "result:", l->request_id);
        failed |= argv_append(st, &a) != DD_OK;
        if (l->parcel_id != NULL) {
            argv_add_str(&a, "HMGET");
            argv_add_key(&a, st, "parcel:", l->parcel_id);
            argv_add_str(&a, "pickup_lat");
            argv_add_str(&a, "pickup_lon");
            argv_add_str(&a, "dropoff_lat");
            argv_add_str(&a, "dropoff_lon");
            failed |= argv_append(st, &a) != DD_OK;
        }
        for (size_t j = 0; j < l->ncouriers; j++) {
            argv_add_str(&a, "HMGET");
            argv_add_key(&a, st, "courier:", l->courier_ids[j]);
            argv_add_str(&a, "lat");
            argv_add_str(&a, "lon");
            argv_add_str(&a, "vehicle");
            argv_add_str(&a, "status");
            failed |= argv_append(st, &a) != DD_OK;
        }
    }
    argv_close(&a);
    if (failed) {
        /* Half a pipeline sits in the output buffer: drop the context. */
        conn_lost(st, "append", errstr, errstr_size);
        return DD_ERR;
    }

    st->stats.round_trips++;
    for (size_t i = 0; i < n; i++) {
        if (read_load(st, &loads[i], &failed, errstr, errstr_size) != DD_OK) {
            loads_clear(loads, n);
            return DD_ERR;
        }
    }
    if (failed) {
        loads_clear(loads, n);
        drop_conn(st);
        return DD_ERR;
    }
    st->failures = 0;
    return DD_OK;
}

/*----- RT2: ETA cache reads -----*/

int dd_store_eta_get(dd_store_t *st, const char *const *keys, size_t n,
                     int64_t *secs_out, char *errstr, size_t errstr_size) {
    argv_buf_t a;
    int failed = 0;

    if (n == 0)
        return DD_OK;
    if (ensure_connected(st, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    argv_init(&a, 2);
    for (size_t i = 0; i < n && !failed; i++) {
        argv_add_str(&a, "GET");
        argv_add_key(&a, st, "", keys[i]);
        failed |= argv_append(st, &a) != DD_OK;
    }
    argv_close(&a);
    if (failed) {
        conn_lost(st, "append", errstr, errstr_size);
        return DD_ERR;
    }
    st->stats.round_trips++;
    for (size_t i = 0; i < n; i++) {
        redisReply *r;
        if (get_reply(st, &r, errstr, errstr_size) != DD_OK)
            return DD_ERR;
        if (r->type == REDIS_REPLY_NIL) {
            secs_out[i] = DD_STORE_ETA_MISS;
        } else if (parse_secs(r, &secs_out[i]) != DD_OK) {
            /* An error reply or a value we did not write: recompute. */
            if (r->type == REDIS_REPLY_ERROR)
                st->stats.reply_errors++;
            secs_out[i] = DD_STORE_ETA_ERROR;
        }
        freeReplyObject(r);
    }
    /* Counted only once the whole batch is in. */
    for (size_t i = 0; i < n; i++) {
        if (secs_out[i] >= 0)
            st->stats.eta_hits++;
        else if (secs_out[i] == DD_STORE_ETA_MISS)
            st->stats.eta_misses++;
        else
            st->stats.eta_errors++;
    }
    st->failures = 0;
    return DD_OK;
}

/*----- RT3: writes -----*/

void dd_store_commit_clear(dd_store_commit_t *commit) {
    dd_free(commit->result);
    commit->result = NULL;
    commit->result_len = 0;
    commit->chosen = DD_STORE_COMMIT_FALLBACK;
}

static void commits_clear(dd_store_commit_t *commits, size_t n) {
    for (size_t i = 0; i < n; i++)
        dd_store_commit_clear(&commits[i]);
}

static int append_evalsha(dd_store_t *st, argv_buf_t *a,
                          const dd_store_commit_t *cm) {
    char nkeys[16];

    snprintf(nkeys, sizeof(nkeys), "%zu", cm->ncandidates + 1);
    argv_add_str(a, "EVALSHA");
    argv_add_str(a, st->sha);
    argv_add_str(a, nkeys); /* copied by the append below */
    argv_add_key(a, st, "result:", cm->request_id);
    for (size_t j = 0; j < cm->ncandidates; j++)
        argv_add_key(a, st, "reservation:", cm->candidate_ids[j]);
    argv_add_str(a, cm->request_id);
    argv_add_str(a, st->reservation_ttl);
    argv_add_str(a, st->idempotency_ttl);
    argv_add_str(a, cm->fallback_json);
    for (size_t j = 0; j < cm->ncandidates; j++)
        argv_add_str(a, cm->candidate_json[j]);
    return argv_append(st, a);
}

/* Takes the script's {index, bytes} reply. 0 = done, 1 = NOSCRIPT (send
 * again), -1 = the batch fails (errstr filled). */
static int take_script_reply(dd_store_t *st, const redisReply *r,
                             dd_store_commit_t *cm, char *errstr,
                             size_t errstr_size) {
    const redisReply *idx, *res;

    if (r->type == REDIS_REPLY_ERROR) {
        st->stats.reply_errors++;
        if (strncmp(r->str, "NOSCRIPT", 8) == 0)
            return 1;
        dd_set_error(errstr, errstr_size, "redis EVALSHA: %s", r->str);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        dd_set_error(errstr, errstr_size, "redis EVALSHA: unexpected reply");
        return -1;
    }
    idx = r->element[0];
    res = r->element[1];
    if (idx->integer < DD_STORE_COMMIT_EXISTING ||
        idx->integer >= (long long)cm->ncandidates) {
        dd_set_error(errstr, errstr_size, "redis EVALSHA: bad index %lld",
                     idx->integer);
        return -1;
    }
    cm->chosen = (int)idx->integer;
    cm->result = dd_xstrndup(res->str, res->len);
    cm->result_len = res->len;
    return 0;
}

/* SCRIPT LOAD again after NOSCRIPT (SCRIPT FLUSH, or a restarted server
 * that kept the connection alive behind a proxy). */
static int reload_script(dd_store_t *st, char *errstr, size_t errstr_size) {
    redisReply *r;
    int rc = DD_ERR;

    st->stats.round_trips++;
    st->stats.commands++;
    st->stats.script_reloads++;
    r = redisCommand(st->c, "SCRIPT LOAD %s", reserve_lua);
    if (r == NULL) {
        st->stats.io_errors++;
        conn_lost(st, "SCRIPT LOAD", errstr, errstr_size);
        return DD_ERR;
    }
    if (r->type == REDIS_REPLY_STRING && r->len == SHA_SIZE - 1) {
        memcpy(st->sha, r->str, SHA_SIZE - 1);
        st->sha[SHA_SIZE - 1] = '\0';
        rc = DD_OK;
    } else {
        st->stats.reply_errors++;
        dd_set_error(errstr, errstr_size, "redis SCRIPT LOAD: %s",
                     r->type == REDIS_REPLY_ERROR ? r->str
                                                  : "unexpected reply");
    }
    freeReplyObject(r);
    return rc;
}

int dd_store_commit(dd_store_t *st, dd_store_eta_put_t *puts, size_t nputs,
                    dd_store_commit_t *commits, size_t n, int *eta_put_errors,
                    char *errstr, size_t errstr_size) {
    argv_buf_t a;
    char secs[24];
    int failed = 0, put_errors = 0, redo = 0;
    int *noscript = NULL;

    for (size_t i = 0; i < n; i++) {
        commits[i].result = NULL;
        commits[i].result_len = 0;
        commits[i].chosen = DD_STORE_COMMIT_FALLBACK;
        dd_assert(commits[i].ncandidates <= CANDIDATES_MAX);
    }
    if (eta_put_errors != NULL)
        *eta_put_errors = 0;
    for (size_t i = 0; i < nputs; i++)
        puts[i].error = 0;
    if (nputs == 0 && n == 0)
        return DD_OK;
    if (ensure_connected(st, errstr, errstr_size) != DD_OK)
        return DD_ERR;

    argv_init(&a, 2 * CANDIDATES_MAX + 8);
    for (size_t i = 0; i < nputs && !failed; i++) {
        snprintf(secs, sizeof(secs), "%lld", (long long)puts[i].secs);
        argv_add_str(&a, "SET");
        argv_add_key(&a, st, "", puts[i].key);
        argv_add_str(&a, secs);
        argv_add_str(&a, "EX");
        argv_add_str(&a, st->eta_ttl);
        failed |= argv_append(st, &a) != DD_OK;
    }
    for (size_t i = 0; i < n && !failed; i++)
        failed |= append_evalsha(st, &a, &commits[i]) != DD_OK;
    if (failed) {
        argv_close(&a);
        conn_lost(st, "append", errstr, errstr_size);
        return DD_ERR;
    }

    st->stats.round_trips++;
    noscript = dd_xcalloc(n ? n : 1, sizeof(*noscript));
    for (size_t i = 0; i < nputs; i++) {
        redisReply *r;
        if (get_reply(st, &r, errstr, errstr_size) != DD_OK)
            goto err;
        puts[i].error = r->type == REDIS_REPLY_ERROR;
        if (puts[i].error) {
            st->stats.reply_errors++;
            put_errors++;
        }
        freeReplyObject(r);
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *r;
        int t;
        if (get_reply(st, &r, errstr, errstr_size) != DD_OK)
            goto err;
        t = failed ? 0
                   : take_script_reply(st, r, &commits[i], errstr, errstr_size);
        freeReplyObject(r);
        if (t < 0)
            failed = 1;
        else if (t > 0)
            noscript[i] = redo = 1;
    }
    if (failed)
        goto err;

    if (redo) {
        if (reload_script(st, errstr, errstr_size) != DD_OK)
            goto err;
        for (size_t i = 0; i < n && !failed; i++)
            if (noscript[i])
                failed |= append_evalsha(st, &a, &commits[i]) != DD_OK;
        if (failed) {
            conn_lost(st, "append", errstr, errstr_size);
            goto err;
        }
        st->stats.round_trips++;
        for (size_t i = 0; i < n; i++) {
            redisReply *r;
            int t;
            if (!noscript[i])
                continue;
            if (get_reply(st, &r, errstr, errstr_size) != DD_OK)
                goto err;
            t = failed ? 0
                       : take_script_reply(st, r, &commits[i], errstr,
                                           errstr_size);
            if (t > 0)
                dd_set_error(errstr, errstr_size,
                             "redis EVALSHA: NOSCRIPT right after SCRIPT "
                             "LOAD");
            freeReplyObject(r);
            if (t != 0)
                failed = 1;
        }
        if (failed)
            goto err;
    }

    argv_close(&a);
    dd_free(noscript);
    st->stats.eta_errors += (uint64_t)put_errors;
    if (eta_put_errors != NULL)
        *eta_put_errors = put_errors;
    st->failures = 0;
    return DD_OK;

err:
    argv_close(&a);
    dd_free(noscript);
    commits_clear(commits, n);
    if (st->c != NULL)
        drop_conn(st); /* an error reply failed the batch */
    return DD_ERR;
}
