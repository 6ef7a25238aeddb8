/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for config_print: --dump-config (redaction of the Redis
 * password and secret librdkafka properties, the round trip through the
 * environment), the environment name list and --help (syntax documented,
 * every line within 80 columns).
 */
#include "config_fixture.h"

#include <ctype.h>

static void test_config_dump_redacts_secrets(void **state) {
    result_t r;
    char *out;

    (void)state;
    load(&r, NULL, "--redis", "redis://admin:hunter2@db.local:6380/4", "-X",
         "sasl.password=hunter3", "-X", "sasl.username=bob", "-X",
         "ssl.key.password=hunter4", "-X",
         "consumer.sasl.oauthbearer.client.secret=hunter5", "-X",
         "ssl.key.pem=hunter6", "-X", "linger.ms=5", "--workers", "3", NULL);
    expect_ok(&r);
    out = dump(&r.cfg);
    assert_null(strstr(out, "hunter"));
    assert_non_null(strstr(out, "\nDISPATCHD_WORKERS=3\n"));
    assert_non_null(
        strstr(out, "\nDISPATCHD_REDIS=redis://admin:***@db.local:6380/4\n"));
    assert_non_null(strstr(out, "\nDISPATCHD_KAFKA_SASL_PASSWORD=***\n"));
    assert_non_null(strstr(out, "\nDISPATCHD_KAFKA_SASL_USERNAME=***\n"));
    assert_non_null(strstr(out, "\nDISPATCHD_KAFKA_SSL_KEY_PASSWORD=***\n"));
    assert_non_null(strstr(
        out,
        "\nDISPATCHD_KAFKA_CONSUMER_SASL_OAUTHBEARER_CLIENT_SECRET=***\n"));
    assert_non_null(strstr(out, "\nDISPATCHD_KAFKA_SSL_KEY_PEM=***\n"));
    assert_non_null(strstr(out, "\nDISPATCHD_KAFKA_LINGER_MS=5\n"));
    free(out);
    done(&r);

    load(&r, NULL, "--redis-cluster", "redis://app:hunter2@h1:7000,[::1]:7001",
         NULL);
    expect_ok(&r);
    out = dump(&r.cfg);
    assert_non_null(strstr(out, "\nDISPATCHD_REDIS_CLUSTER=redis://app:***@"
                                "h1:7000,[::1]:7001\n"));
    assert_null(strstr(out, "hunter"));
    /* --redis is unused in cluster mode: not in the dump. */
    assert_null(strstr(out, "\nDISPATCHD_REDIS="));
    free(out);
    done(&r);

    load(&r, NULL, "--redis", "redis://:hunter2@h/0", NULL);
    expect_ok(&r);
    out = dump(&r.cfg);
    assert_non_null(strstr(out, "\nDISPATCHD_REDIS_CLUSTER=\n"));
    assert_non_null(strstr(out, "\nDISPATCHD_REDIS=redis://:***@h:6379/0\n"));
    assert_null(strstr(out, "hunter"));
    free(out);
    done(&r);

    load(&r, NULL, "--redis", "unix:///tmp/r.sock?db=2&password=hunter2", NULL);
    expect_ok(&r);
    out = dump(&r.cfg);
    assert_non_null(strstr(
        out, "\nDISPATCHD_REDIS=unix:///tmp/r.sock?db=2&password=***\n"));
    assert_null(strstr(out, "hunter"));
    free(out);
    done(&r);
}

/* Every line of the dump, fed back as the environment, gives the same
 * dump: the dump is complete and every value re-parses. */
