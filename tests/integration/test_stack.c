/* SPDX-License-Identifier: MIT */
/*
 * Proves the local stack is real: 1,000 messages through a real Apache Kafka
 * broker (produce with an idempotent producer, consume in a consumer group,
 * commit, read the committed offsets back) and a SET/GET through hiredis on
 * a real redis-server, plus the closed-port error hiredis must report.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "dd_test.h"

#define N_MSGS  1000
#define N_PARTS 3

static int delivered_ok;
static int delivered_err;

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                      void *opaque) {
    (void)rk;
    (void)opaque;
    if (rkm->err)
        delivered_err++;
    else
        delivered_ok++;
}

static rd_kafka_conf_t *base_conf(void) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers",
                                       dd_test_brokers(), errstr,
                                       sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    return conf;
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v) {
    char errstr[512];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK)
        fail_msg("%s=%s: %s", k, v, errstr);
}

static void print_broker(rd_kafka_t *rk) {
    const struct rd_kafka_metadata *md;
    const char *ver = getenv("DISPATCHD_STACK_KAFKA_VERSION");

    assert_int_equal(rd_kafka_metadata(rk, 0, NULL, &md, 10000), 0);
    assert_true(md->broker_cnt >= 1);
    print_message("broker: Apache Kafka %s, id %d at %s:%d (librdkafka %s)\n",
                  ver ? ver : "(version not in env)", md->brokers[0].id,
                  md->brokers[0].host, md->brokers[0].port,
                  rd_kafka_version_str());
    rd_kafka_metadata_destroy(md);
}

static void produce_all(const char *topic) {
    char errstr[512];
    rd_kafka_conf_t *conf = base_conf();
    rd_kafka_t *rk;

    set(conf, "enable.idempotence", "true");
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    print_broker(rk);
    for (int i = 0; i < N_MSGS; i++) {
        char key[32], val[64];
        snprintf(key, sizeof(key), "k-%d", i);
        snprintf(val, sizeof(val), "{\"n\":%d}", i);
        assert_int_equal(
            rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                RD_KAFKA_V_VALUE(val, strlen(val)),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_poll(rk, 0);
    }
    assert_int_equal(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
    assert_int_equal(delivered_ok, N_MSGS);
    assert_int_equal(delivered_err, 0);
}

static void test_kafka_produce_consume_commit(void **state) {
    char topic[128], group[160], errstr[512];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *sub, *parts;
    int seen[N_MSGS] = {0};
    int got = 0, dups = 0;
    int64_t per_part[N_PARTS] = {0};
    int64_t deadline;
    int64_t committed_sum = 0;

    (void)state;
    dd_test_require_services(0);
    dd_test_topic_name(topic, sizeof(topic), "stack");
    snprintf(group, sizeof(group), "%s_group", topic);
    dd_test_create_topic(topic, N_PARTS);
    produce_all(topic);

    conf = base_conf();
    set(conf, "group.id", group);
    set(conf, "auto.offset.reset", "earliest");
    set(conf, "enable.auto.commit", "false");
    set(conf, "session.timeout.ms", "6000");
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_poll_set_consumer(rk);
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(rk, sub), 0);
    rd_kafka_topic_partition_list_destroy(sub);

    deadline = (int64_t)time(NULL) + 60L * dd_test_timeout_multiplier();
    while (got < N_MSGS && time(NULL) < deadline) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);
        if (rkm == NULL)
            continue;
        if (rkm->err == 0) {
            int n = -1;
            sscanf((const char *)rkm->payload, "{\"n\":%d}", &n);
            assert_true(n >= 0 && n < N_MSGS);
            if (seen[n]++)
                dups++;
            else
                got++;
            per_part[rkm->partition]++;
        }
        rd_kafka_message_destroy(rkm);
    }
    assert_int_equal(got, N_MSGS);
    assert_int_equal(dups, 0);
    assert_int_equal(rd_kafka_commit(rk, NULL, 0), RD_KAFKA_RESP_ERR_NO_ERROR);

    /* Read the committed offsets back from the broker and check them
     * against the high watermarks of every partition. */
    parts = rd_kafka_topic_partition_list_new(N_PARTS);
    for (int p = 0; p < N_PARTS; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p);
    assert_int_equal(rd_kafka_committed(rk, parts, 10000), 0);
    for (int p = 0; p < N_PARTS; p++) {
        int64_t lo, hi;
        assert_int_equal(
            rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000), 0);
        assert_int_equal(parts->elems[p].err, 0);
        assert_int_equal(parts->elems[p].offset, hi);
        assert_int_equal(hi - lo, per_part[p]);
        committed_sum += parts->elems[p].offset;
    }
    assert_int_equal(committed_sum, N_MSGS);
    print_message("kafka: %d produced, %d consumed, 0 duplicates, committed "
                  "sum %lld over %d partitions\n",
                  N_MSGS, got, (long long)committed_sum, N_PARTS);
    rd_kafka_topic_partition_list_destroy(parts);
    assert_int_equal(rd_kafka_consumer_close(rk), 0);
    rd_kafka_destroy(rk);
}

static void test_redis_set_get(void **state) {
    redisContext *c;
    redisReply *r;

    (void)state;
    dd_test_require_services(1);
    c = dd_test_redis_connect();
    r = redisCommand(c, "SET %s %s", "dd:test:key", "hello");
    assert_non_null(r);
    assert_string_equal(r->str, "OK");
    freeReplyObject(r);
    r = redisCommand(c, "GET %s", "dd:test:key");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "hello");
    freeReplyObject(r);
    r = redisCommand(c, "INFO server");
    assert_non_null(r);
    assert_non_null(strstr(r->str, "redis_version:"));
    print_message("redis: %.*s\n",
                  (int)strcspn(strstr(r->str, "redis_version:"), "\r\n"),
                  strstr(r->str, "redis_version:"));
    freeReplyObject(r);
    dd_test_redis_close(c);
}

static void test_redis_closed_port_is_io_error(void **state) {
    struct timeval tv = {2, 0};
    redisContext *c;

    (void)state;
    c = redisConnectWithTimeout("127.0.0.1", 1, tv);
    assert_non_null(c);
    assert_int_equal(c->err, REDIS_ERR_IO);
    redisFree(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka_produce_consume_commit),
        cmocka_unit_test(test_redis_set_get),
        cmocka_unit_test(test_redis_closed_port_is_io_error),
    };
    return cmocka_run_group_tests_name("stack", tests, NULL, NULL);
}
