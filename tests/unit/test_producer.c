/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the producer (src/producer.c) against librdkafka's mock
 * cluster (<librdkafka/rdkafka_mock.h>, one in-process broker): deliveries
 * that fail while the broker is down are produced again with backoff and
 * acknowledged once it is back, each job exactly once; and a local queue of
 * two messages (queue.buffering.max.messages) neither deadlocks the workers
 * that send nor the delivery-report thread that retries.
 *
 * DESIGN: acked() runs on dd-prod and records each job under the recorder's
 * mutex, signalling a condition variable the test thread waits on with a
 * deadline. Senders run on their own threads, as workers do, so a producer
 * that blocks shows as a timeout, not as a hung test.
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
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "dd_wait.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "producer.h"
#include "util.h"

#define MAX_JOBS 64
#define WAIT_MS  30000 /* deadline of every wait; a pass takes far less */
#define SENDERS  2

/* 1 while the producer's retry path can deadlock on a full local queue
 * (issue 8, section 4): the tiny-queue test is then skipped, unless
 * DD_TEST_KNOWN_BUGS=1 is set, in which case it reproduces the deadlock,
 * reports it, abandons the stuck producer (its teardown would race with
 * the senders it releases) and skips. 0 now that the retry path serves
 * delivery reports (rd_kafka_poll()) while the queue is full: the test
 * always runs and any deadlock fails it. */
#define KNOWN_RETRY_DEADLOCK 0
#define DEADLOCK_WAIT_MS     5000 /* no progress for this long: deadlock */

typedef struct recorder {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int total;
    int times[MAX_JOBS];
    int attempts[MAX_JOBS];
} recorder_t;

typedef struct fixture {
    rd_kafka_t *mock_rk; /* owns the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    dd_config_t cfg;
    dd_kafka_prop_t props[4];
    dd_producer_t *prod;
    recorder_t rec;
    pthread_t senders[SENDERS];
    int nsenders;
    int njobs;
    int abandoned; /* a deadlocked producer left as it is (see above) */
} fixture_t;

static char topic[] = "dispatch.requests";
static char result_topic[] = "dispatch.results";
static char dlq_topic[] = "dispatch.dlq";

static void acked(dd_job_t *job, void *opaque) {
    recorder_t *r = opaque;

    pthread_mutex_lock(&r->lock);
    /* No cmocka assertion here: this runs on dd-prod. */
    dd_assert(job->offset >= 0 && job->offset < MAX_JOBS);
    r->times[job->offset]++;
    r->attempts[job->offset] = job->attempts;
    r->total++;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    dd_job_destroy(job);
}

/* Wait up to ms until acked() has seen n jobs in all; 0 on timeout. */
static int wait_acked(recorder_t *r, int n, int ms) {
    return dd_wait_count(&r->lock, &r->cond, &r->total, n, ms);
}

/* Wait up to ms until the producer counted n produce or delivery errors. */
static int wait_errors(uint64_t n, int ms) {
    int64_t end = dd_now_ms() + ms;

    while (dd_metrics_get(DD_C_PRODUCE_ERRORS) < n) {
        if (dd_now_ms() >= end)
            return 0;
        usleep(1000);
    }
    return 1;
}

static void add_prop(fixture_t *f, const char *key, const char *value) {
    dd_kafka_prop_t *p = &f->props[f->cfg.kafka_props_cnt++];

    assert_true(f->cfg.kafka_props_cnt <= 4);
    p->target = DD_KAFKA_TARGET_PRODUCER;
    p->key = dd_xstrdup(key);
    p->value = dd_xstrdup(value);
}

