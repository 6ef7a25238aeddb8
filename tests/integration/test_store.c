/* SPDX-License-Identifier: MIT */
/*
 * Integration tests for store against a real redis-server (test DB 15,
 * keys under a test prefix): pipelined loads, the ETA cache, reservations
 * and records (also under contention between two threads, after a
 * reservation without a record, with a record stored first by another
 * delivery), ledger replay, TTLs, a closed port, a killed
 * connection, a command timeout, one dispatch batch end to end, the
 * lost-state marker (a flushed database is refused until acknowledged)
 * and AUTH as a Redis 6+ ACL user.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "codec.h"
#include "dd_test.h"
#include "dispatch.h"
#include "store.h"
#include "util.h"

#define PREFIX   "dd_test:"
#define N_LOADS  32
#define N_RACES  200
#define ETA_TTL  60
#define RES_TTL  30
#define IDEM_TTL 3600

typedef struct fixture {
    redisContext *c; /* raw connection for seeding and checking */
    dd_store_t *st;
} fixture_t;

static dd_store_conf_t test_conf(void) {
    dd_store_conf_t conf;

    memset(&conf, 0, sizeof(conf));
    conf.host = dd_test_redis_host();
    conf.port = dd_test_redis_port();
    conf.db = DD_TEST_REDIS_DB;
    conf.timeout_ms = 2000 * dd_test_timeout_multiplier();
    conf.prefix = PREFIX;
    conf.eta_ttl_s = ETA_TTL;
    conf.reservation_ttl_s = RES_TTL;
    conf.idempotency_ttl_s = IDEM_TTL;
    return conf;
}

static dd_store_t *new_store_conf(const dd_store_conf_t *conf) {
    char errstr[256];
    dd_store_t *st = dd_store_new(conf, errstr, sizeof(errstr));

    if (st == NULL)
        fail_msg("dd_store_new: %s", errstr);
    return st;
}

static dd_store_t *new_store(void) {
    dd_store_conf_t conf = test_conf();

    return new_store_conf(&conf);
}

/* A store whose reservations take two commands per candidate (SET NX EX,
 * GET) although the server takes SET NX GET. */
static dd_store_t *new_store_two_commands(void) {
    dd_store_conf_t conf = test_conf();

    conf.reserve_two_commands = 1;
    return new_store_conf(&conf);
}

static int setup(void **state) {
    fixture_t *f = dd_xcalloc(1, sizeof(*f));
    *state = f;
    return 0;
}

/* Every test starts with this: it skips or fails without services. */
static fixture_t *start(void **state) {
    fixture_t *f = *state;

    dd_test_require_services(1);
    dd_store_state_reset(); /* every test starts on an emptied database */
    f->c = dd_test_redis_connect();
    f->st = new_store();
    return f;
}

static int teardown(void **state) {
    fixture_t *f = *state;

    dd_store_destroy(f->st);
    dd_test_redis_close(f->c);
    dd_free(f);
    return 0;
}

static void cmd_ok(redisContext *c, const char *fmt, ...) {
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("redis: %s", r->str);
    freeReplyObject(r);
}

static long long ttl_of(redisContext *c, const char *key) {
    redisReply *r = redisCommand(c, "TTL %s%s", PREFIX, key);
    long long t;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    t = r->integer;
    freeReplyObject(r);
    return t;
}

/* GET PREFIX+key into an owned string, or NULL. */
static char *get_str(redisContext *c, const char *key) {
    redisReply *r = redisCommand(c, "GET %s%s", PREFIX, key);
    char *s = NULL;

    assert_non_null(r);
    if (r->type == REDIS_REPLY_STRING)
        s = dd_xstrndup(r->str, r->len);
    freeReplyObject(r);
    return s;
}

static void seed_courier(redisContext *c, const char *id, const char *lat,
                         const char *lon, const char *vehicle,
                         const char *status) {
    cmd_ok(c, "HSET %scourier:%s lat %s lon %s vehicle %s status %s", PREFIX,
           id, lat, lon, vehicle, status);
}

static void seed_parcel(redisContext *c, const char *id) {
    cmd_ok(c,
           "HSET %sparcel:%s pickup_lat 52.516275 pickup_lon 13.377704 "
           "dropoff_lat 52.521918 dropoff_lon 13.413215",
           PREFIX, id);
}

static void ping_ok(dd_store_t *st) {
    char errstr[256];
    if (dd_store_ping(st, errstr, sizeof(errstr)) != DD_OK)
        fail_msg("ping: %s", errstr);
}

/*----- RT1 -----*/

/* Exact double equality without tripping -Wfloat-equal. */
static int same(double a, double b) {
    return !(a < b) && !(a > b);
}

/* Server-side command counts: CONFIG RESETSTAT, then calls of one command
 * from INFO commandstats (0 when it never ran since). */
static void reset_cmdstats(redisContext *c) {
    cmd_ok(c, "CONFIG RESETSTAT");
}

static long long cmdstat_calls(redisContext *c, const char *cmd) {
    redisReply *r = redisCommand(c, "INFO commandstats");
    char want[64];
    const char *p;
    long long calls = 0;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    snprintf(want, sizeof(want), "cmdstat_%s:calls=", cmd);
    p = strstr(r->str, want);
    if (p != NULL)
        calls = atoll(p + strlen(want));
    freeReplyObject(r);
    return calls;
}

