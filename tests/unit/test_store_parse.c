/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for store_parse: the Redis reply parsers of the store, fed
 * with reply trees built by hand (no server). They pin the outcomes: what
 * reads as found, what reads as not found (no key), what reads as present
 * but invalid (and which field), and what fails a batch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store_int.h"
#include "util.h"

#define VAL_MAX 64

/* An HMGET-like array of four elements; a NULL value is a nil element. */
typedef struct hash4 {
    redisReply arr;
    redisReply el[4];
    redisReply *ptrs[4];
    char buf[4][VAL_MAX];
} hash4_t;

static void set_str(redisReply *r, char *buf, int type, const char *s) {
    size_t len = strlen(s);

    assert_true(len < VAL_MAX);
    memcpy(buf, s, len + 1);
    memset(r, 0, sizeof(*r));
    r->type = type;
    r->str = buf;
    r->len = len;
}

static redisReply *hash4(hash4_t *h, const char *v0, const char *v1,
                         const char *v2, const char *v3) {
    const char *v[4] = {v0, v1, v2, v3};

    memset(h, 0, sizeof(*h));
    for (int i = 0; i < 4; i++) {
        if (v[i] != NULL)
            set_str(&h->el[i], h->buf[i], REDIS_REPLY_STRING, v[i]);
        else
            h->el[i].type = REDIS_REPLY_NIL;
        h->ptrs[i] = &h->el[i];
    }
    h->arr.type = REDIS_REPLY_ARRAY;
    h->arr.elements = 4;
    h->arr.element = h->ptrs;
    return &h->arr;
}

/*----- couriers -----*/

/* dd_store_parse_courier() on HMGET courier:{id} lat lon vehicle status. */
static int courier4(const char *lat, const char *lon, const char *veh,
                    const char *status, dd_store_courier_t *co) {
    hash4_t h;
    char err[128] = "";
    int rc = dd_store_parse_courier(hash4(&h, lat, lon, veh, status), co, err,
                                    sizeof(err));

    assert_string_equal(err, "");
    return rc;
}

/* A present but invalid courier: found 0, invalid 1, the field named, the
 * rest zeroed. */
static void assert_courier_invalid(const dd_store_courier_t *co,
                                   const char *field) {
    assert_int_equal(co->found, 0);
    assert_int_equal(co->invalid, 1);
    assert_non_null(co->bad_field);
    assert_string_equal(co->bad_field, field);
    assert_int_equal(co->available, 0);
    assert_string_equal(co->vehicle, "");
}

static void test_courier_valid_hash(void **state) {
    dd_store_courier_t co;
    (void)state;

    assert_int_equal(courier4("52.52", "-13.4", "bike", "available", &co),
                     DD_OK);
    assert_int_equal(co.found, 1);
    assert_int_equal(co.invalid, 0);
    assert_null(co.bad_field);
    assert_true(co.lat > 52.5199 && co.lat < 52.5201);
    assert_true(co.lon < -13.3999 && co.lon > -13.4001);
    assert_string_equal(co.vehicle, "bike");
    assert_int_equal(co.available, 1);

    assert_int_equal(courier4("1", "2", "car", "busy", &co), DD_OK);
    assert_int_equal(co.found, 1);
    assert_int_equal(co.available, 0);
    assert_int_equal(courier4("-90", "180", "foot", "offline", &co), DD_OK);
    assert_int_equal(co.found, 1);
    assert_int_equal(co.available, 0);
    assert_int_equal(courier4("90", "-180", "scooter", "available", &co),
                     DD_OK);
    assert_int_equal(co.found, 1);
}

/* A status that is not exactly available, busy or offline is invalid. */
static void test_courier_unknown_status(void **state) {
    static const char *const bad[] = {"Available", "available ", "", "flying",
                                      "busy\n"};
    dd_store_courier_t co;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(courier4("1", "2", "car", bad[i], &co), DD_OK);
        assert_courier_invalid(&co, "status");
    }
}

static void test_courier_missing_field_is_invalid(void **state) {
    static const char *const names[4] = {"lat", "lon", "vehicle", "status"};
    dd_store_courier_t co;
    (void)state;

    /* Every one of the four fields is required. */
    for (int missing = 0; missing < 4; missing++) {
        const char *v[4] = {"52.5", "13.4", "bike", "available"};
        v[missing] = NULL;
        memset(&co, 0x5a, sizeof(co));
        assert_int_equal(courier4(v[0], v[1], v[2], v[3], &co), DD_OK);
        assert_courier_invalid(&co, names[missing]);
    }
    /* The first missing one is named. */
    assert_int_equal(courier4("1", NULL, NULL, "busy", &co), DD_OK);
    assert_courier_invalid(&co, "lon");
    /* An absent key: HMGET answers four nils. Not found, not invalid. */
    memset(&co, 0x5a, sizeof(co));
    assert_int_equal(courier4(NULL, NULL, NULL, NULL, &co), DD_OK);
    assert_int_equal(co.found, 0);
    assert_int_equal(co.invalid, 0);
    assert_null(co.bad_field);
}

