/* SPDX-License-Identifier: MIT */
/* Unit tests for stop: the stop request (signal, fatal, done), the exit
 * status it implies, waking the waiter from another thread, and the
 * shutdown budget arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "exit_codes.h"
#include "stop.h"
#include "util.h"

static int reset(void **state) {
    (void)state;
    dd_stop_reset();
    return 0;
}

static void test_nothing_requested_waits_and_times_out(void **state) {
    int64_t t0 = dd_now_ms();
    (void)state;
    assert_int_equal(dd_stop_wait(50), 0);
    assert_true(dd_now_ms() - t0 >= 40);
    assert_false(dd_stop_is_requested());
    assert_int_equal(dd_stop_exit_status(DD_EXIT_OK), DD_EXIT_OK);
}

static void test_signal_requests_and_counts(void **state) {
    (void)state;
    assert_int_equal(dd_stop_request_signal(SIGTERM), 1);
    assert_true(dd_stop_wait(0));
    assert_int_equal(dd_stop_signal(), SIGTERM);
    assert_false(dd_stop_is_fatal());
    /* The second real signal is what forces the exit. */
    assert_int_equal(dd_stop_request_signal(SIGINT), 2);
    assert_int_equal(dd_stop_signal(), SIGTERM);
    assert_int_equal(dd_stop_exit_status(DD_EXIT_SIGNAL), DD_EXIT_SIGNAL);
}

static void test_fatal_is_sticky_and_keeps_first_reason(void **state) {
    char reason[64];
    (void)state;
    dd_stop_fatal_reason(reason, sizeof(reason));
    assert_string_equal(reason, "");
    dd_stop_request_fatal("fatal %s", "one");
    dd_stop_request_fatal("fatal %s", "two");
    assert_true(dd_stop_is_requested());
    assert_true(dd_stop_is_fatal());
    assert_int_equal(dd_stop_signal(), 0);
    dd_stop_fatal_reason(reason, sizeof(reason));
    assert_string_equal(reason, "fatal one");
    assert_int_equal(dd_stop_exit_status(DD_EXIT_OK), DD_EXIT_SOFTWARE);
}

static void test_fatal_during_shutdown_still_gives_70(void **state) {
    (void)state;
    /* The operator's signal started the shutdown; a fatal error arrives
     * while it runs; then a second signal forces the exit. */
    assert_int_equal(dd_stop_request_signal(SIGTERM), 1);
    assert_int_equal(dd_stop_exit_status(DD_EXIT_OK), DD_EXIT_OK);
    dd_stop_request_fatal("fenced");
    assert_int_equal(dd_stop_exit_status(DD_EXIT_OK), DD_EXIT_SOFTWARE);
    assert_int_equal(dd_stop_request_signal(SIGTERM), 2);
    assert_int_equal(dd_stop_exit_status(DD_EXIT_SIGNAL), DD_EXIT_SOFTWARE);
}

static void test_done_requests_without_fatal(void **state) {
    (void)state;
    dd_stop_request_done();
    assert_true(dd_stop_wait(-1));
    assert_false(dd_stop_is_fatal());
    assert_int_equal(dd_stop_signal(), 0);
}

static void *fatal_later(void *arg) {
    (void)arg;
    dd_stop_request_fatal("from another thread");
    return NULL;
}

static void test_fatal_wakes_the_waiter(void **state) {
    pthread_t t;
    (void)state;
    assert_int_equal(pthread_create(&t, NULL, fatal_later, NULL), 0);
    assert_true(dd_stop_wait(10000));
    pthread_join(t, NULL);
    assert_true(dd_stop_is_fatal());
}

static void test_step_deadline_shares_the_budget(void **state) {
    (void)state;
    /* 10 s budget, weights 4 + 4 + 2. */
    assert_int_equal(dd_stop_step_deadline(0, 10000, 4, 10), 4000);
    /* The first step took 1 s: the flush gets 4/6 of the 9 s left. */
    assert_int_equal(dd_stop_step_deadline(1000, 10000, 4, 6), 7000);
    /* The last step gets all that is left. */
    assert_int_equal(dd_stop_step_deadline(7000, 10000, 2, 2), 10000);
    /* Spent: every later step is due now, never before now. */
    assert_int_equal(dd_stop_step_deadline(12000, 10000, 4, 6), 12000);
    assert_int_equal(dd_stop_step_deadline(10000, 10000, 2, 2), 10000);
    /* Degenerate weights. */
    assert_int_equal(dd_stop_step_deadline(0, 10000, 0, 6), 0);
    assert_int_equal(dd_stop_step_deadline(0, 10000, 3, 0), 10000);
    /* A zero budget: everything is due at once. */
    assert_int_equal(dd_stop_step_deadline(500, 500, 4, 10), 500);
}

static void test_step_deadlines_never_exceed_the_budget(void **state) {
    (void)state;
    for (int64_t budget = 0; budget <= 30000; budget += 777) {
        int64_t now = 0, d;
        d = dd_stop_step_deadline(now, budget, 4, 10);
        assert_true(d <= budget);
        now = d; /* each step uses its whole share */
        d = dd_stop_step_deadline(now, budget, 4, 6);
        assert_true(d >= now && d <= budget);
        now = d;
        d = dd_stop_step_deadline(now, budget, 2, 2);
        assert_int_equal(d, budget);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_nothing_requested_waits_and_times_out,
                               reset),
        cmocka_unit_test_setup(test_signal_requests_and_counts, reset),
        cmocka_unit_test_setup(test_fatal_is_sticky_and_keeps_first_reason,
                               reset),
        cmocka_unit_test_setup(test_fatal_during_shutdown_still_gives_70,
                               reset),
        cmocka_unit_test_setup(test_done_requests_without_fatal, reset),
        cmocka_unit_test_setup(test_fatal_wakes_the_waiter, reset),
        cmocka_unit_test(test_step_deadline_shares_the_budget),
        cmocka_unit_test(test_step_deadlines_never_exceed_the_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
