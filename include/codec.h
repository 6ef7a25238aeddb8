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

/*
 * Result reasons: the `reason` field of a result that is not assigned.
 * DD_REASON_MAP(X) is the one list; each row is
 *   X(ID, "wire string", STATUS, "meaning")
 * where STATUS is the dd_status_t suffix the reason goes with (REJECTED or
 * EXPIRED). The enum dd_reason_t (DD_REASON_ID_<ID>), the names, the
 * validation of a result and the README check all read this list, so a new
 * reason is one row here (plus its case in schemas/assignment.schema.json).
 * The rejected rows come first and keep their order: replay summaries count
 * them by index.
 */
#define DD_REASON_MAP(X)                                                       \
    X(UNKNOWN_COURIER, "unknown_courier", REJECTED,                            \
      "the courier_id is not a known courier")                                 \
    X(UNKNOWN_PARCEL, "unknown_parcel", REJECTED,                              \
      "the parcel_id is not a known parcel")                                   \
    X(COURIER_UNAVAILABLE, "courier_unavailable", REJECTED,                    \
      "the requested courier is busy, offline or reserved")                    \
    X(NO_CANDIDATE_AVAILABLE, "no_candidate_available", REJECTED,              \
      "no candidate courier is free")                                          \
    X(COURIER_DATA_INVALID, "courier_data_invalid", REJECTED,                  \
      "the courier's record exists but holds invalid data")                    \
    X(PARCEL_DATA_INVALID, "parcel_data_invalid", REJECTED,                    \
      "the parcel's record exists but holds invalid data")                     \
    X(DEADLINE_EXPIRED, "deadline_expired", EXPIRED,                           \
      "deadline_ms passed before the request was answered")

/** @brief A result reason, one per DD_REASON_MAP row. */
typedef enum dd_reason {
#define DD_REASON_ENUM_(id, wire, status, meaning) DD_REASON_ID_##id,
    DD_REASON_MAP(DD_REASON_ENUM_)
#undef DD_REASON_ENUM_
        DD_REASON__COUNT
} dd_reason_t;

/** @brief The wire string of a reason, by row id: DD_REASON(UNKNOWN_PARCEL). */
#define DD_REASON(id) dd_codec_reason_name(DD_REASON_ID_##id)

/*
 * Dead-letter classes: why an input record goes to the dead-letter topic.
 * DD_DLQ_CLASS_MAP(X) is the one list; each row is
 *   X(ID, "label", "meaning")
 * The label is stable: it labels `dlq_total{reason}` and is the
 * `dispatch.error.class` header (and starts `dispatch.error` when there is
 * no text). The enum dd_dlq_class_t (DD_DLQ_<ID>), the dlq_total series
 * (each rendered, at 0 until used) and the README check read this list, so
 * a new class is one row here.
 *
 * The first five are request parse errors (see the order above), set by
 * the worker. record_too_large and result_rejected are set by the producer
 * (src/producer.c): a dead letter written reduced because it was over a size
 * limit (it is also counted under its original class), and a result the
 * broker refused permanently. store_data_error is a per-request Redis data
 * error (WRONGTYPE, a reply that cannot be parsed) or a stored result
 * (result:{request_id}) that is not a valid result of the request: the
 * ledger is corrupted and is not republished (dispatch.h).
 */
#define DD_DLQ_CLASS_MAP(X)                                                    \
    X(TOO_LARGE, "too_large", "over 64 KiB, not parsed")                       \
    X(INVALID_UTF8, "invalid_utf8", "the bytes are not UTF-8")                 \
    X(NOT_JSON, "not_json", "jansson cannot parse it")                         \
    X(SCHEMA, "schema", "a type, field or range error")                        \
    X(BAD_ID, "bad_id", "an id string off the id pattern")                     \
    X(RECORD_TOO_LARGE, "record_too_large",                                    \
      "a dead letter written reduced: over a size limit")                      \
    X(STORE_DATA_ERROR, "store_data_error",                                    \
      "a Redis data error or a corrupted stored result")                       \
    X(RESULT_REJECTED, "result_rejected",                                      \
      "the broker permanently refused the result")

/**
 * @brief A dead-letter class: DD_DLQ_NONE (parsed, "none"), then one value
 *        per DD_DLQ_CLASS_MAP row.
 */
typedef enum dd_dlq_class {
    DD_DLQ_NONE,
#define DD_DLQ_ENUM_(id, label, meaning) DD_DLQ_##id,
    DD_DLQ_CLASS_MAP(DD_DLQ_ENUM_)
#undef DD_DLQ_ENUM_
        DD_DLQ__COUNT /* number of values, DD_DLQ_NONE included */
} dd_dlq_class_t;

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

