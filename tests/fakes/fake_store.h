/* SPDX-License-Identifier: MIT */
/*
 * fake_store: test-only controls of the in-memory store.h implementation in
 * fake_store.c, which unit tests link in place of src/store.c. The fake
 * keeps couriers, parcels and string keys (eta:..., reservation:...,
 * result:...) in memory, reads courier and parcel hashes through the real
 * field checks of store_parse.c, takes the real store's write steps
 * (reservation rounds, record, read-back of a record stored first by
 * another delivery), counts round trips per call type, and fails or crashes
 * on demand. Keys are kept without the configured prefix.
 *
 * The data, the poisoned keys, the failure controls and the counters belong
 * to a fake server that stores can share (fake_store_share()), as a pool's
 * workers share one Redis; each dd_store_t is still used by one thread, like
 * the real one, while the server's state is locked, so a test thread may
 * drive the controls while worker threads make calls.
 */
#ifndef DD_FAKE_STORE_H
#define DD_FAKE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/** @brief Store calls, for the round-trip counters. */
typedef enum fake_store_call {
    FAKE_STORE_LOAD,    /* dd_store_load() */
    FAKE_STORE_ETA_GET, /* dd_store_eta_get() */
    FAKE_STORE_RESERVE, /* dd_store_reserve(): one per round */
    FAKE_STORE_RECORD,  /* dd_store_record(): 1, or 2 with a read-back */
    FAKE_STORE_PING,    /* dd_store_ping() */
    FAKE_STORE_NCALLS,
} fake_store_call_t;

/** @brief A store with test-friendly settings (TTLs 60/30/3600 s), on a
 *         server of its own (or on the shared one, see below). */
dd_store_t *fake_store_new(void);

/** @brief Every dd_store_new() from now on (the stores a pool's workers
 *         create on their threads) connects to st's server, so st seeds,
 *         controls and counts them all. NULL stops sharing. The server
 *         lives until its last store is destroyed. */
void fake_store_share(dd_store_t *st);

/*----- Seeding -----*/

/** @brief courier:{id} with the four fields (vehicle and status as given,
 *         so bad values can be seeded). Replaces an existing one. */
void fake_store_add_courier(dd_store_t *st, const char *id, double lat,
                            double lon, const char *vehicle,
                            const char *status);

/** @brief courier:{id} with the four fields as stored strings (NULL: the
 *         field is absent), so invalid data can be seeded. */
void fake_store_add_courier_fields(dd_store_t *st, const char *id,
                                   const char *lat, const char *lon,
                                   const char *vehicle, const char *status);

/** @brief parcel:{id} with its four coordinates. */
void fake_store_add_parcel(dd_store_t *st, const char *id, double pickup_lat,
                           double pickup_lon, double dropoff_lat,
                           double dropoff_lon);

/** @brief parcel:{id} with the four fields as stored strings (NULL: the
 *         field is absent). */
void fake_store_add_parcel_fields(dd_store_t *st, const char *id,
                                  const char *pickup_lat,
                                  const char *pickup_lon,
                                  const char *dropoff_lat,
                                  const char *dropoff_lon);

/** @brief Set a string key (e.g. "eta:v1:...", "reservation:c-1"). */
void fake_store_set(dd_store_t *st, const char *key, const char *value);

/*----- Reading back -----*/

/** @brief A string key's value (borrowed, until the next write), or NULL. */
const char *fake_store_get(const dd_store_t *st, const char *key);

/** @brief The TTL a string key was written with, s; -1 if none or absent. */
int fake_store_ttl(const dd_store_t *st, const char *key);

/** @brief Number of string keys starting with prefix. */
size_t fake_store_count(const dd_store_t *st, const char *prefix);

/** @brief reservation:{courier_id}, or NULL. */
const char *fake_store_reservation(const dd_store_t *st,
                                   const char *courier_id);

/** @brief result:{request_id}, or NULL. */
const char *fake_store_ledger(const dd_store_t *st, const char *request_id);

/*----- Counters -----*/

/** @brief Round trips made by one call type since the last reset, by every
 *         store of the server. Calls with nothing to send make none. */
int fake_store_round_trips(const dd_store_t *st, fake_store_call_t call);

/** @brief All round trips since the last reset. */
int fake_store_total_round_trips(const dd_store_t *st);

/** @brief Zero the round-trip counters. */
void fake_store_reset_counts(dd_store_t *st);

/*----- Failures -----*/

/** @brief Make the nth round trip from now (1 = the next) fail with DD_ERR,
 *         once, before any effect. 0 disarms. */
void fake_store_fail_nth(dd_store_t *st, int nth);

/** @brief Make the next n round trips fail with DD_ERR (a transient
 *         error that lasts n tries), before any effect. 0 disarms. */
void fake_store_fail_next(dd_store_t *st, int n);

/** @brief While down, every round trip fails with DD_ERR ("Redis stopped"). */
void fake_store_set_down(dd_store_t *st, int down);

/** @brief What dd_store_backoff_ms() answers on a store whose last round
 *         trip failed (default 0: retry at once). */
void fake_store_set_backoff_ms(dd_store_t *st, int ms);

/**
 * @brief Crash after the nth write round trip from now (1 = the next): a
 *        reservation round, the record, or the record's read-back. That
 *        round trip runs on the server whole, then its call fails with
 *        DD_ERR as if the process had died before reading the replies
 *        (the redelivery is the next call). Once; 0 disarms.
 */
void fake_store_crash_after(dd_store_t *st, int nth);

/**
 * @brief Another client's write: just before the nth write round trip from
 *        now (1 = the next), key (without prefix) is set to value, as a
 *        second process working on the same request would. Once.
 * @param key, value borrowed, copied
 */
void fake_store_set_before_write(dd_store_t *st, int nth, const char *key,
                                 const char *value);

/** @brief While on, ETA SETs get an error reply (put.error = 1). */
void fake_store_fail_eta_puts(dd_store_t *st, int on);

/** @brief While on, ETA GETs answer DD_STORE_ETA_ERROR. */
void fake_store_fail_eta_gets(dd_store_t *st, int on);

/**
 * @brief Poison a key (without prefix: "result:r-1", "parcel:p-1",
 *        "courier:c-1", "reservation:c-1"). A load, reservation or record
 *        that touches it gets data_error with "redis <CMD> <key>: <text>"
 *        (GET for a reservation or a refused record), as the real
 *        store does for a data error reply; with transient set, the whole
 *        call fails with DD_ERR instead (an error nobody can be charged
 *        with, such as a timeout), while PING still works.
 * @param text (borrowed, copied) the error reply's text
 */
void fake_store_poison(dd_store_t *st, const char *key, const char *text,
                       int transient);

#endif /* DD_FAKE_STORE_H */
