/* SPDX-License-Identifier: MIT */
/*
 * consumer: poll loop, backpressure, rebalance handling and offset storing.
 *
 * DESIGN: one thread, dd-poll, owns the librdkafka consumer handle; the
 * rebalance, commit, statistics and log callbacks run on it (inside
 * rd_kafka_consumer_poll), and so do pause/resume and offsets_store. The
 * only state shared with other threads is the job queue and the offset
 * tracker, each with its own lock, and a few atomics read by the HTTP side.
 * After dd_consumer_stop() joined dd-poll, the caller of
 * dd_consumer_destroy() takes the handle over (rd_kafka_consumer_close runs
 * the final revoke on that thread).
 *
 * Offsets: enable.auto.offset.store=false. Every loop iteration stores, for
 * each assigned partition, the tracker's watermark when it advanced;
 * librdkafka's auto commit (every second) and every revoke commit what was
 * stored. A revoke drops the partition's queued jobs, waits up to
 * --drain-timeout for its in-flight ones, commits the done prefix
 * synchronously (unless the assignment was lost), resumes it if we paused
 * it, bumps its epoch (late completions are ignored) and unassigns.
 */
#include "consumer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "job.h"
#include "kafka_int.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define POLL_TIMEOUT_MS 100

typedef struct held {
    dd_job_t *job;
    struct held *next;
} held_t;

/* Per-partition bookkeeping of dd-poll (indexes are partition ids). */
typedef struct pstate {
    uint8_t assigned;
    uint8_t paused; /* paused by us (backpressure), not by librdkafka */
    int64_t stored; /* last watermark given to offsets_store, -1 = none */
} pstate_t;

struct dd_consumer {
    const dd_config_t *cfg;
    dd_queue_t *jq;
    dd_offsets_t *ot;
    rd_kafka_t *rk;
    pthread_t thread;
    int thread_started;
    atomic_int stop;
    atomic_int assigned_cnt;
    atomic_int joined;
    _Atomic int64_t last_poll_ms;

    /* dd-poll only (then the closing thread). */
    pstate_t *ps;
    size_t ps_cap;
    held_t *held_head, *held_tail; /* jobs the full queue did not take */
    size_t held_cnt;
    int backpressure; /* 1 while we keep the assignment paused */
};

int dd_consumer_assigned_count(const dd_consumer_t *c) {
    return atomic_load(&((dd_consumer_t *)c)->assigned_cnt);
}

int dd_consumer_has_joined(const dd_consumer_t *c) {
    return atomic_load(&((dd_consumer_t *)c)->joined);
}

int64_t dd_consumer_last_poll_ms(const dd_consumer_t *c) {
    return atomic_load(&((dd_consumer_t *)c)->last_poll_ms);
}

static pstate_t *pst(dd_consumer_t *c, int32_t p) {
    if ((size_t)p >= c->ps_cap) {
        size_t ncap = (size_t)p + 16;
        c->ps = dd_xrealloc(c->ps, ncap * sizeof(*c->ps));
        for (size_t i = c->ps_cap; i < ncap; i++)
            c->ps[i] = (pstate_t){0, 0, -1};
        c->ps_cap = ncap;
    }
    return &c->ps[p];
}

static int is_cooperative(rd_kafka_t *rk) {
    const char *proto = rd_kafka_rebalance_protocol(rk);
    return proto != NULL && strcmp(proto, "COOPERATIVE") == 0;
}

/*----- Offsets -----*/

/* Store the watermark of every assigned partition that advanced. */
static void store_offsets(dd_consumer_t *c) {
    rd_kafka_topic_partition_list_t *list = NULL;

    for (size_t p = 0; p < c->ps_cap; p++) {
        int64_t w;
        if (!c->ps[p].assigned)
            continue;
        w = dd_offsets_committable(c->ot, (int32_t)p);
        if (w <= c->ps[p].stored)
            continue;
        if (list == NULL)
            list = rd_kafka_topic_partition_list_new(8);
        rd_kafka_topic_partition_list_add(list, c->cfg->topic, (int32_t)p)
            ->offset = w;
        c->ps[p].stored = w;
    }
    if (list == NULL)
        return;
    if (rd_kafka_offsets_store(c->rk, list) != RD_KAFKA_RESP_ERR_NO_ERROR)
        DD_LOG(DD_LOG_WARN, "consumer", "offsets_store_failed",
               "offsets_store failed for %d partition(s)", list->cnt);
    rd_kafka_topic_partition_list_destroy(list);
}

