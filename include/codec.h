/* SPDX-License-Identifier: MIT */
/*
 * codec: JSON in and out (DESIGN.md section 2). Parses and validates a
 * dispatch request into caller storage, and serialises a result to the
 * compact, byte-deterministic JSON that goes to the result topic and to the
 * `result:{request_id}` record. The contracts are
 * schemas/dispatch_request.schema.json and schemas/assignment.schema.json;
 * tests/data holds the cases that both this code and a JSON Schema validator
 * check (scripts/check-schemas).
 *
 * Request parsing, in order; the first failure decides the error class:
 *   1. more than DD_CODEC_MAX_REQUEST_BYTES bytes: too_large (not parsed);
 *   2. not valid UTF-8 anywhere in the buffer: invalid_utf8;
 *   3. not JSON for jansson: not_json. jansson is stricter than RFC 8259 in
 *      a few places, and those count as not JSON: duplicate object keys
 *      (JSON_REJECT_DUPLICATES: two consumers of one message must not read
 *      different values), a NUL (\u0000) in an object key, an integer
 *      outside int64, a number that overflows a double, a lone UTF-16
 *      surrogate escape, nesting deeper than 2048 values. A raw NUL byte in
 *      the buffer is never valid JSON (a control character in a string, a
 *      bad token elsewhere), so it is not_json too; an escaped \u0000 inside
 *      a string value is accepted (JSON_ALLOW_NUL) and fails the id pattern
 *      if it is in an id. A top-level scalar or array is JSON but not an
 *      object: schema;
 *   4. fields, in this order: request_id, parcel_id, the courier_id /
 *      candidates choice, courier_id, candidates (count, then each item),
 *      deadline_ms, created_at. A wrong type, a missing field, both or
 *      neither of courier_id and candidates, a count or range outside the
 *      limits: schema. An id that is a string but does not match
 *      ^[A-Za-z0-9._:-]{1,128}$: bad_id.
 * deadline_ms follows JSON Schema's idea of an integer: 2000.0 and 2e3 are
 * the integer 2000. created_at must be a string; its date-time format is an
 * annotation, as in draft 2020-12, and is not checked. Unknown fields are
 * ignored.
 *
 * All functions are pure (no I/O, no shared state) and may run on any
 * thread.
 */
#ifndef DD_CODEC_H
#define DD_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define DD_CODEC_MAX_REQUEST_BYTES 65536    /* larger requests: too_large */
#define DD_CODEC_MAX_ID            128      /* bytes of an id */
#define DD_CODEC_MAX_CANDIDATES    64       /* items of candidates */
#define DD_CODEC_MAX_DEADLINE_MS   86400000 /* deadline_ms upper bound */

/* Result reasons: the `reason` field of a result that is not assigned. */
#define DD_REASON_UNKNOWN_COURIER        "unknown_courier"
#define DD_REASON_UNKNOWN_PARCEL         "unknown_parcel"
#define DD_REASON_COURIER_UNAVAILABLE    "courier_unavailable"
#define DD_REASON_NO_CANDIDATE_AVAILABLE "no_candidate_available"
#define DD_REASON_DEADLINE_EXPIRED       "deadline_expired"

/**
 * @brief A parsed, valid request. Caller storage, no heap: about 8.6 KB, so
 *        keep it in a job or on a worker's stack, not in a tight array.
 */
typedef struct dd_request {
    char request_id[DD_CODEC_MAX_ID + 1];
    char parcel_id[DD_CODEC_MAX_ID + 1];
    char courier_id[DD_CODEC_MAX_ID + 1]; /* "" when candidates used */
    char candidates[DD_CODEC_MAX_CANDIDATES][DD_CODEC_MAX_ID + 1];
    int n_candidates;    /* 0 when courier_id used, else 1..64 */
    int64_t deadline_ms; /* ms after the message timestamp; 0 = none */
} dd_request_t;

/**
 * @brief Why a request is rejected to the dead-letter topic. The names
 *        (dd_codec_err_name()) are stable: they label the `dlq_total{reason}`
 *        metric and start the `dispatch.error` header.
 */
