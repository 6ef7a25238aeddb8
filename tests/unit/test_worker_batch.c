/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for worker_batch, one batch of jobs on a worker thread,
 * against the in-memory fake store (tests/fakes/fake_store.c) with the
 * worker thread's hooks (state, Redis outcome, backoff) stubbed here: a
 * request whose key gives a store data error is dead-lettered alone while
 * the rest of its batch is answered, with no retry; a failure that cannot
 * be charged to a request splits the batch so the others still go; Redis
 * down keeps the batch whole and readiness false.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "fake_store.h"
#include "metrics.h"
#include "pool_int.h"
#include "util.h"

#define ALEX_LAT 52.521918
#define ALEX_LON 13.413215
#define TOR_LAT  52.516275
#define TOR_LON  13.377704

#define TOPIC    "dispatch.requests"
#define MAX_JOBS 16

/*----- The worker thread's hooks (pool.c in the program) -----*/

struct dd_pool_worker {
    int redis_state;  /* last dd_pool_worker_redis_seen(), -1 none */
    int redis_false;  /* times it was set to 0 */
    int backoffs;     /* dd_pool_worker_backoff() calls */
    int give_up_at;   /* the backoff call that gives up (0: never) */
    int batch_states; /* set_state calls with a batch */
};

void dd_pool_worker_set_state(dd_pool_worker_t *w, dd_worker_state_t s,
                              const dd_job_t *job, const char *request_id,
                              size_t batch) {
    (void)s;
    (void)job;
    (void)request_id;
    if (batch > 0)
        w->batch_states++;
}

void dd_pool_worker_redis_seen(dd_pool_worker_t *w, int ok) {
    w->redis_state = ok;
    if (!ok)
        w->redis_false++;
}

int dd_pool_worker_backoff(dd_pool_worker_t *w, int ms) {
    (void)ms;
    w->backoffs++;
    return w->give_up_at > 0 && w->backoffs >= w->give_up_at;
}

/*----- Fixture -----*/

typedef struct fixture {
    dd_config_t cfg;
    dd_store_t *st;
    dd_worker_batch_t *b;
    dd_pool_worker_t w;
    dd_job_t *jobs[MAX_JOBS];
    size_t n;
    dd_job_t *answered[MAX_JOBS];
    size_t nanswered;
} fixture_t;

static void on_answered(dd_job_t *job, void *opaque) {
    fixture_t *f = opaque;

    assert_true(f->nanswered < MAX_JOBS);
    f->answered[f->nanswered++] = job;
}

static int setup(void **state) {
    fixture_t *f = dd_xcalloc(1, sizeof(*f));
    char id[16];

    f->cfg.batch_size = MAX_JOBS;
    f->cfg.topic = (char *)TOPIC;
    f->st = fake_store_new();
    f->b = dd_worker_batch_new(&f->cfg, on_answered, f);
    f->w.redis_state = -1;
    fake_store_add_parcel(f->st, "p-77", TOR_LAT, TOR_LON, ALEX_LAT, ALEX_LON);
    for (int i = 1; i <= 12; i++) {
        snprintf(id, sizeof(id), "c-%d", i);
        fake_store_add_courier(f->st, id, ALEX_LAT, ALEX_LON, "car",
                               "available");
    }
    dd_metrics_reset();
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture_t *f = *state;

    for (size_t i = 0; i < f->nanswered; i++)
        dd_job_destroy(f->answered[i]);
    dd_worker_batch_destroy(f->b);
    dd_store_destroy(f->st);
    dd_free(f);
    return 0;
}

/* A job at offset n carrying a request for rid, parcel pid, courier cid. */
static void add_job(fixture_t *f, const char *rid, const char *pid,
                    const char *cid) {
    dd_job_t *job = dd_xcalloc(1, sizeof(*job));
    char json[256];

    snprintf(json, sizeof(json),
             "{\"request_id\":\"%s\",\"parcel_id\":\"%s\","
             "\"courier_id\":\"%s\"}",
             rid, pid, cid);
    job->partition = 0;
    job->offset = (int64_t)f->n;
    job->timestamp_ms = -1;
    job->value = dd_xstrdup(json);
    job->value_len = strlen(json);
    f->jobs[f->n++] = job;
}

