/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for offsets: the committable watermark under in-order,
 * out-of-order and sparse completion, duplicate and stale completions,
 * discard and wait_idle on revoke, the rebase of a partition whose fetch
 * position moved backwards, the window behind a stuck offset, the list of
 * partitions whose watermark moved, and a two-thread
 * run (dispatch vs. completion) that checks the watermark invariant on every
 * advance. Threads are synchronised through observable state with deadlines,
 * never by sleeping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "offsets.h"
#include "util.h"

/* How long a test waits for another thread before failing, in ms. Scaled
 * like the runner's timeout for sanitizer and valgrind runs. */
static int64_t patience_ms(void) {
    const char *m = getenv("DD_TEST_TIMEOUT_MULTIPLIER");
    int64_t mult = m != NULL ? atoll(m) : 1;
    return 10000 * (mult > 0 ? mult : 1);
}

static int setup_tracker(void **state) {
    dd_offsets_t *ot = dd_offsets_new(NULL, 0);
    if (ot == NULL)
        return -1;
    *state = ot;
    return 0;
}

static int teardown_tracker(void **state) {
    dd_offsets_destroy(*state);
    return 0;
}

/* Assign partition p and dispatch n offsets from offs; returns the epoch. */
static uint32_t assign_and_dispatch(dd_offsets_t *ot, int32_t p,
                                    const int64_t *offs, size_t n) {
    uint32_t epoch = 0, e2 = 0;
    assert_int_equal(dd_offsets_assign(ot, p, &epoch), DD_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(dd_offsets_dispatch(ot, p, offs[i], &e2), DD_OK);
        assert_int_equal(e2, epoch);
    }
    return epoch;
}

static void test_offsets_in_order_completion_advances_by_one(void **state) {
    dd_offsets_t *ot = *state;
    const int64_t offs[] = {0, 1, 2, 3};
    uint32_t epoch = assign_and_dispatch(ot, 0, offs, 4);
    int64_t wm = -1;

    assert_int_equal(dd_offsets_committable(ot, 0), -1);
    assert_int_equal(dd_offsets_pending(ot, 0), 4);
    for (int64_t o = 0; o < 4; o++) {
        assert_int_equal(dd_offsets_mark_done(ot, 0, epoch, o, &wm), 1);
        assert_int_equal(wm, o + 1);
        assert_int_equal(dd_offsets_committable(ot, 0), o + 1);
        assert_int_equal(dd_offsets_pending(ot, 0), (size_t)(3 - o));
    }
    assert_int_equal(dd_offsets_pending_total(ot), 0);
}

static void
test_offsets_out_of_order_completion_waits_for_the_gap(void **state) {
    dd_offsets_t *ot = *state;
    /* 1..5 with a hole at 4 (a transaction marker, say). */
    const int64_t offs[] = {1, 2, 3, 5};
    uint32_t epoch = assign_and_dispatch(ot, 3, offs, 4);
    int64_t wm = -1;

    assert_int_equal(dd_offsets_mark_done(ot, 3, epoch, 1, &wm), 1);
    assert_int_equal(wm, 2);
    wm = -7;
    assert_int_equal(dd_offsets_mark_done(ot, 3, epoch, 3, &wm), 0);
    assert_int_equal(dd_offsets_mark_done(ot, 3, epoch, 5, &wm), 0);
    assert_int_equal(wm, -7); /* untouched when not advanced */
    assert_int_equal(dd_offsets_committable(ot, 3), 2);
    assert_int_equal(dd_offsets_pending(ot, 3), 1);
    assert_int_equal(dd_offsets_mark_done(ot, 3, epoch, 2, &wm), 1);
    assert_int_equal(wm, 6);
    assert_int_equal(dd_offsets_committable(ot, 3), 6);
    assert_int_equal(dd_offsets_pending(ot, 3), 0);
}

static void test_offsets_gaps_are_not_assumed_dense(void **state) {
    dd_offsets_t *ot = *state;
    const int64_t offs[] = {10, 11, 15, 20};
    uint32_t epoch = assign_and_dispatch(ot, 1, offs, 4);
    int64_t wm = -1;

    assert_int_equal(dd_offsets_mark_done(ot, 1, epoch, 10, &wm), 1);
    assert_int_equal(wm, 11);
    assert_int_equal(dd_offsets_mark_done(ot, 1, epoch, 15, &wm), 0);
    assert_int_equal(dd_offsets_committable(ot, 1), 11);
    /* Offsets that were never dispatched are unknown, not "done". */
    assert_int_equal(dd_offsets_mark_done(ot, 1, epoch, 12, &wm), -1);
    assert_int_equal(dd_offsets_mark_done(ot, 1, epoch, 21, &wm), -1);
    assert_int_equal(dd_offsets_mark_done(ot, 1, epoch, 11, &wm), 1);
    assert_int_equal(wm, 16);
    assert_int_equal(dd_offsets_mark_done(ot, 1, epoch, 20, &wm), 1);
    assert_int_equal(wm, 21);
    assert_int_equal(dd_offsets_committable(ot, 1), 21);
}

