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

#include "codec.h" /* DD_DLQ_CLASS_MAP, dd_dlq_class_t */

/*
 * The metric tables. Every metric /metrics exposes is a row below; the enums,
 * the renderer, the unit tests and scripts/check-readme read them, so a new
 * metric is one row (plus its updates). Families render in this order:
 * counter families, gauges, consumer_lag, histograms, build_info.
 *
 * DD_COUNTER_FAMILY_MAP(X): X(name, label, help), one row per counter
 * family; label is the label name ("" for an unlabelled family).
 *
 * DD_COUNTER_MAP(X, XDLQ): X(ID, family, value), one row per counter series
 * (enum DD_C_<ID>); value is the label value ("" when unlabelled). The
 * dlq_total series are the dead-letter classes of DD_DLQ_CLASS_MAP (codec.h):
 * XDLQ(ID, label, meaning) is applied to each, giving DD_C_DLQ_<ID>.
 */
#define DD_COUNTER_FAMILY_MAP(X)                                               \
    X(requests_total, "outcome", "Requests answered, by outcome.")             \
    X(ledger_hits_total, "",                                                   \
      "Requests answered with the stored result of an earlier run.")           \
    X(dlq_total, "reason",                                                     \
      "Input records sent to the dead-letter topic, by reason.")               \
    X(eta_cache_total, "result", "ETA cache lookups, by result.")              \
    X(redis_errors_total, "",                                                  \
      "Redis calls that failed (connection, timeout, error reply).")           \
    X(redis_state_lost_total, "",                                              \
      "Times Redis was found to have lost dispatchd's state (store id "        \
      "marker missing or changed).")                                           \
    X(redis_redirects_total, "kind",                                           \
      "Redis Cluster redirections followed (MOVED, ASK), by kind.")            \
    X(produce_errors_total, "",                                                \
      "Result or dead-letter deliveries that failed and were retried.")        \
    X(commits_total, "result", "Offset commits, by result.")                   \
    X(rebalances_total, "",                                                    \
      "Consumer group rebalances (assign and revoke events).")                 \
    X(partition_rewinds_total, "",                                             \
      "Times the fetch position of an assigned input partition moved "         \
      "backwards (tracking re-based, records read again).")                    \
    X(kafka_errors_total, "", "Errors reported by librdkafka's error callback.")

#define DD_COUNTER_MAP(X, XDLQ)                                                \
    X(REQ_ASSIGNED, requests_total, "assigned")                                \
    X(REQ_REJECTED, requests_total, "rejected")                                \
    X(REQ_EXPIRED, requests_total, "expired")                                  \
    X(REQ_DEAD_LETTER, requests_total, "dead_letter")                          \
    X(LEDGER_HITS, ledger_hits_total, "")                                      \
    DD_DLQ_CLASS_MAP(XDLQ)                                                     \
    X(ETA_HIT, eta_cache_total, "hit")                                         \
    X(ETA_MISS, eta_cache_total, "miss")                                       \
    X(ETA_ERROR, eta_cache_total, "error")                                     \
    X(REDIS_ERRORS, redis_errors_total, "")                                    \
    X(REDIS_STATE_LOST, redis_state_lost_total, "")                            \
    X(REDIS_MOVED, redis_redirects_total, "moved")                             \
    X(REDIS_ASK, redis_redirects_total, "ask")                                 \
    X(PRODUCE_ERRORS, produce_errors_total, "")                                \
    X(COMMITS_OK, commits_total, "ok")                                         \
    X(COMMITS_ERROR, commits_total, "error")                                   \
    X(REBALANCES, rebalances_total, "")                                        \
    X(PARTITION_REWINDS, partition_rewinds_total, "")                          \
    X(KAFKA_ERRORS, kafka_errors_total, "")

