/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for redis_url: redis:// and unix:// forms with their
 * defaults, credentials (user:pass, empty password, percent-encoding), IPv6
 * literals, database and port ranges, every error (never echoing the
 * password), close on a zeroed struct, and the redacted printed form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"
#include "util.h"

/* Parse url, which must succeed, into u. */
static void parse_ok(const char *url, dd_redis_url_t *u) {
    char err[256] = "";

    if (dd_redis_url_parse(url, u, err, sizeof(err)) != DD_OK)
        fail_msg("%s: unexpected error: %s", url, err);
}

/* What dd_redis_url_print() writes for u, in buf. */
static const char *printed(const dd_redis_url_t *u, char *buf, size_t size) {
    FILE *fp;

    buf[0] = '\0'; /* fmemopen() may leave buf alone when nothing is written */
    fp = fmemopen(buf, size, "w");
    assert_non_null(fp);
    dd_redis_url_print(u, fp);
    assert_int_equal(fclose(fp), 0);
    return buf;
}

static void test_redis_url_tcp(void **state) {
    dd_redis_url_t u;

    (void)state;
    parse_ok("redis://cache.internal", &u);
    assert_string_equal(u.host, "cache.internal");
    assert_int_equal(u.port, DD_REDIS_URL_DEFAULT_PORT);
    assert_int_equal(u.db, 0);
    assert_null(u.unix_path);
    assert_null(u.user);
    assert_null(u.password);
    dd_redis_url_close(&u);

    parse_ok("redis://:s3cr%40t@10.0.0.5:6390/3", &u);
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 3);
    assert_null(u.user);
    assert_string_equal(u.password, "s3cr@t");
    dd_redis_url_close(&u);

    /* Scheme is case-blind; a trailing '/' means database 0. */
    parse_ok("REDIS://app:pw@[::1]:7000/", &u);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "pw");
    dd_redis_url_close(&u);

    /* IPv6 literal without a port; full address. */
    parse_ok("redis://[2001:db8::7]/15", &u);
    assert_string_equal(u.host, "2001:db8::7");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 15);
    dd_redis_url_close(&u);

    /* Port and database at their limits. */
    parse_ok("redis://h:65535/2147483647", &u);
    assert_int_equal(u.port, 65535);
    assert_int_equal(u.db, 2147483647);
    dd_redis_url_close(&u);
    parse_ok("redis://h:1", &u);
    assert_int_equal(u.port, 1);
    dd_redis_url_close(&u);
}

static void test_redis_url_credentials(void **state) {
    dd_redis_url_t u;

    (void)state;
    /* user:pass, both percent-decoded; '@' in the password encoded. */
    parse_ok("redis://u%3Ax:p%40ss%2Fw@h:7/2", &u);
    assert_string_equal(u.user, "u:x");
    assert_string_equal(u.password, "p@ss/w");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 7);
    assert_int_equal(u.db, 2);
    dd_redis_url_close(&u);

    /* Empty password: no AUTH at all, user kept. */
    parse_ok("redis://app:@h", &u);
    assert_string_equal(u.user, "app");
    assert_null(u.password);
    dd_redis_url_close(&u);

    /* Neither: ":@" is allowed and means no credentials. */
    parse_ok("redis://:@h", &u);
    assert_null(u.user);
    assert_null(u.password);
    dd_redis_url_close(&u);

    /* The last '@' ends the credentials. */
    parse_ok("redis://:a@b@h", &u);
    assert_string_equal(u.password, "a@b");
    assert_string_equal(u.host, "h");
    dd_redis_url_close(&u);
}

static void test_redis_url_unix(void **state) {
    dd_redis_url_t u;

    (void)state;
    parse_ok("unix:///run/redis/redis.sock", &u);
    assert_null(u.host);
    assert_int_equal(u.port, 0);
    assert_string_equal(u.unix_path, "/run/redis/redis.sock");
    assert_int_equal(u.db, 0);
    dd_redis_url_close(&u);

    parse_ok("unix:///tmp/r.sock?db=5&password=p%26w&user=a%20b", &u);
    assert_string_equal(u.unix_path, "/tmp/r.sock");
    assert_int_equal(u.db, 5);
    assert_string_equal(u.password, "p&w");
    assert_string_equal(u.user, "a b");
    dd_redis_url_close(&u);

    /* A repeated parameter: the last wins; an empty password is none. */
    parse_ok("unix:///tmp/r.sock?password=a&password=", &u);
    assert_null(u.password);
    dd_redis_url_close(&u);
}

