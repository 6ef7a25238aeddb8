/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the worker pool (src/pool.c threads, src/worker_batch.c
 * batches) against the fake store (tests/fakes/fake_store.c), shared by the
 * workers as they would share one Redis: a transient Redis error is retried
 * and every job is then answered exactly once; a shutdown while Redis is
 * down drops the jobs, answers none and returns by the give-up time; a batch
 * of valid and invalid requests answers the valid ones and dead-letters the
 * others with their class.
 *
 * DESIGN: the workers call answered() concurrently; it records each job
 * under the recorder's mutex and signals a condition variable the test
 * thread waits on with a deadline. The fake server has its own leaf lock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dd_wait.h"
#include "fake_store.h"
#include "job.h"
#include "log.h"
#include "pool.h"
#include "queue.h"
#include "util.h"

#define MAX_JOBS   64
#define WAIT_MS    10000 /* deadline of every wait; a pass takes far less */
#define BACKOFF_MS 5     /* the fake's reconnect backoff */

#define ALEX_LAT 52.521918
#define ALEX_LON 13.413215
#define TOR_LAT  52.516275
#define TOR_LON  13.377704

/* What answered() saw, indexed by the job's offset. */
typedef struct recorder {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int total;
    int times[MAX_JOBS];
    dd_job_out_t kind[MAX_JOBS];
    dd_dlq_class_t dlq[MAX_JOBS];
    dd_status_t status[MAX_JOBS];
} recorder_t;

typedef struct fixture {
    dd_config_t cfg;
    dd_store_t *ctl; /* the shared fake server's controls */
    dd_queue_t *jq;
    dd_pool_t *pool;
    recorder_t rec;
} fixture_t;

static char fake_host[] = "fake";
static char topic[] = "dispatch.requests";

static void answered(dd_job_t *job, void *opaque) {
    recorder_t *r = opaque;

    pthread_mutex_lock(&r->lock);
    /* No cmocka assertion here: this runs on a worker thread. */
    dd_assert(job->offset >= 0 && job->offset < MAX_JOBS);
    r->times[job->offset]++;
    r->kind[job->offset] = job->out_kind;
    r->dlq[job->offset] = job->dlq_code;
    r->status[job->offset] = job->out_status;
    r->total++;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    dd_job_destroy(job);
}

/* Wait until answered() has seen n jobs in all; 0 on timeout. */
static int wait_answered(recorder_t *r, int n) {
    return dd_wait_count(&r->lock, &r->cond, &r->total, n, WAIT_MS);
}

static int setup(void **state) {
    fixture_t *f = dd_xcalloc(1, sizeof(*f));

    dd_log_init(DD_LOG_ERROR, DD_LOG_FORMAT_TEXT);
    f->cfg.workers = 2;
    f->cfg.queue_capacity = MAX_JOBS;
    f->cfg.batch_size = 8;
    f->cfg.topic = topic;
    f->cfg.redis.host = fake_host;
    f->cfg.redis.port = 6379;
    f->cfg.redis_timeout_ms = 1000;
    f->cfg.eta_ttl_ms = 60000;
    f->cfg.reservation_ttl_ms = 30000;
    f->cfg.idempotency_ttl_ms = 3600000;
    pthread_mutex_init(&f->rec.lock, NULL);
    pthread_cond_init(&f->rec.cond, NULL);
    f->ctl = fake_store_new();
    assert_non_null(f->ctl);
    fake_store_share(f->ctl);
    fake_store_set_backoff_ms(f->ctl, BACKOFF_MS);
    fake_store_add_parcel(f->ctl, "p-77", TOR_LAT, TOR_LON, ALEX_LAT, ALEX_LON);
    fake_store_add_courier(f->ctl, "c-12", ALEX_LAT, ALEX_LON, "car",
                           "available");
    f->jq = dd_queue_new(MAX_JOBS, NULL, 0);
    assert_non_null(f->jq);
    *state = f;
    return 0;
}

static void destroy_item(void *item, void *arg) {
    (void)arg;
    dd_job_destroy(item);
}

