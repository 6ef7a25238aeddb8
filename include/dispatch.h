/* SPDX-License-Identifier: MIT */
/*
 * dispatch: the domain, request -> result (DESIGN.md sections 2-4). Takes a
 * batch of parsed requests, looks couriers and parcels up through the
 * store.h interface, ranks the candidates by ETA (route.h, with the Redis
 * ETA cache in front), lets the store reserve the first ranked courier
 * that is free or already this request's, builds the result JSON (codec.h)
 * once for it (or the rejection) and has the store record it under
 * result:{request_id} unless another delivery recorded first. Every request
 * of the batch is answered with the bytes that are now in its result
 * record, so a redelivered request republishes the same bytes.
 *
 * A batch without contended couriers costs four store round trips: loads
 * (RT1), ETA cache reads (RT2, skipped when no leg is needed), reservations
 * (RT3: one round more per candidate found taken; skipped when no request
 * has a candidate) and records (RT4, one round more when another delivery
 * recorded first; RT3 and RT4 are skipped when every request was a ledger
 * hit). See src/store_commit.c for why this is safe without a script.
 *
 * Data read from Redis is checked before it is used (src/store_int.h says
 * what a valid courier and parcel hash is).
 *
 * Rules, in order, per request:
 *   0. a key the request reads or writes gives a store data error
 *      (WRONGTYPE, an unparsable reply): no result; data_error is set and
 *      the caller dead-letters it. The other requests are not held by it.
 *   1. result:{request_id} exists: when it is a valid result of this
 *      request (dd_codec_result_check()), answer with its bytes
 *      (from_ledger); otherwise the ledger is corrupted and is not
 *      republished: the item gets data_error (no result; it is answered as
 *      a dead letter of class store_data_error), logged at error level
 *      (stored_result_invalid). Computing a new answer instead would hide
 *      the corruption and could contradict an answer already published.
 *   2. deadline_ms > 0, msg_ts_ms >= 0 and now > msg_ts_ms + deadline_ms:
 *      expired (deadline_expired); the courier and parcel are not read.
 *   3. parcel absent: rejected, unknown_parcel; present but invalid (a
 *      field missing, not a number or out of range, or not a hash):
 *      rejected, parcel_data_invalid.
 *   4. courier_id: absent: rejected, unknown_courier; present but invalid
 *      (a field missing, a position off the globe, an unknown vehicle or
 *      status, not a hash): rejected, courier_data_invalid; status not
 *      "available", or reserved by another request: rejected,
 *      courier_unavailable.
 *   5. candidates (duplicates ignored): absent and invalid ones are skipped
 *      like unavailable ones; the known, available ones ranked by pickup
 *      ETA (courier cell -> pickup cell), ties in request order; the first
 *      one whose reservation is free or already this request's is assigned.
 *      None: rejected, courier_data_invalid when every candidate holds
 *      invalid data (nothing else could ever be assigned), else
 *      no_candidate_available.
 * Every invalid courier or parcel is logged (fleet_data_invalid, warn, the
 * key without the prefix and the field). A cached ETA is used only when it
 * is a leg the route model can give: at most dd_route_leg_seconds_max() of
 * its vehicle, and 0 only between a cell and itself. Any other value is
 * treated as a cache error (eta_errors): recomputed and written back, and
 * logged (eta_cache_invalid, warn). The three data warnings are rate
 * limited: at most one line per event every 10 s, the next one counting
 * those suppressed.
 * An assignment has pickup_eta_seconds = leg 1, eta_seconds = leg 1 + leg 2
 * (pickup cell -> dropoff cell), distance_m from the exact positions, and
 * eta_cached = 1 only when both legs came from the cache.
 *
 * The module holds no state but the log rate limiter (atomics): every
 * function may run on any thread, with a store owned by that thread. It never
 * includes hiredis or librdkafka.
 */
#ifndef DD_DISPATCH_H
#define DD_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "store.h"

