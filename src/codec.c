/* SPDX-License-Identifier: MIT */
/*
 * codec: request parsing and validation with jansson, result
 * serialisation with a small fixed-shape writer. The rules, and why they
 * are what they are, are in codec.h; the contracts are the two JSON Schemas
 * in schemas/. No I/O and no shared state.
 *
 * Why our own writer when jansson is at hand: results are on the hot path
 * (one per ranked candidate and one fallback per request, though one is
 * published), through jansson they cost a third of the worker's CPU
 * (measured with callgrind, tests/bench/callgrind-dispatch), and their shape
 * is fixed with values checked first, so the writer is a few lines of
 * copying with one escaping routine, for the topic. It writes the bytes
 * jansson wrote; test_codec.c keeps jansson as the reference and compares.
 *
 * Out of memory inside jansson panics, as dd_xmalloc() does: dead-lettering
 * a good request because malloc failed once would lose it.
 */
#include "codec.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* Flags for json_loadb(); see codec.h for why each one is there. */
#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL)

/* 9999-12-31T23:59:59.999Z: processed_at must keep a 4-digit year. */
#define MAX_WALL_MS 253402300799999LL

static const char *const dlq_class_names[DD_DLQ__COUNT] = {
    [DD_DLQ_NONE] = "none",
#define NAME_(id, label, meaning) [DD_DLQ_##id] = (label),
    DD_DLQ_CLASS_MAP(NAME_)
#undef NAME_
};

