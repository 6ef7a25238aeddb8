/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for route: geohash encode/decode, vehicles, haversine, leg
 * times, delivery distance and cache keys. The expected numbers were
 * computed independently in Python (the pygeohash package for the
 * geohashes and cell centres, math.* for the distances), not with this code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "route.h"
#include "util.h"

/* Alexanderplatz and Brandenburger Tor, Berlin, and their cells. */
#define ALEX_LAT 52.521918
#define ALEX_LON 13.413215
#define TOR_LAT  52.516275
#define TOR_LON  13.377704
#define ALEX     "u33dc1r"
#define TOR      "u33db2m"

/* cmocka's assert_float_equal works in float; these checks need double. */
#define assert_near(a, b, eps) assert_near_at((a), (b), (eps), __LINE__)

static void assert_near_at(double a, double b, double eps, int line) {
    if (!(fabs(a - b) <= eps))
        fail_msg("line %d: %.17g differs from %.17g by more than %g", line, a,
                 b, eps);
}

static void test_geohash_matches_known_values(void **state) {
    char buf[16];
    (void)state;
    assert_int_equal(dd_route_geohash(57.64911, 10.40744, 11, buf, 12), DD_OK);
    assert_string_equal(buf, "u4pruydqqvj");
    assert_int_equal(dd_route_geohash(52.5200, 13.4050, 7, buf, sizeof(buf)),
                     DD_OK);
    assert_string_equal(buf, "u33dc0c"); /* Berlin */
    assert_int_equal(dd_route_geohash(48.8566, 2.3522, 7, buf, sizeof(buf)),
                     DD_OK);
    assert_string_equal(buf, "u09tvw0"); /* Paris */
    assert_int_equal(dd_route_cell(48.8584, 2.2945, buf, DD_ROUTE_CELL_SIZE),
                     DD_OK);
    assert_string_equal(buf, "u09tunq"); /* Eiffel tower */
    assert_int_equal(dd_route_cell(-33.8688, 151.2093, buf, sizeof(buf)),
                     DD_OK);
    assert_string_equal(buf, "r3gx2f7"); /* Sydney: southern, eastern */
    assert_int_equal(dd_route_cell(40.7128, -74.0060, buf, sizeof(buf)), DD_OK);
    assert_string_equal(buf, "dr5regw"); /* New York: western */
}

/* Geohash by halving the intervals bit by bit, as the algorithm is
 * described: the reference the table-free dd_route_geohash() must match. */
static void geohash_by_halving(double lat, double lon, int precision,
                               char *out) {
    static const char b32[] = "0123456789bcdefghjkmnpqrstuvwxyz";
    double lat_lo = -90.0, lat_hi = 90.0, lon_lo = -180.0, lon_hi = 180.0;
    int even = 1;

    for (int i = 0; i < precision; i++) {
        int ch = 0;
        for (int bit = 4; bit >= 0; bit--, even = !even) {
            double *lo = even ? &lon_lo : &lat_lo,
                   *hi = even ? &lon_hi : &lat_hi;
            double v = even ? lon : lat, mid = (*lo + *hi) / 2.0;
            if (v >= mid) {
                ch |= 1 << bit;
                *lo = mid;
            } else {
                *hi = mid;
            }
        }
        out[i] = b32[ch];
    }
    out[precision] = '\0';
}

