/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for config loading: defaults, environment, flags over
 * environment, empty environment = unset, each error class with its exit
 * code and a message naming the option, durations, --redis (the URL forms
 * are test_redis_url's), -X and DISPATCHD_KAFKA_*, --http, replay bounds
 * and actions. The printers are test_config_print's.
 */
#include "config_fixture.h"

#include "log.h"

static void test_config_defaults(void **state) {
    result_t r;
    dd_config_t *c = &r.cfg;

    (void)state;
    load(&r, NULL, NULL);
    expect_ok(&r);
    assert_int_equal(c->action, DD_CONFIG_ACTION_RUN);
    assert_string_equal(c->brokers, "localhost:9092");
    assert_string_equal(c->topic, "dispatch.requests");
    assert_string_equal(c->group, "dispatch-workers");
    assert_string_equal(c->result_topic, "dispatch.assignments");
    assert_string_equal(c->dlq_topic, "dispatch.requests.dlq");
    assert_string_equal(c->instance_id, "");
    assert_int_equal(c->kafka_props_cnt, 0);
    assert_int_equal(c->list_kafka_props, 0);
    assert_int_equal(c->workers, 4);
    assert_int_equal(c->queue_capacity, 1024);
    assert_int_equal(c->batch_size, 64);
    assert_string_equal(c->redis.host, "127.0.0.1");
    assert_int_equal(c->redis.port, 6379);
    assert_int_equal(c->redis.db, 0);
    assert_null(c->redis.unix_path);
    assert_null(c->redis.user);
    assert_null(c->redis.password);
    assert_int_equal(c->redis_timeout_ms, 1000);
    assert_int_equal(c->eta_ttl_ms, 3600000);
    assert_int_equal(c->idempotency_ttl_ms, 604800000);
    assert_int_equal(c->reservation_ttl_ms, 300000);
    assert_true(c->http.enabled);
    assert_string_equal(c->http.addr, "127.0.0.1");
    assert_int_equal(c->http.port, 8080);
    assert_int_equal(c->drain_timeout_ms, 10000);
    assert_int_equal(c->shutdown_timeout_ms, 30000);
    assert_int_equal(c->stats_interval_ms, 5000);
    assert_int_equal(c->log_level, DD_LOG_INFO);
    assert_int_equal(c->log_format, DD_LOG_FORMAT_JSON);
    assert_int_equal(c->replay_from.kind, DD_REPLAY_NONE);
    assert_int_equal(c->replay_to.kind, DD_REPLAY_END);
    assert_int_equal(c->dry_run, 0);
    done(&r);
}

static void test_config_env_sets_values(void **state) {
    static const char *const env[] = {"DISPATCHD_BROKERS=k1:9092,k2:9092",
                                      "DISPATCHD_TOPIC=in",
                                      "DISPATCHD_GROUP=g",
                                      "DISPATCHD_WORKERS=8",
                                      "DISPATCHD_QUEUE_CAPACITY=50",
                                      "DISPATCHD_BATCH_SIZE=7",
                                      "DISPATCHD_REDIS=redis://redis:6380/2",
                                      "DISPATCHD_ETA_TTL=90m",
                                      "DISPATCHD_LOG_LEVEL=debug",
                                      "DISPATCHD_LOG_FORMAT=text",
                                      "DISPATCHD_INSTANCE_ID=worker-1",
                                      "DISPATCHD_HTTP=0.0.0.0:9100",
                                      "DISPATCHD_REPLAY_FROM=earliest",
                                      "DISPATCHD_DRY_RUN=yes",
                                      "UNRELATED=1",
                                      NULL};
    result_t r;

    (void)state;
    load(&r, env, NULL);
    expect_ok(&r);
    assert_string_equal(r.cfg.brokers, "k1:9092,k2:9092");
    assert_string_equal(r.cfg.topic, "in");
    assert_string_equal(r.cfg.group, "g");
    assert_int_equal(r.cfg.workers, 8);
    assert_int_equal(r.cfg.queue_capacity, 50);
    assert_int_equal(r.cfg.batch_size, 7);
    assert_string_equal(r.cfg.redis.host, "redis");
    assert_int_equal(r.cfg.redis.port, 6380);
    assert_int_equal(r.cfg.redis.db, 2);
    assert_int_equal(r.cfg.eta_ttl_ms, 90 * 60 * 1000);
    assert_int_equal(r.cfg.log_level, DD_LOG_DEBUG);
    assert_int_equal(r.cfg.log_format, DD_LOG_FORMAT_TEXT);
    assert_string_equal(r.cfg.instance_id, "worker-1");
    assert_string_equal(r.cfg.http.addr, "0.0.0.0");
    assert_int_equal(r.cfg.http.port, 9100);
    assert_int_equal(r.cfg.replay_from.kind, DD_REPLAY_EARLIEST);
    assert_int_equal(r.cfg.dry_run, 1);
    done(&r);
}

static void test_config_cli_wins_over_env(void **state) {
    static const char *const env[] = {"DISPATCHD_WORKERS=8",
                                      "DISPATCHD_TOPIC=from-env",
                                      "DISPATCHD_BROKERS=env:9092", NULL};
    result_t r;

    (void)state;
    load(&r, env, "--workers", "16", "-t", "from-cli", "-bcli:9092",
         "--group=grp", "-G", "grp2", NULL);
    expect_ok(&r);
    assert_int_equal(r.cfg.workers, 16);
    assert_string_equal(r.cfg.topic, "from-cli");
    assert_string_equal(r.cfg.brokers, "cli:9092");
    /* The last of repeated flags wins. */
    assert_string_equal(r.cfg.group, "grp2");
    done(&r);
}

static void test_config_empty_env_is_unset(void **state) {
    static const char *const env[] = {
        "DISPATCHD_WORKERS=",   "DISPATCHD_TOPIC=",
        "DISPATCHD_REDIS=",     "DISPATCHD_ETA_TTL=",
        "DISPATCHD_HTTP=",      "DISPATCHD_KAFKA_LINGER_MS=",
        "DISPATCHD_LOG_LEVEL=", NULL};
    result_t r;

    (void)state;
    load(&r, env, NULL);
    expect_ok(&r);
    assert_int_equal(r.cfg.workers, 4);
    assert_string_equal(r.cfg.topic, "dispatch.requests");
    assert_string_equal(r.cfg.redis.host, "127.0.0.1");
    assert_int_equal(r.cfg.eta_ttl_ms, 3600000);
    assert_int_equal(r.cfg.http.port, 8080);
    assert_int_equal(r.cfg.kafka_props_cnt, 0);
    assert_int_equal(r.cfg.log_level, DD_LOG_INFO);
    done(&r);
}

static void test_config_usage_errors_exit_64(void **state) {
    static const char *const bad_env[] = {"DISPATCHD_WORKERS=many", NULL};
    result_t r;

    (void)state;
    load(&r, NULL, "--bogus", NULL);
    expect_err(&r, 64, "unknown option '--bogus'", NULL);
    load(&r, NULL, "--bogus=1", NULL);
    expect_err(&r, 64, "unknown option '--bogus'", NULL);
    load(&r, NULL, "-q", NULL);
    expect_err(&r, 64, "unknown option '-q'", NULL);
    /* No abbreviations, unlike getopt_long. */
    load(&r, NULL, "--work", "4", NULL);
    expect_err(&r, 64, "unknown option '--work'", NULL);
    load(&r, NULL, "--workers", NULL);
    expect_err(&r, 64, "'--workers' requires a value", NULL);
    load(&r, NULL, "-b", NULL);
    expect_err(&r, 64, "'-b' requires a value", NULL);
    load(&r, NULL, "--workers", "four", NULL);
    expect_err(&r, 64, "--workers", "'four' is not an integer");
    load(&r, NULL, "--workers", "4x", NULL);
    expect_err(&r, 64, "--workers", "not an integer");
    load(&r, NULL, "--workers", " 4", NULL);
    expect_err(&r, 64, "--workers", "not an integer");
    load(&r, NULL, "--workers", "0", NULL);
    expect_err(&r, 64, "--workers", "0 is out of range 1..256");
    load(&r, NULL, "--workers=257", NULL);
    expect_err(&r, 64, "--workers", "out of range 1..256");
    load(&r, NULL, "--queue-capacity", "1000001", NULL);
    expect_err(&r, 64, "--queue-capacity", "out of range 1..1000000");
    load(&r, NULL, "--batch-size", "-1", NULL);
    expect_err(&r, 64, "--batch-size", "out of range 1..1024");
    load(&r, NULL, "--workers", "99999999999999999999", NULL);
    expect_err(&r, 64, "--workers", "not an integer");
    load(&r, NULL, "--log-level", "verbose", NULL);
    expect_err(&r, 64, "--log-level",
               "'verbose' is not one of debug|info|warn|error");
    load(&r, NULL, "--log-format", "xml", NULL);
    expect_err(&r, 64, "--log-format", "json|text");
    load(&r, NULL, "--dry-run=maybe", NULL);
    expect_err(&r, 64, "--dry-run", "not a boolean");
    load(&r, NULL, "--eta-ttl", "soon", NULL);
    expect_err(&r, 64, "--eta-ttl", "not a duration");
    load(&r, NULL, "--eta-ttl", "0", NULL);
    expect_err(&r, 64, "--eta-ttl", "out of range 1s..365d");
    load(&r, NULL, "-t", "", NULL);
    expect_err(&r, 64, "-t", "must not be empty");
    load(&r, NULL, "extra", NULL);
    expect_err(&r, 64, "unexpected argument 'extra'", NULL);
    load(&r, NULL, "--", "extra", NULL);
    expect_err(&r, 64, "unexpected argument 'extra'", NULL);
    load(&r, NULL, "--dump-config=yes", NULL);
    expect_err(&r, 64, "'--dump-config' does not take a value", NULL);
    load(&r, NULL, "-hx", NULL);
    expect_err(&r, 64, "'-h' does not take a value", NULL);
    /* An environment error names the variable and the flag. */
    load(&r, bad_env, NULL);
    expect_err(&r, 64, "DISPATCHD_WORKERS (--workers)",
               "'many' is not an integer");
    /* ... unless the flag overrides it? No: the environment is checked
     * even when a flag follows, so a typo there is never silent. */
    load(&r, bad_env, "--workers", "2", NULL);
    expect_err(&r, 64, "DISPATCHD_WORKERS", NULL);
}

static void test_config_config_errors_exit_78(void **state) {
    result_t r;

    (void)state;
    load(&r, NULL, "--redis", "bogus://x", NULL);
    expect_err(&r, 78, "--redis", "unsupported scheme 'bogus://'");
    load(&r, NULL, "-X", "linger.ms", NULL);
    expect_err(&r, 78, "-X", "expected PROP=VALUE");
    load(&r, NULL, "--http", "localhost:80", NULL);
    expect_err(&r, 78, "--http", "not a numeric IPv4 address");
    load(&r, NULL, "--replay-to", "2026-11-27T20:00:00Z", NULL);
    expect_err(&r, 78, "--replay-to needs --replay-from", NULL);
    load(&r, NULL, "--dry-run", NULL);
    expect_err(&r, 78, "--dry-run needs --replay-from", NULL);
}

static void test_config_durations(void **state) {
    static const struct {
        const char *in;
        int64_t ms;
    } ok[] = {{"250ms", 250},  {"1s", 1000},     {"45", 45000},
              {"2m", 120000},  {"3h", 10800000}, {"1d", 86400000},
              {"0", 0},        {"0ms", 0},       {"3600s", 3600000},
              {"1500ms", 1500}};
    static const char *const bad[] = {"",
                                      "s",
                                      "1x",
                                      "-1s",
                                      "1.5s",
                                      "1 s",
                                      " 1s",
                                      "1S",
                                      "1sm",
                                      "+1s",
                                      "99999999999999999999s",
                                      "106751991168d"};
    result_t r;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        load(&r, NULL, "--stats-interval", ok[i].in, NULL);
        expect_ok(&r);
        assert_int_equal(r.cfg.stats_interval_ms, ok[i].ms);
        done(&r);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        load(&r, NULL, "--drain-timeout", bad[i], NULL);
        expect_err(&r, 64, "--drain-timeout", "not a duration");
    }
    load(&r, NULL, "--idempotency-ttl", "30d", NULL);
    expect_ok(&r);
    assert_int_equal(r.cfg.idempotency_ttl_ms, 30 * 86400000LL);
    done(&r);
    load(&r, NULL, "--drain-timeout", "2h", NULL);
    expect_err(&r, 64, "--drain-timeout", "2h is out of range 0s..1h");
    load(&r, NULL, "--redis-timeout", "0ms", NULL);
    expect_err(&r, 64, "--redis-timeout", "out of range 1ms..1h");
}