/* DD_GAUGE_MAP(X): X(ID, name, help), one unlabelled gauge each (DD_G_<ID>). */
#define DD_GAUGE_MAP(X)                                                        \
    X(QUEUE_DEPTH, queue_depth, "Jobs waiting in the job queue.")              \
    X(QUEUE_CAPACITY, queue_capacity, "Capacity of the job queue.")            \
    X(WORKERS_BUSY, workers_busy, "Worker threads processing a batch.")        \
    X(INFLIGHT, inflight,                                                      \
      "Input messages taken from Kafka and not yet acknowledged.")             \
    X(PARTITIONS_ASSIGNED, partitions_assigned, "Input partitions assigned.")  \
    X(PARTITIONS_PAUSED, partitions_paused,                                    \
      "Input partitions paused by dispatchd (job queue full, or window "       \
      "full).")                                                                \
    X(PARTITIONS_WINDOW_PAUSED, partitions_window_paused,                      \
      "Input partitions paused because their window of tracked offsets "       \
      "reached --max-partition-window.")                                       \
    X(READY, ready,                                                            \
      "1 when /readyz answers 200 (evaluated at each scrape), else 0.")

/* DD_HISTOGRAM_MAP(X): X(ID, name, help), seconds (DD_H_<ID>). */
#define DD_HISTOGRAM_MAP(X)                                                    \
    X(PROCESSING, processing_seconds,                                          \
      "Time from a worker taking a job to its result being handed to the "     \
      "producer.")                                                             \
    X(END_TO_END, end_to_end_seconds,                                          \
      "Time from the input message timestamp to the broker acknowledging "     \
      "its result.")

/* DD_LABELLED_GAUGE_MAP(X): X(name, labels, help), gauges whose series the
 * renderer builds from other state: consumer_lag after the gauges,
 * build_info last. */
#define DD_LABELLED_GAUGE_MAP(X)                                               \
    X(consumer_lag, "topic,partition",                                         \
      "Messages behind the end of each input partition (librdkafka "           \
      "statistics).")                                                          \
    X(build_info, "version,librdkafka",                                        \
      "Always 1; the labels carry the dispatchd and librdkafka versions.")

/** Counters: one value per DD_COUNTER_MAP series. */
typedef enum dd_counter {
#define DD_C_ENUM_(id, family, value)      DD_C_##id,
#define DD_C_ENUM_DLQ_(id, label, meaning) DD_C_DLQ_##id,
    DD_COUNTER_MAP(DD_C_ENUM_, DD_C_ENUM_DLQ_)
#undef DD_C_ENUM_
#undef DD_C_ENUM_DLQ_
        DD_C__COUNT
} dd_counter_t;

/** Gauges. */
typedef enum dd_gauge {
#define DD_G_ENUM_(id, name, help) DD_G_##id,
    DD_GAUGE_MAP(DD_G_ENUM_)
#undef DD_G_ENUM_
        DD_G__COUNT
} dd_gauge_t;

/** Histograms (seconds). */
typedef enum dd_histogram {
#define DD_H_ENUM_(id, name, help) DD_H_##id,
    DD_HISTOGRAM_MAP(DD_H_ENUM_)
#undef DD_H_ENUM_
        DD_H__COUNT
} dd_histogram_t;

#define DD_METRICS_MAX_PARTITIONS 1024

/*----- Updates (any thread, lock-free) -----*/

/** @brief Add n to a counter (DD_C__COUNT and beyond: ignored).
 *  @locality any thread */
void dd_metrics_add(dd_counter_t c, uint64_t n);
#define dd_metrics_inc(c) dd_metrics_add((c), 1)
/** @brief Current value of a counter. @locality any thread */
uint64_t dd_metrics_get(dd_counter_t c);

/**
 * @brief The dlq_total counter of a dead-letter class.
 * @returns DD_C_DLQ_<ID>; DD_C__COUNT for DD_DLQ_NONE or a value outside
 *          the enum
 * @locality any thread
 */
dd_counter_t dd_metrics_dlq_counter(dd_dlq_class_t cls);

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
