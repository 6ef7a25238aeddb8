/* SPDX-License-Identifier: MIT */
/*
 * store_parse: the reply parsers of the Redis adapter. Their one job is to
 * turn a hiredis reply tree into the values of store.h (numbers, a parcel,
 * a courier, the script's {index, bytes}) or into the error that fails a
 * batch. They do no I/O and count nothing, so they can be unit-tested and
 * fuzzed with reply trees built by hand (tests/unit/test_store_parse.c).
 */
#include "store_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int dd_store_parse_double(const redisReply *r, double *out) {
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

int dd_store_parse_parcel(const redisReply *r, dd_store_parcel_t *p,
                          char *errstr, size_t errstr_size) {
    int usable;

    memset(p, 0, sizeof(*p));
    if (dd_store_parse_hmget(r, 4, &usable, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    if (!usable)
        return DD_OK;
    if (dd_store_parse_double(r->element[0], &p->pickup_lat) == DD_OK &&
        dd_store_parse_double(r->element[1], &p->pickup_lon) == DD_OK &&
        dd_store_parse_double(r->element[2], &p->dropoff_lat) == DD_OK &&
        dd_store_parse_double(r->element[3], &p->dropoff_lon) == DD_OK)
        p->found = 1;
    else
        memset(p, 0, sizeof(*p));
    return DD_OK;
}

int dd_store_parse_courier(const redisReply *r, dd_store_courier_t *co,
                           char *errstr, size_t errstr_size) {
    const redisReply *veh, *status;
    int usable;

    memset(co, 0, sizeof(*co));
    if (dd_store_parse_hmget(r, 4, &usable, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    if (!usable)
        return DD_OK;
    veh = r->element[2];
    status = r->element[3];
    if (dd_store_parse_double(r->element[0], &co->lat) != DD_OK ||
        dd_store_parse_double(r->element[1], &co->lon) != DD_OK ||
        veh->type != REDIS_REPLY_STRING || status->type != REDIS_REPLY_STRING) {
        memset(co, 0, sizeof(*co));
        return DD_OK;
    }
    /* A name that does not fit is no vehicle we know: leave it empty. */
    if (veh->len < sizeof(co->vehicle)) {
        memcpy(co->vehicle, veh->str, veh->len);
        co->vehicle[veh->len] = '\0';
    }
    co->available =
        status->len == 9 && memcmp(status->str, "available", 9) == 0;
    co->found = 1;
    return DD_OK;
}

int dd_store_parse_script_reply(const redisReply *r, dd_store_commit_t *cm,
                                char *errstr, size_t errstr_size) {
    const redisReply *idx, *res;

    if (r->type == REDIS_REPLY_ERROR) {
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
    /* Binary-safe: stored bytes may hold a NUL (a foreign writer), and
     * result_len must be what result holds. */
    cm->result = dd_xmalloc(res->len + 1);
    memcpy(cm->result, res->str, res->len);
    cm->result[res->len] = '\0';
    cm->result_len = res->len;
    return 0;
}
