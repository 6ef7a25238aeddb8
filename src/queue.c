/* SPDX-License-Identifier: MIT */
/*
 * queue: bounded FIFO of opaque items, a ring buffer of void pointers with
 * a fixed capacity.
 *
 * DESIGN
 * One mutex (lock) protects the ring, the closed flag and the waiter
 * counts. Poppers wait on not_empty, pushers on not_full, always in a
 * `while (!predicate)` loop, and both condition variables use
 * CLOCK_MONOTONIC so timeouts follow dd_now_us(). A push of any number of
 * items signals one popper, and only when one waits; a pop signals one
 * pusher per slot it freed (a broadcast when it freed more than one);
 * removal and close broadcast. A popper that leaves items behind while
 * others still wait passes the signal on, so no wake-up is lost when a
 * batch is capped by max, and a push of n items wakes about n / max
 * workers, one after the other, never a herd.
 *
 * Lock order: lock is a leaf, row 4 of "Lock order" in pipeline_int.h: no
 * other lock is taken under it, and it is never held while calling out
 * of the module (remove_if and drain collect the items first and run the
 * callbacks after unlocking). The predicate of remove_if is the exception:
 * it runs under the lock and must not call into the queue.
 *
 * Ownership: the queue only borrows items; it never frees them.
 */
#include "queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "util.h"

struct dd_queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty;  /* poppers wait here; protected by lock */
    pthread_cond_t not_full;   /* pushers wait here; protected by lock */
    void **items;              /* ring of capacity slots; protected by lock */
    size_t head;               /* index of the oldest item; protected by lock */
    size_t count;              /* queued items; protected by lock */
    atomic_size_t depth;       /* mirror of count, written under lock */
    atomic_int closed;         /* written under lock, read anywhere */
    atomic_size_t pop_waiters; /* threads in the not_empty wait; under lock */
    atomic_size_t push_waiters; /* threads in the not_full wait; under lock */
    size_t capacity;            /* immutable after dd_queue_new() */
};

/* The absolute monotonic deadline in us for a timeout in ms, or -1 for a
 * negative (infinite) timeout. */
static int64_t deadline_after(int timeout_ms) {
    if (timeout_ms < 0)
        return -1;
    return dd_now_us() + (int64_t)timeout_ms * 1000;
}

/* Wait once on cond, counting the caller in *waiters for the duration.
 * Returns ETIMEDOUT without waiting when the deadline has passed, otherwise
 * 0 after any wake-up (the caller re-checks its predicate). */
static int wait_until(dd_queue_t *jq, pthread_cond_t *cond,
                      atomic_size_t *waiters, int64_t deadline_us) {
    struct timespec ts;
    int rc;

    if (deadline_us >= 0 && dd_now_us() >= deadline_us)
        return ETIMEDOUT;
    atomic_fetch_add_explicit(waiters, 1, memory_order_relaxed);
    if (deadline_us < 0) {
        rc = pthread_cond_wait(cond, &jq->lock);
    } else {
        ts.tv_sec = (time_t)(deadline_us / 1000000);
        ts.tv_nsec = (long)(deadline_us % 1000000) * 1000;
        rc = pthread_cond_timedwait(cond, &jq->lock, &ts);
    }
    atomic_fetch_sub_explicit(waiters, 1, memory_order_relaxed);
    dd_assert(rc == 0 || rc == ETIMEDOUT);
    return 0;
}

static int is_closed_locked(const dd_queue_t *jq) {
    return atomic_load_explicit(&jq->closed, memory_order_relaxed);
}

static void set_count(dd_queue_t *jq, size_t count) {
    jq->count = count;
    atomic_store_explicit(&jq->depth, count, memory_order_relaxed);
}

/* Wake pushers after n slots were freed: one signal per freed slot is
 * enough, but a broadcast is cheaper than n signals when n > 1. */
