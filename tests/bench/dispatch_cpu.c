/* SPDX-License-Identifier: MIT */
/*
 * dispatch_cpu: a CPU microbenchmark of the worker's per-request work, to
 * run under `valgrind --tool=callgrind` (instruction counts repeat on a
 * noisy machine; wall time does not). It parses requests shaped like the
 * `make bench` backlogs and answers them in batches through
 * dd_dispatch_batch() against the in-memory fake store
 * (tests/fakes/fake_store.c), which replaces src/store.c; Redis, Kafka and
 * the pool are not involved. A fresh fake store per batch keeps the fake's
 * linear lists short. Not a test: it asserts only that every request got
 * a result.
 *
 *   A: single-courier requests, both ETA legs missing from the cache;
 *   B: 4-candidate requests, about 95 % of the legs cached.
 *
 * The per-request figure is the inclusive Ir of bench_parse() plus that of
 * bench_dispatch() minus the fake store's calls, divided by the requests;
 * tests/bench/callgrind-dispatch builds this driver and prints it.
 *
 * Built with -DDD_BENCH_REDIS it links the real store (src/store*.c,
 * hiredis) instead and talks to the Redis named by the third argument
 * (host:port, a database it flushes first): then bench_dispatch() includes
 * the command building, hiredis and the reply parsing (the Redis server's
 * own work is in another process, not counted).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "dispatch.h"
#ifdef DD_BENCH_REDIS
#include <hiredis/hiredis.h>
#else
#include "fake_store.h"
#endif
#include "log.h"
#include "route.h"
#include "util.h"

#define BATCH    32 /* the default --batch-size */
#define NOW_MS   1795809600042LL
#define TOPIC    "dispatch.requests"
#define NCAND_B  4
#define COURIERS 9999

static dd_request_t reqs[BATCH];
static dd_dispatch_item_t items[BATCH];

/* A deterministic position near Berlin for courier or parcel number i. */
static double lat_of(unsigned i) {
    return 52.40 + (double)((i * 7919u) % 2000u) / 10000.0;
}

static double lon_of(unsigned i) {
    return 13.20 + (double)((i * 104729u) % 4000u) / 10000.0;
}

static const char *const vehicles[4] = {"bike", "car", "scooter", "foot"};

#ifdef DD_BENCH_REDIS
/* The real store and a plain connection to seed the same Redis. */
static redisContext *seed_ctx;
static dd_store_t *real_store;

static void seed_cmd(const char *fmt, ...) {
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(seed_ctx, fmt, ap);
    va_end(ap);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "seed: %s\n", r ? r->str : seed_ctx->errstr);
        abort();
    }
    freeReplyObject(r);
}

static void fake_store_add_courier(dd_store_t *st, const char *id, double lat,
                                   double lon, const char *vehicle,
                                   const char *status) {
    (void)st;
    seed_cmd("HSET courier:%s lat %.6f lon %.6f vehicle %s status %s", id, lat,
             lon, vehicle, status);
}

static void fake_store_add_parcel(dd_store_t *st, const char *id, double plat,
                                  double plon, double dlat, double dlon) {
    (void)st;
    seed_cmd("HSET parcel:%s pickup_lat %.6f pickup_lon %.6f dropoff_lat %.6f "
             "dropoff_lon %.6f",
             id, plat, plon, dlat, dlon);
}

static void fake_store_set(dd_store_t *st, const char *key, const char *val) {
    (void)st;
    seed_cmd("SET %s %s", key, val);
}

static dd_store_t *fake_store_new(void) {
    return real_store;
}
#endif

static void seed_courier(dd_store_t *st, unsigned c) {
    char id[16];

    snprintf(id, sizeof(id), "c-%04u", c);
    fake_store_add_courier(st, id, lat_of(c), lon_of(c), vehicles[c % 4],
                           "available");
}

/* Caches both legs of courier c for parcel p, except about 5 % of them. */
static void warm_legs(dd_store_t *st, unsigned c, unsigned p) {
    char cc[DD_ROUTE_CELL_SIZE], pc[DD_ROUTE_CELL_SIZE], dc[DD_ROUTE_CELL_SIZE];
    char key[DD_ROUTE_ETA_KEY_MAX], secs[24];
    dd_vehicle_t v;
    const char *from[2] = {cc, pc}, *to[2] = {pc, dc};

    if (dd_route_vehicle_parse(vehicles[c % 4], strlen(vehicles[c % 4]), &v) !=
            DD_OK ||
        dd_route_cell(lat_of(c), lon_of(c), cc, sizeof(cc)) != DD_OK ||
        dd_route_cell(lat_of(p), lon_of(p), pc, sizeof(pc)) != DD_OK ||
        dd_route_cell(lat_of(p + 1), lon_of(p + 1), dc, sizeof(dc)) != DD_OK)
        abort();
    for (int k = 0; k < 2; k++) {
        if ((c * 31u + p * 17u + (unsigned)k) % 20u == 0)
            continue; /* a miss */
        if (dd_route_eta_key(v, from[k], to[k], key, sizeof(key)) != DD_OK)
            abort();
        snprintf(secs, sizeof(secs), "%lld",
                 (long long)dd_route_leg_seconds(v, from[k], to[k]));
        fake_store_set(st, key, secs);
    }
}

