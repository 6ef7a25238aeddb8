/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for metrics: the rendering has HELP and TYPE for every family
 * of the tables in metrics.h (and nothing undeclared), every counter series
 * of the table renders once with its label (dead-letter classes included),
 * histogram buckets are cumulative, counters, gauges and lags move as updated,
 * label values are escaped, concurrent updates lose nothing (also run under
 * ThreadSanitizer), and scripts/check-metrics-format accepts the output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "util.h"

typedef struct fam {
    const char *name;
    const char *type;
} fam_t;

/* Every family /metrics must expose: the tables of metrics.h. */
static const fam_t families[] = {
#define CF_(name, label, help)  {"dispatchd_" #name, "counter"},
#define G_(id, name, help)      {"dispatchd_" #name, "gauge"},
#define H_(id, name, help)      {"dispatchd_" #name, "histogram"},
#define LG_(name, labels, help) {"dispatchd_" #name, "gauge"},
    DD_COUNTER_FAMILY_MAP(CF_) DD_GAUGE_MAP(G_) DD_HISTOGRAM_MAP(H_)
        DD_LABELLED_GAUGE_MAP(LG_)
#undef CF_
#undef G_
#undef H_
#undef LG_
};
#define N_FAMILIES (sizeof(families) / sizeof(families[0]))

static int reset(void **state) {
    (void)state;
    dd_metrics_reset();
    dd_metrics_set_lag_topic("dispatch.requests");
    dd_metrics_set_build_info(DD_VERSION, "unknown");
    return 0;
}

/* The value of the sample line that starts with `series ` (name plus
 * labels), or fail. */
