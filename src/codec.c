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
 *
 * A plain reader runs first, because building a jansson tree (a hash table
 * and an allocation per value) was the largest part of a worker's CPU per
 * request. It takes only what it understands fully: one object of printable
 * ASCII without escapes, whose keys are distinct, whose ids are valid,
 * whose candidates are an array of valid ids, whose deadline_ms is a plain
 * integer in range, whose created_at and unknown fields are strings, with
 * exactly one of courier_id and candidates. Such a document is valid JSON
 * that jansson reads into the same request, so the plain reader fills req
 * exactly as the jansson path would. Anything else, every error included,
 * goes to the jansson path, so error classes and texts come from one place.
 * tests/unit/test_codec.c checks the two readers against each other.
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

/*----- The plain reader -----*/

/* The fields the reader knows, as bits of a seen-mask. */
enum {
    F_REQUEST_ID = 1 << 0,
    F_PARCEL_ID = 1 << 1,
    F_COURIER_ID = 1 << 2,
    F_CANDIDATES = 1 << 3,
    F_DEADLINE_MS = 1 << 4,
    F_CREATED_AT = 1 << 5,
};

#define PLAIN_MAX_UNKNOWN 8 /* more unknown fields: the jansson path */

/* A reading position: p up to end. */
typedef struct plain {
    const char *p, *end;
} plain_t;

static void plain_ws(plain_t *r) {
    while (r->p < r->end &&
           (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

/* Takes the character c after blanks; 1 when it was there. */
static int plain_char(plain_t *r, char c) {
    plain_ws(r);
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return 1;
    }
    return 0;
}

/* A string of printable ASCII without escapes: *s and *len its bytes.
 * 0 for anything else. */
static int plain_string(plain_t *r, const char **s, size_t *len) {
    const char *q;

    if (!plain_char(r, '"'))
        return 0;
    for (q = r->p; q < r->end && *q != '"'; q++)
        if (*q < 0x20 || *q > 0x7e || *q == '\\')
            return 0;
    if (q == r->end)
        return 0;
    *s = r->p;
    *len = (size_t)(q - r->p);
    r->p = q + 1;
    return 1;
}

/* A valid id string, copied into out (DD_CODEC_MAX_ID + 1 bytes). */
static int plain_id(plain_t *r, char *out) {
    const char *s;
    size_t len;

    if (!plain_string(r, &s, &len) || !dd_codec_id_bytes_ok(s, len))
        return 0;
    memcpy(out, s, len);
    out[len] = '\0';
    return 1;
}

/* 1 to DD_CODEC_MAX_CANDIDATES valid ids in an array. */
static int plain_candidates(plain_t *r, dd_request_t *req) {
    int n = 0;

    if (!plain_char(r, '['))
        return 0;
    do {
        if (n == DD_CODEC_MAX_CANDIDATES || !plain_id(r, req->candidates[n]))
            return 0;
        n++;
    } while (plain_char(r, ','));
    if (!plain_char(r, ']'))
        return 0;
    req->n_candidates = n;
    return 1;
}

/* An integer without sign, fraction or exponent, from 1 to
 * DD_CODEC_MAX_DEADLINE_MS; a leading zero is no JSON. */
static int plain_deadline(plain_t *r, dd_request_t *req) {
    int64_t x = 0;
    int digits = 0;

    plain_ws(r);
    if (r->p == r->end || *r->p < '1' || *r->p > '9')
        return 0;
    for (; r->p < r->end && *r->p >= '0' && *r->p <= '9'; r->p++) {
        if (++digits > 9) /* 86400000 has 8 */
            return 0;
        x = x * 10 + (*r->p - '0');
    }
    if (r->p < r->end && (*r->p == '.' || *r->p == 'e' || *r->p == 'E'))
        return 0;
    if (x > DD_CODEC_MAX_DEADLINE_MS)
        return 0;
    req->deadline_ms = x;
    return 1;
}

/* The bit of a known field name, 0 for an unknown one. */
static int plain_field(const char *k, size_t len) {
    static const struct {
        const char *name;
        size_t len;
        int bit;
    } fields[] = {
        {"request_id", 10, F_REQUEST_ID},   {"parcel_id", 9, F_PARCEL_ID},
        {"courier_id", 10, F_COURIER_ID},   {"candidates", 10, F_CANDIDATES},
        {"deadline_ms", 11, F_DEADLINE_MS}, {"created_at", 10, F_CREATED_AT},
    };

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (fields[i].len == len && memcmp(fields[i].name, k, len) == 0)
            return fields[i].bit;
    return 0;
}

/* One member's value, by its field bit (0: an unknown field). */
static int plain_value(plain_t *r, int bit, dd_request_t *req) {
    const char *s;
    size_t len;

    switch (bit) {
        case F_REQUEST_ID:
            return plain_id(r, req->request_id);
        case F_PARCEL_ID:
            return plain_id(r, req->parcel_id);
        case F_COURIER_ID:
            return plain_id(r, req->courier_id);
        case F_CANDIDATES:
            return plain_candidates(r, req);
        case F_DEADLINE_MS:
            return plain_deadline(r, req);
        default: /* created_at, or an unknown field */
            return plain_string(r, &s, &len);
    }
}

int dd_codec_parse_plain(const char *buf, size_t len, dd_request_t *req) {
    plain_t r = {buf, buf + len};
    const char *unknown[PLAIN_MAX_UNKNOWN];
    size_t unknown_len[PLAIN_MAX_UNKNOWN];
    int seen = 0, nunknown = 0;

    if (!plain_char(&r, '{'))
        return 0;
    do {
        const char *k;
        size_t klen;
        int bit;

        if (!plain_string(&r, &k, &klen) || !plain_char(&r, ':'))
            return 0;
        bit = plain_field(k, klen);
        if (bit != 0) {
            if (seen & bit) /* a duplicate key */
                return 0;
            seen |= bit;
        } else {
            if (nunknown == PLAIN_MAX_UNKNOWN)
                return 0;
            for (int i = 0; i < nunknown; i++)
                if (unknown_len[i] == klen && memcmp(unknown[i], k, klen) == 0)
                    return 0;
            unknown[nunknown] = k;
            unknown_len[nunknown++] = klen;
        }
        if (!plain_value(&r, bit, req))
            return 0;
    } while (plain_char(&r, ','));
    if (!plain_char(&r, '}'))
        return 0;
    plain_ws(&r);
    if (r.p != r.end)
        return 0;
    /* Both ids, and exactly one of courier_id and candidates. */
    if ((seen & (F_REQUEST_ID | F_PARCEL_ID)) != (F_REQUEST_ID | F_PARCEL_ID) ||
        !(seen & F_COURIER_ID) == !(seen & F_CANDIDATES))
        return 0;
    return 1;
}

/*----- The jansson path -----*/

int dd_codec_parse_json(const char *buf, size_t len, dd_request_t *req,
                        dd_codec_error_t *err) {
    json_error_t jerr;
    json_t *root;
    size_t bad;
    int rc;

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

int dd_codec_parse_request(const char *buf, size_t len, dd_request_t *req,
                           dd_codec_error_t *err) {
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
    if (dd_codec_parse_plain(buf, len, req))
        return DD_OK;
    clear_request(req);
    return dd_codec_parse_json(buf, len, req, err);
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
