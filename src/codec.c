/* SPDX-License-Identifier: MIT */
/*
 * codec: request parsing and validation with jansson, and the name tables
 * (DLQ classes, reasons, statuses) that both directions use. The rules, and
 * why they are what they are, are in codec.h; the contracts are the two JSON
 * Schemas in schemas/. Results are written and checked in codec_result.c;
 * what the two files share is in codec_int.h. No I/O and no shared state.
 *
 * Out of memory inside jansson panics, as dd_xmalloc() does: dead-lettering
 * a good request because malloc failed once would lose it.
 */
#include "codec.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec_int.h"
#include "util.h"

static const char *const dlq_class_names[DD_DLQ__COUNT] = {
    [DD_DLQ_NONE] = "none",
#define NAME_(id, label, meaning) [DD_DLQ_##id] = (label),
    DD_DLQ_CLASS_MAP(NAME_)
#undef NAME_
};

const dd_codec_reason_row_t dd_codec_reasons[DD_REASON__COUNT] = {
#define ROW_(id, wire, status, meaning)                                        \
    [DD_REASON_ID_##id] = {(wire), DD_STATUS_##status},
    DD_REASON_MAP(ROW_)
#undef ROW_
};

const char *const dd_codec_status_names[DD_CODEC_N_STATUSES] = {
    [DD_STATUS_ASSIGNED] = "assigned",
    [DD_STATUS_REJECTED] = "rejected",
    [DD_STATUS_EXPIRED] = "expired",
};

/* Records the error class and text in err, which may be NULL. */
static void set_err(dd_codec_error_t *err, dd_dlq_class_t code, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));

static void set_err(dd_codec_error_t *err, dd_dlq_class_t code, const char *fmt,
                    ...) {
    va_list ap;

    if (err == NULL)
        return;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    va_end(ap);
}

/* Replaces bytes that are not printable ASCII, so the text is safe in a
 * Kafka header and a log line whatever jansson quoted from the input. */
void dd_codec_sanitize(char *text) {
    for (unsigned char *p = (unsigned char *)text; *p != '\0'; p++) {
        if (*p < 0x20 || *p >= 0x7f)
            *p = '?';
    }
}