/* Runs the batch; returns the number of jobs dropped. */
static size_t run(fixture_t *f) {
    return dd_worker_batch_run(f->b, &f->w, f->st, f->jobs, f->n);
}

/* The answered job of request rid, or NULL. */
static dd_job_t *answer_of(const fixture_t *f, const char *rid) {
    char want[64];

    snprintf(want, sizeof(want), "\"request_id\":\"%s\"", rid);
    for (size_t i = 0; i < f->nanswered; i++)
        if (strstr(f->answered[i]->value, want) != NULL)
            return f->answered[i];
    return NULL;
}

static void assert_result(const fixture_t *f, const char *rid) {
    dd_job_t *job = answer_of(f, rid);

    if (job == NULL) {
        fail_msg("%s was not answered", rid);
        return;
    }
    assert_int_equal(job->out_kind, DD_JOB_OUT_RESULT);
    assert_non_null(job->out);
    assert_non_null(strstr(job->out, rid));
}

static void assert_store_dlq(const fixture_t *f, const char *rid,
                             const char *text) {
    dd_job_t *job = answer_of(f, rid);

    if (job == NULL) {
        fail_msg("%s was not answered", rid);
        return;
    }
    assert_int_equal(job->out_kind, DD_JOB_OUT_DLQ);
    assert_int_equal(job->dlq_code, DD_DLQ_STORE_DATA_ERROR);
    assert_null(job->out);
    if (strcmp(job->dlq_text, text) != 0)
        fail_msg("%s: dead letter text \"%s\", want \"%s\"", rid, job->dlq_text,
                 text);
}

#define WT "WRONGTYPE Operation against a key holding the wrong kind of value"

/*----- Tests -----*/

/* Four kinds of poisoned keys in one batch: each of their requests gets a
 * store_data_error dead letter naming the key; the four others are
 * answered; one pass of three round trips, no retry, readiness stays up. */
static void test_poisoned_requests_dead_lettered_alone(void **state) {
    fixture_t *f = *state;

    fake_store_poison(f->st, "result:r-poison", WT, 0);
    fake_store_poison(f->st, "reservation:c-1", WT, 0);
    fake_store_poison(f->st, "courier:c-9", WT, 0);
    fake_store_poison(f->st, "parcel:p-9", WT, 0);
    add_job(f, "r-1", "p-77", "c-2");
    add_job(f, "r-poison", "p-77", "c-3");
    add_job(f, "r-2", "p-77", "c-4");
    add_job(f, "r-res", "p-77", "c-1");
    add_job(f, "r-3", "p-77", "c-5");
    add_job(f, "r-cour", "p-77", "c-9");
    add_job(f, "r-parc", "p-9", "c-6");
    add_job(f, "r-4", "p-77", "c-7");
    run(f);

    assert_int_equal(f->nanswered, f->n);
    assert_result(f, "r-1");
    assert_result(f, "r-2");
    assert_result(f, "r-3");
    assert_result(f, "r-4");
    assert_store_dlq(f, "r-poison", "redis GET result:r-poison: " WT);
    assert_store_dlq(f, "r-res", "redis GET reservation:c-1: " WT);
    assert_store_dlq(f, "r-cour", "redis HMGET courier:c-9: " WT);
    assert_store_dlq(f, "r-parc", "redis HMGET parcel:p-9: " WT);
    /* No retry loop: one load, one ETA read, one reservation round, one
     * record. */
    assert_int_equal(fake_store_round_trips(f->st, FAKE_STORE_LOAD), 1);
    assert_int_equal(fake_store_round_trips(f->st, FAKE_STORE_RESERVE), 1);
    assert_int_equal(fake_store_round_trips(f->st, FAKE_STORE_RECORD), 1);
    assert_int_equal(f->w.backoffs, 0);
    assert_int_equal(f->w.redis_false, 0);
    assert_int_equal(f->w.redis_state, 1);
    assert_int_equal(dd_metrics_get(DD_C_REDIS_ERRORS), 0);
    assert_int_equal(
        dd_metrics_get(dd_metrics_dlq_counter(DD_DLQ_STORE_DATA_ERROR)), 4);
    assert_int_equal(dd_metrics_get(DD_C_REQ_DEAD_LETTER), 4);
    /* Nothing was reserved or recorded for the poisoned ones. */
    assert_null(fake_store_ledger(f->st, "r-res"));
    assert_null(fake_store_ledger(f->st, "r-cour"));
    assert_null(fake_store_reservation(f->st, "c-9"));
    assert_non_null(fake_store_ledger(f->st, "r-4"));
}

