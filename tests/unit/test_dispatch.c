/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for dispatch, the domain, against the in-memory fake store
 * (tests/fakes/fake_store.c): assignment, ranking, every rejection,
 * contention inside a batch, the ledger, expiry, the ETA cache, store
 * failures and the round-trip budget. The fixed-case JSON was written by
 * hand from the route model's known numbers (Alexanderplatz <->
 * Brandenburger Tor by car: 389 s per leg, 2483.318 m great circle).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "dispatch.h"
#include "fake_store.h"
#include "log.h"
#include "route.h"
#include "util.h"

#define ALEX_LAT 52.521918
#define ALEX_LON 13.413215
#define TOR_LAT  52.516275
#define TOR_LON  13.377704

#define NOW_MS   1795809600042LL /* 2026-11-27T20:00:00.042Z */
#define TOPIC    "dispatch.requests"
#define MAX_REQS 8

typedef struct fixture {
    dd_store_t *st;
    dd_request_t reqs[MAX_REQS];
    dd_dispatch_item_t items[MAX_REQS];
    size_t n;
} fixture_t;

static int setup(void **state) {
    fixture_t *f = dd_xcalloc(1, sizeof(*f));

    f->st = fake_store_new();
    assert_non_null(f->st);
    /* Pickup at the Brandenburger Tor, drop-off at Alexanderplatz. */
    fake_store_add_parcel(f->st, "p-77", TOR_LAT, TOR_LON, ALEX_LAT, ALEX_LON);
    fake_store_add_courier(f->st, "c-12", ALEX_LAT, ALEX_LON, "car",
                           "available");
    *state = f;
    return 0;
}

static void clear_items(fixture_t *f) {
    for (size_t i = 0; i < f->n; i++)
        dd_dispatch_item_reset(&f->items[i]);
    memset(f->items, 0, sizeof(f->items));
    f->n = 0;
}

static int teardown(void **state) {
    fixture_t *f = *state;

    clear_items(f);
    dd_store_destroy(f->st);
    dd_free(f);
    return 0;
}

/* Adds a request (JSON) to the next batch, read at msg_ts_ms. */
static dd_dispatch_item_t *add(fixture_t *f, const char *json,
                               int64_t msg_ts_ms) {
    dd_codec_error_t err;
    dd_dispatch_item_t *it = &f->items[f->n];

    assert_true(f->n < MAX_REQS);
    if (dd_codec_parse_request(json, strlen(json), &f->reqs[f->n], &err) !=
        DD_OK)
        fail_msg("bad test request: %s", err.text);
    it->req = &f->reqs[f->n];
    it->msg_ts_ms = msg_ts_ms;
    it->source_topic = TOPIC;
    it->source_partition = 3;
    it->source_offset = 1234 + (int64_t)f->n;
    f->n++;
    return it;
}

static void run(fixture_t *f) {
    char errstr[256] = "";
    if (dd_dispatch_batch(f->st, f->items, f->n, NOW_MS, errstr,
                          sizeof(errstr)) != DD_OK)
        fail_msg("dd_dispatch_batch: %s", errstr);
}

/* The item's bytes are exactly the ledger entry of its request. */
static void assert_ledger_is(fixture_t *f, const dd_dispatch_item_t *it) {
    const char *led = fake_store_ledger(f->st, it->req->request_id);
    assert_non_null(it->result);
    assert_non_null(led);
    assert_int_equal(it->result_len, strlen(led));
    assert_memory_equal(it->result, led, it->result_len);
}

static int64_t leg(dd_vehicle_t v, double lat1, double lon1, double lat2,
                   double lon2) {
    char a[DD_ROUTE_CELL_SIZE], b[DD_ROUTE_CELL_SIZE];
    assert_int_equal(dd_route_cell(lat1, lon1, a, sizeof(a)), DD_OK);
    assert_int_equal(dd_route_cell(lat2, lon2, b, sizeof(b)), DD_OK);
    return dd_route_leg_seconds(v, a, b);
}

static void assert_contains(const char *hay, const char *needle) {
    if (strstr(hay, needle) == NULL)
        fail_msg("'%s' not in %s", needle, hay);
}

/*----- Assignment -----*/

static void test_dispatch_assigns_named_courier_byte_for_byte(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it =
        add(f,
            "{\"request_id\":\"r-1001\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-12\",\"deadline_ms\":2000}",
            NOW_MS - 100);

    run(f);
    assert_string_equal(
        it->result,
        "{\"request_id\":\"r-1001\",\"status\":\"assigned\","
        "\"parcel_id\":\"p-77\",\"courier_id\":\"c-12\",\"eta_seconds\":778,"
        "\"pickup_eta_seconds\":389,\"distance_m\":6457,\"eta_cached\":false,"
        "\"source\":{\"topic\":\"dispatch.requests\",\"partition\":3,"
        "\"offset\":1234},\"processed_at\":\"2026-11-27T20:00:00.042Z\"}");
    assert_int_equal(it->result_len, strlen(it->result));
    assert_int_equal(it->status, DD_STATUS_ASSIGNED);
    assert_null(it->reason);
    assert_int_equal(it->from_ledger, 0);
    assert_string_equal(fake_store_reservation(f->st, "c-12"), "r-1001");
    assert_int_equal(fake_store_ttl(f->st, "reservation:c-12"), 30);
    assert_ledger_is(f, it);
    assert_int_equal(fake_store_ttl(f->st, "result:r-1001"), 3600);
}

static void test_dispatch_candidates_pick_lowest_pickup_eta(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it;
    /* c-far at Alexanderplatz, c-near 300 m from the pickup, c-busy at the
     * pickup itself but busy; listed far first. */
    fake_store_add_courier(f->st, "c-far", ALEX_LAT, ALEX_LON, "bike",
                           "available");
    fake_store_add_courier(f->st, "c-near", 52.5180, 13.3810, "bike",
                           "available");
    fake_store_add_courier(f->st, "c-busy", TOR_LAT, TOR_LON, "bike", "busy");
    it = add(f,
             "{\"request_id\":\"r-2\",\"parcel_id\":\"p-77\","
             "\"candidates\":[\"c-far\",\"c-busy\",\"c-unknown\",\"c-near\"]}",
             NOW_MS);

    run(f);
    assert_int_equal(it->status, DD_STATUS_ASSIGNED);
    assert_contains(it->result, "\"courier_id\":\"c-near\"");
    {
        char want[64];
        int64_t l1 = leg(DD_VEHICLE_BIKE, 52.5180, 13.3810, TOR_LAT, TOR_LON);
        int64_t l2 = leg(DD_VEHICLE_BIKE, TOR_LAT, TOR_LON, ALEX_LAT, ALEX_LON);
        assert_true(l1 <
                    leg(DD_VEHICLE_BIKE, ALEX_LAT, ALEX_LON, TOR_LAT, TOR_LON));
        snprintf(want, sizeof(want), "\"pickup_eta_seconds\":%lld",
                 (long long)l1);
        assert_contains(it->result, want);
        snprintf(want, sizeof(want), "\"eta_seconds\":%lld",
                 (long long)(l1 + l2));
        assert_contains(it->result, want);
    }
    assert_string_equal(fake_store_reservation(f->st, "c-near"), "r-2");
    assert_null(fake_store_reservation(f->st, "c-far"));
    assert_null(fake_store_reservation(f->st, "c-busy"));
    assert_ledger_is(f, it);
}