static void offset_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets,
                             void *opaque) {
    dd_consumer_t *c = opaque;

    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return; /* nothing to commit */
    if (err) {
        dd_metrics_inc(DD_C_COMMITS_ERROR);
        DD_LOG(DD_LOG_WARN, "consumer", "commit_failed", "commit failed: %s",
               rd_kafka_err2str(err));
        return;
    }
    dd_metrics_inc(DD_C_COMMITS_OK);
    for (int i = 0; offsets && i < offsets->cnt; i++)
        if (!offsets->elems[i].err && offsets->elems[i].offset >= 0)
            dd_offsets_set_committed(c->ot, offsets->elems[i].partition,
                                     offsets->elems[i].offset);
}

/*----- Backpressure -----*/

static void set_paused(dd_consumer_t *c, rd_kafka_topic_partition_list_t *list,
                       int pause) {
    if (list->cnt == 0)
        return;
    if (pause)
        rd_kafka_pause_partitions(c->rk, list);
    else
        rd_kafka_resume_partitions(c->rk, list);
    for (int i = 0; i < list->cnt; i++) {
        if (list->elems[i].err)
            continue;
        pst(c, list->elems[i].partition)->paused = (uint8_t)pause;
        dd_metrics_gauge_add(DD_G_PARTITIONS_PAUSED, pause ? 1 : -1);
    }
}

/* Pause every assigned partition not paused yet (or resume every one we
 * paused): resuming only what we paused avoids librdkafka 2.0.2's rewind
 * when resuming a partition that was not paused. */
static void pause_all(dd_consumer_t *c, int pause) {
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new(8);

    for (size_t p = 0; p < c->ps_cap; p++)
        if (c->ps[p].assigned && c->ps[p].paused != pause)
            rd_kafka_topic_partition_list_add(list, c->cfg->topic, (int32_t)p);
    set_paused(c, list, pause);
    rd_kafka_topic_partition_list_destroy(list);
}

static void hold(dd_consumer_t *c, dd_job_t *job) {
    held_t *h = dd_xmalloc(sizeof(*h));
    h->job = job;
    h->next = NULL;
    if (c->held_tail)
        c->held_tail->next = h;
    else
        c->held_head = h;
    c->held_tail = h;
    c->held_cnt++;
}

/* Push held jobs in order while the queue takes them. */
static void push_held(dd_consumer_t *c) {
    while (c->held_head &&
           dd_queue_try_push(c->jq, c->held_head->job) == DD_OK) {
        held_t *h = c->held_head;
        c->held_head = h->next;
        if (c->held_head == NULL)
            c->held_tail = NULL;
        c->held_cnt--;
        dd_free(h);
    }
}

static void backpressure(dd_consumer_t *c) {
    size_t depth = dd_queue_depth(c->jq);
    size_t cap = dd_queue_capacity(c->jq);

    if (!c->backpressure && (c->held_cnt > 0 || depth >= cap)) {
        c->backpressure = 1;
        pause_all(c, 1);
        DD_LOG(DD_LOG_DEBUG, "consumer", "backpressure_on",
               "job queue full (%zu): partitions paused", depth);
    } else if (c->backpressure && c->held_cnt == 0 && depth <= cap / 2) {
        c->backpressure = 0;
        pause_all(c, 0);
        DD_LOG(DD_LOG_DEBUG, "consumer", "backpressure_off",
               "job queue at %zu: partitions resumed", depth);
    }
}

/*----- Rebalance -----*/

typedef struct revoke_ctx {
    const uint8_t *revoked; /* indexed by partition */
    size_t cap;
    int64_t *min_dropped; /* lowest dropped offset per partition, or -1 */
} revoke_ctx_t;

static int job_is_revoked(void *item, void *arg) {
    const dd_job_t *job = item;
    const revoke_ctx_t *rc = arg;
    return (size_t)job->partition < rc->cap && rc->revoked[job->partition];
}

static void drop_revoked_job(void *item, void *arg) {
    dd_job_t *job = item;
    revoke_ctx_t *rc = arg;
    int64_t *m = &rc->min_dropped[job->partition];
    if (*m < 0 || job->offset < *m)
        *m = job->offset;
    dd_job_destroy(job);
}

/* Drop the not-yet-started jobs of revoked partitions: queued and held.
 * They are the newest of their partitions (FIFO), so the tracker discards a
 * suffix, and the new owner consumes them again from the committed offset. */
