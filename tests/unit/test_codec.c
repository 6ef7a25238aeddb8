/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for codec. Request parsing is driven by the cases under
 * tests/data (DD_TEST_DATA_DIR, default "tests/data", relative to the repo
 * root, which is the working directory of test runs):
 *   valid/<case>/input.json    + expected.json: the parsed request as
 *     {"request_id", "parcel_id", "courier_id", "candidates", "deadline_ms"}
 *     (n_candidates is the length of candidates)
 *   invalid/<case>/input.json  + error.txt: the error class name
 * scripts/check-schemas checks the same cases against the JSON Schemas.
 * Result serialisation is checked byte for byte, and against the examples
 * in tests/data/results that scripts/check-schemas validates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec.h"
#include "codec_int.h"
#include "util.h"

#define MIN_VALID_CASES   12
#define MIN_INVALID_CASES 20

/* 2026-11-27T20:00:00.042Z */
#define WALL_MS 1795809600042LL

static const char *data_dir(void) {
    const char *d = getenv("DD_TEST_DATA_DIR");
    return d != NULL && d[0] != '\0' ? d : "tests/data";
}

/* Reads a whole file into an owned buffer (dd_free); NULL if missing. */
static char *read_file(const char *path, size_t *lenp) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long size;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = dd_xmalloc((size_t)size + 1);
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        dd_free(buf);
        return NULL;
    }
    fclose(f);
    buf[size] = '\0';
    *lenp = (size_t)size;
    return buf;
}

static int only_dirs(const struct dirent *de) {
    return de->d_name[0] != '.';
}

/* The JSON form of a parsed request, as expected.json writes it. */
static json_t *request_to_json(const dd_request_t *req) {
    json_t *cands = json_array();

    for (int i = 0; i < req->n_candidates; i++)
        json_array_append_new(cands, json_string(req->candidates[i]));
    return json_pack("{s:s, s:s, s:s, s:o, s:I}", "request_id", req->request_id,
                     "parcel_id", req->parcel_id, "courier_id", req->courier_id,
                     "candidates", cands, "deadline_ms",
                     (json_int_t)req->deadline_ms);
}

/* Checks one valid case; returns 1 when it passes, printing why not. */
static int check_valid_case(const char *dir, const char *name) {
    char path[1024];
    dd_request_t *req = dd_xmalloc(sizeof(*req));
    dd_codec_error_t err;
    json_error_t jerr;
    json_t *want = NULL, *got = NULL;
    char *input = NULL, *a = NULL, *b = NULL;
    size_t len;
    int ok = 0;

    snprintf(path, sizeof(path), "%s/%s/input.json", dir, name);
    input = read_file(path, &len);
    if (input == NULL) {
        print_error("valid/%s: cannot read input.json\n", name);
        goto out;
    }
    snprintf(path, sizeof(path), "%s/%s/expected.json", dir, name);
    want = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (want == NULL) {
        print_error("valid/%s: bad expected.json: %s\n", name, jerr.text);
        goto out;
    }
    if (dd_codec_parse_request(input, len, req, &err) != DD_OK) {
        print_error("valid/%s: rejected as %s: %s\n", name,
                    dd_codec_dlq_class_name(err.code), err.text);
        goto out;
    }
    if (err.code != DD_DLQ_NONE || err.text[0] != '\0') {
        print_error("valid/%s: error set on success\n", name);
        goto out;
    }
    got = request_to_json(req);
    if (!json_equal(got, want)) {
        a = json_dumps(got, JSON_SORT_KEYS);
        b = json_dumps(want, JSON_SORT_KEYS);
        print_error("valid/%s: parsed %s\n  expected %s\n", name, a, b);
        goto out;
    }
    ok = 1;
out:
    free(a);
    free(b);
    json_decref(got);
    json_decref(want);
    dd_free(input);
    dd_free(req);
    return ok;
}

/* Checks one invalid case; returns 1 when it passes, printing why not. */
static int check_invalid_case(const char *dir, const char *name) {
    char path[1024];
    dd_request_t *req = dd_xmalloc(sizeof(*req));
    dd_codec_error_t err;
    char *input = NULL, *want = NULL;
    size_t len, want_len;
    int ok = 0;

    snprintf(path, sizeof(path), "%s/%s/input.json", dir, name);
    input = read_file(path, &len);
    snprintf(path, sizeof(path), "%s/%s/error.txt", dir, name);
    want = read_file(path, &want_len);
    if (input == NULL || want == NULL) {
        print_error("invalid/%s: cannot read input.json or error.txt\n", name);
        goto out;
    }
    while (want_len > 0 &&
           (want[want_len - 1] == '\n' || want[want_len - 1] == ' '))
        want[--want_len] = '\0';
    if (dd_codec_parse_request(input, len, req, &err) == DD_OK) {
        print_error("invalid/%s: accepted\n", name);
        goto out;
    }
    if (strcmp(dd_codec_dlq_class_name(err.code), want) != 0) {
        print_error("invalid/%s: class %s (%s), expected %s\n", name,
                    dd_codec_dlq_class_name(err.code), err.text, want);
        goto out;
    }
    if (err.text[0] == '\0' || req->request_id[0] != '\0') {
        print_error("invalid/%s: no error text, or request not cleared\n",
                    name);
        goto out;
    }
    ok = 1;
out:
    dd_free(input);
    dd_free(want);
    dd_free(req);
    return ok;
}

/* Runs check on every case under data_dir()/kind; fails on any failure or
 * on fewer than min_cases cases. */
static void run_cases(const char *kind, int min_cases,
                      int (*check)(const char *dir, const char *name)) {
    char dir[512];
    struct dirent **names;
    int n, failed = 0;

    snprintf(dir, sizeof(dir), "%s/%s", data_dir(), kind);
    n = scandir(dir, &names, only_dirs, alphasort);
    if (n < 0)
        fail_msg("cannot list %s (run from the repo root or set "
                 "DD_TEST_DATA_DIR)",
                 dir);
    for (int i = 0; i < n; i++) {
        if (!check(dir, names[i]->d_name))
            failed++;
        free(names[i]);
    }
    free(names);
    print_message("%s: %d cases, %d failed\n", kind, n, failed);
    assert_int_equal(failed, 0);
    assert_true(n >= min_cases);
}

static void test_valid_cases_parse_to_expected(void **state) {
    (void)state;
    run_cases("valid", MIN_VALID_CASES, check_valid_case);
}

