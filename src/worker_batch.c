/* SPDX-License-Identifier: MIT */
/*
 * worker_batch: the work of one batch of jobs on a worker thread; see
 * pool_int.h. Parses each job's request, classes the invalid ones for the
 * dead-letter topic, answers the valid ones through the domain (retrying
 * while Redis fails), moves each result into its job, counts the outcome
 * and hands every job on through the pool's answered callback. The thread
 * around it (job loop, naming, /debug/workers state, idle ping, join) is
 * pool.c's.
 *
 * Store errors: a data error (WRONGTYPE, an unparsable reply) comes back
 * charged to the one request whose key caused it, which is dead-lettered
 * (class store_data_error) while the rest of the batch is answered. A
 * transient failure cannot be charged to anyone: when Redis still answers
 * PING, the batch itself may be at fault (a request that makes Redis time
 * out, say), so it is split in halves, each answered on its own, down to
 * single requests. A single request that still fails is set aside until
 * the rest of the batch is answered, then retried alone: it stays in
 * flight with a capped backoff, holding no other request. When Redis does
 * not answer, the batch is kept whole and retried at the store's backoff
 * pace.
 *
 * DESIGN: runs on one worker thread only; a dd_worker_batch_t and the store
 * it is given belong to that thread. It shares nothing else: the metrics
 * are atomics, the log takes its own leaf lock, and the worker's state lock
 * is taken inside dd_pool_worker_set_state() (see "Lock order" in
 * src/pipeline_int.h). No lock is held while a job is handed on.
 */
#include "pool_int.h"

#include <stdint.h>
#include <string.h>

#include "codec.h"
#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define RETRY_MIN_MS  50   /* first retry of a failing single request */
#define RETRY_MAX_MS  5000 /* retry cap (as the store's reconnect cap) */
#define WARN_EVERY_MS 5000 /* redis_unavailable at most this often */

struct dd_worker_batch {
    const dd_config_t *cfg;
    int64_t last_warn_ms; /* dd_now_ms() of the last redis_unavailable */
    dd_pool_answered_cb *answered;
    void *opaque;
    dd_request_t *reqs;        /* batch_size requests */
    dd_dispatch_item_t *items; /* batch_size items */
    dd_job_t **item_job;       /* job of each item */
    size_t *stuck;             /* items set aside (see answer()) */
    size_t nstuck;
    size_t dropped; /* jobs dropped by the current dd_worker_batch_run() */
};

static int ttl_seconds(int64_t ms) {
    int64_t s = (ms + 999) / 1000;
    return s < 1 ? 1 : s > INT32_MAX ? INT32_MAX : (int)s;
}

void dd_worker_batch_store_conf(const dd_config_t *cfg, dd_store_conf_t *sc) {
    memset(sc, 0, sizeof(*sc));
    sc->host = cfg->redis.host;
    sc->port = cfg->redis.port;
    sc->unix_path = cfg->redis.unix_path;
    sc->user = cfg->redis.user;
    sc->password = cfg->redis.password;
    sc->db = cfg->redis.db;
    if (cfg->redis_cluster.nseeds > 0) {
        sc->cluster_seeds = cfg->redis_cluster.seeds;
        sc->cluster_nseeds = cfg->redis_cluster.nseeds;
        sc->user = cfg->redis_cluster.user;
        sc->password = cfg->redis_cluster.password;
    }
    sc->timeout_ms = (int)cfg->redis_timeout_ms;
    /* Redis TTLs are whole seconds: a sub-second setting becomes 1 s. */
    sc->eta_ttl_s = ttl_seconds(cfg->eta_ttl_ms);
    sc->reservation_ttl_s = ttl_seconds(cfg->reservation_ttl_ms);
    sc->idempotency_ttl_s = ttl_seconds(cfg->idempotency_ttl_ms);
}

dd_worker_batch_t *dd_worker_batch_new(const dd_config_t *cfg,
                                       dd_pool_answered_cb *answered,
                                       void *opaque) {
    dd_worker_batch_t *b = dd_xcalloc(1, sizeof(*b));
    size_t max = (size_t)cfg->batch_size;

    b->cfg = cfg;
    b->answered = answered;
    b->opaque = opaque;
    b->reqs = dd_xcalloc(max, sizeof(*b->reqs));
    b->items = dd_xcalloc(max, sizeof(*b->items));
    b->item_job = dd_xcalloc(max, sizeof(dd_job_t *));
    b->stuck = dd_xcalloc(max, sizeof(*b->stuck));
    return b;
}