static void test_courier_bad_numbers(void **state) {
    static const char *const bad[] = {"abc", "",    "52.5x", "52.5 ",
                                      "nan", "inf", "1e999"};
    dd_store_courier_t co;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(courier4(bad[i], "13.4", "bike", "available", &co),
                         DD_OK);
        assert_courier_invalid(&co, "lat");
        assert_int_equal(courier4("52.5", bad[i], "bike", "available", &co),
                         DD_OK);
        assert_courier_invalid(&co, "lon");
    }
    /* strtod() skips leading blanks, so " 52.5" reads as 52.5 (pinned
     * here so a change is a decision). */
    assert_int_equal(courier4(" 52.5", "13.4", "bike", "available", &co),
                     DD_OK);
    assert_int_equal(co.found, 1);
}

/* A position off the globe is invalid data. */
static void test_courier_out_of_range_is_invalid(void **state) {
    dd_store_courier_t co;
    (void)state;

    assert_int_equal(courier4("91", "13", "bike", "available", &co), DD_OK);
    assert_courier_invalid(&co, "lat");
    assert_int_equal(courier4("-90.0001", "13", "bike", "available", &co),
                     DD_OK);
    assert_courier_invalid(&co, "lat");
    assert_int_equal(courier4("52", "181", "bike", "available", &co), DD_OK);
    assert_courier_invalid(&co, "lon");
    assert_int_equal(courier4("52", "-180.5", "bike", "available", &co), DD_OK);
    assert_courier_invalid(&co, "lon");
}

/* Only foot, bike, scooter and car; one too long for the buffer too. */
static void test_courier_unknown_vehicle(void **state) {
    dd_store_courier_t co;
    (void)state;

    assert_int_equal(courier4("1", "2", "rocket", "available", &co), DD_OK);
    assert_courier_invalid(&co, "vehicle");
    assert_int_equal(courier4("1", "2", "Car", "available", &co), DD_OK);
    assert_courier_invalid(&co, "vehicle");
    assert_int_equal(courier4("1", "2", "1234567890123456", "available", &co),
                     DD_OK);
    assert_courier_invalid(&co, "vehicle");
}

static void test_courier_wrong_element_type(void **state) {
    hash4_t h;
    dd_store_courier_t co;
    char err[128] = "";
    redisReply *r = hash4(&h, "1", "2", "bike", "available");
    (void)state;

    h.el[2].type = REDIS_REPLY_INTEGER; /* vehicle */
    assert_int_equal(dd_store_parse_courier(r, &co, err, sizeof(err)), DD_OK);
    assert_courier_invalid(&co, "vehicle");
    r = hash4(&h, "1", "2", "bike", "available");
    h.el[0].type = REDIS_REPLY_STATUS; /* lat */
    assert_int_equal(dd_store_parse_courier(r, &co, err, sizeof(err)), DD_OK);
    assert_courier_invalid(&co, "lat");
}

/* A nil or another type where the array belongs fails the batch. */
static void test_courier_nil_and_wrong_reply_type(void **state) {
    redisReply r;
    hash4_t h;
    char buf[VAL_MAX];
    dd_store_courier_t co;
    char err[128] = "";
    (void)state;

    memset(&r, 0, sizeof(r));
    r.type = REDIS_REPLY_NIL;
    assert_int_equal(dd_store_parse_courier(&r, &co, err, sizeof(err)), DD_ERR);
    assert_string_equal(err, "redis HMGET: unexpected reply");
    assert_int_equal(co.found, 0);

    set_str(&r, buf, REDIS_REPLY_STRING, "52.5");
    err[0] = '\0';
    assert_int_equal(dd_store_parse_courier(&r, &co, err, sizeof(err)), DD_ERR);
    assert_string_equal(err, "redis HMGET: unexpected reply");

    memset(&r, 0, sizeof(r));
    r.type = REDIS_REPLY_INTEGER;
    assert_int_equal(dd_store_parse_courier(&r, &co, err, sizeof(err)), DD_ERR);

    /* An array of another length. */
    hash4(&h, "1", "2", "bike", "available");
    h.arr.elements = 3;
    err[0] = '\0';
    assert_int_equal(dd_store_parse_courier(&h.arr, &co, err, sizeof(err)),
                     DD_ERR);
    assert_string_equal(err, "redis HMGET: unexpected reply");
}

