/* SPDX-License-Identifier: MIT */
/*
 * route: geohash cells, haversine distance and the ETA model (DESIGN.md
 * section 3). Pure functions without state; see route.h for the model.
 *
 * They run for every leg of every request, so two pieces are written for
 * speed: a geohash character is decoded through a 256-entry table rather
 * than a strchr() over the alphabet, and an ETA key is assembled with
 * memcpy() rather than snprintf() (the same bytes; tests/unit/test_route.c).
 */
#include "route.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

static const char base32[] = "0123456789bcdefghjkmnpqrstuvwxyz";

/* The 5-bit value + 1 of every byte of the alphabet, 0 for the others. */
static const unsigned char base32_dec[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,
    ['6'] = 7,  ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['b'] = 11, ['c'] = 12,
    ['d'] = 13, ['e'] = 14, ['f'] = 15, ['g'] = 16, ['h'] = 17, ['j'] = 18,
    ['k'] = 19, ['m'] = 20, ['n'] = 21, ['p'] = 22, ['q'] = 23, ['r'] = 24,
    ['s'] = 25, ['t'] = 26, ['u'] = 27, ['v'] = 28, ['w'] = 29, ['x'] = 30,
    ['y'] = 31, ['z'] = 32};

static const struct {
    const char *name;
    size_t len;
    double speed_kmh;
} vehicles[] = {
    [DD_VEHICLE_FOOT] = {"foot", 4, 5.0},
    [DD_VEHICLE_BIKE] = {"bike", 4, 15.0},
    [DD_VEHICLE_SCOOTER] = {"scooter", 7, 25.0},
    [DD_VEHICLE_CAR] = {"car", 3, 30.0},
};

#define N_VEHICLES (sizeof(vehicles) / sizeof(vehicles[0]))

/* True for a finite position on the globe. */
static int position_ok(double lat, double lon) {
    return isfinite(lat) && isfinite(lon) && lat >= -90.0 && lat <= 90.0 &&
           lon >= -180.0 && lon <= 180.0;
}

/* The 5-bit value of a geohash character, or -1 outside the alphabet. */
static int base32_value(char ch) {
    return (int)base32_dec[(unsigned char)ch] - 1;
}

/* Length of a valid geohash (1..12 characters of the alphabet), else 0. */
static size_t cell_len(const char *cell) {
    size_t n;

    for (n = 0; cell[n] != '\0'; n++) {
        if (n >= DD_ROUTE_GEOHASH_MAX || base32_value(cell[n]) < 0)
            return 0;
    }
    return n;
}

static int vehicle_ok(dd_vehicle_t v) {
    return (unsigned)v < N_VEHICLES;
}

/* The cell of x among the 2^bits equal cells of [lo, lo + span]: the k
 * that halving the interval bits times reaches, comparing x with each
 * midpoint (x >= mid takes the upper half; x == lo + span, the top edge,
 * ends in the last cell). Every cell bound lo + k * w is a dyadic rational
 * of fewer than 53 significant bits (span is 180 or 360, bits <= 30), so
 * it is exact as a double, as are the midpoints halving computes: the
 * estimate from one division is corrected by exact comparisons with the
 * bounds, and the result is the halving's, bit for bit (tests/unit/
 * test_route.c compares the two on edges and random points). Halving bit
 * by bit, with a branch per bit, was a measured share of the worker. */
static uint64_t cell_index(double x, double lo, double span, int bits) {
    uint64_t n = (uint64_t)1 << bits;
    double w = span / (double)n;
    double t = (x - lo) * ((double)n / span); /* an estimate */
    uint64_t k = t <= 0.0 ? 0 : t >= (double)n ? n - 1 : (uint64_t)t;

    while (k > 0 && x < lo + (double)k * w)
        k--;
    while (k < n - 1 && x >= lo + (double)(k + 1) * w)
        k++;
    return k;
}

