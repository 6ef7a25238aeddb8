/* SPDX-License-Identifier: MIT */
/*
 * dispatchd-seed: writes sample couriers and parcels into Redis, in the
 * hashes dispatchd reads (DESIGN.md section 3), around a city centre. The
 * data is a pure function of the options (a fixed pseudo-random sequence),
 * so tests and the demo can predict it.
 *
 *   dispatchd-seed --redis redis://127.0.0.1:6379/0 --couriers 200 \
 *                  --parcels 2000 [--centre 52.5200,13.4050] [--radius-km 8]
 *                  [--seed 1] [--available-pct 80]
 *
 * Couriers are c-0001.., parcels p-00001..; every 5th courier has status
 * busy or offline unless --available-pct says otherwise.
 *
 * It writes to one server: a Redis Cluster node is refused up front (it
 * would answer MOVED for most keys); README "Seeding a Redis Cluster" gives
 * the way (seed a scratch redis-server, then redis-cli --cluster import).
 */
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "exit_codes.h"
#include "redis_url.h"
#include "util.h"

static const char *const vehicles[] = {"foot", "bike", "scooter", "car"};

/* xorshift64*: small, fixed, good enough to spread points. */
static uint64_t rng_state;
static double rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ULL) >> 11) /
           (double)(1ULL << 53);
}

/* A point uniformly spread in a disc of radius_km around the centre. */
static void point(double clat, double clon, double radius_km, double *lat,
                  double *lon) {
    double r = radius_km * sqrt(rnd()), a = 2 * M_PI * rnd();
    *lat = clat + (r / 111.32) * cos(a);
    *lon = clon + (r / (111.32 * cos(clat * M_PI / 180))) * sin(a);
}

static void usage(FILE *fp) {
    fprintf(fp, "usage: dispatchd-seed [--redis URL] [--couriers N] "
                "[--parcels N]\n"
                "                      [--centre LAT,LON] [--radius-km R] "
                "[--seed S]\n"
                "                      [--available-pct P] [--prefix P]\n");
}

/* Runs one command now (AUTH, INFO); returns its reply (owned) or NULL
 * after printing why, naming the address where. */