static void test_offsets_duplicate_mark_done_is_ignored(void **state) {
    dd_offsets_t *ot = *state;
    const int64_t offs[] = {0, 1, 2};
    uint32_t epoch = assign_and_dispatch(ot, 0, offs, 3);
    int64_t wm = -1;

    /* Duplicate of an entry still tracked (done, behind a pending one). */
    assert_int_equal(dd_offsets_mark_done(ot, 0, epoch, 1, &wm), 0);
    assert_int_equal(dd_offsets_mark_done(ot, 0, epoch, 1, &wm), -1);
    assert_int_equal(dd_offsets_pending(ot, 0), 2);
    /* Duplicate of an entry already popped below the watermark. */
    assert_int_equal(dd_offsets_mark_done(ot, 0, epoch, 0, &wm), 1);
    assert_int_equal(wm, 2);
    assert_int_equal(dd_offsets_mark_done(ot, 0, epoch, 0, &wm), -1);
    assert_int_equal(dd_offsets_mark_done(ot, 0, epoch, 1, &wm), -1);
    assert_int_equal(dd_offsets_committable(ot, 0), 2);
    assert_int_equal(dd_offsets_pending(ot, 0), 1);
    assert_int_equal(dd_offsets_pending_total(ot), 1);
}

static void test_offsets_non_increasing_dispatch_is_reported(void **state) {
    dd_offsets_t *ot = *state;
    uint32_t epoch;

    /* Not assigned yet. */
    assert_int_equal(dd_offsets_dispatch(ot, 2, 5, &epoch), DD_ERR);
    assert_int_equal(dd_offsets_assign(ot, 2, &epoch), DD_OK);
    assert_int_equal(dd_offsets_dispatch(ot, 2, -1, NULL), DD_ERR);
    assert_int_equal(dd_offsets_dispatch(ot, 2, 5, NULL), DD_OK);
    assert_int_equal(dd_offsets_dispatch(ot, 2, 5, NULL), DD_OFFSETS_BEHIND);
    assert_int_equal(dd_offsets_dispatch(ot, 2, 4, NULL), DD_OFFSETS_BEHIND);
    assert_int_equal(dd_offsets_dispatch(ot, 2, 7, NULL), DD_OK);
    /* Still reported once everything before is done and popped. */
    assert_int_equal(dd_offsets_mark_done(ot, 2, epoch, 5, NULL), 1);
    assert_int_equal(dd_offsets_mark_done(ot, 2, epoch, 7, NULL), 1);
    assert_int_equal(dd_offsets_dispatch(ot, 2, 7, NULL), DD_OFFSETS_BEHIND);
    assert_int_equal(dd_offsets_dispatch(ot, 2, 6, NULL), DD_OFFSETS_BEHIND);
    assert_int_equal(dd_offsets_dispatch(ot, 2, 8, NULL), DD_OK);
    assert_int_equal(dd_offsets_pending(ot, 2), 1);
}

/* The input topic deleted and re-created: 20 offsets done, then the fetch
 * position is back at 0. The re-based partition takes 0..24 again, the
 * committable offset goes back to 0 at once (never past a record not
 * done), and late completions of the old epoch are ignored. */
static void test_offsets_rebase_to_zero_takes_every_offset_again(void **state) {
    dd_offsets_t *ot = *state;
    int64_t offs[20], last = -2, wm = -2;
    uint32_t old, cur = 0;
    dd_offsets_part_info_t info;

    for (int i = 0; i < 20; i++)
        offs[i] = i;
    old = assign_and_dispatch(ot, 0, offs, 20);
    for (int i = 0; i < 19; i++)
        assert_true(dd_offsets_mark_done(ot, 0, old, i, NULL) >= 0);
    assert_int_equal(dd_offsets_committable(ot, 0), 19);
    assert_int_equal(dd_offsets_dispatch(ot, 0, 0, NULL), DD_OFFSETS_BEHIND);

    assert_int_equal(dd_offsets_rebase(ot, 0, 0, &last, &wm), DD_OK);
    assert_int_equal(last, 19);
    assert_int_equal(wm, 0);
    assert_int_equal(dd_offsets_committable(ot, 0), 0);
    assert_int_equal(dd_offsets_pending(ot, 0), 0);
    assert_int_equal(dd_offsets_window(ot, 0), 0);
    for (int i = 0; i < 25; i++)
        assert_int_equal(dd_offsets_dispatch(ot, 0, i, &cur), DD_OK);
    assert_true(cur != old);
    /* The late answer of old offset 19 matches neither its forgotten entry
     * nor the new entry at 19. */
    assert_int_equal(dd_offsets_mark_done(ot, 0, old, 19, &wm), -1);
    assert_int_equal(dd_offsets_committable(ot, 0), 0);
    for (int i = 0; i < 25; i++)
        assert_true(dd_offsets_mark_done(ot, 0, cur, i, NULL) >= 0);
    assert_int_equal(dd_offsets_committable(ot, 0), 25);
    assert_int_equal(dd_offsets_snapshot(ot, &info, 1), 1);
    assert_int_equal(info.rewinds, 1);
    assert_int_equal(info.epoch, cur);
    assert_int_equal(info.window, 0);
    assert_int_equal(dd_offsets_pending_total(ot), 0);
}

