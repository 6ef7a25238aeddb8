/* SPDX-License-Identifier: MIT */
/*
 * pipeline_http: the pipeline's side of the HTTP endpoint; see
 * pipeline_int.h. It implements the dd_http_sources_t callbacks over the
 * pipeline's modules:
 *
 *   health  the poll loop iterated within DD_HEALTH_POLL_STALL_MS and no
 *           worker sat in one busy state (parsing, redis, producing) longer
 *           than DD_HEALTH_WORKER_STUCK_MS; backoff is waiting, not stuck
 *   ready   no fatal Kafka error (stop.h), the consumer joined the group
 *           (or holds an assignment), Redis answers and has not lost
 *           dispatchd's state, results get delivered (not none for
 *           --ready-delivery-timeout while some are outstanding), commits
 *           succeed (not failing for --ready-commit-timeout), not stuck,
 *           not shutting down. Every reason is listed in the README's
 *           monitoring section.
 *   debug   workers, queue, consumer, per-partition tracker state as JSON
 *   admin   POST /admin/redis-state-lost/ack: the operator accepts that
 *           Redis lost dispatchd's state (store.h dd_store_state_ack())
 *
 * DESIGN: the callbacks run on dd-http and only read atomics or take the
 * modules' short leaf locks (worker state, tracker). `lock` guards the
 * module handles against dd_pipeline_http_detach(): a callback holds it
 * while it reads them, and detach takes it before the pipeline destroys
 * them. `lock` is therefore the outer lock of the only nesting in the
 * process (row 1 of "Lock order" in pipeline_int.h): while it is held, the
 * module calls take a worker state lock (dd_pool_snapshot(), from
 * stuck_reason() and workers_json(); dd_pool_redis_error(), from
 * ready_cb()) or the tracker lock
 * (dd_offsets_snapshot(), dd_offsets_pending_total()), one at a time, each
 * released before the call returns. The queue depth, the consumer's state
 * and the pool's Redis state are atomics. None of those modules ever takes
 * `lock`.
 */
#include "pipeline_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "http.h"
#include "kafka_int.h"
#include "log.h"
#include "metrics.h"
#include "stop.h"
#include "store.h"
#include "util.h"

struct dd_pipeline_http {
    const dd_config_t *cfg;
    dd_http_t *http;     /* NULL when --http 0 */
    atomic_int draining; /* set when shutdown began */

    pthread_mutex_t lock;
    int detached;            /* protected by lock */
    dd_consumer_t *cons;     /* protected by lock */
    dd_pool_t *pool;         /* protected by lock */
    dd_queue_t *jq;          /* protected by lock */
    dd_offsets_t *ot;        /* protected by lock */
    dd_worker_info_t *winfo; /* cfg->workers entries; dd-http only */
    const dd_pipeline_delivery_t *delivery; /* NULL in a dry run */
    /* ready_cb's reason texts (dd-http only, valid until the next call) */
    char fatal_text[320];
    char delivery_text[160];
    char commit_text[160];
    char redis_text[300];
};

/* Why the pipeline is stuck, or "" when it is not; caller holds lock. */
static void stuck_reason(dd_pipeline_http_t *ph, char *reason, size_t size) {
    int64_t now = dd_now_ms();
    int64_t poll_age = now - dd_consumer_last_poll_ms(ph->cons);
    size_t n;

    reason[0] = '\0';
    if (!atomic_load(&ph->draining) && poll_age > DD_HEALTH_POLL_STALL_MS) {
        snprintf(reason, size, "poll loop has not iterated for %lld ms",
                 (long long)poll_age);
        return;
    }
    n = dd_pool_snapshot(ph->pool, ph->winfo, (size_t)ph->cfg->workers);
    for (size_t i = 0; i < n; i++) {
        const dd_worker_info_t *wi = &ph->winfo[i];
        if (wi->state == DD_WORKER_IDLE || wi->state == DD_WORKER_BACKOFF ||
            now - wi->since_ms <= DD_HEALTH_WORKER_STUCK_MS)
            continue;
        snprintf(reason, size,
                 "worker %d has been in state %s for %lld ms (request %s, "
                 "partition %d, offset %lld)",
                 wi->id, dd_worker_state_name(wi->state),
                 (long long)(now - wi->since_ms),
                 wi->request_id[0] ? wi->request_id : "-", (int)wi->partition,
                 (long long)wi->offset);
        return;
    }
}

static int health_cb(void *opaque, char *reason, size_t reason_size) {
    dd_pipeline_http_t *ph = opaque;

    pthread_mutex_lock(&ph->lock);
    if (ph->detached)
        reason[0] = '\0'; /* shutting down: alive until exit */
    else
        stuck_reason(ph, reason, reason_size);
    pthread_mutex_unlock(&ph->lock);
    return reason[0] == '\0';
}

