/* SPDX-License-Identifier: MIT */
/* Unit tests for util: bounded copy, ISO-8601 formatting, clocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "util.h"

static void test_strlcpy_truncates_and_terminates(void **state) {
    char buf[4];
    (void)state;
    assert_int_equal(dd_strlcpy(buf, "abcdef", sizeof(buf)), 6);
    assert_string_equal(buf, "abc");
    assert_int_equal(dd_strlcpy(buf, "ab", sizeof(buf)), 2);
    assert_string_equal(buf, "ab");
}

static void test_iso8601_has_milliseconds_and_z(void **state) {
    char buf[32];
    (void)state;
    dd_format_iso8601(1795809600042LL, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-27T20:00:00.042Z");
    dd_format_iso8601(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
}

static void test_monotonic_clock_never_goes_back(void **state) {
    int64_t a, b;
    (void)state;
    a = dd_now_us();
    b = dd_now_us();
    assert_true(b >= a);
    assert_true(dd_now_ms() >= a / 1000);
}

static void test_xstrndup_copies_prefix(void **state) {
    char *s;
    (void)state;
    s = dd_xstrndup("hello world", 5);
    assert_string_equal(s, "hello");
    dd_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strlcpy_truncates_and_terminates),
        cmocka_unit_test(test_iso8601_has_milliseconds_and_z),
        cmocka_unit_test(test_monotonic_clock_never_goes_back),
        cmocka_unit_test(test_xstrndup_copies_prefix),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
