/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for log: JSON line fields, escaping (control characters,
 * quotes, backslashes, invalid UTF-8), level filtering without evaluating
 * arguments, the text format, truncation, the librdkafka bridge, and
 * concurrent writers that must never interleave. jansson (linked into every
 * test) proves each line is valid JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

typedef struct capture {
    int rfd;
    int wfd;
    char buf[65536];
} capture_t;

static int setup(void **state) {
    capture_t *c = calloc(1, sizeof(*c));
    int fds[2];

    assert_non_null(c);
    assert_int_equal(pipe(fds), 0);
    c->rfd = fds[0];
    c->wfd = fds[1];
    assert_int_equal(fcntl(c->rfd, F_SETFL, O_NONBLOCK), 0);
    dd_log_set_fd(c->wfd);
    assert_int_equal(dd_log_init(DD_LOG_INFO, DD_LOG_FORMAT_JSON), DD_OK);
    *state = c;
    return 0;
}

static int teardown(void **state) {
    capture_t *c = *state;

    dd_log_set_fd(STDERR_FILENO);
    dd_log_init(DD_LOG_INFO, DD_LOG_FORMAT_JSON);
    close(c->rfd);
    close(c->wfd);
    free(c);
    return 0;
}

/* Everything written to the pipe so far, NUL-terminated. */
static const char *drain(capture_t *c) {
    size_t len = 0;
    ssize_t n;

    while ((n = read(c->rfd, c->buf + len, sizeof(c->buf) - 1 - len)) > 0)
        len += (size_t)n;
    c->buf[len] = '\0';
    return c->buf;
}

/* Parse one line (must be exactly one, ending in '\n') as a JSON object. */
static json_t *parse_line(const char *line) {
    json_error_t jerr;
    size_t len = strlen(line);
    json_t *root;

    assert_true(len > 0);
    assert_int_equal(line[len - 1], '\n');
    assert_null(memchr(line, '\n', len - 1));
    root = json_loadb(line, len - 1, 0, &jerr);
    if (root == NULL)
        fail_msg("invalid JSON (%s): %s", jerr.text, line);
    assert_true(json_is_object(root));
    return root;
}

static const char *jstr(json_t *root, const char *key) {
    json_t *v = json_object_get(root, key);
    assert_non_null(v);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static void test_log_json_line_has_all_fields(void **state) {
    capture_t *c = *state;
    const char *out;
    json_t *root;
    const char *ts;

    /* Named explicitly: the default (comm) differs under valgrind. */
    assert_int_equal(pthread_setname_np(pthread_self(), "dd-test-main"), 0);
    DD_LOG(DD_LOG_INFO, "pool", "worker_started", "worker %d of %d", 2, 4);
    out = drain(c);
    assert_non_null(strstr(out, "\"level\":\"info\",\"module\":\"pool\","));
    assert_non_null(strstr(out, "\"event\":\"worker_started\""));
    assert_non_null(strstr(out, "\"msg\":\"worker 2 of 4\"}\n"));
    assert_null(strstr(out, "\"topic\""));
    assert_null(strstr(out, "\"partition\""));
    root = parse_line(out);
    ts = jstr(root, "ts");
    /* 2026-11-27T20:00:00.042Z */
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[19], '.');
    assert_int_equal(ts[23], 'Z');
    assert_string_equal(jstr(root, "level"), "info");
    assert_string_equal(jstr(root, "module"), "pool");
    assert_string_equal(jstr(root, "thread"), "dd-test-main");
    assert_string_equal(jstr(root, "event"), "worker_started");
    assert_string_equal(jstr(root, "msg"), "worker 2 of 4");
    json_decref(root);
}