static const struct {
    const char *wire;
    dd_status_t status;
} reasons[DD_REASON__COUNT] = {
#define ROW_(id, wire, status, meaning)                                        \
    [DD_REASON_ID_##id] = {(wire), DD_STATUS_##status},
    DD_REASON_MAP(ROW_)
#undef ROW_
};

static const char *const status_names[] = {
    [DD_STATUS_ASSIGNED] = "assigned",
    [DD_STATUS_REJECTED] = "rejected",
    [DD_STATUS_EXPIRED] = "expired",
};

#define N_STATUSES (sizeof(status_names) / sizeof(status_names[0]))

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
static void sanitize(char *text) {
    for (unsigned char *p = (unsigned char *)text; *p != '\0'; p++) {
        if (*p < 0x20 || *p >= 0x7f)
            *p = '?';
    }
}

/* True when the len bytes at s match ^[A-Za-z0-9._:-]{1,128}$. */
static int id_bytes_ok(const char *s, size_t len) {
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
static int id_ok(const char *s) {
    return id_bytes_ok(s, strnlen(s, DD_CODEC_MAX_ID + 1));
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
    if (!id_bytes_ok(s, len)) {
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
            id_bytes_ok(json_string_value(item), json_string_length(item))) {
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

    root = json_loadb(buf, len, LOAD_FLAGS, &jerr);
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
            sanitize(err->text);
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
    return reasons[reason].wire;
}

int dd_codec_reason_find(const char *s) {
    for (int i = 0; s != NULL && i < DD_REASON__COUNT; i++) {
        if (strcmp(s, reasons[i].wire) == 0)
            return i;
    }
    return -1;
}

int dd_codec_reason_status(dd_reason_t reason) {
    if ((unsigned)reason >= DD_REASON__COUNT)
        return -1;
    return (int)reasons[reason].status;
}

const char *dd_codec_status_name(dd_status_t status) {
    if ((unsigned)status >= N_STATUSES)
        return NULL;
    return status_names[status];
}

/* True when res can be written without breaking assignment.schema.json. */
static int result_ok(const dd_result_t *res) {
    size_t topic_len = strnlen(res->source_topic, sizeof(res->source_topic));

    if ((unsigned)res->status >= N_STATUSES || !id_ok(res->request_id) ||
        !id_ok(res->parcel_id) ||
        (res->courier_id[0] != '\0' && !id_ok(res->courier_id)) ||
        topic_len == 0 || topic_len == sizeof(res->source_topic) ||
        dd_utf8_invalid_at(res->source_topic, topic_len) < topic_len ||
        res->source_partition < 0 || res->source_offset < 0 ||
        res->processed_at_ms < 0 || res->processed_at_ms > MAX_WALL_MS)
        return 0;

    switch (res->status) {
        case DD_STATUS_ASSIGNED:
            return res->courier_id[0] != '\0' && res->eta_seconds >= 0 &&
                   res->pickup_eta_seconds >= 0 && res->distance_m >= 0;
        case DD_STATUS_EXPIRED:
        case DD_STATUS_REJECTED: {
            int r = dd_codec_reason_find(res->reason);

            return r >= 0 && reasons[r].status == res->status;
        }
    }
    return 0;
}

/*----- Result writer -----*/

/*
 * Results are written by hand, not through jansson: one document is built
 * for every ranked candidate and for the fallback of every request (the
 * reserve-and-record script picks one), and through jansson that was a
 * third of the worker's CPU (json_object_set_new(), json_dumpb(), the
 * integers through snprintf). The shape is fixed (DESIGN.md section 2,
 * schemas/assignment.schema.json) and result_ok() has checked every value
 * first: the ids match ^[A-Za-z0-9._:-]{1,128}$ and need no escaping, the
 * status and reason are fixed enum strings, the numbers are integers >= 0,
 * processed_at is digits and separators. Only the topic (any valid UTF-8
 * from the configuration) is escaped, exactly as jansson escapes a string
 * without JSON_ENSURE_ASCII or JSON_ESCAPE_SLASH. The bytes are those
 * jansson wrote with JSON_COMPACT | JSON_PRESERVE_ORDER: test_codec.c
 * compares the two writers on many generated results.
 */

/* Bytes of a result but the topic: keys, separators, three ids, the
 * longest status and reason, five 20-digit numbers and processed_at. */
#define RESULT_FIXED_MAX 1024

typedef struct wbuf {
    char *p; /* next byte */
} wbuf_t;

static void w_mem(wbuf_t *w, const char *s, size_t len) {
    memcpy(w->p, s, len);
    w->p += len;
}

/* A string literal (its size is known at compile time). */
#define W_LIT(w, lit) w_mem((w), (lit), sizeof(lit) - 1)

static void w_str(wbuf_t *w, const char *s) {
    w_mem(w, s, strlen(s));
}

/* A JSON string that needs no escaping (an id or an enum string). */
static void w_plain(wbuf_t *w, const char *s) {
    *w->p++ = '"';
    w_str(w, s);
    *w->p++ = '"';
}

/* A JSON string escaped as jansson's dump_string() does without
 * JSON_ENSURE_ASCII and JSON_ESCAPE_SLASH: \" \\ \b \f \n \r \t, other
 * control characters as \u00XX (upper-case hex), everything else (valid
 * UTF-8, checked by result_ok()) as is. */
static void w_escaped(wbuf_t *w, const char *s) {
    static const char hex[] = "0123456789ABCDEF";

    *w->p++ = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        char e = 0;

        if (*c >= 0x20 && *c != '"' && *c != '\\') {
            *w->p++ = (char)*c;
            continue;
        }
        switch (*c) {
            case '"':
                e = '"';
                break;
            case '\\':
                e = '\\';
                break;
            case '\b':
                e = 'b';
                break;
            case '\f':
                e = 'f';
                break;
            case '\n':
                e = 'n';
                break;
            case '\r':
                e = 'r';
                break;
            case '\t':
                e = 't';
                break;
            default:
                break;
        }
        *w->p++ = '\\';
        if (e != 0) {
            *w->p++ = e;
            continue;
        }
        W_LIT(w, "u00");
        *w->p++ = hex[*c >> 4];
        *w->p++ = hex[*c & 0xf];
    }
    *w->p++ = '"';
}

/* A decimal integer >= 0, as "%lld" writes it. */
static void w_uint(wbuf_t *w, int64_t v) {
    char tmp[20];
    size_t n = 0;
    uint64_t u = (uint64_t)v;

    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    w_mem(w, tmp + sizeof(tmp) - n, n);
}

/* n decimal digits of v, zero-padded. */
static void w_digits(wbuf_t *w, unsigned v, int n) {
    for (int i = n - 1; i >= 0; i--) {
        w->p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    w->p += n;
}

/* processed_at: wall_ms (0 .. MAX_WALL_MS) as YYYY-MM-DDTHH:MM:SS.mmmZ,
 * the bytes dd_format_iso8601() writes, without gmtime_r() and snprintf()
 * (the civil date of a day count: H. Hinnant's days_from_civil inverse,
 * proleptic Gregorian, as gmtime_r()). */
static void w_time(wbuf_t *w, int64_t wall_ms) {
    int64_t secs = wall_ms / 1000, days = secs / 86400;
    unsigned ms = (unsigned)(wall_ms % 1000), sod = (unsigned)(secs % 86400);
    int64_t z = days + 719468, era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned day = doy - (153 * mp + 2) / 5 + 1;
    unsigned month = mp < 10 ? mp + 3 : mp - 9;
    unsigned year = (unsigned)(yoe + era * 400) + (month <= 2);

    *w->p++ = '"';
    w_digits(w, year, 4);
    *w->p++ = '-';
    w_digits(w, month, 2);
    *w->p++ = '-';
    w_digits(w, day, 2);
    *w->p++ = 'T';
    w_digits(w, sod / 3600, 2);
    *w->p++ = ':';
    w_digits(w, sod / 60 % 60, 2);
    *w->p++ = ':';
    w_digits(w, sod % 60, 2);
    *w->p++ = '.';
    w_digits(w, ms, 3);
    W_LIT(w, "Z\"");
}

char *dd_codec_result_json(const dd_result_t *res, size_t *lenp) {
    int assigned = res->status == DD_STATUS_ASSIGNED;
    /* An escaped topic: at most 6 bytes (\u00XX) per input byte. */
    char buf[RESULT_FIXED_MAX + 6 * sizeof(res->source_topic)];
    wbuf_t w = {buf};
    size_t size;
    char *out;

    if (lenp != NULL)
        *lenp = 0;
    if (!result_ok(res))
        return NULL;

    /* The field order is the output order (DESIGN.md section 2). */
    W_LIT(&w, "{\"request_id\":");
    w_plain(&w, res->request_id);
    W_LIT(&w, ",\"status\":");
    w_plain(&w, status_names[res->status]);
    if (!assigned) {
        W_LIT(&w, ",\"reason\":");
        w_plain(&w, res->reason);
    }
    W_LIT(&w, ",\"parcel_id\":");
    w_plain(&w, res->parcel_id);
    if (res->courier_id[0] != '\0') {
        W_LIT(&w, ",\"courier_id\":");
        w_plain(&w, res->courier_id);
    }
    if (assigned) {
        W_LIT(&w, ",\"eta_seconds\":");
        w_uint(&w, res->eta_seconds);
        W_LIT(&w, ",\"pickup_eta_seconds\":");
        w_uint(&w, res->pickup_eta_seconds);
        W_LIT(&w, ",\"distance_m\":");
        w_uint(&w, res->distance_m);
        if (res->eta_cached)
            W_LIT(&w, ",\"eta_cached\":true");
        else
            W_LIT(&w, ",\"eta_cached\":false");
    }
    W_LIT(&w, ",\"source\":{\"topic\":");
    w_escaped(&w, res->source_topic);
    W_LIT(&w, ",\"partition\":");
    w_uint(&w, res->source_partition);
    W_LIT(&w, ",\"offset\":");
    w_uint(&w, res->source_offset);
    W_LIT(&w, "},\"processed_at\":");
    w_time(&w, res->processed_at_ms);
    *w.p++ = '}';

    size = (size_t)(w.p - buf);
    dd_assert(size < sizeof(buf));
    out = dd_xmalloc(size + 1);
    memcpy(out, buf, size);
    out[size] = '\0';
    if (lenp != NULL)
        *lenp = size;
    return out;
}

int dd_codec_result_outcome(const char *buf, size_t len, dd_status_t *status,
                            const char **reason) {
    json_t *root = json_loadb(buf, len, 0, NULL);
    const char *s = json_string_value(json_object_get(root, "status"));
    const char *r = json_string_value(json_object_get(root, "reason"));
    int rc = DD_ERR;

    *status = DD_STATUS_REJECTED;
    *reason = NULL;
    if (s != NULL && strcmp(s, "assigned") == 0) {
        *status = DD_STATUS_ASSIGNED;
        rc = DD_OK;
    } else if (s != NULL && strcmp(s, "expired") == 0) {
        *status = DD_STATUS_EXPIRED;
        rc = DD_OK;
    } else if (s != NULL && strcmp(s, "rejected") == 0) {
        rc = DD_OK;
    }
    /* NULL when r is not a reason: dd_codec_reason_find() gives -1. */
    *reason = dd_codec_reason_name((dd_reason_t)dd_codec_reason_find(r));
    json_decref(root);
    return rc;
}

/*----- Stored result validation -----*/

/* One check of dd_codec_result_check(): why gets the sentence when false. */
typedef struct check {
    char *why;
    size_t why_size;
} check_t;

static int refuse(check_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int refuse(check_t *c, const char *fmt, ...) {
    va_list ap;

    if (c->why != NULL && c->why_size > 0) {
        va_start(ap, fmt);
        vsnprintf(c->why, c->why_size, fmt, ap);
        va_end(ap);
        sanitize(c->why);
    }
    return 0;
}

static int id_field_ok(const json_t *obj, const char *name, int required,
                       check_t *c) {
    const json_t *v = json_object_get(obj, name);

    if (v == NULL)
        return required ? refuse(c, "field '%s' is missing", name) : 1;
    if (!json_is_string(v) ||
        !id_bytes_ok(json_string_value(v), json_string_length(v)))
        return refuse(c, "field '%s' is not an id", name);
    return 1;
}

/* A JSON integer >= 0 (dispatchd never writes 2.0 for 2). */
static int count_field_ok(const json_t *obj, const char *name, check_t *c) {
    const json_t *v = json_object_get(obj, name);

    if (v == NULL)
        return refuse(c, "field '%s' is missing", name);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return refuse(c, "field '%s' is not an integer >= 0", name);
    return 1;
}

/* Two decimal digits at s as a number, or -1. */
static int two_digits(const char *s) {
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return -1;
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* YYYY-MM-DDTHH:MM:SS.mmmZ naming a real instant (the schema's pattern
 * and date-time format). */
static int timestamp_ok(const char *s, size_t len) {
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    static const int mdays[12] = {31, 29, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    int year, month, day;

    if (len != sizeof(shape) - 1)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return 0;
    }
    year = two_digits(s) * 100 + two_digits(s + 2);
    month = two_digits(s + 5);
    day = two_digits(s + 8);
    if (month < 1 || month > 12 || day < 1 || day > mdays[month - 1])
        return 0;
    if (month == 2 && day == 29 &&
        !(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
        return 0;
    return two_digits(s + 11) <= 23 && two_digits(s + 14) <= 59 &&
           two_digits(s + 17) <= 60;
}

static int source_ok(const json_t *src, check_t *c) {
    const json_t *topic = json_object_get(src, "topic");
    const char *key;
    const json_t *v;

    if (!json_is_object(src))
        return refuse(c, "field 'source' is not an object");
    json_object_foreach((json_t *)src, key, v) {
        if (strcmp(key, "topic") != 0 && strcmp(key, "partition") != 0 &&
            strcmp(key, "offset") != 0)
            return refuse(c, "field 'source' has an unknown field");
    }
    if (!json_is_string(topic) || json_string_length(topic) == 0)
        return refuse(c, "field 'source.topic' is not a non-empty string");
    return count_field_ok(src, "partition", c) &&
           count_field_ok(src, "offset", c);
}

/* The checks of assignment.schema.json on a parsed document. */
static int stored_result_ok(const json_t *root, const char *request_id,
                            dd_status_t *status, const char **reason,
                            check_t *c) {
    static const char *const known[] = {"request_id",
                                        "status",
                                        "reason",
                                        "parcel_id",
                                        "courier_id",
                                        "eta_seconds",
                                        "pickup_eta_seconds",
                                        "distance_m",
                                        "eta_cached",
                                        "source",
                                        "processed_at"};
    static const char *const route[] = {"eta_seconds", "pickup_eta_seconds",
                                        "distance_m", "eta_cached"};
    const char *key, *s;
    const json_t *v;
    int st = -1, r;

    if (!json_is_object(root))
        return refuse(c, "not a JSON object");
    json_object_foreach((json_t *)root, key, v) {
        size_t k = 0;

        while (k < sizeof(known) / sizeof(known[0]) &&
               strcmp(key, known[k]) != 0)
            k++;
        if (k == sizeof(known) / sizeof(known[0]))
            return refuse(c, "unknown field '%.64s'", key);
    }
    if (!id_field_ok(root, "request_id", 1, c))
        return 0;
    if (request_id != NULL &&
        strcmp(json_string_value(json_object_get(root, "request_id")),
               request_id) != 0)
        return refuse(c, "field 'request_id' names another request");
    s = json_string_value(json_object_get(root, "status"));
    for (size_t i = 0; s != NULL && i < N_STATUSES; i++)
        if (strcmp(s, status_names[i]) == 0)
            st = (int)i;
    if (st < 0)
        return refuse(c, "field 'status' is not a status");
    if (!id_field_ok(root, "parcel_id", 1, c) ||
        !id_field_ok(root, "courier_id", st == DD_STATUS_ASSIGNED, c))
        return 0;

    v = json_object_get(root, "reason");
    r = dd_codec_reason_find(json_string_value(v));
    if (st == DD_STATUS_ASSIGNED) {
        if (v != NULL)
            return refuse(c, "an assigned result has a reason");
        if (!count_field_ok(root, "eta_seconds", c) ||
            !count_field_ok(root, "pickup_eta_seconds", c) ||
            !count_field_ok(root, "distance_m", c))
            return 0;
        if (!json_is_boolean(json_object_get(root, "eta_cached")))
            return refuse(c, "field 'eta_cached' is not a boolean");
    } else {
        if (r < 0 || reasons[r].status != (dd_status_t)st)
            return refuse(c, "field 'reason' is not a reason of status %s",
                          status_names[st]);
        for (size_t i = 0; i < sizeof(route) / sizeof(route[0]); i++)
            if (json_object_get(root, route[i]) != NULL)
                return refuse(c, "a %s result has field '%s'", status_names[st],
                              route[i]);
    }
    if (!source_ok(json_object_get(root, "source"), c))
        return 0;
    v = json_object_get(root, "processed_at");
    if (!json_is_string(v) ||
        !timestamp_ok(json_string_value(v), json_string_length(v)))
        return refuse(c, "field 'processed_at' is not a UTC time with ms");

    if (status != NULL)
        *status = (dd_status_t)st;
    if (reason != NULL)
        *reason = st == DD_STATUS_ASSIGNED ? NULL : reasons[r].wire;
    return 1;
}

int dd_codec_result_check(const char *buf, size_t len, const char *request_id,
                          dd_status_t *status, const char **reason, char *why,
                          size_t why_size) {
    check_t c = {why, why_size};
    json_error_t jerr;
    json_t *root;
    int ok;

    if (why != NULL && why_size > 0)
        why[0] = '\0';
    root = json_loadb(buf, len, LOAD_FLAGS, &jerr);
    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            dd_panic("out of memory parsing a %zu-byte stored result", len);
        refuse(&c, "not JSON: %s at byte %d", jerr.text, jerr.position);
        return DD_ERR;
    }
    ok = stored_result_ok(root, request_id, status, reason, &c);
    json_decref(root);
    return ok ? DD_OK : DD_ERR;
}