static size_t ready_cb(void *opaque, const char **reasons, size_t max) {
    dd_pipeline_http_t *ph = opaque;
    char stuck[256];
    size_t n = 0;
    int64_t now = dd_now_ms(), since, stalled;
    int failures;

#define ADD(s)                                                                 \
    do {                                                                       \
        if (n < max)                                                           \
            reasons[n++] = (s);                                                \
    } while (0)
    if (atomic_load(&ph->draining))
        ADD("shutting down");
    if (dd_stop_is_fatal()) {
        /* "fatal kafka client error (consumer|producer): NAME: text" */
        dd_stop_fatal_reason(ph->fatal_text, sizeof(ph->fatal_text));
        ADD(ph->fatal_text);
    }
    stalled =
        ph->delivery ? dd_pipeline_delivery_stalled_ms(ph->delivery, now) : 0;
    if (stalled > ph->cfg->ready_delivery_timeout_ms) {
        snprintf(ph->delivery_text, sizeof(ph->delivery_text),
                 "deliveries stalled: no result delivered for %lld s while "
                 "%lld are outstanding",
                 (long long)(stalled / 1000),
                 (long long)atomic_load(&ph->delivery->outstanding));
        ADD(ph->delivery_text);
    }
    failures = dd_kafka_commit_failing(&since);
    if (failures >= 2 && now - since > ph->cfg->ready_commit_timeout_ms) {
        snprintf(ph->commit_text, sizeof(ph->commit_text),
                 "offset commits failing: %d consecutive failures in %lld s",
                 failures, (long long)((now - since) / 1000));
        ADD(ph->commit_text);
    }
    pthread_mutex_lock(&ph->lock);
    if (!ph->detached) {
        if (!dd_consumer_has_joined(ph->cons) &&
            dd_consumer_assigned_count(ph->cons) == 0)
            ADD("consumer has not joined the group yet");
        if (dd_store_state_lost())
            ADD(dd_store_state_lost_reason);
        else if (!dd_pool_redis_ok(ph->pool)) {
            /* "redis is not answering: <the last ping's error>" */
            char err[256];
            if (dd_pool_redis_error(ph->pool, err, sizeof(err)))
                snprintf(ph->redis_text, sizeof(ph->redis_text),
                         "redis is not answering: %s", err);
            else
                snprintf(ph->redis_text, sizeof(ph->redis_text),
                         "redis is not answering");
            ADD(ph->redis_text);
        }
        stuck_reason(ph, stuck, sizeof(stuck));
        if (stuck[0])
            ADD("stuck (see /healthz)");
    }
    pthread_mutex_unlock(&ph->lock);
#undef ADD
    return n;
}

static unsigned admin_cb(void *opaque, const char *path, char *body,
                         size_t body_size) {
    (void)opaque;
    if (strcmp(path, "/admin/redis-state-lost/ack") != 0) {
        snprintf(body, body_size, "not found\n");
        return 404;
    }
    if (!dd_store_state_ack()) {
        snprintf(body, body_size,
                 "redis state is not lost: nothing to "
                 "acknowledge\n");
        return 409;
    }
    snprintf(body, body_size,
             "acknowledged: the store id marker is written again and the "
             "workers resume at their next redis call\n");
    return 202;
}

static json_t *nullable_int(int64_t v) {
    return v < 0 ? json_null() : json_integer(v);
}

static json_t *workers_json(dd_pipeline_http_t *ph, int64_t now) {
    json_t *arr = json_array();
    size_t n = dd_pool_snapshot(ph->pool, ph->winfo, (size_t)ph->cfg->workers);

    for (size_t i = 0; i < n; i++) {
        const dd_worker_info_t *wi = &ph->winfo[i];
        json_t *w = json_object();
        json_object_set_new(w, "id", json_integer(wi->id));
        json_object_set_new(w, "state",
                            json_string(dd_worker_state_name(wi->state)));
        json_object_set_new(w, "for_ms", json_integer(now - wi->since_ms));
        json_object_set_new(w, "request_id",
                            wi->request_id[0] ? json_string(wi->request_id)
                                              : json_null());
        json_object_set_new(w, "partition", nullable_int(wi->partition));
        json_object_set_new(w, "offset", nullable_int(wi->offset));
        json_object_set_new(w, "batch", json_integer((json_int_t)wi->batch));
        json_array_append_new(arr, w);
    }
    return arr;
}

static json_t *partitions_json(dd_pipeline_http_t *ph) {
    json_t *arr = json_array();
    size_t max = 64, n;
    dd_offsets_part_info_t *pi = NULL;

    /* Grow until the snapshot fits (partitions are few; bounded anyway). */
    for (;;) {
        pi = dd_xrealloc(pi, max * sizeof(*pi));
        n = dd_offsets_snapshot(ph->ot, pi, max);
        if (n < max || max > DD_OFFSETS_PARTITION_MAX)
            break;
        max *= 2;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_object();
        int paused = dd_consumer_is_paused(ph->cons, pi[i].partition);
        int wpaused = dd_consumer_is_window_paused(ph->cons, pi[i].partition);
        json_object_set_new(p, "partition", json_integer(pi[i].partition));
        json_object_set_new(p, "assigned", json_boolean(pi[i].assigned));
        json_object_set_new(p, "paused",
                            paused < 0 ? json_null() : json_boolean(paused));
        json_object_set_new(p, "paused_by_window",
                            wpaused < 0 ? json_null() : json_boolean(wpaused));
        json_object_set_new(p, "window",
                            json_integer((json_int_t)pi[i].window));
        json_object_set_new(p, "rewinds",
                            json_integer((json_int_t)pi[i].rewinds));
        json_object_set_new(p, "epoch", json_integer(pi[i].epoch));
        json_object_set_new(p, "dispatched",
                            json_integer((json_int_t)pi[i].dispatched_count));
        json_object_set_new(p, "done",
                            json_integer((json_int_t)pi[i].done_count));
        json_object_set_new(p, "discarded",
                            json_integer((json_int_t)pi[i].discarded_count));
        json_object_set_new(p, "pending",
                            json_integer((json_int_t)pi[i].pending));
        json_object_set_new(p, "last_dispatched",
                            nullable_int(pi[i].last_dispatched));
        json_object_set_new(p, "committable", nullable_int(pi[i].committable));
        json_object_set_new(p, "committed", nullable_int(pi[i].committed));
        json_array_append_new(arr, p);
    }
    dd_free(pi);
    return arr;
}