/* A rewind to the middle of the tracked entries: those below the new
 * position stay (and complete under their epoch), those at or above it are
 * forgotten and dispatched again under the new one. */
static void test_offsets_rebase_keeps_entries_below_position(void **state) {
    dd_offsets_t *ot = *state;
    const int64_t offs[] = {10, 11, 12, 13, 14, 15};
    uint32_t old = assign_and_dispatch(ot, 1, offs, 6), cur = 0;
    int64_t last = -2, wm = -2;

    assert_int_equal(dd_offsets_mark_done(ot, 1, old, 10, NULL), 1);
    assert_int_equal(dd_offsets_mark_done(ot, 1, old, 14, NULL), 0);
    assert_int_equal(dd_offsets_rebase(ot, 1, 13, &last, &wm), DD_OK);
    assert_int_equal(last, 15);
    assert_int_equal(wm, 11); /* 11 and 12 are not done */
    assert_int_equal(dd_offsets_pending(ot, 1), 2);
    assert_int_equal(dd_offsets_window(ot, 1), 2);
    assert_int_equal(dd_offsets_dispatch(ot, 1, 12, NULL), DD_OFFSETS_BEHIND);
    assert_int_equal(dd_offsets_dispatch(ot, 1, 13, &cur), DD_OK);
    assert_true(cur != old);
    /* Old 13 and 15 were forgotten: ignored. */
    assert_int_equal(dd_offsets_mark_done(ot, 1, old, 13, NULL), -1);
    assert_int_equal(dd_offsets_mark_done(ot, 1, old, 15, NULL), -1);
    assert_int_equal(dd_offsets_mark_done(ot, 1, cur, 13, NULL), 0);
    /* 11 and 12 still complete under the old epoch, and then 13. */
    assert_int_equal(dd_offsets_mark_done(ot, 1, old, 11, &wm), 1);
    assert_int_equal(wm, 12);
    assert_int_equal(dd_offsets_mark_done(ot, 1, cur, 12, NULL), -1);
    assert_int_equal(dd_offsets_mark_done(ot, 1, old, 12, &wm), 1);
    assert_int_equal(wm, 14);
    assert_int_equal(dd_offsets_pending_total(ot), 0);
    /* Not assigned, or a negative position: refused. */
    assert_int_equal(dd_offsets_rebase(ot, 1, -1, NULL, NULL), DD_ERR);
    assert_int_equal(dd_offsets_revoke(ot, 1, NULL), DD_OK);
    assert_int_equal(dd_offsets_rebase(ot, 1, 0, &last, NULL), DD_ERR);
    assert_int_equal(last, -1);
}

/* The window is every entry from the oldest not done to the last
 * dispatched: it grows behind a stuck offset and drops to 0 once that one
 * is done. */
static void test_offsets_window_grows_behind_a_stuck_offset(void **state) {
    dd_offsets_t *ot = *state;
    int64_t offs[300];
    uint32_t epoch;

    for (int i = 0; i < 300; i++)
        offs[i] = 2 * i; /* sparse, as in a compacted topic */
    epoch = assign_and_dispatch(ot, 3, offs, 300);
    assert_int_equal(dd_offsets_window(ot, 3), 300);
    for (int i = 1; i < 300; i++)
        assert_int_equal(dd_offsets_mark_done(ot, 3, epoch, offs[i], NULL), 0);
    assert_int_equal(dd_offsets_window(ot, 3), 300);
    assert_int_equal(dd_offsets_pending(ot, 3), 1);
    assert_int_equal(dd_offsets_mark_done(ot, 3, epoch, 0, NULL), 1);
    assert_int_equal(dd_offsets_window(ot, 3), 0);
    assert_int_equal(dd_offsets_committable(ot, 3), 599);
    assert_int_equal(dd_offsets_window(ot, 9), 0); /* not assigned */
}

