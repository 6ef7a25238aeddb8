/* SPDX-License-Identifier: MIT */
/*
 * job: one input message on its way through the pipeline. The poll thread
 * creates it from a consumed message (copying key, value and taking the
 * headers), a worker fills in the output, and the producer's delivery report
 * hands it back to the pipeline, which marks its offset done and destroys it.
 *
 * Ownership: a job owns everything it points to. It travels poll thread ->
 * queue -> worker -> producer (as the message opaque) -> delivery report,
 * and exactly one of them destroys it.
 */
#ifndef DD_JOB_H
#define DD_JOB_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "codec.h"

/** What a worker decided to publish for a job. */
typedef enum dd_job_out {
    DD_JOB_OUT_NONE = 0, /* not processed yet */
    DD_JOB_OUT_RESULT,   /* out/out_len go to the result topic */
    DD_JOB_OUT_DLQ,      /* the original record goes to the dead-letter topic */
} dd_job_out_t;

typedef struct dd_job {
    /* Input, set by the poll thread. */
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* message timestamp (create or log append) */
    uint32_t epoch;       /* tracker epoch of the partition at dispatch */
    char *key;            /* owned copy, may be NULL */
    size_t key_len;
    char *value; /* owned copy, may be NULL */
    size_t value_len;
    rd_kafka_headers_t
        *headers;        /* owned (detached from the message), or NULL */
    int64_t consumed_us; /* dd_now_us() when consumed */

    /* Output, set by a worker. */
    dd_job_out_t out_kind;
    char *out; /* owned result bytes (RESULT) */
    size_t out_len;
    char out_key[DD_CODEC_MAX_ID + 1]; /* parcel id of the result */
    dd_status_t out_status;            /* RESULT: status of out */
    const char *out_reason;            /* RESULT: static reason, or NULL */
    int out_from_ledger;               /* RESULT: out came from result:{id} */
    dd_dlq_class_t dlq_code;           /* DLQ reason class */
    char dlq_text[256];                /* DLQ human-readable reason */
    int attempts;                      /* produce attempts */
    int dlq_reduced; /* producer: 0 full dead letter, 1 value truncated,
                        2 value and original headers dropped */
} dd_job_t;

/**
 * @brief Create a job from a consumed message.
 * @param rkm borrowed; its headers are detached into the job, its key and
 *        value copied. The caller still destroys rkm.
 * @returns owned job
 * @locality poll thread
 */
dd_job_t *dd_job_new(rd_kafka_message_t *rkm, uint32_t epoch);

/** @brief Destroy a job and everything it owns. NULL is allowed. */
void dd_job_destroy(dd_job_t *job);

#endif /* DD_JOB_H */
