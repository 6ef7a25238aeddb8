/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the parsing of what Redis returns: feeds the input
 * as RESP bytes to hiredis's reply reader (the one the store's connection
 * uses) and hands every reply it yields, and every element of an array
 * reply, to the pure parsers of src/store_parse.c (a number, ETA seconds,
 * an HMGET, a parcel, a courier) and every string to
 * dd_codec_result_outcome(). It checks what the parsers promise: a number
 * is finite, seconds are >= 0, a found parcel or courier has finite
 * coordinates and a NUL-terminated vehicle, an outcome is one of the three
 * statuses. A broken promise aborts, which libFuzzer
 * reports as a crash. Run by `make fuzz`.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "codec.h"
#include "store_int.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            dd_panic("fuzz_store_reply: check failed: %s", #cond);             \
    } while (0)

static void check_outcome(const char *buf, size_t len) {
    dd_status_t status;
    const char *reason = NULL;
    int rc = dd_codec_result_outcome(buf, len, &status, &reason);

    CHECK(rc == DD_OK || rc == DD_ERR);
    CHECK(status == DD_STATUS_ASSIGNED || status == DD_STATUS_REJECTED ||
          status == DD_STATUS_EXPIRED);
    if (reason != NULL)
        CHECK(strlen(reason) > 0);
}

static void check_reply(const redisReply *r, int depth) {
    char err[256] = "";
    double d;
    int64_t secs;
    int usable = -1;
    dd_store_parcel_t p;
    dd_store_courier_t co;

    if (dd_store_parse_double(r, &d) == DD_OK)
        CHECK(isfinite(d));
    if (dd_store_parse_secs(r, &secs) == DD_OK)
        CHECK(secs >= 0);
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        check_outcome(r->str, r->len);
    if (dd_store_parse_hmget(r, 4, &usable, err, sizeof(err)) == DD_OK)
        CHECK(usable == 0 || (usable == 1 && r->type == REDIS_REPLY_ARRAY &&
                              r->elements == 4));
    else
        CHECK(err[0] != '\0');
    err[0] = '\0';
    if (dd_store_parse_parcel(r, &p, err, sizeof(err)) == DD_OK) {
        if (p.found)
            CHECK(isfinite(p.pickup_lat) && isfinite(p.pickup_lon) &&
                  isfinite(p.dropoff_lat) && isfinite(p.dropoff_lon));
    } else {
        CHECK(err[0] != '\0' && !p.found);
    }
    err[0] = '\0';
    if (dd_store_parse_courier(r, &co, err, sizeof(err)) == DD_OK) {
        if (co.found)
            CHECK(isfinite(co.lat) && isfinite(co.lon));
        CHECK(memchr(co.vehicle, '\0', sizeof(co.vehicle)) != NULL);
        CHECK(co.available == 0 || co.available == 1);
    } else {
        CHECK(err[0] != '\0' && !co.found);
    }
    if (r->type == REDIS_REPLY_ARRAY && depth < 8)
        for (size_t i = 0; i < r->elements; i++)
            check_reply(r->element[i], depth + 1);
}

/* 1 when an array header ("*<count>") claims more elements than the input
 * has bytes. hiredis 0.14 allocates the element array from the header,
 * before any element arrives, so such a header is an allocation as large
 * as the server says: a property of hiredis's framing (Redis is trusted to
 * frame its replies), not of our parsers, which only see whole replies. */
static int claims_too_many(const uint8_t *data, size_t size) {
    for (size_t i = 0; i < size; i++) {
        size_t n = 0, j = i + 1;
        if (data[i] != '*')
            continue;
        for (; j < size && data[j] >= '0' && data[j] <= '9' && n <= size; j++)
            n = n * 10 + (size_t)(data[j] - '0');
        if (n > size)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    redisReader *rd;
    void *reply = NULL;

    if (claims_too_many(data, size))
        return 0;
    rd = redisReaderCreate();
    CHECK(rd != NULL);
    if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK) {
        /* Every complete reply in the input; stop at a protocol error. */
        while (redisReaderGetReply(rd, &reply) == REDIS_OK && reply != NULL) {
            check_reply(reply, 0);
            freeReplyObject(reply);
            reply = NULL;
        }
    }
    redisReaderFree(rd);
    return 0;
}