static void test_store_loads_32_requests_in_one_round_trip(void **state) {
    fixture_t *f = start(state);
    dd_store_load_t loads[N_LOADS];
    dd_store_courier_t couriers[N_LOADS][2];
    char rids[N_LOADS][16], pids[N_LOADS][16], cids[N_LOADS][2][16];
    const char *idp[N_LOADS][2];
    char errstr[256];
    dd_store_stats_t before, after;

    for (int i = 0; i < N_LOADS; i++) {
        snprintf(rids[i], sizeof(rids[i]), "r-%d", i);
        snprintf(pids[i], sizeof(pids[i]), "p-%d", i);
        snprintf(cids[i][0], sizeof(cids[i][0]), "c-%d", 2 * i);
        snprintf(cids[i][1], sizeof(cids[i][1]), "c-%d", 2 * i + 1);
        idp[i][0] = cids[i][0];
        idp[i][1] = cids[i][1];
        if (i % 4 != 3) /* every fourth parcel is missing */
            seed_parcel(f->c, pids[i]);
        seed_courier(f->c, cids[i][0], "52.52", "13.41", "bike",
                     i % 2 ? "busy" : "available");
        memset(&loads[i], 0, sizeof(loads[i]));
        loads[i].request_id = rids[i];
        loads[i].parcel_id = pids[i];
        loads[i].courier_ids = idp[i];
        loads[i].ncouriers = 2;
        loads[i].couriers = couriers[i];
    }
    /* Bad data: junk coordinate, missing field (both read as not found),
     * wrong type (a data error of load 2 alone); and a ledger. */
    seed_courier(f->c, "c-1", "north", "13.41", "car", "available");
    cmd_ok(f->c, "HSET %scourier:c-3 lat 1 lon 2 vehicle car", PREFIX);
    cmd_ok(f->c, "SET %scourier:c-5 oops", PREFIX);
    cmd_ok(f->c, "SET %sresult:r-7 {\"stored\":1}", PREFIX);
    loads[9].parcel_id = NULL; /* expired-style load: ledger only */
    loads[9].ncouriers = 0;

    ping_ok(f->st);
    dd_store_get_stats(f->st, &before);
    reset_cmdstats(f->c);
    if (dd_store_load(f->st, loads, N_LOADS, errstr, sizeof(errstr)) != DD_OK)
        fail_msg("load: %s", errstr);
    dd_store_get_stats(f->st, &after);
    assert_int_equal(after.round_trips - before.round_trips, 1);
    /* One MGET of the 32 ledgers, then the HMGETs (load 9: none). */
    assert_int_equal(after.commands - before.commands, 1 + N_LOADS * 3 - 3);
    assert_int_equal(cmdstat_calls(f->c, "mget"), 1);
    assert_int_equal(cmdstat_calls(f->c, "get"), 0);
    assert_int_equal(cmdstat_calls(f->c, "hmget"), N_LOADS * 3 - 3);

    for (int i = 0; i < N_LOADS; i++) {
        const dd_store_load_t *l = &loads[i];
        if (i == 2) { /* c-5 is a string: WRONGTYPE, charged to load 2 */
            assert_int_equal(l->data_error, 1);
            assert_non_null(strstr(l->error, "HMGET " PREFIX "courier:c-5: "
                                             "WRONGTYPE"));
            assert_null(l->ledger);
            assert_int_equal(l->parcel.found, 0);
            continue;
        }
        assert_int_equal(l->data_error, 0);
        if (i == 7) {
            assert_string_equal(l->ledger, "{\"stored\":1}");
            assert_int_equal(l->ledger_len, 12);
        } else {
            assert_null(l->ledger);
        }
        if (i == 9) {
            assert_int_equal(l->parcel.found, 0);
            continue;
        }
        assert_int_equal(l->parcel.found, i % 4 != 3);
        if (l->parcel.found) {
            assert_true(same(l->parcel.pickup_lat, 52.516275));
            assert_true(same(l->parcel.dropoff_lon, 13.413215));
        }
        /* c-2i: seeded, available when i is even (c-1/3/5 are odd). */
        assert_int_equal(couriers[i][0].found, 1);
        assert_int_equal(couriers[i][0].available, i % 2 == 0);
        assert_string_equal(couriers[i][0].vehicle, "bike");
        assert_true(same(couriers[i][0].lat, 52.52));
        /* c-2i+1: not seeded, or bad data. */
        assert_int_equal(couriers[i][1].found, 0);
    }
    for (int i = 0; i < N_LOADS; i++)
        dd_store_load_clear(&loads[i]);
}

/* More loads than one MGET takes: two MGETs, the ledgers in load order. */
static void test_store_loads_past_one_mget(void **state) {
    enum { N_BIG = 1100 };
    fixture_t *f = start(state);
    static dd_store_load_t loads[N_BIG];
    static char rids[N_BIG][16];
    char errstr[256];
    dd_store_stats_t before, after;

    memset(loads, 0, sizeof(loads));
    for (int i = 0; i < N_BIG; i++) {
        snprintf(rids[i], sizeof(rids[i]), "r-%d", i);
        loads[i].request_id = rids[i];
        if (i % 7 == 0)
            cmd_ok(f->c, "SET %sresult:%s v%d", PREFIX, rids[i], i);
    }
    ping_ok(f->st);
    dd_store_get_stats(f->st, &before);
    reset_cmdstats(f->c);
    if (dd_store_load(f->st, loads, N_BIG, errstr, sizeof(errstr)) != DD_OK)
        fail_msg("load: %s", errstr);
    dd_store_get_stats(f->st, &after);
    assert_int_equal(after.round_trips - before.round_trips, 1);
    assert_int_equal(after.commands - before.commands, 2);
    assert_int_equal(cmdstat_calls(f->c, "mget"), 2);
    for (int i = 0; i < N_BIG; i++) {
        char want[16];

        assert_int_equal(loads[i].data_error, 0);
        if (i % 7 != 0) {
            assert_null(loads[i].ledger);
            continue;
        }
        snprintf(want, sizeof(want), "v%d", i);
        assert_string_equal(loads[i].ledger, want);
        dd_store_load_clear(&loads[i]);
    }
}

/*----- RT2 and ETA puts -----*/

static void test_store_eta_cache_round_trip_with_ttl(void **state) {
    fixture_t *f = start(state);
    const char *keys[3] = {"eta:v1:car:u33dc1r:u33db2m",
                           "eta:v1:bike:u33dc1r:u33db2m", "eta:v1:junk"};
    int64_t secs[3];
    dd_store_eta_put_t puts[2] = {{keys[0], 389, 0}, {keys[1], 778, 0}};
    char errstr[256];
    int put_errors = -1;
    dd_store_stats_t s;

    cmd_ok(f->c, "SET %seta:v1:junk -5", PREFIX);
    assert_int_equal(
        dd_store_eta_get(f->st, keys, 3, secs, errstr, sizeof(errstr)), DD_OK);
    assert_int_equal(secs[0], DD_STORE_ETA_MISS);
    assert_int_equal(secs[1], DD_STORE_ETA_MISS);
    assert_int_equal(secs[2], DD_STORE_ETA_ERROR);

    assert_int_equal(dd_store_record(f->st, puts, 2, NULL, 0, &put_errors,
                                     errstr, sizeof(errstr)),
                     DD_OK);
    assert_int_equal(put_errors, 0);
    assert_true(ttl_of(f->c, keys[0]) > 0);
    assert_true(ttl_of(f->c, keys[0]) <= ETA_TTL);

    assert_int_equal(
        dd_store_eta_get(f->st, keys, 2, secs, errstr, sizeof(errstr)), DD_OK);
    assert_int_equal(secs[0], 389);
    assert_int_equal(secs[1], 778);
    dd_store_get_stats(f->st, &s);
    assert_int_equal(s.eta_hits, 2);
    assert_int_equal(s.eta_misses, 2);
    assert_int_equal(s.eta_errors, 1);
}