typedef enum dd_codec_err {
    DD_CODEC_ERR_NONE,         /* "none": parsed */
    DD_CODEC_ERR_TOO_LARGE,    /* "too_large": over 64 KiB, not parsed */
    DD_CODEC_ERR_INVALID_UTF8, /* "invalid_utf8": bytes are not UTF-8 */
    DD_CODEC_ERR_NOT_JSON,     /* "not_json": jansson cannot parse it */
    DD_CODEC_ERR_SCHEMA,       /* "schema": a type, field or range error */
    DD_CODEC_ERR_BAD_ID,       /* "bad_id": an id string off the pattern */
    /* "record_too_large": a dead letter written reduced (producer) */
    DD_CODEC_ERR_RECORD_TOO_LARGE,
    /* "result_rejected": the broker refused the result (producer) */
    DD_CODEC_ERR_RESULT_REJECTED,
    DD_CODEC_ERR_COUNT, /* number of codes, for label tables */
} dd_codec_err_t;

/** @brief A parse error: the class and one sentence naming the field. */
typedef struct dd_codec_error {
    dd_codec_err_t code;
    char text[256]; /* e.g. "field 'candidates' must have 1 to 64 items" */
} dd_codec_error_t;

/** @brief The status of a result. */
typedef enum dd_status {
    DD_STATUS_ASSIGNED, /* "assigned" */
    DD_STATUS_REJECTED, /* "rejected" */
    DD_STATUS_EXPIRED,  /* "expired" */
} dd_status_t;

/**
 * @brief A result to serialise. Caller storage. The route numbers and
 *        eta_cached are written only when assigned; reason only when not.
 */
typedef struct dd_result {
    char request_id[DD_CODEC_MAX_ID + 1];
    dd_status_t status;
    const char *reason; /* a DD_REASON_* string, or NULL when assigned */
    char parcel_id[DD_CODEC_MAX_ID + 1];
    char courier_id[DD_CODEC_MAX_ID + 1]; /* "" = omit */
    int64_t eta_seconds;                  /* s, >= 0 */
    int64_t pickup_eta_seconds;           /* s, >= 0 */
    int64_t distance_m;                   /* m, >= 0 */
    int eta_cached;                       /* 0 or 1 */
    char source_topic[250];               /* Kafka topic names: <= 249 */
    int32_t source_partition;             /* >= 0 */
    int64_t source_offset;                /* >= 0 */
    int64_t processed_at_ms;              /* wall clock, ms since epoch */
} dd_result_t;

/*----- Requests -----*/

/**
 * @brief Parse and validate a request (see the file comment for the rules
 *        and the order of checks).
 * @param buf (borrowed) the message value; need not be NUL-terminated and
 *        may contain NUL bytes
 * @param len length of buf in bytes
 * @param req (borrowed) receives the request; zeroed first, so on failure it
 *        holds nothing usable
 * @param err (borrowed, optional) receives the error class and text; on
 *        success code is DD_CODEC_ERR_NONE and text is ""
 * @returns DD_OK, or DD_ERR when the request can never succeed (dead letter)
 * @locality any thread
 */
int dd_codec_parse_request(const char *buf, size_t len, dd_request_t *req,
                           dd_codec_error_t *err);

/**
 * @brief The stable snake_case name of an error class ("too_large",
 *        "invalid_utf8", "not_json", "schema", "bad_id", "none").
 * @returns a static string; "unknown" for a value outside the enum
 * @locality any thread
 */
const char *dd_codec_err_name(dd_codec_err_t code);

/*----- Results -----*/

/**
 * @brief The name of a status ("assigned", "rejected", "expired").
 * @returns a static string; NULL for a value outside the enum
 * @locality any thread
 */
const char *dd_codec_status_name(dd_status_t status);

/**
 * @brief Serialise a result as compact JSON with a fixed field order:
 *        request_id, status, reason (not assigned), parcel_id, courier_id
 *        (when not ""), eta_seconds, pickup_eta_seconds, distance_m,
 *        eta_cached (these four when assigned), source {topic, partition,
 *        offset}, processed_at (ISO-8601 UTC with ms). The same result always
 *        gives the same bytes.
 * @param res (borrowed) the result
 * @param lenp (borrowed, optional) receives the length, without the NUL
 * @returns owned NUL-terminated JSON: free it with dd_free() (it is a
 *          dd_xmalloc() copy, not jansson's json_dumps() buffer); NULL when
 *          res would break schemas/assignment.schema.json: an unknown
 *          status, a reason that is missing or not a DD_REASON_* when not
 *          assigned (expired needs DD_REASON_DEADLINE_EXPIRED, rejected any
 *          other), an id that is not a valid id, an empty courier_id when
 *          assigned, an empty topic, a negative number; or when jansson runs
 *          out of memory. reason is ignored when assigned.
 * @locality any thread
 */
char *dd_codec_result_json(const dd_result_t *res, size_t *lenp);

#endif /* DD_CODEC_H */