static uint64_t xorshift(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void assert_same_as_halving(double lat, double lon, int precision) {
    char got[DD_ROUTE_GEOHASH_MAX + 1], want[DD_ROUTE_GEOHASH_MAX + 1];

    assert_int_equal(dd_route_geohash(lat, lon, precision, got, sizeof(got)),
                     DD_OK);
    geohash_by_halving(lat, lon, precision, want);
    if (strcmp(got, want) != 0)
        fail_msg("geohash(%.17g, %.17g, %d) = %s, halving gives %s", lat, lon,
                 precision, got, want);
}

/* Random points at every precision, and the hard ones: every point on a
 * cell bound (where x >= mid decides) and the doubles just below and just
 * above it, the poles, the antimeridian and -0.0. */
static void test_geohash_equals_halving(void **state) {
    uint64_t seed = 0x9E3779B97F4A7C15u;
    (void)state;

    for (int i = 0; i < 200000; i++) {
        double lat = -90.0 + (double)(xorshift(&seed) >> 11) * 0x1p-53 * 180.0;
        double lon = -180.0 + (double)(xorshift(&seed) >> 11) * 0x1p-53 * 360.0;
        assert_same_as_halving(lat, lon, 1 + i % DD_ROUTE_GEOHASH_MAX);
    }
    for (int p = 1; p <= DD_ROUTE_GEOHASH_MAX; p++) {
        int lon_bits = (5 * p + 1) / 2, lat_bits = 5 * p / 2;
        double lon_w = 360.0 / (double)((uint64_t)1 << lon_bits);
        double lat_w = 180.0 / (double)((uint64_t)1 << lat_bits);

        for (int i = 0; i < 3000; i++) {
            uint64_t kx = xorshift(&seed) % (((uint64_t)1 << lon_bits) + 1);
            uint64_t ky = xorshift(&seed) % (((uint64_t)1 << lat_bits) + 1);
            double lon = -180.0 + (double)kx * lon_w;
            double lat = -90.0 + (double)ky * lat_w;
            double lons[3] = {nextafter(lon, -INFINITY), lon,
                              nextafter(lon, INFINITY)};
            double lats[3] = {nextafter(lat, -INFINITY), lat,
                              nextafter(lat, INFINITY)};

            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++)
                    if (fabs(lats[a]) <= 90.0 && fabs(lons[b]) <= 180.0)
                        assert_same_as_halving(lats[a], lons[b], p);
        }
        assert_same_as_halving(90.0, 180.0, p);
        assert_same_as_halving(-90.0, -180.0, p);
        assert_same_as_halving(-0.0, -0.0, p);
        assert_same_as_halving(0.0, nextafter(0.0, -1.0), p);
    }
}

static void test_geohash_edges_of_the_globe(void **state) {
    char buf[16];
    (void)state;
    assert_int_equal(dd_route_geohash(0.0, 0.0, 1, buf, sizeof(buf)), DD_OK);
    assert_string_equal(buf, "s");
    assert_int_equal(dd_route_geohash(-90.0, -180.0, 12, buf, sizeof(buf)),
                     DD_OK);
    assert_string_equal(buf, "000000000000");
    assert_int_equal(dd_route_geohash(90.0, 180.0, 12, buf, sizeof(buf)),
                     DD_OK);
    assert_string_equal(buf, "zzzzzzzzzzzz");
}

static void test_geohash_rejects_bad_arguments(void **state) {
    char buf[16];
    (void)state;
    assert_int_equal(dd_route_geohash(0, 0, 0, buf, sizeof(buf)), DD_ERR);
    assert_string_equal(buf, "");
    assert_int_equal(dd_route_geohash(0, 0, 13, buf, sizeof(buf)), DD_ERR);
    assert_int_equal(dd_route_geohash(90.0001, 0, 7, buf, sizeof(buf)), DD_ERR);
    assert_int_equal(dd_route_geohash(0, -180.5, 7, buf, sizeof(buf)), DD_ERR);
    assert_int_equal(dd_route_geohash(NAN, 0, 7, buf, sizeof(buf)), DD_ERR);
    assert_int_equal(dd_route_geohash(0, INFINITY, 7, buf, sizeof(buf)),
                     DD_ERR);
    /* Precision 7 needs 8 bytes. */
    assert_int_equal(dd_route_geohash(0, 0, 7, buf, 7), DD_ERR);
    assert_string_equal(buf, "");
    assert_int_equal(dd_route_geohash(0, 0, 7, buf, 8), DD_OK);
}

static void test_geohash_centre_of_known_cells(void **state) {
    double lat, lon;
    (void)state;
    assert_int_equal(dd_route_geohash_centre("u33dc0c", &lat, &lon), DD_OK);
    assert_near(lat, 52.51945495605469, 1e-12);
    assert_near(lon, 13.405380249023438, 1e-12);
    assert_int_equal(dd_route_geohash_centre("u4pruydqqvj", &lat, &lon), DD_OK);
    assert_near(lat, 57.64911063015461, 1e-12);
    assert_near(lon, 10.407439693808556, 1e-12);
    assert_int_equal(dd_route_geohash_centre("0", &lat, &lon), DD_OK);
    assert_near(lat, -67.5, 0);
    assert_near(lon, -157.5, 0);
    assert_int_equal(dd_route_geohash_centre("s", &lat, &lon), DD_OK);
    assert_near(lat, 22.5, 0);
    assert_near(lon, 22.5, 0);
}

