/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for queue: FIFO order, full and empty behaviour with timeouts,
 * close waking blocked threads, batch push (what fits, wake-ups passed on),
 * remove_if, drain, and a multi-producer /
 * multi-consumer stress run (also run under ThreadSanitizer). Threads are
 * synchronised through observable state with deadlines, never by sleeping.
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
#include <string.h>

#include "queue.h"
#include "util.h"

#define ITEM(n)     ((void *)(uintptr_t)(n))
#define ITEM_NUM(p) ((uintptr_t)(p))

/* How long a test waits for another thread before failing, in ms. Scaled
 * like the runner's timeout for sanitizer and valgrind runs. */
static int64_t patience_ms(void) {
    const char *m = getenv("DD_TEST_TIMEOUT_MULTIPLIER");
    int64_t mult = m != NULL ? atoll(m) : 1;
    return 10000 * (mult > 0 ? mult : 1);
}

static size_t poppers_waiting(const dd_queue_t *jq) {
    size_t n;
    dd_queue_waiters(jq, &n, NULL);
    return n;
}

static size_t pushers_waiting(const dd_queue_t *jq) {
    size_t n;
    dd_queue_waiters(jq, NULL, &n);
    return n;
}

/* Spin (yielding) until pred(jq) reaches want, or fail at the deadline. */
static void wait_for_count(size_t (*pred)(const dd_queue_t *),
                           const dd_queue_t *jq, size_t want) {
    int64_t deadline = dd_now_ms() + patience_ms();
    while (pred(jq) != want) {
        assert_true(dd_now_ms() < deadline);
        sched_yield();
    }
}

typedef struct blocked_call {
    dd_queue_t *jq;
    int timeout_ms;
    void *item;      /* pusher: item to push */
    void *popped[4]; /* popper: items taken */
    size_t n;        /* popper: count taken */
    int rc;          /* pusher: result */
    atomic_int done; /* set when the call returned */
} blocked_call_t;

static void *popper_main(void *arg) {
    blocked_call_t *bc = arg;
    bc->n = dd_queue_pop_batch(bc->jq, bc->popped, 4, bc->timeout_ms);
    atomic_store(&bc->done, 1);
    return NULL;
}

static void *pusher_main(void *arg) {
    blocked_call_t *bc = arg;
    bc->rc = dd_queue_push(bc->jq, bc->item, bc->timeout_ms);
    atomic_store(&bc->done, 1);
    return NULL;
}

/* Set when a test gave up on a thread still blocked in the queue: the
 * teardown then leaks the queue, since destroying a condition variable
 * with a waiter would hang instead of reporting the failure. */
static int stranded;

/* Join t once bc->done is set, failing if that takes too long. */
static void join_when_done(pthread_t t, blocked_call_t *bc) {
    int64_t deadline = dd_now_ms() + patience_ms();
    while (!atomic_load(&bc->done)) {
        if (dd_now_ms() >= deadline) {
            stranded = 1;
            pthread_detach(t);
            fail_msg("thread still blocked in the queue after %lld ms",
                     (long long)patience_ms());
        }
        sched_yield();
    }
    assert_int_equal(pthread_join(t, NULL), 0);
}

static int setup_queue4(void **state) {
    dd_queue_t *jq = dd_queue_new(4, NULL, 0);
    if (jq == NULL)
        return -1;
    *state = jq;
    return 0;
}

static int teardown_queue(void **state) {
    dd_queue_t *jq = *state;
    if (stranded) {
        stranded = 0;
        return 0;
    }
    dd_queue_drain(jq, NULL, NULL);
    dd_queue_destroy(jq);
    return 0;
}

static void test_queue_new_rejects_zero_capacity(void **state) {
    char err[128] = "";
    (void)state;
    assert_null(dd_queue_new(0, err, sizeof(err)));
    assert_true(strlen(err) > 0);
    dd_queue_destroy(NULL);
}