static void test_dispatch_candidates_tie_goes_to_request_order(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it;
    /* Same cell, same vehicle: the same pickup ETA. */
    fake_store_add_courier(f->st, "c-b", 52.5180, 13.3810, "car", "available");
    fake_store_add_courier(f->st, "c-a", 52.5180, 13.3810, "car", "available");
    it = add(f,
             "{\"request_id\":\"r-3\",\"parcel_id\":\"p-77\","
             "\"candidates\":[\"c-b\",\"c-a\",\"c-b\"]}",
             NOW_MS);

    run(f);
    assert_contains(it->result, "\"courier_id\":\"c-b\"");
    assert_string_equal(fake_store_reservation(f->st, "c-b"), "r-3");
}

static void test_dispatch_skips_reserved_candidate(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it;
    fake_store_add_courier(f->st, "c-near", 52.5180, 13.3810, "bike",
                           "available");
    fake_store_set(f->st, "reservation:c-near", "r-other");
    it = add(f,
             "{\"request_id\":\"r-4\",\"parcel_id\":\"p-77\","
             "\"candidates\":[\"c-near\",\"c-12\"]}",
             NOW_MS);

    run(f);
    assert_int_equal(it->status, DD_STATUS_ASSIGNED);
    assert_contains(it->result, "\"courier_id\":\"c-12\"");
    assert_string_equal(fake_store_reservation(f->st, "c-near"), "r-other");
}

/*----- Rejections -----*/

static void test_dispatch_rejects_unknown_parcel(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *a, *b;
    fake_store_add_parcel(f->st, "p-bad", 91.0, 13.0, ALEX_LAT, ALEX_LON);
    a = add(f,
            "{\"request_id\":\"r-5\",\"parcel_id\":\"p-none\","
            "\"courier_id\":\"c-12\"}",
            NOW_MS);
    b = add(f,
            "{\"request_id\":\"r-6\",\"parcel_id\":\"p-bad\","
            "\"candidates\":[\"c-12\"]}",
            NOW_MS);

    run(f);
    assert_int_equal(a->status, DD_STATUS_REJECTED);
    assert_string_equal(a->reason, DD_REASON(UNKNOWN_PARCEL));
    assert_contains(a->result, "\"reason\":\"unknown_parcel\"");
    assert_contains(a->result, "\"courier_id\":\"c-12\"");
    /* A parcel off the globe is there, with invalid data. */
    assert_int_equal(b->status, DD_STATUS_REJECTED);
    assert_string_equal(b->reason, DD_REASON(PARCEL_DATA_INVALID));
    assert_contains(b->result, "\"reason\":\"parcel_data_invalid\"");
    assert_null(strstr(b->result, "courier_id"));
    assert_null(fake_store_reservation(f->st, "c-12"));
    assert_ledger_is(f, a);
    assert_ledger_is(f, b);
}

static void test_dispatch_rejects_unknown_courier(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *a, *b, *c;
    fake_store_add_courier(f->st, "c-rocket", ALEX_LAT, ALEX_LON, "rocket",
                           "available");
    fake_store_add_courier(f->st, "c-offmap", 12.0, 200.0, "car", "available");
    a = add(f,
            "{\"request_id\":\"r-7\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-none\"}",
            NOW_MS);
    b = add(f,
            "{\"request_id\":\"r-8\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-rocket\"}",
            NOW_MS);
    c = add(f,
            "{\"request_id\":\"r-9\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-offmap\"}",
            NOW_MS);

    run(f);
    /* Absent: unknown; there with an unknown vehicle or off the map:
     * invalid data. */
    for (int i = 0; i < 3; i++) {
        const dd_dispatch_item_t *it = (i == 0) ? a : (i == 1) ? b : c;
        const char *want = i == 0 ? DD_REASON(UNKNOWN_COURIER)
                                  : DD_REASON(COURIER_DATA_INVALID);
        char field[64];
        assert_int_equal(it->status, DD_STATUS_REJECTED);
        assert_string_equal(it->reason, want);
        snprintf(field, sizeof(field), "\"reason\":\"%s\"", want);
        assert_contains(it->result, field);
        assert_ledger_is(f, it);
    }
    assert_contains(a->result, "\"courier_id\":\"c-none\"");
    assert_int_equal(fake_store_count(f->st, "reservation:"), 0);
}

static void test_dispatch_rejects_busy_or_offline_courier(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *a, *b;
    fake_store_add_courier(f->st, "c-busy", ALEX_LAT, ALEX_LON, "car", "busy");
    fake_store_add_courier(f->st, "c-off", ALEX_LAT, ALEX_LON, "car",
                           "offline");
    a = add(f,
            "{\"request_id\":\"r-10\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-busy\"}",
            NOW_MS);
    b = add(f,
            "{\"request_id\":\"r-11\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-off\"}",
            NOW_MS);

    run(f);
    assert_int_equal(a->status, DD_STATUS_REJECTED);
    assert_string_equal(a->reason, DD_REASON(COURIER_UNAVAILABLE));
    assert_int_equal(b->status, DD_STATUS_REJECTED);
    assert_string_equal(b->reason, DD_REASON(COURIER_UNAVAILABLE));
    assert_int_equal(fake_store_count(f->st, "reservation:"), 0);
    assert_int_equal(fake_store_round_trips(f->st, FAKE_STORE_ETA_GET), 0);
}

static void test_dispatch_rejects_courier_reserved_by_other(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it;
    fake_store_set(f->st, "reservation:c-12", "r-other");
    it = add(f,
             "{\"request_id\":\"r-12\",\"parcel_id\":\"p-77\","
             "\"courier_id\":\"c-12\"}",
             NOW_MS);

    run(f);
    assert_int_equal(it->status, DD_STATUS_REJECTED);
    assert_string_equal(it->reason, DD_REASON(COURIER_UNAVAILABLE));
    assert_string_equal(fake_store_reservation(f->st, "c-12"), "r-other");
    assert_ledger_is(f, it);
}

static void test_dispatch_candidates_none_available(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it;
    fake_store_add_courier(f->st, "c-busy", ALEX_LAT, ALEX_LON, "car", "busy");
    it = add(f,
             "{\"request_id\":\"r-13\",\"parcel_id\":\"p-77\","
             "\"candidates\":[\"c-busy\",\"c-none\"]}",
             NOW_MS);

    run(f);
    assert_int_equal(it->status, DD_STATUS_REJECTED);
    assert_string_equal(it->reason, DD_REASON(NO_CANDIDATE_AVAILABLE));
    assert_null(strstr(it->result, "courier_id"));
}

