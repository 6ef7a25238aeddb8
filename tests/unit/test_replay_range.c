/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/replay_range.c: replay range resolution from
 * --replay-from/--replay-to and what the broker said about each partition,
 * and the ordering of the spans. Pure: no broker and no librdkafka; the
 * spans are filled by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "replay_range.h"
#include "util.h"

#define TS 1795809600000LL /* 2026-11-27T20:00:00Z */

static const dd_replay_bound_t earliest = {DD_REPLAY_EARLIEST, 0};
static const dd_replay_bound_t end = {DD_REPLAY_END, 0};

/* Three partitions: [0,100), [50,80) (retention removed 0..49), empty. */
static void spans3(dd_replay_span_t s[3]) {
    memset(s, 0, 3 * sizeof(*s));
    for (int i = 0; i < 3; i++) {
        s[i].partition = i;
        s[i].from_ts = s[i].to_ts = -1;
    }
    s[0].low = 0;
    s[0].high = 100;
    s[1].low = 50;
    s[1].high = 80;
    s[2].low = 7;
    s[2].high = 7;
}

static void assert_span(const dd_replay_span_t *s, int64_t start,
                        int64_t stop) {
    assert_int_equal(s->start, start);
    assert_int_equal(s->end, stop);
}

static void test_replay_earliest_to_end_takes_everything(void **state) {
    dd_replay_span_t s[3];
    (void)state;
    spans3(s);
    assert_int_equal(dd_replay_resolve(&earliest, &end, s, 3, NULL, 0), DD_OK);
    assert_span(&s[0], 0, 100);
    assert_span(&s[1], 50, 80);
    assert_span(&s[2], 7, 7);
}

static void test_replay_empty_topic_is_not_an_error(void **state) {
    dd_replay_span_t s[3];
    (void)state;
    spans3(s);
    s[0].high = 0;
    s[1].high = 50;
    assert_int_equal(dd_replay_resolve(&earliest, &end, s, 3, NULL, 0), DD_OK);
    assert_span(&s[0], 0, 0);
    assert_span(&s[1], 50, 50);
}

static void test_replay_offset_is_clamped_per_partition(void **state) {
    dd_replay_span_t s[3];
    dd_replay_bound_t from = {DD_REPLAY_OFFSET, 60};
    (void)state;
    spans3(s);
    assert_int_equal(dd_replay_resolve(&from, &end, s, 3, NULL, 0), DD_OK);
    assert_span(&s[0], 60, 100);
    assert_span(&s[1], 60, 80);
    assert_span(&s[2], 7, 7);
    /* Below the log start: from the log start. */
    from.value = 10;
    spans3(s);
    assert_int_equal(dd_replay_resolve(&from, &end, s, 3, NULL, 0), DD_OK);
    assert_span(&s[0], 10, 100);
    assert_span(&s[1], 50, 80);
    /* Past the end of one partition only: that one is empty. */
    from.value = 90;
    spans3(s);
    assert_int_equal(dd_replay_resolve(&from, &end, s, 3, NULL, 0), DD_OK);
    assert_span(&s[0], 90, 100);
    assert_span(&s[1], 80, 80);
}

static void test_replay_offset_past_every_end_is_a_bad_range(void **state) {
    dd_replay_span_t s[3];
    dd_replay_bound_t from = {DD_REPLAY_OFFSET, 100};
    char err[256];
    (void)state;
    spans3(s);
    assert_int_equal(dd_replay_resolve(&from, &end, s, 3, err, sizeof(err)),
                     DD_ERR);
    assert_non_null(strstr(err, "--replay-from 100 is at or past the end"));
    assert_non_null(strstr(err, "largest end offset is 100"));
}

static void test_replay_timestamps_use_the_lookups(void **state) {
    dd_replay_span_t s[3];
    dd_replay_bound_t from = {DD_REPLAY_TIMESTAMP, TS};
    dd_replay_bound_t to = {DD_REPLAY_TIMESTAMP, TS + 60000};
    (void)state;
    spans3(s);
    s[0].from_ts = 40;
    s[0].to_ts = 70;
    s[1].from_ts = 55;
    s[1].to_ts = -1; /* nothing that late: up to the end */
    s[2].from_ts = -1;
    s[2].to_ts = -1;
    assert_int_equal(dd_replay_resolve(&from, &to, s, 3, NULL, 0), DD_OK);
    assert_span(&s[0], 40, 70);
    assert_span(&s[1], 55, 80);
    assert_span(&s[2], 7, 7);
}

static void
test_replay_lookups_past_the_captured_end_are_clamped(void **state) {
    dd_replay_span_t s[3];
    dd_replay_bound_t from = {DD_REPLAY_TIMESTAMP, TS};
    (void)state;
    spans3(s);
    /* Messages produced after the end offsets were captured. */
    s[0].from_ts = 120;
    s[1].from_ts = 60;
    assert_int_equal(dd_replay_resolve(&from, &end, s, 3, NULL, 0), DD_OK);
    assert_span(&s[0], 100, 100);
    assert_span(&s[1], 60, 80);
}