static int teardown(void **state) {
    fixture_t *f = *state;

    dd_queue_close(f->jq);
    dd_pool_destroy(f->pool);
    dd_queue_drain(f->jq, destroy_item, NULL);
    dd_queue_destroy(f->jq);
    fake_store_share(NULL);
    dd_store_destroy(f->ctl);
    pthread_cond_destroy(&f->rec.cond);
    pthread_mutex_destroy(&f->rec.lock);
    dd_free(f);
    return 0;
}

/* Queue a job whose value is the given bytes, at offset off. */
static void push_raw(fixture_t *f, int64_t off, const char *value, size_t len) {
    dd_job_t *job = dd_xcalloc(1, sizeof(*job));

    job->partition = 0;
    job->offset = off;
    job->timestamp_ms = dd_wall_ms();
    job->value = dd_xmalloc(len + 1);
    memcpy(job->value, value, len);
    job->value[len] = '\0';
    job->value_len = len;
    job->consumed_us = dd_now_us();
    assert_int_equal(dd_queue_try_push(f->jq, job), DD_OK);
}

static void push_json(fixture_t *f, int64_t off, const char *json) {
    push_raw(f, off, json, strlen(json));
}

/* A valid request r-<off> for parcel p-77 and courier c-12. */
static void push_valid(fixture_t *f, int64_t off) {
    char json[160];

    snprintf(json, sizeof(json),
             "{\"request_id\":\"r-%lld\",\"parcel_id\":\"p-77\","
             "\"courier_id\":\"c-12\"}",
             (long long)off);
    push_json(f, off, json);
}

static void start_pool(fixture_t *f) {
    char errstr[256] = "";

    f->pool =
        dd_pool_new(&f->cfg, f->jq, answered, &f->rec, errstr, sizeof(errstr));
    if (f->pool == NULL)
        fail_msg("dd_pool_new: %s", errstr);
}

/* Wait until some worker is backing off from a failed Redis call. */
static int wait_backoff(const fixture_t *f) {
    int64_t end = dd_now_ms() + WAIT_MS;

    while (dd_now_ms() < end) {
        dd_worker_info_t info[8];
        size_t n = dd_pool_snapshot(f->pool, info, 8);
        for (size_t i = 0; i < n; i++)
            if (info[i].state == DD_WORKER_BACKOFF)
                return 1;
        usleep(1000);
    }
    return 0;
}

static void
test_pool_transient_error_is_retried_then_all_answered_once(void **state) {
    fixture_t *f = *state;
    const int n = 40;
    /* Each worker pings once at start, before it takes jobs: those pings
     * take the first failures, the first batches the rest. */
    const int failures = f->cfg.workers + 4;
    dd_store_stats_t stats;
    char errstr[256];

    for (int i = 0; i < n; i++)
        push_valid(f, i);
    fake_store_fail_next(f->ctl, failures);
    start_pool(f);
    assert_true(wait_answered(&f->rec, n));
    dd_queue_close(f->jq);
    dd_pool_join(f->pool, dd_now_ms() + WAIT_MS);

    assert_int_equal(f->rec.total, n);
    for (int i = 0; i < n; i++) {
        char rid[16];
        assert_int_equal(f->rec.times[i], 1);
        assert_int_equal(f->rec.kind[i], DD_JOB_OUT_RESULT);
        snprintf(rid, sizeof(rid), "r-%d", i);
        assert_non_null(fake_store_ledger(f->ctl, rid));
    }
    /* c-12 went to exactly one request; the others were rejected. */
    assert_non_null(fake_store_reservation(f->ctl, "c-12"));
    dd_store_get_stats(f->ctl, &stats);
    assert_int_equal(stats.io_errors, (uint64_t)failures);
    /* The failed loads were sent again: more loads than batches needed. */
    assert_true(fake_store_round_trips(f->ctl, FAKE_STORE_LOAD) >=
                n / f->cfg.batch_size + 1);
    assert_int_equal(dd_pool_redis_ok(f->pool), 1);
    assert_int_equal(dd_pool_redis_error(f->pool, errstr, sizeof(errstr)), 0);
    assert_string_equal(errstr, "");
}

