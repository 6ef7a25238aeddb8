/* SPDX-License-Identifier: MIT */
/*
 * consumer_rebalance: what happens to a partition when the group takes it
 * away or hands it over. An assign registers the partitions in the tracker
 * (new epoch) and in dd-poll's partition state. A revoke drops the
 * partitions' queued and held jobs (they are the newest of their
 * partitions, so the tracker discards a suffix and the next owner consumes
 * them again), waits up to --drain-timeout for their in-flight jobs,
 * commits the done prefix synchronously (not when the assignment was
 * lost), resumes what we paused, bumps the epoch so late completions are
 * ignored, and unassigns. Both log their partitions (rebalance_assign,
 * rebalance_revoke).
 *
 * DESIGN: everything here runs on dd-poll, inside rd_kafka_consumer_poll,
 * or on the thread that closes the consumer once dd-poll was joined (the
 * final revoke); see src/consumer.c. It takes only the job queue's and
 * the tracker's locks, one at a time, through their APIs.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "consumer_int.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

static int is_cooperative(rd_kafka_t *rk) {
    const char *proto = rd_kafka_rebalance_protocol(rk);
    return proto != NULL && strcmp(proto, "COOPERATIVE") == 0;
}

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

/* Drop the not-yet-started jobs (queued and held) that match: drop()
 * destroys each. */
static void drop_jobs(dd_consumer_t *c, int (*match)(void *, void *),
                      void (*drop)(void *, void *), void *arg) {
    held_t **pp = &c->held_head;

    dd_queue_remove_if(c->jq, match, arg, drop);
    c->held_tail = NULL;
    while (*pp) {
        held_t *h = *pp;
        if (match(h->job, arg)) {
            *pp = h->next;
            c->held_bytes -= dd_consumer_job_bytes(h->job);
            drop(h->job, arg);
            dd_free(h);
            c->held_cnt--;
        } else {
            c->held_tail = h;
            pp = &h->next;
        }
    }
}

/* Drop the not-yet-started jobs of revoked partitions: queued and held.
 * They are the newest of their partitions (FIFO), so the tracker discards a
 * suffix, and the new owner consumes them again from the committed offset. */
static void drop_queued(dd_consumer_t *c, revoke_ctx_t *rc) {
    drop_jobs(c, job_is_revoked, drop_revoked_job, rc);
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
    char text[DD_CONSUMER_PARTS_TEXT_MAX];

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
    dd_consumer_set_paused(c, resume, 0);
    for (size_t i = 0; i < n; i++) {
        dd_consumer_set_window_paused(c, ids[i], 0);
        c->ps[ids[i]].assigned = 0;
        c->ps[ids[i]].stored = -1;
    }
    atomic_fetch_sub(&c->assigned_cnt, (int)n);
    dd_metrics_gauge_set(DD_G_PARTITIONS_ASSIGNED,
                         atomic_load(&c->assigned_cnt));
    DD_LOG(DD_LOG_INFO, "consumer", "rebalance_revoke",
           "revoked %zu partition(s): %s%s", n,
           dd_consumer_format_parts(ids, n, text, sizeof(text)),
           lost ? " (assignment lost)" : "");
    rd_kafka_topic_partition_list_destroy(commit);
    rd_kafka_topic_partition_list_destroy(resume);
    dd_free((void *)rc.revoked);
    dd_free(rc.min_dropped);
    dd_free(ids);
}

static void assign(dd_consumer_t *c, rd_kafka_topic_partition_list_t *parts) {
    int32_t *ids = dd_xcalloc((size_t)parts->cnt + 1, sizeof(*ids));
    char text[DD_CONSUMER_PARTS_TEXT_MAX];

    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        uint32_t epoch;
        dd_offsets_assign(c->ot, p, &epoch);
        dd_consumer_set_window_paused(c, p, 0);
        dd_consumer_pstate(c, p)->assigned = 1;
        c->ps[p].stored = -1;
        c->ps[p].paused = 0;
        c->ps[p].rewound = 0;
        ids[i] = p;
    }
    atomic_fetch_add(&c->assigned_cnt, parts->cnt);
    dd_metrics_gauge_set(DD_G_PARTITIONS_ASSIGNED,
                         atomic_load(&c->assigned_cnt));
    DD_LOG(
        DD_LOG_INFO, "consumer", "rebalance_assign",
        "assigned %d partition(s): %s; %d in total", parts->cnt,
        dd_consumer_format_parts(ids, (size_t)parts->cnt, text, sizeof(text)),
        atomic_load(&c->assigned_cnt));
    dd_free(ids);
}

void dd_consumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t *parts,
                              void *opaque) {
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
                dd_consumer_pause_all(c, 1);
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

/*----- Rewind within an assignment -----*/

typedef struct rewind_ctx {
    int32_t partition;
    int64_t from; /* the new fetch position */
    size_t dropped;
} rewind_ctx_t;

static int job_is_rewound(void *item, void *arg) {
    const dd_job_t *job = item;
    const rewind_ctx_t *rc = arg;
    return job->partition == rc->partition && job->offset >= rc->from;
}

static void drop_rewound_job(void *item, void *arg) {
    rewind_ctx_t *rc = arg;
    rc->dropped++;
    dd_job_destroy(item);
}

void dd_consumer_rewind(dd_consumer_t *c, int32_t p, int64_t offset) {
    rewind_ctx_t rc = {p, offset, 0};
    int64_t last = -1, wm = -1;

    /* The queued jobs at or above the new position are read again; the
     * ones below it stay and still complete under their epoch. */
    drop_jobs(c, job_is_rewound, drop_rewound_job, &rc);
    dd_offsets_rebase(c->ot, p, offset, &last, &wm);
    /* The new watermark may be lower than what was stored and committed:
     * store_offsets() stores and commits it at the end of this loop
     * iteration. */
    dd_consumer_pstate(c, p)->stored = -1;
    c->ps[p].rewound = 1;
    dd_metrics_inc(DD_C_PARTITION_REWINDS);
    DD_LOG_TPO(
        DD_LOG_WARN, "consumer", "partition_rewound", c->cfg->topic, p, offset,
        "fetch position moved backwards from %lld to %lld (topic "
        "re-created, offset reset or log truncated): tracking "
        "re-based, %zu queued job(s) at or above it dropped, "
        "committable offset now %lld",
        (long long)(last + 1), (long long)offset, rc.dropped, (long long)wm);
}