static void wake_pushers(dd_queue_t *jq, size_t n) {
    if (n == 0 ||
        atomic_load_explicit(&jq->push_waiters, memory_order_relaxed) == 0)
        return;
    if (n == 1)
        pthread_cond_signal(&jq->not_full);
    else
        pthread_cond_broadcast(&jq->not_full);
}

static void wake_popper(dd_queue_t *jq) {
    if (atomic_load_explicit(&jq->pop_waiters, memory_order_relaxed) > 0)
        pthread_cond_signal(&jq->not_empty);
}

/* Remove every item pred selects (every item when pred is NULL) into out,
 * in FIFO order, compacting the others in place. Returns how many. */
static size_t take_matching(dd_queue_t *jq, int (*pred)(void *, void *),
                            void *arg, void **out) {
    size_t kept = 0, removed = 0;

    for (size_t i = 0; i < jq->count; i++) {
        void *item = jq->items[(jq->head + i) % jq->capacity];
        if (pred == NULL || pred(item, arg))
            out[removed++] = item;
        else
            jq->items[(jq->head + kept++) % jq->capacity] = item;
    }
    set_count(jq, kept);
    wake_pushers(jq, removed);
    return removed;
}

dd_queue_t *dd_queue_new(size_t capacity, char *errstr, size_t errstr_size) {
    dd_queue_t *jq = NULL;
    pthread_condattr_t attr;
    int have_attr = 0, have_lock = 0, have_ne = 0, rc;

    if (capacity == 0 || capacity > SIZE_MAX / sizeof(void *)) {
        dd_set_error(errstr, errstr_size, "queue capacity %zu out of range",
                     capacity);
        return NULL;
    }
    jq = dd_xcalloc(1, sizeof(*jq));
    if ((rc = pthread_condattr_init(&attr)) != 0)
        goto err;
    have_attr = 1;
    if ((rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)) != 0)
        goto err;
    if ((rc = pthread_mutex_init(&jq->lock, NULL)) != 0)
        goto err;
    have_lock = 1;
    if ((rc = pthread_cond_init(&jq->not_empty, &attr)) != 0)
        goto err;
    have_ne = 1;
    if ((rc = pthread_cond_init(&jq->not_full, &attr)) != 0)
        goto err;
    pthread_condattr_destroy(&attr);

    jq->items = dd_xcalloc(capacity, sizeof(*jq->items));
    jq->capacity = capacity;
    atomic_init(&jq->depth, 0);
    atomic_init(&jq->closed, 0);
    atomic_init(&jq->pop_waiters, 0);
    atomic_init(&jq->push_waiters, 0);
    return jq;

err:
    dd_set_error(errstr, errstr_size, "queue: pthread init failed: %s",
                 strerror(rc));
    if (have_ne)
        pthread_cond_destroy(&jq->not_empty);
    if (have_lock)
        pthread_mutex_destroy(&jq->lock);
    if (have_attr)
        pthread_condattr_destroy(&attr);
    dd_free(jq);
    return NULL;
}

void dd_queue_destroy(dd_queue_t *jq) {
    if (jq == NULL)
        return;
    pthread_cond_destroy(&jq->not_full);
    pthread_cond_destroy(&jq->not_empty);
    pthread_mutex_destroy(&jq->lock);
    dd_free(jq->items);
#ifndef DD_BUILD_release
    /* Poison so a use after destroy fails loudly in debug builds. */
    memset(jq, 0xff, sizeof(*jq));
#endif
    dd_free(jq);
}

void dd_queue_close(dd_queue_t *jq) {
    pthread_mutex_lock(&jq->lock);
    atomic_store_explicit(&jq->closed, 1, memory_order_release);
    pthread_cond_broadcast(&jq->not_empty);
    pthread_cond_broadcast(&jq->not_full);
    pthread_mutex_unlock(&jq->lock);
}

int dd_queue_try_push(dd_queue_t *jq, void *item) {
    return dd_queue_push(jq, item, 0);
}