static void test_queue_pops_in_fifo_order(void **state) {
    dd_queue_t *jq = *state;
    void *out[4];

    for (uintptr_t i = 1; i <= 4; i++)
        assert_int_equal(dd_queue_push(jq, ITEM(i), 0), DD_OK);
    assert_int_equal(dd_queue_depth(jq), 4);
    for (uintptr_t i = 1; i <= 4; i++) {
        assert_int_equal(dd_queue_pop_batch(jq, out, 1, 0), 1);
        assert_int_equal(ITEM_NUM(out[0]), i);
    }
    assert_int_equal(dd_queue_depth(jq), 0);
}

static void test_queue_try_push_fails_when_full(void **state) {
    dd_queue_t *jq = *state;
    void *out[4];

    assert_int_equal(dd_queue_capacity(jq), 4);
    for (uintptr_t i = 1; i <= 4; i++)
        assert_int_equal(dd_queue_try_push(jq, ITEM(i)), DD_OK);
    assert_int_equal(dd_queue_try_push(jq, ITEM(5)), DD_ERR);
    assert_int_equal(dd_queue_depth(jq), 4);
    /* One slot freed: try_push succeeds again, wrapping the ring. */
    assert_int_equal(dd_queue_pop_batch(jq, out, 1, 0), 1);
    assert_int_equal(dd_queue_try_push(jq, ITEM(5)), DD_OK);
    assert_int_equal(dd_queue_pop_batch(jq, out, 4, 0), 4);
    for (uintptr_t i = 0; i < 4; i++)
        assert_int_equal(ITEM_NUM(out[i]), i + 2);
}

static void test_queue_push_times_out_when_full(void **state) {
    dd_queue_t *jq = *state;
    int64_t start;

    for (uintptr_t i = 1; i <= 4; i++)
        assert_int_equal(dd_queue_try_push(jq, ITEM(i)), DD_OK);
    start = dd_now_us();
    assert_int_equal(dd_queue_push(jq, ITEM(5), 50), DD_ERR);
    assert_true(dd_now_us() - start >= 50 * 1000);
    assert_int_equal(dd_queue_depth(jq), 4);
    assert_false(dd_queue_is_closed(jq));
}

static void test_queue_pop_batch_takes_at_most_max(void **state) {
    dd_queue_t *jq = *state;
    void *out[4] = {NULL, NULL, NULL, NULL};

    for (uintptr_t i = 1; i <= 3; i++)
        assert_int_equal(dd_queue_try_push(jq, ITEM(i)), DD_OK);
    assert_int_equal(dd_queue_pop_batch(jq, out, 2, -1), 2);
    assert_int_equal(ITEM_NUM(out[0]), 1);
    assert_int_equal(ITEM_NUM(out[1]), 2);
    assert_null(out[2]);
    /* Fewer queued than max: takes what is there without waiting. */
    assert_int_equal(dd_queue_pop_batch(jq, out, 4, -1), 1);
    assert_int_equal(ITEM_NUM(out[0]), 3);
    assert_int_equal(dd_queue_pop_batch(jq, out, 0, -1), 0);
}

static void test_queue_pop_times_out_when_empty(void **state) {
    dd_queue_t *jq = *state;
    void *out[1];
    int64_t start = dd_now_us();

    assert_int_equal(dd_queue_pop_batch(jq, out, 1, 30), 0);
    assert_true(dd_now_us() - start >= 30 * 1000);
    assert_false(dd_queue_is_closed(jq));
    assert_int_equal(dd_queue_pop_batch(jq, out, 1, 0), 0);
}

static void test_queue_close_wakes_blocked_popper(void **state) {
    dd_queue_t *jq = *state;
    blocked_call_t bc = {.jq = jq, .timeout_ms = -1};
    pthread_t t;

    assert_int_equal(pthread_create(&t, NULL, popper_main, &bc), 0);
    wait_for_count(poppers_waiting, jq, 1);
    dd_queue_close(jq);
    join_when_done(t, &bc);
    assert_int_equal(bc.n, 0);
    assert_true(dd_queue_is_closed(jq));
}