static void test_dispatch_one_courier_two_requests_one_batch(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *a, *b, *c, *d;
    fake_store_add_courier(f->st, "c-solo", ALEX_LAT, ALEX_LON, "foot",
                           "available");
    a = add(f,
            "{\"request_id\":\"r-20\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-12\"}",
            NOW_MS);
    b = add(f,
            "{\"request_id\":\"r-21\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-12\"}",
            NOW_MS);
    c = add(f,
            "{\"request_id\":\"r-22\",\"parcel_id\":\"p-77\","
            "\"candidates\":[\"c-solo\"]}",
            NOW_MS);
    d = add(f,
            "{\"request_id\":\"r-23\",\"parcel_id\":\"p-77\","
            "\"candidates\":[\"c-solo\"]}",
            NOW_MS);

    run(f);
    assert_int_equal(a->status, DD_STATUS_ASSIGNED);
    assert_int_equal(b->status, DD_STATUS_REJECTED);
    assert_string_equal(b->reason, DD_REASON(COURIER_UNAVAILABLE));
    assert_string_equal(fake_store_reservation(f->st, "c-12"), "r-20");
    assert_int_equal(c->status, DD_STATUS_ASSIGNED);
    assert_int_equal(d->status, DD_STATUS_REJECTED);
    assert_string_equal(d->reason, DD_REASON(NO_CANDIDATE_AVAILABLE));
    assert_string_equal(fake_store_reservation(f->st, "c-solo"), "r-22");
    /* The losers had no other candidate: one reservation round. */
    assert_int_equal(fake_store_total_round_trips(f->st), 4);
}

/*----- Ledger and expiry -----*/

static void test_dispatch_ledger_hit_republishes_exact_bytes(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it;
    const char *stored =
        "{\"request_id\":\"r-30\",\"status\":\"rejected\",\"reason\":"
        "\"unknown_courier\",\"parcel_id\":\"p-77\",\"source\":{\"topic\":"
        "\"t\",\"partition\":0,\"offset\":1},\"processed_at\":"
        "\"2020-01-01T00:00:00.000Z\"}";
    fake_store_set(f->st, "result:r-30", stored);
    it = add(f,
             "{\"request_id\":\"r-30\",\"parcel_id\":\"p-77\","
             "\"courier_id\":\"c-12\"}",
             NOW_MS);

    run(f);
    assert_string_equal(it->result, stored);
    assert_int_equal(it->result_len, strlen(stored));
    assert_int_equal(it->from_ledger, 1);
    assert_int_equal(it->status, DD_STATUS_REJECTED);
    assert_string_equal(it->reason, DD_REASON(UNKNOWN_COURIER));
    assert_int_equal(fake_store_total_round_trips(f->st), 1);
    assert_int_equal(fake_store_round_trips(f->st, FAKE_STORE_LOAD), 1);
    assert_null(fake_store_reservation(f->st, "c-12"));
}

static void test_dispatch_redelivery_is_byte_identical(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it;
    char *first;
    char errstr[128];
    const char *json = "{\"request_id\":\"r-31\",\"parcel_id\":\"p-77\","
                       "\"courier_id\":\"c-12\"}";

    add(f, json, NOW_MS);
    run(f);
    first = dd_xstrdup(f->items[0].result);
    clear_items(f);
    fake_store_reset_counts(f->st);

    /* Later, from another offset: same bytes, from the ledger. */
    it = add(f, json, NOW_MS);
    it->source_offset = 9999;
    assert_int_equal(dd_dispatch_batch(f->st, f->items, f->n, NOW_MS + 60000,
                                       errstr, sizeof(errstr)),
                     DD_OK);
    assert_string_equal(it->result, first);
    assert_int_equal(it->from_ledger, 1);
    assert_int_equal(it->status, DD_STATUS_ASSIGNED);
    assert_null(it->reason);
    assert_int_equal(fake_store_total_round_trips(f->st), 1);
    dd_free(first);
}

static void test_dispatch_expired_skips_lookups(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it;
    dd_store_stats_t s;
    it = add(f,
             "{\"request_id\":\"r-40\",\"parcel_id\":\"p-77\","
             "\"courier_id\":\"c-12\",\"deadline_ms\":2000}",
             NOW_MS - 2001);

    run(f);
    assert_int_equal(it->status, DD_STATUS_EXPIRED);
    assert_string_equal(it->reason, DD_REASON(DEADLINE_EXPIRED));
    assert_contains(it->result, "\"status\":\"expired\",\"reason\":"
                                "\"deadline_expired\"");
    assert_null(strstr(it->result, "eta_seconds"));
    assert_null(fake_store_reservation(f->st, "c-12"));
    assert_ledger_is(f, it);
    /* One ledger GET and one record SET: no parcel, courier, ETA or
     * reservation. */
    dd_store_get_stats(f->st, &s);
    assert_int_equal(s.commands, 2);
    assert_int_equal(fake_store_round_trips(f->st, FAKE_STORE_ETA_GET), 0);
}

static void test_dispatch_deadline_not_yet_passed_is_served(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it;
    it = add(f,
             "{\"request_id\":\"r-41\",\"parcel_id\":\"p-77\","
             "\"courier_id\":\"c-12\",\"deadline_ms\":2000}",
             NOW_MS - 2000);
    run(f);
    assert_int_equal(it->status, DD_STATUS_ASSIGNED);
}

static void test_dispatch_expired_redelivery_returns_ledger(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it;
    char *first;
    const char *json = "{\"request_id\":\"r-42\",\"parcel_id\":\"p-77\","
                       "\"courier_id\":\"c-12\",\"deadline_ms\":1000}";

    add(f, json, NOW_MS - 10);
    run(f);
    assert_int_equal(f->items[0].status, DD_STATUS_ASSIGNED);
    first = dd_xstrdup(f->items[0].result);
    clear_items(f);

    /* Redelivered long after the deadline: the assignment, not expired. */
    it = add(f, json, NOW_MS - 60000);
    run(f);
    assert_int_equal(it->status, DD_STATUS_ASSIGNED);
    assert_int_equal(it->from_ledger, 1);
    assert_string_equal(it->result, first);
    dd_free(first);
}

/*----- ETA cache -----*/

