/* SPDX-License-Identifier: MIT */
/*
 * pool: the worker threads (dd-work-N); see pool.h. This file is the thread
 * mechanics only: start and name the threads, the job loop (pop up to
 * --batch-size jobs, run them as a batch, go idle), each worker's state for
 * /debug/workers and /healthz, the idle Redis ping behind /readyz, give-up
 * and join. What a batch does with its jobs (parse, dead letters, answer,
 * marshal, count, hand on) is src/worker_batch.c, behind src/pool_int.h.
 *
 * DESIGN: workers share only the job queue (its own lock) and the answered
 * callback (thread-safe). Each worker's debug state sits behind its own
 * small mutex (the worker state lock), taken for a few stores per batch and
 * by snapshots; it is a leaf (see "Lock order" in src/pipeline_int.h). The
 * store is created and used on the worker's thread only (hiredis contexts
 * are not thread-safe).
 */
#include "pool_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "store.h"
#include "util.h"

#define IDLE_PING_MS    1000  /* an idle worker pings Redis this often */
#define IDLE_POP_MS     500   /* longest wait in the queue between checks */
#define CONNECT_WARN_MS 30000 /* a failing connect logged this often */

/* Pings that fail while Redis has not answered yet (wrong password, seed
 * that is no cluster node, nothing listening): one line per interval for
 * all workers together, the others counted. */
static dd_log_ratelimit_t rl_connect = DD_LOG_RATELIMIT_INIT(CONNECT_WARN_MS);

struct dd_pool_worker {
    struct dd_pool *pool;
    int id;
    pthread_t thread;
    int started;
    atomic_int redis_state; /* -1 unknown, 0 failing, 1 ok */
    int64_t redis_seen_ms;  /* dd_now_ms() of the last Redis call (owner) */
    char redis_where[160];  /* the Redis address(es), for logs (owner) */

    pthread_mutex_t lock;
    dd_worker_info_t info; /* protected by lock */
    char redis_error[256]; /* protected by lock: the last failed ping's
                            * error, "" after a ping that worked */
};

struct dd_pool {
    const dd_config_t *cfg;
    dd_queue_t *jq;
    dd_pool_answered_cb *answered;
    void *opaque;
    _Atomic int64_t give_up_ms; /* INT64_MAX until dd_pool_join() */
    _Atomic uint64_t dropped;   /* jobs dropped after the give-up time */
    dd_pool_worker_t *workers;
    int n;
    int joined;
};

const char *dd_worker_state_name(dd_worker_state_t s) {
    switch (s) {
        case DD_WORKER_IDLE:
            return "idle";
        case DD_WORKER_PARSING:
            return "parsing";
        case DD_WORKER_REDIS:
            return "redis";
        case DD_WORKER_BACKOFF:
            return "backoff";
        case DD_WORKER_PRODUCING:
            return "producing";
    }
    return "?";
}

void dd_pool_worker_set_state(dd_pool_worker_t *w, dd_worker_state_t s,
                              const dd_job_t *job, const char *request_id,
                              size_t batch) {
    pthread_mutex_lock(&w->lock);
    w->info.state = s;
    w->info.since_ms = dd_now_ms();
    w->info.batch = batch;
    if (s == DD_WORKER_IDLE || job == NULL) {
        w->info.request_id[0] = '\0';
        w->info.partition = -1;
        w->info.offset = -1;
    } else {
        w->info.partition = job->partition;
        w->info.offset = job->offset;
        dd_strlcpy(w->info.request_id, request_id ? request_id : "",
                   sizeof(w->info.request_id));
    }
    pthread_mutex_unlock(&w->lock);
}

void dd_pool_worker_redis_seen(dd_pool_worker_t *w, int ok) {
    w->redis_seen_ms = dd_now_ms();
    atomic_store(&w->redis_state, ok);
}

/* Sleep up to ms, in slices, unless the give-up time passes first. */
int dd_pool_worker_backoff(dd_pool_worker_t *w, int ms) {
    dd_pool_t *pool = w->pool;
    int64_t end = dd_now_ms() + ms;
    while (dd_now_ms() < end) {
        if (dd_now_ms() >= atomic_load(&pool->give_up_ms))
            return 1;
        usleep(10 * 1000);
    }
    return dd_now_ms() >= atomic_load(&pool->give_up_ms);
}

/* Where the store connects, for logs: host:port, the unix socket or the
 * cluster seeds; never the user or the password. */
