/* SPDX-License-Identifier: MIT */
/*
 * consumer_pause: which input partitions dd-poll keeps paused, and why.
 * Backpressure pauses every assigned partition once the overflow behind a
 * full job queue stayed at its bound (the workers took nothing) and
 * resumes them while half of it is still held; a partition's window (the
 * offsets the tracker keeps from its oldest unfinished one on) pauses that
 * partition alone at --max-partition-window and resumes it at half. A
 * partition stays paused while any reason holds (or for good once a replay
 * finished it), and only what we paused is ever resumed (librdkafka 2.0.2
 * rewinds a partition resumed without having been paused). The pause bits
 * read by the HTTP side are kept here.
 *
 * DESIGN: everything runs on dd-poll (or the thread closing the consumer
 * after dd-poll was joined), except dd_consumer_is_paused() and
 * dd_consumer_is_window_paused(), which read atomics on any thread. It
 * takes the job queue's and the tracker's locks one at a time, through
 * their APIs.
 */
#include <stdatomic.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "consumer_int.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/* Overflow dd-poll keeps, in order, behind the job queue: at most this many
 * jobs and this many bytes (dd_consumer_job_bytes(): the job struct, its
 * list node, key and value), whatever the queue capacity. At the bound it
 * takes no more messages; see dd_consumer_backpressure(). */
#define HOLD_MAX_JOBS  4096
#define HOLD_MAX_BYTES ((size_t)2 << 20)

/*----- Pause state -----*/

void dd_consumer_set_paused(dd_consumer_t *c,
                            rd_kafka_topic_partition_list_t *list, int pause) {
    if (list->cnt == 0)
        return;
    if (pause)
        rd_kafka_pause_partitions(c->rk, list);
    else
        rd_kafka_resume_partitions(c->rk, list);
    for (int i = 0; i < list->cnt; i++) {
        if (list->elems[i].err)
            continue;
        dd_consumer_pstate(c, list->elems[i].partition)->paused =
            (uint8_t)pause;
        if (list->elems[i].partition < DD_CONSUMER_PAUSED_MAX) {
            int32_t p = list->elems[i].partition;
            uint64_t bit = UINT64_C(1) << (p % 64);
            if (pause)
                atomic_fetch_or(&c->paused_bits[p / 64], bit);
            else
                atomic_fetch_and(&c->paused_bits[p / 64], ~bit);
        }
        dd_metrics_gauge_add(DD_G_PARTITIONS_PAUSED, pause ? 1 : -1);
    }
}

/* Pause every assigned partition not paused yet (or resume every one we
 * paused): resuming only what we paused avoids librdkafka 2.0.2's rewind
 * when resuming a partition that was not paused. A finished replay
 * partition, or one paused by its window, stays paused. Returns the number
 * of partitions changed. */
int dd_consumer_pause_all(dd_consumer_t *c, int pause) {
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new(8);
    int n;

    for (size_t p = 0; p < c->ps_cap; p++)
        if (c->ps[p].assigned && !c->ps[p].finished &&
            !(c->ps[p].window_paused && !pause) && c->ps[p].paused != pause)
            rd_kafka_topic_partition_list_add(list, c->cfg->topic, (int32_t)p);
    dd_consumer_set_paused(c, list, pause);
    n = list->cnt;
    rd_kafka_topic_partition_list_destroy(list);
    return n;
}

/*----- Window of a partition -----*/

int dd_consumer_window_action(size_t window, size_t max, int paused) {
    if (max == 0)
        return 0;
    if (!paused && window >= max)
        return 1;
    if (paused && window <= max / 2)
        return -1;
    return 0;
}

void dd_consumer_set_window_paused(dd_consumer_t *c, int32_t p, int on) {
    pstate_t *s = dd_consumer_pstate(c, p);

    if (s->window_paused == (uint8_t)on)
        return;
    s->window_paused = (uint8_t)on;
    if (p < DD_CONSUMER_PAUSED_MAX) {
        uint64_t bit = UINT64_C(1) << (p % 64);
        if (on)
            atomic_fetch_or(&c->window_bits[p / 64], bit);
        else
            atomic_fetch_and(&c->window_bits[p / 64], ~bit);
    }
    c->window_paused_cnt += on ? 1 : -1;
    dd_metrics_gauge_add(DD_G_PARTITIONS_WINDOW_PAUSED, on ? 1 : -1);
}

/* Pause (or resume) partition p in librdkafka, as paused by us. */
static void pause_one(dd_consumer_t *c, int32_t p, int pause) {
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new(1);

    rd_kafka_topic_partition_list_add(list, c->cfg->topic, p);
    dd_consumer_set_paused(c, list, pause);
    rd_kafka_topic_partition_list_destroy(list);
}

/* After a dispatch: pause p once its window reached the bound (a
 * partition paused by backpressure already only gets the flag). */