static void test_dispatch_eta_cache_hit_equals_miss(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *a, *b;
    char *ja, *jb;

    a = add(f,
            "{\"request_id\":\"r-50\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-12\"}",
            NOW_MS);
    run(f);
    assert_int_equal(a->eta_misses, 2);
    assert_int_equal(a->eta_hits, 0);
    assert_int_equal(a->eta_errors, 0);
    assert_contains(a->result, "\"eta_cached\":false");
    assert_int_equal(fake_store_count(f->st, "eta:v1:car:"), 2);
    assert_int_equal(fake_store_ttl(f->st, "eta:v1:car:u33dc1r:u33db2m"), 60);
    assert_string_equal(fake_store_get(f->st, "eta:v1:car:u33dc1r:u33db2m"),
                        "389");
    ja = dd_xstrdup(a->result);
    clear_items(f);
    fake_store_set(f->st, "reservation:c-12", "r-51"); /* free for r-51 */

    b = add(f,
            "{\"request_id\":\"r-51\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-12\"}",
            NOW_MS);
    run(f);
    assert_int_equal(b->eta_hits, 2);
    assert_int_equal(b->eta_misses, 0);
    assert_contains(b->result, "\"eta_cached\":true");
    jb = dd_xstrdup(b->result);
    /* Same numbers: only request_id and eta_cached differ. */
    assert_contains(ja, "\"eta_seconds\":778,\"pickup_eta_seconds\":389");
    assert_contains(jb, "\"eta_seconds\":778,\"pickup_eta_seconds\":389");
    assert_contains(ja, "\"distance_m\":6457");
    assert_contains(jb, "\"distance_m\":6457");
    dd_free(ja);
    dd_free(jb);
}

static void test_dispatch_shared_leg_read_once(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *a, *b;
    fake_store_add_courier(f->st, "c-13", ALEX_LAT, ALEX_LON, "car",
                           "available");
    a = add(f,
            "{\"request_id\":\"r-52\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-12\"}",
            NOW_MS);
    b = add(f,
            "{\"request_id\":\"r-53\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-13\"}",
            NOW_MS);
    run(f);
    /* Both use the same two keys: each item counts its legs, the store
     * sees two distinct keys. */
    assert_int_equal(a->eta_misses, 2);
    assert_int_equal(b->eta_misses, 2);
    assert_int_equal(fake_store_count(f->st, "eta:"), 2);
    assert_int_equal(a->status, DD_STATUS_ASSIGNED);
    assert_int_equal(b->status, DD_STATUS_ASSIGNED);
}

/* The integer after "field": in a result document. */
static long long json_int(const char *json, const char *field) {
    char pat[64];
    const char *at;

    snprintf(pat, sizeof(pat), "\"%s\":", field);
    at = strstr(json, pat);
    if (at == NULL)
        fail_msg("'%s' not in %s", pat, json);
    return strtoll(at + strlen(pat), NULL, 10);
}

/* A full batch whose legs repeat in every order (4 couriers, 2 parcels,
 * every request naming all 4): the store sees each distinct key once, and
 * every leg gets the seconds of its own key, whatever order the batch's
 * keys were grouped in; a second batch of the same legs hits on all. */
static void test_dispatch_repeated_legs_map_to_their_keys(void **state) {
    fixture_t *f = *state;
    static const char *const ids[] = {"c-a", "c-b", "c-c", "c-d"};
    double clat[4], clon[4];
    int misses = 0, hits = 0;

    fake_store_add_parcel(f->st, "p-78", 52.500, 13.300, 52.530, 13.450);
    for (int k = 0; k < 4; k++) {
        clat[k] = ALEX_LAT + 0.011 * k;
        clon[k] = ALEX_LON - 0.017 * k;
        fake_store_add_courier(f->st, ids[k], clat[k], clon[k], "car",
                               "available");
    }
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < MAX_REQS; i++) {
            char json[256];
            /* Candidate order rotates, so equal keys are far apart. */
            snprintf(json, sizeof(json),
                     "{\"request_id\":\"r-rep-%d-%d\",\"parcel_id\":\"%s\","
                     "\"candidates\":[\"%s\",\"%s\",\"%s\",\"%s\"]}",
                     round, i, i % 2 ? "p-78" : "p-77", ids[i % 4],
                     ids[(i + 1) % 4], ids[(i + 2) % 4], ids[(i + 3) % 4]);
            add(f, json, NOW_MS);
        }
        run(f);
        for (size_t i = 0; i < f->n; i++) {
            const dd_dispatch_item_t *it = &f->items[i];
            int p78 = i % 2 == 1;
            int k;

            misses += it->eta_misses;
            hits += it->eta_hits;
            if (it->status != DD_STATUS_ASSIGNED)
                continue; /* every courier held: a rejection */
            for (k = 0; k < 4; k++)
                if (strstr(it->result, ids[k]) != NULL)
                    break;
            assert_true(k < 4);
            assert_int_equal(json_int(it->result, "pickup_eta_seconds"),
                             leg(DD_VEHICLE_CAR, clat[k], clon[k],
                                 p78 ? 52.500 : TOR_LAT,
                                 p78 ? 13.300 : TOR_LON));
        }
        clear_items(f);
        /* 4 couriers x 2 pickups, plus the 2 pickup -> drop-off legs. */
        assert_int_equal(fake_store_count(f->st, "eta:"), 10);
        if (round == 0) {
            assert_int_equal(misses, MAX_REQS * 4 * 2);
            assert_int_equal(hits, 0);
        } else {
            assert_int_equal(misses, MAX_REQS * 4 * 2);
            assert_int_equal(hits, MAX_REQS * 4 * 2);
        }
    }
}

static void test_dispatch_eta_write_failure_still_answers(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it;
    fake_store_fail_eta_puts(f->st, 1);
    it = add(f,
             "{\"request_id\":\"r-54\",\"parcel_id\":\"p-77\","
             "\"courier_id\":\"c-12\"}",
             NOW_MS);
    run(f);
    assert_int_equal(it->status, DD_STATUS_ASSIGNED);
    assert_int_equal(it->eta_misses, 2);
    assert_int_equal(it->eta_errors, 2);
    assert_int_equal(fake_store_count(f->st, "eta:"), 0);
    assert_ledger_is(f, it);
}

static void test_dispatch_eta_read_error_recomputes(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it;
    fake_store_fail_eta_gets(f->st, 1);
    it = add(f,
             "{\"request_id\":\"r-55\",\"parcel_id\":\"p-77\","
             "\"courier_id\":\"c-12\"}",
             NOW_MS);
    run(f);
    assert_int_equal(it->status, DD_STATUS_ASSIGNED);
    assert_int_equal(it->eta_errors, 2);
    assert_int_equal(it->eta_misses, 0);
    assert_int_equal(it->eta_hits, 0);
    assert_contains(it->result, "\"eta_seconds\":778");
    assert_contains(it->result, "\"eta_cached\":false");
    /* The bad entries are overwritten with good values. */
    assert_int_equal(fake_store_count(f->st, "eta:"), 2);
}

/*----- Data from Redis that is not trusted -----*/

#define LEG1 "eta:v1:car:u33dc1r:u33db2m" /* c-12 -> pickup */
#define LEG2 "eta:v1:car:u33db2m:u33dc1r" /* pickup -> dropoff */

/* A cached leg no route can take is a cache error: recomputed, rewritten,
 * and the answer is the model's. */
