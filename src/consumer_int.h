/* SPDX-License-Identifier: MIT */
/*
 * consumer, private: what consumer.c (the live poll loop),
 * consumer_pause.c (backpressure and windows), consumer_rebalance.c
 * (assign, revoke, rewind) and consumer_replay.c (replay mode) share: the
 * consumer struct, the per-partition state of dd-poll, the held jobs, the
 * poll-loop helpers the other two call, the rebalance callback and the replay
 * hooks the poll loop calls. Not for other modules.
 *
 * DESIGN: everything here runs on dd-poll, except dd_consumer_new() and
 * dd_consumer_replay_plan() (main thread, before dd-poll exists) and the
 * atomics read by the HTTP side; see src/consumer.c.
 */
#ifndef DD_CONSUMER_INT_H
#define DD_CONSUMER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "consumer.h"
#include "job.h"
#include "kafka_int.h"
#include "offsets.h"
#include "queue.h"

/** A dispatched job not in the queue yet (the overflow), in a FIFO list. */
typedef struct held {
    dd_job_t *job;
    struct held *next;
} held_t;

/** Replay mode's state (body in consumer_replay.c). */
typedef struct dd_consumer_replay dd_consumer_replay_t;

/** Per-partition bookkeeping of dd-poll (indexes are partition ids). */
typedef struct pstate {
    uint8_t assigned;
    uint8_t paused;        /* paused by us (backpressure), not by librdkafka */
    uint8_t finished;      /* paused for good (a replay partition at its end);
                            * backpressure leaves it paused */
    uint8_t discarded;     /* dd_consumer_stop() dropped its held jobs */
    uint8_t window_paused; /* its window reached --max-partition-window:
                            * kept paused until it drained to half */
    uint8_t rewound;       /* dd_consumer_rewind() lowered the watermark: the
                            * next store_offsets commits it explicitly */
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
    /* Partitions < DD_CONSUMER_PAUSED_MAX paused by us, one bit each, for
     * dd_consumer_is_paused() on any thread; written in
     * dd_consumer_set_paused(). */
    _Atomic uint64_t paused_bits[DD_CONSUMER_PAUSED_MAX / 64];
    /* The same for the partitions paused because their window is full;
     * written in dd_consumer_set_window_paused(). */
    _Atomic uint64_t window_bits[DD_CONSUMER_PAUSED_MAX / 64];
    /* 1: store and commit offsets (group mode); 0: never (a replay).
     * Fixed by dd_consumer_new(). */
    int commits;

    /* dd-poll only (then the closing thread). */
    pstate_t *ps;
    size_t ps_cap;
    held_t *held_head, *held_tail; /* jobs not in the queue yet */
    size_t held_cnt;
    size_t held_bytes;     /* what the held jobs cost (job bytes, below) */
    int64_t full_since_ms; /* dd_now_ms() the overflow reached its bound;
                            * -1 while below it */
    int backpressure;      /* 1 while we keep the assignment paused */
    int window_paused_cnt; /* partitions with pstate.window_paused set */

    /* Replay mode (cfg->replay_from set), else NULL; consumer_replay.c. */
    dd_consumer_replay_t *replay;
};

/*----- Poll loop helpers (consumer.c) -----*/

/**
 * @brief The state of partition p, grown (zeroed, stored -1) as needed.
 * @returns borrowed, valid until the next call
 * @locality dd-poll (or the main thread before dd-poll exists)
 */
pstate_t *dd_consumer_pstate(dd_consumer_t *c, int32_t p);

/**
 * @brief rd_kafka_pause_partitions() (pause) or resume the partitions of
 *        list, and record them as paused by us.
 * @param list borrowed
 * @locality dd-poll
 */
void dd_consumer_set_paused(dd_consumer_t *c,
                            rd_kafka_topic_partition_list_t *list, int pause);

/**
 * @brief Turn a message of an assigned partition into a job: register it
 *        in the tracker and append it to the overflow, which the poll loop
 *        pushes into the queue in batches. Errors are logged (partition EOF
 *        silently ignored).
 * @param rkm borrowed; the job copies what it needs
 * @returns 1 when a job was dispatched and tracked, 0 when not (an error,
 *          or a partition no longer ours)
 * @locality dd-poll
 */
int dd_consumer_dispatch(dd_consumer_t *c, rd_kafka_message_t *rkm);

/**
 * @brief "0,3,6" from n partition ids into buf (truncated with "..." when
 *        it does not fit); "-" for none. @returns buf
 * @locality any thread (pure)
 */
char *dd_consumer_format_parts(const int32_t *ids, size_t n, char *buf,
                               size_t size);

/**
 * @brief Pause every assigned partition not paused yet (pause = 1), or
 *        resume every one we paused (0). A finished replay partition stays
 *        paused.
 * @returns the number of partitions changed
 * @locality dd-poll
 */
int dd_consumer_pause_all(dd_consumer_t *c, int pause);

/*----- Pausing partitions (consumer_pause.c) -----*/

/**
 * @brief 1 when the overflow reached its bound (jobs or bytes): the poll
 *        loop takes no message from librdkafka until the queue took some.
 * @locality dd-poll
 */