/* One server: the ETA keys of a batch are one MGET (two past
 * DD_STORE_MGET_MAX keys); a key of another type reads as a miss, and the
 * put that follows overwrites it. */
static void test_store_eta_get_is_one_mget(void **state) {
    enum { N_BIG = 1500 };
    fixture_t *f = start(state);
    const char *keys[4] = {"eta:v1:hit", "eta:v1:miss", "eta:v1:junk",
                           "eta:v1:hash"};
    dd_store_eta_put_t put = {"eta:v1:hash", 42, 0};
    static char names[N_BIG][32];
    static const char *big[N_BIG];
    static int64_t bigsecs[N_BIG];
    int64_t secs[4];
    char errstr[256];
    dd_store_stats_t before, after;

    cmd_ok(f->c, "SET %seta:v1:hit 17", PREFIX);
    cmd_ok(f->c, "SET %seta:v1:junk x", PREFIX);
    cmd_ok(f->c, "HSET %seta:v1:hash a b", PREFIX);
    ping_ok(f->st);
    dd_store_get_stats(f->st, &before);
    reset_cmdstats(f->c);
    assert_int_equal(
        dd_store_eta_get(f->st, keys, 4, secs, errstr, sizeof(errstr)), DD_OK);
    assert_int_equal(cmdstat_calls(f->c, "mget"), 1);
    assert_int_equal(cmdstat_calls(f->c, "get"), 0);
    dd_store_get_stats(f->st, &after);
    assert_int_equal(after.round_trips - before.round_trips, 1);
    assert_int_equal(after.commands - before.commands, 1);
    assert_int_equal(secs[0], 17);
    assert_int_equal(secs[1], DD_STORE_ETA_MISS);
    assert_int_equal(secs[2], DD_STORE_ETA_ERROR);
    assert_int_equal(secs[3], DD_STORE_ETA_MISS); /* a hash: nil in MGET */
    assert_int_equal(after.eta_hits - before.eta_hits, 1);
    assert_int_equal(after.eta_misses - before.eta_misses, 2);
    assert_int_equal(after.eta_errors - before.eta_errors, 1);
    assert_int_equal(after.reply_errors, before.reply_errors);

    /* The recomputed ETA overwrites the hash; the next read is a hit. */
    assert_int_equal(
        dd_store_record(f->st, &put, 1, NULL, 0, NULL, errstr, sizeof(errstr)),
        DD_OK);
    assert_int_equal(put.error, 0);
    assert_int_equal(
        dd_store_eta_get(f->st, keys + 3, 1, secs, errstr, sizeof(errstr)),
        DD_OK);
    assert_int_equal(secs[0], 42);

    /* More keys than one MGET takes: two, in one round trip, in order. */
    for (int i = 0; i < N_BIG; i++) {
        snprintf(names[i], sizeof(names[i]), "eta:v1:b%d", i);
        big[i] = names[i];
        if (i % 3 == 0)
            cmd_ok(f->c, "SET %s%s %d", PREFIX, names[i], i);
    }
    dd_store_get_stats(f->st, &before);
    reset_cmdstats(f->c);
    assert_int_equal(
        dd_store_eta_get(f->st, big, N_BIG, bigsecs, errstr, sizeof(errstr)),
        DD_OK);
    assert_int_equal(cmdstat_calls(f->c, "mget"), 2);
    dd_store_get_stats(f->st, &after);
    assert_int_equal(after.round_trips - before.round_trips, 1);
    assert_int_equal(after.commands - before.commands, 2);
    for (int i = 0; i < N_BIG; i++)
        assert_int_equal(bigsecs[i], i % 3 == 0 ? i : DD_STORE_ETA_MISS);
    assert_int_equal(after.eta_hits - before.eta_hits, N_BIG / 3);
    assert_int_equal(after.eta_misses - before.eta_misses, N_BIG - N_BIG / 3);
}

/*----- RT3 and RT4: reserve and record -----*/

static void make_reserve(dd_store_reserve_t *rv, const char *rid,
                         const char *const *ids, size_t n) {
    memset(rv, 0, sizeof(*rv));
    rv->request_id = rid;
    rv->candidate_ids = ids;
    rv->ncandidates = n;
}

static void make_record(dd_store_record_t *rec, const char *rid,
                        const char *json) {
    memset(rec, 0, sizeof(*rec));
    rec->request_id = rid;
    rec->json = json;
    rec->json_len = strlen(json);
}

/* One request through both steps as dispatch takes them: json[chosen] or
 * fallback is recorded. *bytes gets what result:{rid} holds (owned);
 * returns the candidate chosen. */
static int reserve_record(dd_store_t *st, const char *rid,
                          const char *const *ids, const char *const *json,
                          size_t n, const char *fallback, char **bytes) {
    dd_store_reserve_t rv;
    dd_store_record_t rec;
    char errstr[256];

    make_reserve(&rv, rid, ids, n);
    if (dd_store_reserve(st, &rv, 1, errstr, sizeof(errstr)) != DD_OK)
        fail_msg("reserve %s: %s", rid, errstr);
    assert_int_equal(rv.data_error, 0);
    make_record(&rec, rid, rv.chosen >= 0 ? json[rv.chosen] : fallback);
    if (dd_store_record(st, NULL, 0, &rec, 1, NULL, errstr, sizeof(errstr)) !=
        DD_OK)
        fail_msg("record %s: %s", rid, errstr);
    assert_int_equal(rec.data_error, 0);
    *bytes = rec.stored != NULL ? rec.stored : dd_xstrdup(rec.json);
    rec.stored = NULL;
    return rv.chosen;
}

/* The first write of a process sets the marker (two more commands): done
 * here so that the counts below are those of the batch. */
static void writes_ok(dd_store_t *st) {
    dd_store_record_t rec;
    char errstr[256];

    make_record(&rec, "r-warm-up", "{}");
    if (dd_store_record(st, NULL, 0, &rec, 1, NULL, errstr, sizeof(errstr)) !=
        DD_OK)
        fail_msg("record: %s", errstr);
    dd_store_record_clear(&rec);
}

/* Both forms of a reservation: one SET NX GET per candidate (Redis >=
 * 7.0.0, the stack's), or SET NX EX and GET (two). */