static void drop_queued(dd_consumer_t *c, revoke_ctx_t *rc) {
    held_t **pp = &c->held_head;

    dd_queue_remove_if(c->jq, job_is_revoked, rc, drop_revoked_job);
    c->held_tail = NULL;
    while (*pp) {
        held_t *h = *pp;
        if (job_is_revoked(h->job, rc)) {
            *pp = h->next;
            drop_revoked_job(h->job, rc);
            dd_free(h);
            c->held_cnt--;
        } else {
            c->held_tail = h;
            pp = &h->next;
        }
    }
    for (size_t p = 0; p < rc->cap; p++)
        if (rc->revoked[p] && rc->min_dropped[p] >= 0)
            dd_offsets_discard_from(c->ot, (int32_t)p, rc->min_dropped[p]);
}

static void revoke(dd_consumer_t *c, rd_kafka_topic_partition_list_t *parts,
                   int lost) {
    revoke_ctx_t rc;
    int32_t *ids = dd_xcalloc((size_t)parts->cnt + 1, sizeof(*ids));
    rd_kafka_topic_partition_list_t *commit =
        rd_kafka_topic_partition_list_new(parts->cnt + 1);
    rd_kafka_topic_partition_list_t *resume =
        rd_kafka_topic_partition_list_new(parts->cnt + 1);
    /* Once the poll loop stopped (shutdown), the workers and the producer
     * are finished: whatever is still pending will never complete. */
    int64_t deadline =
        dd_now_ms() + (atomic_load(&c->stop) ? 0 : c->cfg->drain_timeout_ms);
    size_t n = 0;

    rc.cap = c->ps_cap;
    rc.revoked = dd_xcalloc(rc.cap + 1, 1);
    rc.min_dropped = dd_xmalloc((rc.cap + 1) * sizeof(int64_t));
    for (size_t i = 0; i < rc.cap; i++)
        rc.min_dropped[i] = -1;
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        if ((size_t)p < rc.cap && c->ps[p].assigned) {
            ((uint8_t *)rc.revoked)[p] = 1;
            ids[n++] = p;
        }
    }
    drop_queued(c, &rc);
    if (dd_offsets_wait_idle(c->ot, ids, n, deadline) != DD_OK)
        DD_LOG(DD_LOG_WARN, "consumer", "revoke_drain_timeout",
               "in-flight jobs of %zu revoked partition(s) not done within "
               "the drain timeout; committing the done prefix only",
               n);
    for (size_t i = 0; i < n; i++) {
        int64_t w = -1;
        dd_offsets_revoke(c->ot, ids[i], &w);
        if (!lost && w >= 0)
            rd_kafka_topic_partition_list_add(commit, c->cfg->topic, ids[i])
                ->offset = w;
        if (c->ps[ids[i]].paused)
            rd_kafka_topic_partition_list_add(resume, c->cfg->topic, ids[i]);
    }
    if (commit->cnt > 0) {
        /* Store too, so the commit librdkafka makes on unassign cannot
         * commit an older stored value. */
        rd_kafka_offsets_store(c->rk, commit);
        rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, commit, 0);
        DD_LOG(err ? DD_LOG_WARN : DD_LOG_INFO, "consumer", "revoke_commit",
               "committed the done prefix of %d revoked partition(s): %s",
               commit->cnt, rd_kafka_err2str(err));
    }
    set_paused(c, resume, 0);
    for (size_t i = 0; i < n; i++) {
        c->ps[ids[i]].assigned = 0;
        c->ps[ids[i]].stored = -1;
    }
    atomic_fetch_sub(&c->assigned_cnt, (int)n);
    dd_metrics_gauge_set(DD_G_PARTITIONS_ASSIGNED,
                         atomic_load(&c->assigned_cnt));
    DD_LOG(DD_LOG_INFO, "consumer", "rebalance_revoke",
           "revoked %zu partition(s)%s", n, lost ? " (assignment lost)" : "");
    rd_kafka_topic_partition_list_destroy(commit);
    rd_kafka_topic_partition_list_destroy(resume);
    dd_free((void *)rc.revoked);
    dd_free(rc.min_dropped);
    dd_free(ids);
}

