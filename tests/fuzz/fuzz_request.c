/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for request parsing: feeds the input as a message value
 * to dd_codec_parse_request(), the function a worker calls on every record,
 * and checks what codec.h promises. A request either parses into fields
 * that satisfy the schema (ids on the pattern, courier_id or 1..64
 * candidates, deadline in range) or fails with one named error class and a
 * non-empty sentence; the same bytes always give the same outcome; and a
 * parsed request always serialises into a result (dd_codec_result_json())
 * whose JSON carries the same ids; and the plain reader (codec.c) answers
 * exactly as the jansson path alone does. A broken promise aborts, which
 * libFuzzer reports as a crash. Run by `make fuzz`.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "codec_int.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            dd_panic("fuzz_request: check failed: %s", #cond);                 \
    } while (0)

/* ^[A-Za-z0-9._:-]{1,128}$ on a NUL-terminated field of its array. */
static int id_ok(const char *id) {
    size_t n = strnlen(id, DD_CODEC_MAX_ID + 1);

    if (n == 0 || n > DD_CODEC_MAX_ID)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
              c == '-'))
            return 0;
    }
    return 1;
}

static void check_valid(const dd_request_t *req) {
    CHECK(id_ok(req->request_id));
    CHECK(id_ok(req->parcel_id));
    if (req->n_candidates == 0) {
        CHECK(id_ok(req->courier_id));
    } else {
        CHECK(req->courier_id[0] == '\0');
        CHECK(req->n_candidates >= 1 &&
              req->n_candidates <= DD_CODEC_MAX_CANDIDATES);
        for (int i = 0; i < req->n_candidates; i++)
            CHECK(id_ok(req->candidates[i]));
    }
    CHECK(req->deadline_ms >= 0 &&
          req->deadline_ms <= DD_CODEC_MAX_DEADLINE_MS);
}

/* A parsed request must always give a result that serialises, and the
 * result must say the same ids. */
static void check_result(const dd_request_t *req) {
    dd_result_t res;
    json_t *root;
    json_error_t jerr;
    char *json;
    size_t len = 0;

    memset(&res, 0, sizeof(res));
    memcpy(res.request_id, req->request_id, sizeof(res.request_id));
    memcpy(res.parcel_id, req->parcel_id, sizeof(res.parcel_id));
    memcpy(res.courier_id,
           req->n_candidates == 0 ? req->courier_id : req->candidates[0],
           sizeof(res.courier_id));
    res.status = DD_STATUS_ASSIGNED;
    res.eta_seconds = 60;
    res.pickup_eta_seconds = 30;
    res.distance_m = 1000;
    memcpy(res.source_topic, "dispatch.requests", sizeof("dispatch.requests"));
    res.processed_at_ms = 1795809600042LL;

    json = dd_codec_result_json(&res, &len);
    CHECK(json != NULL);
    CHECK(strlen(json) == len);
    root = json_loadb(json, len, 0, &jerr);
    CHECK(root != NULL);
    CHECK(strcmp(json_string_value(json_object_get(root, "request_id")),
                 req->request_id) == 0);
    CHECK(strcmp(json_string_value(json_object_get(root, "parcel_id")),
                 req->parcel_id) == 0);
    json_decref(root);
    dd_free(json);
}

static void check_same(const dd_request_t *a, const dd_request_t *b) {
    CHECK(strcmp(a->request_id, b->request_id) == 0);
    CHECK(strcmp(a->parcel_id, b->parcel_id) == 0);
    CHECK(strcmp(a->courier_id, b->courier_id) == 0);
    CHECK(a->n_candidates == b->n_candidates);
    for (int i = 0; i < a->n_candidates; i++)
        CHECK(strcmp(a->candidates[i], b->candidates[i]) == 0);
    CHECK(a->deadline_ms == b->deadline_ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Heap copies of exactly size bytes, so ASan sees any read past the
     * end (the value of a Kafka message is not NUL-terminated). */
    char *buf = malloc(size > 0 ? size : 1);
    dd_request_t *req = malloc(sizeof(*req));
    dd_request_t *again = malloc(sizeof(*again));
    dd_codec_error_t err, err2;
    int rc, rc2;

    CHECK(buf != NULL && req != NULL && again != NULL);
    if (size > 0)
        memcpy(buf, data, size);

    rc = dd_codec_parse_request(buf, size, req, &err);
    CHECK(rc == DD_OK || rc == DD_ERR);
    CHECK(memchr(err.text, '\0', sizeof(err.text)) != NULL);
    if (rc == DD_OK) {
        CHECK(err.code == DD_DLQ_NONE);
        CHECK(err.text[0] == '\0');
        check_valid(req);
        check_result(req);
    } else {
        CHECK(err.code > DD_DLQ_NONE && err.code < DD_DLQ__COUNT);
        CHECK(err.text[0] != '\0');
        CHECK(strcmp(dd_codec_dlq_class_name(err.code), "unknown") != 0);
        CHECK(size <= DD_CODEC_MAX_REQUEST_BYTES ||
              err.code == DD_DLQ_TOO_LARGE);
    }

    /* Pure: the same bytes, the same outcome; err is optional. */
    rc2 = dd_codec_parse_request(buf, size, again, &err2);
    CHECK(rc2 == rc && err2.code == err.code);
    CHECK(strcmp(err2.text, err.text) == 0);
    if (rc == DD_OK)
        check_same(req, again);
    CHECK(dd_codec_parse_request(buf, size, again, NULL) == rc);

    /* The jansson path alone, on an empty request, gives the same. */
    if (size <= DD_CODEC_MAX_REQUEST_BYTES) {
        memset(again, 0, sizeof(*again));
        memset(&err2, 0, sizeof(err2));
        rc2 = dd_codec_parse_json(buf, size, again, &err2);
        CHECK(rc2 == rc && err2.code == err.code);
        CHECK(strcmp(err2.text, err.text) == 0);
        if (rc == DD_OK)
            check_same(req, again);
    }

    free(again);
    free(req);
    free(buf);
    return 0;
}
