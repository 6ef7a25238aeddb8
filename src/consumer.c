/* SPDX-License-Identifier: MIT */
/*
 * consumer: the live poll loop: messages into jobs (held in order while
 * the queue is full), offset storing, statistics, and the consumer's
 * lifecycle. Pausing partitions (backpressure, windows) is in
 * consumer_pause.c, assign, revoke and rewind in consumer_rebalance.c,
 * replay mode in consumer_replay.c.
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
 * Offsets: enable.auto.offset.store=false. Every loop iteration stores the
 * tracker's watermark of each assigned partition whose watermark moved
 * (the tracker lists them, so the cost follows the partitions that moved);
 * librdkafka's auto commit (every second) and every revoke commit what was
 * stored. A revoke drops the partition's queued jobs, waits up to
 * --drain-timeout for its in-flight ones, commits the done prefix
 * synchronously (unless the assignment was lost), resumes it if we paused
 * it, bumps its epoch (late completions are ignored) and unassigns. Every
 * rebalance_assign and rebalance_revoke log line names its partitions.
 *
 * Rewinds and windows: an offset at or below the last one dispatched in
 * the assignment means the fetch position moved backwards (the topic was
 * deleted and re-created, an offset reset to earliest, a truncated log);
 * dd_consumer_rewind() re-bases the partition's tracking there and the
 * message is dispatched as usual. A forward jump is normal (compaction,
 * transaction markers, deleted records) and changes nothing. A partition
 * whose window (offsets tracked from its oldest unfinished one) reaches
 * --max-partition-window is paused on its own until the window drained to
 * half, so memory stays bounded behind a stuck offset.
 *
 * Replay mode (cfg->replay_from set): the poll loop reaches it through one
 * hook, handle_message() handing each message to
 * dd_consumer_replay_on_message(); dd_consumer_new() makes the one choice
 * between the modes (configuration, commits or not, the replay state) and
 * dd_consumer_start() acts on it (subscribe, or check the replay's plan).
 */
#include "consumer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "consumer_int.h"
#include "job.h"
#include "kafka_int.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define POLL_TIMEOUT_MS 100
#define STORE_CHUNK     64   /* partitions taken from the tracker at once */
#define PUSH_CHUNK      256  /* jobs per dd_queue_push_batch() */
#define POLL_TURN_MAX   1024 /* messages taken in one poll loop turn */

int dd_consumer_assigned_count(const dd_consumer_t *c) {
    return atomic_load(&((dd_consumer_t *)c)->assigned_cnt);
}

int dd_consumer_has_joined(const dd_consumer_t *c) {
    return atomic_load(&((dd_consumer_t *)c)->joined);
}

int64_t dd_consumer_last_poll_ms(const dd_consumer_t *c) {
    return atomic_load(&((dd_consumer_t *)c)->last_poll_ms);
}

pstate_t *dd_consumer_pstate(dd_consumer_t *c, int32_t p) {
    if ((size_t)p >= c->ps_cap) {
        size_t ncap = (size_t)p + 16;
        c->ps = dd_xrealloc(c->ps, ncap * sizeof(*c->ps));
        for (size_t i = c->ps_cap; i < ncap; i++)
            c->ps[i] = (pstate_t){.stored = -1};
        c->ps_cap = ncap;
    }
    return &c->ps[p];
}

/*----- Offsets -----*/

/* Store the watermark of every assigned partition that advanced since the
 * last turn: the tracker lists the partitions whose watermark moved
 * (dd_offsets_take_changed()), so a turn costs O(partitions that moved),
 * not O(assigned). After a rewind the watermark is lower than what
 * librdkafka committed, and its auto commit only ever commits a stored
 * offset above the committed one: that first lower watermark is committed
 * explicitly (asynchronously), and auto commit carries on from there. */
static void store_offsets(dd_consumer_t *c) {
    rd_kafka_topic_partition_list_t *list = NULL, *lower = NULL;
    dd_offsets_change_t moved[STORE_CHUNK];
    size_t n;

    if (!c->commits)
        return; /* a replay never commits */
    do {
        n = dd_offsets_take_changed(c->ot, moved, STORE_CHUNK);
        for (size_t i = 0; i < n; i++) {
            int32_t p = moved[i].partition;
            int64_t w = moved[i].committable;
            if ((size_t)p >= c->ps_cap || !c->ps[p].assigned ||
                w <= c->ps[p].stored)
                continue;
            if (list == NULL)
                list = rd_kafka_topic_partition_list_new(8);
            rd_kafka_topic_partition_list_add(list, c->cfg->topic, p)->offset =
                w;
            c->ps[p].stored = w;
            if (c->ps[p].rewound) {
                if (lower == NULL)
                    lower = rd_kafka_topic_partition_list_new(1);
                rd_kafka_topic_partition_list_add(lower, c->cfg->topic, p)
                    ->offset = w;
                c->ps[p].rewound = 0;
            }
        }
    } while (n == STORE_CHUNK);
    if (list == NULL)
        return;
    if (rd_kafka_offsets_store(c->rk, list) != RD_KAFKA_RESP_ERR_NO_ERROR)
        DD_LOG(DD_LOG_WARN, "consumer", "offsets_store_failed",
               "offsets_store failed for %d partition(s)", list->cnt);
    rd_kafka_topic_partition_list_destroy(list);
    if (lower != NULL) {
        rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, lower, 1);
        if (err)
            DD_LOG(DD_LOG_WARN, "consumer", "rewind_commit_failed",
                   "commit of a rewound partition's offset failed: %s",
                   rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(lower);
    }
}

