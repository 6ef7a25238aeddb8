/* SPDX-License-Identifier: MIT */
/*
 * dispatch_data: the checks of data dispatch reads from Redis, and their
 * warnings: a stored result must be a valid result of its request
 * (dd_codec_result_check()), a cached ETA must be a leg time the route
 * model can give, and a parcel or courier hash that holds invalid data is
 * logged. Each warning is rate limited on its own. dispatch.c calls these
 * through dispatch_int.h.
 *
 * DESIGN: no state but the three rate limiters of log.c, a few atomics
 * shared by every worker thread; no locks.
 */
#include "dispatch.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "dispatch_int.h"
#include "log.h"
#include "route.h"
#include "util.h"

#define DATA_LOG_INTERVAL_MS 10000 /* one data warning per event per 10 s */

/* The three data warnings, each rate limited on its own (log.c). */
static dd_log_ratelimit_t rl_fleet =
    DD_LOG_RATELIMIT_INIT(DATA_LOG_INTERVAL_MS);
static dd_log_ratelimit_t rl_eta = DD_LOG_RATELIMIT_INIT(DATA_LOG_INTERVAL_MS);
static dd_log_ratelimit_t rl_result =
    DD_LOG_RATELIMIT_INIT(DATA_LOG_INTERVAL_MS);

/* " (N similar lines suppressed)" when N > 0, else "". */
static const char *suppressed_note(uint64_t n, char *buf, size_t size) {
    if (n == 0)
        return "";
    snprintf(buf, size, " (%" PRIu64 " similar line(s) suppressed)", n);
    return buf;
}

/* A courier or parcel hash that exists but holds invalid data. */
void dd_dispatch_log_fleet_invalid(const dd_dispatch_item_t *it,
                                   const char *kind, const char *id,
                                   const char *field) {
    uint64_t suppressed;
    char note[64];

    if (dd_log_enabled(DD_LOG_WARN) &&
        dd_log_ratelimit_allow(&rl_fleet, &suppressed))
        DD_LOG_TPO(DD_LOG_WARN, "dispatch", "fleet_data_invalid",
                   it->source_topic, it->source_partition, it->source_offset,
                   "%s:%s holds invalid data (field %s), request %s%s", kind,
                   id, field, it->req->request_id,
                   suppressed_note(suppressed, note, sizeof(note)));
}

/* Hands stored result bytes (transferred from *bytes) to the item when
 * they are a valid result of its request; otherwise frees them and marks
 * the item as a store data error. */
void dd_dispatch_take_stored(dd_dispatch_item_t *it, char **bytes, size_t len) {
    char why[160], note[64];
    uint64_t suppressed;

    if (dd_codec_result_check(*bytes, len, it->req->request_id, &it->status,
                              &it->reason, why, sizeof(why)) == DD_OK) {
        it->result = *bytes;
        it->result_len = len;
        it->from_ledger = 1;
        *bytes = NULL;
        return;
    }
    dd_free(*bytes);
    *bytes = NULL;
    it->status = DD_STATUS_REJECTED;
    it->reason = NULL;
    it->data_error = 1;
    dd_set_error(it->data_text, sizeof(it->data_text),
                 "result:%s is not a valid result of the request: %s",
                 it->req->request_id, why);
    if (dd_log_enabled(DD_LOG_ERROR) &&
        dd_log_ratelimit_allow(&rl_result, &suppressed))
        DD_LOG_TPO(DD_LOG_ERROR, "dispatch", "stored_result_invalid",
                   it->source_topic, it->source_partition, it->source_offset,
                   "%s; not republished, answered as a dead letter%s",
                   it->data_text,
                   suppressed_note(suppressed, note, sizeof(note)));
}

/* True when secs is a value the route model can give for the leg: within
 * the vehicle's maximum, and 0 exactly between a cell and itself. */
static int eta_plausible(dd_vehicle_t vehicle, const char *from, const char *to,
                         int64_t secs) {
    int same = strcmp(from, to) == 0;

    return secs <= dd_route_leg_seconds_max(vehicle) &&
           (same ? secs == 0 : secs > 0);
}

int dd_dispatch_eta_check(const dd_dispatch_item_t *it, const char *key,
                          dd_vehicle_t vehicle, const char *from,
                          const char *to, int64_t secs) {
    uint64_t suppressed;
    char note[64];

    if (secs < 0 || eta_plausible(vehicle, from, to, secs))
        return 1;
    if (dd_log_enabled(DD_LOG_WARN) &&
        dd_log_ratelimit_allow(&rl_eta, &suppressed))
        DD_LOG_TPO(DD_LOG_WARN, "dispatch", "eta_cache_invalid",
                   it->source_topic, it->source_partition, it->source_offset,
                   "%s holds %" PRId64 " s, not a leg time of the route "
                   "model (at most %" PRId64 " s); recomputed and "
                   "rewritten%s",
                   key, secs, dd_route_leg_seconds_max(vehicle),
                   suppressed_note(suppressed, note, sizeof(note)));
    return 0;
}