static void assign(dd_consumer_t *c, rd_kafka_topic_partition_list_t *parts) {
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        uint32_t epoch;
        dd_offsets_assign(c->ot, p, &epoch);
        pst(c, p)->assigned = 1;
        c->ps[p].stored = -1;
        c->ps[p].paused = 0;
    }
    atomic_fetch_add(&c->assigned_cnt, parts->cnt);
    dd_metrics_gauge_set(DD_G_PARTITIONS_ASSIGNED,
                         atomic_load(&c->assigned_cnt));
    DD_LOG(DD_LOG_INFO, "consumer", "rebalance_assign",
           "assigned %d partition(s), %d in total", parts->cnt,
           atomic_load(&c->assigned_cnt));
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    dd_consumer_t *c = opaque;
    int coop = is_cooperative(rk);
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t ret = RD_KAFKA_RESP_ERR_NO_ERROR;

    dd_metrics_inc(DD_C_REBALANCES);
    switch (err) {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            assign(c, parts);
            if (coop)
                error = rd_kafka_incremental_assign(rk, parts);
            else
                ret = rd_kafka_assign(rk, parts);
            /* Still over capacity: the new partitions start paused too. */
            if (c->backpressure)
                pause_all(c, 1);
            atomic_store(&c->joined, 1);
            break;
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            revoke(c, parts, rd_kafka_assignment_lost(rk));
            if (coop)
                error = rd_kafka_incremental_unassign(rk, parts);
            else
                ret = rd_kafka_assign(rk, NULL);
            break;
        default:
            DD_LOG(DD_LOG_ERROR, "consumer", "rebalance_error",
                   "rebalance failed: %s", rd_kafka_err2str(err));
            revoke(c, parts, 1);
            ret = rd_kafka_assign(rk, NULL);
            break;
    }
    if (error) {
        DD_LOG(DD_LOG_ERROR, "consumer", "rebalance_apply_failed",
               "incremental (un)assign failed: %s",
               rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (ret) {
        DD_LOG(DD_LOG_ERROR, "consumer", "rebalance_apply_failed",
               "assign failed: %s", rd_kafka_err2str(ret));
    }
}

/*----- Statistics -----*/

static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque) {
    dd_consumer_t *c = opaque;
    json_error_t jerr;
    json_t *root = json_loadb(json, json_len, 0, &jerr);
    json_t *parts, *v;
    const char *key;

    (void)rk;
    if (root == NULL)
        return 0;
    parts = json_object_get(
        json_object_get(json_object_get(root, "topics"), c->cfg->topic),
        "partitions");
    json_object_foreach(parts, key, v) {
        json_t *lag = json_object_get(v, "consumer_lag");
        int p = atoi(key);
        if (p < 0 || !json_is_integer(lag))
            continue; /* "-1" is the internal UA partition */
        dd_metrics_set_lag(p, json_integer_value(lag));
    }
    json_decref(root);
    return 0;
}

/*----- Poll loop -----*/

static void handle_message(dd_consumer_t *c, rd_kafka_message_t *rkm) {
    uint32_t epoch;
    dd_job_t *job;

    if (rkm->err) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            DD_LOG(rkm->err == RD_KAFKA_RESP_ERR__MAX_POLL_EXCEEDED
                       ? DD_LOG_ERROR
                       : DD_LOG_WARN,
                   "consumer", "consume_error", "%s",
                   rd_kafka_message_errstr(rkm));
        return;
    }
    if ((size_t)rkm->partition >= c->ps_cap ||
        !c->ps[rkm->partition].assigned ||
        dd_offsets_dispatch(c->ot, rkm->partition, rkm->offset, &epoch) !=
            DD_OK) {
        /* A message of a partition no longer ours: the owner gets it. */
        DD_LOG_TPO(DD_LOG_DEBUG, "consumer", "message_ignored", c->cfg->topic,
                   rkm->partition, rkm->offset,
                   "message of an unassigned partition ignored");
        return;
    }
    job = dd_job_new(rkm, epoch);
    if (c->held_cnt > 0 || dd_queue_try_push(c->jq, job) != DD_OK)
        hold(c, job);
}

static void *poll_main(void *arg) {
    dd_consumer_t *c = arg;

    pthread_setname_np(pthread_self(), "dd-poll");
    while (!atomic_load(&c->stop)) {
        rd_kafka_message_t *rkm;

        push_held(c);
        backpressure(c);
        rkm = rd_kafka_consumer_poll(c->rk, POLL_TIMEOUT_MS);
        if (rkm != NULL) {
            handle_message(c, rkm);
            rd_kafka_message_destroy(rkm);
        }
        store_offsets(c);
        atomic_store(&c->last_poll_ms, dd_now_ms());
        dd_metrics_gauge_set(DD_G_QUEUE_DEPTH, (int64_t)dd_queue_depth(c->jq));
        dd_metrics_gauge_set(DD_G_INFLIGHT,
                             (int64_t)dd_offsets_pending_total(c->ot));
    }
    return NULL;
}

