/* SPDX-License-Identifier: MIT */
/*
 * metrics: atomic counters, gauges and fixed-bucket histograms, and their
 * Prometheus text rendering.
 *
 * DESIGN: all state is a set of static arrays of C11 atomics updated with
 * relaxed ordering; no locks, so the hot path costs a few atomic adds.
 * Rendering reads each value once; a scrape may see two counters from
 * slightly different instants, which Prometheus tolerates.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

#define N_BUCKETS 14

static const double bucket_le[N_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                            0.05,  0.1,    0.25,  0.5,  1.0,
                                            2.5,   5.0,    10.0,  30.0};

static _Atomic uint64_t counters[DD_C__COUNT];
static _Atomic int64_t gauges[DD_G__COUNT];
static _Atomic uint64_t hist_buckets[DD_H__COUNT][N_BUCKETS];
static _Atomic uint64_t hist_count[DD_H__COUNT];
static _Atomic uint64_t hist_sum_us[DD_H__COUNT];
static _Atomic int64_t lags[DD_METRICS_MAX_PARTITIONS];
static _Atomic int lags_init;
static _Atomic(const char *) lag_topic = "";
static _Atomic(const char *) build_version = DD_VERSION;
static _Atomic(const char *) build_librdkafka = "unknown";

void dd_metrics_add(dd_counter_t c, uint64_t n) {
    atomic_fetch_add_explicit(&counters[c], n, memory_order_relaxed);
}

uint64_t dd_metrics_get(dd_counter_t c) {
    return atomic_load_explicit(&counters[c], memory_order_relaxed);
}

void dd_metrics_gauge_set(dd_gauge_t g, int64_t v) {
    atomic_store_explicit(&gauges[g], v, memory_order_relaxed);
}

void dd_metrics_gauge_add(dd_gauge_t g, int64_t delta) {
    atomic_fetch_add_explicit(&gauges[g], delta, memory_order_relaxed);
}

int64_t dd_metrics_gauge_get(dd_gauge_t g) {
    return atomic_load_explicit(&gauges[g], memory_order_relaxed);
}

void dd_metrics_observe(dd_histogram_t h, double seconds) {
    if (seconds < 0)
        seconds = 0;
    /* Buckets are stored non-cumulative; rendering accumulates them. */
    for (int i = 0; i < N_BUCKETS; i++) {
        if (seconds <= bucket_le[i]) {
            atomic_fetch_add_explicit(&hist_buckets[h][i], 1,
                                      memory_order_relaxed);
            break;
        }
    }
    atomic_fetch_add_explicit(&hist_count[h], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&hist_sum_us[h], (uint64_t)(seconds * 1e6),
                              memory_order_relaxed);
}

static void lags_clear(void) {
    for (int i = 0; i < DD_METRICS_MAX_PARTITIONS; i++)
        atomic_store_explicit(&lags[i], -1, memory_order_relaxed);
}

void dd_metrics_set_lag(int32_t partition, int64_t lag) {
    int expected = 0;
    if (atomic_compare_exchange_strong(&lags_init, &expected, 1))
        lags_clear();
    if (partition < 0 || partition >= DD_METRICS_MAX_PARTITIONS)
        return;
    atomic_store_explicit(&lags[partition], lag, memory_order_relaxed);
}

void dd_metrics_set_lag_topic(const char *topic) {
    atomic_store(&lag_topic, topic);
}

void dd_metrics_set_build_info(const char *version, const char *librdkafka) {
    atomic_store(&build_version, version);
    atomic_store(&build_librdkafka, librdkafka);
}

void dd_metrics_reset(void) {
    for (int i = 0; i < DD_C__COUNT; i++)
        atomic_store(&counters[i], 0);
    for (int i = 0; i < DD_G__COUNT; i++)
        atomic_store(&gauges[i], 0);
    for (int h = 0; h < DD_H__COUNT; h++) {
        for (int i = 0; i < N_BUCKETS; i++)
            atomic_store(&hist_buckets[h][i], 0);
        atomic_store(&hist_count[h], 0);
        atomic_store(&hist_sum_us[h], 0);
    }
    lags_clear();
    atomic_store(&lags_init, 1);
}