static void test_config_dump_round_trips_through_env(void **state) {
    result_t r, r2;
    char *out, *out2, *line, *save = NULL;
    const char *env[64];
    size_t n = 0;

    (void)state;
    load(&r, NULL, "-b", "k:1", "--workers", "5", "--eta-ttl", "1500ms",
         "--http", "[::1]:9000", "--replay-from", "2026-11-27T20:00:00.5Z",
         "--replay-to", "@1795809700000", "--dry-run", "--log-format", "text",
         "--redis", "redis://u%3Ax:@[::1]:7000/3", "-X",
         "consumer.fetch.wait.max.ms=20", "--stats-interval", "0", NULL);
    expect_ok(&r);
    out = dump(&r.cfg);
    assert_non_null(strstr(out, "DISPATCHD_ETA_TTL=1500ms\n"));
    assert_non_null(strstr(out, "DISPATCHD_HTTP=[::1]:9000\n"));
    assert_non_null(
        strstr(out, "DISPATCHD_REPLAY_FROM=2026-11-27T20:00:00.500Z\n"));
    assert_non_null(strstr(out, "DISPATCHD_DRY_RUN=true\n"));
    assert_non_null(strstr(out, "DISPATCHD_STATS_INTERVAL=0s\n"));
    assert_non_null(strstr(out, "DISPATCHD_REDIS=redis://u%3Ax:@[::1]:7000/3"));
    out2 = dd_xstrdup(out);
    for (line = strtok_r(out2, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        assert_true(strncmp(line, "DISPATCHD_", 10) == 0);
        assert_true(n < 63);
        env[n++] = line;
    }
    env[n] = NULL;
    load(&r2, env, NULL);
    expect_ok(&r2);
    free(out2);
    out2 = dump(&r2.cfg);
    assert_string_equal(out, out2);
    assert_string_equal(r2.cfg.redis.user, "u:x");
    free(out);
    free(out2);
    done(&r);
    done(&r2);
}

/* Cluster mode: the dump leaves DISPATCHD_REDIS out and still round
 * trips. */
static void test_config_dump_round_trips_in_cluster_mode(void **state) {
    result_t r, r2;
    char *out, *out2, *line, *save = NULL;
    const char *env[64];
    size_t n = 0;

    (void)state;
    load(&r, NULL, "--redis-cluster", "redis://h1:7000,[::1]:7001", NULL);
    expect_ok(&r);
    out = dump(&r.cfg);
    assert_null(strstr(out, "\nDISPATCHD_REDIS="));
    out2 = dd_xstrdup(out);
    for (line = strtok_r(out2, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        assert_true(n < 63);
        env[n++] = line;
    }
    env[n] = NULL;
    load(&r2, env, NULL);
    expect_ok(&r2);
    free(out2);
    out2 = dump(&r2.cfg);
    assert_string_equal(out, out2);
    assert_int_equal(r2.cfg.redis_cluster.nseeds, 2);
    free(out);
    free(out2);
    done(&r);
    done(&r2);
}

static void test_config_env_names_follow_the_rule(void **state) {
    const char *names[64];
    size_t n = dd_config_env_names(names, 64);
    char *help = NULL, *list = NULL;
    size_t size = 0;
    FILE *fp;

    (void)state;
    assert_true(n >= 20 && n < 64);
    assert_int_equal(dd_config_env_names(NULL, 0), n);
    fp = open_memstream(&help, &size);
    dd_config_print_help(fp);
    fclose(fp);
    fp = open_memstream(&list, &size);
    dd_config_print_env_names(fp);
    fclose(fp);
    for (size_t i = 0; i < n; i++) {
        char flag[64] = "--", line[80];
        const char *p = names[i] + strlen("DISPATCHD_");
        size_t j = 2;

        /* DISPATCHD_QUEUE_CAPACITY <-> --queue-capacity. */
        assert_true(strncmp(names[i], "DISPATCHD_", 10) == 0);
        for (; *p != '\0' && j < sizeof(flag) - 2; p++)
            flag[j++] = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
        flag[j++] = ' ';
        flag[j] = '\0';
        if (strstr(help, flag) == NULL)
            fail_msg("%s: no %s in --help", names[i], flag);
        snprintf(line, sizeof(line), "[%s]", names[i]);
        assert_non_null(strstr(help, line));
        snprintf(line, sizeof(line), "%s\n", names[i]);
        assert_non_null(strstr(list, line));
        /* No option reads a DISPATCHD_KAFKA_* name (they are properties). */
        assert_false(strncmp(names[i], DD_CONFIG_KAFKA_ENV_PREFIX,
                             strlen(DD_CONFIG_KAFKA_ENV_PREFIX)) == 0);
    }
    assert_non_null(strstr(list, "\nDISPATCHD_KAFKA_*\n"));
    assert_non_null(strstr(list, "DISPATCHD_QUEUE_CAPACITY\n"));
    assert_null(strstr(help, "print-env-names"));
    free(help);
    free(list);
}

static void test_config_help_documents_syntax(void **state) {
    char *help = NULL;
    size_t size = 0;
    FILE *fp = open_memstream(&help, &size);
    const char *p;

    (void)state;
    dd_config_print_help(fp);
    fclose(fp);
    assert_non_null(strstr(help, "-X PROP=VALUE"));
    assert_non_null(strstr(help, "@EPOCH_MS"));
    assert_non_null(strstr(help, "bare\n             integer means seconds"));
    assert_non_null(strstr(help, "default: localhost:9092"));
    assert_non_null(strstr(help, "1..256"));
    /* Every line fits in 80 columns. */
    for (p = help; *p != '\0';) {
        size_t len = strcspn(p, "\n");
        if (len > 80)
            fail_msg("help line too long: %.*s", (int)len, p);
        p += len + (p[len] == '\n');
    }
    free(help);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_dump_redacts_secrets),
        cmocka_unit_test(test_config_dump_round_trips_through_env),
        cmocka_unit_test(test_config_dump_round_trips_in_cluster_mode),
        cmocka_unit_test(test_config_env_names_follow_the_rule),
        cmocka_unit_test(test_config_help_documents_syntax),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
