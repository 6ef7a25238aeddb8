/* SPDX-License-Identifier: MIT */
/*
 * pipeline, private: the part of the wiring that feeds the HTTP endpoint
 * (src/pipeline_http.c). The http module knows nothing of the pipeline; the
 * pipeline hands it callbacks that read the state of its modules.
 *
 * Lock order: every mutex of dispatchd, written down once, here. A thread
 * holding a lock may take only the locks its row allows, one at a time;
 * every other lock is a leaf, held alone.
 *
 *   #  lock            file: field              may take while held
 *   1  HTTP handle     pipeline_http.c: lock    2 or 3, one at a time
 *   2  worker state    pool.c: w->lock (each)   none (leaf)
 *   3  tracker         offsets.c: ot->lock      none (leaf)
 *   4  job queue       queue.c: jq->lock        none (leaf)
 *   5  producer retry  producer.c: prod->lock   none (leaf)
 *   6  log write       log.c: write_lock        none (leaf)
 *   7  stop request    stop.c: lock             none (leaf)
 *   8  Redis state     store_marker.c: mu       6 only
 *   9  close done      pipeline.c: close_lock   none (leaf)
 *
 *   1  guards the module handles of the HTTP side: held by dd-http's
 *      callbacks while they read the modules (dd_pool_snapshot() takes 2,
 *      dd_offsets_snapshot() and dd_offsets_pending_total() take 3), and by
 *      dd_pipeline_http_detach() on the main thread.
 *   2  a worker's /debug/workers state: its stores (dd-work-N) and
 *      dd_pool_snapshot().
 *   3  the partition table, with the condition variable idle: dd-poll
 *      (dispatch, revoke, watermark), dd-prod (mark done), readers.
 *   4  the ring, with not_empty and not_full: dd-poll pushes, workers pop;
 *      the remove_if predicate runs under it and must not call out.
 *   5  the retry list only: workers and dd-prod.
 *   6  one write(2) of a log line: any thread.
 *   7  the stop request (first signal, fatal reason) with the condition
 *      variable wake: any thread requests, main waits, dd-http reads.
 *   8  the process-wide verdict on the Redis data set (the store id
 *      marker): the workers' stores; the lost and recovered lines are
 *      logged under it, so it takes 6. Never held during I/O.
 *   9  close_done with the condition variable close_done_cv: dd-close sets
 *      it, main waits for it until the end of the shutdown budget.
 *
 * So the only nesting is 1 -> 2, 1 -> 3 and 8 -> 6, and nothing takes 1
 * or 8 while holding another lock. Metrics (metrics.c), the consumer's shared
 * state (consumer.c), the queue depth and the pool's Redis state are atomics
 * and take no lock. No lock of ours is held while calling into librdkafka or
 * hiredis, while logging (but 8, as said), or while a job is handed on
 * (job_answered, job_acked in pipeline.c), so the callbacks librdkafka runs
 * (dr_msg_cb, rebalance_cb, log_cb) start with none held; libmicrohttpd calls
 * dd-http's callbacks, which take 1, from MHD_run(), with none of ours held. A
 * file that adds a lock adds its row here.
 */
#ifndef DD_PIPELINE_INT_H
#define DD_PIPELINE_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "consumer.h"
#include "job.h"
#include "offsets.h"
#include "pool.h"
#include "queue.h"

/** Health thresholds of /healthz (and of /readyz's "stuck" reason). */
#define DD_HEALTH_POLL_STALL_MS   15000 /* poll loop silent this long */
#define DD_HEALTH_WORKER_STUCK_MS 60000 /* one busy state this long */

/**
 * Delivery progress, for /readyz: jobs handed to the producer and not yet
 * acked, and when one was last acked. Written by the job events of
 * pipeline.c (job_answered on dd-work-N, job_acked on dd-prod), read by
 * dd-http; atomics only. Lives in the pipeline for the whole run.
 */
typedef struct dd_pipeline_delivery {
    atomic_llong busy_since_ms; /* dd_now_ms() when outstanding left 0 */
    atomic_llong last_ack_ms;   /* dd_now_ms() of the last acked job */
    atomic_llong outstanding;   /* answered, not yet acked */
} dd_pipeline_delivery_t;