static double sample(const char *text, const char *series) {
    size_t n = strlen(series);
    const char *p = text;

    while ((p = strstr(p, series)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p += n;
    }
    fail_msg("no sample %s in:\n%s", series, text);
    return -1;
}

/* Samples compared here are whole numbers. */
#define assert_sample(text, series, want)                                      \
    assert_int_equal((long long)sample((text), (series)), (want))

static int has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    const char *p = text;

    while ((p = strstr(p, line)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
        p += n;
    }
    return 0;
}

static void test_metrics_render_declares_every_family(void **state) {
    char *text = dd_metrics_render(NULL);
    char line[256];
    const char *p;

    (void)state;
    for (size_t i = 0; i < N_FAMILIES; i++) {
        snprintf(line, sizeof(line), "# TYPE %s %s", families[i].name,
                 families[i].type);
        assert_true(has_line(text, line));
        snprintf(line, sizeof(line), "# HELP %s ", families[i].name);
        assert_non_null(strstr(text, line));
    }
    /* Every sample belongs to a declared family. */
    for (p = text; *p; p = strchr(p, '\n') + 1) {
        size_t len = strcspn(p, "{ ");
        int found = 0;
        if (*p == '#')
            continue;
        for (size_t i = 0; i < N_FAMILIES && !found; i++) {
            size_t fl = strlen(families[i].name);
            const char *suf = p + fl;
            if (strncmp(p, families[i].name, fl) != 0)
                continue;
            found = len == fl || (strcmp(families[i].type, "histogram") == 0 &&
                                  (strncmp(suf, "_bucket", 7) == 0 ||
                                   strncmp(suf, "_sum", 4) == 0 ||
                                   strncmp(suf, "_count", 6) == 0));
        }
        if (!found)
            fail_msg("undeclared sample: %.*s", (int)strcspn(p, "\n"), p);
    }
    assert_true(has_line(text, "dispatchd_build_info{version=\"" DD_VERSION
                               "\",librdkafka=\"unknown\"} 1"));
    dd_free(text);
}

/* Every DD_COUNTER_MAP series renders once, with its label, at its value;
 * the dead-letter classes (reserved ones included) are dlq_total series. */
static void test_metrics_counter_table_renders_every_series(void **state) {
    static const struct {
        dd_counter_t id;
        const char *series;
    } rows[] = {
#define ROW_(id, family, value)      {DD_C_##id, #family},
#define DLQ_ROW_(id, label, meaning) {DD_C_DLQ_##id, "dlq_total"},
        DD_COUNTER_MAP(ROW_, DLQ_ROW_)
#undef ROW_
#undef DLQ_ROW_
    };
    static const struct {
        const char *family, *label;
    } fams[] = {
#define CF_(name, label, help) {#name, label},
        DD_COUNTER_FAMILY_MAP(CF_)
#undef CF_
    };
    static const struct {
        dd_counter_t id;
        const char *value;
    } values[] = {
#define ROW_(id, family, value)      {DD_C_##id, value},
#define DLQ_ROW_(id, label, meaning) {DD_C_DLQ_##id, label},
        DD_COUNTER_MAP(ROW_, DLQ_ROW_)
#undef ROW_
#undef DLQ_ROW_
    };
    char *text;
    char series[256];
    (void)state;

    assert_int_equal(sizeof(rows) / sizeof(rows[0]), DD_C__COUNT);
    for (size_t i = 0; i < DD_C__COUNT; i++)
        dd_metrics_add(rows[i].id, 100 + i);
    text = dd_metrics_render(NULL);
    for (size_t i = 0; i < DD_C__COUNT; i++) {
        const char *label = NULL;

        assert_int_equal(rows[i].id, (dd_counter_t)i);
        for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
            if (strcmp(fams[f].family, rows[i].series) == 0)
                label = fams[f].label;
        }
        if (label == NULL)
            fail_msg("counter %zu: family %s not in DD_COUNTER_FAMILY_MAP", i,
                     rows[i].series);
        if (label[0] == '\0')
            snprintf(series, sizeof(series), "dispatchd_%s", rows[i].series);
        else
            snprintf(series, sizeof(series), "dispatchd_%s{%s=\"%s\"}",
                     rows[i].series, label, values[i].value);
        assert_sample(text, series, (long long)(100 + i));
    }
    dd_free(text);

    {
        static const char *const labels[DD_DLQ__COUNT] = {
#define ROW_(id, label, meaning) [DD_DLQ_##id] = label,
            DD_DLQ_CLASS_MAP(ROW_)
#undef ROW_
        };

        for (int c = 1; c < DD_DLQ__COUNT; c++)
            assert_string_equal(
                values[dd_metrics_dlq_counter((dd_dlq_class_t)c)].value,
                labels[c]);
    }
    assert_int_equal(dd_metrics_dlq_counter(DD_DLQ_NOT_JSON),
                     DD_C_DLQ_NOT_JSON);
    assert_int_equal(dd_metrics_dlq_counter(DD_DLQ_RESULT_REJECTED),
                     DD_C_DLQ_RESULT_REJECTED);
    assert_int_equal(dd_metrics_dlq_counter(DD_DLQ_NONE), DD_C__COUNT);
    assert_int_equal(dd_metrics_dlq_counter(DD_DLQ__COUNT), DD_C__COUNT);
    dd_metrics_inc(DD_C__COUNT); /* ignored */
}