/* The URL forms and their errors are test_redis_url's; here only what
 * config adds: the option name, exit status 78, and the last value wins. */
static void test_config_redis_url_option(void **state) {
    result_t r;

    (void)state;
    load(&r, NULL, "--redis", "REDIS://app:pw@[::1]:7000/", NULL);
    expect_ok(&r);
    assert_string_equal(r.cfg.redis.host, "::1");
    assert_int_equal(r.cfg.redis.port, 7000);
    assert_string_equal(r.cfg.redis.user, "app");
    assert_string_equal(r.cfg.redis.password, "pw");
    done(&r);

    /* The last of env and flag wins, and the old value is freed. */
    load(&r, NULL, "--redis", "redis://:a@h1/1", "--redis", "unix:///x.sock",
         NULL);
    expect_ok(&r);
    assert_null(r.cfg.redis.host);
    assert_null(r.cfg.redis.password);
    assert_string_equal(r.cfg.redis.unix_path, "/x.sock");
    done(&r);

    load(&r, NULL, "--redis", "redis://:hunter2@h:0", NULL);
    expect_err(&r, 78, "--redis: ", "bad port '0' (1..65535)");
    assert_null(strstr(r.err, "hunter2"));
    {
        static const char *const env[] = {"DISPATCHD_REDIS=redis://:hunter2@",
                                          NULL};
        load(&r, env, NULL);
        expect_err(&r, 78, "DISPATCHD_REDIS (--redis): ", "missing host");
        assert_null(strstr(r.err, "hunter2"));
    }
}