static int setup(void **state) {
    fixture_t *f = dd_xcalloc(1, sizeof(*f));
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    dd_log_init(DD_LOG_ERROR, DD_LOG_FORMAT_TEXT);
    dd_metrics_reset();
    f->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(f->mock_rk);
    f->mc = rd_kafka_mock_cluster_new(f->mock_rk, 1);
    assert_non_null(f->mc);
    assert_int_equal(rd_kafka_mock_topic_create(f->mc, result_topic, 1, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(f->mc, dlq_topic, 1, 1), 0);
    f->cfg.brokers = dd_xstrdup(rd_kafka_mock_cluster_bootstraps(f->mc));
    f->cfg.topic = topic;
    f->cfg.result_topic = result_topic;
    f->cfg.dlq_topic = dlq_topic;
    f->cfg.kafka_props = f->props;
    pthread_mutex_init(&f->rec.lock, NULL);
    pthread_cond_init(&f->rec.cond, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture_t *f = *state;

    if (f->abandoned)
        return 0; /* its threads are stuck in it; the process ends soon */
    /* Stops a producer still retrying, which releases blocked senders. */
    dd_producer_destroy(f->prod);
    for (int i = 0; i < f->nsenders; i++)
        pthread_join(f->senders[i], NULL);
    rd_kafka_mock_cluster_destroy(f->mc);
    rd_kafka_destroy(f->mock_rk);
    for (size_t i = 0; i < f->cfg.kafka_props_cnt; i++) {
        dd_free(f->props[i].key);
        dd_free(f->props[i].value);
    }
    dd_free(f->cfg.brokers);
    pthread_cond_destroy(&f->rec.cond);
    pthread_mutex_destroy(&f->rec.lock);
    dd_free(f);
    return 0;
}

static void start_producer(fixture_t *f) {
    char errstr[512] = "";

    f->prod = dd_producer_new(&f->cfg, acked, &f->rec, errstr, sizeof(errstr));
    if (f->prod == NULL)
        fail_msg("dd_producer_new: %s", errstr);
}

/* A job as a worker hands it on: a result, or (every third) a dead
 * letter. */
static dd_job_t *new_job(int64_t off) {
    dd_job_t *job = dd_xcalloc(1, sizeof(*job));
    char buf[96];

    job->partition = 0;
    job->offset = off;
    snprintf(buf, sizeof(buf), "{\"request_id\":\"r-%lld\"}", (long long)off);
    job->value = dd_xstrdup(buf);
    job->value_len = strlen(buf);
    if (off % 3 == 2) {
        job->out_kind = DD_JOB_OUT_DLQ;
        job->dlq_code = DD_DLQ_SCHEMA;
        dd_strlcpy(job->dlq_text, "test", sizeof(job->dlq_text));
    } else {
        job->out_kind = DD_JOB_OUT_RESULT;
        snprintf(buf, sizeof(buf), "{\"request_id\":\"r-%lld\",\"x\":1}",
                 (long long)off);
        job->out = dd_xstrdup(buf);
        job->out_len = strlen(buf);
        snprintf(job->out_key, sizeof(job->out_key), "p-%lld", (long long)off);
    }
    return job;
}

typedef struct sender {
    fixture_t *f;
    int first, step;
} sender_t;

static sender_t sender_args[SENDERS];

/* A worker: sends jobs first, first + step, ... below njobs. */
static void *sender_main(void *arg) {
    const sender_t *s = arg;

    for (int i = s->first; i < s->f->njobs; i += s->step)
        dd_producer_send(s->f->prod, new_job(i));
    return NULL;
}

static void start_senders(fixture_t *f, int njobs) {
    f->njobs = njobs;
    for (int i = 0; i < SENDERS; i++) {
        sender_args[i].f = f;
        sender_args[i].first = i;
        sender_args[i].step = SENDERS;
        assert_int_equal(
            pthread_create(&f->senders[i], NULL, sender_main, &sender_args[i]),
            0);
        f->nsenders++;
    }
}

/* Each job acked exactly once, after at least min_attempts produces. */
static void assert_all_acked_once(fixture_t *f, int n, int min_attempts) {
    assert_true(wait_acked(&f->rec, n, WAIT_MS));
    assert_int_equal(dd_producer_flush(f->prod, WAIT_MS), DD_OK);
    assert_int_equal(dd_producer_outstanding(f->prod), 0);
    pthread_mutex_lock(&f->rec.lock);
    assert_int_equal(f->rec.total, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(f->rec.times[i], 1);
        assert_true(f->rec.attempts[i] >= min_attempts);
    }
    pthread_mutex_unlock(&f->rec.lock);
}

static void test_producer_acks_each_job_once(void **state) {
    fixture_t *f = *state;

    start_producer(f);
    start_senders(f, 12);
    assert_all_acked_once(f, 12, 1);
    assert_int_equal(dd_metrics_get(DD_C_PRODUCE_ERRORS), 0);
}

static void
test_producer_failed_deliveries_are_retried_until_broker_back(void **state) {
    fixture_t *f = *state;
    const int n = 12;

    /* Deliveries fail fast while the broker is down. */
    add_prop(f, "message.timeout.ms", "300");
    rd_kafka_mock_broker_set_down(f->mc, 1);
    start_producer(f);
    start_senders(f, n);
    /* Every job's first delivery times out, then retries fail again. */
    assert_true(wait_errors((uint64_t)(2 * n), WAIT_MS));
    assert_int_equal(f->rec.total, 0);
    assert_int_equal(dd_producer_outstanding(f->prod), (size_t)n);
    rd_kafka_mock_broker_set_up(f->mc, 1);
    assert_all_acked_once(f, n, 2);
}

/*
 * A local queue of two messages with the broker down long enough for
 * retries to fall due: the senders wait for room, dd-prod re-produces due
 * retries into the full queue. Expected: nothing blocks for good; every job
 * is acked once the broker is back. This is the family of the known
 * deadlock of the retry path (dd-prod waiting for queue room that only its
 * own rd_kafka_poll() can free): while it exists, this test times out here.
 */
static void test_producer_tiny_local_queue_does_not_deadlock(void **state) {
    fixture_t *f = *state;
    const int n = 8;

    int progressed;

    if (KNOWN_RETRY_DEADLOCK && getenv("DD_TEST_KNOWN_BUGS") == NULL) {
        print_message("KNOWN BUG: the producer's retry path deadlocks on a "
                      "full local queue; DD_TEST_KNOWN_BUGS=1 reproduces it\n");
        skip();
    }
    add_prop(f, "message.timeout.ms", "300");
    add_prop(f, "queue.buffering.max.messages", "2");
    rd_kafka_mock_broker_set_down(f->mc, 1);
    start_producer(f);
    start_senders(f, n);
    /* Every job failed at least once on average: retries have fallen due
     * while the senders kept the queue full. Then the broker comes back. */
    progressed = wait_errors((uint64_t)n, DEADLOCK_WAIT_MS);
    rd_kafka_mock_broker_set_up(f->mc, 1);
    progressed = progressed && wait_acked(&f->rec, n, DEADLOCK_WAIT_MS);
    if (!progressed && KNOWN_RETRY_DEADLOCK) {
        int acked_n;
        pthread_mutex_lock(&f->rec.lock);
        acked_n = f->rec.total;
        pthread_mutex_unlock(&f->rec.lock);
        print_message("KNOWN BUG reproduced: producer retry path deadlocked "
                      "on a full local queue (%llu errors, %d of %d acked)\n",
                      (unsigned long long)dd_metrics_get(DD_C_PRODUCE_ERRORS),
                      acked_n, n);
        f->abandoned = 1;
        skip();
    }
    assert_true(progressed);
    assert_all_acked_once(f, n, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_producer_acks_each_job_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_producer_failed_deliveries_are_retried_until_broker_back,
            setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_producer_tiny_local_queue_does_not_deadlock, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