static void test_dispatch_eta_out_of_range_is_recomputed(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it;
    fake_store_set(f->st, LEG1, "999999999999999999");
    fake_store_set(f->st, LEG2, "0"); /* two different cells: never 0 */
    it = add(f,
             "{\"request_id\":\"r-56\",\"parcel_id\":\"p-77\","
             "\"courier_id\":\"c-12\"}",
             NOW_MS);
    run(f);
    assert_int_equal(it->status, DD_STATUS_ASSIGNED);
    assert_int_equal(it->eta_errors, 2);
    assert_int_equal(it->eta_hits, 0);
    assert_contains(it->result,
                    "\"eta_seconds\":778,\"pickup_eta_seconds\":389");
    assert_contains(it->result, "\"eta_cached\":false");
    assert_string_equal(fake_store_get(f->st, LEG1), "389");
    assert_string_equal(fake_store_get(f->st, LEG2), "389");
    assert_int_equal(fake_store_ttl(f->st, LEG1), 60);
}

/* The bounds themselves: the vehicle's maximum is a hit, one more is not;
 * 0 is a hit between a cell and itself. */
static void test_dispatch_eta_bounds(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it;
    char max[32], over[32];
    int64_t m = dd_route_leg_seconds_max(DD_VEHICLE_CAR);

    assert_true(m > 3000000 && m < 3200000);
    snprintf(max, sizeof(max), "%lld", (long long)m);
    snprintf(over, sizeof(over), "%lld", (long long)m + 1);
    fake_store_set(f->st, LEG1, max);
    fake_store_set(f->st, LEG2, over);
    it = add(f,
             "{\"request_id\":\"r-57\",\"parcel_id\":\"p-77\","
             "\"courier_id\":\"c-12\"}",
             NOW_MS);
    run(f);
    assert_int_equal(it->eta_hits, 1);
    assert_int_equal(it->eta_errors, 1);
    assert_string_equal(fake_store_get(f->st, LEG1), max);
    assert_string_equal(fake_store_get(f->st, LEG2), "389");
    clear_items(f);

    /* Courier in the pickup cell: leg 1 is 0 s, cached or not. */
    fake_store_add_courier(f->st, "c-at-tor", TOR_LAT, TOR_LON, "car",
                           "available");
    fake_store_set(f->st, "eta:v1:car:u33db2m:u33db2m", "0");
    it = add(f,
             "{\"request_id\":\"r-58\",\"parcel_id\":\"p-77\","
             "\"courier_id\":\"c-at-tor\"}",
             NOW_MS);
    run(f);
    assert_int_equal(it->eta_hits, 2);
    assert_int_equal(it->eta_errors, 0);
    assert_contains(it->result, "\"pickup_eta_seconds\":0");
    /* Every antipodal leg of the model is within the bound. */
    assert_true(leg(DD_VEHICLE_FOOT, 0.0, 0.0, 0.0, 179.9999) <=
                dd_route_leg_seconds_max(DD_VEHICLE_FOOT));
    assert_true(leg(DD_VEHICLE_CAR, 89.9999, 0.0, -89.9999, 180.0) <=
                dd_route_leg_seconds_max(DD_VEHICLE_CAR));
    assert_int_equal(dd_route_leg_seconds_max((dd_vehicle_t)99), -1);
}

/* Garbage, a thin or another request's result under result:{id}: not
 * republished; the item is a store data error, nothing is written. */
static void test_dispatch_invalid_stored_result_is_a_data_error(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *a, *b, *c;
    const char *other =
        "{\"request_id\":\"r-other\",\"status\":\"rejected\",\"reason\":"
        "\"unknown_courier\",\"parcel_id\":\"p-77\",\"source\":{\"topic\":"
        "\"t\",\"partition\":0,\"offset\":1},\"processed_at\":"
        "\"2020-01-01T00:00:00.000Z\"}";
    fake_store_set(f->st, "result:r-70", "garbage");
    fake_store_set(f->st, "result:r-71", other);
    fake_store_set(f->st, "result:r-72", "{\"status\":\"assigned\"}");
    a = add(f,
            "{\"request_id\":\"r-70\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-12\"}",
            NOW_MS);
    b = add(f,
            "{\"request_id\":\"r-71\",\"parcel_id\":\"p-77\","
            "\"candidates\":[\"c-12\"]}",
            NOW_MS);
    c = add(f,
            "{\"request_id\":\"r-72\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-12\"}",
            NOW_MS);
    run(f);
    for (int i = 0; i < 3; i++) {
        const dd_dispatch_item_t *it = i == 0 ? a : i == 1 ? b : c;
        assert_int_equal(it->data_error, 1);
        assert_null(it->result);
        assert_int_equal(it->result_len, 0);
        assert_int_equal(it->from_ledger, 0);
        assert_true(strncmp(it->data_text, "result:r-7", 10) == 0);
    }
    assert_contains(a->data_text, "not JSON");
    assert_contains(b->data_text, "names another request");
    assert_contains(c->data_text, "'request_id' is missing");
    /* The corrupted ledger stays for the operator; nothing reserved. */
    assert_string_equal(fake_store_ledger(f->st, "r-70"), "garbage");
    assert_string_equal(fake_store_ledger(f->st, "r-71"), other);
    assert_null(fake_store_reservation(f->st, "c-12"));
    assert_int_equal(fake_store_total_round_trips(f->st), 1);

    /* Reset clears the flag and the text. */
    dd_dispatch_item_reset(a);
    assert_int_equal(a->data_error, 0);
    assert_string_equal(a->data_text, "");
}

/* A courier hash that is there with invalid data has its own reason;
 * absent stays unknown_courier. */
static void test_dispatch_invalid_courier_data(void **state) {
    fixture_t *f = *state;
    static const char *const ids[] = {"c-abc", "c-181", "c-rocket",
                                      "c-nostatus", "c-flying"};
    dd_dispatch_item_t *it[5];
    fake_store_add_courier_fields(f->st, "c-abc", "abc", "13.4", "car",
                                  "available");
    fake_store_add_courier_fields(f->st, "c-181", "52.5", "181", "car",
                                  "available");
    fake_store_add_courier_fields(f->st, "c-rocket", "52.5", "13.4", "rocket",
                                  "available");
    fake_store_add_courier_fields(f->st, "c-nostatus", "52.5", "13.4", "car",
                                  NULL);
    fake_store_add_courier_fields(f->st, "c-flying", "52.5", "13.4", "car",
                                  "flying");
    for (int i = 0; i < 5; i++) {
        char json[160];
        snprintf(json, sizeof(json),
                 "{\"request_id\":\"r-8%d\",\"parcel_id\":\"p-77\","
                 "\"courier_id\":\"%s\"}",
                 i, ids[i]);
        it[i] = add(f, json, NOW_MS);
    }
    run(f);
    for (int i = 0; i < 5; i++) {
        char want[160];
        assert_int_equal(it[i]->status, DD_STATUS_REJECTED);
        assert_string_equal(it[i]->reason, DD_REASON(COURIER_DATA_INVALID));
        snprintf(want, sizeof(want),
                 "\"reason\":\"courier_data_invalid\",\"parcel_id\":"
                 "\"p-77\",\"courier_id\":\"%s\"",
                 ids[i]);
        assert_contains(it[i]->result, want);
        assert_ledger_is(f, it[i]);
        assert_int_equal(it[i]->eta_misses + it[i]->eta_hits, 0);
    }
    assert_int_equal(fake_store_count(f->st, "reservation:"), 0);
}