void dd_worker_batch_destroy(dd_worker_batch_t *b) {
    if (b == NULL)
        return;
    dd_free(b->reqs);
    dd_free(b->items);
    dd_free(b->item_job);
    dd_free(b->stuck);
    dd_free(b);
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

/* Mark the job for the dead-letter topic with class code and text, count
 * it, log it under event and hand it on. */
static void dead_letter(dd_worker_batch_t *b, dd_job_t *job,
                        dd_dlq_class_t code, const char *text,
                        const char *event) {
    job->out_kind = DD_JOB_OUT_DLQ;
    job->dlq_code = code;
    dd_strlcpy(job->dlq_text, text, sizeof(job->dlq_text));
    dd_metrics_inc(DD_C_REQ_DEAD_LETTER);
    dd_metrics_inc(dd_metrics_dlq_counter(code));
    DD_LOG_TPO(code == DD_DLQ_STORE_DATA_ERROR ? DD_LOG_WARN : DD_LOG_INFO,
               "pool", event, b->cfg->topic, job->partition, job->offset,
               "%s: %s", dd_codec_dlq_class_name(code), text);
    b->answered(job, b->opaque);
}

/* Move an answered item's result into its job (the job's output). */
static void marshal_result(dd_job_t *job, dd_dispatch_item_t *it,
                           const dd_request_t *req) {
    job->out_kind = DD_JOB_OUT_RESULT;
    job->out = it->result; /* transferred */
    job->out_len = it->result_len;
    job->out_status = it->status;
    job->out_reason = it->reason;
    job->out_from_ledger = it->from_ledger;
    it->result = NULL;
    dd_strlcpy(job->out_key, req->parcel_id, sizeof(job->out_key));
    dd_dispatch_item_reset(it);
}

/* Hand on the answered items lo..lo+m-1: a result, or a dead letter for a
 * store data error. */
static void hand_on(dd_worker_batch_t *b, size_t lo, size_t m,
                    int64_t start_us) {
    for (size_t i = lo; i < lo + m; i++) {
        dd_job_t *job = b->item_job[i];
        dd_dispatch_item_t *it = &b->items[i];

        if (it->data_error) { /* the text names the key and the error */
            dead_letter(b, job, DD_DLQ_STORE_DATA_ERROR, it->data_text,
                        "store_data_error");
            dd_dispatch_item_reset(it);
            continue;
        }
        count_result(it);
        marshal_result(job, it, &b->reqs[i]);
        dd_metrics_observe(DD_H_PROCESSING,
                           (double)(dd_now_us() - start_us) / 1e6);
        b->answered(job, b->opaque);
    }
}

/* The pool gives up (shutdown timeout): the jobs lo..lo+m-1 are dropped,
 * their offsets stay undone. */
static void drop_jobs(dd_worker_batch_t *b, size_t lo, size_t m) {
    for (size_t i = lo; i < lo + m; i++) {
        /* One line per job at debug level; the pool logs the count. */
        DD_LOG_TPO(DD_LOG_DEBUG, "pool", "job_dropped", b->cfg->topic,
                   b->item_job[i]->partition, b->item_job[i]->offset,
                   "shutdown timeout with redis failing: job dropped, "
                   "offset stays uncommitted");
        dd_job_destroy(b->item_job[i]);
    }
    b->dropped += m;
}

/* After a transient failure: does Redis answer at all? PING (unless the
 * store waits out its reconnect backoff). The answer is what readiness
 * shows. */
static int redis_answers(dd_pool_worker_t *w, dd_store_t *st) {
    char errstr[256];
    int ok = dd_store_backoff_ms(st) == 0 &&
             dd_store_ping(st, errstr, sizeof(errstr)) == DD_OK;

    dd_pool_worker_redis_seen(w, ok);
    return ok;
}

static int retry_delay_ms(int attempt) {
    int d = RETRY_MIN_MS;

    for (int i = 1; i < attempt && d < RETRY_MAX_MS; i++)
        d *= 2;
    return d > RETRY_MAX_MS ? RETRY_MAX_MS : d;
}

/* Answer the items lo..lo+m-1 and hand them on; on a transient failure,
 * split (Redis answers) or retry whole (it does not), see the file
 * comment. With set_aside, a single item that fails while Redis answers
 * goes to b->stuck instead of being retried here. Returns 1 when the pool
 * gave up and the jobs lo..lo+m-1 not yet handed on were dropped. */
static int answer(dd_worker_batch_t *b, dd_pool_worker_t *w, dd_store_t *st,
                  size_t lo, size_t m, int64_t start_us, int set_aside) {
    char errstr[256];
    int attempt = 0;

    for (;;) {
        int delay;

        dd_pool_worker_set_state(w, DD_WORKER_REDIS, b->item_job[lo],
                                 b->reqs[lo].request_id, m);
        /* --dry-run (replay): reads only, nothing reserved or stored. */
        if ((b->cfg->dry_run ? dd_dispatch_batch_dry_run : dd_dispatch_batch)(
                st, b->items + lo, m, dd_wall_ms(), errstr, sizeof(errstr)) ==
            DD_OK) {
            dd_pool_worker_redis_seen(w, 1);
            dd_pool_worker_set_state(w, DD_WORKER_PRODUCING, b->item_job[lo],
                                     b->reqs[lo].request_id, m);
            hand_on(b, lo, m, start_us);
            return 0;
        }
        dd_metrics_inc(DD_C_REDIS_ERRORS);
        attempt++;
        if (dd_now_ms() - b->last_warn_ms >= WARN_EVERY_MS) {
            b->last_warn_ms = dd_now_ms();
            DD_LOG(DD_LOG_WARN, "pool", "redis_unavailable",
                   "redis failed (%s); keeping %zu job(s) and retrying", errstr,
                   m);
        }
        if (redis_answers(w, st)) {
            if (m > 1) { /* the batch itself may be at fault: halve it */
                size_t h = m / 2;
                if (answer(b, w, st, lo, h, start_us, set_aside)) {
                    drop_jobs(b, lo + h, m - h);
                    return 1;
                }
                return answer(b, w, st, lo + h, m - h, start_us, set_aside);
            }
            if (set_aside) {
                b->stuck[b->nstuck++] = lo;
                return 0;
            }
            delay = retry_delay_ms(attempt);
        } else {
            delay = dd_store_backoff_ms(st);
        }
        dd_pool_worker_set_state(w, DD_WORKER_BACKOFF, b->item_job[lo],
                                 b->reqs[lo].request_id, m);
        if (dd_pool_worker_backoff(w, delay)) {
            drop_jobs(b, lo, m);
            return 1;
        }
    }
}

size_t dd_worker_batch_run(dd_worker_batch_t *b, dd_pool_worker_t *w,
                           dd_store_t *st, dd_job_t **jobs, size_t n) {
    size_t m = 0;
    int64_t start_us = dd_now_us();

    b->dropped = 0;

    dd_pool_worker_set_state(w, DD_WORKER_PARSING, jobs[0], NULL, n);
    for (size_t i = 0; i < n; i++) {
        dd_job_t *job = jobs[i];
        dd_codec_error_t err;
        if (dd_codec_parse_request(job->value ? job->value : "", job->value_len,
                                   &b->reqs[m], &err) != DD_OK) {
            dead_letter(b, job, err.code, err.text, "dead_letter");
            continue;
        }
        /* The out fields are cleared by the dispatch call; result must
         * not point at an old allocation (its reset frees it). */
        b->items[m].result = NULL;
        b->items[m].req = &b->reqs[m];
        b->items[m].msg_ts_ms = job->timestamp_ms;
        b->items[m].source_topic = b->cfg->topic;
        b->items[m].source_partition = job->partition;
        b->items[m].source_offset = job->offset;
        b->item_job[m] = job;
        m++;
    }
    if (m == 0)
        return 0;
    b->nstuck = 0;
    if (answer(b, w, st, 0, m, start_us, 1)) {
        for (size_t k = 0; k < b->nstuck; k++)
            drop_jobs(b, b->stuck[k], 1);
        return b->dropped;
    }
    /* The rest went; now each request set aside, alone. */
    for (size_t k = 0; k < b->nstuck; k++) {
        if (answer(b, w, st, b->stuck[k], 1, start_us, 0)) {
            for (size_t r = k + 1; r < b->nstuck; r++)
                drop_jobs(b, b->stuck[r], 1);
            return b->dropped;
        }
    }
    return b->dropped;
}
