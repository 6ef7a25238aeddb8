/* SPDX-License-Identifier: MIT */
/*
 * pool: worker threads; see pool.h.
 *
 * DESIGN: workers share only the job queue (its own lock) and the deliver
 * callback (thread-safe). Each worker's debug state sits behind its own
 * small mutex, taken for a few stores per batch and by snapshots; no other
 * lock is held at the same time. The store is created and used on the
 * worker's thread only (hiredis contexts are not thread-safe).
 */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "util.h"

#define IDLE_PING_MS 1000 /* an idle worker pings Redis this often */
#define IDLE_POP_MS  500  /* longest wait in the queue between checks */

typedef struct worker {
    struct dd_pool *pool;
    int id;
    pthread_t thread;
    int started;
    atomic_int redis_state; /* -1 unknown, 0 failing, 1 ok */
    int64_t redis_seen_ms;  /* dd_now_ms() of the last Redis call (owner) */

    pthread_mutex_t lock;
    dd_worker_info_t info; /* protected by lock */
} worker_t;

struct dd_pool {
    const dd_config_t *cfg;
    dd_queue_t *jq;
    dd_pool_deliver_cb *deliver;
    void *opaque;
    _Atomic int64_t give_up_ms; /* INT64_MAX until dd_pool_join() */
    worker_t *workers;
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

static void set_state(worker_t *w, dd_worker_state_t s, const dd_job_t *job,
                      const char *request_id, size_t batch) {
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

static void count_result(const dd_dispatch_item_t *it) {
    switch (it->status) {
        case DD_STATUS_ASSIGNED:
            dd_metrics_inc(DD_C_REQ_ASSIGNED);
            break;
        case DD_STATUS_REJECTED:
            dd_metrics_inc(DD_C_REQ_REJECTED);
            break;
        case DD_STATUS_EXPIRED:
            dd_metrics_inc(DD_C_REQ_EXPIRED);
            break;
    }
    if (it->from_ledger)
        dd_metrics_inc(DD_C_LEDGER_HITS);
    dd_metrics_add(DD_C_ETA_HIT, (uint64_t)it->eta_hits);
    dd_metrics_add(DD_C_ETA_MISS, (uint64_t)it->eta_misses);
    dd_metrics_add(DD_C_ETA_ERROR, (uint64_t)it->eta_errors);
}

/* Sleep up to ms, in slices, unless the give-up time passes first.
 * Returns 1 when the caller should give up. */
static int backoff(dd_pool_t *pool, int ms) {
    int64_t end = dd_now_ms() + ms;
    while (dd_now_ms() < end) {
        if (dd_now_ms() >= atomic_load(&pool->give_up_ms))
            return 1;
        usleep(10 * 1000);
    }
    return dd_now_ms() >= atomic_load(&pool->give_up_ms);
}

typedef struct batch_ctx {
    dd_request_t *reqs;        /* batch_size requests */
    dd_dispatch_item_t *items; /* batch_size items */
    dd_job_t **item_job;       /* job of each item */
} batch_ctx_t;

/* Answer the valid jobs of a batch; retries while Redis fails. Returns the
 * number of items answered (0 when the batch had to be dropped). */
static size_t answer(worker_t *w, dd_store_t *st, batch_ctx_t *b, size_t m) {
    dd_pool_t *pool = w->pool;
    char errstr[256];
    int64_t last_log = 0;

    for (;;) {
        set_state(w, DD_WORKER_REDIS, b->item_job[0], b->reqs[0].request_id, m);
        /* --dry-run (replay): reads only, nothing reserved or stored. */
        if ((pool->cfg->dry_run ? dd_dispatch_batch_dry_run
                                : dd_dispatch_batch)(st, b->items, m,
                                                     dd_wall_ms(), errstr,
                                                     sizeof(errstr)) == DD_OK) {
            w->redis_seen_ms = dd_now_ms();
            atomic_store(&w->redis_state, 1);
            return m;
        }
        w->redis_seen_ms = dd_now_ms();
        atomic_store(&w->redis_state, 0);
        dd_metrics_inc(DD_C_REDIS_ERRORS);
        if (dd_now_ms() - last_log >= 5000) {
            last_log = dd_now_ms();
            DD_LOG(DD_LOG_WARN, "pool", "redis_unavailable",
                   "redis failed (%s); keeping %zu job(s) and retrying", errstr,
                   m);
        }
        set_state(w, DD_WORKER_BACKOFF, b->item_job[0], b->reqs[0].request_id,
                  m);
        if (backoff(pool, dd_store_backoff_ms(st))) {
            for (size_t i = 0; i < m; i++) {
                DD_LOG_TPO(DD_LOG_WARN, "pool", "job_dropped", pool->cfg->topic,
                           b->item_job[i]->partition, b->item_job[i]->offset,
                           "shutdown timeout with redis down: job dropped, "
                           "offset stays uncommitted");
                dd_job_destroy(b->item_job[i]);
            }
            return 0;
        }
    }
}

static void process(worker_t *w, dd_store_t *st, batch_ctx_t *b,
                    dd_job_t **jobs, size_t n) {
    dd_pool_t *pool = w->pool;
    size_t m = 0, answered;
    int64_t start_us = dd_now_us();

    set_state(w, DD_WORKER_PARSING, jobs[0], NULL, n);
    for (size_t i = 0; i < n; i++) {
        dd_job_t *job = jobs[i];
        dd_codec_error_t err;
        if (dd_codec_parse_request(job->value ? job->value : "", job->value_len,
                                   &b->reqs[m], &err) != DD_OK) {
            job->out_kind = DD_JOB_OUT_DLQ;
            job->dlq_code = err.code;
            dd_strlcpy(job->dlq_text, err.text, sizeof(job->dlq_text));
            dd_metrics_inc(DD_C_REQ_DEAD_LETTER);
            dd_metrics_inc(dd_metrics_dlq_counter(err.code));
            DD_LOG_TPO(DD_LOG_INFO, "pool", "dead_letter", pool->cfg->topic,
                       job->partition, job->offset, "%s: %s",
                       dd_codec_dlq_class_name(err.code), err.text);
            pool->deliver(job, pool->opaque);
            continue;
        }
        memset(&b->items[m], 0, sizeof(b->items[m]));
        b->items[m].req = &b->reqs[m];
        b->items[m].msg_ts_ms = job->timestamp_ms;
        b->items[m].source_topic = pool->cfg->topic;
        b->items[m].source_partition = job->partition;
        b->items[m].source_offset = job->offset;
        b->item_job[m] = job;
        m++;
    }
    if (m == 0)
        return;
    answered = answer(w, st, b, m);
    set_state(w, DD_WORKER_PRODUCING, b->item_job[0], b->reqs[0].request_id, m);
    for (size_t i = 0; i < answered; i++) {
        dd_job_t *job = b->item_job[i];
        dd_dispatch_item_t *it = &b->items[i];
        count_result(it);
        job->out_kind = DD_JOB_OUT_RESULT;
        job->out = it->result; /* transferred */
        job->out_len = it->result_len;
        job->out_status = it->status;
        job->out_reason = it->reason;
        job->out_from_ledger = it->from_ledger;
        it->result = NULL;
        dd_strlcpy(job->out_key, b->reqs[i].parcel_id, sizeof(job->out_key));
        dd_dispatch_item_reset(it);
        dd_metrics_observe(DD_H_PROCESSING,
                           (double)(dd_now_us() - start_us) / 1e6);
        pool->deliver(job, pool->opaque);
    }
}

/* An idle worker pings Redis about once a second, so dd_pool_redis_ok()
 * (and /readyz) follows Redis going away and coming back even without
 * traffic. While the store waits out its reconnect backoff there is nothing
 * to learn: no ping, the state stays failing. Transitions are logged. */
static void idle_ping(worker_t *w, dd_store_t *st) {
    char errstr[256];
    int ok, was;

    if (dd_now_ms() - w->redis_seen_ms < IDLE_PING_MS ||
        dd_store_backoff_ms(st) > 0)
        return;
    ok = dd_store_ping(st, errstr, sizeof(errstr)) == DD_OK;
    w->redis_seen_ms = dd_now_ms();
    was = atomic_exchange(&w->redis_state, ok);
    if (!ok)
        dd_metrics_inc(DD_C_REDIS_ERRORS);
    if (!ok && was != 0)
        DD_LOG(DD_LOG_WARN, "pool", "redis_unavailable",
               "worker %d: redis ping failed (%s)", w->id, errstr);
    else if (ok && was == 0)
        DD_LOG(DD_LOG_INFO, "pool", "redis_available",
               "worker %d: redis answers again", w->id);
}

/* How long an idle worker waits in the queue before its next ping. */
static int idle_wait_ms(const worker_t *w) {
    int64_t left = w->redis_seen_ms + IDLE_PING_MS - dd_now_ms();
    return left < 10 ? 10 : left > IDLE_POP_MS ? IDLE_POP_MS : (int)left;
}

static int ttl_seconds(int64_t ms) {
    int64_t s = (ms + 999) / 1000;
    return s < 1 ? 1 : s > INT32_MAX ? INT32_MAX : (int)s;
}

static void *worker_main(void *arg) {
    worker_t *w = arg;
    dd_pool_t *pool = w->pool;
    const dd_config_t *cfg = pool->cfg;
    size_t max = (size_t)cfg->batch_size;
    dd_job_t **jobs = dd_xcalloc(max, sizeof(dd_job_t *));
    batch_ctx_t b;
    dd_store_conf_t sc = {0};
    dd_store_t *st;
    char name[16], errstr[256];

    snprintf(name, sizeof(name), "dd-work-%d", w->id);
    pthread_setname_np(pthread_self(), name);
    b.reqs = dd_xcalloc(max, sizeof(*b.reqs));
    b.items = dd_xcalloc(max, sizeof(*b.items));
    b.item_job = dd_xcalloc(max, sizeof(dd_job_t *));
    sc.host = cfg->redis.host;
    sc.port = cfg->redis.port;
    sc.unix_path = cfg->redis.unix_path;
    sc.user = cfg->redis.user;
    sc.password = cfg->redis.password;
    sc.db = cfg->redis.db;
    sc.timeout_ms = (int)cfg->redis_timeout_ms;
    /* Redis TTLs are whole seconds: a sub-second setting becomes 1 s. */
    sc.eta_ttl_s = ttl_seconds(cfg->eta_ttl_ms);
    sc.reservation_ttl_s = ttl_seconds(cfg->reservation_ttl_ms);
    sc.idempotency_ttl_s = ttl_seconds(cfg->idempotency_ttl_ms);
    st = dd_store_new(&sc, errstr, sizeof(errstr));
    dd_assert(st != NULL); /* connecting is lazy; only bad settings fail */
    /* Learn early whether Redis answers, for /readyz. */
    atomic_store(&w->redis_state,
                 dd_store_ping(st, errstr, sizeof(errstr)) == DD_OK);
    w->redis_seen_ms = dd_now_ms();

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
        process(w, st, &b, jobs, n);
        dd_metrics_gauge_add(DD_G_WORKERS_BUSY, -1);
        set_state(w, DD_WORKER_IDLE, NULL, NULL, 0);
    }
    dd_store_destroy(st);
    dd_free(b.reqs);
    dd_free(b.items);
    dd_free(b.item_job);
    dd_free(jobs);
    return NULL;
}

dd_pool_t *dd_pool_new(const dd_config_t *cfg, dd_queue_t *jq,
                       dd_pool_deliver_cb *deliver, void *opaque, char *errstr,
                       size_t errstr_size) {
    dd_pool_t *pool = dd_xcalloc(1, sizeof(*pool));

    pool->cfg = cfg;
    pool->jq = jq;
    pool->deliver = deliver;
    pool->opaque = opaque;
    atomic_store(&pool->give_up_ms, INT64_MAX);
    pool->n = cfg->workers;
    pool->workers = dd_xcalloc((size_t)pool->n, sizeof(*pool->workers));
    for (int i = 0; i < pool->n; i++) {
        worker_t *w = &pool->workers[i];
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

size_t dd_pool_snapshot(const dd_pool_t *pool, dd_worker_info_t *out,
                        size_t max) {
    size_t n = 0;
    for (int i = 0; i < pool->n && n < max; i++) {
        worker_t *w = &pool->workers[i];
        pthread_mutex_lock(&w->lock);
        out[n++] = w->info;
        pthread_mutex_unlock(&w->lock);
    }
    return n;
}