static void test_invalid_cases_fail_with_their_class(void **state) {
    (void)state;
    run_cases("invalid", MIN_INVALID_CASES, check_invalid_case);
}

/* A valid request of exactly len bytes, padded in an unknown field. */
static char *request_of_size(size_t len) {
    static const char head[] =
        "{\"request_id\":\"r-1\",\"parcel_id\":\"p-1\",\"courier_id\":\"c-1\","
        "\"pad\":\"";
    char *buf = dd_xmalloc(len + 1);
    size_t hl = sizeof(head) - 1;

    assert_true(len >= hl + 2);
    memcpy(buf, head, hl);
    memset(buf + hl, 'x', len - hl - 2);
    memcpy(buf + len - 2, "\"}", 2);
    buf[len] = '\0';
    return buf;
}

static void test_size_limit_is_64_kib(void **state) {
    dd_request_t *req = dd_xmalloc(sizeof(*req));
    dd_codec_error_t err;
    char *buf;
    (void)state;

    buf = request_of_size(DD_CODEC_MAX_REQUEST_BYTES);
    assert_int_equal(
        dd_codec_parse_request(buf, DD_CODEC_MAX_REQUEST_BYTES, req, &err),
        DD_OK);
    assert_string_equal(req->courier_id, "c-1");
    dd_free(buf);

    buf = request_of_size(DD_CODEC_MAX_REQUEST_BYTES + 1);
    assert_int_equal(
        dd_codec_parse_request(buf, DD_CODEC_MAX_REQUEST_BYTES + 1, req, &err),
        DD_ERR);
    assert_int_equal(err.code, DD_DLQ_TOO_LARGE);
    assert_string_equal(err.text,
                        "request is 65537 bytes, more than the 65536 allowed");
    dd_free(buf);
    /* Size is checked before anything else: garbage is still too_large. */
    buf = dd_xcalloc(1, 70000);
    assert_int_equal(dd_codec_parse_request(buf, 70000, req, &err), DD_ERR);
    assert_int_equal(err.code, DD_DLQ_TOO_LARGE);
    dd_free(buf);
    dd_free(req);
}

static void test_nul_bytes(void **state) {
    static const char raw_in_string[] =
        "{\"request_id\":\"r\0\",\"parcel_id\":\"p\",\"courier_id\":\"c\"}";
    static const char raw_after[] =
        "{\"request_id\":\"r\",\"parcel_id\":\"p\",\"courier_id\":\"c\"}\0";
    static const char escaped_in_id[] =
        "{\"request_id\":\"r\\u0000x\",\"parcel_id\":\"p\",\"courier_id\":"
        "\"c\"}";
    static const char escaped_elsewhere[] =
        "{\"request_id\":\"r\",\"parcel_id\":\"p\",\"courier_id\":\"c\","
        "\"note\":\"a\\u0000b\"}";
    static const char escaped_in_key[] =
        "{\"request_id\":\"r\",\"parcel_id\":\"p\",\"courier_id\":\"c\","
        "\"n\\u0000\":1}";
    dd_request_t *req = dd_xmalloc(sizeof(*req));
    dd_codec_error_t err;
    (void)state;

    /* A raw NUL byte is never JSON: the length counts, not the NUL. */
    assert_int_equal(dd_codec_parse_request(
                         raw_in_string, sizeof(raw_in_string) - 1, req, &err),
                     DD_ERR);
    assert_int_equal(err.code, DD_DLQ_NOT_JSON);
    assert_int_equal(
        dd_codec_parse_request(raw_after, sizeof(raw_after) - 1, req, &err),
        DD_ERR);
    assert_int_equal(err.code, DD_DLQ_NOT_JSON);
    /* Without the trailing NUL the same bytes are fine. */
    assert_int_equal(
        dd_codec_parse_request(raw_after, sizeof(raw_after) - 2, req, &err),
        DD_OK);
    /* \u0000 in a string is JSON; in an id it fails the pattern. */
    assert_int_equal(dd_codec_parse_request(
                         escaped_in_id, sizeof(escaped_in_id) - 1, req, &err),
                     DD_ERR);
    assert_int_equal(err.code, DD_DLQ_BAD_ID);
    assert_string_equal(
        err.text, "field 'request_id' must be 1 to 128 characters of A-Z a-z "
                  "0-9 . _ : -");
    assert_int_equal(dd_codec_parse_request(escaped_elsewhere,
                                            sizeof(escaped_elsewhere) - 1, req,
                                            &err),
                     DD_OK);
    /* jansson cannot hold a NUL in a key. */
    assert_int_equal(dd_codec_parse_request(
                         escaped_in_key, sizeof(escaped_in_key) - 1, req, &err),
                     DD_ERR);
    assert_int_equal(err.code, DD_DLQ_NOT_JSON);
    dd_free(req);
}

static void test_error_texts_name_the_field(void **state) {
    static const struct {
        const char *json;
        const char *text;
    } cases[] = {
        {"{\"parcel_id\":\"p\",\"courier_id\":\"c\"}",
         "field 'request_id' is required"},
        {"{\"request_id\":7,\"parcel_id\":\"p\",\"courier_id\":\"c\"}",
         "field 'request_id' must be a string"},
        {"{\"request_id\":\"r\",\"parcel_id\":\"p\",\"candidates\":[]}",
         "field 'candidates' must have 1 to 64 items"},
        {"{\"request_id\":\"r\",\"parcel_id\":\"p\",\"candidates\":[\"a\","
         "\"b c\"]}",
         "field 'candidates[1]' must be 1 to 128 characters of A-Z a-z 0-9 . "
         "_ : -"},
        {"{\"request_id\":\"r\",\"parcel_id\":\"p\"}",
         "one of the fields 'courier_id' or 'candidates' is required"},
        {"{\"request_id\":\"r\",\"parcel_id\":\"p\",\"courier_id\":\"c\","
         "\"candidates\":[\"c\"]}",
         "fields 'courier_id' and 'candidates' must not both be given"},
        {"{\"request_id\":\"r\",\"parcel_id\":\"p\",\"courier_id\":\"c\","
         "\"deadline_ms\":0}",
         "field 'deadline_ms' must be an integer from 1 to 86400000"},
        {"[1]", "request must be a JSON object, not an array"},
        {"{\"a\":1,\"a\":2}",
         "request is not JSON: duplicate object key near '\"a\"' at byte 10"},
    };
    dd_request_t *req = dd_xmalloc(sizeof(*req));
    dd_codec_error_t err;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(dd_codec_parse_request(
                             cases[i].json, strlen(cases[i].json), req, &err),
                         DD_ERR);
        assert_string_equal(err.text, cases[i].text);
    }
    dd_free(req);
}