static void test_log_position_fields(void **state) {
    capture_t *c = *state;
    const char *out;
    json_t *root;

    DD_LOG_TPO(DD_LOG_WARN, "consumer", "offset_stored", "dispatch.requests", 3,
               1234, "stored");
    out = drain(c);
    assert_non_null(strstr(out, "\"topic\":\"dispatch.requests\","
                                "\"partition\":3,\"offset\":1234,"));
    root = parse_line(out);
    assert_string_equal(jstr(root, "level"), "warn");
    assert_int_equal(json_integer_value(json_object_get(root, "partition")), 3);
    assert_int_equal(json_integer_value(json_object_get(root, "offset")), 1234);
    json_decref(root);

    DD_LOG_TP(DD_LOG_ERROR, "consumer", "partition_paused", "t", 0, "full");
    out = drain(c);
    assert_non_null(strstr(out, "\"topic\":\"t\",\"partition\":0,\"msg\""));
    assert_null(strstr(out, "\"offset\""));
    json_decref(parse_line(out));

    /* Negative offsets (librdkafka logical offsets) are real values. */
    DD_LOG_TPO(DD_LOG_ERROR, "c", "e", "t", -1, -1001, "x");
    out = drain(c);
    assert_non_null(strstr(out, "\"partition\":-1,\"offset\":-1001,"));
    json_decref(parse_line(out));
}

static void test_log_json_escapes_specials(void **state) {
    capture_t *c = *state;
    const char *out;
    json_t *root;

    DD_LOG(DD_LOG_INFO, "m\"od", "e\\v",
           "q\"b\\n\nt\tr\rc\x01\x1f"
           "d\x7f b\bf\f");
    out = drain(c);
    assert_non_null(strstr(out, "\"module\":\"m\\\"od\""));
    assert_non_null(strstr(out, "\"event\":\"e\\\\v\""));
    assert_non_null(strstr(out, "\"msg\":\"q\\\"b\\\\n\\nt\\tr\\rc\\u0001"
                                "\\u001fd\\u007f b\\bf\\f\"}\n"));
    root = parse_line(out);
    assert_string_equal(jstr(root, "msg"), "q\"b\\n\nt\tr\rc\x01\x1f"
                                           "d\x7f b\bf\f");
    assert_string_equal(jstr(root, "module"), "m\"od");
    json_decref(root);
}