static void test_replay_timestamp_beyond_the_end_is_a_bad_range(void **state) {
    dd_replay_span_t s[3];
    dd_replay_bound_t from = {DD_REPLAY_TIMESTAMP, TS};
    char err[256];
    (void)state;
    spans3(s);
    s[0].from_ts = 100; /* == end: nothing in range */
    assert_int_equal(dd_replay_resolve(&from, &end, s, 3, err, sizeof(err)),
                     DD_ERR);
    assert_string_equal(err, "--replay-from 2026-11-27T20:00:00.000Z is later "
                             "than the last message of every partition: "
                             "nothing to replay");
}

static void test_replay_end_before_start_is_a_bad_range(void **state) {
    dd_replay_span_t s[3];
    dd_replay_bound_t from = {DD_REPLAY_OFFSET, 60};
    dd_replay_bound_t to = {DD_REPLAY_TIMESTAMP, TS};
    char err[256];
    (void)state;
    spans3(s);
    s[0].to_ts = 30; /* the range ends before offset 60 */
    s[1].to_ts = 50;
    assert_int_equal(dd_replay_resolve(&from, &to, s, 3, err, sizeof(err)),
                     DD_ERR);
    assert_non_null(strstr(err, "--replay-to 2026-11-27T20:00:00.000Z is not "
                                "after --replay-from"));
    /* Earliest, but the end is before the first message. */
    spans3(s);
    s[0].to_ts = 0;
    s[1].to_ts = 50;
    assert_int_equal(dd_replay_resolve(&earliest, &to, s, 3, NULL, 0), DD_ERR);
}

static void
test_replay_timestamp_end_past_the_captured_end_is_clamped(void **state) {
    dd_replay_span_t s[3];
    dd_replay_bound_t to = {DD_REPLAY_TIMESTAMP, TS};
    (void)state;
    spans3(s);
    s[0].to_ts = 150; /* produced after the end offsets were captured */
    s[1].to_ts = 10;  /* below the log start: nothing on that partition */
    assert_int_equal(dd_replay_resolve(&earliest, &to, s, 3, NULL, 0), DD_OK);
    assert_span(&s[0], 0, 100);
    assert_span(&s[1], 50, 50);
    assert_span(&s[2], 7, 7);
}

static void test_replay_high_below_low_counts_as_empty(void **state) {
    dd_replay_span_t s[1];
    dd_replay_bound_t from = {DD_REPLAY_OFFSET, 3};
    (void)state;
    memset(s, 0, sizeof(s));
    s[0].from_ts = s[0].to_ts = -1;
    s[0].low = 20;
    s[0].high = 10; /* a stale watermark answer */
    assert_int_equal(dd_replay_resolve(&earliest, &end, s, 1, NULL, 0), DD_OK);
    assert_span(&s[0], 20, 20);
    assert_int_equal(dd_replay_resolve(&from, &end, s, 1, NULL, 0), DD_ERR);
}

static void
test_replay_no_partitions_from_earliest_is_not_an_error(void **state) {
    dd_replay_span_t s[1];
    (void)state;
    assert_int_equal(dd_replay_resolve(&earliest, &end, s, 0, NULL, 0), DD_OK);
}

static void test_replay_sort_spans_orders_by_partition(void **state) {
    dd_replay_span_t s[4];
    int32_t ids[] = {7, 0, 12, 3};
    (void)state;
    memset(s, 0, sizeof(s));
    for (int i = 0; i < 4; i++) {
        s[i].partition = ids[i];
        s[i].high = 100 + ids[i]; /* travels with its partition */
    }
    dd_replay_sort_spans(s, 4);
    assert_int_equal(s[0].partition, 0);
    assert_int_equal(s[1].partition, 3);
    assert_int_equal(s[2].partition, 7);
    assert_int_equal(s[3].partition, 12);
    for (int i = 0; i < 4; i++)
        assert_int_equal(s[i].high, 100 + s[i].partition);
    dd_replay_sort_spans(s, 0); /* nothing to do */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_earliest_to_end_takes_everything),
        cmocka_unit_test(test_replay_empty_topic_is_not_an_error),
        cmocka_unit_test(test_replay_offset_is_clamped_per_partition),
        cmocka_unit_test(test_replay_offset_past_every_end_is_a_bad_range),
        cmocka_unit_test(test_replay_timestamps_use_the_lookups),
        cmocka_unit_test(test_replay_lookups_past_the_captured_end_are_clamped),
        cmocka_unit_test(test_replay_timestamp_beyond_the_end_is_a_bad_range),
        cmocka_unit_test(test_replay_end_before_start_is_a_bad_range),
        cmocka_unit_test(
            test_replay_timestamp_end_past_the_captured_end_is_clamped),
        cmocka_unit_test(test_replay_high_below_low_counts_as_empty),
        cmocka_unit_test(
            test_replay_no_partitions_from_earliest_is_not_an_error),
        cmocka_unit_test(test_replay_sort_spans_orders_by_partition),
    };
    return cmocka_run_group_tests_name("replay_range", tests, NULL, NULL);
}