static void test_metrics_histogram_buckets_are_cumulative(void **state) {
    char *text;

    (void)state;
    dd_metrics_observe(DD_H_PROCESSING, 0.0005);
    dd_metrics_observe(DD_H_PROCESSING, 0.003);
    dd_metrics_observe(DD_H_PROCESSING, 0.3);
    dd_metrics_observe(DD_H_PROCESSING, 100.0); /* above every bucket */
    dd_metrics_observe(DD_H_PROCESSING, -1.0);  /* clock step: counts as 0 */
    text = dd_metrics_render(NULL);
    assert_sample(text, "dispatchd_processing_seconds_bucket{le=\"0.001\"}", 2);
    assert_sample(text, "dispatchd_processing_seconds_bucket{le=\"0.0025\"}",
                  2);
    assert_sample(text, "dispatchd_processing_seconds_bucket{le=\"0.005\"}", 3);
    assert_sample(text, "dispatchd_processing_seconds_bucket{le=\"0.25\"}", 3);
    assert_sample(text, "dispatchd_processing_seconds_bucket{le=\"0.5\"}", 4);
    assert_sample(text, "dispatchd_processing_seconds_bucket{le=\"30\"}", 4);
    assert_sample(text, "dispatchd_processing_seconds_bucket{le=\"+Inf\"}", 5);
    assert_sample(text, "dispatchd_processing_seconds_count", 5);
    assert_true(sample(text, "dispatchd_processing_seconds_sum") > 100.30 &&
                sample(text, "dispatchd_processing_seconds_sum") < 100.31);
    /* The other histogram is untouched. */
    assert_sample(text, "dispatchd_end_to_end_seconds_count", 0);
    dd_free(text);

    /* Monotonic over the bucket list, whatever the values. */
    for (int i = 0; i < 1000; i++)
        dd_metrics_observe(DD_H_END_TO_END, (double)(i % 97) / 3.0);
    text = dd_metrics_render(NULL);
    {
        double prev = -1;
        const char *p = text;
        const char *key = "dispatchd_end_to_end_seconds_bucket{le=\"";
        int buckets = 0;
        while ((p = strstr(p, key)) != NULL) {
            double v = strtod(strchr(p, ' ') + 1, NULL);
            assert_true(v >= prev);
            prev = v;
            buckets++;
            p++;
        }
        assert_int_equal(buckets, 15); /* 14 bounds and +Inf */
        assert_int_equal((long long)prev, 1000);
    }
    dd_free(text);
}

static void test_metrics_counters_and_gauges_move(void **state) {
    char *text;

    (void)state;
    text = dd_metrics_render(NULL);
    assert_sample(text, "dispatchd_requests_total{outcome=\"assigned\"}", 0);
    dd_free(text);

    dd_metrics_inc(DD_C_REQ_ASSIGNED);
    dd_metrics_add(DD_C_REQ_ASSIGNED, 41);
    dd_metrics_add(DD_C_REQ_REJECTED, 7);
    dd_metrics_inc(DD_C_DLQ_NOT_JSON);
    dd_metrics_add(DD_C_DLQ_SCHEMA, 3);
    dd_metrics_inc(DD_C_ETA_MISS);
    dd_metrics_inc(DD_C_COMMITS_OK);
    dd_metrics_gauge_set(DD_G_QUEUE_CAPACITY, 1000);
    dd_metrics_gauge_add(DD_G_WORKERS_BUSY, 3);
    dd_metrics_gauge_add(DD_G_WORKERS_BUSY, -1);
    dd_metrics_gauge_set(DD_G_READY, 1);
    assert_int_equal(dd_metrics_get(DD_C_REQ_ASSIGNED), 42);
    assert_int_equal(dd_metrics_gauge_get(DD_G_WORKERS_BUSY), 2);

    text = dd_metrics_render(NULL);
    assert_sample(text, "dispatchd_requests_total{outcome=\"assigned\"}", 42);
    assert_sample(text, "dispatchd_requests_total{outcome=\"rejected\"}", 7);
    assert_sample(text, "dispatchd_requests_total{outcome=\"expired\"}", 0);
    assert_sample(text, "dispatchd_dlq_total{reason=\"not_json\"}", 1);
    assert_sample(text, "dispatchd_dlq_total{reason=\"schema\"}", 3);
    assert_sample(text, "dispatchd_eta_cache_total{result=\"miss\"}", 1);
    assert_sample(text, "dispatchd_commits_total{result=\"ok\"}", 1);
    assert_sample(text, "dispatchd_queue_capacity", 1000);
    assert_sample(text, "dispatchd_workers_busy", 2);
    assert_sample(text, "dispatchd_ready", 1);
    dd_free(text);
}

