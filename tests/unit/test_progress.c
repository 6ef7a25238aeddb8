/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for progress: the replay progress display and summary text
 * (rate, ETA, durations, lines, truncation, summary and its key=value
 * form). Pure functions, fixed numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "progress.h"
#include "util.h"

static void assert_contains(const char *hay, const char *needle) {
    if (strstr(hay, needle) == NULL)
        fail_msg("'%s' not in '%s'", needle, hay);
}

static void test_progress_rate_and_eta(void **state) {
    (void)state;
    assert_true(dd_progress_rate(0, 1000) <= 0.0);
    assert_true(dd_progress_rate(100, 0) <= 0.0);
    assert_true(dd_progress_rate(500, 2000) > 249.99 &&
                dd_progress_rate(500, 2000) < 250.01);
    assert_int_equal(dd_progress_eta_s(500, 1000, 250.0), 2);
    assert_int_equal(dd_progress_eta_s(500, 1001, 250.0), 3); /* rounded up */
    assert_int_equal(dd_progress_eta_s(1000, 1000, 0.0), 0);  /* done */
    assert_int_equal(dd_progress_eta_s(1200, 1000, 0.0), 0);
    assert_int_equal(dd_progress_eta_s(0, 1000, 0.0), -1); /* unknown */
}

static void test_progress_durations(void **state) {
    char buf[32];
    (void)state;
    assert_string_equal(dd_progress_format_duration(-1, buf, sizeof(buf)),
                        "--");
    assert_string_equal(dd_progress_format_duration(0, buf, sizeof(buf)), "0s");
    assert_string_equal(dd_progress_format_duration(59, buf, sizeof(buf)),
                        "59s");
    assert_string_equal(dd_progress_format_duration(245, buf, sizeof(buf)),
                        "4m05s");
    assert_string_equal(dd_progress_format_duration(3723, buf, sizeof(buf)),
                        "1h02m03s");
    assert_string_equal(
        dd_progress_format_duration(100 * 3600, buf, sizeof(buf)),
        "100h00m00s");
}

static const dd_progress_part_t parts4[] = {
    {0, 1000, 1000},
    {1, 200, 1000},
    {2, 0, 2000},
    {3, 0, 0},
};

static void test_progress_overall_line(void **state) {
    dd_progress_t pg = {parts4, 4, 4000};
    char buf[256];
    int64_t done, total;
    (void)state;
    dd_progress_totals(&pg, &done, &total);
    assert_int_equal(done, 1200);
    assert_int_equal(total, 4000);
    dd_progress_format_line(&pg, buf, sizeof(buf));
    assert_string_equal(buf, "replay 1200/4000 offsets (30.0%), 300/s, ETA "
                             "10s, 2/4 partitions done, elapsed 4s");
}

static void test_progress_partition_line_has_a_bar(void **state) {
    char buf[128];
    dd_progress_part_t pp = {7, 400, 1000};
    dd_progress_part_t empty = {8, 0, 0};
    (void)state;
    dd_progress_format_part(&pp, buf, sizeof(buf));
    assert_contains(buf, "p7");
    assert_contains(buf, "400/1000");
    assert_contains(buf, "40.0%");
    assert_contains(buf, "[########............]");
    dd_progress_format_part(&empty, buf, sizeof(buf));
    assert_contains(buf, "100.0% [####################]");
}

static void test_progress_plain_line_lists_partitions(void **state) {
    dd_progress_t pg = {parts4, 4, 4000};
    char buf[256], small[110];
    size_t n;
    (void)state;
    dd_progress_format_plain(&pg, buf, sizeof(buf));
    assert_contains(buf, "partitions done, elapsed 4s | p0 1000/1000 p1 "
                         "200/1000 p2 0/2000 p3 0/0");
    n = dd_progress_format_plain(&pg, small, sizeof(small));
    assert_true(n < sizeof(small));
    assert_int_equal(strlen(small), n);
    assert_contains(small, " ...");
}

static void test_progress_reason_names(void **state) {
    (void)state;
    assert_int_equal(dd_progress_reason_index("unknown_courier"), 0);
    assert_int_equal(dd_progress_reason_index("no_candidate_available"), 3);
    assert_int_equal(dd_progress_reason_index("deadline_expired"), -1);
    assert_int_equal(dd_progress_reason_index(NULL), -1);
    assert_string_equal(dd_progress_reason_name(2), "courier_unavailable");
    assert_string_equal(dd_progress_reason_name(5), "parcel_data_invalid");
    assert_null(dd_progress_reason_name(6));
}

static dd_progress_summary_t summary(void) {
    dd_progress_summary_t s;
    memset(&s, 0, sizeof(s));
    s.complete = 1;
    s.topic = "dispatch.requests";
    s.result_topic = "replay.assignments";
    s.partitions = 12;
    s.partitions_finished = 12;
    s.offsets = 20000;
    s.messages = 20000;
    s.assigned = 9000;
    s.rejected = 7000;
    s.rejected_by[0] = 1000;
    s.rejected_by[3] = 6000;
    s.expired = 1000;
    s.dead_letter = 3000;
    s.from_ledger = 12000;
    s.elapsed_ms = 8000;
    return s;
}

static void test_progress_summary_text(void **state) {
    dd_progress_summary_t s = summary();
    char *text;
    (void)state;
    text = dd_progress_format_summary(&s);
    assert_contains(text, "replay summary: dispatch.requests -> "
                          "replay.assignments\n");
    assert_contains(text, "  partitions   12/12 reached their end\n");
    assert_contains(text, "20000 answered, 20000 offsets in range, in 8.0 s "
                          "(2500 msg/s)");
    assert_contains(text, "  assigned     9000\n");
    assert_contains(text, "  rejected     7000 (unknown_courier 1000, "
                          "no_candidate_available 6000)\n");
    assert_contains(text, "  expired      1000\n");
    assert_contains(text, "  dead letters 3000\n");
    assert_contains(text, "  duplicates   12000 answered from the ledger");
    assert_null(strstr(text, "INCOMPLETE"));
    dd_free(text);

    s.dry_run = 1;
    s.complete = 0;
    text = dd_progress_format_summary(&s);
    assert_contains(text, "dry run");
    assert_contains(text, "[INCOMPLETE]");
    assert_contains(text, "9000 (an upper bound");
    dd_free(text);
}

static void test_progress_summary_kv(void **state) {
    dd_progress_summary_t s = summary();
    char buf[512];
    (void)state;
    dd_progress_format_kv(&s, buf, sizeof(buf));
    assert_string_equal(buf, "complete=1 dry_run=0 partitions=12/12 "
                             "offsets=20000 messages=20000 assigned=9000 "
                             "rejected=7000 expired=1000 dead_letter=3000 "
                             "from_ledger=12000 elapsed_ms=8000");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_rate_and_eta),
        cmocka_unit_test(test_progress_durations),
        cmocka_unit_test(test_progress_overall_line),
        cmocka_unit_test(test_progress_partition_line_has_a_bar),
        cmocka_unit_test(test_progress_plain_line_lists_partitions),
        cmocka_unit_test(test_progress_reason_names),
        cmocka_unit_test(test_progress_summary_text),
        cmocka_unit_test(test_progress_summary_kv),
    };
    return cmocka_run_group_tests_name("progress", tests, NULL, NULL);
}