static void test_log_json_utf8_valid_kept_invalid_replaced(void **state) {
    capture_t *c = *state;
    const char *out;
    json_t *root;

    /* Valid 2-, 3- and 4-byte sequences pass through unchanged. */
    DD_LOG(DD_LOG_INFO, "m", "e", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x9A\xB2");
    out = drain(c);
    assert_non_null(
        strstr(out, "\"msg\":\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x9A\xB2\""));
    json_decref(parse_line(out));

    /* Each byte outside a well-formed sequence becomes U+FFFD: a stray
     * continuation, 0xFF, a cut sequence, an overlong '/', a surrogate and
     * a code point above U+10FFFF. */
    DD_LOG(DD_LOG_INFO, "m", "e",
           "a\x80"
           "b\xFF"
           "c\xE2\x82"
           "d\xC0\xAF"
           "e\xED\xA0\x80"
           "f\xF4\x90\x80\x80"
           "g");
    out = drain(c);
    assert_non_null(strstr(out, "\"msg\":\"a\\ufffdb\\ufffdc\\ufffd\\ufffd"
                                "d\\ufffd\\ufffde\\ufffd\\ufffd\\ufffd"
                                "f\\ufffd\\ufffd\\ufffd\\ufffdg\""));
    root = parse_line(out);
    assert_non_null(strstr(jstr(root, "msg"), "a\xEF\xBF\xBD"
                                              "b"));
    json_decref(root);

    /* An invalid byte at the very end must not read past the string. */
    DD_LOG(DD_LOG_INFO, "m", "e", "end\xE2");
    out = drain(c);
    assert_non_null(strstr(out, "\"msg\":\"end\\ufffd\"}\n"));
    json_decref(parse_line(out));
}

static int evaluated;

static int side_effect(void) {
    evaluated++;
    return 7;
}

static void test_log_filtered_level_does_not_evaluate_args(void **state) {
    capture_t *c = *state;

    evaluated = 0;
    DD_LOG(DD_LOG_DEBUG, "m", "e", "value %d", side_effect());
    DD_LOG_TPO(DD_LOG_DEBUG, "m", "e", "t", side_effect(),
               (int64_t)side_effect(), "x");
    assert_int_equal(evaluated, 0);
    assert_string_equal(drain(c), "");
    assert_false(dd_log_enabled(DD_LOG_DEBUG));
    assert_true(dd_log_enabled(DD_LOG_INFO));
    assert_true(dd_log_enabled(DD_LOG_ERROR));

    /* Calling the function directly is filtered too. */
    dd_log_write(DD_LOG_DEBUG, "m", "e", NULL, 0, 0, "x");
    assert_string_equal(drain(c), "");

    assert_int_equal(dd_log_init(DD_LOG_DEBUG, DD_LOG_FORMAT_JSON), DD_OK);
    DD_LOG(DD_LOG_DEBUG, "m", "e", "value %d", side_effect());
    assert_int_equal(evaluated, 1);
    assert_non_null(strstr(drain(c), "\"msg\":\"value 7\""));

    assert_int_equal(dd_log_init(DD_LOG_ERROR, DD_LOG_FORMAT_JSON), DD_OK);
    DD_LOG(DD_LOG_WARN, "m", "e", "value %d", side_effect());
    assert_int_equal(evaluated, 1);
    assert_string_equal(drain(c), "");
}

static void test_log_init_rejects_bad_values(void **state) {
    (void)state;
    assert_int_equal(dd_log_init((dd_log_level_t)9, DD_LOG_FORMAT_JSON),
                     DD_ERR);
    assert_int_equal(dd_log_init(DD_LOG_INFO, (dd_log_format_t)5), DD_ERR);
    /* Nothing changed. */
    assert_true(dd_log_enabled(DD_LOG_INFO));
    assert_false(dd_log_enabled(DD_LOG_DEBUG));
}

static void test_log_text_format(void **state) {
    capture_t *c = *state;
    const char *out;

    assert_int_equal(dd_log_init(DD_LOG_DEBUG, DD_LOG_FORMAT_TEXT), DD_OK);
    DD_LOG_TPO(DD_LOG_INFO, "consumer", "rebalance_assign", "dispatch.requests",
               3, 1234, "assigned %d partitions", 2);
    out = drain(c);
    assert_int_equal(out[10], 'T');
    assert_int_equal(out[23], 'Z');
    assert_string_equal(out + 24, " INFO  consumer rebalance_assign: assigned "
                                  "2 partitions (dispatch.requests/3@1234)\n");

    DD_LOG(DD_LOG_ERROR, "main", "pipeline_missing", "a\nb\x01\xFF\"\\");
    out = drain(c);
    assert_string_equal(out + 24, " ERROR main pipeline_missing: "
                                  "a\\nb\\x01\xEF\xBF\xBD\"\\\n");

    DD_LOG(DD_LOG_WARN, "m", "e", "w");
    assert_string_equal(drain(c) + 24, " WARN  m e: w\n");
    DD_LOG(DD_LOG_DEBUG, "m", "e", "d");
    assert_string_equal(drain(c) + 24, " DEBUG m e: d\n");
    DD_LOG_TP(DD_LOG_DEBUG, "m", "e", "t", 0, "d");
    assert_string_equal(drain(c) + 24, " DEBUG m e: d (t/0)\n");
}

static void test_log_long_json_line_truncated_and_valid(void **state) {
    capture_t *c = *state;
    char *big = malloc(3 * DD_LOG_MAX);
    const char *out;
    json_t *root;

    assert_non_null(big);
    /* Plain characters, then characters that expand 6x when escaped, then
     * multi-byte UTF-8: every kind of cut must leave valid JSON. */
    for (int kind = 0; kind < 3; kind++) {
        for (size_t i = 0; i < 3 * DD_LOG_MAX - 1; i++)
            big[i] = kind == 0 ? 'x' : kind == 1 ? '\x01' : "\xC3\xA9"[i % 2];
        big[3 * DD_LOG_MAX - 1 - (kind == 2)] = '\0';
        DD_LOG_TPO(DD_LOG_ERROR, "m", "e", "t", 1, 2, "%s", big);
        out = drain(c);
        assert_true(strlen(out) <= DD_LOG_MAX);
        assert_true(strlen(out) > DD_LOG_MAX - 64);
        assert_non_null(strstr(out, "\"truncated\":true}\n"));
        root = parse_line(out);
        assert_true(json_is_true(json_object_get(root, "truncated")));
        /* Position fields survive the cut. */
        assert_string_equal(jstr(root, "topic"), "t");
        assert_int_equal(json_integer_value(json_object_get(root, "offset")),
                         2);
        json_decref(root);
    }
    /* A line that fits has no marker. */
    DD_LOG(DD_LOG_ERROR, "m", "e", "%.3000s", big);
    out = drain(c);
    assert_null(strstr(out, "truncated"));
    json_decref(parse_line(out));
    free(big);
}

static void test_log_long_text_line_keeps_position(void **state) {
    capture_t *c = *state;
    char big[2 * DD_LOG_MAX];
    const char *out;
    size_t len;

    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(dd_log_init(DD_LOG_INFO, DD_LOG_FORMAT_TEXT), DD_OK);
    DD_LOG_TPO(DD_LOG_INFO, "m", "e", "topic", 5, 99, "%s", big);
    out = drain(c);
    len = strlen(out);
    assert_true(len <= DD_LOG_MAX);
    assert_string_equal(out + len - strlen(" (topic/5@99) [truncated]\n"),
                        " (topic/5@99) [truncated]\n");
}

static void test_log_rdkafka_maps_syslog_levels(void **state) {
    capture_t *c = *state;
    static const struct {
        int syslog;
        const char *level;
    } cases[] = {{0, "error"}, {3, "error"}, {4, "warn"},
                 {5, "info"},  {6, "info"},  {7, "debug"}};
    json_t *root;

    assert_int_equal(dd_log_init(DD_LOG_DEBUG, DD_LOG_FORMAT_JSON), DD_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dd_log_rdkafka(cases[i].syslog, "BROKERFAIL", "broker down: 100%s");
        root = parse_line(drain(c));
        assert_string_equal(jstr(root, "level"), cases[i].level);
        assert_string_equal(jstr(root, "module"), "rdkafka");
        assert_string_equal(jstr(root, "event"), "BROKERFAIL");
        /* The message is data, never a format string. */
        assert_string_equal(jstr(root, "msg"), "broker down: 100%s");
        json_decref(root);
    }
    assert_int_equal(dd_log_init(DD_LOG_INFO, DD_LOG_FORMAT_JSON), DD_OK);
    dd_log_rdkafka(7, "FETCH", "filtered");
    assert_string_equal(drain(c), "");
    dd_log_rdkafka(3, NULL, "no facility");
    root = parse_line(drain(c));
    assert_string_equal(jstr(root, "event"), "log");
    json_decref(root);
}

static void test_log_parse_level_and_format(void **state) {
    dd_log_level_t level;
    dd_log_format_t fmt;

    (void)state;
    assert_int_equal(dd_log_level_parse("debug", &level), DD_OK);
    assert_int_equal(level, DD_LOG_DEBUG);
    assert_int_equal(dd_log_level_parse("INFO", &level), DD_OK);
    assert_int_equal(level, DD_LOG_INFO);
    assert_int_equal(dd_log_level_parse("warning", &level), DD_OK);
    assert_int_equal(level, DD_LOG_WARN);
    assert_int_equal(dd_log_level_parse("error", &level), DD_OK);
    assert_int_equal(level, DD_LOG_ERROR);
    assert_int_equal(dd_log_level_parse("verbose", &level), DD_ERR);
    assert_int_equal(dd_log_level_parse("", &level), DD_ERR);
    assert_int_equal(dd_log_format_parse("text", &fmt), DD_OK);
    assert_int_equal(fmt, DD_LOG_FORMAT_TEXT);
    assert_int_equal(dd_log_format_parse("json", &fmt), DD_OK);
    assert_int_equal(fmt, DD_LOG_FORMAT_JSON);
    assert_int_equal(dd_log_format_parse("xml", &fmt), DD_ERR);
    assert_string_equal(dd_log_level_name(DD_LOG_WARN), "warn");
    assert_string_equal(dd_log_level_name((dd_log_level_t)42), "?");
}

#define WRITERS          4
#define LINES_PER_WRITER 10000

static void *writer(void *arg) {
    int id = (int)(intptr_t)arg;
    char name[16];
    char pad[301];

    snprintf(name, sizeof(name), "dd-work-%d", id);
    pthread_setname_np(pthread_self(), name);
    memset(pad, 'a' + id, sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    for (int i = 0; i < LINES_PER_WRITER; i++)
        DD_LOG_TPO(DD_LOG_INFO, "pool", "job_done", "dispatch.requests", id, i,
                   "writer=%d seq=%d \"%s\"", id, i, pad);
    return NULL;
}

static void test_log_concurrent_writers_never_interleave(void **state) {
    char path[] = "/tmp/dd_test_log_XXXXXX";
    pthread_t th[WRITERS];
    int next[WRITERS] = {0};
    int fd;
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lines = 0;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    /* A regular file without O_APPEND: only the single write per line (and
     * the write lock) keeps lines whole. */
    dd_log_set_fd(fd);
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(
            pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);
    dd_log_set_fd(STDERR_FILENO);

    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    f = fdopen(fd, "r");
    assert_non_null(f);
    while ((len = getline(&line, &cap, f)) > 0) {
        json_t *root = parse_line(line);
        int id = (int)json_integer_value(json_object_get(root, "partition"));
        int seq = (int)json_integer_value(json_object_get(root, "offset"));
        char want[64];

        assert_true(id >= 0 && id < WRITERS);
        /* Each writer's lines arrive whole and in order. */
        assert_int_equal(seq, next[id]);
        next[id]++;
        snprintf(want, sizeof(want), "dd-work-%d", id);
        assert_string_equal(jstr(root, "thread"), want);
        snprintf(want, sizeof(want), "writer=%d seq=%d \"", id, seq);
        assert_memory_equal(jstr(root, "msg"), want, strlen(want));
        json_decref(root);
        lines++;
    }
    free(line);
    fclose(f);
    assert_int_equal(lines, WRITERS * LINES_PER_WRITER);
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(next[i], LINES_PER_WRITER);
}

/* One line per interval; the others counted and reported with the next. */
static void test_log_ratelimit_one_line_per_interval(void **state) {
    static dd_log_ratelimit_t rl = DD_LOG_RATELIMIT_INIT(60000);
    uint64_t suppressed = 99;
    (void)state;
    assert_int_equal(dd_log_ratelimit_allow(&rl, &suppressed), 1);
    assert_int_equal(suppressed, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(dd_log_ratelimit_allow(&rl, &suppressed), 0);
    assert_int_equal(atomic_load(&rl.suppressed), 5);
    /* The interval is over: the next line carries the count. */
    atomic_store(&rl.next_ms, 0);
    assert_int_equal(dd_log_ratelimit_allow(&rl, &suppressed), 1);
    assert_int_equal(suppressed, 5);
    assert_int_equal(atomic_load(&rl.suppressed), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_ratelimit_one_line_per_interval),
        cmocka_unit_test_setup_teardown(test_log_json_line_has_all_fields,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_position_fields, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_json_escapes_specials, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_log_json_utf8_valid_kept_invalid_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_log_filtered_level_does_not_evaluate_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_init_rejects_bad_values, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_text_format, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_log_long_json_line_truncated_and_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_long_text_line_keeps_position,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_rdkafka_maps_syslog_levels,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_parse_level_and_format, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_log_concurrent_writers_never_interleave, setup, teardown),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