/* A growable text buffer for rendering. */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

static void bprintf(buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void bprintf(buf_t *b, const char *fmt, ...) {
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        dd_assert(n >= 0);
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n;
        b->p = dd_xrealloc(b->p, b->cap);
    }
}

/* A label value, escaped as the text format wants: backslash, double quote
 * and line feed. */
static void label_value(buf_t *b, const char *v) {
    for (; *v; v++) {
        if (*v == '\\')
            bprintf(b, "\\\\");
        else if (*v == '"')
            bprintf(b, "\\\"");
        else if (*v == '\n')
            bprintf(b, "\\n");
        else
            bprintf(b, "%c", *v);
    }
}

static void family(buf_t *b, const char *name, const char *type,
                   const char *help) {
    bprintf(b, "# HELP dispatchd_%s %s\n# TYPE dispatchd_%s %s\n", name, help,
            name, type);
}

static void counter_line(buf_t *b, const char *name, const char *labels,
                         dd_counter_t c) {
    bprintf(b, "dispatchd_%s%s %llu\n", name, labels,
            (unsigned long long)dd_metrics_get(c));
}

static void gauge(buf_t *b, const char *name, const char *help, dd_gauge_t g) {
    family(b, name, "gauge", help);
    bprintf(b, "dispatchd_%s %lld\n", name, (long long)dd_metrics_gauge_get(g));
}

static void histogram(buf_t *b, const char *name, const char *help,
                      dd_histogram_t h) {
    uint64_t cum = 0;

    family(b, name, "histogram", help);
    for (int i = 0; i < N_BUCKETS; i++) {
        cum += atomic_load_explicit(&hist_buckets[h][i], memory_order_relaxed);
        bprintf(b, "dispatchd_%s_bucket{le=\"%g\"} %llu\n", name, bucket_le[i],
                (unsigned long long)cum);
    }
    bprintf(b, "dispatchd_%s_bucket{le=\"+Inf\"} %llu\n", name,
            (unsigned long long)atomic_load(&hist_count[h]));
    bprintf(b, "dispatchd_%s_sum %.6f\n", name,
            (double)atomic_load(&hist_sum_us[h]) / 1e6);
    bprintf(b, "dispatchd_%s_count %llu\n", name,
            (unsigned long long)atomic_load(&hist_count[h]));
}