static void
test_offsets_stale_epoch_after_revoke_and_reassign_is_ignored(void **state) {
    dd_offsets_t *ot = *state;
    const int64_t offs[] = {100, 101, 102};
    uint32_t old = assign_and_dispatch(ot, 4, offs, 3), cur;
    int64_t wm = 0;

    assert_int_equal(dd_offsets_mark_done(ot, 4, old, 100, &wm), 1);
    assert_int_equal(dd_offsets_revoke(ot, 4, &wm), DD_OK);
    assert_int_equal(wm, 101);
    /* Revoked: the old jobs' completions are ignored. */
    assert_int_equal(dd_offsets_mark_done(ot, 4, old, 101, &wm), -1);
    assert_int_equal(dd_offsets_committable(ot, 4), -1);
    assert_int_equal(dd_offsets_pending(ot, 4), 0);
    assert_int_equal(dd_offsets_revoke(ot, 4, &wm), DD_ERR);
    assert_int_equal(wm, -1);

    /* Reassigned: redelivery restarts at 101 under a new epoch. */
    assert_int_equal(dd_offsets_assign(ot, 4, &cur), DD_OK);
    assert_true(cur != old);
    assert_int_equal(dd_offsets_dispatch(ot, 4, 101, NULL), DD_OK);
    assert_int_equal(dd_offsets_dispatch(ot, 4, 102, NULL), DD_OK);
    assert_int_equal(dd_offsets_mark_done(ot, 4, old, 101, &wm), -1);
    assert_int_equal(dd_offsets_mark_done(ot, 4, old, 102, &wm), -1);
    assert_int_equal(dd_offsets_pending(ot, 4), 2);
    assert_int_equal(dd_offsets_committable(ot, 4), -1);
    assert_int_equal(dd_offsets_mark_done(ot, 4, cur, 101, &wm), 1);
    assert_int_equal(wm, 102);

    /* A reassign while assigned also invalidates the previous epoch. */
    assert_int_equal(dd_offsets_assign(ot, 4, &old), DD_OK);
    assert_int_equal(dd_offsets_mark_done(ot, 4, cur, 102, &wm), -1);
    assert_int_equal(dd_offsets_pending_total(ot), 0);
}

typedef struct waiter {
    dd_offsets_t *ot;
    const int32_t *parts;
    size_t n;
    int64_t deadline;    /* absolute, dd_now_ms() clock */
    int rc;              /* result of dd_offsets_wait_idle() */
    int64_t returned_at; /* dd_now_ms() when it returned */
    atomic_int done;
} waiter_t;

static void *wait_idle_main(void *arg) {
    waiter_t *w = arg;
    w->rc = dd_offsets_wait_idle(w->ot, w->parts, w->n, w->deadline);
    w->returned_at = dd_now_ms();
    atomic_store(&w->done, 1);
    return NULL;
}

/* Start a thread blocked in dd_offsets_wait_idle() and return once it is
 * inside the wait, so whatever the caller does next must wake it. */
static void start_blocked_waiter(pthread_t *t, waiter_t *w) {
    int64_t deadline = dd_now_ms() + patience_ms();

    w->deadline = deadline;
    assert_int_equal(pthread_create(t, NULL, wait_idle_main, w), 0);
    while (dd_offsets_idle_waiters(w->ot) != 1) {
        assert_false(atomic_load(&w->done));
        assert_true(dd_now_ms() < deadline);
        sched_yield();
    }
}

/* Join the waiter and check it was woken, not released by its deadline. */
static void join_woken_waiter(pthread_t t, waiter_t *w) {
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(w->rc, DD_OK);
    assert_true(w->returned_at < w->deadline);
    assert_int_equal(dd_offsets_idle_waiters(w->ot), 0);
}

static void test_offsets_discard_from_then_wait_idle_succeeds_once_earlier_done(
    void **state) {
    dd_offsets_t *ot = *state;
    const int64_t offs[] = {1, 2, 4, 6, 7};
    int32_t parts[] = {5, 9};
    uint32_t epoch = assign_and_dispatch(ot, 5, offs, 5);
    waiter_t w = {.ot = ot, .parts = parts, .n = 2};
    pthread_t t;
    int64_t wm;

    /* Jobs 4, 6, 7 were removed from the queue on revoke. */
    assert_int_equal(dd_offsets_discard_from(ot, 5, 3), 3);
    assert_int_equal(dd_offsets_pending(ot, 5), 2);
    assert_int_equal(dd_offsets_mark_done(ot, 5, epoch, 4, NULL), -1);
    /* 1 and 2 are in flight: not idle yet. */
    assert_int_equal(dd_offsets_wait_idle(ot, parts, 2, dd_now_ms()), DD_ERR);

    start_blocked_waiter(&t, &w);
    assert_int_equal(dd_offsets_mark_done(ot, 5, epoch, 2, NULL), 0);
    assert_false(atomic_load(&w.done) && w.rc == DD_OK);
    assert_int_equal(dd_offsets_mark_done(ot, 5, epoch, 1, &wm), 1);
    join_woken_waiter(t, &w);
    /* The watermark stops before the discarded offsets: 4 is redelivered. */
    assert_int_equal(wm, 3);
    assert_int_equal(dd_offsets_revoke(ot, 5, &wm), DD_OK);
    assert_int_equal(wm, 3);
    assert_int_equal(dd_offsets_wait_idle(ot, NULL, 0, -1), DD_OK);
}

