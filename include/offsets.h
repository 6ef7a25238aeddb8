/* SPDX-License-Identifier: MIT */
/*
 * offsets: the per-partition offset tracker of one input topic. It decides
 * what may be committed: an input offset is committable only when it and
 * every offset dispatched before it in its partition are done. Offsets are
 * not dense (compaction, transaction markers), so the tracker records the
 * offsets actually dispatched, in dispatch order, and never assumes that
 * done + 1 exists.
 *
 * The watermark ("committable") is (last contiguous done offset) + 1: the
 * value to hand to rd_kafka_offsets_store() as is. Each assignment of a
 * partition has an epoch; a job carries the epoch it was dispatched under,
 * and completions carrying an older epoch are ignored.
 *
 * Within an assignment offsets only move forward; a jump forward (a
 * compacted or transactional topic, records deleted) is normal. An offset
 * at or below the last dispatched one means the fetch position moved
 * backwards (the topic was deleted and re-created, an offset reset, a log
 * truncated): dd_offsets_dispatch() says so, and dd_offsets_rebase() drops
 * the tracking from the new position on under a new epoch.
 *
 * The window of a partition is the number of entries it tracks: the
 * oldest not-done dispatched offset and every offset dispatched after it
 * (about 16 bytes each); the consumer bounds it.
 *
 * No librdkafka types: partitions are int32 ids (>= 0), offsets int64.
 */
#ifndef DD_OFFSETS_H
#define DD_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

/** Largest partition id the tracker accepts (a sanity bound on the table). */
#define DD_OFFSETS_PARTITION_MAX 1048575

/**
 * @brief Offset tracker for one input topic. Thread-safe: one internal
 *        mutex; dispatch runs on the poll thread, mark_done on the
 *        delivery-report thread, wait_idle and revoke on the poll thread.
 */
typedef struct dd_offsets dd_offsets_t;

/** @brief One partition in a dd_offsets_snapshot(). */
typedef struct dd_offsets_part_info {
    int32_t partition;
    uint32_t epoch;            /* current epoch (assign, rebase, revoke) */
    int assigned;              /* 1 while assigned */
    uint64_t dispatched_count; /* offsets dispatched since the last assign */
    uint64_t done_count;       /* offsets marked done since the last assign */
    uint64_t discarded_count;  /* offsets discarded since the last assign */
    size_t pending;            /* dispatched, not done, not discarded */
    int64_t last_dispatched;   /* highest offset still tracked or done; -1 */
    int64_t committable;       /* watermark (done prefix + 1); -1 if none */
    int64_t committed;         /* last value given to set_committed; -1 */
    size_t window;             /* tracked entries (dd_offsets_window()) */
    uint64_t rewinds;          /* dd_offsets_rebase() calls since assign */
} dd_offsets_part_info_t;

/** @brief A partition whose watermark moved, from dd_offsets_take_changed(). */
typedef struct dd_offsets_change {
    int32_t partition;
    int64_t committable; /* its watermark when taken; -1 if not assigned */
} dd_offsets_change_t;

/** dd_offsets_dispatch(): the offset is not above the last dispatched one. */
#define DD_OFFSETS_BEHIND 1

/*----- Lifecycle -----*/

/**
 * @brief Create an empty tracker (no partition assigned).
 * @param errstr (optional) borrowed buffer for the error text
 * @param errstr_size size of errstr
 * @returns owned tracker, or NULL (a pthread object could not be created)
 *          with errstr filled
 * @locality any thread
 */
dd_offsets_t *dd_offsets_new(char *errstr, size_t errstr_size);

/**
 * @brief Destroy the tracker. NULL is allowed.
 * @param ot owned tracker; no thread may be using it any more
 * @locality owner thread
 */
void dd_offsets_destroy(dd_offsets_t *ot);

/*----- Assignment -----*/

/**
 * @brief (Re)create empty state for a partition and bump its epoch. State
 *        left from an earlier assignment (pending entries included) is
 *        dropped; their completions then carry a stale epoch.
 * @param epoch (optional) receives the new epoch
 * @returns DD_OK, or DD_ERR when partition is outside
 *          0..DD_OFFSETS_PARTITION_MAX
 * @locality poll thread (rebalance_cb)
 */
int dd_offsets_assign(dd_offsets_t *ot, int32_t partition, uint32_t *epoch);

/**
 * @brief Drop a partition's state: return its final watermark, bump the
 *        epoch so later completions of its jobs are ignored, and wake
 *        dd_offsets_wait_idle().
 * @param committable (optional) receives the final watermark, or -1 when
 *        nothing was done since the assign (or it was not assigned)
 * @returns DD_OK, or DD_ERR when the partition was not assigned
 * @locality poll thread (rebalance_cb)
 * @remark Call dd_offsets_wait_idle() first: entries still pending are
 *         dropped and their offsets will be redelivered.
 */
int dd_offsets_revoke(dd_offsets_t *ot, int32_t partition,
                      int64_t *committable);

/*----- Dispatch and completion -----*/

/**
 * @brief Record that offset was handed to the job queue.
 * @param epoch (optional) receives the epoch the job must carry to
 *        dd_offsets_mark_done()
 * @returns DD_OK; DD_OFFSETS_BEHIND (nothing recorded) when offset is not
 *          greater than the last dispatched one: the fetch position moved
 *          backwards, see dd_offsets_rebase(); DD_ERR when the partition is
 *          not assigned or offset is negative
 * @locality poll thread
 */
int dd_offsets_dispatch(dd_offsets_t *ot, int32_t partition, int64_t offset,
                        uint32_t *epoch);