static void test_queue_close_wakes_blocked_pusher(void **state) {
    dd_queue_t *jq = *state;
    blocked_call_t bc = {.jq = jq, .timeout_ms = -1, .item = ITEM(99)};
    pthread_t t;
    void *out[4];

    for (uintptr_t i = 1; i <= 4; i++)
        assert_int_equal(dd_queue_try_push(jq, ITEM(i)), DD_OK);
    assert_int_equal(pthread_create(&t, NULL, pusher_main, &bc), 0);
    wait_for_count(pushers_waiting, jq, 1);
    dd_queue_close(jq);
    join_when_done(t, &bc);
    assert_int_equal(bc.rc, DD_ERR);
    /* The rejected item was not queued. */
    assert_int_equal(dd_queue_pop_batch(jq, out, 4, 0), 4);
    assert_int_equal(ITEM_NUM(out[3]), 4);
}

static void test_queue_close_rejects_push_and_drains_remaining(void **state) {
    dd_queue_t *jq = *state;
    void *out[4];

    assert_int_equal(dd_queue_try_push(jq, ITEM(1)), DD_OK);
    assert_int_equal(dd_queue_try_push(jq, ITEM(2)), DD_OK);
    dd_queue_close(jq);
    dd_queue_close(jq); /* idempotent */
    assert_int_equal(dd_queue_try_push(jq, ITEM(3)), DD_ERR);
    assert_int_equal(dd_queue_push(jq, ITEM(3), -1), DD_ERR);
    assert_int_equal(dd_queue_pop_batch(jq, out, 1, -1), 1);
    assert_int_equal(ITEM_NUM(out[0]), 1);
    assert_int_equal(dd_queue_pop_batch(jq, out, 4, -1), 1);
    assert_int_equal(ITEM_NUM(out[0]), 2);
    /* Closed and empty: returns at once even with an infinite timeout. */
    assert_int_equal(dd_queue_pop_batch(jq, out, 4, -1), 0);
    assert_true(dd_queue_is_closed(jq));
}

static void test_queue_push_blocks_when_full_until_pop(void **state) {
    dd_queue_t *jq = *state;
    blocked_call_t bc = {.jq = jq, .timeout_ms = -1, .item = ITEM(5)};
    pthread_t t;
    void *out[4];

    for (uintptr_t i = 1; i <= 4; i++)
        assert_int_equal(dd_queue_try_push(jq, ITEM(i)), DD_OK);
    assert_int_equal(pthread_create(&t, NULL, pusher_main, &bc), 0);
    wait_for_count(pushers_waiting, jq, 1);
    assert_false(atomic_load(&bc.done));
    assert_int_equal(dd_queue_pop_batch(jq, out, 1, 0), 1);
    join_when_done(t, &bc);
    assert_int_equal(bc.rc, DD_OK);
    assert_int_equal(dd_queue_pop_batch(jq, out, 4, 0), 4);
    assert_int_equal(ITEM_NUM(out[0]), 2);
    assert_int_equal(ITEM_NUM(out[3]), 5);
}

static void test_queue_push_wakes_blocked_popper(void **state) {
    dd_queue_t *jq = *state;
    blocked_call_t bc = {.jq = jq, .timeout_ms = -1};
    pthread_t t;

    assert_int_equal(pthread_create(&t, NULL, popper_main, &bc), 0);
    wait_for_count(poppers_waiting, jq, 1);
    assert_int_equal(dd_queue_try_push(jq, ITEM(7)), DD_OK);
    join_when_done(t, &bc);
    assert_int_equal(bc.n, 1);
    assert_int_equal(ITEM_NUM(bc.popped[0]), 7);
    assert_false(dd_queue_is_closed(jq));
}

static void test_queue_push_batch_takes_what_fits_in_order(void **state) {
    dd_queue_t *jq = *state;
    void *in[6] = {ITEM(1), ITEM(2), ITEM(3), ITEM(4), ITEM(5), ITEM(6)};
    void *out[4];

    assert_int_equal(dd_queue_push_batch(jq, in, 0, -1), 0);
    assert_int_equal(dd_queue_push_batch(jq, in, 3, 0), 3);
    /* One slot left: one more goes in, the rest stay the caller's. */
    assert_int_equal(dd_queue_push_batch(jq, in + 3, 3, 0), 1);
    assert_int_equal(dd_queue_push_batch(jq, in + 4, 2, 20), 0);
    assert_int_equal(dd_queue_pop_batch(jq, out, 2, 0), 2);
    /* Wrapping the ring. */
    assert_int_equal(dd_queue_push_batch(jq, in + 4, 2, 0), 2);
    assert_int_equal(dd_queue_pop_batch(jq, out, 4, 0), 4);
    for (uintptr_t i = 0; i < 4; i++)
        assert_int_equal(ITEM_NUM(out[i]), i + 3);
    dd_queue_close(jq);
    assert_int_equal(dd_queue_push_batch(jq, in, 2, -1), 0);
    assert_int_equal(dd_queue_depth(jq), 0);
}