static void test_geohash_round_trip_keeps_the_cell(void **state) {
    static const double pts[][2] = {
        {52.5200, 13.4050},  {48.8566, 2.3522},    {-33.8688, 151.2093},
        {40.7128, -74.0060}, {0.0, 0.0},           {-89.99, 179.99},
        {89.99, -179.99},    {57.64911, 10.40744},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(pts) / sizeof(pts[0]); i++) {
        for (int p = 1; p <= DD_ROUTE_GEOHASH_MAX; p++) {
            char cell[16], again[16];
            double lat, lon;

            assert_int_equal(
                dd_route_geohash(pts[i][0], pts[i][1], p, cell, sizeof(cell)),
                DD_OK);
            assert_int_equal(strlen(cell), p);
            assert_int_equal(dd_route_geohash_centre(cell, &lat, &lon), DD_OK);
            /* The centre lies in the cell it came from. */
            assert_int_equal(
                dd_route_geohash(lat, lon, p, again, sizeof(again)), DD_OK);
            assert_string_equal(again, cell);
            /* Precision 7 cells are about 153 m x 153 m at most. */
            if (p == DD_ROUTE_CELL_PRECISION)
                assert_true(dd_route_haversine_m(pts[i][0], pts[i][1], lat,
                                                 lon) < 110.0);
        }
    }
}

static void test_geohash_centre_rejects_bad_cells(void **state) {
    double lat = 1.0, lon = 2.0;
    (void)state;
    assert_int_equal(dd_route_geohash_centre("", &lat, &lon), DD_ERR);
    assert_int_equal(dd_route_geohash_centre("u33dc0a", &lat, &lon), DD_ERR);
    assert_int_equal(dd_route_geohash_centre("u33di0c", &lat, &lon), DD_ERR);
    assert_int_equal(dd_route_geohash_centre("u33dl0c", &lat, &lon), DD_ERR);
    assert_int_equal(dd_route_geohash_centre("u33do0c", &lat, &lon), DD_ERR);
    assert_int_equal(dd_route_geohash_centre("U33DC0C", &lat, &lon), DD_ERR);
    assert_int_equal(dd_route_geohash_centre("u33dc0c ", &lat, &lon), DD_ERR);
    assert_int_equal(dd_route_geohash_centre("u33dc0c:x", &lat, &lon), DD_ERR);
    assert_int_equal(dd_route_geohash_centre("0123456789bcd", &lat, &lon),
                     DD_ERR); /* 13 chars */
    assert_near(lat, 1.0, 0);
    assert_near(lon, 2.0, 0);
}

static void test_vehicle_names_parse_and_speeds(void **state) {
    static const char *names[] = {"foot", "bike", "scooter", "car"};
    static const double speeds[] = {5.0, 15.0, 25.0, 30.0};
    dd_vehicle_t v;
    (void)state;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(dd_route_vehicle_parse(names[i], strlen(names[i]), &v),
                         DD_OK);
        assert_int_equal(v, i);
        assert_string_equal(dd_route_vehicle_name(v), names[i]);
        assert_near(dd_route_vehicle_speed_kmh(v), speeds[i], 0);
    }
    assert_int_equal(DD_VEHICLE_FOOT, 0);
    assert_int_equal(DD_VEHICLE_CAR, 3);
    /* The length counts, not a NUL: "carpet" with len 3 is "car". */
    assert_int_equal(dd_route_vehicle_parse("carpet", 3, &v), DD_OK);
    assert_int_equal(v, DD_VEHICLE_CAR);
}

static void test_vehicle_parse_rejects_others(void **state) {
    dd_vehicle_t v = DD_VEHICLE_BIKE;
    (void)state;
    assert_int_equal(dd_route_vehicle_parse("Car", 3, &v), DD_ERR);
    assert_int_equal(dd_route_vehicle_parse("car ", 4, &v), DD_ERR);
    assert_int_equal(dd_route_vehicle_parse("ca", 2, &v), DD_ERR);
    assert_int_equal(dd_route_vehicle_parse("", 0, &v), DD_ERR);
    assert_int_equal(dd_route_vehicle_parse("truck", 5, &v), DD_ERR);
    assert_int_equal(v, DD_VEHICLE_BIKE);
    assert_null(dd_route_vehicle_name((dd_vehicle_t)4));
    assert_null(dd_route_vehicle_name((dd_vehicle_t)-1));
    assert_near(dd_route_vehicle_speed_kmh((dd_vehicle_t)4), 0.0, 0);
}

static void test_haversine_of_known_pairs(void **state) {
    (void)state;
    /* Berlin -> Paris, about 877.5 km. */
    assert_near(dd_route_haversine_m(52.5200, 13.4050, 48.8566, 2.3522),
                877463.325917543, 1e-6);
    assert_near(dd_route_haversine_m(52.5200, 13.4050, 52.5200, 13.4050), 0.0,
                0);
    /* A quarter of the equator and half of a meridian. */
    assert_near(dd_route_haversine_m(0, 0, 0, 90), 6371000.0 * M_PI / 2.0,
                1e-6);
    assert_near(dd_route_haversine_m(90, 0, -90, 0), 6371000.0 * M_PI, 1e-6);
    /* Antipodes: haversine loses precision there (0.13 m), but the
     * result must not be NaN. Python's math gives the same value. */
    assert_near(dd_route_haversine_m(10, 20, -10, -160), 20015086.661761787,
                1e-6);
}

