/* SPDX-License-Identifier: MIT */
/*
 * pool: a fixed pool of worker threads (dd-work-N). Each owns one Redis
 * connection (a dd_store_t created on its own thread), takes up to
 * --batch-size jobs from the queue at once, parses and validates them,
 * answers the valid ones through the domain in a few pipelined Redis round
 * trips, marks the invalid ones for the dead-letter topic, and hands every
 * job to the answered callback (the pipeline passes it on to the
 * producer).
 *
 * While Redis is unreachable a worker keeps its batch and retries with the
 * store's capped, jittered backoff: nothing is lost, the queue fills and the
 * consumer pauses its partitions.
 */
#ifndef DD_POOL_H
#define DD_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "job.h"
#include "queue.h"

typedef struct dd_pool dd_pool_t;

/**
 * @brief The "job answered" event: a worker has the job's output (a result,
 *        or a dead letter) and hands the job on. Called on the worker's
 *        thread (dd-work-N), concurrently from several workers.
 * @param job transferred to the callee
 */
typedef void(dd_pool_answered_cb)(dd_job_t *job, void *opaque);

/** What a worker is doing, for /debug/workers. */
typedef enum dd_worker_state {
    DD_WORKER_IDLE,
    DD_WORKER_PARSING,
    DD_WORKER_REDIS,
    DD_WORKER_BACKOFF,
    DD_WORKER_PRODUCING,
} dd_worker_state_t;

typedef struct dd_worker_info {
    int id;
    dd_worker_state_t state;
    int64_t since_ms;     /* dd_now_ms() when the state was entered */
    char request_id[129]; /* first request of the current batch, or "" */
    int32_t partition;    /* of that request, -1 when idle */
    int64_t offset;       /* of that request, -1 when idle */
    size_t batch;         /* jobs in the current batch */
} dd_worker_info_t;

/*----- Lifecycle -----*/

/**
 * @brief Start cfg->workers threads popping from jq.
 * @param cfg, jq borrowed; must outlive the pool
 * @returns owned pool or NULL with errstr
 * @locality main thread
 */
dd_pool_t *dd_pool_new(const dd_config_t *cfg, dd_queue_t *jq,
                       dd_pool_answered_cb *answered, void *opaque,
                       char *errstr, size_t errstr_size);

/**
 * @brief Join the workers. The caller closed the queue first, so they drain
 *        it and exit; a worker still retrying Redis at give_up_ms (dd_now_ms
 *        based) destroys its batch instead (offsets stay undone); one
 *        job_dropped warning then gives the number of jobs dropped.
 * @locality main thread
 */
void dd_pool_join(dd_pool_t *pool, int64_t give_up_ms);

/** @brief Join (if not yet) and free. NULL is allowed. */
void dd_pool_destroy(dd_pool_t *pool);

/*----- State -----*/

/** @brief 1 when the last Redis call of every worker that made one
 *         succeeded (and at least one did), else 0. An idle worker pings
 *         Redis about once a second (not while its reconnect backoff
 *         runs), so this follows Redis within a second or two even
 *         without traffic. @locality any thread */
int dd_pool_redis_ok(const dd_pool_t *pool);

/**
 * @brief The error of the last failed Redis ping of a worker whose Redis
 *        state is failing, e.g. "redis AUTH: WRONGPASS ..." (never a
 *        password), for /readyz.
 * @param pool borrowed.
 * @param buf out: the text, "" when none is known.
 * @param size bytes of buf, > 0.
 * @returns 1 when a text was copied, else 0.
 * @locality any thread
 * @locks_required none; takes each worker state lock in turn (a leaf)
 * @remark The text may lag a worker's later failed batch calls; it is
 *         refreshed by the next idle ping.
 */
int dd_pool_redis_error(const dd_pool_t *pool, char *buf, size_t size);

/** @brief Copy each worker's state into out (up to max); returns count. */
size_t dd_pool_snapshot(const dd_pool_t *pool, dd_worker_info_t *out,
                        size_t max);

/** @brief "idle", "parsing", "redis", "backoff", "producing". */
const char *dd_worker_state_name(dd_worker_state_t s);

#endif /* DD_POOL_H */