/* The JSON of request number i of a backlog, its store seeded. */
static int make_request(dd_store_t *st, char shape, unsigned i, char *buf,
                        size_t size) {
    unsigned p = i % 99999u + 1;
    int len;

    char pid[16];

    snprintf(pid, sizeof(pid), "p-%05u", p);
    fake_store_add_parcel(st, pid, lat_of(p), lon_of(p), lat_of(p + 1),
                          lon_of(p + 1));
    if (shape == 'A') {
        unsigned c = (i * 13u) % COURIERS + 1;
        seed_courier(st, c);
        len = snprintf(buf, size,
                       "{\"request_id\":\"a-%07u\",\"parcel_id\":\"p-%05u\","
                       "\"courier_id\":\"c-%04u\"}",
                       i, p, c);
    } else {
        unsigned c[NCAND_B];
        for (int k = 0; k < NCAND_B; k++) {
            c[k] = (i * 37u + (unsigned)k * 2503u) % COURIERS + 1;
            seed_courier(st, c[k]);
            warm_legs(st, c[k], p);
        }
        len = snprintf(buf, size,
                       "{\"request_id\":\"b-%07u\",\"parcel_id\":\"p-%05u\","
                       "\"candidates\":[\"c-%04u\",\"c-%04u\",\"c-%04u\","
                       "\"c-%04u\"]}",
                       i, p, c[0], c[1], c[2], c[3]);
    }
    return len;
}

/* The measured parse of one batch (as worker_batch.c does it). */
__attribute__((noinline)) static void bench_parse(char bufs[][256],
                                                  const int *lens, size_t n) {
    for (size_t i = 0; i < n; i++) {
        dd_codec_error_t err;
        if (dd_codec_parse_request(bufs[i], (size_t)lens[i], &reqs[i], &err) !=
            DD_OK)
            abort();
        memset(&items[i], 0, sizeof(items[i]));
        items[i].req = &reqs[i];
        items[i].msg_ts_ms = NOW_MS - 5;
        items[i].source_topic = TOPIC;
        items[i].source_partition = (int32_t)(i % 6);
        items[i].source_offset = (int64_t)i * 1000;
    }
}

/* The measured answer of one batch, results freed as the producer would. */
__attribute__((noinline)) static void bench_dispatch(dd_store_t *st, size_t n) {
    char errstr[256];

    if (dd_dispatch_batch(st, items, n, NOW_MS, errstr, sizeof(errstr)) !=
        DD_OK) {
        fprintf(stderr, "dd_dispatch_batch: %s\n", errstr);
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        if (items[i].result == NULL || items[i].data_error)
            abort();
        dd_dispatch_item_reset(&items[i]);
    }
}

int main(int argc, char **argv) {
    char shape = argc > 1 ? argv[1][0] : 'A';
    unsigned total = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 3200;
    static char bufs[BATCH][256];
    int lens[BATCH];

    if (shape != 'A' && shape != 'B') {
        fprintf(stderr, "usage: %s A|B [requests]\n", argv[0]);
        return 2;
    }
    dd_log_init(DD_LOG_ERROR, DD_LOG_FORMAT_JSON);
#ifdef DD_BENCH_REDIS
    {
        const char *addr = argc > 3 ? argv[3] : "127.0.0.1:6379";
        char host[64];
        int port = 6379;
        dd_store_conf_t conf;
        char errstr[256];

        if (sscanf(addr, "%63[^:]:%d", host, &port) < 1)
            return 2;
        seed_ctx = redisConnect(host, port);
        if (seed_ctx == NULL || seed_ctx->err)
            return 1;
        seed_cmd("FLUSHDB");
        memset(&conf, 0, sizeof(conf));
        conf.host = host;
        conf.port = port;
        conf.timeout_ms = 5000;
        conf.eta_ttl_s = 600;
        conf.reservation_ttl_s = 600;
        conf.idempotency_ttl_s = 600;
        real_store = dd_store_new(&conf, errstr, sizeof(errstr));
        if (real_store == NULL) {
            fprintf(stderr, "store: %s\n", errstr);
            return 1;
        }
    }
#endif
    for (unsigned done = 0; done < total; done += BATCH) {
        dd_store_t *st = fake_store_new();
        size_t n = total - done < BATCH ? total - done : BATCH;

        for (size_t i = 0; i < n; i++)
            lens[i] = make_request(st, shape, done + (unsigned)i, bufs[i],
                                   sizeof(bufs[i]));
        bench_parse(bufs, lens, n);
        bench_dispatch(st, n);
#ifndef DD_BENCH_REDIS
        dd_store_destroy(st);
#endif
    }
    printf("dispatch_cpu: %c, %u requests in batches of %d\n", shape, total,
           BATCH);
    return 0;
}