/* True when the len bytes at s match ^[A-Za-z0-9._:-]{1,128}$. */
int dd_codec_id_bytes_ok(const char *s, size_t len) {
    if (len < 1 || len > DD_CODEC_MAX_ID)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* True for a NUL-terminated string in an id buffer that is a valid id. */
int dd_codec_id_ok(const char *s) {
    return dd_codec_id_bytes_ok(s, strnlen(s, DD_CODEC_MAX_ID + 1));
}

/* Checks one id value and copies it into out (DD_CODEC_MAX_ID + 1 bytes).
 * name is the field as the error text shows it. */
static int take_id(const json_t *v, const char *name, char *out,
                   dd_codec_error_t *err) {
    const char *s;
    size_t len;

    if (!json_is_string(v)) {
        set_err(err, DD_DLQ_SCHEMA, "field '%s' must be a string", name);
        return DD_ERR;
    }
    s = json_string_value(v);
    len = json_string_length(v); /* may hold NULs: JSON_ALLOW_NUL */
    if (!dd_codec_id_bytes_ok(s, len)) {
        set_err(err, DD_DLQ_BAD_ID,
                "field '%s' must be 1 to %d characters of A-Z a-z 0-9 . _ : -",
                name, DD_CODEC_MAX_ID);
        return DD_ERR;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return DD_OK;
}

/* Fetches a required id field of root. */
static int take_required_id(const json_t *root, const char *name, char *out,
                            dd_codec_error_t *err) {
    const json_t *v = json_object_get(root, name);

    if (v == NULL) {
        set_err(err, DD_DLQ_SCHEMA, "field '%s' is required", name);
        return DD_ERR;
    }
    return take_id(v, name, out, err);
}

static int take_candidates(const json_t *v, dd_request_t *req,
                           dd_codec_error_t *err) {
    size_t n;

    if (!json_is_array(v)) {
        set_err(err, DD_DLQ_SCHEMA, "field 'candidates' must be an array");
        return DD_ERR;
    }
    n = json_array_size(v);
    if (n < 1 || n > DD_CODEC_MAX_CANDIDATES) {
        set_err(err, DD_DLQ_SCHEMA,
                "field 'candidates' must have 1 to %d items",
                DD_CODEC_MAX_CANDIDATES);
        return DD_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(v, i);
        char name[32];

        if (json_is_string(item) &&
            dd_codec_id_bytes_ok(json_string_value(item),
                                 json_string_length(item))) {
            size_t len = json_string_length(item);

            memcpy(req->candidates[i], json_string_value(item), len);
            req->candidates[i][len] = '\0';
            continue;
        }
        /* The field's name only for the error text. */
        snprintf(name, sizeof(name), "candidates[%zu]", i);
        return take_id(item, name, req->candidates[i], err);
    }
    req->n_candidates = (int)n;
    return DD_OK;
}

/* deadline_ms is a JSON Schema integer: a whole real such as 2000.0 (or
 * 2e3, which jansson reads as a real) counts, as it does for the schema. */
static int take_deadline(const json_t *v, dd_request_t *req,
                         dd_codec_error_t *err) {
    int64_t x = 0;
    int ok = 0;

    if (json_is_integer(v)) {
        x = (int64_t)json_integer_value(v);
        ok = x >= 1 && x <= DD_CODEC_MAX_DEADLINE_MS;
    } else if (json_is_real(v)) {
        double d = json_real_value(v);

        if (d >= 1.0 && d <= (double)DD_CODEC_MAX_DEADLINE_MS) {
            x = (int64_t)d;
            ok = !((double)x < d); /* no fraction was cut off */
        }
    }
    if (!ok) {
        set_err(err, DD_DLQ_SCHEMA,
                "field 'deadline_ms' must be an integer from 1 to %d",
                DD_CODEC_MAX_DEADLINE_MS);
        return DD_ERR;
    }
    req->deadline_ms = x;
    return DD_OK;
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
        case JSON_OBJECT:
            return "an object";
        case JSON_ARRAY:
            return "an array";
        case JSON_STRING:
            return "a string";
        case JSON_INTEGER:
        case JSON_REAL:
            return "a number";
        case JSON_TRUE:
        case JSON_FALSE:
            return "a boolean";
        case JSON_NULL:
            return "null";
    }
    return "a value";
}

/* Validates a parsed document into req; see codec.h for the order. */
static int take_request(const json_t *root, dd_request_t *req,
                        dd_codec_error_t *err) {
    const json_t *courier, *candidates, *v;

    if (!json_is_object(root)) {
        set_err(err, DD_DLQ_SCHEMA, "request must be a JSON object, not %s",
                type_name(root));
        return DD_ERR;
    }
    if (take_required_id(root, "request_id", req->request_id, err) != DD_OK ||
        take_required_id(root, "parcel_id", req->parcel_id, err) != DD_OK)
        return DD_ERR;

    courier = json_object_get(root, "courier_id");
    candidates = json_object_get(root, "candidates");
    if (courier != NULL && candidates != NULL) {
        set_err(err, DD_DLQ_SCHEMA,
                "fields 'courier_id' and 'candidates' must not both be given");
        return DD_ERR;
    }
    if (courier == NULL && candidates == NULL) {
        set_err(err, DD_DLQ_SCHEMA,
                "one of the fields 'courier_id' or 'candidates' is required");
        return DD_ERR;
    }
    if (courier != NULL) {
        if (take_id(courier, "courier_id", req->courier_id, err) != DD_OK)
            return DD_ERR;
    } else if (take_candidates(candidates, req, err) != DD_OK) {
        return DD_ERR;
    }

    v = json_object_get(root, "deadline_ms");
    if (v != NULL && take_deadline(v, req, err) != DD_OK)
        return DD_ERR;
    v = json_object_get(root, "created_at");
    if (v != NULL && !json_is_string(v)) {
        set_err(err, DD_DLQ_SCHEMA, "field 'created_at' must be a string");
        return DD_ERR;
    }
    return DD_OK;
}

/* Empties req: every id "", no candidates, no deadline. Only the parts a
 * reader may look at are written: the candidate slots beyond n_candidates
 * mean nothing, and zeroing all 64 of them (8 KiB) for every request was a
 * measurable part of the worker's CPU. */
static void clear_request(dd_request_t *req) {
    req->request_id[0] = '\0';
    req->parcel_id[0] = '\0';
    req->courier_id[0] = '\0';
    req->n_candidates = 0;
    req->deadline_ms = 0;
}

int dd_codec_parse_request(const char *buf, size_t len, dd_request_t *req,
                           dd_codec_error_t *err) {
    json_error_t jerr;
    json_t *root;
    size_t bad;
    int rc;

    clear_request(req);
    if (err != NULL) { /* as set_err() would, without vsnprintf() */
        err->code = DD_DLQ_NONE;
        err->text[0] = '\0';
    }

    if (len > DD_CODEC_MAX_REQUEST_BYTES) {
        set_err(err, DD_DLQ_TOO_LARGE,
                "request is %zu bytes, more than the %d allowed", len,
                DD_CODEC_MAX_REQUEST_BYTES);
        return DD_ERR;
    }
    /* Checked before jansson so the class does not depend on where the bad
     * byte is (jansson calls one outside a string a syntax error). */
    bad = dd_utf8_invalid_at(buf, len);
    if (bad < len) {
        set_err(err, DD_DLQ_INVALID_UTF8,
                "request is not valid UTF-8 at byte %zu", bad);
        return DD_ERR;
    }

    root = json_loadb(buf, len, DD_CODEC_LOAD_FLAGS, &jerr);
    if (root == NULL) {
        switch (json_error_code(&jerr)) {
            case json_error_out_of_memory:
                dd_panic("out of memory parsing a %zu-byte request", len);
            case json_error_invalid_utf8:
                /* Not reached after dd_utf8_invalid_at(); kept for safety. */
                set_err(err, DD_DLQ_INVALID_UTF8,
                        "request is not valid UTF-8: %s", jerr.text);
                break;
            default:
                set_err(err, DD_DLQ_NOT_JSON,
                        "request is not JSON: %s at byte %d", jerr.text,
                        jerr.position);
                break;
        }
        if (err != NULL)
            dd_codec_sanitize(err->text);
        clear_request(req);
        return DD_ERR;
    }

    rc = take_request(root, req, err);
    json_decref(root);
    if (rc != DD_OK)
        clear_request(req);
    return rc;
}

const char *dd_codec_dlq_class_name(dd_dlq_class_t cls) {
    if ((unsigned)cls >= DD_DLQ__COUNT)
        return "unknown";
    return dlq_class_names[cls];
}

const char *dd_codec_reason_name(dd_reason_t reason) {
    if ((unsigned)reason >= DD_REASON__COUNT)
        return NULL;
    return dd_codec_reasons[reason].wire;
}

int dd_codec_reason_find(const char *s) {
    for (int i = 0; s != NULL && i < DD_REASON__COUNT; i++) {
        if (strcmp(s, dd_codec_reasons[i].wire) == 0)
            return i;
    }
    return -1;
}

int dd_codec_reason_status(dd_reason_t reason) {
    if ((unsigned)reason >= DD_REASON__COUNT)
        return -1;
    return (int)dd_codec_reasons[reason].status;
}

const char *dd_codec_status_name(dd_status_t status) {
    if ((unsigned)status >= DD_CODEC_N_STATUSES)
        return NULL;
    return dd_codec_status_names[status];
}