/* --redis-cluster: seeds, the option name and 78 on a bad URL, and 64 when
 * a non-default --redis is given too. */
static void test_config_redis_cluster_option(void **state) {
    result_t r;

    (void)state;
    load(&r, NULL, NULL);
    expect_ok(&r);
    assert_int_equal(r.cfg.redis_cluster.nseeds, 0);
    done(&r);

    load(&r, NULL, "--redis-cluster", "redis://:pw@10.0.0.1:7000,10.0.0.2",
         NULL);
    expect_ok(&r);
    assert_int_equal(r.cfg.redis_cluster.nseeds, 2);
    assert_string_equal(r.cfg.redis_cluster.seeds[1].host, "10.0.0.2");
    assert_int_equal(r.cfg.redis_cluster.seeds[1].port, 6379);
    assert_string_equal(r.cfg.redis_cluster.password, "pw");
    done(&r);
    {
        static const char *const env[] = {
            "DISPATCHD_REDIS_CLUSTER=redis://h1:7000,h2:7001", NULL};
        load(&r, env, NULL);
        expect_ok(&r);
        assert_int_equal(r.cfg.redis_cluster.nseeds, 2);
        done(&r);
    }

    load(&r, NULL, "--redis-cluster", "redis://:hunter2@h:7000/1", NULL);
    expect_err(&r, 78, "--redis-cluster: ", "no database");
    assert_null(strstr(r.err, "hunter2"));

    load(&r, NULL, "--redis", "redis://other:6379/0", "--redis-cluster",
         "redis://h:7000", NULL);
    expect_err(&r, 64, "--redis-cluster and --redis are mutually exclusive",
               "");
    /* The default --redis, even spelled out, goes with a cluster. */
    load(&r, NULL, "--redis", "redis://127.0.0.1:6379/0", "--redis-cluster",
         "redis://h:7000", NULL);
    expect_ok(&r);
    done(&r);
}

