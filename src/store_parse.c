/* SPDX-License-Identifier: MIT */
/*
 * store_parse: the reply parsers of the Redis adapter. Their one job is to
 * turn a hiredis reply tree into the values of store.h (numbers, a parcel,
 * a courier) or into an error, and to class
 * Redis's error replies (dd_store_error_class(): the one table of what is
 * transient and what is the data's fault). A courier or parcel hash is
 * checked whole (every field present, positions on the globe, a known
 * vehicle and status), so that a key that is absent and a key that holds
 * invalid data read differently, the latter naming the field. They do no
 * I/O and count nothing, so they can be unit-tested and fuzzed with reply
 * trees built by hand (tests/unit/test_store_parse.c).
 *
 * Numbers are read for every field of every courier and parcel, so plain
 * decimals ("-12.345") take a fast path that gives strtod()'s double
 * exactly: when the digits, without the point, make an integer below 2^53
 * and there are at most 22 of them after the point, that integer and
 * 10^frac are both exact doubles and one IEEE division rounds their
 * quotient correctly, as strtod() rounds the decimal (Clinger's fast
 * path). Anything else (an exponent, more digits, spaces, "inf") goes to
 * strtod().
 */
#include "store_int.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"
#include "util.h"

/*
 * Error codes that say "not now" for every key, so that retrying later is
 * the answer and nothing is the request's fault:
 *   LOADING      the server loads its dataset after a restart
 *   BUSY         a script or module runs past its time limit
 *   MASTERDOWN   a replica lost its master (replica-serve-stale-data no)
 *   TRYAGAIN     a multi-key command during resharding (Cluster)
 *   CLUSTERDOWN  the cluster is down
 *   READONLY     we reached a replica (a failover; a reconnect through the
 *                same name may reach the new master)
 *   OOM          maxmemory reached with noeviction: writes of every key
 *                fail until memory frees or the operator acts
 *   MISCONF      background saves fail and writes are refused
 *   NOREPLICAS   min-replicas-to-write not met
 *   NOAUTH       the connection lost its authentication
 *   NOPERM       an ACL refuses the command (a configuration matter)
 *   MOVED, ASK   Redis Cluster redirections (not supported: configuration)
 *   EXECABORT    a transaction aborted by an earlier error
 * "ERR unknown command" (a renamed or disabled command) is a configuration
 * matter too. Everything else, WRONGTYPE and any other ERR included, is
 * charged to the key that got it: retrying it could never succeed.
 */
static const char *const transient_codes[] = {
    "LOADING",  "BUSY",  "MASTERDOWN", "TRYAGAIN",   "CLUSTERDOWN",
    "READONLY", "OOM",   "MISCONF",    "NOREPLICAS", "NOAUTH",
    "NOPERM",   "MOVED", "ASK",        "EXECABORT",
};

/* 1 when text starts with the word code (followed by a space or the end). */
static int has_code(const char *text, const char *code) {
    size_t len = strlen(code);
    return strncmp(text, code, len) == 0 &&
           (text[len] == ' ' || text[len] == '\0');
}

dd_store_error_class_t dd_store_error_class(const char *text) {
    const char *code = text != NULL ? text : "";

    for (size_t i = 0; i < sizeof(transient_codes) / sizeof(transient_codes[0]);
         i++)
        if (has_code(code, transient_codes[i]))
            return DD_STORE_ERROR_TRANSIENT;
    if (strncmp(code, "ERR unknown command", 19) == 0)
        return DD_STORE_ERROR_TRANSIENT;
    return DD_STORE_ERROR_DATA;
}

