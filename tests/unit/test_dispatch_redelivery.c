/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of redelivery through dispatch, against the fake store
 * (tests/fakes/fake_store.c): the process crashes after each write step of
 * a batch (after each reservation round, after the record, before the
 * publish) and the batch is delivered again; and a second process works on
 * the same request at the same time. Each case checks what
 * src/store_commit.c argues: the bytes answered are the bytes stored, a
 * redelivery after the record answers byte-identical bytes, a courier is
 * never held by two request ids, and the courier of an assignment is the
 * one reserved by its request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "dispatch.h"
#include "fake_store.h"
#include "util.h"

#define NOW_MS   1795809600042LL /* 2026-11-27T20:00:00.042Z */
#define LATER_MS (NOW_MS + 5000) /* the redelivery: another processed_at */
#define NREQS    4
#define WRITES   4 /* write round trips of the batch: 3 rounds, 1 record */

/* Pickup at the Brandenburger Tor; couriers ever further east. */
#define TOR_LAT 52.516275
#define TOR_LON 13.377704

static const char *const couriers[] = {"c-a", "c-b", "c-c"};
static const char *const rids[NREQS] = {"r-1", "r-2", "r-3", "r-4"};
/* The courier each request gets without a crash ("": rejected). */
static const char *const outcome[NREQS] = {"c-a", "", "c-c", ""};

/* r-1 and r-2 both want c-a first, r-1 wins it in round 1; c-b is held by
 * another request (round 2), and r-3, which names c-c, took it in round 1,
 * so r-2 gets nothing after round 3; r-4 names an unknown courier. */
static const char *const requests[NREQS] = {
    "{\"request_id\":\"r-1\",\"parcel_id\":\"p-1\","
    "\"candidates\":[\"c-a\",\"c-b\"]}",
    "{\"request_id\":\"r-2\",\"parcel_id\":\"p-1\","
    "\"candidates\":[\"c-a\",\"c-b\",\"c-c\"]}",
    "{\"request_id\":\"r-3\",\"parcel_id\":\"p-1\",\"courier_id\":\"c-c\"}",
    "{\"request_id\":\"r-4\",\"parcel_id\":\"p-1\",\"courier_id\":\"c-x\"}",
};

typedef struct batch {
    dd_request_t reqs[NREQS];
    dd_dispatch_item_t items[NREQS];
} batch_t;

static dd_store_t *fleet(void) {
    dd_store_t *st = fake_store_new();

    assert_non_null(st);
    fake_store_add_parcel(st, "p-1", TOR_LAT, TOR_LON, 52.521918, 13.413215);
    for (int i = 0; i < 3; i++)
        fake_store_add_courier(st, couriers[i], TOR_LAT,
                               TOR_LON + 0.01 * (i + 1), "bike", "available");
    fake_store_set(st, "reservation:c-b", "r-other");
    return st;
}

static void batch_init(batch_t *b) {
    dd_codec_error_t err;

    memset(b, 0, sizeof(*b));
    for (int i = 0; i < NREQS; i++) {
        assert_int_equal(dd_codec_parse_request(requests[i],
                                                strlen(requests[i]),
                                                &b->reqs[i], &err),
                         DD_OK);
        b->items[i].req = &b->reqs[i];
        b->items[i].msg_ts_ms = -1;
        b->items[i].source_topic = "dispatch.requests";
        b->items[i].source_offset = i;
    }
}

static void batch_reset(batch_t *b) {
    for (int i = 0; i < NREQS; i++)
        dd_dispatch_item_reset(&b->items[i]);
}

static int deliver(dd_store_t *st, batch_t *b, int64_t now) {
    char errstr[256] = "";

    batch_reset(b);
    return dd_dispatch_batch(st, b->items, NREQS, now, errstr, sizeof(errstr));
}

/* The courier_id of a result, into buf ("" when none). */
static void courier_of(const char *json, char *buf, size_t size) {
    const char *p = strstr(json, "\"courier_id\":\"");
    size_t len = 0;

    buf[0] = '\0';
    if (p == NULL)
        return;
    p += 14;
    while (p[len] != '"' && p[len] != '\0' && len + 1 < size)
        len++;
    memcpy(buf, p, len);
    buf[len] = '\0';
}

/* What every answered batch must show: each item's bytes are its stored
 * result; each assignment names a courier reserved by its own request and
 * by no other, and no two assignments name one courier; every reservation
 * names one request id (one holder per courier). */
static void check_answers(dd_store_t *st, const batch_t *b) {
    char assigned[NREQS][32];

    for (int i = 0; i < NREQS; i++) {
        const dd_dispatch_item_t *it = &b->items[i];
        const char *led = fake_store_ledger(st, rids[i]);
        const char *holder;

        assert_int_equal(it->data_error, 0);
        assert_non_null(it->result);
        assert_non_null(led);
        assert_int_equal(it->result_len, strlen(led));
        assert_memory_equal(it->result, led, it->result_len);
        courier_of(it->result, assigned[i], sizeof(assigned[i]));
        if (it->status != DD_STATUS_ASSIGNED) {
            assigned[i][0] = '\0';
            continue;
        }
        holder = fake_store_reservation(st, assigned[i]);
        assert_non_null(holder);
        assert_string_equal(holder, rids[i]);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(assigned[j], assigned[i]);
    }
    assert_string_equal(fake_store_reservation(st, "c-b"), "r-other");
}

