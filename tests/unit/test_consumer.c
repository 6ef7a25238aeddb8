/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the pure part of the consumer (src/consumer_int.h): the
 * partition lists of the rebalance log lines. The replay range has its own
 * tests (test_replay_range.c). No broker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "consumer_int.h"
#include "util.h"

static void test_format_parts_lists_and_truncates(void **state) {
    int32_t ids[] = {0, 3, 6, 9, 12, 15};
    char buf[64];
    (void)state;
    assert_string_equal(dd_consumer_format_parts(ids, 6, buf, sizeof(buf)),
                        "0,3,6,9,12,15");
    assert_string_equal(dd_consumer_format_parts(ids, 0, buf, sizeof(buf)),
                        "-");
    assert_string_equal(dd_consumer_format_parts(ids, 1, buf, 2), "0");
    /* "0,3,6" plus ",..." needs 10 bytes with the NUL. */
    assert_string_equal(dd_consumer_format_parts(ids, 6, buf, 10), "0,3,6,...");
    assert_string_equal(dd_consumer_format_parts(ids, 6, buf, 9), "0,3,...");
    assert_string_equal(dd_consumer_format_parts(ids, 6, buf, 14),
                        "0,3,6,9,...");
    /* The last id needs no room for ",...". */
    assert_string_equal(dd_consumer_format_parts(ids, 6, buf, 15),
                        "0,3,6,9,12,15");
}

/* Pause at the bound, stay paused until the window drained to half, then
 * resume; no bound when max is 0. */
static void test_window_action_pauses_at_max_and_resumes_at_half(void **state) {
    (void)state;
    assert_int_equal(dd_consumer_window_action(0, 100, 0), 0);
    assert_int_equal(dd_consumer_window_action(99, 100, 0), 0);
    assert_int_equal(dd_consumer_window_action(100, 100, 0), 1);
    assert_int_equal(dd_consumer_window_action(5000, 100, 0), 1);
    assert_int_equal(dd_consumer_window_action(100, 100, 1), 0);
    assert_int_equal(dd_consumer_window_action(51, 100, 1), 0);
    assert_int_equal(dd_consumer_window_action(50, 100, 1), -1);
    assert_int_equal(dd_consumer_window_action(0, 100, 1), -1);
    assert_int_equal(dd_consumer_window_action(1, 1, 0), 1);
    assert_int_equal(dd_consumer_window_action(1, 1, 1), 0);
    assert_int_equal(dd_consumer_window_action(0, 1, 1), -1);
    assert_int_equal(dd_consumer_window_action(1000000, 0, 0), 0);
    assert_int_equal(dd_consumer_window_action(0, 0, 1), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_parts_lists_and_truncates),
        cmocka_unit_test(test_window_action_pauses_at_max_and_resumes_at_half),
    };
    return cmocka_run_group_tests_name("consumer", tests, NULL, NULL);
}