/* 10^0 .. 10^22: the powers of ten that are exact doubles. */
static const double pow10_exact[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* "[-+]digits[.digits]" whose digits form an integer below 2^53 with at
 * most 22 after the point: *out is the correctly rounded value (see the
 * file header) and 1 is returned; 0 for anything else. */
static int parse_plain_decimal(const char *s, size_t len, double *out) {
    const uint64_t limit = (uint64_t)1 << 53;
    uint64_t m = 0;
    size_t i = 0, frac = 0, ndig = 0;
    int neg = 0, point = 0;
    double v;

    if (len > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len || s[i] < '0' || s[i] > '9')
        return 0;
    for (; i < len; i++) {
        char ch = s[i];

        if (ch >= '0' && ch <= '9') {
            m = m * 10 + (uint64_t)(ch - '0');
            if (m >= limit)
                return 0;
            ndig++;
            frac += (size_t)point;
        } else if (ch == '.' && !point) {
            point = 1;
        } else {
            return 0;
        }
    }
    if (frac > 22 || ndig == 0 || (point && frac == 0))
        return 0;
    v = (double)m / pow10_exact[frac];
    *out = neg ? -v : v;
    return 1;
}

/* A number field: finite, strtod syntax, no trailing bytes. */
static int parse_double_bytes(const char *s, size_t len, double *out) {
    char buf[64], *end;
    double v;

    if (len == 0 || len >= sizeof(buf))
        return DD_ERR;
    if (parse_plain_decimal(s, len, out))
        return DD_OK;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    v = strtod(buf, &end);
    if (errno != 0 || *end != '\0' || end == buf || !isfinite(v))
        return DD_ERR;
    *out = v;
    return DD_OK;
}

int dd_store_parse_double(const redisReply *r, double *out) {
    if (r->type != REDIS_REPLY_STRING)
        return DD_ERR;
    return parse_double_bytes(r->str, r->len, out);
}

int dd_store_parse_secs(const redisReply *r, int64_t *out) {
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

int dd_store_parse_hmget(const redisReply *r, size_t n, int *usable,
                         char *errstr, size_t errstr_size) {
    *usable = 0;
    if (r->type == REDIS_REPLY_ERROR) {
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

/* A coordinate field: a finite number within [-limit, limit]. */
static int coord_ok(const dd_store_field_t *f, double limit, double *out) {
    return f->s != NULL && parse_double_bytes(f->s, f->len, out) == DD_OK &&
           *out >= -limit && *out <= limit;
}

/* The HMGET fields of a key: all absent means no key (0); else the
 * index of the first absent one, or n when all are there. */
static size_t first_absent(const dd_store_field_t *f, size_t n, int *exists) {
    size_t absent = n;

    *exists = 0;
    for (size_t i = n; i-- > 0;) {
        if (f[i].s == NULL)
            absent = i;
        else
            *exists = 1;
    }
    return absent;
}

static int field_is(const dd_store_field_t *f, const char *s) {
    return f->len == strlen(s) && memcmp(f->s, s, f->len) == 0;
}

void dd_store_parse_parcel_fields(const dd_store_field_t f[4],
                                  dd_store_parcel_t *p) {
    static const char *const names[4] = {"pickup_lat", "pickup_lon",
                                         "dropoff_lat", "dropoff_lon"};
    double *out[4];
    int exists;
    size_t absent = first_absent(f, 4, &exists);

    memset(p, 0, sizeof(*p));
    if (!exists)
        return;
    p->invalid = 1;
    if (absent < 4) {
        p->bad_field = names[absent];
        return;
    }
    out[0] = &p->pickup_lat;
    out[1] = &p->pickup_lon;
    out[2] = &p->dropoff_lat;
    out[3] = &p->dropoff_lon;
    for (size_t i = 0; i < 4; i++) {
        if (!coord_ok(&f[i], i % 2 == 0 ? 90.0 : 180.0, out[i])) {
            memset(p, 0, sizeof(*p));
            p->invalid = 1;
            p->bad_field = names[i];
            return;
        }
    }
    p->invalid = 0;
    p->found = 1;
}

void dd_store_parse_courier_fields(const dd_store_field_t f[4],
                                   dd_store_courier_t *co) {
    static const char *const names[4] = {"lat", "lon", "vehicle", "status"};
    dd_vehicle_t v;
    int exists;
    size_t absent = first_absent(f, 4, &exists);
    const char *bad = NULL;

    memset(co, 0, sizeof(*co));
    if (!exists)
        return;
    if (absent < 4)
        bad = names[absent];
    else if (!coord_ok(&f[0], 90.0, &co->lat))
        bad = "lat";
    else if (!coord_ok(&f[1], 180.0, &co->lon))
        bad = "lon";
    else if (dd_route_vehicle_parse(f[2].s, f[2].len, &v) != DD_OK)
        bad = "vehicle";
    else if (!field_is(&f[3], "available") && !field_is(&f[3], "busy") &&
             !field_is(&f[3], "offline"))
        bad = "status";
    if (bad != NULL) {
        memset(co, 0, sizeof(*co));
        co->invalid = 1;
        co->bad_field = bad;
        return;
    }
    /* A valid name always fits the buffer. */
    memcpy(co->vehicle, f[2].s, f[2].len);
    co->vehicle[f[2].len] = '\0';
    co->available = field_is(&f[3], "available");
    co->found = 1;
}

/* The four fields of an HMGET array; an element that is neither a string
 * nor nil is handed on as an empty string, which no field accepts. */
static void hmget_fields(const redisReply *r, dd_store_field_t f[4]) {
    for (size_t i = 0; i < 4; i++) {
        const redisReply *e = r->element[i];

        f[i].s = NULL;
        f[i].len = 0;
        if (e->type == REDIS_REPLY_STRING) {
            f[i].s = e->str;
            f[i].len = e->len;
        } else if (e->type != REDIS_REPLY_NIL) {
            f[i].s = "";
        }
    }
}

int dd_store_parse_parcel(const redisReply *r, dd_store_parcel_t *p,
                          char *errstr, size_t errstr_size) {
    dd_store_field_t f[4];
    int usable;

    memset(p, 0, sizeof(*p));
    if (dd_store_parse_hmget(r, 4, &usable, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    hmget_fields(r, f);
    dd_store_parse_parcel_fields(f, p);
    return DD_OK;
}

int dd_store_parse_courier(const redisReply *r, dd_store_courier_t *co,
                           char *errstr, size_t errstr_size) {
    dd_store_field_t f[4];
    int usable;

    memset(co, 0, sizeof(*co));
    if (dd_store_parse_hmget(r, 4, &usable, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    hmget_fields(r, f);
    dd_store_parse_courier_fields(f, co);
    return DD_OK;
}