/* Every error reply is refused with its text; the caller classes it
 * (WRONGTYPE is a data error of the request, not "not found"). */
static void test_courier_error_replies(void **state) {
    redisReply r;
    char buf[VAL_MAX];
    dd_store_courier_t co;
    char err[128] = "";
    (void)state;

    set_str(&r, buf, REDIS_REPLY_ERROR,
            "WRONGTYPE Operation against a key holding the wrong kind");
    assert_int_equal(dd_store_parse_courier(&r, &co, err, sizeof(err)), DD_ERR);
    assert_int_equal(co.found, 0);
    assert_string_equal(
        err, "redis HMGET: WRONGTYPE Operation against a key holding the "
             "wrong kind");

    set_str(&r, buf, REDIS_REPLY_ERROR, "LOADING Redis is loading");
    assert_int_equal(dd_store_parse_courier(&r, &co, err, sizeof(err)), DD_ERR);
    assert_string_equal(err, "redis HMGET: LOADING Redis is loading");
    assert_int_equal(co.found, 0);
    assert_int_equal(co.invalid, 0);
}

/*----- parcels -----*/

static void parcel_invalid(const char *v0, const char *v1, const char *v2,
                           const char *v3, const char *field) {
    hash4_t h;
    dd_store_parcel_t p;
    char err[128] = "";

    memset(&p, 0x5a, sizeof(p));
    assert_int_equal(
        dd_store_parse_parcel(hash4(&h, v0, v1, v2, v3), &p, err, sizeof(err)),
        DD_OK);
    assert_string_equal(err, "");
    assert_int_equal(p.found, 0);
    assert_int_equal(p.invalid, 1);
    assert_non_null(p.bad_field);
    assert_string_equal(p.bad_field, field);
    assert_true(p.pickup_lat < 1e-300 && p.pickup_lat > -1e-300);
}

static void test_parcel(void **state) {
    hash4_t h;
    redisReply r;
    char buf[VAL_MAX];
    dd_store_parcel_t p;
    char err[128] = "";
    (void)state;

    assert_int_equal(
        dd_store_parse_parcel(hash4(&h, "52.5", "13.4", "-33.9", "151.2"), &p,
                              err, sizeof(err)),
        DD_OK);
    assert_int_equal(p.found, 1);
    assert_int_equal(p.invalid, 0);
    assert_null(p.bad_field);
    assert_true(p.dropoff_lat < -33.899 && p.dropoff_lat > -33.901);
    assert_true(p.dropoff_lon > 151.199 && p.dropoff_lon < 151.201);

    /* Missing, junk or off the globe: present but invalid, field named. */
    parcel_invalid("52.5", "13.4", NULL, "151.2", "dropoff_lat");
    parcel_invalid("52.5", "13.4", NULL, NULL, "dropoff_lat");
    parcel_invalid(NULL, "13.4", "1", "2", "pickup_lat");
    parcel_invalid("abc", "13.4", "1", "2", "pickup_lat");
    parcel_invalid("1", "2", "3", "181", "dropoff_lon");
    parcel_invalid("1", "-181", "3", "4", "pickup_lon");
    parcel_invalid("1", "2", "-91", "4", "dropoff_lat");

    /* No key: four nils. */
    assert_int_equal(dd_store_parse_parcel(hash4(&h, NULL, NULL, NULL, NULL),
                                           &p, err, sizeof(err)),
                     DD_OK);
    assert_int_equal(p.found, 0);
    assert_int_equal(p.invalid, 0);

    /* A key that is not a hash: an error reply the caller classes as a
     * data error of the request (dd_store_error_class()). */
    set_str(&r, buf, REDIS_REPLY_ERROR, "WRONGTYPE not a hash");
    assert_int_equal(dd_store_parse_parcel(&r, &p, err, sizeof(err)), DD_ERR);
    assert_int_equal(p.found, 0);
    assert_int_equal(p.invalid, 0);

    memset(&r, 0, sizeof(r));
    r.type = REDIS_REPLY_NIL;
    assert_int_equal(dd_store_parse_parcel(&r, &p, err, sizeof(err)), DD_ERR);
    assert_int_equal(p.found, 0);
}