/* A push of more items than one popper takes (max 4) reaches the second
 * waiting popper too: the first passes the wake-up on. */
static void test_queue_push_batch_wakes_enough_poppers(void **state) {
    dd_queue_t *jq = dd_queue_new(16, NULL, 0);
    blocked_call_t bc[2] = {{.jq = jq, .timeout_ms = -1},
                            {.jq = jq, .timeout_ms = -1}};
    void *in[6] = {ITEM(1), ITEM(2), ITEM(3), ITEM(4), ITEM(5), ITEM(6)};
    pthread_t t[2];
    (void)state;

    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, popper_main, &bc[i]), 0);
    wait_for_count(poppers_waiting, jq, 2);
    assert_int_equal(dd_queue_push_batch(jq, in, 6, 0), 6);
    for (int i = 0; i < 2; i++)
        join_when_done(t[i], &bc[i]);
    assert_int_equal(bc[0].n + bc[1].n, 6);
    assert_true(bc[0].n == 4 || bc[1].n == 4);
    assert_int_equal(dd_queue_depth(jq), 0);
    dd_queue_destroy(jq);
}

static void test_queue_push_batch_waits_for_room(void **state) {
    dd_queue_t *jq = *state;
    blocked_call_t bc = {.jq = jq, .timeout_ms = -1};
    void *in[6] = {ITEM(1), ITEM(2), ITEM(3), ITEM(4), ITEM(5), ITEM(6)};
    void *out[4];
    pthread_t t;

    assert_int_equal(dd_queue_push_batch(jq, in, 4, 0), 4);
    assert_int_equal(pthread_create(&t, NULL, popper_main, &bc), 0);
    /* Full: the push waits until the popper took its batch. */
    assert_int_equal(dd_queue_push_batch(jq, in + 4, 2, -1), 2);
    join_when_done(t, &bc);
    assert_int_equal(bc.n, 4);
    assert_int_equal(dd_queue_pop_batch(jq, out, 4, 0), 2);
    assert_int_equal(ITEM_NUM(out[0]), 5);
    assert_int_equal(ITEM_NUM(out[1]), 6);
}

static int is_even(void *item, void *arg) {
    (void)arg;
    return ITEM_NUM(item) % 2 == 0;
}

typedef struct collected {
    uintptr_t nums[16];
    size_t n;
} collected_t;

static void collect(void *item, void *arg) {
    collected_t *c = arg;
    assert_true(c->n < 16);
    c->nums[c->n++] = ITEM_NUM(item);
}

