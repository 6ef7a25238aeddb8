/* SPDX-License-Identifier: MIT */
/*
 * queue: the bounded FIFO job queue between the poll thread and the worker
 * pool. Items are opaque pointers: the queue never looks at them and never
 * frees them. Capacity is fixed at creation. A mutex and two condition
 * variables (not_empty, not_full) give blocking push, batch push and batch
 * pop with timeouts; dd_queue_close() wakes every waiter.
 */
#ifndef DD_QUEUE_H
#define DD_QUEUE_H

#include <stddef.h>

/**
 * @brief Bounded FIFO of opaque items. Thread-safe: every function may be
 *        called from any thread, concurrently, until dd_queue_destroy().
 */
typedef struct dd_queue dd_queue_t;

/*----- Lifecycle -----*/

/**
 * @brief Create an empty, open queue holding at most capacity items.
 * @param capacity maximum number of items, at least 1
 * @param errstr (optional) borrowed buffer for the error text
 * @param errstr_size size of errstr
 * @returns owned queue, or NULL (capacity 0 or too large, or a pthread
 *          object could not be created) with errstr filled
 * @locality any thread
 */
dd_queue_t *dd_queue_new(size_t capacity, char *errstr, size_t errstr_size);

/**
 * @brief Destroy the queue. NULL is allowed.
 * @param jq owned queue; no thread may be using it any more
 * @locality owner thread
 * @remark Items still queued are NOT freed: drain them first with
 *         dd_queue_drain().
 */
void dd_queue_destroy(dd_queue_t *jq);

/**
 * @brief Close the queue: pushes fail from now on, blocked pushers return
 *        DD_ERR, and poppers take the remaining items, then get 0.
 *        Idempotent.
 * @param jq borrowed queue
 * @locality any thread
 */
void dd_queue_close(dd_queue_t *jq);

/*----- Push and pop -----*/

/**
 * @brief Append an item without ever blocking.
 * @param jq borrowed queue
 * @param item borrowed by the queue on success; on DD_ERR it was not queued
 *        and stays entirely the caller's
 * @returns DD_OK, or DD_ERR when the queue is full or closed
 * @locality any thread
 */
int dd_queue_try_push(dd_queue_t *jq, void *item);

/**
 * @brief Append an item, waiting up to timeout_ms for free space.
 * @param jq borrowed queue
 * @param item borrowed by the queue on success; on DD_ERR it was not queued
 *        and stays entirely the caller's
 * @param timeout_ms maximum wait in ms; 0 never waits; negative waits
 *        until there is space or the queue is closed
 * @returns DD_OK, or DD_ERR on timeout or when the queue is (or becomes)
 *          closed
 * @locality any thread
 */
int dd_queue_push(dd_queue_t *jq, void *item, int timeout_ms);

/**
 * @brief Append up to n items in FIFO order, as many as there is room for,
 *        waiting up to timeout_ms for room for the first one. One lock and
 *        at most one wake-up (a waiting popper) per call, whatever n.
 * @param jq borrowed queue
 * @param items borrowed array of n items; items[0 .. returned - 1] are
 *        borrowed by the queue from now on, the others stay entirely the
 *        caller's
 * @param n number of items offered; 0 returns 0 at once
 * @param timeout_ms maximum wait in ms while the queue is full; 0 never
 *        waits; negative waits until there is room or the queue is closed
 * @returns the number of items appended (0 on timeout, or when the queue
 *          is or becomes closed)
 * @locality any thread (the poll thread, with timeout_ms bounded)
 */
size_t dd_queue_push_batch(dd_queue_t *jq, void *const *items, size_t n,
                           int timeout_ms);

/**
 * @brief Wait until at least one item is queued (or the timeout, or the
 *        queue is closed and empty), then take up to max items in FIFO order.
 * @param jq borrowed queue
 * @param items borrowed array of at least max slots, filled in FIFO order;
 *        the items taken are handed back to the caller
 * @param max maximum number of items to take; 0 returns 0 at once
 * @param timeout_ms maximum wait in ms; 0 never waits; negative waits
 *        until an item arrives or the queue is closed
 * @returns the number of items taken; 0 on timeout or when the queue is
 *          closed and empty (dd_queue_is_closed() tells which)
 * @locality any thread (worker threads)
 * @remark A closed queue still hands out its remaining items.
 */
size_t dd_queue_pop_batch(dd_queue_t *jq, void **items, size_t max,
                          int timeout_ms);

/*----- Removal -----*/

/**
 * @brief Remove every item for which pred returns non-zero, keeping the
 *        order of the others, and wake blocked pushers.
 * @param jq borrowed queue
 * @param pred called for each queued item, under the queue lock: it must be
 *        quick and must not call into the queue
 * @param arg (optional) passed to pred and removed_cb
 * @param removed_cb (optional) called for each removed item, in FIFO order,
 *        after the queue lock was released; it receives the item back
 * @returns the number of items removed
 * @locality any thread (the poll thread, on partition revoke)
 * @remark Works on a closed queue too.
 */
size_t dd_queue_remove_if(dd_queue_t *jq, int (*pred)(void *item, void *arg),
                          void *arg, void (*removed_cb)(void *item, void *arg));

/**
 * @brief Remove every queued item and wake blocked pushers.
 * @param jq borrowed queue
 * @param cb (optional) called for each removed item, in FIFO order, after
 *        the queue lock was released; it receives the item back
 * @param arg (optional) passed to cb
 * @returns the number of items removed
 * @locality any thread (the owner, at shutdown, after dd_queue_close())
 */
size_t dd_queue_drain(dd_queue_t *jq, void (*cb)(void *item, void *arg),
                      void *arg);

/*----- Introspection -----*/

/**
 * @brief Number of queued items, read without the lock (may be stale by
 *        the time it returns; for metrics and backpressure thresholds).
 * @locality any thread
 */
size_t dd_queue_depth(const dd_queue_t *jq);

/** @brief The capacity given at creation. @locality any thread */
size_t dd_queue_capacity(const dd_queue_t *jq);

/**
 * @brief 1 once dd_queue_close() was called, else 0.
 * @locality any thread
 */
int dd_queue_is_closed(const dd_queue_t *jq);

/**
 * @brief Number of threads currently blocked in dd_queue_pop_batch() and in
 *        dd_queue_push(), read without the lock (metrics, tests). Either
 *        pointer may be NULL.
 * @remark A thread counted here is inside the condition-variable wait, with
 *         the queue lock released, so a state change made after observing
 *         the count is guaranteed to reach it.
 * @locality any thread
 */
void dd_queue_waiters(const dd_queue_t *jq, size_t *poppers, size_t *pushers);

#endif /* DD_QUEUE_H */