static void test_leg_seconds_per_vehicle(void **state) {
    (void)state;
    /* Centres 2592.5 m apart: x 1.3 / speed, rounded up. */
    assert_int_equal(dd_route_leg_seconds(DD_VEHICLE_FOOT, ALEX, TOR), 2333);
    assert_int_equal(dd_route_leg_seconds(DD_VEHICLE_BIKE, ALEX, TOR), 778);
    assert_int_equal(dd_route_leg_seconds(DD_VEHICLE_SCOOTER, ALEX, TOR), 467);
    assert_int_equal(dd_route_leg_seconds(DD_VEHICLE_CAR, ALEX, TOR), 389);
    /* Symmetric, zero within a cell. */
    assert_int_equal(dd_route_leg_seconds(DD_VEHICLE_CAR, TOR, ALEX), 389);
    assert_int_equal(dd_route_leg_seconds(DD_VEHICLE_BIKE, ALEX, ALEX), 0);
    /* Berlin -> Paris by car. */
    assert_int_equal(dd_route_leg_seconds(DD_VEHICLE_CAR, "u33dc0c", "u09tvw0"),
                     136886);
}

static void test_leg_seconds_uses_cells_not_positions(void **state) {
    char a[DD_ROUTE_CELL_SIZE], b[DD_ROUTE_CELL_SIZE];
    (void)state;
    /* Two different points in the same cells give the same leg time. */
    assert_int_equal(dd_route_cell(ALEX_LAT, ALEX_LON, a, sizeof(a)), DD_OK);
    assert_int_equal(dd_route_cell(TOR_LAT, TOR_LON, b, sizeof(b)), DD_OK);
    assert_string_equal(a, ALEX);
    assert_string_equal(b, TOR);
    assert_int_equal(
        dd_route_cell(ALEX_LAT + 0.0003, ALEX_LON - 0.0002, a, sizeof(a)),
        DD_OK);
    assert_string_equal(a, ALEX);
    assert_int_equal(dd_route_leg_seconds(DD_VEHICLE_FOOT, a, b), 2333);
}

static void test_leg_seconds_rejects_bad_input(void **state) {
    (void)state;
    assert_int_equal(dd_route_leg_seconds(DD_VEHICLE_CAR, "", TOR), -1);
    assert_int_equal(dd_route_leg_seconds(DD_VEHICLE_CAR, ALEX, "u33db2a"), -1);
    assert_int_equal(dd_route_leg_seconds((dd_vehicle_t)9, ALEX, TOR), -1);
}

static void test_distance_of_a_fixed_delivery(void **state) {
    (void)state;
    /* 1892.47 m + 1297.90 m, x 1.3 = 4147.48 m. */
    assert_int_equal(dd_route_distance_m(52.5200, 13.4050, 52.5163, 13.3777,
                                         52.5075, 13.3903),
                     4147);
    assert_int_equal(dd_route_distance_m(1, 2, 1, 2, 1, 2), 0);
}

static void test_distance_rejects_bad_coordinates(void **state) {
    (void)state;
    assert_int_equal(dd_route_distance_m(91, 0, 0, 0, 0, 0), -1);
    assert_int_equal(dd_route_distance_m(0, 0, 0, 181, 0, 0), -1);
    assert_int_equal(dd_route_distance_m(0, 0, 0, 0, NAN, 0), -1);
}

static void test_eta_key_format(void **state) {
    char buf[DD_ROUTE_ETA_KEY_MAX];
    (void)state;
    assert_int_equal(
        dd_route_eta_key(DD_VEHICLE_SCOOTER, ALEX, TOR, buf, sizeof(buf)),
        DD_OK);
    assert_string_equal(buf, "eta:v1:scooter:u33dc1r:u33db2m");
    /* The longest key fits DD_ROUTE_ETA_KEY_MAX. */
    assert_int_equal(dd_route_eta_key(DD_VEHICLE_SCOOTER, "zzzzzzzzzzzz",
                                      "000000000000", buf, sizeof(buf)),
                     DD_OK);
    assert_string_equal(buf, "eta:v1:scooter:zzzzzzzzzzzz:000000000000");
}