/**
 * @brief How long deliveries have made no progress: 0 when nothing is
 *        outstanding, else the time since the later of the last ack and
 *        the moment something became outstanding.
 * @param d borrowed @param now dd_now_ms()
 * @locality any thread
 */
int64_t dd_pipeline_delivery_stalled_ms(const dd_pipeline_delivery_t *d,
                                        int64_t now);

/** The HTTP endpoint and the module handles its callbacks read. */
typedef struct dd_pipeline_http dd_pipeline_http_t;

/**
 * @brief Record the build info metric and, when cfg->http.enabled, start
 *        the HTTP endpoint (dd-http) over the given modules.
 * @param cfg, cons, pool, jq, ot borrowed; must outlive the result
 * @param delivery borrowed (optional: NULL in a dry run); must outlive the
 *        result
 * @returns owned object (also when HTTP is disabled), or NULL with errstr
 *          when the endpoint cannot listen
 * @locality main thread, after the consumer started
 */
dd_pipeline_http_t *
dd_pipeline_http_start(const dd_config_t *cfg, dd_consumer_t *cons,
                       dd_pool_t *pool, dd_queue_t *jq, dd_offsets_t *ot,
                       const dd_pipeline_delivery_t *delivery, char *errstr,
                       size_t errstr_size);

/**
 * @brief Shutdown began: /readyz answers 503 "shutting down" from now on,
 *        and /healthz no longer expects the poll loop to iterate. NULL is
 *        allowed. @locality main thread
 */
void dd_pipeline_http_draining(dd_pipeline_http_t *ph);

/**
 * @brief The modules are about to be destroyed: the endpoints stop reading
 *        them (waiting for a request that is reading them to finish).
 *        /metrics keeps working. NULL is allowed. @locality main thread
 */
void dd_pipeline_http_detach(dd_pipeline_http_t *ph);

/**
 * @brief Stop the endpoint and free. NULL is allowed.
 * @locality main thread (after dd_pipeline_http_detach() if the modules
 *           are gone)
 */
void dd_pipeline_http_stop(dd_pipeline_http_t *ph);

/*----- Replay (src/pipeline_replay.c) -----*/

/** Replay mode's completion check, progress display and summary. */
typedef struct dd_pipeline_replay dd_pipeline_replay_t;

/** @brief Start the replay clock. @returns owned @locality main thread */
dd_pipeline_replay_t *dd_pipeline_replay_new(const dd_config_t *cfg);

/** @brief Free. NULL is allowed. @locality main thread */
void dd_pipeline_replay_destroy(dd_pipeline_replay_t *rp);

/**
 * @brief Count a completed job's outcome (result status and reason, ledger
 *        hit, or dead letter) for the summary.
 * @param job borrowed
 * @locality any thread (dd-prod's delivery reports; workers in a dry run)
 */
void dd_pipeline_replay_count(dd_pipeline_replay_t *rp, const dd_job_t *job);

/**
 * @brief Wait until the replay is complete (every partition reached its
 *        end and the tracker has nothing pending) or a stop is requested
 *        (stop.h: SIGINT/SIGTERM or a fatal error), drawing the progress
 *        meanwhile.
 * @param cons, ot borrowed, after dd_consumer_replay_plan()
 * @returns 0 when complete, else the signal number (SIGTERM when a fatal
 *          error stopped it)
 * @locality main thread (dd-signal takes the signals)
 */
int dd_pipeline_replay_wait(dd_pipeline_replay_t *rp, const dd_consumer_t *cons,
                            const dd_offsets_t *ot);

/**
 * @brief After the shutdown: log the replay_summary event and print the
 *        summary on stdout.
 * @param delivered_all 1 when nothing was left undelivered at shutdown
 * @returns 0 when the replay completed and everything was delivered,
 *          DD_ERR otherwise
 * @locality main thread
 */
int dd_pipeline_replay_finish(dd_pipeline_replay_t *rp, int delivered_all);

#endif /* DD_PIPELINE_INT_H */
