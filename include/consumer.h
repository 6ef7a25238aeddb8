/* SPDX-License-Identifier: MIT */
/*
 * consumer: the librdkafka consumer and its poll thread (dd-poll). It turns
 * messages into jobs, registers each in the offset tracker and pushes it
 * into the job queue without ever blocking: when the queue is full it keeps
 * the jobs it could not push, in order (up to 16,384 jobs or 4 MiB), then
 * pauses the assigned partitions and resumes them once
 * that overflow is gone and the queue drained below half its capacity. A
 * partition whose window of tracked offsets (behind its oldest unfinished
 * one) reaches --max-partition-window is paused alone until it drained to
 * half; a fetch position that moves backwards re-bases the partition's
 * tracking there (partition_rewound) and nothing is skipped. In
 * replay mode it assigns the replay range instead of joining the group
 * (dd_consumer_replay_plan()). It handles eager and cooperative
 * rebalances (drain, commit the done prefix, fence with epochs) and stores
 * only the watermarks the tracker allows.
 */
#ifndef DD_CONSUMER_H
#define DD_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "offsets.h"
#include "queue.h"

/** Owned by the pipeline; only dd-poll (and, after it stopped, the caller of
 * dd_consumer_close) touches the librdkafka handle. */
typedef struct dd_consumer dd_consumer_t;

/*----- Lifecycle -----*/

/**
 * @brief Create the consumer (no thread yet).
 * @param cfg, jq, ot borrowed; must outlive the consumer
 * @returns owned consumer or NULL with errstr (a rejected property).
 * @locality main thread
 */
dd_consumer_t *dd_consumer_new(const dd_config_t *cfg, dd_queue_t *jq,
                               dd_offsets_t *ot, char *errstr,
                               size_t errstr_size);

/**
 * @brief Subscribe (live mode) and start dd-poll. In replay mode
 *        dd_consumer_replay_plan() must have succeeded first.
 * @returns DD_OK or DD_ERR.
 */
int dd_consumer_start(dd_consumer_t *c, char *errstr, size_t errstr_size);

/**
 * @brief Stop the poll loop and join dd-poll. Jobs it still held (never
 *        started) are destroyed and discarded from the tracker: their
 *        offsets stay uncommitted and the final revoke does not wait for
 *        them. Idempotent.
 * @locality main thread
 */
void dd_consumer_stop(dd_consumer_t *c);

/**
 * @brief After the workers and the producer are done: store the final
 *        watermarks, commit them synchronously, leave the group
 *        (rd_kafka_consumer_close) and destroy the client. NULL is allowed.
 * @locality main thread, after dd_consumer_stop()
 */
void dd_consumer_destroy(dd_consumer_t *c);

/*----- Replay -----*/

/** Why dd_consumer_replay_plan() failed. */
typedef enum dd_consumer_fail {
    DD_CONSUMER_FAIL_RANGE = 1,   /* bad range or unknown topic (EX_USAGE) */
    DD_CONSUMER_FAIL_UNAVAILABLE, /* brokers did not answer (EX_UNAVAILABLE) */
    DD_CONSUMER_FAIL_INTERNAL,    /* librdkafka refused (EX_SOFTWARE) */
} dd_consumer_fail_t;

/** One partition of a replay. */
typedef struct dd_consumer_replay_part {
    int32_t partition;
    int64_t start; /* first offset in range */
    int64_t end;   /* end offset captured at start (exclusive) */
    int finished;  /* every message below end was dispatched */
} dd_consumer_replay_part_t;

/**
 * @brief Replay mode only, before dd_consumer_start(): read the topic's
 *        partitions and end offsets (rd_kafka_query_watermark_offsets),
 *        resolve timestamp bounds (rd_kafka_offsets_for_times), register
 *        the partitions in the tracker and rd_kafka_assign() them at their
 *        start offsets. Blocks up to a few network timeouts.
 * @param why receives the failure class on DD_ERR
 * @param errstr one line for the operator on DD_ERR
 * @returns DD_OK or DD_ERR
 * @locality main thread
 */
int dd_consumer_replay_plan(dd_consumer_t *c, dd_consumer_fail_t *why,
                            char *errstr, size_t errstr_size);

/**
 * @brief Copy the replay partitions, in partition order.
 * @param out (optional) borrowed array of max entries
 * @returns the number of replay partitions (0 outside replay mode, or
 *          before the plan); when it exceeds max, out holds the first max
 * @locality any thread, after dd_consumer_replay_plan() (start and end are
 *           fixed by then, finished is atomic)
 */
size_t dd_consumer_replay_parts(const dd_consumer_t *c,
                                dd_consumer_replay_part_t *out, size_t max);

/**
 * @brief 1 once every replay partition reached its end offset (all its
 *        messages in range were dispatched and tracked), else 0.
 * @locality any thread
 */
int dd_consumer_replay_finished(const dd_consumer_t *c);

/*----- State -----*/

/** @brief Partitions currently assigned. @locality any thread */
int dd_consumer_assigned_count(const dd_consumer_t *c);

/** @brief 1 when a rebalance has assigned at least once (even empty). */
int dd_consumer_has_joined(const dd_consumer_t *c);

/** @brief dd_now_ms() of the last poll loop iteration. */
int64_t dd_consumer_last_poll_ms(const dd_consumer_t *c);

/** Partitions whose pause state dd_consumer_is_paused() knows. */
#define DD_CONSUMER_PAUSED_MAX 1024

/**
 * @brief 1 while the consumer keeps partition paused (backpressure or its
 *        window), 0 when
 *        not, -1 when partition is outside 0..DD_CONSUMER_PAUSED_MAX-1.
 * @locality any thread (atomics)
 */
int dd_consumer_is_paused(const dd_consumer_t *c, int32_t partition);

/**
 * @brief 1 while partition is paused because its window of tracked offsets
 *        reached --max-partition-window, 0 when not, -1 when partition is
 *        outside 0..DD_CONSUMER_PAUSED_MAX-1.
 * @locality any thread (atomics)
 */
int dd_consumer_is_window_paused(const dd_consumer_t *c, int32_t partition);

#endif /* DD_CONSUMER_H */