static void redis_where(const dd_store_conf_t *sc, char *buf, size_t size) {
    size_t len;

    if (sc->cluster_nseeds == 0) {
        if (sc->unix_path != NULL && sc->unix_path[0] != '\0')
            snprintf(buf, size, "%s", sc->unix_path);
        else
            snprintf(buf, size, "%s:%d", sc->host, sc->port);
        return;
    }
    len = (size_t)snprintf(buf, size, "cluster seeds ");
    for (size_t i = 0; i < sc->cluster_nseeds && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s:%d",
                                i > 0 ? "," : "", sc->cluster_seeds[i].host,
                                sc->cluster_seeds[i].port);
}

/* Record the outcome of a ping: the state for dd_pool_redis_ok(), the error
 * text for dd_pool_redis_error(), and a warning. A worker that loses Redis
 * logs the transition; a ping that fails while Redis has not answered
 * (startup with a wrong password, say) is logged rate-limited across the
 * workers, so a bad setting shows while idle. Returns 1 when ok. */
static int ping_seen(dd_pool_worker_t *w, int ok, const char *errstr) {
    int was = atomic_exchange(&w->redis_state, ok);
    uint64_t suppressed;
    char note[80] = "";

    w->redis_seen_ms = dd_now_ms();
    pthread_mutex_lock(&w->lock);
    dd_strlcpy(w->redis_error, ok ? "" : errstr, sizeof(w->redis_error));
    pthread_mutex_unlock(&w->lock);
    if (ok) {
        if (was == 0)
            DD_LOG(DD_LOG_INFO, "pool", "redis_available",
                   "worker %d: redis answers again", w->id);
        return 1;
    }
    dd_metrics_inc(DD_C_REDIS_ERRORS);
    if (was == 1)
        DD_LOG(DD_LOG_WARN, "pool", "redis_unavailable",
               "worker %d: redis ping failed (%s)", w->id, errstr);
    else if (dd_log_enabled(DD_LOG_WARN) &&
             dd_log_ratelimit_allow(&rl_connect, &suppressed)) {
        if (suppressed > 0)
            snprintf(note, sizeof(note),
                     " (%" PRIu64 " similar line(s) suppressed)", suppressed);
        DD_LOG(DD_LOG_WARN, "pool", "redis_unavailable",
               "redis %s is not answering (%s); retrying%s", w->redis_where,
               errstr, note);
    }
    return 0;
}

/* An idle worker pings Redis about once a second, so dd_pool_redis_ok()
 * (and /readyz) follows Redis going away and coming back even without
 * traffic. While the store waits out its reconnect backoff there is nothing
 * to learn: no ping, the state stays failing. */
static void idle_ping(dd_pool_worker_t *w, dd_store_t *st) {
    char errstr[256];

    if (dd_now_ms() - w->redis_seen_ms < IDLE_PING_MS ||
        dd_store_backoff_ms(st) > 0)
        return;
    ping_seen(w, dd_store_ping(st, errstr, sizeof(errstr)) == DD_OK, errstr);
}

/* How long an idle worker waits in the queue before its next ping. */
static int idle_wait_ms(const dd_pool_worker_t *w) {
    int64_t left = w->redis_seen_ms + IDLE_PING_MS - dd_now_ms();
    return left < 10 ? 10 : left > IDLE_POP_MS ? IDLE_POP_MS : (int)left;
}

static void *worker_main(void *arg) {
    dd_pool_worker_t *w = arg;
    dd_pool_t *pool = w->pool;
    const dd_config_t *cfg = pool->cfg;
    size_t max = (size_t)cfg->batch_size;
    dd_job_t **jobs = dd_xcalloc(max, sizeof(dd_job_t *));
    dd_worker_batch_t *b;
    dd_store_conf_t sc;
    dd_store_t *st;
    char name[16], errstr[256];

    snprintf(name, sizeof(name), "dd-work-%d", w->id);
    pthread_setname_np(pthread_self(), name);
    b = dd_worker_batch_new(cfg, pool->answered, pool->opaque);
    dd_worker_batch_store_conf(cfg, &sc);
    redis_where(&sc, w->redis_where, sizeof(w->redis_where));
    st = dd_store_new(&sc, errstr, sizeof(errstr));
    dd_assert(st != NULL); /* connecting is lazy; only bad settings fail */
    /* Learn early whether Redis answers, for /readyz. */
    ping_seen(w, dd_store_ping(st, errstr, sizeof(errstr)) == DD_OK, errstr);

    for (;;) {
        size_t n =
            dd_queue_pop_batch(pool->jq, (void **)jobs, max, idle_wait_ms(w));
        if (n == 0) {
            if (dd_queue_is_closed(pool->jq))
                break;
            idle_ping(w, st);
            continue;
        }
        dd_metrics_gauge_add(DD_G_WORKERS_BUSY, 1);
        atomic_fetch_add(&pool->dropped,
                         (uint64_t)dd_worker_batch_run(b, w, st, jobs, n));
        dd_metrics_gauge_add(DD_G_WORKERS_BUSY, -1);
        dd_pool_worker_set_state(w, DD_WORKER_IDLE, NULL, NULL, 0);
    }
    dd_store_destroy(st);
    dd_worker_batch_destroy(b);
    dd_free(jobs);
    return NULL;
}