static void reserves_and_records(void **state, int two) {
    fixture_t *f = start(state);
    const char *ids[2] = {"c-a", "c-b"};
    const char *json1[2] = {"{\"for\":\"c-a\",\"v\":1}",
                            "{\"for\":\"c-b\",\"v\":1}"};
    dd_store_reserve_t rv[3];
    dd_store_stats_t before, after;
    char errstr[256], *s;

    cmd_ok(f->c, "SET %sreservation:c-a r-other", PREFIX);
    make_reserve(&rv[0], "r-1", ids, 2);
    /* r-2 wants only c-b and takes it in round 1, while r-1 finds its best
     * candidate c-a held; in round 2 r-1 finds c-b held too. r-3 has no
     * candidate. */
    make_reserve(&rv[1], "r-2", ids + 1, 1);
    make_reserve(&rv[2], "r-3", NULL, 0);
    if (two) {
        dd_store_destroy(f->st);
        f->st = new_store_two_commands();
    }
    writes_ok(f->st);
    dd_store_get_stats(f->st, &before);
    reset_cmdstats(f->c);
    if (dd_store_reserve(f->st, rv, 3, errstr, sizeof(errstr)) != DD_OK)
        fail_msg("reserve: %s", errstr);
    dd_store_get_stats(f->st, &after);
    assert_int_equal(rv[0].chosen, DD_STORE_RESERVE_NONE);
    assert_int_equal(rv[1].chosen, 0);
    assert_int_equal(rv[2].chosen, DD_STORE_RESERVE_NONE);
    /* Round 1: marker + 2 x (SET NX GET), or 2 x (SET NX, GET); round 2:
     * r-1 on c-b. */
    assert_int_equal(after.round_trips - before.round_trips, 2);
    assert_int_equal(after.commands - before.commands, two ? 7 : 4);
    assert_int_equal(cmdstat_calls(f->c, "set"), 3);
    assert_int_equal(cmdstat_calls(f->c, "get"), two ? 4 : 1);
    s = get_str(f->c, "reservation:c-b");
    assert_string_equal(s, "r-2");
    dd_free(s);
    s = get_str(f->c, "reservation:c-a");
    assert_string_equal(s, "r-other");
    dd_free(s);
    assert_true(ttl_of(f->c, "reservation:c-b") > 0);
    assert_true(ttl_of(f->c, "reservation:c-b") <= RES_TTL);

    /* Recorded with its TTL; one round trip without a conflict. */
    {
        dd_store_record_t rec[2];
        make_record(&rec[0], "r-1", "{\"none\":1}");
        make_record(&rec[1], "r-2", json1[1]);
        dd_store_get_stats(f->st, &before);
        if (dd_store_record(f->st, NULL, 0, rec, 2, NULL, errstr,
                            sizeof(errstr)) != DD_OK)
            fail_msg("record: %s", errstr);
        dd_store_get_stats(f->st, &after);
        assert_int_equal(after.round_trips - before.round_trips, 1);
        assert_int_equal(after.commands - before.commands, 3);
        assert_null(rec[0].stored);
        assert_null(rec[1].stored);
    }
    s = get_str(f->c, "result:r-2");
    assert_string_equal(s, json1[1]);
    dd_free(s);
    assert_true(ttl_of(f->c, "result:r-1") > 0);
    assert_true(ttl_of(f->c, "result:r-1") <= IDEM_TTL);
    assert_true(ttl_of(f->c, "result:r-2") > 0);
}

static void test_store_reserves_and_records(void **state) {
    reserves_and_records(state, 0);
}

static void test_store_reserves_and_records_two_commands(void **state) {
    reserves_and_records(state, 1);
}

/* A crash after the reservation, before the record: the redelivery finds
 * its own reservation (SET NX refused, GET shows its id) and keeps it. */
static void test_store_redelivery_after_reserve_only(void **state) {
    fixture_t *f = start(state);
    const char *ids[2] = {"c-r1", "c-r2"};
    const char *json[2] = {"{\"for\":\"c-r1\",\"v\":2}",
                           "{\"for\":\"c-r2\",\"v\":2}"};
    dd_store_reserve_t rv;
    char errstr[256], *bytes, *s;

    make_reserve(&rv, "r-9", ids, 2);
    if (dd_store_reserve(f->st, &rv, 1, errstr, sizeof(errstr)) != DD_OK)
        fail_msg("reserve: %s", errstr);
    assert_int_equal(rv.chosen, 0);
    /* ... crash. Another request now wants c-r1 too: it is held. */
    assert_int_equal(
        reserve_record(f->st, "r-10", ids, json, 1, "{\"no\":1}", &bytes),
        DD_STORE_RESERVE_NONE);
    assert_string_equal(bytes, "{\"no\":1}");
    dd_free(bytes);
    /* The redelivery of r-9 keeps c-r1, in one round. */
    assert_int_equal(
        reserve_record(f->st, "r-9", ids, json, 2, "{\"no\":9}", &bytes), 0);
    assert_string_equal(bytes, json[0]);
    dd_free(bytes);
    s = get_str(f->c, "reservation:c-r1");
    assert_string_equal(s, "r-9");
    dd_free(s);
    assert_null(get_str(f->c, "reservation:c-r2"));
}

/* Another delivery recorded first: the SET NX is refused and the stored
 * bytes, read in one more round trip, are the answer. */
static void test_store_record_refused_returns_stored_bytes(void **state) {
    fixture_t *f = start(state);
    dd_store_record_t rec[2];
    dd_store_stats_t before, after;
    char errstr[256], *s;

    cmd_ok(f->c, "SET %sresult:r-first {\"first\":1}", PREFIX);
    make_record(&rec[0], "r-first", "{\"second\":1}");
    make_record(&rec[1], "r-new", "{\"new\":1}");
    ping_ok(f->st);
    dd_store_get_stats(f->st, &before);
    if (dd_store_record(f->st, NULL, 0, rec, 2, NULL, errstr, sizeof(errstr)) !=
        DD_OK)
        fail_msg("record: %s", errstr);
    dd_store_get_stats(f->st, &after);
    assert_int_equal(after.round_trips - before.round_trips, 2);
    assert_int_equal(after.record_reads - before.record_reads, 1);
    assert_string_equal(rec[0].stored, "{\"first\":1}");
    assert_int_equal(rec[0].stored_len, 11);
    assert_null(rec[1].stored);
    s = get_str(f->c, "result:r-first");
    assert_string_equal(s, "{\"first\":1}");
    dd_free(s);
    dd_store_record_clear(&rec[0]);
    dd_store_record_clear(&rec[1]);
}