static void test_offsets_revoke_wakes_idle_waiter(void **state) {
    dd_offsets_t *ot = *state;
    const int64_t offs[] = {1, 2};
    int32_t part = 8;
    waiter_t w = {.ot = ot, .parts = NULL, .n = 0};
    pthread_t t;
    int64_t wm = 0;

    assign_and_dispatch(ot, part, offs, 2);
    start_blocked_waiter(&t, &w);
    /* Deadline passed with jobs in flight: the state is dropped anyway. */
    assert_int_equal(dd_offsets_revoke(ot, part, &wm), DD_OK);
    join_woken_waiter(t, &w);
    assert_int_equal(wm, -1);
    assert_int_equal(dd_offsets_pending_total(ot), 0);
}

static void test_offsets_discard_from_stops_at_a_done_entry(void **state) {
    dd_offsets_t *ot = *state;
    const int64_t offs[] = {1, 2, 3, 4};
    uint32_t epoch = assign_and_dispatch(ot, 0, offs, 4);
    int64_t wm = -1;

    assert_int_equal(dd_offsets_mark_done(ot, 0, epoch, 3, NULL), 0);
    /* Forgetting 2 would let the watermark jump over it once 1 is done. */
    assert_int_equal(dd_offsets_discard_from(ot, 0, 2), 1);
    assert_int_equal(dd_offsets_pending(ot, 0), 2);
    assert_int_equal(dd_offsets_mark_done(ot, 0, epoch, 1, &wm), 1);
    assert_int_equal(wm, 2);
    /* The discarded offset may be dispatched again. */
    assert_int_equal(dd_offsets_dispatch(ot, 0, 4, NULL), DD_OK);
    assert_int_equal(dd_offsets_discard_from(ot, 0, 0), 1);
    assert_int_equal(dd_offsets_discard_from(ot, 7, 0), 0);
}

static void test_offsets_wait_idle_times_out_at_deadline(void **state) {
    dd_offsets_t *ot = *state;
    const int64_t offs[] = {42};
    int32_t part = 6;
    int64_t deadline;

    assign_and_dispatch(ot, part, offs, 1);
    deadline = dd_now_ms() + 40;
    assert_int_equal(dd_offsets_wait_idle(ot, &part, 1, deadline), DD_ERR);
    assert_true(dd_now_ms() >= deadline);
    deadline = dd_now_ms() + 20;
    assert_int_equal(dd_offsets_wait_idle(ot, NULL, 0, deadline), DD_ERR);
    assert_true(dd_now_ms() >= deadline);
    /* Other partitions are idle; an empty list is idle. */
    part = 2;
    assert_int_equal(dd_offsets_wait_idle(ot, &part, 1, dd_now_ms()), DD_OK);
    assert_int_equal(dd_offsets_wait_idle(ot, NULL, 0, 0), DD_ERR);
    assert_int_equal(dd_offsets_wait_idle(ot, &part, 0, 0), DD_OK);
}

static void test_offsets_ring_grows_past_initial_capacity(void **state) {
    dd_offsets_t *ot = *state;
    uint32_t epoch;
    int64_t wm = -1;

    assert_int_equal(dd_offsets_assign(ot, 0, &epoch), DD_OK);
    /* Complete the first half so the ring wraps before it grows. */
    for (int64_t o = 0; o < 50; o++)
        assert_int_equal(dd_offsets_dispatch(ot, 0, 3 * o, NULL), DD_OK);
    for (int64_t o = 0; o < 40; o++)
        assert_int_equal(dd_offsets_mark_done(ot, 0, epoch, 3 * o, &wm), 1);
    for (int64_t o = 50; o < 1000; o++)
        assert_int_equal(dd_offsets_dispatch(ot, 0, 3 * o, NULL), DD_OK);
    /* Complete the rest backwards: nothing moves until offset 120. */
    for (int64_t o = 999; o > 40; o--)
        assert_int_equal(dd_offsets_mark_done(ot, 0, epoch, 3 * o, &wm), 0);
    assert_int_equal(dd_offsets_committable(ot, 0), 3 * 39 + 1);
    assert_int_equal(dd_offsets_mark_done(ot, 0, epoch, 120, &wm), 1);
    assert_int_equal(wm, 3 * 999 + 1);
    assert_int_equal(dd_offsets_pending_total(ot), 0);
}