static void test_config_kafka_props(void **state) {
    static const char *const env[] = {
        "DISPATCHD_KAFKA_SESSION_TIMEOUT_MS=6000",
        "DISPATCHD_KAFKA_CONSUMER_FETCH_WAIT_MAX_MS=50",
        "DISPATCHD_KAFKA_LINGER_MS=5", NULL};
    result_t r;
    dd_kafka_prop_t *p;

    (void)state;
    load(&r, env, "-X", "linger.ms=10", "-Xproducer.acks=all", "-X",
         "consumer.partition.assignment.strategy=cooperative-sticky", "-X",
         "client.rack=", "-X", "list", NULL);
    expect_ok(&r);
    assert_int_equal(r.cfg.list_kafka_props, 1);
    assert_int_equal(r.cfg.kafka_props_cnt, 6);
    p = r.cfg.kafka_props;
    /* Environment first, in environment order... */
    assert_int_equal(p[0].target, DD_KAFKA_TARGET_BOTH);
    assert_string_equal(p[0].key, "session.timeout.ms");
    assert_string_equal(p[0].value, "6000");
    assert_int_equal(p[1].target, DD_KAFKA_TARGET_CONSUMER);
    assert_string_equal(p[1].key, "fetch.wait.max.ms");
    assert_string_equal(p[1].value, "50");
    /* ...then flags; the flag replaced the env linger.ms and moved last. */
    assert_int_equal(p[2].target, DD_KAFKA_TARGET_BOTH);
    assert_string_equal(p[2].key, "linger.ms");
    assert_string_equal(p[2].value, "10");
    assert_int_equal(p[3].target, DD_KAFKA_TARGET_PRODUCER);
    assert_string_equal(p[3].key, "acks");
    assert_string_equal(p[3].value, "all");
    assert_int_equal(p[4].target, DD_KAFKA_TARGET_CONSUMER);
    assert_string_equal(p[4].key, "partition.assignment.strategy");
    assert_string_equal(p[4].value, "cooperative-sticky");
    assert_string_equal(p[5].key, "client.rack");
    assert_string_equal(p[5].value, "");
    done(&r);

    /* Repeated -X: the last one wins; a value may contain '='. */
    load(&r, NULL, "-X", "a.b=1", "-X", "a.b=x=y", NULL);
    expect_ok(&r);
    assert_int_equal(r.cfg.kafka_props_cnt, 1);
    assert_string_equal(r.cfg.kafka_props[0].value, "x=y");
    done(&r);

    /* Same key for different clients are different settings. */
    load(&r, NULL, "-X", "producer.linger.ms=1", "-X", "linger.ms=2", NULL);
    expect_ok(&r);
    assert_int_equal(r.cfg.kafka_props_cnt, 2);
    done(&r);
}