int dd_queue_push(dd_queue_t *jq, void *item, int timeout_ms) {
    return dd_queue_push_batch(jq, &item, 1, timeout_ms) == 1 ? DD_OK : DD_ERR;
}

size_t dd_queue_push_batch(dd_queue_t *jq, void *const *items, size_t n,
                           int timeout_ms) {
    int64_t deadline = deadline_after(timeout_ms);
    size_t m = 0;

    if (n == 0)
        return 0;
    pthread_mutex_lock(&jq->lock);
    while (jq->count == jq->capacity && !is_closed_locked(jq)) {
        if (wait_until(jq, &jq->not_full, &jq->push_waiters, deadline) ==
            ETIMEDOUT)
            break;
    }
    if (!is_closed_locked(jq)) {
        m = jq->capacity - jq->count;
        if (m > n)
            m = n;
        for (size_t i = 0; i < m; i++)
            jq->items[(jq->head + jq->count + i) % jq->capacity] = items[i];
        set_count(jq, jq->count + m);
        /* One wake-up per push, whatever m: a popper that leaves items
         * behind passes it on (dd_queue_pop_batch()). */
        if (m > 0)
            wake_popper(jq);
    }
    pthread_mutex_unlock(&jq->lock);
    return m;
}

size_t dd_queue_pop_batch(dd_queue_t *jq, void **items, size_t max,
                          int timeout_ms) {
    int64_t deadline = deadline_after(timeout_ms);
    size_t n;

    if (max == 0)
        return 0;
    pthread_mutex_lock(&jq->lock);
    while (jq->count == 0 && !is_closed_locked(jq)) {
        if (wait_until(jq, &jq->not_empty, &jq->pop_waiters, deadline) ==
            ETIMEDOUT)
            break;
    }
    n = jq->count < max ? jq->count : max;
    for (size_t i = 0; i < n; i++)
        items[i] = jq->items[(jq->head + i) % jq->capacity];
    jq->head = (jq->head + n) % jq->capacity;
    set_count(jq, jq->count - n);
    wake_pushers(jq, n);
    /* Our batch was capped by max: hand the rest to another waiter. */
    if (jq->count > 0)
        wake_popper(jq);
    pthread_mutex_unlock(&jq->lock);
    return n;
}

size_t dd_queue_remove_if(dd_queue_t *jq, int (*pred)(void *item, void *arg),
                          void *arg,
                          void (*removed_cb)(void *item, void *arg)) {
    /* Allocated before locking: capacity never changes. */
    void **removed = dd_xmalloc(jq->capacity * sizeof(*removed));
    size_t n;

    pthread_mutex_lock(&jq->lock);
    n = take_matching(jq, pred, arg, removed);
    pthread_mutex_unlock(&jq->lock);

    if (removed_cb != NULL) {
        for (size_t i = 0; i < n; i++)
            removed_cb(removed[i], arg);
    }
    dd_free(removed);
    return n;
}

size_t dd_queue_drain(dd_queue_t *jq, void (*cb)(void *item, void *arg),
                      void *arg) {
    return dd_queue_remove_if(jq, NULL, arg, cb);
}

size_t dd_queue_depth(const dd_queue_t *jq) {
    return atomic_load_explicit(&jq->depth, memory_order_relaxed);
}

size_t dd_queue_capacity(const dd_queue_t *jq) {
    return jq->capacity;
}

int dd_queue_is_closed(const dd_queue_t *jq) {
    return atomic_load_explicit(&jq->closed, memory_order_acquire);
}

void dd_queue_waiters(const dd_queue_t *jq, size_t *poppers, size_t *pushers) {
    if (poppers != NULL)
        *poppers = atomic_load_explicit(&jq->pop_waiters, memory_order_relaxed);
    if (pushers != NULL)
        *pushers =
            atomic_load_explicit(&jq->push_waiters, memory_order_relaxed);
}
