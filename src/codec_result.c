/* SPDX-License-Identifier: MIT */
/*
 * codec_result: the result side of the codec: checks a dd_result_t before
 * it is written, writes it with the fixed-shape writer below, reads the
 * outcome of a result back and validates a result stored in Redis against
 * schemas/assignment.schema.json. Request parsing is in codec.c; the two
 * files share the id rule and the name tables through codec_int.h, and the
 * public API of both stays one header, include/codec.h, as it is the
 * codec's one interface. No I/O and no shared state.
 *
 * Why our own writer when jansson is at hand: results are on the hot path
 * (one per ranked candidate and one fallback per request, though one is
 * published), through jansson they cost a third of the worker's CPU
 * (measured with callgrind, tests/bench/callgrind-dispatch), and their shape
 * is fixed with values checked first, so the writer is a few lines of
 * copying with one escaping routine, for the topic. It writes the bytes
 * jansson wrote; test_codec.c keeps jansson as the reference and compares.
 */
#include "codec.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec_int.h"
#include "util.h"
/* True when res can be written without breaking assignment.schema.json. */
static int result_ok(const dd_result_t *res) {
    size_t topic_len = strnlen(res->source_topic, sizeof(res->source_topic));

    if ((unsigned)res->status >= DD_CODEC_N_STATUSES ||
        !dd_codec_id_ok(res->request_id) || !dd_codec_id_ok(res->parcel_id) ||
        (res->courier_id[0] != '\0' && !dd_codec_id_ok(res->courier_id)) ||
        topic_len == 0 || topic_len == sizeof(res->source_topic) ||
        dd_utf8_invalid_at(res->source_topic, topic_len) < topic_len ||
        res->source_partition < 0 || res->source_offset < 0 ||
        res->processed_at_ms < 0 || res->processed_at_ms > DD_CODEC_MAX_WALL_MS)
        return 0;

    switch (res->status) {
        case DD_STATUS_ASSIGNED:
            return res->courier_id[0] != '\0' && res->eta_seconds >= 0 &&
                   res->pickup_eta_seconds >= 0 && res->distance_m >= 0;
        case DD_STATUS_EXPIRED:
        case DD_STATUS_REJECTED: {
            int r = dd_codec_reason_find(res->reason);

            return r >= 0 && dd_codec_reasons[r].status == res->status;
        }
    }
    return 0;
}

/*----- Result writer -----*/

/*
 * Results are written by hand, not through jansson: one document is built
 * for every request, and through jansson that was (when one was built per
 * ranked candidate) a third of the worker's CPU (json_object_set_new(),
 * json_dumpb(), the integers through snprintf). The shape is fixed (DESIGN.md
 * section 2, schemas/assignment.schema.json) and result_ok() has checked every
 * value first: the ids match ^[A-Za-z0-9._:-]{1,128}$ and need no escaping, the
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

/* processed_at: wall_ms (0 .. DD_CODEC_MAX_WALL_MS) as
 * YYYY-MM-DDTHH:MM:SS.mmmZ, the bytes dd_format_iso8601() writes, without
 * gmtime_r() and snprintf() (the civil date of a day count: H. Hinnant's
 * days_from_civil inverse, proleptic Gregorian, as gmtime_r()). */
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
    w_plain(&w, dd_codec_status_names[res->status]);
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
        dd_codec_sanitize(c->why);
    }
    return 0;
}

static int id_field_ok(const json_t *obj, const char *name, int required,
                       check_t *c) {
    const json_t *v = json_object_get(obj, name);

    if (v == NULL)
        return required ? refuse(c, "field '%s' is missing", name) : 1;
    if (!json_is_string(v) ||
        !dd_codec_id_bytes_ok(json_string_value(v), json_string_length(v)))
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
    for (size_t i = 0; s != NULL && i < DD_CODEC_N_STATUSES; i++)
        if (strcmp(s, dd_codec_status_names[i]) == 0)
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
        if (r < 0 || dd_codec_reasons[r].status != (dd_status_t)st)
            return refuse(c, "field 'reason' is not a reason of status %s",
                          dd_codec_status_names[st]);
        for (size_t i = 0; i < sizeof(route) / sizeof(route[0]); i++)
            if (json_object_get(root, route[i]) != NULL)
                return refuse(c, "a %s result has field '%s'",
                              dd_codec_status_names[st], route[i]);
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
        *reason = st == DD_STATUS_ASSIGNED ? NULL : dd_codec_reasons[r].wire;
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
    root = json_loadb(buf, len, DD_CODEC_LOAD_FLAGS, &jerr);
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