dd_consumer_t *dd_consumer_new(const dd_config_t *cfg, dd_queue_t *jq,
                               dd_offsets_t *ot, char *errstr,
                               size_t errstr_size) {
    char stats_ms[32];
    dd_kafka_kv_t defaults[] = {
        {"enable.auto.commit", "true"},
        {"auto.commit.interval.ms", "1000"},
        {"auto.offset.reset", "earliest"},
        {"queued.max.messages.kbytes", "8192"},
        {"queued.min.messages", "1000"},
        {"statistics.interval.ms", stats_ms},
    };
    dd_kafka_kv_t forced[] = {
        /* Only the tracker decides what may be committed. */
        {"enable.auto.offset.store", "false"},
        {"group.id", cfg->group},
        {"group.instance.id", cfg->instance_id},
    };
    dd_consumer_t *c = dd_xcalloc(1, sizeof(*c));
    rd_kafka_conf_t *conf;
    char msg[512];

    c->cfg = cfg;
    c->jq = jq;
    c->ot = ot;
    snprintf(stats_ms, sizeof(stats_ms), "%lld",
             (long long)cfg->stats_interval_ms);
    conf = dd_kafka_conf_new(cfg, DD_KAFKA_TARGET_CONSUMER, defaults,
                             sizeof(defaults) / sizeof(defaults[0]), forced,
                             sizeof(forced) / sizeof(forced[0]) -
                                 (cfg->instance_id[0] ? 0 : 1),
                             errstr, errstr_size);
    if (conf == NULL)
        goto err;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, offset_commit_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    rd_kafka_conf_set_opaque(conf, c);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, msg, sizeof(msg));
    if (c->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        dd_set_error(errstr, errstr_size, "kafka consumer: %s", msg);
        goto err;
    }
    rd_kafka_poll_set_consumer(c->rk);
    dd_metrics_set_lag_topic(cfg->topic);
    return c;
err:
    dd_free(c);
    return NULL;
}

int dd_consumer_start(dd_consumer_t *c, char *errstr, size_t errstr_size) {
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;

    rd_kafka_topic_partition_list_add(sub, c->cfg->topic,
                                      RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(c->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err) {
        dd_set_error(errstr, errstr_size, "subscribe to %s: %s", c->cfg->topic,
                     rd_kafka_err2str(err));
        return DD_ERR;
    }
    atomic_store(&c->last_poll_ms, dd_now_ms());
    if (pthread_create(&c->thread, NULL, poll_main, c) != 0) {
        dd_set_error(errstr, errstr_size, "cannot start dd-poll thread");
        return DD_ERR;
    }
    c->thread_started = 1;
    return DD_OK;
}

void dd_consumer_stop(dd_consumer_t *c) {
    if (c == NULL || !c->thread_started)
        return;
    atomic_store(&c->stop, 1);
    pthread_join(c->thread, NULL);
    c->thread_started = 0;
    while (c->held_head) {
        held_t *h = c->held_head;
        c->held_head = h->next;
        dd_job_destroy(h->job);
        dd_free(h);
    }
    c->held_tail = NULL;
    c->held_cnt = 0;
}

void dd_consumer_destroy(dd_consumer_t *c) {
    rd_kafka_resp_err_t err;

    if (c == NULL)
        return;
    dd_consumer_stop(c);
    if (c->rk != NULL) {
        store_offsets(c);
        err = rd_kafka_commit(c->rk, NULL, 0);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            DD_LOG(DD_LOG_WARN, "consumer", "final_commit_failed",
                   "final commit failed: %s", rd_kafka_err2str(err));
        /* Runs the final revoke on this thread: nothing is in flight any
         * more, so it commits the same watermarks and leaves the group. */
        err = rd_kafka_consumer_close(c->rk);
        if (err)
            DD_LOG(DD_LOG_WARN, "consumer", "close_failed",
                   "consumer close: %s", rd_kafka_err2str(err));
        rd_kafka_destroy(c->rk);
    }
    dd_free(c->ps);
    dd_free(c);
}