/* Crash after write round trip k (1..WRITES), or, for k = 0, after the
 * batch but before its answers are published; then the redelivery, and
 * one more. */
static void crash_and_redeliver(int k) {
    dd_store_t *st = fleet();
    batch_t b;
    char *stored[NREQS] = {NULL};
    int recorded = k == 0 || k >= WRITES;

    batch_init(&b);
    fake_store_crash_after(st, k);
    assert_int_equal(deliver(st, &b, NOW_MS), k == 0 ? DD_OK : DD_ERR);
    for (int i = 0; i < NREQS; i++) {
        const char *led = fake_store_ledger(st, rids[i]);
        /* Records are written in one round trip: all or none. */
        assert_int_equal(led != NULL, recorded);
        stored[i] = led != NULL ? dd_xstrdup(led) : NULL;
        if (k != 0) /* a crash: nothing answered, nothing to publish */
            assert_null(b.items[i].result);
    }
    /* k == 0: the answers are dropped unpublished by the crash. */

    assert_int_equal(deliver(st, &b, LATER_MS), DD_OK);
    check_answers(st, &b);
    for (int i = 0; i < NREQS; i++) {
        char c[32];
        /* A reservation taken before the crash is found again. */
        courier_of(b.items[i].result, c, sizeof(c));
        if (b.items[i].status != DD_STATUS_ASSIGNED)
            c[0] = '\0';
        assert_string_equal(c, outcome[i]);
        assert_int_equal(b.items[i].from_ledger, recorded);
        if (recorded)
            assert_string_equal(b.items[i].result, stored[i]);
        dd_free(stored[i]);
        stored[i] = dd_xstrdup(b.items[i].result);
    }
    /* Any later redelivery republishes the same bytes. */
    assert_int_equal(deliver(st, &b, LATER_MS + 5000), DD_OK);
    for (int i = 0; i < NREQS; i++) {
        assert_int_equal(b.items[i].from_ledger, 1);
        assert_string_equal(b.items[i].result, stored[i]);
        dd_free(stored[i]);
    }
    batch_reset(&b);
    dd_store_destroy(st);
}

/* Without a crash: c-a to r-1 and c-c to r-3 (round 1), r-2 finds c-a,
 * c-b and c-c held (rounds 1 to 3), r-4 names nobody known: 3 rounds and
 * one record, the write round trips the crash points walk through. */
static void test_redelivery_batch_without_crash(void **state) {
    dd_store_t *st = fleet();
    batch_t b;
    (void)state;

    batch_init(&b);
    assert_int_equal(deliver(st, &b, NOW_MS), DD_OK);
    check_answers(st, &b);
    assert_int_equal(b.items[0].status, DD_STATUS_ASSIGNED);
    assert_string_equal(fake_store_reservation(st, "c-a"), "r-1");
    assert_int_equal(b.items[2].status, DD_STATUS_ASSIGNED);
    assert_string_equal(fake_store_reservation(st, "c-c"), "r-3");
    assert_int_equal(b.items[1].status, DD_STATUS_REJECTED);
    assert_int_equal(b.items[3].status, DD_STATUS_REJECTED);
    assert_int_equal(fake_store_round_trips(st, FAKE_STORE_RESERVE),
                     WRITES - 1);
    assert_int_equal(fake_store_round_trips(st, FAKE_STORE_RECORD), 1);
    batch_reset(&b);
    dd_store_destroy(st);
}

static void test_redelivery_after_reserve_round_1(void **state) {
    (void)state;
    crash_and_redeliver(1);
}

static void test_redelivery_after_reserve_round_2(void **state) {
    (void)state;
    crash_and_redeliver(2);
}

static void test_redelivery_after_reserve_round_3(void **state) {
    (void)state;
    crash_and_redeliver(3);
}

static void test_redelivery_after_record(void **state) {
    (void)state;
    crash_and_redeliver(WRITES);
}

static void test_redelivery_before_publish(void **state) {
    (void)state;
    crash_and_redeliver(0);
}

/* A crash after the first reservation round; before the redelivery c-a
 * (reserved by r-1) goes busy: the redelivery cannot assign it, and its
 * reservation stays behind, an orphan of r-1 until its TTL, named by no
 * result and held by no one else. */
static void test_redelivery_leaves_orphan_reservation(void **state) {
    dd_store_t *st = fleet();
    batch_t b;
    (void)state;

    batch_init(&b);
    fake_store_crash_after(st, 1);
    assert_int_equal(deliver(st, &b, NOW_MS), DD_ERR);
    assert_string_equal(fake_store_reservation(st, "c-a"), "r-1");
    fake_store_add_courier(st, "c-a", TOR_LAT, TOR_LON + 0.01, "bike", "busy");
    assert_int_equal(deliver(st, &b, LATER_MS), DD_OK);
    check_answers(st, &b);
    assert_int_equal(b.items[0].status, DD_STATUS_REJECTED);
    assert_null(strstr(b.items[0].result, "c-a"));
    assert_string_equal(fake_store_reservation(st, "c-a"), "r-1");
    batch_reset(&b);
    dd_store_destroy(st);
}

