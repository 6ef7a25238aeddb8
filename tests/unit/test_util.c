/* SPDX-License-Identifier: MIT */
/* Unit tests for util: bounded copy, ISO-8601 formatting, clocks, UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
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

/* Well-formed sequences of each length, at the edges of their ranges. */
static void test_utf8_accepts_well_formed(void **state) {
    static const struct {
        const char *s;
        size_t n;
    } ok[] = {
        {"A", 1},
        {"\x7f", 1},
        {"\xc2\x80", 2},         /* U+0080 */
        {"\xdf\xbf", 2},         /* U+07FF */
        {"\xe0\xa0\x80", 3},     /* U+0800 */
        {"\xed\x9f\xbf", 3},     /* U+D7FF */
        {"\xee\x80\x80", 3},     /* U+E000 */
        {"\xef\xbf\xbf", 3},     /* U+FFFF */
        {"\xf0\x90\x80\x80", 4}, /* U+10000 */
        {"\xf4\x8f\xbf\xbf", 4}, /* U+10FFFF */
    };
    (void)state;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t len = strlen(ok[i].s);

        assert_int_equal(len, ok[i].n);
        assert_int_equal(dd_utf8_seq_len((const unsigned char *)ok[i].s, len),
                         ok[i].n);
        assert_int_equal(dd_utf8_invalid_at(ok[i].s, len), len);
    }
    assert_int_equal(dd_utf8_invalid_at("a\0b", 3), 3); /* NUL is UTF-8 */
    assert_int_equal(dd_utf8_invalid_at("", 0), 0);
}

/* Overlong forms, surrogates, above U+10FFFF, stray continuation bytes,
 * truncated sequences: refused at the byte where the sequence starts. */
static void test_utf8_refuses_ill_formed(void **state) {
    static const char *const bad[] = {
        "\x80",             /* lone continuation */
        "\xbf",             /* lone continuation */
        "\xc0\x80",         /* overlong NUL */
        "\xc1\xbf",         /* overlong */
        "\xe0\x9f\xbf",     /* overlong */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xed\xbf\xbf",     /* surrogate U+DFFF */
        "\xf0\x8f\xbf\xbf", /* overlong */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xf5\x80\x80\x80", /* lead byte past F4 */
        "\xff",
        "\xc2"
        "A",            /* bad continuation */
        "\xe2\x82",     /* truncated */
        "\xf0\x9f\x98", /* truncated */
    };
    char buf[16];
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = strlen(bad[i]);

        assert_int_equal(dd_utf8_seq_len((const unsigned char *)bad[i], len),
                         0);
        snprintf(buf, sizeof(buf), "ok%s", bad[i]);
        assert_int_equal(dd_utf8_invalid_at(buf, strlen(buf)), 2);
    }
}

/* avail bounds the reading: a sequence cut by it is not well formed. */
static void test_utf8_respects_avail(void **state) {
    const unsigned char euro[] = {0xe2, 0x82, 0xac};
    (void)state;

    assert_int_equal(dd_utf8_seq_len(euro, 3), 3);
    assert_int_equal(dd_utf8_seq_len(euro, 2), 0);
    assert_int_equal(dd_utf8_seq_len(euro, 1), 0);
    assert_int_equal(dd_utf8_invalid_at((const char *)euro, 2), 0);
    /* A NUL inside a sequence stops it, whatever avail says. */
    assert_int_equal(dd_utf8_seq_len((const unsigned char *)"\xe2\0\xac", 3),
                     0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strlcpy_truncates_and_terminates),
        cmocka_unit_test(test_iso8601_has_milliseconds_and_z),
        cmocka_unit_test(test_monotonic_clock_never_goes_back),
        cmocka_unit_test(test_xstrndup_copies_prefix),
        cmocka_unit_test(test_utf8_accepts_well_formed),
        cmocka_unit_test(test_utf8_refuses_ill_formed),
        cmocka_unit_test(test_utf8_respects_avail),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