static void test_queue_remove_if_keeps_order_of_the_rest(void **state) {
    dd_queue_t *jq = dd_queue_new(10, NULL, 0);
    collected_t removed = {{0}, 0};
    void *out[10];
    (void)state;

    assert_non_null(jq);
    /* Wrap the ring first so the compaction crosses the end of the array. */
    for (uintptr_t i = 100; i < 106; i++)
        assert_int_equal(dd_queue_try_push(jq, ITEM(i)), DD_OK);
    assert_int_equal(dd_queue_pop_batch(jq, out, 6, 0), 6);
    for (uintptr_t i = 1; i <= 10; i++)
        assert_int_equal(dd_queue_try_push(jq, ITEM(i)), DD_OK);

    assert_int_equal(dd_queue_remove_if(jq, is_even, &removed, collect), 5);
    assert_int_equal(removed.n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(removed.nums[i], 2 * (i + 1));
    assert_int_equal(dd_queue_depth(jq), 5);
    assert_int_equal(dd_queue_pop_batch(jq, out, 10, 0), 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(ITEM_NUM(out[i]), 2 * i + 1);
    /* Nothing matching: nothing removed, no callback. */
    assert_int_equal(dd_queue_try_push(jq, ITEM(3)), DD_OK);
    assert_int_equal(dd_queue_remove_if(jq, is_even, &removed, collect), 0);
    assert_int_equal(removed.n, 5);
    dd_queue_drain(jq, NULL, NULL);
    dd_queue_destroy(jq);
}

static void test_queue_remove_if_wakes_blocked_pusher(void **state) {
    dd_queue_t *jq = *state;
    blocked_call_t bc = {.jq = jq, .timeout_ms = -1, .item = ITEM(9)};
    pthread_t t;
    void *out[4];

    for (uintptr_t i = 1; i <= 4; i++)
        assert_int_equal(dd_queue_try_push(jq, ITEM(i)), DD_OK);
    assert_int_equal(pthread_create(&t, NULL, pusher_main, &bc), 0);
    wait_for_count(pushers_waiting, jq, 1);
    assert_int_equal(dd_queue_remove_if(jq, is_even, NULL, NULL), 2);
    join_when_done(t, &bc);
    assert_int_equal(bc.rc, DD_OK);
    assert_int_equal(dd_queue_pop_batch(jq, out, 4, 0), 3);
    assert_int_equal(ITEM_NUM(out[0]), 1);
    assert_int_equal(ITEM_NUM(out[1]), 3);
    assert_int_equal(ITEM_NUM(out[2]), 9);
}

static void test_queue_drain_removes_all_in_order(void **state) {
    dd_queue_t *jq = *state;
    collected_t drained = {{0}, 0};

    for (uintptr_t i = 1; i <= 4; i++)
        assert_int_equal(dd_queue_try_push(jq, ITEM(i)), DD_OK);
    dd_queue_close(jq);
    assert_int_equal(dd_queue_drain(jq, collect, &drained), 4);
    assert_int_equal(drained.n, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(drained.nums[i], i + 1);
    assert_int_equal(dd_queue_depth(jq), 0);
    assert_int_equal(dd_queue_drain(jq, collect, &drained), 0);
}

/*----- Multi-producer / multi-consumer stress -----*/

#define STRESS_PRODUCERS 4
#define STRESS_CONSUMERS 4
#define STRESS_ITEMS     50000 /* per producer */
#define STRESS_BATCH     16

typedef struct stress {
    dd_queue_t *jq;
    atomic_uchar seen[STRESS_PRODUCERS * STRESS_ITEMS];
    atomic_int order_errors; /* a consumer saw one producer's items reordered */
} stress_t;

typedef struct stress_thread {
    stress_t *s;
    int id;
} stress_thread_t;

/* Items are 1 + producer * STRESS_ITEMS + seq, so never NULL. */
static void *stress_producer(void *arg) {
    stress_thread_t *st = arg;
    for (uintptr_t i = 0; i < STRESS_ITEMS; i++) {
        uintptr_t v = 1 + (uintptr_t)st->id * STRESS_ITEMS + i;
        /* Mix blocking and non-blocking pushes. */
        if (i % 2 == 0 || dd_queue_try_push(st->s->jq, ITEM(v)) != DD_OK) {
            if (dd_queue_push(st->s->jq, ITEM(v), -1) != DD_OK)
                atomic_fetch_add(&st->s->order_errors, 1000000);
        }
    }
    return NULL;
}

static void *stress_consumer(void *arg) {
    stress_thread_t *st = arg;
    void *batch[STRESS_BATCH];
    long last[STRESS_PRODUCERS];
    size_t n;

    for (int p = 0; p < STRESS_PRODUCERS; p++)
        last[p] = -1;
    while ((n = dd_queue_pop_batch(
                st->s->jq, batch, 1 + (size_t)st->id % STRESS_BATCH, -1)) > 0) {
        for (size_t i = 0; i < n; i++) {
            uintptr_t v = ITEM_NUM(batch[i]) - 1;
            int p = (int)(v / STRESS_ITEMS);
            long seq = (long)(v % STRESS_ITEMS);
            /* FIFO: one producer's items reach any consumer in order. */
            if (seq <= last[p])
                atomic_fetch_add(&st->s->order_errors, 1);
            last[p] = seq;
            atomic_fetch_add(&st->s->seen[v], 1);
        }
    }
    return NULL;
}

static void test_queue_mpmc_stress_delivers_each_item_once(void **state) {
    stress_t *s = dd_xcalloc(1, sizeof(*s));
    pthread_t prod[STRESS_PRODUCERS], cons[STRESS_CONSUMERS];
    stress_thread_t pa[STRESS_PRODUCERS], ca[STRESS_CONSUMERS];
    size_t missing = 0, dup = 0;
    (void)state;

    s->jq = dd_queue_new(64, NULL, 0);
    assert_non_null(s->jq);
    for (int i = 0; i < STRESS_CONSUMERS; i++) {
        ca[i] = (stress_thread_t){s, i * 5};
        assert_int_equal(
            pthread_create(&cons[i], NULL, stress_consumer, &ca[i]), 0);
    }
    for (int i = 0; i < STRESS_PRODUCERS; i++) {
        pa[i] = (stress_thread_t){s, i};
        assert_int_equal(
            pthread_create(&prod[i], NULL, stress_producer, &pa[i]), 0);
    }
    for (int i = 0; i < STRESS_PRODUCERS; i++)
        assert_int_equal(pthread_join(prod[i], NULL), 0);
    dd_queue_close(s->jq);
    for (int i = 0; i < STRESS_CONSUMERS; i++)
        assert_int_equal(pthread_join(cons[i], NULL), 0);

    for (size_t i = 0; i < STRESS_PRODUCERS * STRESS_ITEMS; i++) {
        unsigned char c = atomic_load(&s->seen[i]);
        missing += c == 0;
        dup += c > 1;
    }
    assert_int_equal(missing, 0);
    assert_int_equal(dup, 0);
    assert_int_equal(atomic_load(&s->order_errors), 0);
    assert_int_equal(dd_queue_depth(s->jq), 0);
    dd_queue_destroy(s->jq);
    dd_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_new_rejects_zero_capacity),
        cmocka_unit_test_setup_teardown(test_queue_pops_in_fifo_order,
                                        setup_queue4, teardown_queue),
        cmocka_unit_test_setup_teardown(test_queue_try_push_fails_when_full,
                                        setup_queue4, teardown_queue),
        cmocka_unit_test_setup_teardown(test_queue_push_times_out_when_full,
                                        setup_queue4, teardown_queue),
        cmocka_unit_test_setup_teardown(test_queue_pop_batch_takes_at_most_max,
                                        setup_queue4, teardown_queue),
        cmocka_unit_test_setup_teardown(test_queue_pop_times_out_when_empty,
                                        setup_queue4, teardown_queue),
        cmocka_unit_test_setup_teardown(test_queue_close_wakes_blocked_popper,
                                        setup_queue4, teardown_queue),
        cmocka_unit_test_setup_teardown(test_queue_close_wakes_blocked_pusher,
                                        setup_queue4, teardown_queue),
        cmocka_unit_test_setup_teardown(
            test_queue_close_rejects_push_and_drains_remaining, setup_queue4,
            teardown_queue),
        cmocka_unit_test_setup_teardown(
            test_queue_push_blocks_when_full_until_pop, setup_queue4,
            teardown_queue),
        cmocka_unit_test_setup_teardown(test_queue_push_wakes_blocked_popper,
                                        setup_queue4, teardown_queue),
        cmocka_unit_test_setup_teardown(
            test_queue_push_batch_takes_what_fits_in_order, setup_queue4,
            teardown_queue),
        cmocka_unit_test(test_queue_push_batch_wakes_enough_poppers),
        cmocka_unit_test_setup_teardown(test_queue_push_batch_waits_for_room,
                                        setup_queue4, teardown_queue),
        cmocka_unit_test(test_queue_remove_if_keeps_order_of_the_rest),
        cmocka_unit_test_setup_teardown(
            test_queue_remove_if_wakes_blocked_pusher, setup_queue4,
            teardown_queue),
        cmocka_unit_test_setup_teardown(test_queue_drain_removes_all_in_order,
                                        setup_queue4, teardown_queue),
        cmocka_unit_test(test_queue_mpmc_stress_delivers_each_item_once),
    };
    return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