/* The low 32 bits of x moved to the even bit positions 0, 2, ..., 62. */
static uint64_t spread_bits(uint64_t x) {
    x &= 0xFFFFFFFFu;
    x = (x | x << 16) & 0x0000FFFF0000FFFFu;
    x = (x | x << 8) & 0x00FF00FF00FF00FFu;
    x = (x | x << 4) & 0x0F0F0F0F0F0F0F0Fu;
    x = (x | x << 2) & 0x3333333333333333u;
    x = (x | x << 1) & 0x5555555555555555u;
    return x;
}

int dd_route_geohash(double lat, double lon, int precision, char *out,
                     size_t out_size) {
    int nbits, lon_bits, lat_bits;
    uint64_t lon_k, lat_k, v;

    if (out_size > 0)
        out[0] = '\0';
    if (!position_ok(lat, lon) || precision < 1 ||
        precision > DD_ROUTE_GEOHASH_MAX || out_size < (size_t)precision + 1)
        return DD_ERR;

    /* Geohash interleaves the bits starting with longitude: of 5 * precision
     * bits, longitude has the even positions counted from the first (the
     * larger half when the count is odd). In the integer v of all the bits,
     * first bit highest, longitude's bits then sit on the odd positions
     * from the lowest when the count is even, on the even ones when odd. */
    nbits = 5 * precision;
    lon_bits = (nbits + 1) / 2;
    lat_bits = nbits / 2;
    lon_k = cell_index(lon, -180.0, 360.0, lon_bits);
    lat_k = cell_index(lat, -90.0, 180.0, lat_bits);
    v = nbits % 2 == 0 ? spread_bits(lon_k) << 1 | spread_bits(lat_k)
                       : spread_bits(lon_k) | spread_bits(lat_k) << 1;
    for (int i = 0; i < precision; i++)
        out[i] = base32[(v >> (5 * (precision - 1 - i))) & 31u];
    out[precision] = '\0';
    return DD_OK;
}

/* A cell's centre from its bits: the longitude bits (even positions) and
 * the latitude bits (odd positions) are collected as integers k, and the
 * cell spans lo = -range + k * (2 range / 2^nbits) up to lo + the width.
 * Every one of these values is a dyadic rational of fewer than 53
 * significant bits, so the doubles are exact and equal to the bounds that
 * halving the interval bit by bit gives; the centre is then computed as
 * halving would, (lo + hi) / 2. tests/unit/test_route.c compares the two. */
int dd_route_geohash_centre(const char *cell, double *lat, double *lon) {
    uint64_t lon_k = 0, lat_k = 0;
    int lon_n = 0, lat_n = 0;
    size_t n = cell_len(cell);
    double w, lo;

    if (n == 0)
        return DD_ERR;
    for (size_t i = 0; i < n; i++) {
        unsigned v = (unsigned)base32_value(cell[i]);
        /* Bits 4, 2, 0 and bits 3, 1 of the character. */
        uint64_t b3 = ((v >> 2) & 4u) | ((v >> 1) & 2u) | (v & 1u);
        uint64_t b2 = ((v >> 2) & 2u) | ((v >> 1) & 1u);

        if (i % 2 == 0) { /* starts on a longitude bit */
            lon_k = (lon_k << 3) | b3;
            lat_k = (lat_k << 2) | b2;
        } else {
            lat_k = (lat_k << 3) | b3;
            lon_k = (lon_k << 2) | b2;
        }
        lon_n += i % 2 == 0 ? 3 : 2;
        lat_n += i % 2 == 0 ? 2 : 3;
    }
    w = 360.0 / (double)((uint64_t)1 << lon_n);
    lo = -180.0 + (double)lon_k * w;
    *lon = (lo + (lo + w)) / 2.0;
    w = 180.0 / (double)((uint64_t)1 << lat_n);
    lo = -90.0 + (double)lat_k * w;
    *lat = (lo + (lo + w)) / 2.0;
    return DD_OK;
}

int dd_route_cell(double lat, double lon, char *out, size_t out_size) {
    return dd_route_geohash(lat, lon, DD_ROUTE_CELL_PRECISION, out, out_size);
}

int dd_route_vehicle_parse(const char *s, size_t len, dd_vehicle_t *out) {
    for (size_t i = 0; i < N_VEHICLES; i++) {
        if (vehicles[i].len == len && memcmp(vehicles[i].name, s, len) == 0) {
            *out = (dd_vehicle_t)i;
            return DD_OK;
        }
    }
    return DD_ERR;
}