/* A failure nobody can be charged with (the whole call fails while Redis
 * answers PING) splits the batch down to the one request that causes it:
 * the seven others are answered, it stays in flight with backoff until
 * the pool gives up (then it is dropped, never answered). */
static void test_unattributable_failure_splits_batch(void **state) {
    fixture_t *f = *state;
    char rid[16], cid[16];

    fake_store_poison(f->st, "result:r-slow", "timeout", 1);
    for (int i = 1; i <= 8; i++) {
        snprintf(rid, sizeof(rid), i == 6 ? "r-slow" : "r-%d", i);
        snprintf(cid, sizeof(cid), "c-%d", i);
        add_job(f, rid, "p-77", cid);
    }
    f->w.give_up_at = 3;
    /* The one request still in flight at the give-up time is dropped. */
    assert_int_equal(run(f), 1);

    assert_int_equal(f->nanswered, 7);
    assert_null(answer_of(f, "r-slow"));
    for (int i = 1; i <= 8; i++) {
        if (i == 6)
            continue;
        snprintf(rid, sizeof(rid), "r-%d", i);
        assert_result(f, rid);
    }
    /* Backoff only for the single request; Redis answered PING. */
    assert_int_equal(f->w.backoffs, 3);
    assert_int_equal(f->w.redis_false, 0);
    assert_int_equal(f->w.redis_state, 1);
    assert_true(dd_metrics_get(DD_C_REDIS_ERRORS) >= 4);
}

/* Redis down: the batch is kept whole (no split, nothing answered), the
 * worker backs off and readiness says Redis is down. */
static void test_redis_down_keeps_batch_whole(void **state) {
    fixture_t *f = *state;
    char rid[16], cid[16];

    for (int i = 1; i <= 8; i++) {
        snprintf(rid, sizeof(rid), "r-%d", i);
        snprintf(cid, sizeof(cid), "c-%d", i);
        add_job(f, rid, "p-77", cid);
    }
    fake_store_set_down(f->st, 1);
    f->w.give_up_at = 4;
    /* At the give-up time the whole batch is dropped, and counted. */
    assert_int_equal(run(f), 8);

    assert_int_equal(f->nanswered, 0);
    assert_int_equal(f->w.backoffs, 4);
    /* One load per attempt: the whole batch each time. */
    assert_int_equal(fake_store_round_trips(f->st, FAKE_STORE_LOAD), 4);
    assert_int_equal(f->w.redis_state, 0);
}

/* One failed load while Redis answers PING: every request is answered. */
static void test_one_failure_then_all_answered(void **state) {
    fixture_t *f = *state;
    char rid[16], cid[16];

    for (int i = 1; i <= 4; i++) {
        snprintf(rid, sizeof(rid), "r-%d", i);
        snprintf(cid, sizeof(cid), "c-%d", i);
        add_job(f, rid, "p-77", cid);
    }
    fake_store_fail_nth(f->st, 1); /* the first load fails, PING works */
    run(f);

    assert_int_equal(f->nanswered, 4);
    for (int i = 1; i <= 4; i++) {
        snprintf(rid, sizeof(rid), "r-%d", i);
        assert_result(f, rid);
    }
    assert_int_equal(f->w.redis_state, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_poisoned_requests_dead_lettered_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_unattributable_failure_splits_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_down_keeps_batch_whole,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_failure_then_all_answered,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