static void offset_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets,
                             void *opaque) {
    dd_consumer_t *c = opaque;

    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;                          /* nothing to commit */
    dd_kafka_commit_result(err);         /* /readyz: commits keep failing */
    if (err == RD_KAFKA_RESP_ERR__FATAL) /* e.g. fenced during shutdown */
        dd_kafka_check_fatal(rk, "consumer");
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

/*----- Overflow -----*/

static void hold(dd_consumer_t *c, dd_job_t *job) {
    held_t *h = dd_xmalloc(sizeof(*h));
    c->held_bytes += dd_consumer_job_bytes(job);
    h->job = job;
    h->next = NULL;
    if (c->held_tail)
        c->held_tail->next = h;
    else
        c->held_head = h;
    c->held_tail = h;
    c->held_cnt++;
}

/* Push the held jobs in order, as many as the queue has room for, a chunk
 * per dd_queue_push_batch() (one lock, at most one wake-up each). When the
 * queue is full, wait up to wait_ms (0: never) for room, once: the loop
 * then goes back to polling as soon as the overflow is below its bound.
 * A chunk is no larger than the room the queue had a moment ago (only this
 * thread pushes, so the room can only have grown): walking a full chunk of
 * the held list for a queue with room for a few jobs was a measured cost of
 * the poll thread. */
static void push_held(dd_consumer_t *c, int wait_ms) {
    void *jobs[PUSH_CHUNK];
    size_t bytes[PUSH_CHUNK];

    while (c->held_head) {
        size_t k = 0, m;
        size_t room = dd_queue_capacity(c->jq) - dd_queue_depth(c->jq);
        size_t want = room < PUSH_CHUNK ? room : PUSH_CHUNK;

        if (want == 0) {
            if (wait_ms <= 0)
                break; /* full, and no waiting asked for */
            want = 1;  /* wait for room for one, then take what fits */
        }
        /* Read the sizes first: once pushed, a job belongs to the queue and
         * a worker may finish and destroy it at any moment. */
        for (held_t *h = c->held_head; h != NULL && k < want;
             h = h->next, k++) {
            jobs[k] = h->job;
            bytes[k] = dd_consumer_job_bytes(h->job);
        }
        m = dd_queue_push_batch(c->jq, jobs, k, wait_ms);
        if (m > k)
            m = k; /* never: push_batch takes at most k */
        wait_ms = 0;
        for (size_t i = 0; i < m && c->held_head != NULL; i++) {
            held_t *h = c->held_head;
            c->held_head = h->next;
            c->held_bytes -= bytes[i];
            dd_free(h);
        }
        c->held_cnt -= m;
        if (c->held_head == NULL)
            c->held_tail = NULL;
        if (m < k)
            break; /* full */
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

/*----- Log lines -----*/

char *dd_consumer_format_parts(const int32_t *ids, size_t n, char *buf,
                               size_t size) {
    size_t len = 0;

    if (size == 0)
        return buf;
    buf[0] = '\0';
    if (n == 0) {
        dd_strlcpy(buf, "-", size);
        return buf;
    }
    for (size_t i = 0; i < n; i++) {
        char one[16];
        size_t k = (size_t)snprintf(one, sizeof(one), "%s%d", i > 0 ? "," : "",
                                    (int)ids[i]);
        /* Keep room for ",..." unless this is the last id. */
        if (len + k + (i + 1 < n ? 4 : 0) + 1 > size) {
            dd_strlcpy(buf + len, i > 0 ? ",..." : "...", size - len);
            break;
        }
        memcpy(buf + len, one, k + 1);
        len += k;
    }
    return buf;
}

/*----- Poll loop -----*/

int dd_consumer_dispatch(dd_consumer_t *c, rd_kafka_message_t *rkm) {
    uint32_t epoch;
    dd_job_t *job;
    int rc;

    if (rkm->err) {
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            return 0;
        if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
            /* Fenced, for instance: the main queue is forwarded here, so a
             * fatal error arrives as a message, not through error_cb. */
            dd_kafka_fatal(c->rk, "consumer");
            return 0;
        }
        DD_LOG(rkm->err == RD_KAFKA_RESP_ERR__MAX_POLL_EXCEEDED ? DD_LOG_ERROR
                                                                : DD_LOG_WARN,
               "consumer", "consume_error", "%s", rd_kafka_message_errstr(rkm));
        return 0;
    }
    if ((size_t)rkm->partition >= c->ps_cap ||
        !c->ps[rkm->partition].assigned) {
        /* A message of a partition no longer ours: the owner gets it. */
        DD_LOG_TPO(DD_LOG_DEBUG, "consumer", "message_ignored", c->cfg->topic,
                   rkm->partition, rkm->offset,
                   "message of a partition not assigned to this member "
                   "ignored");
        return 0;
    }
    rc = dd_offsets_dispatch(c->ot, rkm->partition, rkm->offset, &epoch);
    if (rc == DD_OFFSETS_BEHIND) {
        dd_consumer_rewind(c, rkm->partition, rkm->offset);
        rc = dd_offsets_dispatch(c->ot, rkm->partition, rkm->offset, &epoch);
    }
    if (rc != DD_OK) {
        DD_LOG_TPO(DD_LOG_WARN, "consumer", "message_untracked", c->cfg->topic,
                   rkm->partition, rkm->offset,
                   "message the offset tracker refused ignored");
        return 0;
    }
    job = dd_job_new(rkm, epoch);
    hold(c, job); /* the poll loop pushes it, with the others of its turn */
    dd_consumer_window_check(c, rkm->partition);
    return 1;
}

/* The poll loop's only replay hook: a replay filters each message by its
 * range, and finishes partitions, around dd_consumer_dispatch(). */
static void handle_message(dd_consumer_t *c, rd_kafka_message_t *rkm) {
    if (c->replay != NULL)
        dd_consumer_replay_on_message(c, rkm);
    else
        dd_consumer_dispatch(c, rkm);
}

/* Take what librdkafka has, up to POLL_TURN_MAX messages, waiting up to
 * timeout_ms for the first one only, while the overflow is below its
 * bound. Every batch_size messages the overflow goes to the queue, so the
 * workers start on a long turn early, and are woken once per push, not
 * once per message. */
static void poll_messages(dd_consumer_t *c, int timeout_ms) {
    size_t batch = c->cfg->batch_size > 0 ? (size_t)c->cfg->batch_size : 1;
    rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, timeout_ms);

    for (size_t n = 1; rkm != NULL; n++) {
        handle_message(c, rkm);
        rd_kafka_message_destroy(rkm);
        if (n % batch == 0)
            push_held(c, 0);
        if (n >= POLL_TURN_MAX || atomic_load(&c->stop) ||
            dd_consumer_overflow_full(c))
            break;
        rkm = rd_kafka_consumer_poll(c->rk, 0);
    }
}

static void *poll_main(void *arg) {
    dd_consumer_t *c = arg;

    pthread_setname_np(pthread_self(), "dd-poll");
    while (!atomic_load(&c->stop)) {
        /* Overflow at its bound, or paused with an overflow: nothing is
         * taken from librdkafka, so the time a poll would wait goes to
         * feeding the queue as the workers free room (the loop still turns
         * at least every POLL_TIMEOUT_MS). librdkafka keeps what it
         * fetched meanwhile, up to its own bounds (queued.min.messages,
         * queued.max.messages.kbytes); only a pause drops it. */
        int full = dd_consumer_overflow_full(c);

        if (full && c->full_since_ms < 0)
            c->full_since_ms = dd_now_ms();
        push_held(c, c->held_cnt > 0 && (full || c->backpressure)
                         ? POLL_TIMEOUT_MS
                         : 0);
        dd_consumer_backpressure(c);
        dd_consumer_window_resume_drained(c);
        /* While paused, poll for events (rebalance, errors) all the same. */
        if (c->backpressure || !dd_consumer_overflow_full(c)) {
            poll_messages(c, c->held_cnt > 0 ? 1 : POLL_TIMEOUT_MS);
            push_held(c, 0);
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
    /* Group timing (README "Operating a consumer group"): a dead member's
     * partitions wait session.timeout.ms for a new owner, so 10 s instead
     * of 45 s; a static member (--instance-id) gets 30 s so that a restart
     * keeps its partitions without a rebalance. The poll loop never blocks
     * (backpressure pauses instead), so max.poll.interval.ms only catches a
     * stuck dd-poll and bounds how long the coordinator waits for a member
     * to rejoin, which includes a revoke's drain (--drain-timeout, 10 s).
     * Prefetch (README "Tuning"): librdkafka 2.0.2 stops fetching once
     * queued.min.messages wait locally and fetches again only at its
     * broker thread's next wake-up, up to a second later; 100,000 lets the
     * 3 MiB of queued.max.messages.kbytes be the bound instead, so a
     * fetch cycle brings far more than 1,000 messages, within the RSS
     * budget (3 MiB instead of 2: +9 % drain rate on a 1,000,000-request
     * backlog, peak RSS 55 instead of 46 MiB). */
    dd_kafka_kv_t defaults[] = {
        {"enable.auto.commit", "true"},
        {"auto.commit.interval.ms", "1000"},
        {"auto.offset.reset", "earliest"},
        {"queued.max.messages.kbytes", "3072"},
        {"queued.min.messages", "100000"},
        {"statistics.interval.ms", stats_ms},
        {"session.timeout.ms", cfg->instance_id[0] ? "30000" : "10000"},
        {"heartbeat.interval.ms", "1000"},
        {"max.poll.interval.ms", "60000"},
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
    c->full_since_ms = -1;
    snprintf(stats_ms, sizeof(stats_ms), "%lld",
             (long long)cfg->stats_interval_ms);
    /* The one choice between the modes. Group mode: subscribe in
     * dd_consumer_start(), partitions from rebalance_cb, offsets stored and
     * committed. Replay: consumer_replay.c configures the client, assigns
     * the range itself (dd_consumer_replay_plan()), filters every message
     * (handle_message()), and nothing is ever stored or committed. */
    if (cfg->replay_from.kind != DD_REPLAY_NONE) {
        c->replay = dd_consumer_replay_new(
            cfg, defaults, sizeof(defaults) / sizeof(defaults[0]), &conf,
            errstr, errstr_size);
    } else {
        c->commits = 1;
        conf = dd_kafka_conf_new(cfg, DD_KAFKA_TARGET_CONSUMER, defaults,
                                 sizeof(defaults) / sizeof(defaults[0]), forced,
                                 sizeof(forced) / sizeof(forced[0]) -
                                     (cfg->instance_id[0] ? 0 : 1),
                                 errstr, errstr_size);
    }
    if (conf == NULL)
        goto err;
    rd_kafka_conf_set_rebalance_cb(conf, dd_consumer_rebalance_cb);
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
    dd_consumer_replay_destroy(c->replay);
    dd_free(c);
    return NULL;
}

int dd_consumer_start(dd_consumer_t *c, char *errstr, size_t errstr_size) {
    rd_kafka_topic_partition_list_t *sub;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (c->replay != NULL) {
        /* A replay was assigned by dd_consumer_replay_plan(). */
        if (dd_consumer_replay_ready(c->replay, errstr, errstr_size) != DD_OK)
            return DD_ERR;
    } else {
        sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, c->cfg->topic,
                                          RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(c->rk, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (err) {
            dd_set_error(errstr, errstr_size, "subscribe to %s: %s",
                         c->cfg->topic, rd_kafka_err2str(err));
            return DD_ERR;
        }
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
    /* The held jobs were never started. Forget them in the tracker too (the
     * first held job of a partition starts the suffix that is held, the
     * queue being FIFO), so the final revoke does not wait for them; their
     * offsets stay uncommitted and the next owner consumes them again. */
    if (c->held_cnt > 0)
        DD_LOG(DD_LOG_INFO, "consumer", "held_dropped",
               "dropped %zu held job(s) that never started; their offsets "
               "stay uncommitted",
               c->held_cnt);
    while (c->held_head) {
        held_t *h = c->held_head;
        pstate_t *s = dd_consumer_pstate(c, h->job->partition);
        if (s->assigned && !s->discarded) {
            dd_offsets_discard_from(c->ot, h->job->partition, h->job->offset);
            s->discarded = 1;
        }
        c->held_head = h->next;
        dd_job_destroy(h->job);
        dd_free(h);
    }
    c->held_tail = NULL;
    c->held_cnt = 0;
    c->held_bytes = 0;
}

void dd_consumer_destroy(dd_consumer_t *c) {
    rd_kafka_resp_err_t err;

    if (c == NULL)
        return;
    dd_consumer_stop(c);
    if (c->rk != NULL && c->commits) {
        store_offsets(c);
        err = rd_kafka_commit(c->rk, NULL, 0);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            DD_LOG(DD_LOG_WARN, "consumer", "final_commit_failed",
                   "final commit failed: %s", rd_kafka_err2str(err));
    }
    if (c->rk != NULL) {
        /* Runs the final revoke on this thread: nothing is in flight any
         * more, so it commits the same watermarks and leaves the group. */
        err = rd_kafka_consumer_close(c->rk);
        if (err)
            DD_LOG(DD_LOG_WARN, "consumer", "close_failed",
                   "consumer close: %s", rd_kafka_err2str(err));
        rd_kafka_destroy(c->rk);
    }
    dd_consumer_replay_destroy(c->replay);
    dd_free(c->ps);
    dd_free(c);
}