/** @brief A parse error: the class and one sentence naming the field. */
typedef struct dd_codec_error {
    dd_dlq_class_t code; /* DD_DLQ_NONE, or one of the first five classes */
    char text[256];      /* e.g. "field 'candidates' must have 1 to 64 items" */
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
    const char *reason; /* a reason wire string, or NULL when assigned */
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
 * @param req (borrowed) receives the request; emptied first (ids "",
 *        n_candidates and deadline_ms 0; candidate slots from n_candidates
 *        on are not written), so on failure it holds nothing usable
 * @param err (borrowed, optional) receives the error class and text; on
 *        success code is DD_DLQ_NONE and text is ""
 * @returns DD_OK, or DD_ERR when the request can never succeed (dead letter)
 * @locality any thread
 */
int dd_codec_parse_request(const char *buf, size_t len, dd_request_t *req,
                           dd_codec_error_t *err);

/**
 * @brief The label of a dead-letter class (its DD_DLQ_CLASS_MAP row), or
 *        "none" for DD_DLQ_NONE.
 * @returns a static string; "unknown" for a value outside the enum
 * @locality any thread
 */
const char *dd_codec_dlq_class_name(dd_dlq_class_t cls);

/*----- Results -----*/

/**
 * @brief The wire string of a reason (its DD_REASON_MAP row).
 * @returns a static string; NULL for a value outside the enum
 * @locality any thread
 */
const char *dd_codec_reason_name(dd_reason_t reason);

/**
 * @brief The reason whose wire string is s.
 * @param s (borrowed, may be NULL) a NUL-terminated string
 * @returns its dd_reason_t, or -1 when s is NULL or no reason
 * @locality any thread
 */
int dd_codec_reason_find(const char *s);

/**
 * @brief The status a reason goes with (the STATUS column of its row).
 * @returns DD_STATUS_REJECTED or DD_STATUS_EXPIRED; -1 outside the enum
 * @locality any thread
 */
int dd_codec_reason_status(dd_reason_t reason);

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
 *        gives the same bytes: those jansson writes with JSON_COMPACT |
 *        JSON_PRESERVE_ORDER (a fixed-shape writer, checked against jansson
 *        in test_codec.c).
 * @param res (borrowed) the result
 * @param lenp (borrowed, optional) receives the length, without the NUL
 * @returns owned NUL-terminated JSON: free it with dd_free() (it is a
 *          dd_xmalloc() copy, not jansson's json_dumps() buffer); NULL when
 *          res would break schemas/assignment.schema.json: an unknown
 *          status, a reason that is missing or not a DD_REASON_MAP wire
 *          string of that status when not assigned (expired needs
 *          deadline_expired, rejected a REJECTED row), an id that is not a
 * valid id, an empty courier_id when assigned, an empty topic, a negative
 * number. reason is ignored when assigned. Out of memory panics (dd_xmalloc()).
 * @locality any thread
 */
char *dd_codec_result_json(const dd_result_t *res, size_t *lenp);

/**
 * @brief Read the status and reason back out of stored result bytes (a
 *        `result:{request_id}` record or a ledger entry), as written by
 *        dd_codec_result_json(). Bytes that are not a result object (only a
 *        foreign writer could put them there) read as rejected without a
 *        reason: they are still what gets republished.
 * @param buf (borrowed) the stored bytes; need not be NUL-terminated
 * @param len length of buf in bytes
 * @param status (borrowed) receives the status: DD_STATUS_ASSIGNED or
 *        DD_STATUS_EXPIRED when the `status` field says so, else
 *        DD_STATUS_REJECTED
 * @param reason (borrowed) receives the matching DD_REASON_* string (static),
 *        or NULL when the `reason` field is absent or not one of them
 * @returns DD_OK when buf is a JSON object whose `status` is one of the
 *          three status names, DD_ERR otherwise (status and reason are set
 *          either way)
 * @locality any thread
 * @remark Reads the outcome only. Stored bytes about to be republished are
 *         checked whole with dd_codec_result_check(), which gives the
 *         outcome too.
 */
int dd_codec_result_outcome(const char *buf, size_t len, dd_status_t *status,
                            const char **reason);

/**
 * @brief Validate stored result bytes (a `result:{request_id}` record) as
 *        a result of the request @p request_id before they are republished:
 *        the checks of schemas/assignment.schema.json (a JSON object with
 *        only the known fields, ids on the id pattern, a known status, the
 *        reason exactly when not assigned and of that status, the route
 *        numbers exactly when assigned, non-negative integers, source with
 *        a topic, partition and offset, processed_at on the pattern), plus
 *        request_id equal to @p request_id. Parsed as strictly as requests
 *        (duplicate keys refused).
 * @param buf (borrowed) the stored bytes; need not be NUL-terminated
 * @param len length of buf in bytes
 * @param request_id (borrowed, optional) the id the result must carry;
 *        NULL accepts any id
 * @param status (borrowed, optional) receives the status on DD_OK
 * @param reason (borrowed, optional) receives the static DD_REASON_* string
 *        on DD_OK (NULL when assigned)
 * @param why (borrowed, optional) receives one printable ASCII sentence on
 *        DD_ERR (e.g. "field 'status' is not a status"), "" on DD_OK
 * @returns DD_OK, or DD_ERR when buf is not such a result
 * @locality any thread
 */
int dd_codec_result_check(const char *buf, size_t len, const char *request_id,
                          dd_status_t *status, const char **reason, char *why,
                          size_t why_size);

#endif /* DD_CODEC_H */