static void test_config_kafka_prop_errors(void **state) {
    static const char *const bad_env[] = {"DISPATCHD_KAFKA_=1", NULL};
    result_t r;

    (void)state;
    load(&r, NULL, "-X", "linger.ms", NULL);
    expect_err(&r, 78, "-X: expected PROP=VALUE", "'linger.ms'");
    load(&r, NULL, "-X", "=5", NULL);
    expect_err(&r, 78, "-X", "empty property name");
    load(&r, NULL, "-X", "consumer.=5", NULL);
    expect_err(&r, 78, "-X", "empty property name in 'consumer.='");
    load(&r, NULL, "-X", "linger ms=5", NULL);
    expect_err(&r, 78, "-X", "white space");
    load(&r, NULL, "-X", NULL);
    expect_err(&r, 64, "'-X' requires a value", NULL);
    load(&r, bad_env, NULL);
    expect_err(&r, 78, "DISPATCHD_KAFKA_", "empty property name");
}

static void test_config_http(void **state) {
    static const struct {
        const char *in;
        int enabled;
        const char *addr;
        int port;
    } ok[] = {{"0", 0, NULL, 0},
              {"127.0.0.1:8080", 1, "127.0.0.1", 8080},
              {"0.0.0.0:9000", 1, "0.0.0.0", 9000},
              {":9090", 1, "0.0.0.0", 9090},
              {"[::]:8081", 1, "::", 8081},
              {"[::1]:0", 1, "::1", 0}};
    static const char *const bad[] = {"",
                                      "8080",
                                      "127.0.0.1",
                                      "1.2.3.4:",
                                      "1.2.3.4:65536",
                                      "1.2.3.4:x",
                                      "::1:80",
                                      "[::1]80",
                                      "[]:80",
                                      "[1.2.3.4]:80",
                                      "host.example:80"};
    result_t r;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        load(&r, NULL, "--http", ok[i].in, NULL);
        expect_ok(&r);
        assert_int_equal(r.cfg.http.enabled, ok[i].enabled);
        if (ok[i].addr == NULL)
            assert_null(r.cfg.http.addr);
        else
            assert_string_equal(r.cfg.http.addr, ok[i].addr);
        assert_int_equal(r.cfg.http.port, ok[i].port);
        done(&r);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        load(&r, NULL, "--http", bad[i], NULL);
        expect_err(&r, 78, "--http: ", NULL);
    }
}