/* Candidates: invalid ones are skipped; all invalid is
 * courier_data_invalid, a mix with unknown or busy ones is
 * no_candidate_available. */
static void test_dispatch_invalid_candidates(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *a, *b, *c;
    fake_store_add_courier_fields(f->st, "c-bad1", "abc", "13.4", "car",
                                  "available");
    fake_store_add_courier_fields(f->st, "c-bad2", "52.5", "13.4", "rocket",
                                  "available");
    fake_store_add_courier(f->st, "c-busy", ALEX_LAT, ALEX_LON, "car", "busy");
    a = add(f,
            "{\"request_id\":\"r-90\",\"parcel_id\":\"p-77\","
            "\"candidates\":[\"c-bad1\",\"c-12\",\"c-bad2\"]}",
            NOW_MS);
    b = add(f,
            "{\"request_id\":\"r-91\",\"parcel_id\":\"p-77\","
            "\"candidates\":[\"c-bad1\",\"c-bad2\",\"c-bad1\"]}",
            NOW_MS);
    c = add(f,
            "{\"request_id\":\"r-92\",\"parcel_id\":\"p-77\","
            "\"candidates\":[\"c-bad1\",\"c-none\",\"c-busy\"]}",
            NOW_MS);
    run(f);
    assert_int_equal(a->status, DD_STATUS_ASSIGNED);
    assert_contains(a->result, "\"courier_id\":\"c-12\"");
    assert_int_equal(b->status, DD_STATUS_REJECTED);
    assert_string_equal(b->reason, DD_REASON(COURIER_DATA_INVALID));
    assert_null(strstr(b->result, "courier_id"));
    assert_int_equal(c->status, DD_STATUS_REJECTED);
    assert_string_equal(c->reason, DD_REASON(NO_CANDIDATE_AVAILABLE));
}

/* Lines of event in the log written to fd since offset 0. */
static int count_event_lines(int fd, const char *event) {
    char buf[16384], needle[64];
    ssize_t n;
    int lines = 0;

    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    n = read(fd, buf, sizeof(buf) - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    snprintf(needle, sizeof(needle), "\"event\":\"%s\"", event);
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p++)
        lines++;
    return lines;
}

/* Invalid data read once per request does not log once per request: at
 * most one line per event per 10 s. */
static void test_dispatch_data_warnings_are_rate_limited(void **state) {
    fixture_t *f = *state;
    char path[] = "/tmp/dd-test-dispatch-log-XXXXXX";
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    unlink(path);
    fake_store_add_courier_fields(f->st, "c-bad", "abc", "1", "car", "busy");
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 4; i++) {
            char json[128];
            snprintf(json, sizeof(json),
                     "{\"request_id\":\"r-rl-%d-%d\",\"parcel_id\":\"p-77\","
                     "\"courier_id\":\"c-bad\"}",
                     round, i);
            add(f, json, NOW_MS);
        }
        dd_log_set_fd(fd);
        run(f);
        dd_log_set_fd(STDERR_FILENO);
        for (size_t i = 0; i < f->n; i++)
            assert_string_equal(f->items[i].reason,
                                DD_REASON(COURIER_DATA_INVALID));
        clear_items(f);
    }
    /* 12 invalid reads; earlier tests may already hold this 10 s slot. */
    assert_true(count_event_lines(fd, "fleet_data_invalid") <= 1);
    close(fd);
}

static void test_dispatch_invalid_parcel_data(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *a, *b;
    fake_store_add_parcel_fields(f->st, "p-nodrop", "52.5", "13.4", NULL, NULL);
    fake_store_add_parcel_fields(f->st, "p-junk", "52.5", "east", "52.5",
                                 "13.4");
    a = add(f,
            "{\"request_id\":\"r-95\",\"parcel_id\":\"p-nodrop\","
            "\"courier_id\":\"c-12\"}",
            NOW_MS);
    b = add(f,
            "{\"request_id\":\"r-96\",\"parcel_id\":\"p-junk\","
            "\"candidates\":[\"c-12\"]}",
            NOW_MS);
    run(f);
    assert_string_equal(a->reason, DD_REASON(PARCEL_DATA_INVALID));
    assert_contains(a->result, "\"reason\":\"parcel_data_invalid\","
                               "\"parcel_id\":\"p-nodrop\",\"courier_id\":"
                               "\"c-12\"");
    assert_string_equal(b->reason, DD_REASON(PARCEL_DATA_INVALID));
    assert_null(fake_store_reservation(f->st, "c-12"));
    assert_ledger_is(f, a);
    assert_ledger_is(f, b);
}

/*----- Store failures and round trips -----*/

static void test_dispatch_store_failure_gives_no_output(void **state) {
    fixture_t *f = *state;
    char errstr[128];
    const char *json = "{\"request_id\":\"r-60\",\"parcel_id\":\"p-77\","
                       "\"courier_id\":\"c-12\"}";

    for (int nth = 1; nth <= 3; nth++) {
        add(f, json, NOW_MS);
        fake_store_fail_nth(f->st, nth);
        errstr[0] = '\0';
        assert_int_equal(dd_dispatch_batch(f->st, f->items, f->n, NOW_MS,
                                           errstr, sizeof(errstr)),
                         DD_ERR);
        assert_string_equal(errstr, "fake redis: injected failure");
        assert_null(f->items[0].result);
        assert_int_equal(f->items[0].result_len, 0);
        assert_int_equal(f->items[0].eta_misses, 0);
        assert_null(fake_store_ledger(f->st, "r-60"));
        assert_null(fake_store_reservation(f->st, "c-12"));
        clear_items(f);
    }

    /* The retry of the same batch then succeeds. */
    add(f, json, NOW_MS);
    run(f);
    assert_int_equal(f->items[0].status, DD_STATUS_ASSIGNED);
    assert_ledger_is(f, &f->items[0]);
}

static void test_dispatch_store_down_gives_no_output(void **state) {
    fixture_t *f = *state;
    char errstr[128];

    add(f,
        "{\"request_id\":\"r-61\",\"parcel_id\":\"p-77\","
        "\"courier_id\":\"c-12\"}",
        NOW_MS);
    fake_store_set_down(f->st, 1);
    assert_int_equal(dd_dispatch_batch(f->st, f->items, f->n, NOW_MS, errstr,
                                       sizeof(errstr)),
                     DD_ERR);
    assert_null(f->items[0].result);
    fake_store_set_down(f->st, 0);
}

