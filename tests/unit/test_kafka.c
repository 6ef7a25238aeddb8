/* SPDX-License-Identifier: MIT */
/* Unit tests for kafka: the commit outcome kept for /readyz (consecutive
 * failures and when they began) and the fatal stop request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "exit_codes.h"
#include "kafka_int.h"
#include "stop.h"
#include "util.h"

static void test_commit_failures_count_until_a_success(void **state) {
    int64_t since = 0, first, t0 = dd_now_ms();
    (void)state;
    dd_kafka_commit_result(RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(dd_kafka_commit_failing(&since), 0);
    dd_kafka_commit_result(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
    assert_int_equal(dd_kafka_commit_failing(&since), 1);
    assert_true(since >= t0 && since <= dd_now_ms());
    first = since;
    dd_kafka_commit_result(RD_KAFKA_RESP_ERR__TRANSPORT);
    assert_int_equal(dd_kafka_commit_failing(&since), 2);
    assert_int_equal(since, first); /* the streak began at the first */
    dd_kafka_commit_result(RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(dd_kafka_commit_failing(&since), 0);
}

static void test_fatal_without_a_client_requests_a_stop(void **state) {
    char reason[256];
    (void)state;
    dd_stop_reset();
    assert_int_equal(dd_kafka_check_fatal(NULL, "consumer"), 0);
    assert_false(dd_stop_is_requested());
    dd_kafka_fatal(NULL, "producer");
    assert_true(dd_stop_is_fatal());
    assert_int_equal(dd_stop_exit_status(DD_EXIT_OK), DD_EXIT_SOFTWARE);
    dd_stop_fatal_reason(reason, sizeof(reason));
    assert_non_null(strstr(reason, "fatal kafka client error (producer)"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_failures_count_until_a_success),
        cmocka_unit_test(test_fatal_without_a_client_requests_a_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
