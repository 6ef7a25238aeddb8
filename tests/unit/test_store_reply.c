/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of store_reply.c: replies that hiredis's reader builds in a
 * connection's arena have the shape hiredis's own objects have (types,
 * strings with their lengths and NUL bytes, integers, nested and empty
 * arrays, nil), stay valid until the arena is reset, span chunks, survive
 * a protocol error, and leave one chunk behind after a reset, also after
 * a reply larger than a chunk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store_int.h"
#include "util.h"

typedef struct fixture {
    dd_store_replies_t arena;
    redisReader *reader;
} fixture_t;

static int setup(void **state) {
    fixture_t *f = dd_xcalloc(1, sizeof(*f));

    dd_store_replies_init(&f->arena);
    f->reader = redisReaderCreate();
    assert_non_null(f->reader);
    dd_store_replies_attach(&f->arena, f->reader);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture_t *f = *state;

    redisReaderFree(f->reader);
    dd_store_replies_free(&f->arena);
    dd_free(f);
    return 0;
}

/* Feeds bytes (len of them) and reads one whole reply. */
static redisReply *read_one(fixture_t *f, const char *bytes, size_t len) {
    void *r = NULL;

    assert_int_equal(redisReaderFeed(f->reader, bytes, len), REDIS_OK);
    assert_int_equal(redisReaderGetReply(f->reader, &r), REDIS_OK);
    assert_non_null(r);
    return r;
}

static void test_every_type(void **state) {
    fixture_t *f = *state;
    static const char wire[] = "*6\r\n"
                               "$5\r\nhel\0o\r\n"
                               ":-42\r\n"
                               "+OK\r\n"
                               "-WRONGTYPE Operation against a key\r\n"
                               "$-1\r\n"
                               "*2\r\n*0\r\n*-1\r\n";
    redisReply *r = read_one(f, wire, sizeof(wire) - 1);

    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 6);
    assert_int_equal(r->element[0]->type, REDIS_REPLY_STRING);
    assert_int_equal(r->element[0]->len, 5);
    assert_memory_equal(r->element[0]->str, "hel\0o", 6); /* NUL-ended */
    assert_int_equal(r->element[1]->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->element[1]->integer, -42);
    assert_int_equal(r->element[2]->type, REDIS_REPLY_STATUS);
    assert_string_equal(r->element[2]->str, "OK");
    assert_int_equal(r->element[3]->type, REDIS_REPLY_ERROR);
    assert_string_equal(r->element[3]->str,
                        "WRONGTYPE Operation against a key");
    assert_int_equal(r->element[4]->type, REDIS_REPLY_NIL);
    assert_int_equal(r->element[5]->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[5]->elements, 2);
    assert_int_equal(r->element[5]->element[0]->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[5]->element[0]->elements, 0);
    assert_null(r->element[5]->element[0]->element);
    assert_int_equal(r->element[5]->element[1]->type, REDIS_REPLY_NIL);
    dd_store_reply_done(r);
}

/* Many replies, one larger than a chunk, all readable until the reset;
 * after it one ordinary chunk is left for the next call. */
static void test_valid_until_reset(void **state) {
    fixture_t *f = *state;
    enum { N = 4000 };
    redisReply *rs[N];
    char wire[64];
    size_t big_len = 100000;
    char *big = dd_xmalloc(big_len + 32);
    int hdr = snprintf(big, 32, "$%zu\r\n", big_len);
    redisReply *b;

    for (int i = 0; i < N; i++) {
        int n = snprintf(wire, sizeof(wire), "$%d\r\nvalue-%06d\r\n", 12, i);
        rs[i] = read_one(f, wire, (size_t)n);
    }
    memset(big + hdr, 'x', big_len);
    memcpy(big + hdr + big_len, "\r\n", 2);
    b = read_one(f, big, (size_t)hdr + big_len + 2);
    for (int i = 0; i < N; i++) {
        snprintf(wire, sizeof(wire), "value-%06d", i);
        assert_int_equal(rs[i]->type, REDIS_REPLY_STRING);
        assert_string_equal(rs[i]->str, wire);
    }
    assert_int_equal(b->len, big_len);
    assert_int_equal(b->str[big_len - 1], 'x');
    assert_int_equal(b->str[big_len], '\0');
    assert_true(dd_store_replies_chunks(&f->arena) > 2);

    dd_store_replies_reset(&f->arena);
    assert_int_equal(dd_store_replies_chunks(&f->arena), 1);
    /* The kept chunk serves the next replies. */
    b = read_one(f, ":7\r\n", 4);
    assert_int_equal(b->integer, 7);
    b = read_one(f, "$2\r\nab\r\n", 8);
    assert_string_equal(b->str, "ab");
    assert_int_equal(dd_store_replies_chunks(&f->arena), 1);
    dd_free(big);
}

/* A protocol error in the middle of an array: hiredis gives the half-built
 * reply back through freeObject, which keeps it until the reset. */
static void test_protocol_error(void **state) {
    fixture_t *f = *state;
    static const char wire[] = "*3\r\n$1\r\na\r\n!bad\r\n";
    void *r = NULL;

    assert_int_equal(redisReaderFeed(f->reader, wire, sizeof(wire) - 1),
                     REDIS_OK);
    assert_int_equal(redisReaderGetReply(f->reader, &r), REDIS_ERR);
    assert_null(r);
    dd_store_replies_reset(&f->arena);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_valid_until_reset, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_protocol_error, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