static void test_dispatch_batch_uses_four_round_trips(void **state) {
    fixture_t *f = *state;
    fake_store_add_courier(f->st, "c-near", 52.5180, 13.3810, "bike",
                           "available");
    add(f,
        "{\"request_id\":\"r-70\",\"parcel_id\":\"p-77\","
        "\"courier_id\":\"c-12\"}",
        NOW_MS);
    add(f,
        "{\"request_id\":\"r-71\",\"parcel_id\":\"p-77\","
        "\"candidates\":[\"c-near\",\"c-12\"]}",
        NOW_MS);
    add(f,
        "{\"request_id\":\"r-72\",\"parcel_id\":\"p-none\","
        "\"courier_id\":\"c-12\"}",
        NOW_MS);
    add(f,
        "{\"request_id\":\"r-73\",\"parcel_id\":\"p-77\","
        "\"courier_id\":\"c-12\",\"deadline_ms\":1}",
        NOW_MS - 10);
    run(f);
    assert_int_equal(fake_store_round_trips(f->st, FAKE_STORE_LOAD), 1);
    assert_int_equal(fake_store_round_trips(f->st, FAKE_STORE_ETA_GET), 1);
    assert_int_equal(fake_store_round_trips(f->st, FAKE_STORE_RESERVE), 1);
    assert_int_equal(fake_store_round_trips(f->st, FAKE_STORE_RECORD), 1);
    assert_int_equal(fake_store_total_round_trips(f->st), 4);
    for (size_t i = 0; i < f->n; i++)
        assert_ledger_is(f, &f->items[i]);
    clear_items(f);

    /* All four again: all ledger hits, one round trip. */
    fake_store_reset_counts(f->st);
    add(f,
        "{\"request_id\":\"r-70\",\"parcel_id\":\"p-77\","
        "\"courier_id\":\"c-12\"}",
        NOW_MS);
    add(f,
        "{\"request_id\":\"r-71\",\"parcel_id\":\"p-77\","
        "\"candidates\":[\"c-near\",\"c-12\"]}",
        NOW_MS);
    add(f,
        "{\"request_id\":\"r-72\",\"parcel_id\":\"p-none\","
        "\"courier_id\":\"c-12\"}",
        NOW_MS);
    add(f,
        "{\"request_id\":\"r-73\",\"parcel_id\":\"p-77\","
        "\"courier_id\":\"c-12\",\"deadline_ms\":1}",
        NOW_MS - 10);
    run(f);
    assert_int_equal(fake_store_total_round_trips(f->st), 1);
    for (size_t i = 0; i < f->n; i++)
        assert_int_equal(f->items[i].from_ledger, 1);
}

static void test_dispatch_same_request_twice_in_batch(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *a, *b;
    const char *json = "{\"request_id\":\"r-80\",\"parcel_id\":\"p-77\","
                       "\"courier_id\":\"c-12\"}";
    a = add(f, json, NOW_MS);
    b = add(f, json, NOW_MS);
    run(f);
    assert_int_equal(a->status, DD_STATUS_ASSIGNED);
    assert_int_equal(b->status, DD_STATUS_ASSIGNED);
    assert_int_equal(b->from_ledger, 1);
    assert_int_equal(a->result_len, b->result_len);
    assert_memory_equal(a->result, b->result, a->result_len);
}

static void test_dispatch_empty_batch_makes_no_call(void **state) {
    fixture_t *f = *state;
    run(f);
    assert_int_equal(fake_store_total_round_trips(f->st), 0);
}

/*----- Dry run (replay --dry-run) -----*/

static void run_dry(fixture_t *f) {
    char errstr[256] = "";
    if (dd_dispatch_batch_dry_run(f->st, f->items, f->n, NOW_MS, errstr,
                                  sizeof(errstr)) != DD_OK)
        fail_msg("dd_dispatch_batch_dry_run: %s", errstr);
}

static void
test_dispatch_dry_run_answers_like_a_run_without_writing(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it =
        add(f,
            "{\"request_id\":\"r-1001\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-12\",\"deadline_ms\":2000}",
            NOW_MS - 100);

    run_dry(f);
    /* The bytes a real run would have stored and published. */
    assert_string_equal(
        it->result,
        "{\"request_id\":\"r-1001\",\"status\":\"assigned\","
        "\"parcel_id\":\"p-77\",\"courier_id\":\"c-12\",\"eta_seconds\":778,"
        "\"pickup_eta_seconds\":389,\"distance_m\":6457,\"eta_cached\":false,"
        "\"source\":{\"topic\":\"dispatch.requests\",\"partition\":3,"
        "\"offset\":1234},\"processed_at\":\"2026-11-27T20:00:00.042Z\"}");
    assert_int_equal(it->result_len, strlen(it->result));
    assert_int_equal(it->status, DD_STATUS_ASSIGNED);
    assert_int_equal(it->from_ledger, 0);
    assert_int_equal(it->eta_misses, 2);
    /* Reads only: RT1 and RT2, no reservation or record, nothing written. */
    assert_int_equal(fake_store_round_trips(f->st, FAKE_STORE_LOAD), 1);
    assert_int_equal(fake_store_round_trips(f->st, FAKE_STORE_ETA_GET), 1);
    assert_int_equal(fake_store_round_trips(f->st, FAKE_STORE_RESERVE), 0);
    assert_int_equal(fake_store_round_trips(f->st, FAKE_STORE_RECORD), 0);
    assert_null(fake_store_reservation(f->st, "c-12"));
    assert_null(fake_store_ledger(f->st, "r-1001"));
    assert_int_equal(fake_store_count(f->st, "eta:"), 0);
}