static void test_redis_url_errors_never_echo_password(void **state) {
    static const struct {
        const char *url;
        const char *msg; /* a prefix of the whole message */
    } bad[] = {
        {"bogus://x", "unsupported scheme 'bogus://'"},
        {"rediss://:hunter2@h", "unsupported scheme 'rediss://'"},
        {"http://hunter2@x", "unsupported scheme 'http://'"},
        {"localhost:6379", "not a Redis URL"},
        {"", "not a Redis URL"},
        {"redis://:hunter2@h:0", "bad port '0' (1..65535)"},
        {"redis://:hunter2@h:65536", "bad port '65536'"},
        {"redis://:hunter2@h:99999999999", "bad port '99999999999'"},
        {"redis://:hunter2@h:http", "bad port 'http'"},
        {"redis://:hunter2@h:-1", "bad port '-1'"},
        {"redis://:hunter2@h:+1", "bad port '+1'"},
        {"redis://:hunter2@h:", "bad port ''"},
        {"redis://:hunter2@[::1]:0", "bad port '0'"},
        {"redis://:hunter2@", "missing host"},
        {"redis://:hunter2@:6379", "missing host"},
        {"redis://hunter2@h", "credentials must be [USER]:PASSWORD@"},
        {"redis://:hunter2%zz@h", "bad percent-encoding"},
        {"redis://:hunter2%00@h", "bad percent-encoding"},
        {"redis://:hunter2%4@h", "bad percent-encoding"},
        {"redis://:hunter2@h/x", "bad database 'x'"},
        {"redis://:hunter2@h/-1", "bad database '-1'"},
        {"redis://:hunter2@h/2147483648", "bad database '2147483648'"},
        {"redis://:hunter2@h/99999999999999999999", "bad database"},
        {"redis://:hunter2@h/1?db=2", "unexpected '?...'"},
        {"redis://:hunter2@h/1#x", "unexpected '#...'"},
        {"redis://::1:6379", "IPv6 hosts need brackets"},
        {"redis://[::1", "bad [IPV6] host"},
        {"redis://[]:6379", "bad [IPV6] host"},
        {"redis://[::1]x", "bad [IPV6] host"},
        {"unix://relative.sock", "unix:// needs an absolute socket path"},
        {"unix:///", "unix:// needs an absolute socket path"},
        {"unix:///tmp/r.sock?db=x", "bad database 'x'"},
        {"unix:///tmp/r.sock?db=2147483648", "bad database '2147483648'"},
        {"unix:///tmp/r.sock?foo=hunter2", "unknown parameter 'foo'"},
        {"unix:///tmp/r.sock?password", "expected NAME=VALUE after '?'"},
        {"unix:///tmp/r.sock?db=1&password", "expected NAME=VALUE after '&'"},
        {"unix:///tmp/r.sock?password=hunter2%zz", "bad percent-encoding"},
    };
    char longpath[200], err[256];
    dd_redis_url_t u;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&u, 0x5a, sizeof(u));
        err[0] = '\0';
        if (dd_redis_url_parse(bad[i].url, &u, err, sizeof(err)) != DD_ERR)
            fail_msg("%s: accepted", bad[i].url);
        if (strncmp(err, bad[i].msg, strlen(bad[i].msg)) != 0)
            fail_msg("%s: got '%s', expected '%s...'", bad[i].url, err,
                     bad[i].msg);
        assert_null(strstr(err, "hunter2"));
        /* Nothing left to free. */
        assert_null(u.host);
        assert_null(u.unix_path);
        assert_null(u.user);
        assert_null(u.password);
    }
    snprintf(longpath, sizeof(longpath), "unix:///%0150d.sock", 0);
    assert_int_equal(dd_redis_url_parse(longpath, &u, err, sizeof(err)),
                     DD_ERR);
    assert_non_null(strstr(err, "unix socket path longer than"));
    /* errstr is optional. */
    assert_int_equal(dd_redis_url_parse("http://x", &u, NULL, 0), DD_ERR);
}

static void test_redis_url_close_twice(void **state) {
    dd_redis_url_t u;

    (void)state;
    memset(&u, 0, sizeof(u));
    dd_redis_url_close(&u);
    parse_ok("redis://u:p@h", &u);
    dd_redis_url_close(&u);
    assert_null(u.host);
    assert_null(u.user);
    assert_null(u.password);
    dd_redis_url_close(&u);
}