/* The field checks alone, as the fake store uses them. */
static void test_fields_without_a_reply(void **state) {
    dd_store_field_t f[4] = {
        {"52.5", 4}, {"13.4x", 4}, {"car", 3}, {"busy", 4}};
    dd_store_courier_t co;
    (void)state;

    /* Only len bytes are read: "13.4x" with len 4 is 13.4. */
    dd_store_parse_courier_fields(f, &co);
    assert_int_equal(co.found, 1);
    assert_string_equal(co.vehicle, "car");
    f[2].s = NULL;
    dd_store_parse_courier_fields(f, &co);
    assert_courier_invalid(&co, "vehicle");
}

/*----- numbers -----*/

static void test_parse_secs(void **state) {
    redisReply r;
    char buf[VAL_MAX];
    int64_t v = -7;
    (void)state;

    set_str(&r, buf, REDIS_REPLY_STRING, "0");
    assert_int_equal(dd_store_parse_secs(&r, &v), DD_OK);
    assert_int_equal(v, 0);
    set_str(&r, buf, REDIS_REPLY_STRING, "123456789012345678"); /* 18 */
    assert_int_equal(dd_store_parse_secs(&r, &v), DD_OK);
    assert_true(v == 123456789012345678LL);
    set_str(&r, buf, REDIS_REPLY_STRING, "1234567890123456789"); /* 19 */
    assert_int_equal(dd_store_parse_secs(&r, &v), DD_ERR);
    set_str(&r, buf, REDIS_REPLY_STRING, "-1");
    assert_int_equal(dd_store_parse_secs(&r, &v), DD_ERR);
    set_str(&r, buf, REDIS_REPLY_STRING, "12.5");
    assert_int_equal(dd_store_parse_secs(&r, &v), DD_ERR);
    set_str(&r, buf, REDIS_REPLY_STRING, "");
    assert_int_equal(dd_store_parse_secs(&r, &v), DD_ERR);
    set_str(&r, buf, REDIS_REPLY_STATUS, "12");
    assert_int_equal(dd_store_parse_secs(&r, &v), DD_ERR);
    memset(&r, 0, sizeof(r));
    r.type = REDIS_REPLY_NIL;
    assert_int_equal(dd_store_parse_secs(&r, &v), DD_ERR);
}

static void test_parse_double(void **state) {
    redisReply r;
    char buf[VAL_MAX];
    double v = 0;
    (void)state;

    set_str(&r, buf, REDIS_REPLY_STRING, "-0.5");
    assert_int_equal(dd_store_parse_double(&r, &v), DD_OK);
    assert_true(v < -0.4999 && v > -0.5001);
    set_str(&r, buf, REDIS_REPLY_STRING, "1e3");
    assert_int_equal(dd_store_parse_double(&r, &v), DD_OK);
    assert_true(v > 999.999 && v < 1000.001);
    set_str(&r, buf, REDIS_REPLY_STRING, "-inf");
    assert_int_equal(dd_store_parse_double(&r, &v), DD_ERR);
    set_str(&r, buf, REDIS_REPLY_STRING, "1 ");
    assert_int_equal(dd_store_parse_double(&r, &v), DD_ERR);
    /* 63 bytes still parse; 64 do not fit the buffer. */
    memset(buf, '1', 63);
    buf[63] = '\0';
    r.len = 63;
    assert_int_equal(dd_store_parse_double(&r, &v), DD_OK);
    r.len = 64;
    assert_int_equal(dd_store_parse_double(&r, &v), DD_ERR);
}

/* The fast path for plain decimals gives strtod()'s double bit for bit,
 * on its edges (2^53, 22 digits after the point, signs, a lone point) and
 * on many generated coordinates. */
static void test_parse_double_same_as_strtod(void **state) {
    static const char *const edge[] = {
        "0",
        "-0",
        "-0.0",
        "+1.5",
        "5.",
        ".5",
        "-.5",
        "52.52",
        "13.404954",
        "-179.9999999999999",
        "9007199254740991",
        "9007199254740992",
        "900719925474099.3",
        "0.0000000000000000000001",
        "0.00000000000000000000001",
        "1.2345678901234567890123",
        "000000000000000000000000012.5",
        "89.99999999999999999999",
        "0.1",
        "0.3",
        "2.2250738585072014",
        "1..2",
        "1.2.3",
        "-",
        "+",
        "1-2",
    };
    redisReply r;
    char buf[VAL_MAX], *end;
    uint64_t x = 88172645463325252ULL;
    (void)state;

    for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]) + 200000; i++) {
        double v = 0, want;
        int ok;

        if (i < sizeof(edge) / sizeof(edge[0])) {
            set_str(&r, buf, REDIS_REPLY_STRING, edge[i]);
        } else {
            char tmp[64];
            int frac;

            x ^= x << 13; /* xorshift64 */
            x ^= x >> 7;
            x ^= x << 17;
            frac = (int)(x % 18);
            snprintf(tmp, sizeof(tmp), "%.*f", frac,
                     ((double)(x >> 11) / 9007199254740992.0 - 0.5) *
                         (x % 3 == 0 ? 360.0 : 180.0));
            set_str(&r, buf, REDIS_REPLY_STRING, tmp);
        }
        want = strtod(buf, &end);
        ok = end != buf && *end == '\0';
        assert_int_equal(dd_store_parse_double(&r, &v), ok ? DD_OK : DD_ERR);
        if (ok)
            assert_memory_equal(&v, &want, sizeof(v));
    }
}