static void test_offsets_snapshot_reports_each_partition(void **state) {
    dd_offsets_t *ot = *state;
    const int64_t offs[] = {5, 8, 9};
    dd_offsets_part_info_t info[8];
    uint32_t epoch = assign_and_dispatch(ot, 3, offs, 3);

    assert_int_equal(dd_offsets_assign(ot, 1, NULL), DD_OK);
    assert_int_equal(dd_offsets_mark_done(ot, 3, epoch, 5, NULL), 1);
    assert_int_equal(dd_offsets_mark_done(ot, 3, epoch, 9, NULL), 0);
    dd_offsets_set_committed(ot, 3, 6);
    dd_offsets_set_committed(ot, 7, 70); /* never assigned here */

    assert_int_equal(dd_offsets_snapshot(ot, info, 8), 3);
    assert_int_equal(info[0].partition, 1);
    assert_int_equal(info[0].assigned, 1);
    assert_int_equal(info[0].committable, -1);
    assert_int_equal(info[0].last_dispatched, -1);
    assert_int_equal(info[0].committed, -1);

    assert_int_equal(info[1].partition, 3);
    assert_int_equal(info[1].epoch, epoch);
    assert_int_equal(info[1].assigned, 1);
    assert_int_equal(info[1].dispatched_count, 3);
    assert_int_equal(info[1].done_count, 2);
    assert_int_equal(info[1].discarded_count, 0);
    assert_int_equal(info[1].pending, 1);
    assert_int_equal(info[1].last_dispatched, 9);
    assert_int_equal(info[1].committable, 6);
    assert_int_equal(info[1].committed, 6);

    assert_int_equal(info[2].partition, 7);
    assert_int_equal(info[2].assigned, 0);
    assert_int_equal(info[2].committed, 70);

    /* Truncated to max; revoked partitions stay listed, unassigned. */
    assert_int_equal(dd_offsets_snapshot(ot, info, 1), 1);
    assert_int_equal(dd_offsets_revoke(ot, 3, NULL), DD_OK);
    assert_int_equal(dd_offsets_snapshot(ot, info, 8), 3);
    assert_int_equal(info[1].assigned, 0);
    assert_int_equal(info[1].epoch, epoch + 1);
    assert_int_equal(info[1].pending, 0);
    assert_int_equal(info[1].committed, 6);
}

static void test_offsets_rejects_partitions_out_of_range(void **state) {
    dd_offsets_t *ot = *state;
    dd_offsets_part_info_t info[1];

    assert_int_equal(dd_offsets_assign(ot, -1, NULL), DD_ERR);
    assert_int_equal(dd_offsets_assign(ot, DD_OFFSETS_PARTITION_MAX + 1, NULL),
                     DD_ERR);
    assert_int_equal(dd_offsets_mark_done(ot, 12345, 1, 0, NULL), -1);
    assert_int_equal(dd_offsets_committable(ot, -3), -1);
    assert_int_equal(dd_offsets_pending(ot, 99), 0);
    dd_offsets_set_committed(ot, -1, 5);
    assert_int_equal(dd_offsets_snapshot(ot, info, 1), 0);
    /* A high id grows the table. */
    assert_int_equal(dd_offsets_assign(ot, 1000, NULL), DD_OK);
    assert_int_equal(dd_offsets_snapshot(ot, info, 1), 1);
    assert_int_equal(info[0].partition, 1000);
    dd_offsets_destroy(NULL);
}

/*----- Two threads: dispatch vs. shuffled completion -----*/

#define RACE_PARTS  8
#define RACE_TOTAL  200000
#define RACE_WINDOW 256

typedef struct race {
    dd_offsets_t *ot;
    uint32_t epoch[RACE_PARTS];
    int32_t part[RACE_TOTAL];   /* partition of the k-th dispatch */
    int64_t offset[RACE_TOTAL]; /* offset of the k-th dispatch */
    size_t idx[RACE_TOTAL];     /* its index within its partition */
    int64_t *offs[RACE_PARTS];  /* per partition, in dispatch order */
    size_t nper[RACE_PARTS];
    atomic_size_t published; /* dispatches completed so far */
    atomic_int dispatch_errors;
    /* Marker-thread state, read by the test after join. */
    unsigned char *done[RACE_PARTS];
    size_t first_not_done[RACE_PARTS];
    int64_t reported[RACE_PARTS]; /* last watermark mark_done reported */
    long ignored, decreased, too_high, wrong_value, wrong_rc, stuck;
    long advances;
} race_t;