static void
test_pool_shutdown_with_redis_down_drops_and_answers_none(void **state) {
    fixture_t *f = *state;
    const int n = 20;
    int64_t give_up, joined;
    char err[256];

    fake_store_set_down(f->ctl, 1);
    start_pool(f);
    for (int i = 0; i < n; i++)
        push_valid(f, i);
    assert_true(wait_backoff(f));
    assert_int_equal(dd_pool_redis_ok(f->pool), 0);
    /* /readyz gives the failed ping's error. */
    assert_int_equal(dd_pool_redis_error(f->pool, err, sizeof(err)), 1);
    assert_string_equal(err, "fake redis: down");

    dd_queue_close(f->jq);
    give_up = dd_now_ms() + 100;
    dd_pool_join(f->pool, give_up);
    joined = dd_now_ms();
    /* Back by the give-up time (plus a backoff slice and scheduling). */
    assert_true(joined <= give_up + 1000);
    /* Every job was dropped, none answered (twice or at all), none left. */
    assert_int_equal(f->rec.total, 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(f->rec.times[i], 0);
    assert_int_equal(dd_queue_depth(f->jq), 0);
    assert_null(fake_store_ledger(f->ctl, "r-0"));
    assert_int_equal(fake_store_count(f->ctl, "result:"), 0);
}

static void
test_pool_mixed_batch_dead_letters_invalid_answers_valid(void **state) {
    fixture_t *f = *state;
    static const char bad_utf8[] = "{\"request_id\":\"r-\xff\xfe\"}";

    f->cfg.workers = 1;
    /* Queued before the pool starts: the one worker takes them as one
     * batch. */
    push_valid(f, 0);
    push_json(f, 1, "this is not json");
    push_valid(f, 2);
    push_json(f, 3, "{\"request_id\":\"r-3\"}");
    push_json(f, 4,
              "{\"request_id\":\"bad id!\",\"parcel_id\":\"p-77\","
              "\"courier_id\":\"c-12\"}");
    push_raw(f, 5, bad_utf8, sizeof(bad_utf8) - 1);
    push_valid(f, 6);
    start_pool(f);
    assert_true(wait_answered(&f->rec, 7));
    dd_queue_close(f->jq);
    dd_pool_join(f->pool, dd_now_ms() + WAIT_MS);

    assert_int_equal(f->rec.total, 7);
    for (int i = 0; i < 7; i++)
        assert_int_equal(f->rec.times[i], 1);
    assert_int_equal(f->rec.kind[0], DD_JOB_OUT_RESULT);
    assert_int_equal(f->rec.status[0], DD_STATUS_ASSIGNED);
    assert_int_equal(f->rec.kind[2], DD_JOB_OUT_RESULT);
    assert_int_equal(f->rec.status[2], DD_STATUS_REJECTED);
    assert_int_equal(f->rec.kind[6], DD_JOB_OUT_RESULT);
    assert_int_equal(f->rec.kind[1], DD_JOB_OUT_DLQ);
    assert_int_equal(f->rec.dlq[1], DD_DLQ_NOT_JSON);
    assert_int_equal(f->rec.kind[3], DD_JOB_OUT_DLQ);
    assert_int_equal(f->rec.dlq[3], DD_DLQ_SCHEMA);
    assert_int_equal(f->rec.kind[4], DD_JOB_OUT_DLQ);
    assert_int_equal(f->rec.dlq[4], DD_DLQ_BAD_ID);
    assert_int_equal(f->rec.kind[5], DD_JOB_OUT_DLQ);
    assert_int_equal(f->rec.dlq[5], DD_DLQ_INVALID_UTF8);
    /* The three valid ones went to Redis as one batch: one load. */
    assert_int_equal(fake_store_round_trips(f->ctl, FAKE_STORE_LOAD), 1);
    assert_non_null(fake_store_ledger(f->ctl, "r-6"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_pool_transient_error_is_retried_then_all_answered_once, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_pool_shutdown_with_redis_down_drops_and_answers_none, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_pool_mixed_batch_dead_letters_invalid_answers_valid, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