/* Two threads, two stores, one courier per round. */
typedef struct racer {
    pthread_barrier_t *bar;
    const char *name;
    int wins;
    int errors;
    int two; /* reserves with SET NX EX and GET, not SET NX GET */
} racer_t;

static void *race(void *arg) {
    racer_t *rc = arg;
    dd_store_t *st = rc->two ? new_store_two_commands() : new_store();
    char errstr[256];

    for (int i = 0; i < N_RACES; i++) {
        char cid[32], rid[32];
        const char *ids[1] = {cid};
        dd_store_reserve_t rv;
        dd_store_record_t rec;

        snprintf(cid, sizeof(cid), "c-race-%d", i);
        snprintf(rid, sizeof(rid), "r-%s-%d", rc->name, i);
        make_reserve(&rv, rid, ids, 1);
        pthread_barrier_wait(rc->bar);
        if (dd_store_reserve(st, &rv, 1, errstr, sizeof(errstr)) != DD_OK ||
            rv.data_error) {
            rc->errors++;
            continue;
        }
        make_record(&rec, rid, rv.chosen == 0 ? rid : "lost");
        if (dd_store_record(st, NULL, 0, &rec, 1, NULL, errstr,
                            sizeof(errstr)) != DD_OK ||
            rec.stored != NULL) {
            rc->errors++;
            dd_store_record_clear(&rec);
            continue;
        }
        if (rv.chosen == 0)
            rc->wins++;
        else if (rv.chosen != DD_STORE_RESERVE_NONE)
            rc->errors++;
    }
    dd_store_destroy(st);
    return NULL;
}