/* Two processes on r-1 at once (a rebalance): the other one reserved c-b
 * for r-1 (c-a was held when it looked) and records first; ours, whose
 * loads came before that record, takes c-a. Our SET NX is refused and the
 * other's bytes, read back, are what we answer; c-a stays an orphan of r-1
 * and no courier is held by two request ids. */
static void test_concurrent_duplicate_answers_stored_bytes(void **state) {
    dd_store_t *other = fleet(), *st = fleet();
    batch_t b;
    char *theirs;
    char errstr[256] = "";
    (void)state;

    /* The bytes the other process built for r-1 (with c-b). */
    batch_init(&b);
    fake_store_set(other, "reservation:c-a", "r-9");
    fake_store_set(other, "reservation:c-b", "r-1");
    assert_int_equal(
        dd_dispatch_batch(other, b.items, 1, NOW_MS, errstr, sizeof(errstr)),
        DD_OK);
    assert_int_equal(b.items[0].status, DD_STATUS_ASSIGNED);
    assert_non_null(strstr(b.items[0].result, "\"courier_id\":\"c-b\""));
    theirs = dd_xstrdup(b.items[0].result);
    batch_reset(&b);

    /* The shared Redis: the other's reservation of c-b is there; its
     * record lands just before ours (write round trip 4, after our three
     * reservation rounds). */
    fake_store_set(st, "reservation:c-b", "r-1");
    fake_store_set_before_write(st, WRITES, "result:r-1", theirs);
    assert_int_equal(deliver(st, &b, LATER_MS), DD_OK);
    assert_string_equal(b.items[0].result, theirs);
    assert_int_equal(b.items[0].from_ledger, 1);
    assert_int_equal(b.items[0].status, DD_STATUS_ASSIGNED);
    assert_string_equal(fake_store_ledger(st, "r-1"), theirs);
    /* One more round trip read the stored bytes back. */
    assert_int_equal(fake_store_round_trips(st, FAKE_STORE_RECORD), 2);
    assert_string_equal(fake_store_reservation(st, "c-a"), "r-1");
    assert_string_equal(fake_store_reservation(st, "c-b"), "r-1");
    assert_string_equal(fake_store_reservation(st, "c-c"), "r-3");
    for (int i = 1; i < NREQS; i++)
        assert_string_equal(b.items[i].result, fake_store_ledger(st, rids[i]));
    assert_int_equal(b.items[1].status, DD_STATUS_REJECTED);
    dd_free(theirs);
    batch_reset(&b);
    dd_store_destroy(st);
    dd_store_destroy(other);
}

/* As above, and the crash comes after the read-back of the other's bytes:
 * the redelivery finds them in the ledger and publishes them. */
static void test_concurrent_duplicate_then_crash(void **state) {
    dd_store_t *st = fleet();
    batch_t b;
    const char *theirs = "{\"request_id\":\"r-1\",\"status\":\"rejected\","
                         "\"reason\":\"no_candidate_available\","
                         "\"parcel_id\":\"p-1\",\"source\":{\"topic\":\"t\","
                         "\"partition\":0,\"offset\":7},\"processed_at\":"
                         "\"2026-11-27T19:59:00.000Z\"}";
    (void)state;

    batch_init(&b);
    fake_store_set_before_write(st, WRITES, "result:r-1", theirs);
    fake_store_crash_after(st, WRITES + 1);
    assert_int_equal(deliver(st, &b, NOW_MS), DD_ERR);
    assert_int_equal(fake_store_round_trips(st, FAKE_STORE_RECORD), 2);
    assert_int_equal(deliver(st, &b, LATER_MS), DD_OK);
    check_answers(st, &b);
    assert_string_equal(b.items[0].result, theirs);
    assert_int_equal(b.items[0].status, DD_STATUS_REJECTED);
    /* c-a, reserved by r-1 before the crash, stays its orphan. */
    assert_string_equal(fake_store_reservation(st, "c-a"), "r-1");
    batch_reset(&b);
    dd_store_destroy(st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redelivery_batch_without_crash),
        cmocka_unit_test(test_redelivery_after_reserve_round_1),
        cmocka_unit_test(test_redelivery_after_reserve_round_2),
        cmocka_unit_test(test_redelivery_after_reserve_round_3),
        cmocka_unit_test(test_redelivery_after_record),
        cmocka_unit_test(test_redelivery_before_publish),
        cmocka_unit_test(test_redelivery_leaves_orphan_reservation),
        cmocka_unit_test(test_concurrent_duplicate_answers_stored_bytes),
        cmocka_unit_test(test_concurrent_duplicate_then_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
