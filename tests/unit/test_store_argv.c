/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the RESP writer of the Redis adapter (store_argv.c): for
 * random commands, binary arguments and sizes on both sides of the buffer's
 * end, dd_store_resp_format() writes exactly the bytes of hiredis's
 * redisFormatCommandArgv(), or 0 when the command does not fit; it never
 * writes past the buffer (the buffer is followed by a guard checked here,
 * and ASan checks it too).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "store_int.h"

#define GUARD 64

/* Deterministic xorshift, so a failure can be replayed. */
static uint64_t rng = 88172645463325252ULL;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Formats argv both ways into a buffer of size bytes and compares. */
static void check_one(size_t size, int argc, const char **argv,
                      const size_t *argvlen) {
    char *buf = malloc(size + GUARD);
    char *want = NULL;
    int want_len;
    size_t got;

    assert_non_null(buf);
    memset(buf + size, 0x5a, GUARD);
    got = dd_store_resp_format(buf, size, argc, argv, argvlen);
    want_len = redisFormatCommandArgv(&want, argc, argv, argvlen);
    assert_true(want_len > 0);
    if (got != 0) {
        assert_int_equal(got, (size_t)want_len);
        assert_memory_equal(buf, want, got);
    } else {
        /* Refused only when hiredis's bytes really do not fit. */
        assert_true((size_t)want_len + 32 > size);
    }
    for (size_t i = 0; i < GUARD; i++)
        assert_int_equal((unsigned char)buf[size + i], 0x5a);
    free(want);
    free(buf);
}

static void test_resp_matches_hiredis_on_random_commands(void **state) {
    static char pool[20000];
    const char *argv[16];
    size_t argvlen[16];
    (void)state;

    for (size_t i = 0; i < sizeof(pool); i++)
        pool[i] = (char)next(); /* NUL, CR and LF included */
    for (int round = 0; round < 20000; round++) {
        int argc = 1 + (int)(next() % 16);
        size_t size = round % 2 ? 8192 : 64 + next() % 9000;

        for (int i = 0; i < argc; i++) {
            /* Mostly short, sometimes near the buffer's size. */
            size_t len = next() % 4 == 0 ? next() % 9000 : next() % 40;
            argv[i] = pool + next() % (sizeof(pool) - len);
            argvlen[i] = len;
        }
        check_one(size, argc, argv, argvlen);
    }
}

/* Every split of a 8 KiB buffer near its end: the argument lengths that
 * leave 0..40 bytes free before the next header. */
static void test_resp_near_the_end_of_the_buffer(void **state) {
    static char big[8192];
    const char *argv[3] = {"SET", big, big};
    size_t argvlen[3];
    (void)state;

    memset(big, 'x', sizeof(big));
    for (size_t first = 8100; first < 8192; first++) {
        for (size_t second = 0; second < 24; second++) {
            argvlen[0] = 3;
            argvlen[1] = first;
            argvlen[2] = second;
            check_one(8192, 3, argv, argvlen);
        }
    }
}

static void test_resp_empty_and_tiny_buffers(void **state) {
    const char *argv[2] = {"PING", ""};
    size_t argvlen[2] = {4, 0};
    char buf[8];
    (void)state;

    check_one(64, 2, argv, argvlen);
    assert_int_equal(dd_store_resp_format(buf, sizeof(buf), 2, argv, argvlen),
                     0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resp_matches_hiredis_on_random_commands),
        cmocka_unit_test(test_resp_near_the_end_of_the_buffer),
        cmocka_unit_test(test_resp_empty_and_tiny_buffers),
    };
    return cmocka_run_group_tests_name("store_argv", tests, NULL, NULL);
}
