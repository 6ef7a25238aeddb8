/* SPDX-License-Identifier: MIT */
/*
 * producer: the idempotent librdkafka producer that publishes results and
 * dead letters, with its own delivery-report thread (dd-prod).
 *
 * A job handed to dd_producer_send() belongs to the producer until its
 * delivery succeeds; then acked_cb receives it (and its ownership). A
 * transient failure is never reported as done: the job is produced again
 * after a capped backoff, so its input offset cannot be committed before a
 * record for it is on the broker. A permanent failure is never retried as
 * is: a result the broker refuses becomes a dead letter (dispatch.error.class
 * result_rejected, the broker's error in dispatch.error); a dead letter over
 * a size limit is written reduced (class record_too_large: the value cut to
 * 64 KiB, then dropped, the original headers dropped when over 64 KiB, with
 * dispatch.original_size and dispatch.original_sha256 of the value). Input
 * headers named dispatch.* come out as x-original-dispatch.*. Only a dead
 * letter the broker refuses even reduced (e.g. no write access to the DLQ
 * topic) is completed without a record, logged at error level
 * (dead_letter_rejected). Unless message.max.bytes is set for the producer,
 * it is sized from the consumer's fetch.max.bytes / max.partition.fetch.bytes
 * plus 64 KiB for headers.
 */
#ifndef DD_PRODUCER_H
#define DD_PRODUCER_H

#include <stddef.h>

#include "config.h"
#include "job.h"

/** Not thread-safe to create/destroy; dd_producer_send() is thread-safe. */
typedef struct dd_producer dd_producer_t;

/**
 * @brief The "job acked" event: called on dd-prod once the broker
 *        acknowledged a job's record (a successful delivery report).
 * @param job transferred to the callee
 */
typedef void(dd_producer_acked_cb)(dd_job_t *job, void *opaque);

/*----- Lifecycle -----*/

/**
 * @brief Create the producer and start its delivery-report thread.
 * @param cfg borrowed, must outlive the producer
 * @returns owned producer, or NULL with errstr (bad -X property: EX_CONFIG)
 * @locality main thread
 */
dd_producer_t *dd_producer_new(const dd_config_t *cfg,
                               dd_producer_acked_cb *acked_cb, void *opaque,
                               char *errstr, size_t errstr_size);

/**
 * @brief Wait until every job handed over was delivered, or timeout_ms.
 * @returns DD_OK when nothing is outstanding, DD_ERR on timeout.
 * @locality any thread but dd-prod
 */
int dd_producer_flush(dd_producer_t *prod, int timeout_ms);

/**
 * @brief Stop the thread, purge what is still queued and destroy jobs that
 *        were never delivered (their offsets stay undone), then the client.
 *        NULL is allowed.
 * @locality main thread
 */
void dd_producer_destroy(dd_producer_t *prod);

/*----- Sending -----*/

/**
 * @brief Publish a job's output (result or dead letter).
 * @param job transferred; comes back through acked_cb once delivered.
 * @locality any thread (workers)
 */
void dd_producer_send(dd_producer_t *prod, dd_job_t *job);

/** @brief Jobs handed over and not yet delivered. @locality any thread */
size_t dd_producer_outstanding(const dd_producer_t *prod);

/** @brief librdkafka's version string. */
const char *dd_producer_kafka_version(void);

#endif /* DD_PRODUCER_H */