static void test_config_replay_syntax(void **state) {
    static const struct {
        const char *in;
        dd_replay_kind_t kind;
        int64_t value;
    } from[] = {
        {"earliest", DD_REPLAY_EARLIEST, 0},
        {"0", DD_REPLAY_OFFSET, 0},
        {"123456", DD_REPLAY_OFFSET, 123456},
        {"2026-11-27T20:00:00Z", DD_REPLAY_TIMESTAMP, 1795809600000},
        {"2026-11-27T20:00:00.042Z", DD_REPLAY_TIMESTAMP, 1795809600042},
        {"2026-11-27T20:00:00.5Z", DD_REPLAY_TIMESTAMP, 1795809600500},
        {"2026-11-27T20:00:00.123456789Z", DD_REPLAY_TIMESTAMP, 1795809600123},
        {"2026-11-27T21:30:00+01:30", DD_REPLAY_TIMESTAMP, 1795809600000},
        {"2026-11-27T18:00:00-02:00", DD_REPLAY_TIMESTAMP, 1795809600000},
        {"2024-02-29T00:00:00Z", DD_REPLAY_TIMESTAMP, 1709164800000},
        {"1970-01-01T00:00:00Z", DD_REPLAY_TIMESTAMP, 0},
        {"@1795809600042", DD_REPLAY_TIMESTAMP, 1795809600042},
        {"", DD_REPLAY_NONE, 0}};
    static const char *const bad_from[] = {"latest",
                                           "-5",
                                           "yesterday",
                                           "2026-11-27",
                                           "2026-11-27T20:00:00",
                                           "2026-11-27 20:00:00Z",
                                           "2026-13-01T00:00:00Z",
                                           "2026-02-29T00:00:00Z",
                                           "2026-11-27T24:00:00Z",
                                           "2026-11-27T20:60:00Z",
                                           "2026-11-27T20:00:60Z",
                                           "2026-11-27T20:00:00.Z",
                                           "2026-11-27T20:00:00.1234567890Z",
                                           "2026-11-27T20:00:00+0100",
                                           "2026-11-27T20:00:00Zjunk",
                                           "1969-12-31T23:59:59Z",
                                           "@",
                                           "@-1",
                                           "@12x",
                                           "99999999999999999999"};
    result_t r;

    (void)state;
    for (size_t i = 0; i < sizeof(from) / sizeof(from[0]); i++) {
        load(&r, NULL, "--replay-from", from[i].in, NULL);
        expect_ok(&r);
        assert_int_equal(r.cfg.replay_from.kind, from[i].kind);
        assert_int_equal(r.cfg.replay_from.value, from[i].value);
        assert_int_equal(r.cfg.replay_to.kind, DD_REPLAY_END);
        done(&r);
    }
    for (size_t i = 0; i < sizeof(bad_from) / sizeof(bad_from[0]); i++) {
        load(&r, NULL, "--replay-from", bad_from[i], NULL);
        expect_err(&r, 64, "--replay-from: ", bad_from[i]);
    }

    load(&r, NULL, "--replay-from", "earliest", "--replay-to",
         "2026-11-27T20:00:00Z", "--dry-run", NULL);
    expect_ok(&r);
    assert_int_equal(r.cfg.replay_to.kind, DD_REPLAY_TIMESTAMP);
    assert_int_equal(r.cfg.replay_to.value, 1795809600000);
    assert_int_equal(r.cfg.dry_run, 1);
    done(&r);

    load(&r, NULL, "--replay-from", "100", "--replay-to", "end", NULL);
    expect_ok(&r);
    assert_int_equal(r.cfg.replay_to.kind, DD_REPLAY_END);
    done(&r);

    /* A plain integer is always an offset, never a time, and --replay-to
     * takes no offsets. */
    load(&r, NULL, "--replay-from", "earliest", "--replay-to", "500", NULL);
    expect_err(&r, 64, "--replay-to", "is an offset");
    load(&r, NULL, "--replay-from", "earliest", "--replay-to", "latest", NULL);
    expect_err(&r, 64, "--replay-to", "is not end or a TIMESTAMP");
    load(&r, NULL, "--replay-from", "2026-11-27T20:00:00Z", "--replay-to",
         "2026-11-27T20:00:00Z", NULL);
    expect_err(&r, 64, "--replay-to must be after --replay-from", NULL);
    load(&r, NULL, "--replay-from", "2026-11-27T20:00:00Z", "--replay-to",
         "2026-11-27T19:00:00Z", NULL);
    expect_err(&r, 64, "--replay-to must be after --replay-from", NULL);
}

