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

struct dd_worker_batch {
    const dd_config_t *cfg;
    dd_pool_answered_cb *answered;
    void *opaque;
    dd_request_t *reqs;        /* batch_size requests */
    dd_dispatch_item_t *items; /* batch_size items */
    dd_job_t **item_job;       /* job of each item */
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
    sc->password = cfg->redis.password;
    sc->db = cfg->redis.db;
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
    return b;
}

void dd_worker_batch_destroy(dd_worker_batch_t *b) {
    if (b == NULL)
        return;
    dd_free(b->reqs);
    dd_free(b->items);
    dd_free(b->item_job);
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

/* An invalid request: mark the job for the dead-letter topic and hand it
 * on. */
static void dead_letter(dd_worker_batch_t *b, dd_job_t *job,
                        const dd_codec_error_t *err) {
    job->out_kind = DD_JOB_OUT_DLQ;
    job->dlq_code = err->code;
    dd_strlcpy(job->dlq_text, err->text, sizeof(job->dlq_text));
    dd_metrics_inc(DD_C_REQ_DEAD_LETTER);
    dd_metrics_inc(dd_metrics_dlq_counter(err->code));
    DD_LOG_TPO(DD_LOG_INFO, "pool", "dead_letter", b->cfg->topic,
               job->partition, job->offset, "%s: %s",
               dd_codec_dlq_class_name(err->code), err->text);
    b->answered(job, b->opaque);
}

/* Answer the valid jobs of a batch; retries while Redis fails. Returns the
 * number of items answered (0 when the batch had to be dropped). */
static size_t answer(dd_worker_batch_t *b, dd_pool_worker_t *w, dd_store_t *st,
                     size_t m) {
    char errstr[256];
    int64_t last_log = 0;

    for (;;) {
        dd_pool_worker_set_state(w, DD_WORKER_REDIS, b->item_job[0],
                                 b->reqs[0].request_id, m);
        /* --dry-run (replay): reads only, nothing reserved or stored. */
        if ((b->cfg->dry_run ? dd_dispatch_batch_dry_run : dd_dispatch_batch)(
                st, b->items, m, dd_wall_ms(), errstr, sizeof(errstr)) ==
            DD_OK) {
            dd_pool_worker_redis_seen(w, 1);
            return m;
        }
        dd_pool_worker_redis_seen(w, 0);
        dd_metrics_inc(DD_C_REDIS_ERRORS);
        if (dd_now_ms() - last_log >= 5000) {
            last_log = dd_now_ms();
            DD_LOG(DD_LOG_WARN, "pool", "redis_unavailable",
                   "redis failed (%s); keeping %zu job(s) and retrying", errstr,
                   m);
        }
        dd_pool_worker_set_state(w, DD_WORKER_BACKOFF, b->item_job[0],
                                 b->reqs[0].request_id, m);
        if (dd_pool_worker_backoff(w, dd_store_backoff_ms(st))) {
            for (size_t i = 0; i < m; i++) {
                DD_LOG_TPO(DD_LOG_WARN, "pool", "job_dropped", b->cfg->topic,
                           b->item_job[i]->partition, b->item_job[i]->offset,
                           "shutdown timeout with redis down: job dropped, "
                           "offset stays uncommitted");
                dd_job_destroy(b->item_job[i]);
            }
            return 0;
        }
    }
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

void dd_worker_batch_run(dd_worker_batch_t *b, dd_pool_worker_t *w,
                         dd_store_t *st, dd_job_t **jobs, size_t n) {
    size_t m = 0, answered;
    int64_t start_us = dd_now_us();

    dd_pool_worker_set_state(w, DD_WORKER_PARSING, jobs[0], NULL, n);
    for (size_t i = 0; i < n; i++) {
        dd_job_t *job = jobs[i];
        dd_codec_error_t err;
        if (dd_codec_parse_request(job->value ? job->value : "", job->value_len,
                                   &b->reqs[m], &err) != DD_OK) {
            dead_letter(b, job, &err);
            continue;
        }
        memset(&b->items[m], 0, sizeof(b->items[m]));
        b->items[m].req = &b->reqs[m];
        b->items[m].msg_ts_ms = job->timestamp_ms;
        b->items[m].source_topic = b->cfg->topic;
        b->items[m].source_partition = job->partition;
        b->items[m].source_offset = job->offset;
        b->item_job[m] = job;
        m++;
    }
    if (m == 0)
        return;
    answered = answer(b, w, st, m);
    if (answered == 0)
        return; /* dropped at shutdown: the jobs are gone */
    dd_pool_worker_set_state(w, DD_WORKER_PRODUCING, b->item_job[0],
                             b->reqs[0].request_id, m);
    for (size_t i = 0; i < answered; i++) {
        dd_job_t *job = b->item_job[i];
        count_result(&b->items[i]);
        marshal_result(job, &b->items[i], &b->reqs[i]);
        dd_metrics_observe(DD_H_PROCESSING,
                           (double)(dd_now_us() - start_us) / 1e6);
        b->answered(job, b->opaque);
    }
}
