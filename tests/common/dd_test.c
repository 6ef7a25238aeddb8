/* SPDX-License-Identifier: MIT */
/* Integration test helpers; see dd_test.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "dd_test.h"

static const char *env2(const char *a, const char *b) {
    const char *v = getenv(a);
    if (v == NULL || *v == '\0')
        v = getenv(b);
    return (v == NULL || *v == '\0') ? NULL : v;
}

const char *dd_test_brokers(void) {
    return env2("DISPATCHD_TEST_BROKERS", "DISPATCHD_BROKERS");
}

const char *dd_test_redis_host(void) {
    return env2("DISPATCHD_TEST_REDIS_HOST", "DISPATCHD_REDIS_HOST");
}

int dd_test_redis_port(void) {
    const char *v = env2("DISPATCHD_TEST_REDIS_PORT", "DISPATCHD_REDIS_PORT");
    return v ? atoi(v) : 0;
}

int dd_test_timeout_multiplier(void) {
    const char *v = getenv("DD_TEST_TIMEOUT_MULTIPLIER");
    int m = v ? atoi(v) : 1;
    return m < 1 ? 1 : m;
}

void dd_test_require_services(int need_redis) {
    const char *req = getenv("DD_TEST_REQUIRE_SERVICES");
    int missing = dd_test_brokers() == NULL ||
                  (need_redis &&
                   (dd_test_redis_host() == NULL || dd_test_redis_port() == 0));
    if (!missing)
        return;
    if (req != NULL && strcmp(req, "1") == 0)
        fail_msg("no Kafka/Redis configured (run scripts/stack up)");
    print_message("no Kafka/Redis configured: skipping\n");
    skip();
}

void dd_test_topic_name(char *buf, size_t size, const char *name) {
    static unsigned seq;
    snprintf(buf, size, "dd_test_%d_%u_%u_%s", (int)getpid(),
             (unsigned)time(NULL) % 100000, seq++, name);
}

static rd_kafka_t *admin_client(void) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", dd_test_brokers(), errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK)
        fail_msg("%s", errstr);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        fail_msg("rd_kafka_new: %s", errstr);
    }
    return rk;
}

static int topic_ready(rd_kafka_t *rk, const char *topic, int partitions) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int ok = 0;

    if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && md->topics[0].err == 0 &&
        md->topics[0].partition_cnt == partitions) {
        ok = 1;
        for (int i = 0; i < partitions; i++)
            if (md->topics[0].partitions[i].leader < 0)
                ok = 0;
    }
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return ok;
}

void dd_test_create_topic(const char *topic, int partitions) {
    char errstr[512];
    rd_kafka_t *rk = admin_client();
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));
    rd_kafka_event_t *ev;
    const rd_kafka_CreateTopics_result_t *res;
    const rd_kafka_topic_result_t **tres;
    size_t n;
    int64_t deadline;

    assert_non_null(nt);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    assert_non_null(ev);
    res = rd_kafka_event_CreateTopics_result(ev);
    assert_non_null(res);
    tres = rd_kafka_CreateTopics_result_topics(res, &n);
    assert_int_equal(n, 1);
    if (rd_kafka_topic_result_error(tres[0]) != RD_KAFKA_RESP_ERR_NO_ERROR)
        fail_msg("create topic %s: %s", topic,
                 rd_kafka_topic_result_error_string(tres[0]));
    rd_kafka_event_destroy(ev);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);

    /* The controller answers before every broker has the leaders; wait
     * until the metadata shows them so producers do not race it. */
    deadline = time(NULL) + 30;
    while (!topic_ready(rk, topic, partitions)) {
        if (time(NULL) > deadline)
            fail_msg("topic %s has no leaders after 30 s", topic);
        usleep(50 * 1000);
    }
    rd_kafka_destroy(rk);
}

redisContext *dd_test_redis_connect(void) {
    struct timeval tv = {5, 0};
    redisContext *c =
        redisConnectWithTimeout(dd_test_redis_host(), dd_test_redis_port(), tv);
    redisReply *r;

    if (c == NULL || c->err)
        fail_msg("redis connect: %s", c ? c->errstr : "out of memory");
    r = redisCommand(c, "SELECT %d", DD_TEST_REDIS_DB);
    assert_non_null(r);
    freeReplyObject(r);
    r = redisCommand(c, "DBSIZE");
    assert_non_null(r);
    if (r->type != REDIS_REPLY_INTEGER || r->integer != 0)
        fail_msg("redis test db %d is not empty: refusing to run",
                 DD_TEST_REDIS_DB);
    freeReplyObject(r);
    return c;
}

void dd_test_redis_close(redisContext *c) {
    redisReply *r;
    if (c == NULL)
        return;
    r = redisCommand(c, "FLUSHDB");
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
}

int dd_test_wait_until(int (*pred)(void *arg), void *arg, int timeout_ms) {
    struct timespec ts;
    int64_t start, now;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    start = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    for (;;) {
        if (pred(arg))
            return 1;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (now - start > timeout_ms)
            return pred(arg) != 0;
        usleep(5 * 1000);
    }
}