const char *dd_route_vehicle_name(dd_vehicle_t v) {
    return vehicle_ok(v) ? vehicles[v].name : NULL;
}

double dd_route_vehicle_speed_kmh(dd_vehicle_t v) {
    return vehicle_ok(v) ? vehicles[v].speed_kmh : 0.0;
}

double dd_route_haversine_m(double lat1, double lon1, double lat2,
                            double lon2) {
    const double rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad;
    double dlon = (lon2 - lon1) * rad;
    double s_lat = sin(dlat / 2.0);
    double s_lon = sin(dlon / 2.0);
    double a =
        s_lat * s_lat + cos(lat1 * rad) * cos(lat2 * rad) * s_lon * s_lon;

    /* Rounding can push a just above 1 for antipodal points. */
    if (a > 1.0)
        a = 1.0;
    return 2.0 * DD_ROUTE_EARTH_RADIUS_M * atan2(sqrt(a), sqrt(1.0 - a));
}

int64_t dd_route_leg_seconds(dd_vehicle_t v, const char *from_cell,
                             const char *to_cell) {
    double lat1, lon1, lat2, lon2, metres, speed_mps;

    if (!vehicle_ok(v) ||
        dd_route_geohash_centre(from_cell, &lat1, &lon1) != DD_OK ||
        dd_route_geohash_centre(to_cell, &lat2, &lon2) != DD_OK)
        return -1;
    metres = dd_route_haversine_m(lat1, lon1, lat2, lon2);
    speed_mps = vehicles[v].speed_kmh * 1000.0 / 3600.0;
    return (int64_t)ceil(metres * DD_ROUTE_ROAD_FACTOR / speed_mps);
}

int64_t dd_route_leg_seconds_max(dd_vehicle_t v) {
    double speed_mps;

    if (!vehicle_ok(v))
        return -1;
    speed_mps = vehicles[v].speed_kmh * 1000.0 / 3600.0;
    /* The haversine of antipodes is pi * R; one second of slack for the
     * rounding of the two ways of computing it. */
    return (int64_t)ceil(M_PI * DD_ROUTE_EARTH_RADIUS_M * DD_ROUTE_ROAD_FACTOR /
                         speed_mps) +
           1;
}

int64_t dd_route_distance_m(double courier_lat, double courier_lon,
                            double pickup_lat, double pickup_lon,
                            double dropoff_lat, double dropoff_lon) {
    double metres;

    if (!position_ok(courier_lat, courier_lon) ||
        !position_ok(pickup_lat, pickup_lon) ||
        !position_ok(dropoff_lat, dropoff_lon))
        return -1;
    metres =
        dd_route_haversine_m(courier_lat, courier_lon, pickup_lat, pickup_lon) +
        dd_route_haversine_m(pickup_lat, pickup_lon, dropoff_lat, dropoff_lon);
    return (int64_t)llround(metres * DD_ROUTE_ROAD_FACTOR);
}

int dd_route_eta_key(dd_vehicle_t v, const char *from_cell, const char *to_cell,
                     char *buf, size_t size) {
    static const char head[] = "eta:v1:";
    size_t lh = sizeof(head) - 1, lv, lf, lt;
    char *p = buf;

    if (size > 0)
        buf[0] = '\0';
    if (!vehicle_ok(v))
        return DD_ERR;
    lv = vehicles[v].len;
    lf = cell_len(from_cell);
    lt = cell_len(to_cell);
    /* "eta:v1:<vehicle>:<from>:<to>" and its NUL must fit. */
    if (lf == 0 || lt == 0 || lh + lv + lf + lt + 3 > size)
        return DD_ERR;
    memcpy(p, head, lh);
    p += lh;
    memcpy(p, vehicles[v].name, lv);
    p += lv;
    *p++ = ':';
    memcpy(p, from_cell, lf);
    p += lf;
    *p++ = ':';
    memcpy(p, to_cell, lt);
    p += lt;
    *p = '\0';
    return DD_OK;
}