/* The one table of what a Redis error reply means. */
static void test_error_class_table(void **state) {
    static const struct {
        const char *text;
        dd_store_error_class_t cls;
    } rows[] = {
        {"LOADING Redis is loading the dataset in memory",
         DD_STORE_ERROR_TRANSIENT},
        {"BUSY Redis is busy running a script. You can only call "
         "SCRIPT KILL or SHUTDOWN NOSAVE.",
         DD_STORE_ERROR_TRANSIENT},
        {"MASTERDOWN Link with MASTER is down", DD_STORE_ERROR_TRANSIENT},
        {"TRYAGAIN Multiple keys request during rehashing of slot",
         DD_STORE_ERROR_TRANSIENT},
        {"CLUSTERDOWN The cluster is down", DD_STORE_ERROR_TRANSIENT},
        {"READONLY You can't write against a read only replica.",
         DD_STORE_ERROR_TRANSIENT},
        {"OOM command not allowed when used memory > 'maxmemory'.",
         DD_STORE_ERROR_TRANSIENT},
        {"MISCONF Redis is configured to save RDB snapshots, but it's "
         "currently unable to persist to disk.",
         DD_STORE_ERROR_TRANSIENT},
        {"NOREPLICAS Not enough good replicas to write.",
         DD_STORE_ERROR_TRANSIENT},
        {"NOAUTH Authentication required.", DD_STORE_ERROR_TRANSIENT},
        {"NOPERM this user has no permissions to run the 'set' command",
         DD_STORE_ERROR_TRANSIENT},
        {"MOVED 3999 127.0.0.1:6381", DD_STORE_ERROR_TRANSIENT},
        {"ASK 3999 127.0.0.1:6381", DD_STORE_ERROR_TRANSIENT},
        {"EXECABORT Transaction discarded because of previous errors.",
         DD_STORE_ERROR_TRANSIENT},
        {"ERR unknown command 'SET', with args beginning with: ",
         DD_STORE_ERROR_TRANSIENT},
        {"OOM", DD_STORE_ERROR_TRANSIENT},
        {"WRONGTYPE Operation against a key holding the wrong kind of value",
         DD_STORE_ERROR_DATA},
        {"ERR value is not an integer or out of range", DD_STORE_ERROR_DATA},
        {"ERR string exceeds maximum allowed size (proto-max-bulk-len)",
         DD_STORE_ERROR_DATA},
        /* A code only starts a word: BUSYKEY is no BUSY, OOMX no OOM. */
        {"BUSYKEY Target key name already exists.", DD_STORE_ERROR_DATA},
        {"OOMX something", DD_STORE_ERROR_DATA},
        {"SOMETHINGNEW we have never seen", DD_STORE_ERROR_DATA},
        {"", DD_STORE_ERROR_DATA},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (dd_store_error_class(rows[i].text) != rows[i].cls)
            fail_msg("row %zu \"%s\": class %d, want %d", i, rows[i].text,
                     (int)dd_store_error_class(rows[i].text), (int)rows[i].cls);
    }
    assert_int_equal(dd_store_error_class(NULL), DD_STORE_ERROR_DATA);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_courier_valid_hash),
        cmocka_unit_test(test_courier_unknown_status),
        cmocka_unit_test(test_courier_missing_field_is_invalid),
        cmocka_unit_test(test_courier_bad_numbers),
        cmocka_unit_test(test_courier_out_of_range_is_invalid),
        cmocka_unit_test(test_courier_unknown_vehicle),
        cmocka_unit_test(test_courier_wrong_element_type),
        cmocka_unit_test(test_courier_nil_and_wrong_reply_type),
        cmocka_unit_test(test_courier_error_replies),
        cmocka_unit_test(test_error_class_table),
        cmocka_unit_test(test_parcel),
        cmocka_unit_test(test_fields_without_a_reply),
        cmocka_unit_test(test_parse_secs),
        cmocka_unit_test(test_parse_double),
        cmocka_unit_test(test_parse_double_same_as_strtod),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