void dd_consumer_window_check(dd_consumer_t *c, int32_t p) {
    size_t max = (size_t)c->cfg->max_partition_window;
    size_t w;

    if (c->ps[p].window_paused)
        return;
    w = dd_offsets_window(c->ot, p);
    if (dd_consumer_window_action(w, max, 0) <= 0)
        return;
    dd_consumer_set_window_paused(c, p, 1);
    if (!c->ps[p].paused)
        pause_one(c, p, 1);
    DD_LOG_TP(DD_LOG_WARN, "consumer", "partition_window_full", c->cfg->topic,
              p,
              "%zu offsets tracked behind the oldest unfinished one "
              "(--max-partition-window %zu): partition paused until half "
              "of them are done",
              w, max);
}

/* Resume the partitions paused by their window once it drained to half,
 * unless backpressure (or a finished replay) keeps them paused. */
void dd_consumer_window_resume_drained(dd_consumer_t *c) {
    size_t max = (size_t)c->cfg->max_partition_window;

    if (c->window_paused_cnt == 0)
        return;
    for (size_t p = 0; p < c->ps_cap; p++) {
        size_t w;
        if (!c->ps[p].assigned || !c->ps[p].window_paused)
            continue;
        w = dd_offsets_window(c->ot, (int32_t)p);
        if (dd_consumer_window_action(w, max, 1) >= 0)
            continue;
        dd_consumer_set_window_paused(c, (int32_t)p, 0);
        if (c->ps[p].paused && !c->backpressure && !c->ps[p].finished)
            pause_one(c, (int32_t)p, 0);
        DD_LOG_TP(DD_LOG_INFO, "consumer", "partition_window_drained",
                  c->cfg->topic, (int32_t)p,
                  "window down to %zu offsets: partition resumed", w);
    }
}

int dd_consumer_overflow_full(const dd_consumer_t *c) {
    return c->held_cnt >= HOLD_MAX_JOBS || c->held_bytes >= HOLD_MAX_BYTES;
}

/* Pause once the overflow stayed at its bound for DD_CONSUMER_STALL_MS;
 * resume while half of it is still held. Why not pause as soon as the
 * queue is full, and resume only once it drained: librdkafka 2.0.2 drops
 * what it prefetched for a paused partition, and after a resume the broker
 * thread only fetches again at its next wake-up, up to a second later (it
 * is not woken by a resume). Pausing at the first full queue starved the
 * workers for most of that second on every cycle: about 1,100 requests/s
 * with the default queue of 1024 and 150/s with a queue of 16, measured;
 * pausing when 16,384 jobs were held and resuming once they were gone
 * still left the workers idle 2.3 s of a 10.2 s drain. So while the
 * workers take jobs, the overflow at its bound only stops the poll loop
 * from taking messages (librdkafka keeps what it fetched, within its own
 * bounds, and nothing is fetched twice); the partitions are paused only
 * when the workers took nothing for DD_CONSUMER_STALL_MS (Redis down or
 * slow, say), so that the loop polls again (rebalances,
 * max.poll.interval.ms), and resumed while half the overflow is left to
 * work on during the refetch. Memory stays bounded: the queue, HOLD_MAX_*,
 * and librdkafka's own prefetch limits (queued.max.messages.kbytes). */
void dd_consumer_backpressure(dd_consumer_t *c) {
    int64_t now = dd_now_ms();

    /* The poll loop notes when it found the overflow at its bound. */
    if (!dd_consumer_overflow_full(c))
        c->full_since_ms = -1;
    else if (c->full_since_ms < 0)
        c->full_since_ms = now;
    if (!c->backpressure && c->full_since_ms >= 0 &&
        now - c->full_since_ms >= DD_CONSUMER_STALL_MS) {
        int n;
        c->backpressure = 1;
        n = dd_consumer_pause_all(c, 1);
        DD_LOG(DD_LOG_DEBUG, "consumer", "backpressure_on",
               "job queue full (%zu) and %zu job(s) (%zu bytes) held for "
               "%lld ms: %d partition(s) paused",
               dd_queue_depth(c->jq), c->held_cnt, c->held_bytes,
               (long long)(now - c->full_since_ms), n);
    } else if (c->backpressure && c->held_cnt <= HOLD_MAX_JOBS / 2 &&
               c->held_bytes <= HOLD_MAX_BYTES / 2) {
        int n;
        c->backpressure = 0;
        n = dd_consumer_pause_all(c, 0);
        DD_LOG(DD_LOG_DEBUG, "consumer", "backpressure_off",
               "%zu job(s) (%zu bytes) still held, job queue at %zu: %d "
               "partition(s) resumed",
               c->held_cnt, c->held_bytes, dd_queue_depth(c->jq), n);
    }
}

int dd_consumer_is_paused(const dd_consumer_t *c, int32_t partition) {
    dd_consumer_t *mc = (dd_consumer_t *)c;

    if (partition < 0 || partition >= DD_CONSUMER_PAUSED_MAX)
        return -1;
    return (atomic_load(&mc->paused_bits[partition / 64]) >> (partition % 64)) &
           1;
}

int dd_consumer_is_window_paused(const dd_consumer_t *c, int32_t partition) {
    dd_consumer_t *mc = (dd_consumer_t *)c;

    if (partition < 0 || partition >= DD_CONSUMER_PAUSED_MAX)
        return -1;
    return (atomic_load(&mc->window_bits[partition / 64]) >> (partition % 64)) &
           1;
}