/**
 * @brief Mark a dispatched offset done and advance the watermark over the
 *        done prefix.
 * @param epoch the epoch dd_offsets_dispatch() returned for this job
 * @param committable (optional) receives the new watermark when it advanced
 * @returns 1 when the watermark advanced, 0 when it did not (an earlier
 *          offset is still pending), -1 when the call was ignored: stale
 *          epoch, partition not assigned, offset never dispatched under this
 *          epoch, discarded, or already done
 * @locality any thread (the delivery-report thread, dd-prod)
 */
int dd_offsets_mark_done(dd_offsets_t *ot, int32_t partition, uint32_t epoch,
                         int64_t offset, int64_t *committable);

/**
 * @brief Forget the dispatched, not-done entries with offset >= the given
 *        one (their jobs were removed from the queue on revoke, so they are
 *        a suffix of the partition's entries: the queue is FIFO).
 * @returns the number of entries removed
 * @locality poll thread
 * @remark Only the trailing run of not-done entries is removed: a done
 *         entry at or above offset stops the removal there, because
 *         forgetting a pending entry below a done one would let the
 *         watermark jump over an offset that was never processed. Discarded
 *         offsets may be dispatched again.
 */
size_t dd_offsets_discard_from(dd_offsets_t *ot, int32_t partition,
                               int64_t offset);

/**
 * @brief The fetch position of an assigned partition moved backwards to
 *        position: forget the tracked entries at or above it (done or
 *        not; those records are read again), bump the epoch (the entries
 *        below keep theirs and still complete; a late completion of a
 *        forgotten entry is ignored, also once that offset is dispatched
 *        again), and accept position as the next offset to dispatch.
 * @param last (optional) receives the last offset dispatched before, or -1
 * @param committable (optional) receives the new watermark: the first
 *        tracked entry's offset, or position when none is left. It may be
 *        lower than before and never passes a record not done.
 * @returns DD_OK, or DD_ERR when the partition is not assigned or position
 *          is negative
 * @locality poll thread
 */
int dd_offsets_rebase(dd_offsets_t *ot, int32_t partition, int64_t position,
                      int64_t *last, int64_t *committable);

/**
 * @brief The window of a partition: tracked entries, from the oldest not
 *        done to the last dispatched (0 if not assigned).
 * @locality any thread
 */
size_t dd_offsets_window(const dd_offsets_t *ot, int32_t partition);

/**
 * @brief Wait until none of the given partitions has a pending entry
 *        (dispatched, not done, not discarded), or the deadline.
 * @param partitions (optional) borrowed array of n partition ids; NULL
 *        waits for every partition. Unassigned partitions count as idle.
 * @param deadline_ms absolute deadline on the dd_now_ms() clock; negative
 *        waits without a deadline
 * @returns DD_OK when idle, DD_ERR when the deadline passed first (the call
 *          never returns DD_ERR before dd_now_ms() >= deadline_ms)
 * @locality poll thread (rebalance_cb, shutdown); never the thread that
 *           calls dd_offsets_mark_done()
 */
int dd_offsets_wait_idle(dd_offsets_t *ot, const int32_t *partitions, size_t n,
                         int64_t deadline_ms);

/*----- Commit bookkeeping and introspection -----*/

/**
 * @brief Record the offset last committed for a partition (from the
 *        offset_commit_cb), for the snapshot. Kept across revoke and assign;
 *        ignored for partitions outside 0..DD_OFFSETS_PARTITION_MAX.
 * @locality any thread
 */
void dd_offsets_set_committed(dd_offsets_t *ot, int32_t partition,
                              int64_t offset);

/**
 * @brief The current watermark, or -1 when nothing was done since the
 *        assign or the partition is not assigned.
 * @locality any thread
 */
int64_t dd_offsets_committable(const dd_offsets_t *ot, int32_t partition);

/**
 * @brief The partitions whose watermark moved (a completion advanced it, or
 *        dd_offsets_rebase() set it) since they were last taken, each once,
 *        in the order they moved, with their current watermark; the call
 *        forgets them. O(partitions taken), whatever the number assigned.
 * @param out borrowed array of max entries, filled
 * @param max at most this many are taken; the others stay listed, first
 *        in line for the next call
 * @returns the number of entries written
 * @locality any thread (the poll thread, once per loop turn)
 * @remark A revoked or re-assigned partition may still be listed: its
 *         committable is then -1 or that of the new assignment; the
 *         caller compares it with what it stored.
 */
size_t dd_offsets_take_changed(dd_offsets_t *ot, dd_offsets_change_t *out,
                               size_t max);

/**
 * @brief Number of pending entries of a partition (0 if not assigned).
 * @locality any thread
 */
size_t dd_offsets_pending(const dd_offsets_t *ot, int32_t partition);

/** @brief Pending entries over all partitions. @locality any thread */
size_t dd_offsets_pending_total(const dd_offsets_t *ot);

/**
 * @brief Number of threads blocked in dd_offsets_wait_idle() (tests,
 *        debugging). A thread counted here is inside the condition-variable
 *        wait, so a state change made after observing it wakes that thread.
 * @locality any thread
 */
size_t dd_offsets_idle_waiters(const dd_offsets_t *ot);

/**
 * @brief Copy the state of every known partition (assigned now, or assigned
 *        or committed before), in partition order, for /debug endpoints.
 * @param out borrowed array of max entries
 * @returns the number of entries written (at most max)
 * @locality any thread
 */
size_t dd_offsets_snapshot(const dd_offsets_t *ot, dd_offsets_part_info_t *out,
                           size_t max);

#endif /* DD_OFFSETS_H */