static char *debug_cb(void *opaque) {
    dd_pipeline_http_t *ph = opaque;
    int64_t now = dd_now_ms();
    json_t *root = json_object();
    json_t *q, *cons;
    char *s, *out;

    json_object_set_new(root, "shutting_down",
                        json_boolean(atomic_load(&ph->draining)));
    pthread_mutex_lock(&ph->lock);
    if (!ph->detached) {
        json_object_set_new(root, "workers", workers_json(ph, now));
        q = json_object();
        json_object_set_new(q, "depth",
                            json_integer((json_int_t)dd_queue_depth(ph->jq)));
        json_object_set_new(
            q, "capacity", json_integer((json_int_t)dd_queue_capacity(ph->jq)));
        json_object_set_new(root, "queue", q);
        json_object_set_new(
            root, "inflight",
            json_integer((json_int_t)dd_offsets_pending_total(ph->ot)));
        json_object_set_new(root, "redis_ok",
                            json_boolean(dd_pool_redis_ok(ph->pool)));
        cons = json_object();
        json_object_set_new(cons, "joined",
                            json_boolean(dd_consumer_has_joined(ph->cons)));
        json_object_set_new(cons, "assigned",
                            json_integer(dd_consumer_assigned_count(ph->cons)));
        json_object_set_new(
            cons, "last_poll_ms_ago",
            json_integer(now - dd_consumer_last_poll_ms(ph->cons)));
        json_object_set_new(root, "consumer", cons);
        json_object_set_new(root, "partitions", partitions_json(ph));
    }
    pthread_mutex_unlock(&ph->lock);
    s = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    if (s == NULL)
        return NULL;
    /* jansson allocates with malloc; the http module frees with dd_free. */
    out = dd_xstrdup(s);
    free(s);
    return out;
}

dd_pipeline_http_t *
dd_pipeline_http_start(const dd_config_t *cfg, dd_consumer_t *cons,
                       dd_pool_t *pool, dd_queue_t *jq, dd_offsets_t *ot,
                       const dd_pipeline_delivery_t *delivery, char *errstr,
                       size_t errstr_size) {
    dd_pipeline_http_t *ph = dd_xcalloc(1, sizeof(*ph));
    dd_http_conf_t hc = {0};
    dd_http_sources_t src = {health_cb, ready_cb, debug_cb, NULL, admin_cb};

    dd_metrics_set_build_info(DD_VERSION, rd_kafka_version_str());
    ph->cfg = cfg;
    ph->cons = cons;
    ph->pool = pool;
    ph->jq = jq;
    ph->ot = ot;
    ph->delivery = delivery;
    ph->winfo = dd_xcalloc((size_t)cfg->workers, sizeof(*ph->winfo));
    pthread_mutex_init(&ph->lock, NULL);
    if (!cfg->http.enabled) {
        DD_LOG(DD_LOG_INFO, "http", "http_disabled", "HTTP endpoint disabled");
        return ph;
    }
    hc.addr = cfg->http.addr;
    hc.port = cfg->http.port;
    src.opaque = ph;
    ph->http = dd_http_new(&hc, &src, errstr, errstr_size);
    if (ph->http == NULL) {
        dd_pipeline_http_stop(ph);
        return NULL;
    }
    return ph;
}

void dd_pipeline_http_draining(dd_pipeline_http_t *ph) {
    if (ph != NULL)
        atomic_store(&ph->draining, 1);
}

void dd_pipeline_http_detach(dd_pipeline_http_t *ph) {
    if (ph == NULL)
        return;
    atomic_store(&ph->draining, 1);
    pthread_mutex_lock(&ph->lock);
    ph->detached = 1;
    ph->cons = NULL;
    ph->pool = NULL;
    ph->jq = NULL;
    ph->ot = NULL;
    pthread_mutex_unlock(&ph->lock);
}

void dd_pipeline_http_stop(dd_pipeline_http_t *ph) {
    if (ph == NULL)
        return;
    dd_http_destroy(ph->http);
    pthread_mutex_destroy(&ph->lock);
    dd_free(ph->winfo);
    dd_free(ph);
}