int dd_consumer_overflow_full(const dd_consumer_t *c);

/**
 * @brief Backpressure, once per poll loop iteration: pause every assigned
 *        partition once the overflow stayed at its bound for
 *        DD_CONSUMER_STALL_MS (the workers took nothing meanwhile); resume
 *        them while half of the bound is still held, so the workers have
 *        work while librdkafka fetches again (not those a window or a
 *        finished replay keeps paused).
 * @locality dd-poll
 */
void dd_consumer_backpressure(dd_consumer_t *c);

/**
 * @brief After a dispatch on partition p: pause p alone once its window
 *        reached --max-partition-window (warn log partition_window_full).
 * @locality dd-poll
 */
void dd_consumer_window_check(dd_consumer_t *c, int32_t p);

/**
 * @brief Once per poll loop iteration: resume the partitions paused by
 *        their window once it drained to half, unless backpressure or a
 *        finished replay keeps them paused (partition_window_drained).
 * @locality dd-poll
 */
void dd_consumer_window_resume_drained(dd_consumer_t *c);

/**
 * @brief What the window of a partition asks for: 1 pause it (not paused
 *        by its window, and window reached max), -1 resume it (paused by
 *        its window, and window drained to max / 2 or below), 0 nothing.
 *        max 0 means no bound.
 * @locality any thread (pure)
 */
int dd_consumer_window_action(size_t window, size_t max, int paused);

/**
 * @brief Record whether partition p is paused because of its window (the
 *        flag, the bit read by dd_consumer_is_window_paused() and the
 *        gauge); it does not pause or resume anything itself.
 * @locality dd-poll (or the closing thread)
 */
void dd_consumer_set_window_paused(dd_consumer_t *c, int32_t p, int on);

/** How long the overflow may stay at its bound before the partitions are
 *  paused (dd_consumer_backpressure()). */
#define DD_CONSUMER_STALL_MS 100

/** @brief What a held job costs, as counted in held_bytes: the job and its
 *         list node as well as its key and value. */
static inline size_t dd_consumer_job_bytes(const dd_job_t *job) {
    return sizeof(dd_job_t) + sizeof(held_t) + job->key_len + job->value_len;
}

/*----- Rebalance (consumer_rebalance.c) -----*/

/** Longest partition list in a rebalance log line. */
#define DD_CONSUMER_PARTS_TEXT_MAX 512

/**
 * @brief librdkafka's rebalance callback (eager and cooperative): assign,
 *        or revoke (drop queued jobs, drain, commit the done prefix, fence
 *        with a new epoch), then apply the assignment.
 * @param parts borrowed
 * @param opaque the dd_consumer_t
 * @locality dd-poll (inside rd_kafka_consumer_poll), or the closing thread
 *           (rd_kafka_consumer_close)
 */
void dd_consumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t *parts,
                              void *opaque);

/**
 * @brief The fetch position of assigned partition p moved backwards to
 *        offset (the message at offset is not above the last dispatched
 *        one): drop its queued and held jobs at or above offset, re-base
 *        its tracking there (dd_offsets_rebase()), have the next
 *        store_offsets store and commit the new, lower watermark, count
 *        it (partition_rewinds_total) and log partition_rewound at warn.
 *        The caller then dispatches the message.
 * @locality dd-poll
 */
void dd_consumer_rewind(dd_consumer_t *c, int32_t p, int64_t offset);

/*----- Replay hooks (consumer_replay.c) -----*/

/**
 * @brief The replay state of a new consumer (no plan yet), and in *conf its
 *        librdkafka configuration: no group membership, no commits,
 *        partition EOF events on.
 * @param defaults borrowed, ndefaults entries, as for dd_kafka_conf_new()
 * @param conf receives the owned configuration, or NULL with errstr
 * @returns owned replay state (also when *conf is NULL)
 * @locality main thread
 */
dd_consumer_replay_t *dd_consumer_replay_new(const dd_config_t *cfg,
                                             const dd_kafka_kv_t *defaults,
                                             size_t ndefaults,
                                             rd_kafka_conf_t **conf,
                                             char *errstr, size_t errstr_size);

/** @brief Free the replay state. NULL is allowed. @locality main thread */
void dd_consumer_replay_destroy(dd_consumer_replay_t *r);

/**
 * @brief DD_OK once dd_consumer_replay_plan() succeeded, else DD_ERR with
 *        errstr.
 * @locality main thread
 */
int dd_consumer_replay_ready(const dd_consumer_replay_t *r, char *errstr,
                             size_t errstr_size);

/**
 * @brief The poll loop's one replay hook: every message (and event) of a
 *        replay goes through here instead of dd_consumer_dispatch(). It
 *        skips what is out of range, dispatches the rest with
 *        dd_consumer_dispatch(), and finishes (pauses for good) a partition
 *        at its end offset, after its last message was dispatched.
 * @param rkm borrowed
 * @locality dd-poll
 */
void dd_consumer_replay_on_message(dd_consumer_t *c, rd_kafka_message_t *rkm);

#endif /* DD_CONSUMER_INT_H */