static void test_eta_key_rejects_bad_input(void **state) {
    char buf[DD_ROUTE_ETA_KEY_MAX];
    (void)state;
    assert_int_equal(
        dd_route_eta_key((dd_vehicle_t)7, ALEX, TOR, buf, sizeof(buf)), DD_ERR);
    assert_string_equal(buf, "");
    assert_int_equal(
        dd_route_eta_key(DD_VEHICLE_CAR, "u33:*", TOR, buf, sizeof(buf)),
        DD_ERR);
    assert_int_equal(
        dd_route_eta_key(DD_VEHICLE_CAR, ALEX, "", buf, sizeof(buf)), DD_ERR);
    /* "eta:v1:car:u33dc1r:u33db2m" is 26 chars: 26 bytes are too few. */
    assert_int_equal(dd_route_eta_key(DD_VEHICLE_CAR, ALEX, TOR, buf, 26),
                     DD_ERR);
    assert_string_equal(buf, "");
    assert_int_equal(dd_route_eta_key(DD_VEHICLE_CAR, ALEX, TOR, buf, 27),
                     DD_OK);
    assert_string_equal(buf, "eta:v1:car:u33dc1r:u33db2m");
}

/* The centre as halving the intervals bit by bit gives it (the reference
 * the bit-collecting decoder of route.c must equal, double for double). */
static void centre_by_halving(const char *cell, double *lat, double *lon) {
    static const char alphabet[] = "0123456789bcdefghjkmnpqrstuvwxyz";
    double lat_lo = -90.0, lat_hi = 90.0, lon_lo = -180.0, lon_hi = 180.0;
    int even = 1;

    for (size_t i = 0; cell[i] != '\0'; i++) {
        int ch = (int)(strchr(alphabet, cell[i]) - alphabet);

        for (int bit = 4; bit >= 0; bit--) {
            int set = (ch >> bit) & 1;
            double mid;

            if (even) {
                mid = (lon_lo + lon_hi) / 2.0;
                if (set)
                    lon_lo = mid;
                else
                    lon_hi = mid;
            } else {
                mid = (lat_lo + lat_hi) / 2.0;
                if (set)
                    lat_lo = mid;
                else
                    lat_hi = mid;
            }
            even = !even;
        }
    }
    *lat = (lat_lo + lat_hi) / 2.0;
    *lon = (lon_lo + lon_hi) / 2.0;
}

static void test_geohash_centre_equals_halving(void **state) {
    static const char alphabet[] = "0123456789bcdefghjkmnpqrstuvwxyz";
    uint64_t x = 0x2545f4914f6cdd1dULL;
    char cell[DD_ROUTE_GEOHASH_MAX + 1];
    (void)state;

    for (int i = 0; i < 200000; i++) {
        int len = 1 + i % DD_ROUTE_GEOHASH_MAX;
        double lat, lon, want_lat, want_lon;

        for (int k = 0; k < len; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            /* now and then the alphabet's ends, for the globe's edges */
            cell[k] = alphabet[i % 7 == 0 ? (x & 1) * 31 : x % 32];
        }
        cell[len] = '\0';
        assert_int_equal(dd_route_geohash_centre(cell, &lat, &lon), DD_OK);
        centre_by_halving(cell, &want_lat, &want_lon);
        assert_memory_equal(&lat, &want_lat, sizeof(lat));
        assert_memory_equal(&lon, &want_lon, sizeof(lon));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geohash_matches_known_values),
        cmocka_unit_test(test_geohash_edges_of_the_globe),
        cmocka_unit_test(test_geohash_equals_halving),
        cmocka_unit_test(test_geohash_rejects_bad_arguments),
        cmocka_unit_test(test_geohash_centre_of_known_cells),
        cmocka_unit_test(test_geohash_centre_equals_halving),
        cmocka_unit_test(test_geohash_round_trip_keeps_the_cell),
        cmocka_unit_test(test_geohash_centre_rejects_bad_cells),
        cmocka_unit_test(test_vehicle_names_parse_and_speeds),
        cmocka_unit_test(test_vehicle_parse_rejects_others),
        cmocka_unit_test(test_haversine_of_known_pairs),
        cmocka_unit_test(test_leg_seconds_per_vehicle),
        cmocka_unit_test(test_leg_seconds_uses_cells_not_positions),
        cmocka_unit_test(test_leg_seconds_rejects_bad_input),
        cmocka_unit_test(test_distance_of_a_fixed_delivery),
        cmocka_unit_test(test_distance_rejects_bad_coordinates),
        cmocka_unit_test(test_eta_key_format),
        cmocka_unit_test(test_eta_key_rejects_bad_input),
    };
    return cmocka_run_group_tests_name("route", tests, NULL, NULL);
}