static void test_config_actions(void **state) {
    static const char *const bad_env[] = {"DISPATCHD_WORKERS=0", NULL};
    result_t r;

    (void)state;
    /* --help and --version work even with a bad environment or a bad value
     * next to them. */
    load(&r, bad_env, "--help", NULL);
    expect_ok(&r);
    assert_int_equal(r.cfg.action, DD_CONFIG_ACTION_HELP);
    done(&r);
    load(&r, NULL, "--workers", "0", "-h", NULL);
    expect_ok(&r);
    assert_int_equal(r.cfg.action, DD_CONFIG_ACTION_HELP);
    done(&r);
    load(&r, bad_env, "-V", NULL);
    expect_ok(&r);
    assert_int_equal(r.cfg.action, DD_CONFIG_ACTION_VERSION);
    done(&r);
    load(&r, bad_env, "--print-env-names", NULL);
    expect_ok(&r);
    assert_int_equal(r.cfg.action, DD_CONFIG_ACTION_PRINT_ENV_NAMES);
    done(&r);
    /* --dump-config shows a fully checked configuration. */
    load(&r, NULL, "--dump-config", "--workers", "9", NULL);
    expect_ok(&r);
    assert_int_equal(r.cfg.action, DD_CONFIG_ACTION_DUMP);
    assert_int_equal(r.cfg.workers, 9);
    done(&r);
    load(&r, bad_env, "--dump-config", NULL);
    expect_err(&r, 64, "DISPATCHD_WORKERS", NULL);
}

static void test_config_reads_environ_when_envp_null(void **state) {
    char *argv[] = {NULL, NULL, NULL};
    dd_config_t cfg;
    char err[256];
    int code = -1;

    (void)state;
    argv[0] = dd_xstrdup("dispatchd");
    argv[1] = dd_xstrdup("--workers=0");
    setenv("DISPATCHD_BATCH_SIZE", "17", 1);
    assert_int_equal(
        dd_config_load(&cfg, 1, argv, NULL, err, sizeof(err), &code), DD_OK);
    unsetenv("DISPATCHD_BATCH_SIZE");
    assert_int_equal(cfg.batch_size, 17);
    assert_int_equal(code, 0);
    dd_config_close(&cfg);
    dd_config_close(&cfg);
    /* errstr is optional. */
    assert_int_equal(dd_config_load(&cfg, 2, argv, NULL, NULL, 0, &code),
                     DD_ERR);
    assert_int_equal(code, 64);
    dd_free(argv[0]);
    dd_free(argv[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_env_sets_values),
        cmocka_unit_test(test_config_cli_wins_over_env),
        cmocka_unit_test(test_config_empty_env_is_unset),
        cmocka_unit_test(test_config_usage_errors_exit_64),
        cmocka_unit_test(test_config_config_errors_exit_78),
        cmocka_unit_test(test_config_durations),
        cmocka_unit_test(test_config_redis_url_option),
        cmocka_unit_test(test_config_redis_cluster_option),
        cmocka_unit_test(test_config_kafka_props),
        cmocka_unit_test(test_config_kafka_prop_errors),
        cmocka_unit_test(test_config_http),
        cmocka_unit_test(test_config_replay_syntax),
        cmocka_unit_test(test_config_actions),
        cmocka_unit_test(test_config_reads_environ_when_envp_null),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