static void test_store_reserves_once_under_contention(void **state) {
    fixture_t *f = start(state);
    pthread_barrier_t bar;
    pthread_t t[2];
    /* a reserves with one command per candidate, b with two: each form
     * is atomic against the other. */
    racer_t rc[2] = {{&bar, "a", 0, 0, 0}, {&bar, "b", 0, 0, 1}};

    assert_int_equal(pthread_barrier_init(&bar, NULL, 2), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, race, &rc[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&bar);
    assert_int_equal(rc[0].errors, 0);
    assert_int_equal(rc[1].errors, 0);
    assert_int_equal(rc[0].wins + rc[1].wins, N_RACES);
    print_message("contention: a won %d, b won %d of %d\n", rc[0].wins,
                  rc[1].wins, N_RACES);
    for (int i = 0; i < N_RACES; i++) {
        char key[64], *res, *a, *b;
        snprintf(key, sizeof(key), "reservation:c-race-%d", i);
        res = get_str(f->c, key);
        snprintf(key, sizeof(key), "result:r-a-%d", i);
        a = get_str(f->c, key);
        snprintf(key, sizeof(key), "result:r-b-%d", i);
        b = get_str(f->c, key);
        assert_non_null(res);
        /* Exactly one of the two results is the assignment, and it is the
         * holder of the reservation. */
        assert_int_equal((strcmp(a, "lost") != 0) + (strcmp(b, "lost") != 0),
                         1);
        assert_string_equal(strcmp(a, "lost") != 0 ? a : b, res);
        dd_free(res);
        dd_free(a);
        dd_free(b);
    }
}

/*----- Failures -----*/

static void test_store_closed_port_is_io_error(void **state) {
    dd_store_conf_t conf;
    dd_store_t *st;
    dd_store_load_t l;
    char errstr[256] = "";

    (void)state;
    memset(&conf, 0, sizeof(conf));
    conf.host = "127.0.0.1";
    conf.port = 1;
    conf.timeout_ms = 1000;
    conf.eta_ttl_s = conf.reservation_ttl_s = conf.idempotency_ttl_s = 1;
    st = dd_store_new(&conf, errstr, sizeof(errstr));
    assert_non_null(st); /* lazy: not an error at start */
    memset(&l, 0, sizeof(l));
    l.request_id = "r-1";
    assert_int_equal(dd_store_load(st, &l, 1, errstr, sizeof(errstr)), DD_ERR);
    print_message("closed port: %s\n", errstr);
    assert_non_null(strstr(errstr, "connect 127.0.0.1:1"));
    assert_non_null(strstr(errstr, "refused"));
    assert_null(l.ledger);
    /* One immediate retry, then the backoff holds calls off. */
    assert_int_equal(dd_store_ping(st, errstr, sizeof(errstr)), DD_ERR);
    assert_true(dd_store_backoff_ms(st) > 0);
    assert_true(dd_store_backoff_ms(st) <= DD_STORE_BACKOFF_MIN_MS);
    assert_int_equal(dd_store_ping(st, errstr, sizeof(errstr)), DD_ERR);
    assert_non_null(strstr(errstr, "next connect attempt"));
    dd_store_destroy(st);
}

static void test_store_auth_failure_is_error_without_password(void **state) {
    fixture_t *f = start(state);
    dd_store_conf_t conf = test_conf();
    dd_store_t *st;
    char errstr[256];
    dd_store_stats_t s;

    (void)f;
    conf.password = "s3cret-pw";
    st = dd_store_new(&conf, errstr, sizeof(errstr));
    assert_non_null(st);
    /* The test server has no password (or another one): AUTH fails. */
    assert_int_equal(dd_store_ping(st, errstr, sizeof(errstr)), DD_ERR);
    print_message("auth: %s\n", errstr);
    assert_non_null(strstr(errstr, "redis AUTH"));
    assert_null(strstr(errstr, "s3cret-pw"));
    dd_store_get_stats(st, &s);
    assert_int_equal(s.connect_errors, 1);
    assert_int_equal(s.connects, 0);
    dd_store_destroy(st);
}

/* A data error (WRONGTYPE) is charged to the load, reservation or record
 * whose key got it; the others of the batch are answered and the
 * connection stays up. On one server the loads read the result keys with
 * MGET, which answers nil for a key of another type: the hash at
 * result:r-wt reads as absent, and it is the record's read-back (its SET NX
 * refused, then GET: WRONGTYPE) that charges the data error to r-wt. */
static void test_store_data_error_is_charged_to_its_request(void **state) {
    fixture_t *f = start(state);
    dd_store_load_t l[3];
    dd_store_courier_t co[1];
    const char *cids[1] = {"c-wt"};
    const char *ids[1] = {"c-wt2"};
    const char *ids_ok[1] = {"c-ok2"};
    dd_store_reserve_t rv[2];
    dd_store_record_t rec[2];
    dd_store_stats_t s;
    char errstr[256] = "";

    cmd_ok(f->c, "HSET %sresult:r-wt a b", PREFIX);
    cmd_ok(f->c, "SET %sresult:r-ok stored", PREFIX);
    cmd_ok(f->c, "SET %scourier:c-wt x", PREFIX);
    memset(l, 0, sizeof(l));
    memset(co, 0, sizeof(co));
    l[0].request_id = "r-ok";
    l[1].request_id = "r-wt";
    l[2].request_id = "r-c";
    l[2].courier_ids = cids;
    l[2].ncouriers = 1;
    l[2].couriers = co;
    if (dd_store_load(f->st, l, 3, errstr, sizeof(errstr)) != DD_OK)
        fail_msg("load: %s", errstr);
    assert_int_equal(l[0].data_error, 0);
    assert_string_equal(l[0].ledger, "stored");
    assert_int_equal(l[1].data_error, 0); /* MGET: nil, absent */
    assert_null(l[1].ledger);
    assert_int_equal(l[2].data_error, 1);
    assert_non_null(strstr(l[2].error, "HMGET " PREFIX "courier:c-wt: "
                                       "WRONGTYPE"));
    assert_int_equal(dd_store_backoff_ms(f->st), 0);
    dd_store_load_clear(&l[0]);
    dd_store_load_clear(&l[1]);
    assert_int_equal(l[1].data_error, 0);

    /* A list where a reservation should be: that request alone. */
    cmd_ok(f->c, "RPUSH %sreservation:c-wt2 x", PREFIX);
    make_reserve(&rv[0], "r-s1", ids, 1);
    make_reserve(&rv[1], "r-s2", ids_ok, 1);
    if (dd_store_reserve(f->st, rv, 2, errstr, sizeof(errstr)) != DD_OK)
        fail_msg("reserve: %s", errstr);
    assert_int_equal(rv[0].data_error, 1);
    assert_int_equal(rv[0].chosen, DD_STORE_RESERVE_NONE);
    print_message("reservation data error: %s\n", rv[0].error);
    assert_string_equal(rv[0].error,
                        "redis SET " PREFIX "reservation:c-wt2: WRONGTYPE "
                        "Operation against a key holding the wrong kind of "
                        "value"); /* SET NX GET reads the key */
    assert_int_equal(rv[1].data_error, 0);
    assert_int_equal(rv[1].chosen, 0);
    /* With two commands, the GET after the refused SET NX gets it. */
    {
        dd_store_t *st2 = new_store_two_commands();

        make_reserve(&rv[0], "r-s1", ids, 1);
        if (dd_store_reserve(st2, rv, 1, errstr, sizeof(errstr)) != DD_OK)
            fail_msg("reserve: %s", errstr);
        assert_int_equal(rv[0].data_error, 1);
        assert_string_equal(rv[0].error,
                            "redis GET " PREFIX "reservation:c-wt2: WRONGTYPE "
                            "Operation against a key holding the wrong kind "
                            "of value");
        dd_store_destroy(st2);
    }

    /* A hash where a result should be: refused, then the GET fails. */
    make_record(&rec[0], "r-wt", "{\"x\":1}");
    make_record(&rec[1], "r-s2", "{\"for\":\"c-ok2\"}");
    if (dd_store_record(f->st, NULL, 0, rec, 2, NULL, errstr, sizeof(errstr)) !=
        DD_OK)
        fail_msg("record: %s", errstr);
    assert_int_equal(rec[0].data_error, 1);
    assert_null(rec[0].stored);
    assert_string_equal(rec[0].error,
                        "redis GET " PREFIX "result:r-wt: WRONGTYPE Operation "
                        "against a key holding the wrong kind of value");
    assert_int_equal(rec[1].data_error, 0);
    assert_null(rec[1].stored);
    dd_store_record_clear(&rec[0]);
    dd_store_record_clear(&rec[1]);
    dd_store_get_stats(f->st, &s);
    assert_int_equal(s.data_errors, 3);
    assert_int_equal(s.io_errors, 0);
    assert_int_equal(s.connects, 1);
}

/* A transient error reply (OOM with maxmemory reached) fails the whole
 * batch and drops the connection: retried at the backoff's pace. */
static void
test_store_transient_error_reply_fails_batch_with_backoff(void **state) {
    fixture_t *f = start(state);
    dd_store_record_t rec[1];
    char errstr[256] = "";
    int rc;

    assert_int_equal(dd_store_ping(f->st, errstr, sizeof(errstr)), DD_OK);
    /* The marker exists before memory runs out. */
    make_record(&rec[0], "r-pre", "{\"none\":0}");
    assert_int_equal(
        dd_store_record(f->st, NULL, 0, rec, 1, NULL, errstr, sizeof(errstr)),
        DD_OK);
    cmd_ok(f->c, "CONFIG SET maxmemory 1");
    make_record(&rec[0], "r-oom", "{\"none\":1}");
    rc = dd_store_record(f->st, NULL, 0, rec, 1, NULL, errstr, sizeof(errstr));
    cmd_ok(f->c, "CONFIG SET maxmemory 0");
    print_message("transient: %s\n", errstr);
    assert_int_equal(rc, DD_ERR);
    assert_non_null(strstr(errstr, "OOM"));
    assert_int_equal(rec[0].data_error, 0);
    assert_null(rec[0].stored);
    assert_int_equal(dd_store_backoff_ms(f->st), 0); /* one quick retry */
    cmd_ok(f->c, "CONFIG SET maxmemory 1");
    make_record(&rec[0], "r-oom", "{\"none\":1}");
    rc = dd_store_record(f->st, NULL, 0, rec, 1, NULL, errstr, sizeof(errstr));
    cmd_ok(f->c, "CONFIG SET maxmemory 0");
    assert_int_equal(rc, DD_ERR);
    assert_true(dd_store_backoff_ms(f->st) > 0); /* then it slows down */
}

/* The id of the store's connection: the newest one named dispatchd on the
 * test DB (a connection closed by an earlier test may still be listed). */
static long long store_client_id(redisContext *c) {
    redisReply *r = redisCommand(c, "CLIENT LIST");
    char want[32];
    long long id = -1;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    snprintf(want, sizeof(want), " db=%d ", DD_TEST_REDIS_DB);
    for (char *line = strtok(r->str, "\n"); line != NULL;
         line = strtok(NULL, "\n"))
        if (strstr(line, " name=" DD_STORE_CLIENT_NAME " ") != NULL &&
            strstr(line, want) != NULL && atoll(line + 3) > id)
            id = atoll(line + 3); /* "id=" */
    freeReplyObject(r);
    assert_true(id > 0);
    return id;
}

static void test_store_reconnects_after_connection_killed(void **state) {
    fixture_t *f = start(state);
    const char *keys[1] = {"eta:v1:car:a:b"};
    int64_t secs[1];
    char errstr[256];
    dd_store_stats_t s;

    ping_ok(f->st);
    cmd_ok(f->c, "CLIENT KILL ID %lld", store_client_id(f->c));
    assert_int_equal(
        dd_store_eta_get(f->st, keys, 1, secs, errstr, sizeof(errstr)), DD_ERR);
    print_message("killed: %s\n", errstr);
    assert_non_null(strstr(errstr, "redis"));
    assert_int_equal(dd_store_backoff_ms(f->st), 0);
    if (dd_store_eta_get(f->st, keys, 1, secs, errstr, sizeof(errstr)) != DD_OK)
        fail_msg("after reconnect: %s", errstr);
    assert_int_equal(secs[0], DD_STORE_ETA_MISS);
    dd_store_get_stats(f->st, &s);
    assert_int_equal(s.connects, 2);
    assert_int_equal(s.io_errors, 1);
}

static void test_store_command_timeout_is_error(void **state) {
    fixture_t *f = start(state);
    dd_store_conf_t conf = test_conf();
    dd_store_t *st;
    char errstr[256];
    int m = dd_test_timeout_multiplier();

    conf.timeout_ms = 100 * m;
    st = dd_store_new(&conf, errstr, sizeof(errstr));
    assert_non_null(st);
    ping_ok(st);
    /* Every client waits; the store gives up after its timeout. */
    cmd_ok(f->c, "CLIENT PAUSE %d ALL", 600 * m);
    assert_int_equal(dd_store_ping(st, errstr, sizeof(errstr)), DD_ERR);
    print_message("timeout: %s\n", errstr);
    usleep((useconds_t)(700 * m) * 1000);
    ping_ok(st);
    dd_store_destroy(st);
}

/*----- Dispatch end to end -----*/

static void test_store_dispatch_batch_replays_identically(void **state) {
    fixture_t *f = start(state);
    static dd_request_t reqs[N_LOADS];
    dd_dispatch_item_t items[N_LOADS];
    char *first[N_LOADS];
    char errstr[256];
    dd_store_stats_t before, after;
    int64_t now = dd_wall_ms();
    int assigned = 0;

    seed_parcel(f->c, "p-1");
    for (int i = 0; i < N_LOADS / 2; i++) {
        char id[16];
        snprintf(id, sizeof(id), "c-%d", i);
        seed_courier(f->c, id, "52.52", "13.41", "car", "available");
    }
    memset(items, 0, sizeof(items));
    for (int i = 0; i < N_LOADS; i++) {
        char json[256];
        dd_codec_error_t err;
        /* Two requests per courier: half are assigned. */
        snprintf(json, sizeof(json),
                 "{\"request_id\":\"r-%d\",\"parcel_id\":\"p-1\","
                 "\"courier_id\":\"c-%d\"}",
                 i, i / 2);
        assert_int_equal(
            dd_codec_parse_request(json, strlen(json), &reqs[i], &err), DD_OK);
        items[i].req = &reqs[i];
        items[i].msg_ts_ms = now;
        items[i].source_topic = "dispatch.requests";
        items[i].source_offset = i;
    }
    ping_ok(f->st);
    dd_store_get_stats(f->st, &before);
    if (dd_dispatch_batch(f->st, items, N_LOADS, now, errstr, sizeof(errstr)) !=
        DD_OK)
        fail_msg("dispatch: %s", errstr);
    dd_store_get_stats(f->st, &after);
    /* RT1, RT2, one reservation round (the losers had no other
     * candidate), RT4. */
    assert_int_equal(after.round_trips - before.round_trips, 4);
    for (int i = 0; i < N_LOADS; i++) {
        assigned += items[i].status == DD_STATUS_ASSIGNED;
        first[i] = items[i].result;
        items[i].result = NULL;
        dd_dispatch_item_reset(&items[i]);
    }
    assert_int_equal(assigned, N_LOADS / 2);

    /* Redelivery, later: the same bytes, one round trip. */
    dd_store_get_stats(f->st, &before);
    if (dd_dispatch_batch(f->st, items, N_LOADS, now + 5000, errstr,
                          sizeof(errstr)) != DD_OK)
        fail_msg("dispatch: %s", errstr);
    dd_store_get_stats(f->st, &after);
    assert_int_equal(after.round_trips - before.round_trips, 1);
    for (int i = 0; i < N_LOADS; i++) {
        assert_int_equal(items[i].from_ledger, 1);
        assert_string_equal(items[i].result, first[i]);
        dd_free(first[i]);
        dd_dispatch_item_reset(&items[i]);
    }
}

/*----- Lost state -----*/

/* Reserve cid for rid and record it; want_rc is what the reservation
 * returns (the record is made only after DD_OK). */
static void commit_one(dd_store_t *st, const char *rid, const char *cid,
                       int want_rc, char *errstr, size_t errstr_size) {
    const char *ids[1] = {cid};
    dd_store_reserve_t rv;
    dd_store_record_t rec;

    make_reserve(&rv, rid, ids, 1);
    if (dd_store_reserve(st, &rv, 1, errstr, errstr_size) != want_rc)
        fail_msg("reserve %s: rc != %d (%s)", rid, want_rc, errstr);
    if (want_rc != DD_OK)
        return;
    assert_int_equal(rv.chosen, 0);
    make_record(&rec, rid, "{\"c\":1}");
    if (dd_store_record(st, NULL, 0, &rec, 1, NULL, errstr, errstr_size) !=
        DD_OK)
        fail_msg("record %s: %s", rid, errstr);
    dd_store_record_clear(&rec);
}

static void
test_store_flushed_state_is_refused_until_acknowledged(void **state) {
    fixture_t *f = start(state);
    char errstr[256], *id, *s;
    dd_store_load_t l;

    /* A brand-new database: no false alarm, the first write sets the
     * marker. */
    commit_one(f->st, "r-1", "c-1", DD_OK, errstr, sizeof(errstr));
    assert_false(dd_store_state_lost());
    id = get_str(f->c, "dispatchd:store_id");
    assert_non_null(id);
    assert_int_equal(strlen(id), 32);

    /* The data set is lost under a live connection: the marker GET that
     * heads the next batch's loads finds it missing, the batch fails
     * before any write, and every call fails until acknowledged. */
    cmd_ok(f->c, "FLUSHDB");
    memset(&l, 0, sizeof(l));
    l.request_id = "r-2";
    assert_int_equal(dd_store_load(f->st, &l, 1, errstr, sizeof(errstr)),
                     DD_ERR);
    print_message("lost: %s\n", errstr);
    assert_non_null(strstr(errstr, "redis state lost"));
    assert_true(dd_store_state_lost());
    commit_one(f->st, "r-2", "c-1", DD_ERR, errstr, sizeof(errstr));
    assert_non_null(strstr(errstr, "redis state lost"));
    s = get_str(f->c, "result:r-2");
    assert_null(s);
    s = get_str(f->c, "reservation:c-1");
    assert_null(s);
    /* A second store (a reconnect) sees the loss too, at its handshake. */
    {
        dd_store_t *st2 = new_store();
        ping_ok(st2);
        assert_true(dd_store_state_lost());
        dd_store_destroy(st2);
    }

    /* Acknowledged: the remembered id is written back, r-2 is answered. */
    assert_int_equal(dd_store_state_ack(), 1);
    while (dd_store_backoff_ms(f->st) > 0)
        usleep(10 * 1000);
    commit_one(f->st, "r-2", "c-1", DD_OK, errstr, sizeof(errstr));
    assert_false(dd_store_state_lost());
    s = get_str(f->c, "dispatchd:store_id");
    assert_string_equal(s, id);
    dd_free(s);
    s = get_str(f->c, "result:r-2");
    assert_non_null(s);
    dd_free(s);
    assert_int_equal(dd_store_state_ack(), 0); /* nothing left to ack */

    /* Another id in the marker (a data set written by someone else) is a
     * loss as well, found here by the GET that heads the reservation
     * round. The reservation pipelined behind it ran: it names r-3 and
     * nothing else (src/store_commit.c). */
    cmd_ok(f->c, "SET %sdispatchd:store_id other", PREFIX);
    commit_one(f->st, "r-3", "c-3", DD_ERR, errstr, sizeof(errstr));
    assert_true(dd_store_state_lost());
    s = get_str(f->c, "reservation:c-3");
    assert_string_equal(s, "r-3");
    dd_free(s);
    assert_null(get_str(f->c, "result:r-3"));
    dd_free(id);
}

/*----- AUTH as an ACL user -----*/

static void test_store_auth_as_acl_user(void **state) {
    fixture_t *f = start(state);
    dd_store_conf_t conf = test_conf();
    dd_store_load_t l;
    dd_store_t *st;
    char errstr[256];

    cmd_ok(f->c, "ACL SETUSER dd_test_user reset on >pw ~* +@all");
    conf.user = "dd_test_user";
    conf.password = "pw";
    st = dd_store_new(&conf, errstr, sizeof(errstr));
    assert_non_null(st);
    cmd_ok(f->c, "SET %sresult:r-acl done", PREFIX);
    memset(&l, 0, sizeof(l));
    l.request_id = "r-acl";
    if (dd_store_load(st, &l, 1, errstr, sizeof(errstr)) != DD_OK)
        fail_msg("load as dd_test_user: %s", errstr);
    assert_string_equal(l.ledger, "done");
    dd_store_load_clear(&l);
    dd_store_destroy(st);

    /* Wrong password: one clear AUTH error, the password not in it. */
    conf.password = "wrong-pw";
    st = dd_store_new(&conf, errstr, sizeof(errstr));
    assert_non_null(st);
    assert_int_equal(dd_store_ping(st, errstr, sizeof(errstr)), DD_ERR);
    print_message("acl auth: %s\n", errstr);
    assert_non_null(strstr(errstr, "redis AUTH"));
    assert_non_null(strstr(errstr, "WRONGPASS"));
    assert_null(strstr(errstr, "wrong-pw"));
    dd_store_destroy(st);
    cmd_ok(f->c, "ACL DELUSER dd_test_user");
}

/* A user that may not run INFO: the version is unknown, so reservations
 * take two commands per candidate (SET NX EX, GET); the connect works. */
static void test_store_acl_user_without_info_reserves_with_two(void **state) {
    fixture_t *f = start(state);
    dd_store_conf_t conf = test_conf();
    const char *ids[1] = {"c-noinfo"};
    dd_store_reserve_t rv;
    dd_store_stats_t before, after;
    dd_store_t *st;
    char errstr[256];

    cmd_ok(f->c, "ACL SETUSER dd_test_noinfo reset on >pw ~* +@all -info");
    conf.user = "dd_test_noinfo";
    conf.password = "pw";
    st = new_store_conf(&conf);
    writes_ok(st);
    dd_store_get_stats(st, &before);
    make_reserve(&rv, "r-noinfo", ids, 1);
    if (dd_store_reserve(st, &rv, 1, errstr, sizeof(errstr)) != DD_OK)
        fail_msg("reserve: %s", errstr);
    dd_store_get_stats(st, &after);
    assert_int_equal(rv.chosen, 0);
    assert_int_equal(after.commands - before.commands, 3);
    assert_int_equal(after.connect_errors, 0);
    dd_store_destroy(st);
    cmd_ok(f->c, "ACL DELUSER dd_test_noinfo");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_store_loads_32_requests_in_one_round_trip),
        T(test_store_loads_past_one_mget),
        T(test_store_eta_cache_round_trip_with_ttl),
        T(test_store_eta_get_is_one_mget),
        T(test_store_reserves_and_records),
        T(test_store_reserves_and_records_two_commands),
        T(test_store_redelivery_after_reserve_only),
        T(test_store_record_refused_returns_stored_bytes),
        T(test_store_reserves_once_under_contention),
        T(test_store_closed_port_is_io_error),
        T(test_store_auth_failure_is_error_without_password),
        T(test_store_data_error_is_charged_to_its_request),
        T(test_store_transient_error_reply_fails_batch_with_backoff),
        T(test_store_reconnects_after_connection_killed),
        T(test_store_command_timeout_is_error),
        T(test_store_dispatch_batch_replays_identically),
        T(test_store_flushed_state_is_refused_until_acknowledged),
        T(test_store_auth_as_acl_user),
        T(test_store_acl_user_without_info_reserves_with_two),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
