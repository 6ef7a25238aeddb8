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

/* The rows of the tables in metrics.h, for the renderer. */
typedef struct family_row {
    const char *name, *label, *help;
} family_row_t;

typedef struct counter_row {
    const char *family, *value;
} counter_row_t;

typedef struct gauge_row {
    const char *name, *help;
} gauge_row_t;

static const family_row_t counter_families[] = {
#define ROW_(name, label, help) {#name, (label), (help)},
    DD_COUNTER_FAMILY_MAP(ROW_)
#undef ROW_
};

static const counter_row_t counter_rows[DD_C__COUNT] = {
#define ROW_(id, family, value)      [DD_C_##id] = {#family, (value)},
#define DLQ_ROW_(id, label, meaning) [DD_C_DLQ_##id] = {"dlq_total", (label)},
    DD_COUNTER_MAP(ROW_, DLQ_ROW_)
#undef ROW_
#undef DLQ_ROW_
};

static const gauge_row_t gauge_rows[DD_G__COUNT] = {
#define ROW_(id, name, help) [DD_G_##id] = {#name, (help)},
    DD_GAUGE_MAP(ROW_)
#undef ROW_
};

static const gauge_row_t histogram_rows[DD_H__COUNT] = {
#define ROW_(id, name, help) [DD_H_##id] = {#name, (help)},
    DD_HISTOGRAM_MAP(ROW_)
#undef ROW_
};

/* Indexes into labelled_gauges[]. */
enum {
#define ROW_(name, labels, help) LG_##name,
    DD_LABELLED_GAUGE_MAP(ROW_)
#undef ROW_
};

static const gauge_row_t labelled_gauges[] = {
#define ROW_(name, labels, help) [LG_##name] = {#name, (help)},
    DD_LABELLED_GAUGE_MAP(ROW_)
#undef ROW_
};

#define N_COUNTER_FAMILIES                                                     \
    (sizeof(counter_families) / sizeof(counter_families[0]))

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
    if ((unsigned)c >= DD_C__COUNT)
        return;
    atomic_fetch_add_explicit(&counters[c], n, memory_order_relaxed);
}

uint64_t dd_metrics_get(dd_counter_t c) {
    return atomic_load_explicit(&counters[c], memory_order_relaxed);
}

dd_counter_t dd_metrics_dlq_counter(dd_dlq_class_t cls) {
    static const dd_counter_t by_class[DD_DLQ__COUNT] = {[DD_DLQ_NONE] =
                                                             DD_C__COUNT,
#define ROW_(id, label, meaning) [DD_DLQ_##id] = DD_C_DLQ_##id,
                                                         DD_DLQ_CLASS_MAP(ROW_)
#undef ROW_
    };

    if ((unsigned)cls >= DD_DLQ__COUNT)
        return DD_C__COUNT;
    return by_class[cls];
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

    for (size_t f = 0; f < N_COUNTER_FAMILIES; f++) {
        const family_row_t *fam = &counter_families[f];

        family(&b, fam->name, "counter", fam->help);
        for (int c = 0; c < DD_C__COUNT; c++) {
            if (strcmp(counter_rows[c].family, fam->name) != 0)
                continue;
            if (fam->label[0] == '\0')
                bprintf(&b, "dispatchd_%s", fam->name);
            else
                bprintf(&b, "dispatchd_%s{%s=\"%s\"}", fam->name, fam->label,
                        counter_rows[c].value);
            bprintf(&b, " %llu\n", (unsigned long long)dd_metrics_get(c));
        }
    }
    for (int g = 0; g < DD_G__COUNT; g++)
        gauge(&b, gauge_rows[g].name, gauge_rows[g].help, g);

    family(&b, labelled_gauges[LG_consumer_lag].name, "gauge",
           labelled_gauges[LG_consumer_lag].help);
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

    for (int h = 0; h < DD_H__COUNT; h++)
        histogram(&b, histogram_rows[h].name, histogram_rows[h].help, h);
    family(&b, labelled_gauges[LG_build_info].name, "gauge",
           labelled_gauges[LG_build_info].help);
    bprintf(&b, "dispatchd_build_info{version=\"");
    label_value(&b, atomic_load(&build_version));
    bprintf(&b, "\",librdkafka=\"");
    label_value(&b, atomic_load(&build_librdkafka));
    bprintf(&b, "\"} 1\n");
    if (lenp != NULL)
        *lenp = b.len;
    return b.p;
}