/** @brief One request of a batch and its answer. Caller storage. */
typedef struct dd_dispatch_item {
    /* in */
    const dd_request_t *req;  /* borrowed, a parsed valid request */
    int64_t msg_ts_ms;        /* Kafka message timestamp, wall ms since the
                               * epoch; < 0 when unknown (never expires) */
    const char *source_topic; /* borrowed, non-empty */
    int32_t source_partition; /* >= 0 */
    int64_t source_offset;    /* >= 0 */
    /* out (valid after DD_OK; reset by dd_dispatch_item_reset()) */
    char *result;       /* owned (dd_free), NUL-terminated result JSON,
                         * exactly the bytes in result:{request_id} */
    size_t result_len;  /* bytes in result, without the NUL */
    dd_status_t status; /* status of result */
    const char *reason; /* static DD_REASON() string; NULL when
                         * assigned */
    int from_ledger;    /* 1: result:{request_id} already existed */
    int eta_hits;       /* ETA legs read from the cache */
    int eta_misses;     /* ETA legs computed (absent in the cache) */
    int eta_errors;     /* cache reads that failed or held junk or a
                         * value out of the model's range, plus cache
                         * writes of this item's misses that failed
                         * (the result is still produced) */
    int data_error;     /* 1: a key of this request gave a store data
                         * error (WRONGTYPE, unparsable reply), or
                         * result:{request_id} is not a valid result of
                         * this request: no result; the request is to
                         * be dead-lettered with data_text */
    char data_text[DD_STORE_ERROR_MAX]; /* on data_error: the command,
                                         * the key and Redis's text */
} dd_dispatch_item_t;

/*----- Batches -----*/

/**
 * @brief Answer a batch of requests (see the file comment for the rules).
 * @param st (borrowed) the calling thread's store
 * @param items (borrowed) n items: in fields set, out fields overwritten
 *        (call dd_dispatch_item_reset() on items reused from a previous
 *        batch first, or their results leak)
 * @param now_wall_ms wall clock, ms since the epoch: the expiry check and
 *        every processed_at of this batch
 * @param errstr (optional) borrowed buffer for the error text
 * @returns DD_OK with every item answered: a result, or data_error set
 *          when a key of that request gave a store data error (the others
 *          are not held by it); or DD_ERR when the store failed transiently
 *          (Redis unreachable, timeout, a transient error reply): no item
 *          has a result, and the caller retries the batch (or parts of it)
 *          after dd_store_backoff_ms() (safe: the store's writes are
 *          idempotent)
 * @locality the thread that owns st
 */
int dd_dispatch_batch(dd_store_t *st, dd_dispatch_item_t *items, size_t n,
                      int64_t now_wall_ms, char *errstr, size_t errstr_size);

/**
 * @brief Dry run (replay --dry-run): answer a batch as dd_dispatch_batch()
 *        would, reading Redis only (RT1 loads and RT2 ETA reads; no ETA
 *        write, no reservation, no result record).
 *
 * A ledger hit answers with the stored bytes (from_ledger), as in a real
 * run. Otherwise the rules of the file comment apply with one difference:
 * reservations are neither read nor taken, so a candidate counts as free
 * whenever its courier's status is "available". The best-ranked available
 * candidate (or the named courier, if available) is reported assigned; two
 * requests of the run competing for one courier are both reported
 * assigned. The assigned count is therefore an upper bound, and the other
 * outcomes are exact for the Redis state read.
 *
 * @param st, items, now_wall_ms, errstr as for dd_dispatch_batch()
 * @returns DD_OK with every item answered (result holds the JSON a real run
 *          would have stored, processed_at = now_wall_ms; or data_error as
 *          for dd_dispatch_batch()), or DD_ERR when the store failed
 *          transiently (retry the batch)
 * @locality the thread that owns st
 */
int dd_dispatch_batch_dry_run(dd_store_t *st, dd_dispatch_item_t *items,
                              size_t n, int64_t now_wall_ms, char *errstr,
                              size_t errstr_size);

/**
 * @brief Free an item's result and clear its out fields (in fields kept).
 * @locality any thread
 */
void dd_dispatch_item_reset(dd_dispatch_item_t *item);

#endif /* DD_DISPATCH_H */
