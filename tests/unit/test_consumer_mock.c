/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the consumer's poll thread (include/consumer.h) against
 * librdkafka's mock cluster (<librdkafka/rdkafka_mock.h>, one in-process
 * broker) with a job queue of capacity 1: every message reaches the queue,
 * in offset order per partition, none lost nor twice; the consumer pauses
 * its partitions while the queue is full and resumes them once drained.
 *
 * DESIGN: dd-poll pushes into the queue; the test thread plays the worker
 * and the delivery report (pops, checks the order, marks the offset done in
 * the tracker). Every wait has a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "consumer.h"
#include "job.h"
#include "log.h"
#include "offsets.h"
#include "queue.h"
#include "util.h"

#define PARTITIONS 2
#define PER_PART   20
/* The consumer holds an overflow of up to 2 MiB behind a full queue and
 * pauses once it stayed there (src/consumer_pause.c): values this big get
 * there in a few dozen. */
#define VALUE_SIZE (200 * 1000)
#define WAIT_MS    30000 /* deadline of every wait; a pass takes far less */

static char topic[] = "dispatch.requests";
static char group[] = "dispatchd-unit";
static char empty[] = "";

typedef struct fixture {
    rd_kafka_t *mock_rk; /* owns the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    dd_config_t cfg;
    dd_queue_t *jq;
    dd_offsets_t *ot;
    dd_consumer_t *c;
} fixture_t;

static rd_kafka_conf_t *quiet_conf(void) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    assert_int_equal(rd_kafka_conf_set(conf, "log_level", "3", NULL, 0),
                     RD_KAFKA_CONF_OK);
    return conf;
}

/* PER_PART messages into each partition: value "<partition>:<i>:" padded
 * to VALUE_SIZE bytes. */
static void produce_input(const fixture_t *f) {
    char errstr[512];
    rd_kafka_conf_t *conf = quiet_conf();
    rd_kafka_t *rk;
    char *v = dd_xmalloc(VALUE_SIZE);

    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers",
                                       f->cfg.brokers, errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    for (int i = 0; i < PER_PART; i++)
        for (int p = 0; p < PARTITIONS; p++) {
            int len = snprintf(v, VALUE_SIZE, "%d:%d:", p, i);
            memset(v + len, 'x', VALUE_SIZE - (size_t)len);
            assert_int_equal(
                rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                    RD_KAFKA_V_VALUE(v, VALUE_SIZE),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                RD_KAFKA_RESP_ERR_NO_ERROR);
        }
    assert_int_equal(rd_kafka_flush(rk, WAIT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
    dd_free(v);
}

static int setup(void **state) {
    fixture_t *f = dd_xcalloc(1, sizeof(*f));
    char errstr[512];

    dd_log_init(DD_LOG_ERROR, DD_LOG_FORMAT_TEXT);
    f->mock_rk =
        rd_kafka_new(RD_KAFKA_PRODUCER, quiet_conf(), errstr, sizeof(errstr));
    assert_non_null(f->mock_rk);
    f->mc = rd_kafka_mock_cluster_new(f->mock_rk, 1);
    assert_non_null(f->mc);
    assert_int_equal(rd_kafka_mock_topic_create(f->mc, topic, PARTITIONS, 1),
                     0);
    f->cfg.brokers = dd_xstrdup(rd_kafka_mock_cluster_bootstraps(f->mc));
    f->cfg.topic = topic;
    f->cfg.group = group;
    f->cfg.instance_id = empty;
    f->cfg.queue_capacity = 1;
    f->cfg.drain_timeout_ms = 5000;
    f->jq = dd_queue_new(1, NULL, 0);
    assert_non_null(f->jq);
    f->ot = dd_offsets_new(NULL, 0);
    assert_non_null(f->ot);
    *state = f;
    return 0;
}

static void destroy_item(void *item, void *arg) {
    (void)arg;
    dd_job_destroy(item);
}

static int teardown(void **state) {
    fixture_t *f = *state;

    if (f->c != NULL) {
        dd_consumer_stop(f->c);
        dd_queue_close(f->jq);
        dd_queue_drain(f->jq, destroy_item, NULL);
        dd_consumer_destroy(f->c);
    }
    dd_queue_destroy(f->jq);
    dd_offsets_destroy(f->ot);
    rd_kafka_mock_cluster_destroy(f->mc);
    rd_kafka_destroy(f->mock_rk);
    dd_free(f->cfg.brokers);
    dd_free(f);
    return 0;
}

/* 1 when the consumer keeps any partition paused. */
static int any_paused(const dd_consumer_t *c) {
    for (int p = 0; p < PARTITIONS; p++)
        if (dd_consumer_is_paused(c, p) == 1)
            return 1;
    return 0;
}

/* Wait until any_paused() == want; 0 on timeout. */
static int wait_paused(const dd_consumer_t *c, int want) {
    int64_t end = dd_now_ms() + WAIT_MS;

    while (any_paused(c) != want) {
        if (dd_now_ms() >= end)
            return 0;
        usleep(1000);
    }
    return 1;
}

static void
test_consumer_queue_of_one_loses_nothing_and_keeps_order(void **state) {
    fixture_t *f = *state;
    char errstr[512] = "";
    int64_t next[PARTITIONS] = {0};
    int got = 0, paused_seen;
    int64_t end;

    produce_input(f);
    f->c = dd_consumer_new(&f->cfg, f->jq, f->ot, errstr, sizeof(errstr));
    if (f->c == NULL)
        fail_msg("dd_consumer_new: %s", errstr);
    assert_int_equal(dd_consumer_start(f->c, errstr, sizeof(errstr)), DD_OK);

    /* Nobody pops yet: one job fills the queue, the rest back up behind it
     * and the consumer pauses its partitions. */
    paused_seen = wait_paused(f->c, 1);
    assert_true(paused_seen);
    assert_int_equal(dd_consumer_assigned_count(f->c), PARTITIONS);

    end = dd_now_ms() + WAIT_MS;
    while (got < PARTITIONS * PER_PART && dd_now_ms() < end) {
        dd_job_t *job = NULL;
        int p, i;
        if (dd_queue_pop_batch(f->jq, (void **)&job, 1, 100) == 0)
            continue;
        assert_true(job->partition >= 0 && job->partition < PARTITIONS);
        /* In order per partition, none skipped, none twice. */
        assert_int_equal(job->offset, next[job->partition]);
        assert_int_equal(sscanf(job->value, "%d:%d", &p, &i), 2);
        assert_int_equal(p, job->partition);
        assert_int_equal(i, job->offset);
        next[job->partition]++;
        got++;
        assert_int_equal(dd_offsets_mark_done(f->ot, job->partition, job->epoch,
                                              job->offset, NULL) >= 0,
                         1);
        dd_job_destroy(job);
    }
    assert_int_equal(got, PARTITIONS * PER_PART);
    for (int p = 0; p < PARTITIONS; p++) {
        assert_int_equal(next[p], PER_PART);
        assert_int_equal(dd_offsets_committable(f->ot, p), PER_PART);
    }
    /* Drained: the partitions were resumed, and nothing more arrives. */
    assert_true(wait_paused(f->c, 0));
    assert_int_equal(dd_queue_depth(f->jq), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_consumer_queue_of_one_loses_nothing_and_keeps_order, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
