/* SPDX-License-Identifier: MIT */
/*
 * consumer: the librdkafka consumer and its poll thread (dd-poll). It turns
 * messages into jobs, registers each in the offset tracker and pushes it
 * into the job queue without ever blocking: when the queue is full it keeps
 * the jobs it could not push, pauses the assigned partitions and resumes
 * them once the queue drained below half its capacity. It handles eager and
 * cooperative rebalances (drain, commit the done prefix, fence with epochs)
 * and stores only the watermarks the tracker allows.
 */
#ifndef DD_CONSUMER_H
#define DD_CONSUMER_H

#include <stddef.h>

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

/** @brief Subscribe and start dd-poll. @returns DD_OK or DD_ERR. */
int dd_consumer_start(dd_consumer_t *c, char *errstr, size_t errstr_size);

/**
 * @brief Stop the poll loop and join dd-poll. Jobs it still held are
 *        destroyed (their offsets stay undone). Idempotent.
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

/*----- State -----*/

/** @brief Partitions currently assigned. @locality any thread */
int dd_consumer_assigned_count(const dd_consumer_t *c);

/** @brief 1 when a rebalance has assigned at least once (even empty). */
int dd_consumer_has_joined(const dd_consumer_t *c);

/** @brief dd_now_ms() of the last poll loop iteration. */
int64_t dd_consumer_last_poll_ms(const dd_consumer_t *c);

#endif /* DD_CONSUMER_H */