static uint64_t xorshift(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *race_dispatcher(void *arg) {
    race_t *r = arg;
    uint32_t epoch;

    for (size_t k = 0; k < RACE_TOTAL; k++) {
        if (dd_offsets_dispatch(r->ot, r->part[k], r->offset[k], &epoch) !=
                DD_OK ||
            epoch != r->epoch[r->part[k]])
            atomic_fetch_add(&r->dispatch_errors, 1);
        atomic_store_explicit(&r->published, k + 1, memory_order_release);
    }
    return NULL;
}

/* Check one mark_done result against the marker's own view: the watermark
 * must equal the offset after the done prefix, which never exceeds the
 * first not-done offset, and never decreases. */
static void race_check(race_t *r, int32_t p, size_t i, int rc, int64_t wm) {
    size_t fnd_before = r->first_not_done[p];
    size_t *fnd = &r->first_not_done[p];
    int64_t limit;

    r->done[p][i] = 1;
    while (*fnd < r->nper[p] && r->done[p][*fnd])
        (*fnd)++;
    if (rc < 0) {
        r->ignored++;
        return;
    }
    if (rc != (i == fnd_before)) {
        r->wrong_rc++;
        return;
    }
    if (rc == 0)
        return;
    r->advances++;
    limit = *fnd < r->nper[p] ? r->offs[p][*fnd] : r->offs[p][*fnd - 1] + 1;
    if (wm <= r->reported[p])
        r->decreased++;
    if (wm > limit)
        r->too_high++;
    if (wm != r->offs[p][*fnd - 1] + 1)
        r->wrong_value++;
    r->reported[p] = wm;
}

static void *race_marker(void *arg) {
    race_t *r = arg;
    size_t window[RACE_WINDOW];
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    int64_t deadline = dd_now_ms() + patience_ms();

    for (size_t base = 0; base < RACE_TOTAL; base += RACE_WINDOW) {
        size_t n =
            RACE_TOTAL - base < RACE_WINDOW ? RACE_TOTAL - base : RACE_WINDOW;
        /* Wait (yielding) until the whole window was dispatched. */
        while (atomic_load_explicit(&r->published, memory_order_acquire) <
               base + n) {
            if (dd_now_ms() >= deadline) {
                r->stuck++;
                return NULL;
            }
            sched_yield();
        }
        for (size_t i = 0; i < n; i++)
            window[i] = base + i;
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = (size_t)(xorshift(&seed) % (i + 1));
            size_t tmp = window[i];
            window[i] = window[j];
            window[j] = tmp;
        }
        for (size_t i = 0; i < n; i++) {
            size_t k = window[i];
            int64_t wm = -1;
            int rc = dd_offsets_mark_done(
                r->ot, r->part[k], r->epoch[r->part[k]], r->offset[k], &wm);
            race_check(r, r->part[k], r->idx[k], rc, wm);
        }
    }
    return NULL;
}

static void
test_offsets_threaded_dispatch_and_shuffled_done_keep_invariant(void **state) {
    dd_offsets_t *ot = *state;
    race_t *r = dd_xcalloc(1, sizeof(*r));
    int64_t next[RACE_PARTS];
    uint64_t seed = 42;
    pthread_t td, tm;

    r->ot = ot;
    for (int p = 0; p < RACE_PARTS; p++) {
        assert_int_equal(dd_offsets_assign(ot, p, &r->epoch[p]), DD_OK);
        r->offs[p] = dd_xcalloc(RACE_TOTAL, sizeof(int64_t));
        r->done[p] = dd_xcalloc(RACE_TOTAL, 1);
        r->reported[p] = -1;
        next[p] = (int64_t)(xorshift(&seed) % 1000);
    }
    /* Random partition per message, random gaps (1 in 4 skips 1..4). */
    for (size_t k = 0; k < RACE_TOTAL; k++) {
        uint64_t x = xorshift(&seed);
        int32_t p = (int32_t)(x % RACE_PARTS);
        r->part[k] = p;
        r->offset[k] = next[p];
        r->idx[k] = r->nper[p];
        r->offs[p][r->nper[p]++] = next[p];
        next[p] += 1 + ((x >> 8) % 4 == 0 ? (int64_t)((x >> 16) % 4) + 1 : 0);
    }
    atomic_init(&r->published, 0);

    assert_int_equal(pthread_create(&tm, NULL, race_marker, r), 0);
    assert_int_equal(pthread_create(&td, NULL, race_dispatcher, r), 0);
    assert_int_equal(pthread_join(td, NULL), 0);
    assert_int_equal(pthread_join(tm, NULL), 0);

    assert_int_equal(r->stuck, 0);
    assert_int_equal(atomic_load(&r->dispatch_errors), 0);
    assert_int_equal(r->ignored, 0);
    assert_int_equal(r->wrong_rc, 0);
    assert_int_equal(r->decreased, 0);
    assert_int_equal(r->too_high, 0);
    assert_int_equal(r->wrong_value, 0);
    assert_true(r->advances > 0);
    for (int p = 0; p < RACE_PARTS; p++) {
        assert_true(r->nper[p] > 0);
        assert_int_equal(r->first_not_done[p], r->nper[p]);
        assert_int_equal(dd_offsets_committable(ot, p),
                         r->offs[p][r->nper[p] - 1] + 1);
        assert_int_equal(r->reported[p], r->offs[p][r->nper[p] - 1] + 1);
        assert_int_equal(dd_offsets_pending(ot, p), 0);
        dd_free(r->offs[p]);
        dd_free(r->done[p]);
    }
    assert_int_equal(dd_offsets_pending_total(ot), 0);
    dd_free(r);
}