dd_pool_t *dd_pool_new(const dd_config_t *cfg, dd_queue_t *jq,
                       dd_pool_answered_cb *answered, void *opaque,
                       char *errstr, size_t errstr_size) {
    dd_pool_t *pool = dd_xcalloc(1, sizeof(*pool));

    pool->cfg = cfg;
    pool->jq = jq;
    pool->answered = answered;
    pool->opaque = opaque;
    atomic_store(&pool->give_up_ms, INT64_MAX);
    pool->n = cfg->workers;
    pool->workers = dd_xcalloc((size_t)pool->n, sizeof(*pool->workers));
    for (int i = 0; i < pool->n; i++) {
        dd_pool_worker_t *w = &pool->workers[i];
        w->pool = pool;
        w->id = i;
        atomic_store(&w->redis_state, -1);
        pthread_mutex_init(&w->lock, NULL);
        w->info.id = i;
        w->info.partition = -1;
        w->info.offset = -1;
        w->info.since_ms = dd_now_ms();
    }
    for (int i = 0; i < pool->n; i++) {
        if (pthread_create(&pool->workers[i].thread, NULL, worker_main,
                           &pool->workers[i]) != 0) {
            dd_set_error(errstr, errstr_size, "cannot start worker thread %d",
                         i);
            dd_queue_close(jq);
            dd_pool_destroy(pool);
            return NULL;
        }
        pool->workers[i].started = 1;
    }
    return pool;
}

void dd_pool_join(dd_pool_t *pool, int64_t give_up_ms) {
    if (pool->joined)
        return;
    atomic_store(&pool->give_up_ms, give_up_ms);
    for (int i = 0; i < pool->n; i++)
        if (pool->workers[i].started)
            pthread_join(pool->workers[i].thread, NULL);
    pool->joined = 1;
    /* One line for all the jobs dropped, not one per job. */
    if (atomic_load(&pool->dropped) > 0)
        DD_LOG(DD_LOG_WARN, "pool", "job_dropped",
               "%" PRIu64 " job(s) dropped: shutdown timeout with redis "
               "failing; their offsets stay uncommitted, so they are "
               "consumed again after a restart",
               atomic_load(&pool->dropped));
}

void dd_pool_destroy(dd_pool_t *pool) {
    if (pool == NULL)
        return;
    dd_pool_join(pool, dd_now_ms());
    for (int i = 0; i < pool->n; i++)
        pthread_mutex_destroy(&pool->workers[i].lock);
    dd_free(pool->workers);
    dd_free(pool);
}

int dd_pool_redis_ok(const dd_pool_t *pool) {
    int seen = 0;
    for (int i = 0; i < pool->n; i++) {
        int s = atomic_load(&pool->workers[i].redis_state);
        if (s == 0)
            return 0;
        if (s == 1)
            seen = 1;
    }
    return seen;
}

int dd_pool_redis_error(const dd_pool_t *pool, char *buf, size_t size) {
    buf[0] = '\0';
    for (int i = 0; i < pool->n && buf[0] == '\0'; i++) {
        dd_pool_worker_t *w = &pool->workers[i];
        if (atomic_load(&w->redis_state) != 0)
            continue;
        pthread_mutex_lock(&w->lock);
        dd_strlcpy(buf, w->redis_error, size);
        pthread_mutex_unlock(&w->lock);
    }
    return buf[0] != '\0';
}

size_t dd_pool_snapshot(const dd_pool_t *pool, dd_worker_info_t *out,
                        size_t max) {
    size_t n = 0;
    for (int i = 0; i < pool->n && n < max; i++) {
        dd_pool_worker_t *w = &pool->workers[i];
        pthread_mutex_lock(&w->lock);
        out[n++] = w->info;
        pthread_mutex_unlock(&w->lock);
    }
    return n;
}
