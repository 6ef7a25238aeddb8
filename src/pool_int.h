/* SPDX-License-Identifier: MIT */
/*
 * pool, private: the boundary between the worker threads (src/pool.c: start,
 * name, job loop, /debug/workers state, idle Redis ping, join) and the work
 * one batch of jobs does on such a thread (src/worker_batch.c: parse,
 * dead-letter classing, answer through the domain, marshal the output into
 * the job, count, hand the job on).
 *
 * The batch side reports back to its thread through the dd_pool_worker_*
 * hooks below; the thread side runs batches through dd_worker_batch_*. Both
 * run on the worker's own thread only. Locks: see "Lock order" in
 * src/pipeline_int.h; dd_pool_worker_set_state() takes the worker's state
 * lock, a leaf.
 */
#ifndef DD_POOL_INT_H
#define DD_POOL_INT_H

#include <stddef.h>

#include "config.h"
#include "job.h"
#include "pool.h"
#include "store.h"

/** One worker thread of a pool (pool.c). Used by its own thread only,
 *  except its state, which snapshots read under its lock. */
typedef struct dd_pool_worker dd_pool_worker_t;

/** The buffers of one worker's batches (worker_batch.c). Not thread-safe:
 *  owned and used by one worker thread. */
typedef struct dd_worker_batch dd_worker_batch_t;

/*----- Hooks of the worker thread (pool.c) -----*/

/**
 * @brief Publish what the worker is doing, for /debug/workers and /healthz.
 * @param job (borrowed, optional) the batch's first job; NULL when idle
 * @param request_id (borrowed, optional) its request id, NULL when unknown
 * @param batch jobs in the current batch
 * @locality the worker's own thread
 * @locks_required none; takes the worker's state lock (a leaf)
 */
void dd_pool_worker_set_state(dd_pool_worker_t *w, dd_worker_state_t s,
                              const dd_job_t *job, const char *request_id,
                              size_t batch);

/**
 * @brief Record the outcome of a Redis call, for dd_pool_redis_ok().
 * @param ok 1 when the call succeeded, 0 when it failed
 * @locality the worker's own thread
 */
void dd_pool_worker_redis_seen(dd_pool_worker_t *w, int ok);

/**
 * @brief Wait up to ms before retrying Redis, unless the pool's give-up
 *        time (dd_pool_join()) passes first.
 * @returns 1 when the caller should give up its batch, else 0
 * @locality the worker's own thread
 */
int dd_pool_worker_backoff(dd_pool_worker_t *w, int ms);

/*----- Batches (worker_batch.c) -----*/

/**
 * @brief The settings of a worker's store: Redis address and timeouts, and
 *        the TTLs of the records the batches write, in whole seconds.
 * @param cfg borrowed; its strings stay borrowed by sc
 * @param sc (borrowed) filled in
 * @locality any thread
 */
void dd_worker_batch_store_conf(const dd_config_t *cfg, dd_store_conf_t *sc);

/**
 * @brief Buffers for batches of up to cfg->batch_size jobs.
 * @param cfg borrowed; must outlive the result
 * @param answered, opaque where each job goes once it has its output
 * @returns owned (dd_worker_batch_destroy())
 * @locality the worker's own thread
 */
dd_worker_batch_t *dd_worker_batch_new(const dd_config_t *cfg,
                                       dd_pool_answered_cb *answered,
                                       void *opaque);

/** @brief Free. NULL is allowed. @locality the worker's own thread */
void dd_worker_batch_destroy(dd_worker_batch_t *b);

/**
 * @brief Process n (1..batch_size) jobs popped from the queue: parse each;
 *        an invalid one is marked for the dead-letter topic and handed on at
 *        once; the valid ones are answered through the domain in a few
 *        pipelined Redis round trips (retrying with the store's backoff
 *        while Redis fails), their results moved into the jobs, counted and
 *        handed on. If the pool gives up while Redis is down, the valid jobs
 *        are destroyed instead (their offsets stay undone).
 * @param w the calling worker (state, Redis outcome, backoff)
 * @param st (borrowed) the worker's store
 * @param jobs (borrowed array) the jobs, each transferred to the answered
 *        callback or destroyed
 * @returns the number of jobs dropped because the pool gave up (each
 *          logged at debug level only; the pool logs the total)
 * @locality the worker's own thread
 */
size_t dd_worker_batch_run(dd_worker_batch_t *b, dd_pool_worker_t *w,
                           dd_store_t *st, dd_job_t **jobs, size_t n);

#endif /* DD_POOL_INT_H */