static void test_metrics_lag_per_partition_and_label_escaping(void **state) {
    char *text;

    (void)state;
    dd_metrics_set_lag_topic("odd\"topic\\x");
    dd_metrics_set_build_info("1.2.3", "2.0.2");
    dd_metrics_set_lag(3, 42);
    dd_metrics_set_lag(0, 0);
    dd_metrics_set_lag(DD_METRICS_MAX_PARTITIONS, 5); /* ignored */
    text = dd_metrics_render(NULL);
    assert_sample(text,
                  "dispatchd_consumer_lag{topic=\"odd\\\"topic\\\\x"
                  "\",partition=\"3\"}",
                  42);
    assert_sample(text,
                  "dispatchd_consumer_lag{topic=\"odd\\\"topic\\\\x"
                  "\",partition=\"0\"}",
                  0);
    assert_null(strstr(text, "partition=\"1\""));
    assert_true(has_line(
        text,
        "dispatchd_build_info{version=\"1.2.3\",librdkafka=\"2.0.2\"} 1"));
    dd_free(text);

    dd_metrics_set_lag(3, -1); /* revoked: the series goes away */
    text = dd_metrics_render(NULL);
    assert_null(strstr(text, "partition=\"3\""));
    dd_free(text);
}

#define N_THREADS 4
#define N_ADDS    20000

static void *adder_main(void *arg) {
    (void)arg;
    for (int i = 0; i < N_ADDS; i++) {
        dd_metrics_inc(DD_C_REQ_ASSIGNED);
        dd_metrics_gauge_add(DD_G_INFLIGHT, 1);
        dd_metrics_observe(DD_H_END_TO_END, 0.002);
        if (i % 1000 == 0)
            dd_free(dd_metrics_render(NULL)); /* a scrape meanwhile */
    }
    return NULL;
}

static void test_metrics_concurrent_updates_lose_nothing(void **state) {
    pthread_t t[N_THREADS];
    char *text;

    (void)state;
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, adder_main, NULL), 0);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(dd_metrics_get(DD_C_REQ_ASSIGNED),
                     (uint64_t)N_THREADS * N_ADDS);
    assert_int_equal(dd_metrics_gauge_get(DD_G_INFLIGHT),
                     (int64_t)N_THREADS * N_ADDS);
    text = dd_metrics_render(NULL);
    assert_sample(text, "dispatchd_end_to_end_seconds_bucket{le=\"0.0025\"}",
                  N_THREADS * N_ADDS);
    dd_free(text);
}

/* scripts/check-metrics-format (prometheus_client's parser plus line and
 * histogram checks, in the project's .venv made by scripts/deps) accepts the
 * render; skipped when the .venv is not there. */
static void test_metrics_format_checker_accepts_render(void **state) {
    char cmd[] = ".venv/bin/python scripts/check-metrics-format";
    char *text;
    FILE *fp;

    (void)state;
    if (access(".venv/bin/python", X_OK) != 0 ||
        access("scripts/check-metrics-format", R_OK) != 0) {
        print_message("no .venv/bin/python (run scripts/deps)\n");
        skip();
    }
    dd_metrics_inc(DD_C_REQ_EXPIRED);
    dd_metrics_set_lag(1, 10);
    dd_metrics_observe(DD_H_PROCESSING, 0.01);
    text = dd_metrics_render(NULL);
    fp = popen(cmd, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(pclose(fp), 0);
    dd_free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_metrics_render_declares_every_family,
                               reset),
        cmocka_unit_test_setup(test_metrics_counter_table_renders_every_series,
                               reset),
        cmocka_unit_test_setup(test_metrics_histogram_buckets_are_cumulative,
                               reset),
        cmocka_unit_test_setup(test_metrics_counters_and_gauges_move, reset),
        cmocka_unit_test_setup(
            test_metrics_lag_per_partition_and_label_escaping, reset),
        cmocka_unit_test_setup(test_metrics_concurrent_updates_lose_nothing,
                               reset),
        cmocka_unit_test_setup(test_metrics_format_checker_accepts_render,
                               reset),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