static void test_redis_url_print_redacts(void **state) {
    static const struct {
        const char *url;
        const char *out;
    } cases[] = {
        {"redis://cache.internal", "redis://cache.internal:6379/0"},
        {"redis://admin:hunter2@db.local:6380/4",
         "redis://admin:***@db.local:6380/4"},
        {"redis://:hunter2@h/0", "redis://:***@h:6379/0"},
        {"redis://u%3Ax:@[::1]:7000/3", "redis://u%3Ax:@[::1]:7000/3"},
        {"unix:///tmp/r.sock", "unix:///tmp/r.sock?db=0"},
        {"unix:///tmp/r.sock?db=2&password=hunter2&user=a%20b",
         "unix:///tmp/r.sock?db=2&user=a%20b&password=***"},
    };
    char buf[256];
    dd_redis_url_t u, again;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse_ok(cases[i].url, &u);
        assert_string_equal(printed(&u, buf, sizeof(buf)), cases[i].out);
        /* Without a password the printed form parses back to the same. */
        if (u.password == NULL) {
            parse_ok(buf, &again);
            assert_int_equal(again.port, u.port);
            assert_int_equal(again.db, u.db);
            dd_redis_url_close(&again);
        }
        dd_redis_url_close(&u);
    }
}

static void test_redis_url_cluster(void **state) {
    dd_redis_url_t u;
    char err[256] = "", buf[512];
    static const char *const bad[] = {
        "127.0.0.1:7000",                  /* no scheme */
        "unix:///tmp/r.sock",              /* not TCP */
        "redis://127.0.0.1:7000/0",        /* a database */
        "redis://127.0.0.1:7000,",         /* an empty seed */
        "redis://,127.0.0.1:7000",         /* an empty seed */
        "redis://127.0.0.1:7000,h:0",      /* port 0 */
        "redis://127.0.0.1:7000,::1:7001", /* IPv6 without brackets */
        "redis://u:s3cret@h:7000?x=1",     /* parameters */
        "redis://u:s3cr%zzet@h:7000",      /* bad percent-encoding */
    };

    (void)state;
    assert_int_equal(dd_redis_url_parse_cluster("", &u, err, sizeof(err)),
                     DD_OK);
    assert_int_equal(u.nseeds, 0);
    assert_null(u.host);
    assert_string_equal(printed(&u, buf, sizeof(buf)), "");
    dd_redis_url_close(&u);

    assert_int_equal(dd_redis_url_parse_cluster(
                         "REDIS://app:s%40cret@10.0.0.1:7000,[::1]:7001,node3",
                         &u, err, sizeof(err)),
                     DD_OK);
    assert_int_equal(u.nseeds, 3);
    assert_string_equal(u.seeds[0].host, "10.0.0.1");
    assert_int_equal(u.seeds[0].port, 7000);
    assert_string_equal(u.seeds[1].host, "::1");
    assert_int_equal(u.seeds[1].port, 7001);
    assert_string_equal(u.seeds[2].host, "node3");
    assert_int_equal(u.seeds[2].port, 6379);
    assert_string_equal(u.host, "10.0.0.1");
    assert_int_equal(u.port, 7000);
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "s@cret");
    assert_int_equal(u.db, 0);
    assert_string_equal(printed(&u, buf, sizeof(buf)),
                        "redis://app:***@10.0.0.1:7000,[::1]:7001,node3:6379");
    dd_redis_url_close(&u);
    dd_redis_url_close(&u);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (dd_redis_url_parse_cluster(bad[i], &u, err, sizeof(err)) != DD_ERR)
            fail_msg("%s: accepted", bad[i]);
        assert_true(err[0] != '\0');
        assert_null(strstr(err, "s3cr"));
        assert_null(u.seeds);
        assert_null(u.host);
    }
    assert_int_equal(
        dd_redis_url_parse_cluster("redis://h:1,h:0", &u, err, sizeof(err)),
        DD_ERR);
    assert_non_null(strstr(err, "seed 2"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_url_tcp),
        cmocka_unit_test(test_redis_url_credentials),
        cmocka_unit_test(test_redis_url_unix),
        cmocka_unit_test(test_redis_url_errors_never_echo_password),
        cmocka_unit_test(test_redis_url_close_twice),
        cmocka_unit_test(test_redis_url_print_redacts),
        cmocka_unit_test(test_redis_url_cluster),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
