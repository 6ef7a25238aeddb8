/* SPDX-License-Identifier: MIT */
/*
 * codec_int: what codec.c (request parsing) and codec_result.c (result
 * writing and checking) share and nobody else uses: the id rule, the text
 * sanitiser, the status and reason tables and the jansson load flags.
 */
#ifndef DD_CODEC_INT_H
#define DD_CODEC_INT_H

#include <stddef.h>

#include "codec.h"

/* Flags for json_loadb(); see codec.h for why each one is there. */
#define DD_CODEC_LOAD_FLAGS                                                    \
    (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL)

/* 9999-12-31T23:59:59.999Z: processed_at must keep a 4-digit year. */
#define DD_CODEC_MAX_WALL_MS 253402300799999LL

/* Number of dd_status_t values. */
#define DD_CODEC_N_STATUSES 3

/* One reason: its wire name and the status it goes with. */
typedef struct dd_codec_reason_row {
    const char *wire;
    dd_status_t status;
} dd_codec_reason_row_t;

/* Wire names of the statuses, indexed by dd_status_t. */
extern const char *const dd_codec_status_names[DD_CODEC_N_STATUSES];

/* Reasons indexed by dd_reason_t. */
extern const dd_codec_reason_row_t dd_codec_reasons[DD_REASON__COUNT];

/* The plain reader (see codec.c): 1 when it read buf, a request of at
 * most DD_CODEC_MAX_REQUEST_BYTES bytes, into req, which was empty, exactly
 * as dd_codec_parse_json() would; 0 when buf is for the jansson path (req
 * is then partly written). */
int dd_codec_parse_plain(const char *buf, size_t len, dd_request_t *req);

/* The jansson path of dd_codec_parse_request(), after the size check: req
 * was empty and err (optional) reset. */
int dd_codec_parse_json(const char *buf, size_t len, dd_request_t *req,
                        dd_codec_error_t *err);

/* True when the len bytes at s match ^[A-Za-z0-9._:-]{1,128}$. */
int dd_codec_id_bytes_ok(const char *s, size_t len);

/* True for a NUL-terminated string in an id buffer that is a valid id. */
int dd_codec_id_ok(const char *s);

/* Replaces bytes that are not printable ASCII, so the text is safe in a
 * Kafka header and a log line whatever jansson quoted from the input. */
void dd_codec_sanitize(char *text);

#endif