static void test_not_json_text_is_printable_ascii(void **state) {
    /* jansson quotes the bad token; a UTF-8 BOM must not leak raw bytes. */
    static const char bom[] = "\xef\xbb\xbf{}";
    dd_request_t *req = dd_xmalloc(sizeof(*req));
    dd_codec_error_t err;
    (void)state;

    assert_int_equal(dd_codec_parse_request(bom, sizeof(bom) - 1, req, &err),
                     DD_ERR);
    assert_int_equal(err.code, DD_DLQ_NOT_JSON);
    for (const char *p = err.text; *p != '\0'; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
    dd_free(req);
}

static void test_error_is_optional(void **state) {
    static const char ok[] =
        "{\"request_id\":\"r\",\"parcel_id\":\"p\",\"courier_id\":\"c\"}";
    dd_request_t *req = dd_xmalloc(sizeof(*req));
    (void)state;

    assert_int_equal(dd_codec_parse_request(ok, sizeof(ok) - 1, req, NULL),
                     DD_OK);
    assert_int_equal(dd_codec_parse_request("[", 1, req, NULL), DD_ERR);
    assert_int_equal(dd_codec_parse_request("", 0, req, NULL), DD_ERR);
    dd_free(req);
}

static void test_names(void **state) {
    (void)state;
    assert_string_equal(dd_codec_dlq_class_name(DD_DLQ_NONE), "none");
    assert_string_equal(dd_codec_dlq_class_name(DD_DLQ_TOO_LARGE), "too_large");
    assert_string_equal(dd_codec_dlq_class_name(DD_DLQ_INVALID_UTF8),
                        "invalid_utf8");
    assert_string_equal(dd_codec_dlq_class_name(DD_DLQ_NOT_JSON), "not_json");
    assert_string_equal(dd_codec_dlq_class_name(DD_DLQ_SCHEMA), "schema");
    assert_string_equal(dd_codec_dlq_class_name(DD_DLQ_BAD_ID), "bad_id");
    assert_string_equal(dd_codec_dlq_class_name(DD_DLQ__COUNT), "unknown");
    assert_string_equal(dd_codec_status_name(DD_STATUS_ASSIGNED), "assigned");
    assert_string_equal(dd_codec_status_name(DD_STATUS_REJECTED), "rejected");
    assert_string_equal(dd_codec_status_name(DD_STATUS_EXPIRED), "expired");
    assert_null(dd_codec_status_name((dd_status_t)3));
}

/*----- Results -----*/

static const char assigned_json[] =
    "{\"request_id\":\"r-1001\",\"status\":\"assigned\",\"parcel_id\":\"p-77\","
    "\"courier_id\":\"c-12\",\"eta_seconds\":734,\"pickup_eta_seconds\":210,"
    "\"distance_m\":5120,\"eta_cached\":true,\"source\":{\"topic\":"
    "\"dispatch.requests\",\"partition\":3,\"offset\":1234},"
    "\"processed_at\":\"2026-11-27T20:00:00.042Z\"}";

static const char rejected_json[] =
    "{\"request_id\":\"r-1002\",\"status\":\"rejected\",\"reason\":"
    "\"courier_unavailable\",\"parcel_id\":\"p-78\",\"courier_id\":\"c-40\","
    "\"source\":{\"topic\":\"dispatch.requests\",\"partition\":0,\"offset\":"
    "0},\"processed_at\":\"1970-01-01T00:00:00.000Z\"}";

static const char expired_json[] =
    "{\"request_id\":\"r-1003\",\"status\":\"expired\",\"reason\":"
    "\"deadline_expired\",\"parcel_id\":\"p-79\",\"source\":{\"topic\":"
    "\"dispatch.requests\",\"partition\":11,\"offset\":9007199254740993},"
    "\"processed_at\":\"2026-11-27T20:00:01.999Z\"}";

static void fill_assigned(dd_result_t *res) {
    memset(res, 0, sizeof(*res));
    dd_strlcpy(res->request_id, "r-1001", sizeof(res->request_id));
    res->status = DD_STATUS_ASSIGNED;
    dd_strlcpy(res->parcel_id, "p-77", sizeof(res->parcel_id));
    dd_strlcpy(res->courier_id, "c-12", sizeof(res->courier_id));
    res->eta_seconds = 734;
    res->pickup_eta_seconds = 210;
    res->distance_m = 5120;
    res->eta_cached = 1;
    dd_strlcpy(res->source_topic, "dispatch.requests",
               sizeof(res->source_topic));
    res->source_partition = 3;
    res->source_offset = 1234;
    res->processed_at_ms = WALL_MS;
}

static void fill_rejected(dd_result_t *res) {
    memset(res, 0, sizeof(*res));
    dd_strlcpy(res->request_id, "r-1002", sizeof(res->request_id));
    res->status = DD_STATUS_REJECTED;
    res->reason = DD_REASON(COURIER_UNAVAILABLE);
    dd_strlcpy(res->parcel_id, "p-78", sizeof(res->parcel_id));
    dd_strlcpy(res->courier_id, "c-40", sizeof(res->courier_id));
    /* Route numbers of a rejection are not written, whatever they hold. */
    res->eta_seconds = 99;
    res->eta_cached = 1;
    dd_strlcpy(res->source_topic, "dispatch.requests",
               sizeof(res->source_topic));
    res->processed_at_ms = 0;
}

static void fill_expired(dd_result_t *res) {
    memset(res, 0, sizeof(*res));
    dd_strlcpy(res->request_id, "r-1003", sizeof(res->request_id));
    res->status = DD_STATUS_EXPIRED;
    res->reason = DD_REASON(DEADLINE_EXPIRED);
    dd_strlcpy(res->parcel_id, "p-79", sizeof(res->parcel_id));
    dd_strlcpy(res->source_topic, "dispatch.requests",
               sizeof(res->source_topic));
    res->source_partition = 11;
    res->source_offset = 9007199254740993LL; /* 2^53 + 1: not a double */
    res->processed_at_ms = WALL_MS + 1957;
}

/* Serialises res, checks the bytes and the length, and checks that the
 * example file under tests/data/results (validated by check-schemas) has
 * the same bytes, ignoring one trailing newline. */
static void check_result(const dd_result_t *res, const char *want,
                         const char *example) {
    char path[512];
    char *got, *file;
    size_t len, file_len;

    got = dd_codec_result_json(res, &len);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    dd_free(got);

    snprintf(path, sizeof(path), "%s/results/%s", data_dir(), example);
    file = read_file(path, &file_len);
    if (file == NULL)
        fail_msg("cannot read %s", path);
    if (file_len > 0 && file[file_len - 1] == '\n')
        file[--file_len] = '\0';
    assert_string_equal(file, want);
    dd_free(file);
}

static void test_result_assigned_bytes(void **state) {
    dd_result_t res;
    (void)state;
    fill_assigned(&res);
    check_result(&res, assigned_json, "assigned.json");
    /* A reason on an assignment is ignored. */
    res.reason = DD_REASON(UNKNOWN_COURIER);
    check_result(&res, assigned_json, "assigned.json");
}

static void test_result_rejected_bytes(void **state) {
    dd_result_t res;
    (void)state;
    fill_rejected(&res);
    check_result(&res, rejected_json, "rejected_courier_unavailable.json");
}

static void test_result_expired_bytes(void **state) {
    dd_result_t res;
    (void)state;
    fill_expired(&res);
    check_result(&res, expired_json, "expired.json");
}

/*----- The fixed-shape writer against jansson -----*/

/* The jansson writer dd_codec_result_json() had before its fixed-shape
 * writer, kept here as the reference: the same bytes for every result.
 * Call only on results dd_codec_result_json() accepts. */
static char *jansson_result_json(const dd_result_t *res, size_t *lenp) {
    static const char *const status_names[] = {"assigned", "rejected",
                                               "expired"};
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    int assigned = res->status == DD_STATUS_ASSIGNED;
    json_t *root = json_object(), *source = json_object();
    char when[32];
    size_t size;
    char *out;

    assert_non_null(root);
    assert_non_null(source);
    json_object_set_new(root, "request_id", json_string(res->request_id));
    json_object_set_new(root, "status", json_string(status_names[res->status]));
    if (!assigned)
        json_object_set_new(root, "reason", json_string(res->reason));
    json_object_set_new(root, "parcel_id", json_string(res->parcel_id));
    if (res->courier_id[0] != '\0')
        json_object_set_new(root, "courier_id", json_string(res->courier_id));
    if (assigned) {
        json_object_set_new(root, "eta_seconds",
                            json_integer(res->eta_seconds));
        json_object_set_new(root, "pickup_eta_seconds",
                            json_integer(res->pickup_eta_seconds));
        json_object_set_new(root, "distance_m", json_integer(res->distance_m));
        json_object_set_new(root, "eta_cached", json_boolean(res->eta_cached));
    }
    json_object_set_new(source, "topic", json_string(res->source_topic));
    json_object_set_new(source, "partition",
                        json_integer(res->source_partition));
    json_object_set_new(source, "offset", json_integer(res->source_offset));
    json_object_set_new(root, "source", source);
    dd_format_iso8601(res->processed_at_ms, when, sizeof(when));
    json_object_set_new(root, "processed_at", json_string(when));
    size = json_dumpb(root, NULL, 0, flags);
    assert_true(size > 0);
    out = dd_xmalloc(size + 1);
    assert_int_equal(json_dumpb(root, out, size, flags), size);
    out[size] = '\0';
    json_decref(root);
    *lenp = size;
    return out;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* xorshift64*: the same sequence every run. */
static uint64_t rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

/* An id of 1 or 128 characters or a random length, from every allowed
 * character. */
static void random_id(char *out) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                                   "qrstuvwxyz0123456789._:-";
    uint64_t pick = rnd() % 4;
    size_t len = pick == 0   ? 1
                 : pick == 1 ? DD_CODEC_MAX_ID
                             : 1 + rnd() % DD_CODEC_MAX_ID;

    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[rnd() % (sizeof(alphabet) - 1)];
    out[len] = '\0';
}

/* A number >= 0: the edges, or random with a random number of digits. */
static int64_t random_count(int64_t max) {
    switch (rnd() % 6) {
        case 0:
            return 0;
        case 1:
            return max;
        case 2:
            return (int64_t)(rnd() % 10);
        default: {
            int64_t v = (int64_t)(rnd() >> (1 + rnd() % 63));
            return v > max ? v % max : v;
        }
    }
}

/* Topics jansson has to escape, or not. */
static void random_topic(char *out, size_t size) {
    static const char *const fixed[] = {"dispatch.requests",
                                        "t",
                                        "a\"b",
                                        "back\\slash",
                                        "sl/ash",
                                        "tab\there",
                                        "nl\n\r\b\f",
                                        "\x01\x1f\x7f",
                                        "t\xc5\x8dpic",
                                        "\xe2\x80\xa8\xf0\x9f\x9a\x80"};
    size_t n = sizeof(fixed) / sizeof(fixed[0]);
    uint64_t pick = rnd() % (n + 2);

    if (pick < n) {
        dd_strlcpy(out, fixed[pick], size);
        return;
    }
    if (pick == n) { /* the longest topic Kafka allows */
        memset(out, 'x', size - 1);
        out[size - 1] = '\0';
        return;
    }
    /* Random ASCII bytes, control characters included. */
    {
        size_t len = 1 + rnd() % (size - 1);
        for (size_t i = 0; i < len; i++)
            out[i] = (char)(1 + rnd() % 127);
        out[len] = '\0';
    }
}

static void random_result(dd_result_t *res) {
    static const int64_t times[] = {
        0,                 /* 1970-01-01T00:00:00.000Z */
        253402300799999LL, /* 9999-12-31T23:59:59.999Z */
        951782400000LL,    /* 2000-02-29 */
        4107456000000LL,   /* 2100-02-28 */
        4107542399999LL,   /* 2100-02-28T23:59:59.999Z: 2100 is no leap year */
        WALL_MS};
    uint64_t pick;

    memset(res, 0, sizeof(*res));
    random_id(res->request_id);
    random_id(res->parcel_id);
    res->status = (dd_status_t)(rnd() % 3);
    if (res->status == DD_STATUS_EXPIRED) {
        res->reason = DD_REASON(DEADLINE_EXPIRED);
    } else {
        int r;
        do
            r = (int)(rnd() % DD_REASON__COUNT);
        while (dd_codec_reason_status((dd_reason_t)r) != DD_STATUS_REJECTED);
        /* Ignored when assigned. */
        res->reason = dd_codec_reason_name((dd_reason_t)r);
    }
    if (res->status == DD_STATUS_ASSIGNED || rnd() % 2)
        random_id(res->courier_id);
    res->eta_seconds = random_count(INT64_MAX);
    res->pickup_eta_seconds = random_count(INT64_MAX);
    res->distance_m = random_count(INT64_MAX);
    res->eta_cached = (int)(rnd() % 2);
    random_topic(res->source_topic, sizeof(res->source_topic));
    res->source_partition = (int32_t)random_count(INT32_MAX);
    res->source_offset = random_count(INT64_MAX);
    pick = rnd() % (sizeof(times) / sizeof(times[0]) + 1);
    res->processed_at_ms = pick < sizeof(times) / sizeof(times[0])
                               ? times[pick]
                               : (int64_t)(rnd() % 253402300800000ULL);
}

static void test_result_bytes_equal_jansson(void **state) {
    int seen[3] = {0, 0, 0};
    (void)state;

    for (int i = 0; i < 50000; i++) {
        dd_result_t res;
        char *got, *want;
        size_t got_len, want_len;

        random_result(&res);
        got = dd_codec_result_json(&res, &got_len);
        if (got == NULL)
            fail_msg("result %d refused (topic '%s')", i, res.source_topic);
        want = jansson_result_json(&res, &want_len);
        if (got_len != want_len || memcmp(got, want, want_len) != 0)
            fail_msg("result %d:\n got  %s\n want %s", i, got, want);
        assert_int_equal(strlen(got), got_len);
        seen[res.status]++;
        dd_free(got);
        dd_free(want);
    }
    for (int k = 0; k < 3; k++)
        assert_true(seen[k] > 10000);
}

static void test_result_is_deterministic_and_length_optional(void **state) {
    dd_result_t res;
    char *a, *b;
    (void)state;
    fill_assigned(&res);
    a = dd_codec_result_json(&res, NULL);
    b = dd_codec_result_json(&res, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
    dd_free(a);
    dd_free(b);
}

static void test_result_refuses_what_the_schema_forbids(void **state) {
    dd_result_t res;
    size_t len = 5;
    (void)state;

    fill_rejected(&res);
    res.reason = NULL;
    assert_null(dd_codec_result_json(&res, &len));
    assert_int_equal(len, 0);
    res.reason = "busy";
    assert_null(dd_codec_result_json(&res, NULL));
    res.reason = DD_REASON(DEADLINE_EXPIRED); /* that is for expired */
    assert_null(dd_codec_result_json(&res, NULL));

    fill_expired(&res);
    res.reason = DD_REASON(UNKNOWN_PARCEL);
    assert_null(dd_codec_result_json(&res, NULL));

    fill_assigned(&res);
    res.courier_id[0] = '\0';
    assert_null(dd_codec_result_json(&res, NULL));
    fill_assigned(&res);
    res.eta_seconds = -1;
    assert_null(dd_codec_result_json(&res, NULL));
    fill_assigned(&res);
    res.source_offset = -1001; /* e.g. RD_KAFKA_OFFSET_INVALID */
    assert_null(dd_codec_result_json(&res, NULL));
    fill_assigned(&res);
    res.source_partition = -1;
    assert_null(dd_codec_result_json(&res, NULL));
    fill_assigned(&res);
    res.source_topic[0] = '\0';
    assert_null(dd_codec_result_json(&res, NULL));
    fill_assigned(&res);
    dd_strlcpy(res.request_id, "r 1", sizeof(res.request_id));
    assert_null(dd_codec_result_json(&res, NULL));
    fill_assigned(&res);
    res.status = (dd_status_t)7;
    assert_null(dd_codec_result_json(&res, NULL));
    fill_assigned(&res);
    res.processed_at_ms = 253402300800000LL; /* year 10000 */
    assert_null(dd_codec_result_json(&res, NULL));
}

/* Each DD_REASON_MAP row: its name, lookup and status agree, a result of
 * its status carries it, a result of the other status refuses it. */
static void test_reason_table_drives_validation(void **state) {
    static const struct {
        dd_reason_t id;
        const char *wire;
        dd_status_t status;
    } rows[] = {
#define ROW_(id, wire, status, meaning)                                        \
    {DD_REASON_ID_##id, wire, DD_STATUS_##status},
        DD_REASON_MAP(ROW_)
#undef ROW_
    };
    dd_result_t res;
    (void)state;

    assert_int_equal(sizeof(rows) / sizeof(rows[0]), DD_REASON__COUNT);
    for (size_t i = 0; i < DD_REASON__COUNT; i++) {
        char *json;

        assert_int_equal(rows[i].id, (dd_reason_t)i);
        assert_string_equal(dd_codec_reason_name(rows[i].id), rows[i].wire);
        assert_int_equal(dd_codec_reason_find(rows[i].wire), (int)i);
        assert_int_equal(dd_codec_reason_status(rows[i].id), rows[i].status);
        if (rows[i].status == DD_STATUS_EXPIRED)
            fill_expired(&res);
        else
            fill_rejected(&res);
        res.reason = rows[i].wire;
        json = dd_codec_result_json(&res, NULL);
        assert_non_null(json);
        assert_non_null(strstr(json, rows[i].wire));
        dd_free(json);
        res.status = rows[i].status == DD_STATUS_EXPIRED ? DD_STATUS_REJECTED
                                                         : DD_STATUS_EXPIRED;
        assert_null(dd_codec_result_json(&res, NULL));
    }
    assert_null(dd_codec_reason_name(DD_REASON__COUNT));
    assert_int_equal(dd_codec_reason_find("busy"), -1);
    assert_int_equal(dd_codec_reason_find(NULL), -1);
    assert_int_equal(dd_codec_reason_status(DD_REASON__COUNT), -1);
}

/* The reason enum of schemas/assignment.schema.json is DD_REASON_MAP, in
 * order. */
static void test_reason_table_matches_schema(void **state) {
    char path[1024];
    char *text;
    size_t len;
    json_t *root, *reasons;
    (void)state;

    snprintf(path, sizeof(path), "%s/../../schemas/assignment.schema.json",
             data_dir());
    text = read_file(path, &len);
    if (text == NULL)
        fail_msg("cannot read %s", path);
    root = json_loads(text, 0, NULL);
    dd_free(text);
    reasons = json_object_get(
        json_object_get(json_object_get(root, "properties"), "reason"), "enum");
    assert_true(json_is_array(reasons));
    assert_int_equal(json_array_size(reasons), DD_REASON__COUNT);
    for (size_t i = 0; i < DD_REASON__COUNT; i++)
        assert_string_equal(json_string_value(json_array_get(reasons, i)),
                            dd_codec_reason_name((dd_reason_t)i));
    json_decref(root);
}

/* Each DD_DLQ_CLASS_MAP row names its class; the reserved rows are there. */
static void test_dlq_class_table(void **state) {
    static const char *const labels[DD_DLQ__COUNT] = {[DD_DLQ_NONE] = "none",
#define ROW_(id, label, meaning) [DD_DLQ_##id] = label,
                                                      DD_DLQ_CLASS_MAP(ROW_)
#undef ROW_
    };
    (void)state;

    for (int i = 0; i < DD_DLQ__COUNT; i++)
        assert_string_equal(dd_codec_dlq_class_name((dd_dlq_class_t)i),
                            labels[i]);
    assert_string_equal(dd_codec_dlq_class_name(DD_DLQ_RECORD_TOO_LARGE),
                        "record_too_large");
    assert_string_equal(dd_codec_dlq_class_name(DD_DLQ_STORE_DATA_ERROR),
                        "store_data_error");
    assert_string_equal(dd_codec_dlq_class_name(DD_DLQ_RESULT_REJECTED),
                        "result_rejected");
}

/* Status and reason of a result written by dd_codec_result_json(). */
static void check_outcome(const dd_result_t *res, dd_status_t want_status,
                          const char *want_reason) {
    size_t len = 0;
    char *json = dd_codec_result_json(res, &len);
    dd_status_t status = (dd_status_t)7;
    const char *reason = "unset";

    assert_non_null(json);
    assert_int_equal(dd_codec_result_outcome(json, len, &status, &reason),
                     DD_OK);
    assert_int_equal(status, want_status);
    if (want_reason == NULL)
        assert_null(reason);
    else
        assert_string_equal(reason, want_reason);
    dd_free(json);
}

static void test_outcome_of_assigned(void **state) {
    dd_result_t res;
    (void)state;
    fill_assigned(&res);
    check_outcome(&res, DD_STATUS_ASSIGNED, NULL);
}

static void test_outcome_of_rejected_with_reason(void **state) {
    dd_result_t res;
    const char *bytes =
        "{\"status\":\"rejected\",\"reason\":\"unknown_parcel\"}";
    dd_status_t status = DD_STATUS_ASSIGNED;
    const char *reason = NULL;
    (void)state;

    fill_rejected(&res);
    check_outcome(&res, DD_STATUS_REJECTED, res.reason);
    fill_expired(&res);
    check_outcome(&res, DD_STATUS_EXPIRED, DD_REASON(DEADLINE_EXPIRED));
    /* Not NUL-terminated: only len bytes are read; the reason returned is
     * the static DD_REASON_* string, not a pointer into the parsed JSON. */
    assert_int_equal(
        dd_codec_result_outcome(bytes, strlen(bytes), &status, &reason), DD_OK);
    assert_int_equal(status, DD_STATUS_REJECTED);
    assert_ptr_equal(reason, DD_REASON(UNKNOWN_PARCEL));
}

static void test_outcome_of_unknown_status_or_reason(void **state) {
    const char *busy = "{\"status\":\"rejected\",\"reason\":\"busy\"}";
    const char *odd = "{\"status\":\"pending\",\"reason\":\"unknown_parcel\"}";
    dd_status_t status = DD_STATUS_ASSIGNED;
    const char *reason = "unset";
    (void)state;

    assert_int_equal(
        dd_codec_result_outcome(busy, strlen(busy), &status, &reason), DD_OK);
    assert_int_equal(status, DD_STATUS_REJECTED);
    assert_null(reason);
    status = DD_STATUS_ASSIGNED;
    assert_int_equal(
        dd_codec_result_outcome(odd, strlen(odd), &status, &reason), DD_ERR);
    assert_int_equal(status, DD_STATUS_REJECTED);
    assert_ptr_equal(reason, DD_REASON(UNKNOWN_PARCEL));
}

static void test_outcome_of_garbage_bytes(void **state) {
    const char bytes[] = {'{', '"', 's', 0, (char)0xff, 'x'};
    dd_status_t status = DD_STATUS_ASSIGNED;
    const char *reason = "unset";
    (void)state;

    assert_int_equal(
        dd_codec_result_outcome(bytes, sizeof(bytes), &status, &reason),
        DD_ERR);
    assert_int_equal(status, DD_STATUS_REJECTED);
    assert_null(reason);
    status = DD_STATUS_EXPIRED;
    reason = "unset";
    assert_int_equal(dd_codec_result_outcome("", 0, &status, &reason), DD_ERR);
    assert_int_equal(status, DD_STATUS_REJECTED);
    assert_null(reason);
}

static void test_outcome_of_json_that_is_not_an_object(void **state) {
    const char *const cases[] = {
        "[\"assigned\"]",
        "\"assigned\"",
        "42",
        "null",
        /* an object, but neither field a string */
        "{\"status\":1,\"reason\":[\"unknown_parcel\"]}",
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dd_status_t status = DD_STATUS_ASSIGNED;
        const char *reason = "unset";
        assert_int_equal(dd_codec_result_outcome(cases[i], strlen(cases[i]),
                                                 &status, &reason),
                         DD_ERR);
        assert_int_equal(status, DD_STATUS_REJECTED);
        assert_null(reason);
    }
}

/*----- Stored result validation -----*/

static int only_json(const struct dirent *de) {
    size_t n = strlen(de->d_name);
    return n > 5 && strcmp(de->d_name + n - 5, ".json") == 0;
}

/* Runs dd_codec_result_check() on every example file of dir (relative to
 * data_dir()); returns how many it accepted, counting the files in *n. */
static int check_examples(const char *sub, int *n) {
    char dir[512], path[1024], why[160];
    struct dirent **names;
    int accepted = 0;

    snprintf(dir, sizeof(dir), "%s/%s", data_dir(), sub);
    *n = scandir(dir, &names, only_json, alphasort);
    if (*n < 0)
        fail_msg("cannot list %s", dir);
    for (int i = 0; i < *n; i++) {
        size_t len;
        char *text;
        dd_status_t status;
        const char *reason;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        text = read_file(path, &len);
        if (text == NULL)
            fail_msg("cannot read %s", path);
        while (len > 0 && text[len - 1] == '\n')
            len--;
        if (dd_codec_result_check(text, len, NULL, &status, &reason, why,
                                  sizeof(why)) == DD_OK) {
            accepted++;
            assert_string_equal(why, "");
        } else {
            assert_true(why[0] != '\0');
            print_message("%s/%s: %s\n", sub, names[i]->d_name, why);
        }
        dd_free(text);
        free(names[i]);
    }
    free(names);
    return accepted;
}

/* The same verdicts as the JSON Schema (scripts/check-schemas) on every
 * example: each valid one accepted, each invalid one refused. */
static void test_result_check_agrees_with_the_schema(void **state) {
    int n, accepted;
    (void)state;

    accepted = check_examples("results", &n);
    assert_int_equal(accepted, n);
    assert_true(n >= 8);
    accepted = check_examples("results/invalid", &n);
    assert_int_equal(accepted, 0);
    assert_true(n >= 20);
}

/* Everything dd_codec_result_json() writes passes, with the right id, and
 * the status and reason read back. */
static void test_result_check_accepts_what_we_write(void **state) {
    dd_result_t res;
    char *json;
    size_t len;
    dd_status_t status = DD_STATUS_EXPIRED;
    const char *reason = "unset";
    char why[128];
    (void)state;

    fill_assigned(&res);
    json = dd_codec_result_json(&res, &len);
    assert_int_equal(dd_codec_result_check(json, len, res.request_id, &status,
                                           &reason, why, sizeof(why)),
                     DD_OK);
    assert_int_equal(status, DD_STATUS_ASSIGNED);
    assert_null(reason);
    dd_free(json);

    for (int i = 0; i < DD_REASON__COUNT; i++) {
        fill_rejected(&res);
        res.reason = dd_codec_reason_name((dd_reason_t)i);
        res.status = (dd_status_t)dd_codec_reason_status((dd_reason_t)i);
        json = dd_codec_result_json(&res, &len);
        assert_non_null(json);
        assert_int_equal(dd_codec_result_check(json, len, res.request_id,
                                               &status, &reason, NULL, 0),
                         DD_OK);
        assert_int_equal(status, res.status);
        assert_ptr_equal(reason, res.reason);
        dd_free(json);
    }
}

/* Another request's result, garbage, and near misses are refused with a
 * sentence saying why. */
static void test_result_check_refuses_foreign_and_garbage(void **state) {
    static const char garbage[] = "\xff\x00garbage{";
    dd_result_t res;
    char *json;
    size_t len;
    char why[160];
    (void)state;

    fill_rejected(&res);
    json = dd_codec_result_json(&res, &len);
    assert_int_equal(dd_codec_result_check(json, len, "r-other", NULL, NULL,
                                           why, sizeof(why)),
                     DD_ERR);
    assert_string_equal(why, "field 'request_id' names another request");
    /* Only len bytes are read: one byte short is not JSON. */
    assert_int_equal(dd_codec_result_check(json, len - 1, res.request_id, NULL,
                                           NULL, why, sizeof(why)),
                     DD_ERR);
    dd_free(json);

    assert_int_equal(dd_codec_result_check(garbage, sizeof(garbage) - 1, "r-1",
                                           NULL, NULL, why, sizeof(why)),
                     DD_ERR);
    assert_true(strncmp(why, "not JSON", 8) == 0);
    for (const char *p = why; *p != '\0'; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
    assert_int_equal(dd_codec_result_check("", 0, "r-1", NULL, NULL, NULL, 0),
                     DD_ERR);
    assert_int_equal(dd_codec_result_check("\"r-1\"", 5, "r-1", NULL, NULL, why,
                                           sizeof(why)),
                     DD_ERR);
    assert_string_equal(why, "not a JSON object");

    /* The old outcome-only reading took this as a rejection. */
    {
        const char *thin = "{\"request_id\":\"r-1\",\"status\":\"rejected\","
                           "\"reason\":\"unknown_parcel\"}";
        assert_int_equal(dd_codec_result_check(thin, strlen(thin), "r-1", NULL,
                                               NULL, why, sizeof(why)),
                         DD_ERR);
        assert_string_equal(why, "field 'parcel_id' is missing");
    }
    /* Duplicate keys are refused, as for requests. */
    {
        const char *dup =
            "{\"request_id\":\"r-1\",\"request_id\":\"r-2\",\"status\":"
            "\"rejected\",\"reason\":\"unknown_parcel\",\"parcel_id\":\"p\","
            "\"source\":{\"topic\":\"t\",\"partition\":0,\"offset\":0},"
            "\"processed_at\":\"2026-11-27T20:00:00.042Z\"}";
        assert_int_equal(dd_codec_result_check(dup, strlen(dup), "r-2", NULL,
                                               NULL, why, sizeof(why)),
                         DD_ERR);
    }
    /* A time on the pattern that is no instant. */
    {
        const char *feb30 =
            "{\"request_id\":\"r-1\",\"status\":\"rejected\",\"reason\":"
            "\"unknown_parcel\",\"parcel_id\":\"p\",\"source\":{\"topic\":"
            "\"t\",\"partition\":0,\"offset\":0},\"processed_at\":"
            "\"2026-02-30T20:00:00.042Z\"}";
        assert_int_equal(dd_codec_result_check(feb30, strlen(feb30), "r-1",
                                               NULL, NULL, why, sizeof(why)),
                         DD_ERR);
        assert_string_equal(why,
                            "field 'processed_at' is not a UTC time with ms");
    }
}

/* Pieces of requests: the plain reader's shapes and the ones it must hand
 * to jansson (escapes, reals, nesting, duplicates, bad ids, non-ASCII). */
static const char *const piece_keys[] = {
    "\"request_id\"", "\"parcel_id\"",   "\"courier_id\"",
    "\"candidates\"", "\"deadline_ms\"", "\"created_at\"",
    "\"note\"",       "\"x\"",           "\"request\\u005fid\"",
    "\"\"",           "\"parcel_id \"",  "\"zone\"",
};
static const char *const piece_values[] = {
    "\"r-1\"",
    "\"p:2.x_Y\"",
    "\"c-9\"",
    "\"\"",
    "\"a b\"",
    "\"\\u0041\"",
    "\"caf\xc3\xa9\"",
    "[\"c-1\",\"c-2\"]",
    "[\"c-1\" , \"c-1\"]",
    "[]",
    "[\"c 1\"]",
    "[1]",
    "2000",
    "2000.0",
    "2e3",
    "0",
    "-5",
    "86400000",
    "86400001",
    "0123",
    "1.5",
    "true",
    "null",
    "{}",
    "{\"a\":1}",
    "\"2026-01-01T00:00:00Z\"",
    "12345678901234567890",
    "[\"c-1\",]",
};
static const char *const piece_ws[] = {"", " ", "\n\t", "\r "};

static uint64_t xs_next(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

#define PICK(arr, x) ((arr)[xs_next(x) % (sizeof(arr) / sizeof((arr)[0]))])

/* A random request: mostly the required fields (one of them now and then
 * left out), in a random order, with up to three odd pieces; now and then a
 * mutated byte, a cut or a stray character. */
static size_t gen_request(char *buf, size_t size, uint64_t *x) {
    const char *k[8], *v[8];
    int nm = 0, extra = (int)(xs_next(x) % 4);
    size_t n = 0;

    if (xs_next(x) % 16 != 0) {
        k[nm] = "\"request_id\"";
        v[nm++] = "\"r-1\"";
    }
    if (xs_next(x) % 16 != 0) {
        k[nm] = "\"parcel_id\"";
        v[nm++] = "\"p-7\"";
    }
    if (xs_next(x) % 2) {
        k[nm] = "\"courier_id\"";
        v[nm++] = "\"c-3\"";
    } else {
        k[nm] = "\"candidates\"";
        v[nm++] = "[\"c-1\",\"c-2\", \"c-3\"]";
    }
    for (int e = 0; e < extra; e++) {
        k[nm] = PICK(piece_keys, x);
        v[nm++] = PICK(piece_values, x);
    }
    for (int m = nm - 1; m > 0; m--) { /* shuffle */
        int j = (int)(xs_next(x) % (uint64_t)(m + 1));
        const char *tk = k[m], *tv = v[m];
        k[m] = k[j];
        v[m] = v[j];
        k[j] = tk;
        v[j] = tv;
    }
    n += (size_t)snprintf(buf + n, size - n, "%s{", PICK(piece_ws, x));
    for (int m = 0; m < nm; m++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s%s%s:%s%s%s",
                              m > 0 ? "," : "", PICK(piece_ws, x), k[m],
                              PICK(piece_ws, x), PICK(piece_ws, x), v[m],
                              PICK(piece_ws, x));
    n += (size_t)snprintf(buf + n, size - n, "}%s", PICK(piece_ws, x));
    switch (xs_next(x) % 8) {
        case 0: /* a byte changed */
            buf[xs_next(x) % n] = (char)(xs_next(x) % 256);
            break;
        case 1: /* cut short */
            n = (size_t)(xs_next(x) % n);
            break;
        case 2: /* a stray byte at the end */
            buf[n++] = (char)(xs_next(x) % 128);
            break;
        default:
            break;
    }
    return n;
}

/* The plain reader fills a request exactly as the jansson path does, and
 * every answer of dd_codec_parse_request() (code, text, fields) is the
 * jansson path's; the well-formed shapes reach the plain reader. */
static void test_plain_reader_agrees_with_jansson(void **state) {
    dd_request_t *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    dd_codec_error_t ea, eb;
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    char buf[2048];
    int plain = 0, ok = 0;
    (void)state;

    assert_non_null(a);
    assert_non_null(b);
    for (int i = 0; i < 100000; i++) {
        size_t len = gen_request(buf, sizeof(buf) - 1, &x);
        int rc_a, rc_b;

        memset(a, 0, sizeof(*a));
        memset(b, 0, sizeof(*b));
        if (dd_codec_parse_plain(buf, len, a)) {
            plain++;
            assert_int_equal(dd_codec_parse_json(buf, len, b, NULL), DD_OK);
        } else {
            memset(a, 0, sizeof(*a));
            memset(b, 0, sizeof(*b));
            rc_a = dd_codec_parse_request(buf, len, a, &ea);
            memset(&eb, 0, sizeof(eb));
            rc_b = dd_codec_parse_json(buf, len, b, &eb);
            assert_int_equal(rc_a, rc_b);
            if (rc_b != DD_OK) {
                assert_int_equal(ea.code, eb.code);
                assert_string_equal(ea.text, eb.text);
            }
        }
        ok += dd_codec_parse_request(buf, len, a, NULL) == DD_OK;
        assert_string_equal(a->request_id, b->request_id);
        assert_string_equal(a->parcel_id, b->parcel_id);
        assert_string_equal(a->courier_id, b->courier_id);
        assert_int_equal(a->n_candidates, b->n_candidates);
        assert_int_equal(a->deadline_ms, b->deadline_ms);
        for (int k = 0; k < b->n_candidates; k++)
            assert_string_equal(a->candidates[k], b->candidates[k]);
    }
    /* Both readers had work to do. */
    assert_true(plain > 10000);
    assert_true(ok > plain);
    free(a);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_cases_parse_to_expected),
        cmocka_unit_test(test_plain_reader_agrees_with_jansson),
        cmocka_unit_test(test_invalid_cases_fail_with_their_class),
        cmocka_unit_test(test_size_limit_is_64_kib),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_error_texts_name_the_field),
        cmocka_unit_test(test_not_json_text_is_printable_ascii),
        cmocka_unit_test(test_error_is_optional),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_result_assigned_bytes),
        cmocka_unit_test(test_result_rejected_bytes),
        cmocka_unit_test(test_result_expired_bytes),
        cmocka_unit_test(test_result_bytes_equal_jansson),
        cmocka_unit_test(test_result_is_deterministic_and_length_optional),
        cmocka_unit_test(test_result_refuses_what_the_schema_forbids),
        cmocka_unit_test(test_reason_table_drives_validation),
        cmocka_unit_test(test_reason_table_matches_schema),
        cmocka_unit_test(test_dlq_class_table),
        cmocka_unit_test(test_outcome_of_assigned),
        cmocka_unit_test(test_outcome_of_rejected_with_reason),
        cmocka_unit_test(test_outcome_of_unknown_status_or_reason),
        cmocka_unit_test(test_outcome_of_garbage_bytes),
        cmocka_unit_test(test_outcome_of_json_that_is_not_an_object),
        cmocka_unit_test(test_result_check_agrees_with_the_schema),
        cmocka_unit_test(test_result_check_accepts_what_we_write),
        cmocka_unit_test(test_result_check_refuses_foreign_and_garbage),
    };
    return cmocka_run_group_tests_name("codec", tests, NULL, NULL);
}
