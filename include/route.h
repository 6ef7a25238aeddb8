/* SPDX-License-Identifier: MIT */
/*
 * route: the ETA model and geohash cells (DESIGN.md section 3). Pure,
 * deterministic functions with no I/O and no shared state, so every one of
 * them may run on any thread and is unit-tested with fixed numbers.
 *
 * The model: great-circle (haversine) distance times a road factor of 1.3,
 * divided by the vehicle's speed. Legs are computed between geohash cell
 * centres (precision 7, about 150 m) so that a value read from the ETA cache
 * (`eta:v1:{vehicle}:{from_cell}:{to_cell}`) and a freshly computed one are
 * always the same number.
 */
#ifndef DD_ROUTE_H
#define DD_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#define DD_ROUTE_CELL_PRECISION 7         /* geohash chars per cell */
#define DD_ROUTE_CELL_SIZE      8         /* cell buffer, with the NUL */
#define DD_ROUTE_GEOHASH_MAX    12        /* highest supported precision */
#define DD_ROUTE_ROAD_FACTOR    1.3       /* road distance / great circle */
#define DD_ROUTE_EARTH_RADIUS_M 6371000.0 /* mean earth radius, metres */
#define DD_ROUTE_ETA_KEY_MAX    48        /* longest eta:v1:... key, with NUL */

/** @brief Vehicle kinds, as stored in the `vehicle` field of `courier:{id}`. */
typedef enum dd_vehicle {
    DD_VEHICLE_FOOT,    /* 5 km/h */
    DD_VEHICLE_BIKE,    /* 15 km/h */
    DD_VEHICLE_SCOOTER, /* 25 km/h */
    DD_VEHICLE_CAR,     /* 30 km/h */
} dd_vehicle_t;

/*----- Geohash -----*/

/**
 * @brief Encode a position as a geohash (alphabet
 *        0123456789bcdefghjkmnpqrstuvwxyz, longitude bit first).
 * @param lat latitude in degrees, -90..90
 * @param lon longitude in degrees, -180..180
 * @param precision number of characters, 1..12
 * @param out (borrowed) receives the NUL-terminated geohash
 * @param out_size size of out; at least precision + 1
 * @returns DD_OK, or DD_ERR for a coordinate out of range or not finite, a
 *          precision out of range, or out too small (out is then "" when
 *          out_size > 0)
 * @locality any thread
 */
int dd_route_geohash(double lat, double lon, int precision, char *out,
                     size_t out_size);

/**
 * @brief The centre of the geohash cell, in degrees.
 * @param cell (borrowed) a lower-case geohash of 1..12 characters
 * @param lat (borrowed) receives the latitude of the centre
 * @param lon (borrowed) receives the longitude of the centre
 * @returns DD_OK, or DD_ERR for an empty or too long cell or a character
 *          outside the alphabet (upper case included: cells are canonical
 *          because they are parts of cache keys)
 * @locality any thread
 */
int dd_route_geohash_centre(const char *cell, double *lat, double *lon);

/**
 * @brief The precision-7 cell of a position: dd_route_geohash() with
 *        DD_ROUTE_CELL_PRECISION.
 * @param out (borrowed) at least DD_ROUTE_CELL_SIZE bytes
 * @returns DD_OK or DD_ERR (coordinates out of range)
 * @locality any thread
 */
int dd_route_cell(double lat, double lon, char *out, size_t out_size);

/*----- Vehicles -----*/

/**
 * @brief Parse a vehicle name: exactly "foot", "bike", "scooter" or "car"
 *        (lower case, as the fleet service writes them).
 * @param s (borrowed) the name; need not be NUL-terminated
 * @param len length of s in bytes
 * @param out (borrowed) receives the vehicle on success
 * @returns DD_OK, or DD_ERR for any other string (out unchanged)
 * @locality any thread
 */
int dd_route_vehicle_parse(const char *s, size_t len, dd_vehicle_t *out);

/**
 * @brief The name of a vehicle ("foot", "bike", "scooter", "car").
 * @returns a static string, or NULL for a value outside the enum
 * @locality any thread
 */
const char *dd_route_vehicle_name(dd_vehicle_t v);

/**
 * @brief The speed of a vehicle in km/h (5, 15, 25, 30).
 * @returns the speed, or 0.0 for a value outside the enum
 * @locality any thread
 */
double dd_route_vehicle_speed_kmh(dd_vehicle_t v);

/*----- Distances and times -----*/

/**
 * @brief Great-circle distance on a sphere of radius 6371000 m.
 * @returns metres (not rounded); NaN if an argument is NaN
 * @locality any thread
 */
double dd_route_haversine_m(double lat1, double lon1, double lat2, double lon2);

/**
 * @brief Travel time of one leg between two cell centres:
 *        ceil(haversine(centre(from), centre(to)) * 1.3 / speed).
 * @param from_cell (borrowed) a geohash, normally of precision 7
 * @param to_cell (borrowed) a geohash, normally of precision 7
 * @returns whole seconds, rounded up, >= 0; -1 for a bad cell or vehicle
 * @locality any thread
 * @remark This is the value stored under dd_route_eta_key(), so a cache hit
 *         and a miss give the same answer.
 */
int64_t dd_route_leg_seconds(dd_vehicle_t v, const char *from_cell,
                             const char *to_cell);

/**
 * @brief The largest value dd_route_leg_seconds() can give for a vehicle:
 *        half the earth's circumference times 1.3 at its speed, rounded up
 *        (car 3,122,355 s, foot 18,734,123 s, with 1 s of slack). A cached leg
 * above it was not written by this model.
 * @returns seconds, > 0; -1 for a value outside the enum
 * @locality any thread
 */
int64_t dd_route_leg_seconds_max(dd_vehicle_t v);

/**
 * @brief Road distance of a delivery from the exact positions:
 *        llround((haversine(courier, pickup) + haversine(pickup, dropoff))
 *        * 1.3).
 * @returns metres, >= 0; -1 if a coordinate is out of range or not finite
 * @locality any thread
 */
int64_t dd_route_distance_m(double courier_lat, double courier_lon,
                            double pickup_lat, double pickup_lon,
                            double dropoff_lat, double dropoff_lon);

/*----- Cache keys -----*/

/**
 * @brief Build the ETA cache key `eta:v1:{vehicle}:{from_cell}:{to_cell}`.
 * @param from_cell (borrowed) a valid geohash
 * @param to_cell (borrowed) a valid geohash
 * @param buf (borrowed) receives the NUL-terminated key
 * @param size size of buf; DD_ROUTE_ETA_KEY_MAX is always enough
 * @returns DD_OK, or DD_ERR for a bad vehicle or cell or a buffer too small
 *          (buf is then "" when size > 0)
 * @locality any thread
 */
int dd_route_eta_key(dd_vehicle_t v, const char *from_cell, const char *to_cell,
                     char *buf, size_t size);

#endif /* DD_ROUTE_H */