char *dd_metrics_render(size_t *lenp) {
    buf_t b = {dd_xmalloc(8192), 0, 8192};

    family(&b, "requests_total", "counter", "Requests answered, by outcome.");
    counter_line(&b, "requests_total", "{outcome=\"assigned\"}",
                 DD_C_REQ_ASSIGNED);
    counter_line(&b, "requests_total", "{outcome=\"rejected\"}",
                 DD_C_REQ_REJECTED);
    counter_line(&b, "requests_total", "{outcome=\"expired\"}",
                 DD_C_REQ_EXPIRED);
    counter_line(&b, "requests_total", "{outcome=\"dead_letter\"}",
                 DD_C_REQ_DEAD_LETTER);
    family(&b, "ledger_hits_total", "counter",
           "Requests answered with the stored result of an earlier run.");
    counter_line(&b, "ledger_hits_total", "", DD_C_LEDGER_HITS);
    family(&b, "dlq_total", "counter",
           "Input records sent to the dead-letter topic, by reason.");
    counter_line(&b, "dlq_total", "{reason=\"too_large\"}", DD_C_DLQ_TOO_LARGE);
    counter_line(&b, "dlq_total", "{reason=\"invalid_utf8\"}",
                 DD_C_DLQ_INVALID_UTF8);
    counter_line(&b, "dlq_total", "{reason=\"not_json\"}", DD_C_DLQ_NOT_JSON);
    counter_line(&b, "dlq_total", "{reason=\"schema\"}", DD_C_DLQ_SCHEMA);
    counter_line(&b, "dlq_total", "{reason=\"bad_id\"}", DD_C_DLQ_BAD_ID);
    counter_line(&b, "dlq_total", "{reason=\"record_too_large\"}",
                 DD_C_DLQ_RECORD_TOO_LARGE);
    counter_line(&b, "dlq_total", "{reason=\"result_rejected\"}",
                 DD_C_DLQ_RESULT_REJECTED);
    family(&b, "eta_cache_total", "counter", "ETA cache lookups, by result.");
    counter_line(&b, "eta_cache_total", "{result=\"hit\"}", DD_C_ETA_HIT);
    counter_line(&b, "eta_cache_total", "{result=\"miss\"}", DD_C_ETA_MISS);
    counter_line(&b, "eta_cache_total", "{result=\"error\"}", DD_C_ETA_ERROR);
    family(&b, "redis_errors_total", "counter",
           "Redis calls that failed (connection, timeout, error reply).");
    counter_line(&b, "redis_errors_total", "", DD_C_REDIS_ERRORS);
    family(&b, "produce_errors_total", "counter",
           "Result or dead-letter deliveries that failed and were retried.");
    counter_line(&b, "produce_errors_total", "", DD_C_PRODUCE_ERRORS);
    family(&b, "commits_total", "counter", "Offset commits, by result.");
    counter_line(&b, "commits_total", "{result=\"ok\"}", DD_C_COMMITS_OK);
    counter_line(&b, "commits_total", "{result=\"error\"}", DD_C_COMMITS_ERROR);
    family(&b, "rebalances_total", "counter",
           "Consumer group rebalances (assign and revoke events).");
    counter_line(&b, "rebalances_total", "", DD_C_REBALANCES);
    family(&b, "kafka_errors_total", "counter",
           "Errors reported by librdkafka's error callback.");
    counter_line(&b, "kafka_errors_total", "", DD_C_KAFKA_ERRORS);

    gauge(&b, "queue_depth", "Jobs waiting in the job queue.",
          DD_G_QUEUE_DEPTH);
    gauge(&b, "queue_capacity", "Capacity of the job queue.",
          DD_G_QUEUE_CAPACITY);
    gauge(&b, "workers_busy", "Worker threads processing a batch.",
          DD_G_WORKERS_BUSY);
    gauge(&b, "inflight",
          "Input messages taken from Kafka and not yet acknowledged.",
          DD_G_INFLIGHT);
    gauge(&b, "partitions_assigned", "Input partitions assigned.",
          DD_G_PARTITIONS_ASSIGNED);
    gauge(&b, "partitions_paused",
          "Input partitions paused because the job queue is full.",
          DD_G_PARTITIONS_PAUSED);
    gauge(&b, "ready",
          "1 when /readyz answers 200 (evaluated at each scrape), else 0.",
          DD_G_READY);

    family(&b, "consumer_lag", "gauge",
           "Messages behind the end of each input partition (librdkafka "
           "statistics).");
    if (atomic_load(&lags_init)) {
        for (int p = 0; p < DD_METRICS_MAX_PARTITIONS; p++) {
            int64_t lag = atomic_load_explicit(&lags[p], memory_order_relaxed);
            if (lag < 0)
                continue;
            bprintf(&b, "dispatchd_consumer_lag{topic=\"");
            label_value(&b, atomic_load(&lag_topic));
            bprintf(&b, "\",partition=\"%d\"} %lld\n", p, (long long)lag);
        }
    }

    histogram(&b, "processing_seconds",
              "Time from a worker taking a job to its result being handed "
              "to the producer.",
              DD_H_PROCESSING);
    histogram(&b, "end_to_end_seconds",
              "Time from the input message timestamp to the broker "
              "acknowledging its result.",
              DD_H_END_TO_END);
    family(&b, "build_info", "gauge",
           "Always 1; the labels carry the dispatchd and librdkafka "
           "versions.");
    bprintf(&b, "dispatchd_build_info{version=\"");
    label_value(&b, atomic_load(&build_version));
    bprintf(&b, "\",librdkafka=\"");
    label_value(&b, atomic_load(&build_librdkafka));
    bprintf(&b, "\"} 1\n");
    if (lenp != NULL)
        *lenp = b.len;
    return b.p;
}