static redisReply *command_now(redisContext *c, const char *where,
                               const char *what, const char *fmt, ...) {
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL) {
        fprintf(stderr, "dispatchd-seed: redis %s at %s: %s\n", what, where,
                c->errstr);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "dispatchd-seed: redis %s at %s: %s\n", what, where,
                r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* AUTH (when the URL has a password), then refuse a Redis Cluster node:
 * INFO cluster says cluster_enabled:1. DD_EXIT_OK or the exit status. */
static int prepare(redisContext *c, const dd_redis_url_t *ru,
                   const char *where) {
    redisReply *r;
    int cluster;

    if (ru->password) {
        r = ru->user ? command_now(c, where, "AUTH", "AUTH %s %s", ru->user,
                                   ru->password)
                     : command_now(c, where, "AUTH", "AUTH %s", ru->password);
        if (r == NULL)
            return DD_EXIT_UNAVAILABLE;
        freeReplyObject(r);
    }
    r = command_now(c, where, "INFO cluster", "INFO cluster");
    if (r == NULL)
        return DD_EXIT_UNAVAILABLE;
    cluster = r->type == REDIS_REPLY_STRING
                  ? strstr(r->str, "cluster_enabled:1") != NULL
                  : 0;
    freeReplyObject(r);
    if (cluster) {
        fprintf(stderr,
                "dispatchd-seed: %s is a Redis Cluster node (cluster_enabled:1)"
                "; dispatchd-seed writes to one server only. Seed a scratch "
                "redis-server, then copy its keys into the cluster: "
                "redis-cli --cluster import <node> --cluster-from <scratch> "
                "--cluster-copy --cluster-replace\n",
                where);
        return DD_EXIT_CONFIG;
    }
    return DD_EXIT_OK;
}

static int check(redisContext *c, int n) {
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            fprintf(stderr, "dispatchd-seed: redis: %s\n", c->errstr);
            return DD_ERR;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "dispatchd-seed: redis: %s\n", r->str);
            freeReplyObject(r);
            return DD_ERR;
        }
        freeReplyObject(r);
    }
    return DD_OK;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"redis", required_argument, NULL, 'r'},
        {"couriers", required_argument, NULL, 'c'},
        {"parcels", required_argument, NULL, 'p'},
        {"centre", required_argument, NULL, 'C'},
        {"radius-km", required_argument, NULL, 'R'},
        {"seed", required_argument, NULL, 's'},
        {"available-pct", required_argument, NULL, 'a'},
        {"prefix", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = getenv("DISPATCHD_REDIS");
    const char *prefix = "";
    long couriers = 200, parcels = 2000, seed = 1, avail = 80;
    double clat = 52.5200, clon = 13.4050, radius = 8.0;
    dd_redis_url_t ru;
    char errstr[256], where[300];
    struct timeval tv = {5, 0};
    redisContext *c;
    int opt, rc, pending = 0;

    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (opt) {
            case 'r':
                url = optarg;
                break;
            case 'c':
                couriers = strtol(optarg, &end, 10);
                break;
            case 'p':
                parcels = strtol(optarg, &end, 10);
                break;
            case 's':
                seed = strtol(optarg, &end, 10);
                break;
            case 'a':
                avail = strtol(optarg, &end, 10);
                break;
            case 'R':
                radius = strtod(optarg, &end);
                break;
            case 'C':
                if (sscanf(optarg, "%lf,%lf", &clat, &clon) != 2) {
                    fprintf(stderr, "dispatchd-seed: --centre wants LAT,LON\n");
                    return DD_EXIT_USAGE;
                }
                break;
            case 'P':
                prefix = optarg;
                break;
            case 'h':
                usage(stdout);
                return DD_EXIT_OK;
            default:
                usage(stderr);
                return DD_EXIT_USAGE;
        }
        if (end != NULL && *end != '\0') {
            fprintf(stderr, "dispatchd-seed: bad number: %s\n", optarg);
            return DD_EXIT_USAGE;
        }
    }
    if (couriers < 0 || couriers > 9999 || parcels < 0 || parcels > 99999 ||
        avail < 0 || avail > 100 || radius <= 0) {
        fprintf(stderr, "dispatchd-seed: --couriers 0..9999, --parcels "
                        "0..99999, --available-pct 0..100, --radius-km > 0\n");
        return DD_EXIT_USAGE;
    }
    if (dd_redis_url_parse(url ? url : "redis://127.0.0.1:6379/0", &ru, errstr,
                           sizeof(errstr)) != DD_OK) {
        fprintf(stderr, "dispatchd-seed: --redis: %s\n", errstr);
        return DD_EXIT_USAGE;
    }
    if (ru.unix_path)
        snprintf(where, sizeof(where), "%s", ru.unix_path);
    else if (strchr(ru.host, ':') != NULL)
        snprintf(where, sizeof(where), "[%s]:%d", ru.host, ru.port);
    else
        snprintf(where, sizeof(where), "%s:%d", ru.host, ru.port);
    c = ru.unix_path ? redisConnectUnixWithTimeout(ru.unix_path, tv)
                     : redisConnectWithTimeout(ru.host, ru.port, tv);
    if (c == NULL || c->err) {
        fprintf(stderr, "dispatchd-seed: cannot connect to redis at %s: %s\n",
                where, c ? c->errstr : "out of memory");
        redisFree(c);
        dd_redis_url_close(&ru);
        return DD_EXIT_UNAVAILABLE;
    }
    if ((rc = prepare(c, &ru, where)) != DD_EXIT_OK) {
        redisFree(c);
        dd_redis_url_close(&ru);
        return rc;
    }
    redisAppendCommand(c, "SELECT %d", ru.db);
    pending++;
    rng_state = 0x9E3779B97F4A7C15ULL ^ (uint64_t)seed;
    for (long i = 1; i <= couriers; i++) {
        char id[32], la[32], lo[32];
        double lat, lon;
        const char *status = "available";
        point(clat, clon, radius, &lat, &lon);
        if (rnd() * 100 >= (double)avail)
            status = (i % 3 == 0) ? "offline" : "busy";
        snprintf(id, sizeof(id), "%scourier:c-%04ld", prefix, i);
        snprintf(la, sizeof(la), "%.6f", lat);
        snprintf(lo, sizeof(lo), "%.6f", lon);
        redisAppendCommand(c, "HSET %s lat %s lon %s vehicle %s status %s", id,
                           la, lo, vehicles[i % 4], status);
        pending++;
    }
    for (long i = 1; i <= parcels; i++) {
        char id[32], v[4][32];
        double lat, lon;
        snprintf(id, sizeof(id), "%sparcel:p-%05ld", prefix, i);
        point(clat, clon, radius, &lat, &lon);
        snprintf(v[0], sizeof(v[0]), "%.6f", lat);
        snprintf(v[1], sizeof(v[1]), "%.6f", lon);
        point(clat, clon, radius, &lat, &lon);
        snprintf(v[2], sizeof(v[2]), "%.6f", lat);
        snprintf(v[3], sizeof(v[3]), "%.6f", lon);
        redisAppendCommand(c,
                           "HSET %s pickup_lat %s pickup_lon %s dropoff_lat %s "
                           "dropoff_lon %s",
                           id, v[0], v[1], v[2], v[3]);
        pending++;
    }
    if (check(c, pending) != DD_OK) {
        redisFree(c);
        dd_redis_url_close(&ru);
        return DD_EXIT_UNAVAILABLE;
    }
    printf("seeded %ld courier(s) and %ld parcel(s) into db %d\n", couriers,
           parcels, ru.db);
    redisFree(c);
    dd_redis_url_close(&ru);
    return DD_EXIT_OK;
}