static void test_dispatch_dry_run_every_outcome(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *unknown_parcel, *unknown_courier, *busy, *none,
        *expired, *best;
    fake_store_add_courier(f->st, "c-busy", ALEX_LAT, ALEX_LON, "car", "busy");
    fake_store_add_courier(f->st, "c-near", TOR_LAT, TOR_LON, "bike",
                           "available");
    unknown_parcel = add(f,
                         "{\"request_id\":\"r-1\",\"parcel_id\":\"p-none\","
                         "\"courier_id\":\"c-12\"}",
                         NOW_MS);
    unknown_courier = add(f,
                          "{\"request_id\":\"r-2\",\"parcel_id\":\"p-77\","
                          "\"courier_id\":\"c-none\"}",
                          NOW_MS);
    busy = add(f,
               "{\"request_id\":\"r-3\",\"parcel_id\":\"p-77\","
               "\"courier_id\":\"c-busy\"}",
               NOW_MS);
    none = add(f,
               "{\"request_id\":\"r-4\",\"parcel_id\":\"p-77\","
               "\"candidates\":[\"c-busy\",\"c-none\"]}",
               NOW_MS);
    expired = add(f,
                  "{\"request_id\":\"r-5\",\"parcel_id\":\"p-77\","
                  "\"courier_id\":\"c-12\",\"deadline_ms\":1}",
                  NOW_MS - 1000);
    /* c-near waits at the pickup: the lowest pickup ETA wins. */
    best = add(f,
               "{\"request_id\":\"r-6\",\"parcel_id\":\"p-77\","
               "\"candidates\":[\"c-12\",\"c-near\"]}",
               NOW_MS);

    run_dry(f);
    assert_int_equal(unknown_parcel->status, DD_STATUS_REJECTED);
    assert_string_equal(unknown_parcel->reason, DD_REASON(UNKNOWN_PARCEL));
    assert_int_equal(unknown_courier->status, DD_STATUS_REJECTED);
    assert_string_equal(unknown_courier->reason, DD_REASON(UNKNOWN_COURIER));
    assert_int_equal(busy->status, DD_STATUS_REJECTED);
    assert_string_equal(busy->reason, DD_REASON(COURIER_UNAVAILABLE));
    assert_int_equal(none->status, DD_STATUS_REJECTED);
    assert_string_equal(none->reason, DD_REASON(NO_CANDIDATE_AVAILABLE));
    assert_int_equal(expired->status, DD_STATUS_EXPIRED);
    assert_string_equal(expired->reason, DD_REASON(DEADLINE_EXPIRED));
    assert_int_equal(best->status, DD_STATUS_ASSIGNED);
    assert_contains(best->result, "\"courier_id\":\"c-near\"");
    assert_int_equal(fake_store_count(f->st, "result:"), 0);
    assert_int_equal(fake_store_count(f->st, "reservation:"), 0);
}

static void test_dispatch_dry_run_ignores_reservations(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *a, *b;
    /* Held by someone else: a real run rejects, a dry run does not read
     * reservations, and two competing requests both count as assigned. */
    fake_store_set(f->st, "reservation:c-12", "r-other");
    a = add(f,
            "{\"request_id\":\"r-a\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-12\"}",
            NOW_MS);
    b = add(f,
            "{\"request_id\":\"r-b\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-12\"}",
            NOW_MS);

    run_dry(f);
    assert_int_equal(a->status, DD_STATUS_ASSIGNED);
    assert_int_equal(b->status, DD_STATUS_ASSIGNED);
    assert_string_equal(fake_store_reservation(f->st, "c-12"), "r-other");
}

static void
test_dispatch_dry_run_ledger_hit_is_the_stored_answer(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it;
    const char *stored =
        "{\"request_id\":\"r-9\",\"status\":\"rejected\","
        "\"reason\":\"courier_unavailable\",\"parcel_id\":\"p-77\","
        "\"source\":{\"topic\":\"t\",\"partition\":0,\"offset\":1},"
        "\"processed_at\":\"2026-11-27T20:00:00.042Z\"}";
    fake_store_set(f->st, "result:r-9", stored);
    it = add(f,
             "{\"request_id\":\"r-9\",\"parcel_id\":\"p-77\","
             "\"courier_id\":\"c-12\"}",
             NOW_MS);

    run_dry(f);
    assert_int_equal(it->from_ledger, 1);
    assert_string_equal(it->result, stored);
    assert_int_equal(it->status, DD_STATUS_REJECTED);
    assert_string_equal(it->reason, DD_REASON(COURIER_UNAVAILABLE));
    assert_null(fake_store_reservation(f->st, "c-12"));
}

static void test_dispatch_dry_run_store_failure_gives_no_output(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it =
        add(f,
            "{\"request_id\":\"r-1\",\"parcel_id\":\"p-77\","
            "\"courier_id\":\"c-12\"}",
            NOW_MS);
    char errstr[64];

    fake_store_fail_nth(f->st, 2); /* the ETA read */
    assert_int_equal(dd_dispatch_batch_dry_run(f->st, f->items, f->n, NOW_MS,
                                               errstr, sizeof(errstr)),
                     DD_ERR);
    assert_null(it->result);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static void test_dispatch_dry_run_invalid_stored_result(void **state) {
    fixture_t *f = *state;
    dd_dispatch_item_t *it;
    fake_store_set(f->st, "result:r-73", "[1,2]");
    it = add(f,
             "{\"request_id\":\"r-73\",\"parcel_id\":\"p-77\","
             "\"courier_id\":\"c-12\"}",
             NOW_MS);
    run_dry(f);
    assert_int_equal(it->data_error, 1);
    assert_null(it->result);
    assert_contains(it->data_text, "not a JSON object");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_dispatch_assigns_named_courier_byte_for_byte),
        T(test_dispatch_candidates_pick_lowest_pickup_eta),
        T(test_dispatch_candidates_tie_goes_to_request_order),
        T(test_dispatch_skips_reserved_candidate),
        T(test_dispatch_rejects_unknown_parcel),
        T(test_dispatch_rejects_unknown_courier),
        T(test_dispatch_rejects_busy_or_offline_courier),
        T(test_dispatch_rejects_courier_reserved_by_other),
        T(test_dispatch_candidates_none_available),
        T(test_dispatch_one_courier_two_requests_one_batch),
        T(test_dispatch_ledger_hit_republishes_exact_bytes),
        T(test_dispatch_redelivery_is_byte_identical),
        T(test_dispatch_expired_skips_lookups),
        T(test_dispatch_deadline_not_yet_passed_is_served),
        T(test_dispatch_expired_redelivery_returns_ledger),
        T(test_dispatch_eta_cache_hit_equals_miss),
        T(test_dispatch_shared_leg_read_once),
        T(test_dispatch_repeated_legs_map_to_their_keys),
        T(test_dispatch_eta_write_failure_still_answers),
        T(test_dispatch_eta_read_error_recomputes),
        T(test_dispatch_eta_out_of_range_is_recomputed),
        T(test_dispatch_eta_bounds),
        T(test_dispatch_invalid_stored_result_is_a_data_error),
        T(test_dispatch_invalid_courier_data),
        T(test_dispatch_invalid_candidates),
        T(test_dispatch_invalid_parcel_data),
        T(test_dispatch_data_warnings_are_rate_limited),
        T(test_dispatch_store_failure_gives_no_output),
        T(test_dispatch_store_down_gives_no_output),
        T(test_dispatch_batch_uses_four_round_trips),
        T(test_dispatch_same_request_twice_in_batch),
        T(test_dispatch_empty_batch_makes_no_call),
        T(test_dispatch_dry_run_answers_like_a_run_without_writing),
        T(test_dispatch_dry_run_every_outcome),
        T(test_dispatch_dry_run_ignores_reservations),
        T(test_dispatch_dry_run_ledger_hit_is_the_stored_answer),
        T(test_dispatch_dry_run_store_failure_gives_no_output),
        T(test_dispatch_dry_run_invalid_stored_result),
    };
    return cmocka_run_group_tests_name("dispatch", tests, NULL, NULL);
}
