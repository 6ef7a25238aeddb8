/* SPDX-License-Identifier: MIT */
/*
 * metrics: process-wide counters, gauges and histograms, updated lock-free
 * with atomics on the hot path, rendered in the Prometheus text exposition
 * format. Every metric name carries the prefix dispatchd_.
 */
#ifndef DD_METRICS_H
#define DD_METRICS_H

#include <stddef.h>
#include <stdint.h>

/** Counters. Labelled families are one enum value per label value. */
typedef enum dd_counter {
    DD_C_REQ_ASSIGNED,     /* requests_total{outcome="assigned"} */
    DD_C_REQ_REJECTED,     /* requests_total{outcome="rejected"} */
    DD_C_REQ_EXPIRED,      /* requests_total{outcome="expired"} */
    DD_C_REQ_DEAD_LETTER,  /* requests_total{outcome="dead_letter"} */
    DD_C_LEDGER_HITS,      /* ledger_hits_total: answered from result:{id} */
    DD_C_DLQ_TOO_LARGE,    /* dlq_total{reason="too_large"} */
    DD_C_DLQ_INVALID_UTF8, /* dlq_total{reason="invalid_utf8"} */
    DD_C_DLQ_NOT_JSON,     /* dlq_total{reason="not_json"} */
    DD_C_DLQ_SCHEMA,       /* dlq_total{reason="schema"} */
    DD_C_DLQ_BAD_ID,       /* dlq_total{reason="bad_id"} */
    DD_C_ETA_HIT,          /* eta_cache_total{result="hit"} */
    DD_C_ETA_MISS,         /* eta_cache_total{result="miss"} */
    DD_C_ETA_ERROR,        /* eta_cache_total{result="error"} */
    DD_C_REDIS_ERRORS,     /* redis_errors_total */
    DD_C_PRODUCE_ERRORS,   /* produce_errors_total */
    DD_C_COMMITS_OK,       /* commits_total{result="ok"} */
    DD_C_COMMITS_ERROR,    /* commits_total{result="error"} */
    DD_C_REBALANCES,       /* rebalances_total */
    DD_C_KAFKA_ERRORS,     /* kafka_errors_total (error_cb) */
    /* dlq_total{reason="record_too_large"} */
    DD_C_DLQ_RECORD_TOO_LARGE,
    /* dlq_total{reason="result_rejected"} */
    DD_C_DLQ_RESULT_REJECTED,
    DD_C__COUNT
} dd_counter_t;

/** Gauges. */
typedef enum dd_gauge {
    DD_G_QUEUE_DEPTH,         /* queue_depth */
    DD_G_QUEUE_CAPACITY,      /* queue_capacity */
    DD_G_WORKERS_BUSY,        /* workers_busy */
    DD_G_INFLIGHT,            /* inflight: dispatched, not yet acknowledged */
    DD_G_PARTITIONS_ASSIGNED, /* partitions_assigned */
    DD_G_PARTITIONS_PAUSED,   /* partitions_paused */
    DD_G_READY,               /* ready: 1 when /readyz answers 200 */
    DD_G__COUNT
} dd_gauge_t;

/** Histograms (seconds). */
typedef enum dd_histogram {
    DD_H_PROCESSING, /* processing_seconds: worker pop to result handed on */
    DD_H_END_TO_END, /* end_to_end_seconds: message timestamp to delivery */
    DD_H__COUNT
} dd_histogram_t;

#define DD_METRICS_MAX_PARTITIONS 1024

/*----- Updates (any thread, lock-free) -----*/

/** @brief Add n to a counter. @locality any thread */
void dd_metrics_add(dd_counter_t c, uint64_t n);
#define dd_metrics_inc(c) dd_metrics_add((c), 1)
/** @brief Current value of a counter. @locality any thread */
uint64_t dd_metrics_get(dd_counter_t c);

/** @brief Set or move a gauge. @locality any thread */
void dd_metrics_gauge_set(dd_gauge_t g, int64_t v);
void dd_metrics_gauge_add(dd_gauge_t g, int64_t delta);
int64_t dd_metrics_gauge_get(dd_gauge_t g);

/** @brief Record one observation in seconds. @locality any thread */
void dd_metrics_observe(dd_histogram_t h, double seconds);

/**
 * @brief Consumer lag of one input partition (from librdkafka statistics);
 *        -1 clears it. Partitions >= DD_METRICS_MAX_PARTITIONS are ignored.
 * @locality any thread
 */
void dd_metrics_set_lag(int32_t partition, int64_t lag);

/** @brief Topic name used as the label of consumer_lag (borrowed, static). */
void dd_metrics_set_lag_topic(const char *topic);

/**
 * @brief Label values of dispatchd_build_info{version,librdkafka} (borrowed,
 *        must stay valid: string literals or library version strings).
 *        Until called: DD_VERSION and "unknown".
 * @locality any thread
 */
void dd_metrics_set_build_info(const char *version, const char *librdkafka);

/** @brief Reset everything to zero (tests). */
void dd_metrics_reset(void);

/*----- Rendering -----*/

/**
 * @brief Render every metric in the Prometheus text format (version 0.0.4),
 *        with HELP and TYPE lines.
 * @param lenp (optional) receives the length.
 * @returns owned NUL-terminated text; free with dd_free().
 * @locality any thread
 */
char *dd_metrics_render(size_t *lenp);

#endif /* DD_METRICS_H */