/* Only partitions whose watermark moved are listed, each once, in the
 * order they moved, with their watermark; a call takes at most max. */
static void
test_offsets_take_changed_lists_moved_partitions_once(void **state) {
    dd_offsets_t *ot = *state;
    const int64_t offs[] = {0, 1, 2};
    uint32_t e[5];
    dd_offsets_change_t ch[4];

    for (int32_t p = 0; p < 5; p++)
        e[p] = assign_and_dispatch(ot, p, offs, 3);
    assert_int_equal(dd_offsets_take_changed(ot, ch, 4), 0);
    /* Partition 3 twice, 1 once; 4 completes out of order (no move). */
    assert_int_equal(dd_offsets_mark_done(ot, 3, e[3], 0, NULL), 1);
    assert_int_equal(dd_offsets_mark_done(ot, 1, e[1], 0, NULL), 1);
    assert_int_equal(dd_offsets_mark_done(ot, 3, e[3], 1, NULL), 1);
    assert_int_equal(dd_offsets_mark_done(ot, 4, e[4], 2, NULL), 0);
    assert_int_equal(dd_offsets_take_changed(ot, ch, 4), 2);
    assert_int_equal(ch[0].partition, 3);
    assert_int_equal(ch[0].committable, 2);
    assert_int_equal(ch[1].partition, 1);
    assert_int_equal(ch[1].committable, 1);
    assert_int_equal(dd_offsets_take_changed(ot, ch, 4), 0);

    /* More than max: the rest comes first in the next call. */
    for (int32_t p = 0; p < 3; p++)
        assert_int_equal(
            dd_offsets_mark_done(ot, p, e[p], p == 1 ? 1 : 0, NULL), 1);
    assert_int_equal(dd_offsets_take_changed(ot, ch, 2), 2);
    assert_int_equal(ch[0].partition, 0);
    assert_int_equal(ch[1].partition, 1);
    assert_int_equal(dd_offsets_mark_done(ot, 0, e[0], 1, NULL), 1);
    assert_int_equal(dd_offsets_take_changed(ot, ch, 4), 2);
    assert_int_equal(ch[0].partition, 2);
    assert_int_equal(ch[1].partition, 0);
    assert_int_equal(ch[1].committable, 2);

    /* A rebase sets the watermark: listed. A revoked one reads -1. */
    assert_int_equal(dd_offsets_rebase(ot, 2, 0, NULL, NULL), DD_OK);
    assert_int_equal(dd_offsets_mark_done(ot, 4, e[4], 0, NULL), 1);
    assert_int_equal(dd_offsets_revoke(ot, 4, NULL), DD_OK);
    assert_int_equal(dd_offsets_take_changed(ot, ch, 4), 2);
    assert_int_equal(ch[0].partition, 2);
    assert_int_equal(ch[0].committable, 0);
    assert_int_equal(ch[1].partition, 4);
    assert_int_equal(ch[1].committable, -1);
}

#define T(name)                                                                \
    cmocka_unit_test_setup_teardown(name, setup_tracker, teardown_tracker)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_offsets_in_order_completion_advances_by_one),
        T(test_offsets_out_of_order_completion_waits_for_the_gap),
        T(test_offsets_gaps_are_not_assumed_dense),
        T(test_offsets_duplicate_mark_done_is_ignored),
        T(test_offsets_non_increasing_dispatch_is_reported),
        T(test_offsets_rebase_to_zero_takes_every_offset_again),
        T(test_offsets_rebase_keeps_entries_below_position),
        T(test_offsets_window_grows_behind_a_stuck_offset),
        T(test_offsets_stale_epoch_after_revoke_and_reassign_is_ignored),
        T(test_offsets_discard_from_then_wait_idle_succeeds_once_earlier_done),
        T(test_offsets_discard_from_stops_at_a_done_entry),
        T(test_offsets_revoke_wakes_idle_waiter),
        T(test_offsets_wait_idle_times_out_at_deadline),
        T(test_offsets_ring_grows_past_initial_capacity),
        T(test_offsets_snapshot_reports_each_partition),
        T(test_offsets_rejects_partitions_out_of_range),
        T(test_offsets_threaded_dispatch_and_shuffled_done_keep_invariant),
        T(test_offsets_take_changed_lists_moved_partitions_once),
    };
    return cmocka_run_group_tests_name("offsets", tests, NULL, NULL);
}
