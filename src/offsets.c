/* SPDX-License-Identifier: MIT */
/*
 * offsets: per-partition dispatched/done offsets and the committable
 * watermark.
 *
 * Each partition keeps a growable ring of {offset, done} entries in
 * dispatch order (strictly increasing offsets, so a completion finds its
 * entry by binary search). Completing the head entry pops every done entry
 * off the head and moves the watermark to the last popped offset + 1; an
 * entry completed out of order stays in the ring, marked done, until the
 * entries before it are done. The ring therefore holds exactly the
 * in-flight window: at most queue capacity + workers + producer in-flight
 * entries, because intake pauses when the queue is full.
 *
 * DESIGN
 * Threads: dd-poll dispatches, discards, waits and (re)assigns; dd-prod
 * marks done; any thread reads. One mutex (lock) protects the whole table;
 * one condition variable (idle, CLOCK_MONOTONIC) is broadcast whenever a
 * partition's pending count drops to zero or its state is dropped, which is
 * what dd_offsets_wait_idle() waits for. Every watermark move (a completion
 * that advances it, a rebase) appends the partition, once, to the changed
 * list that dd_offsets_take_changed() empties, so the poll thread stores
 * offsets in O(partitions that moved), not O(assigned). The module calls
 * nothing outside util while holding lock: it is a leaf, row 3 of "Lock
 * order" in pipeline_int.h (the HTTP handle lock may be held when it is
 * taken).
 *
 * Epochs: the partition table is never shrunk and an entry keeps its epoch
 * across revoke and assign, so a job dispatched under an old assignment can
 * never match the current one. Each tracked entry remembers the epoch it
 * was dispatched under, and a completion must carry that epoch: after a
 * rebase (the fetch position moved backwards within an assignment) the
 * entries below the new position keep their epoch and still complete,
 * while the entries at or above it are gone and a late completion of one
 * of them can never match the entry of the record read again there.
 */
#include "offsets.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define RING_MIN 64 /* entries allocated at the first dispatch */

typedef struct entry {
    int64_t offset;
    uint32_t epoch; /* the partition's epoch when it was dispatched */
    int done;
} entry_t;

typedef struct part {
    uint32_t epoch;      /* bumped by assign and revoke */
    int assigned;        /* 1 between assign and revoke */
    int known;           /* ever assigned or committed: listed in snapshots */
    int changed;         /* listed in dd_offsets.changed */
    entry_t *ring;       /* cap entries; head..head+count-1 in dispatch order */
    size_t cap;          /* allocated entries */
    size_t head;         /* index of the oldest tracked entry */
    size_t count;        /* tracked entries (pending and done-but-not-popped) */
    size_t pending;      /* tracked entries not done */
    int64_t last;        /* highest offset tracked or popped; -1 */
    int64_t wm;          /* committable watermark; -1 */
    int64_t committed;   /* from dd_offsets_set_committed(); -1 */
    uint64_t dispatched; /* counters since the last assign */
    uint64_t done;
    uint64_t discarded;
    uint64_t rewinds; /* dd_offsets_rebase() calls since the last assign */
} part_t;

struct dd_offsets {
    pthread_mutex_t lock;
    pthread_cond_t idle;  /* a partition became idle; protected by lock */
    part_t *parts;        /* indexed by partition id; protected by lock */
    size_t nparts;        /* entries in parts; protected by lock */
    size_t pending_total; /* sum of parts[].pending; protected by lock */
    size_t idle_waiters;  /* threads waiting on idle; protected by lock */
    /* Partitions whose watermark moved since dd_offsets_take_changed() last
     * listed them, each once, in the order they moved; protected by lock. */
    int32_t *changed;
    size_t nchanged, changed_cap;
};

/* Functions taking a const tracker still need the mutex. */
static dd_offsets_t *unconst(const dd_offsets_t *ot) {
    return (dd_offsets_t *)(uintptr_t)ot;
}

static entry_t *at(part_t *p, size_t i) {
    return &p->ring[(p->head + i) % p->cap];
}

/* The partition's entry, or NULL if the id is out of range or was never
 * seen. */
static part_t *find_part(const dd_offsets_t *ot, int32_t partition) {
    if (partition < 0 || (size_t)partition >= ot->nparts)
        return NULL;
    return &ot->parts[partition];
}

/* The partition's entry, growing the table to hold it; NULL if the id is
 * out of range. */
static part_t *get_part(dd_offsets_t *ot, int32_t partition) {
    size_t want, n;

    if (partition < 0 || partition > DD_OFFSETS_PARTITION_MAX)
        return NULL;
    want = (size_t)partition + 1;
    if (want > ot->nparts) {
        n = ot->nparts ? ot->nparts : 8;
        while (n < want)
            n *= 2;
        ot->parts = dd_xrealloc(ot->parts, n * sizeof(*ot->parts));
        memset(ot->parts + ot->nparts, 0,
               (n - ot->nparts) * sizeof(*ot->parts));
        for (size_t i = ot->nparts; i < n; i++) {
            ot->parts[i].last = -1;
            ot->parts[i].wm = -1;
            ot->parts[i].committed = -1;
        }
        ot->nparts = n;
    }
    return &ot->parts[partition];
}

static void wake_idle_waiters(dd_offsets_t *ot) {
    if (ot->idle_waiters > 0)
        pthread_cond_broadcast(&ot->idle);
}

/* Forget the partition's entries and counters, keeping the epoch, the
 * committed offset and the known flag. */
static void reset_part(dd_offsets_t *ot, part_t *p) {
    ot->pending_total -= p->pending;
    if (p->pending > 0)
        wake_idle_waiters(ot);
    dd_free(p->ring);
    p->ring = NULL;
    p->cap = p->head = p->count = p->pending = 0;
    p->last = p->wm = -1;
    p->dispatched = p->done = p->discarded = 0;
}

/* Drop the tracked entries from index i on (done or not). */
static void truncate_at(dd_offsets_t *ot, part_t *p, size_t i) {
    while (p->count > i) {
        p->count--;
        if (!at(p, p->count)->done) {
            p->pending--;
            ot->pending_total--;
            p->discarded++;
        }
    }
}

/* Make room for one more entry: the first dispatch allocates the ring, a
 * full ring is linearised into one twice as large. */
static void ring_reserve(part_t *p) {
    entry_t *ring;
    size_t cap;

    if (p->count < p->cap)
        return;
    if (p->cap == 0) {
        p->ring = dd_xmalloc(RING_MIN * sizeof(*p->ring));
        p->cap = RING_MIN;
        p->head = 0;
        return;
    }
    /* Full: the entries are ring[head..cap) followed by ring[0..head). */
    cap = p->cap * 2;
    ring = dd_xmalloc(cap * sizeof(*ring));
    memcpy(ring, p->ring + p->head, (p->cap - p->head) * sizeof(*ring));
    memcpy(ring + (p->cap - p->head), p->ring, p->head * sizeof(*ring));
    dd_free(p->ring);
    p->ring = ring;
    p->cap = cap;
    p->head = 0;
}

/* Index of the first tracked entry with an offset >= offset (count if
 * none). Entries are strictly increasing in dispatch order. */
static size_t lower_bound(part_t *p, int64_t offset) {
    size_t lo = 0, hi = p->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (at(p, mid)->offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* List partition id pi (entry p) as changed, once, for
 * dd_offsets_take_changed(). */
static void note_changed(dd_offsets_t *ot, part_t *p, int32_t pi) {
    if (p->changed)
        return;
    if (ot->nchanged == ot->changed_cap) {
        ot->changed_cap = ot->changed_cap ? ot->changed_cap * 2 : 16;
        ot->changed =
            dd_xrealloc(ot->changed, ot->changed_cap * sizeof(*ot->changed));
    }
    ot->changed[ot->nchanged++] = pi;
    p->changed = 1;
}

/* Pop the done entries off the head; returns 1 if the watermark moved. */
static int advance(part_t *p) {
    int moved = 0;

    while (p->count > 0 && at(p, 0)->done) {
        p->wm = at(p, 0)->offset + 1;
        p->head = (p->head + 1) % p->cap;
        p->count--;
        moved = 1;
    }
    return moved;
}

static int is_idle(const dd_offsets_t *ot, const int32_t *partitions,
                   size_t n) {
    if (partitions == NULL)
        return ot->pending_total == 0;
    for (size_t i = 0; i < n; i++) {
        const part_t *p = find_part(ot, partitions[i]);
        if (p != NULL && p->pending > 0)
            return 0;
    }
    return 1;
}

dd_offsets_t *dd_offsets_new(char *errstr, size_t errstr_size) {
    dd_offsets_t *ot = dd_xcalloc(1, sizeof(*ot));
    pthread_condattr_t attr;
    int rc, have_lock = 0;

    if ((rc = pthread_mutex_init(&ot->lock, NULL)) != 0)
        goto err;
    have_lock = 1;
    if ((rc = pthread_condattr_init(&attr)) != 0)
        goto err;
    /* dd_now_ms() is CLOCK_MONOTONIC, so deadlines use that clock too. */
    if ((rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)) == 0)
        rc = pthread_cond_init(&ot->idle, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        goto err;
    return ot;

err:
    dd_set_error(errstr, errstr_size, "offsets: pthread init failed: %s",
                 strerror(rc));
    if (have_lock)
        pthread_mutex_destroy(&ot->lock);
    dd_free(ot);
    return NULL;
}

void dd_offsets_destroy(dd_offsets_t *ot) {
    if (ot == NULL)
        return;
    for (size_t i = 0; i < ot->nparts; i++)
        dd_free(ot->parts[i].ring);
    dd_free(ot->parts);
    dd_free(ot->changed);
    pthread_cond_destroy(&ot->idle);
    pthread_mutex_destroy(&ot->lock);
#ifndef DD_BUILD_release
    /* Poison so a use after destroy fails loudly in debug builds. */
    memset(ot, 0xff, sizeof(*ot));
#endif
    dd_free(ot);
}

int dd_offsets_assign(dd_offsets_t *ot, int32_t partition, uint32_t *epoch) {
    part_t *p;
    int rc = DD_ERR;

    pthread_mutex_lock(&ot->lock);
    if ((p = get_part(ot, partition)) != NULL) {
        reset_part(ot, p);
        p->epoch++;
        p->assigned = 1;
        p->known = 1;
        p->rewinds = 0;
        if (epoch != NULL)
            *epoch = p->epoch;
        rc = DD_OK;
    }
    pthread_mutex_unlock(&ot->lock);
    return rc;
}

int dd_offsets_revoke(dd_offsets_t *ot, int32_t partition,
                      int64_t *committable) {
    part_t *p;
    int64_t wm = -1;
    int rc = DD_ERR;

    pthread_mutex_lock(&ot->lock);
    p = find_part(ot, partition);
    if (p != NULL && p->assigned) {
        wm = p->wm;
        reset_part(ot, p);
        p->epoch++;
        p->assigned = 0;
        rc = DD_OK;
    }
    pthread_mutex_unlock(&ot->lock);
    if (committable != NULL)
        *committable = wm;
    return rc;
}

int dd_offsets_dispatch(dd_offsets_t *ot, int32_t partition, int64_t offset,
                        uint32_t *epoch) {
    part_t *p;
    int rc = DD_ERR;

    pthread_mutex_lock(&ot->lock);
    p = find_part(ot, partition);
    if (p != NULL && p->assigned && offset >= 0 && offset <= p->last) {
        rc = DD_OFFSETS_BEHIND;
    } else if (p != NULL && p->assigned && offset >= 0) {
        ring_reserve(p);
        *at(p, p->count) = (entry_t){offset, p->epoch, 0};
        p->count++;
        p->pending++;
        ot->pending_total++;
        p->last = offset;
        p->dispatched++;
        if (epoch != NULL)
            *epoch = p->epoch;
        rc = DD_OK;
    }
    pthread_mutex_unlock(&ot->lock);
    return rc;
}

int dd_offsets_mark_done(dd_offsets_t *ot, int32_t partition, uint32_t epoch,
                         int64_t offset, int64_t *committable) {
    part_t *p;
    entry_t *e;
    size_t i;
    int rc = -1;

    pthread_mutex_lock(&ot->lock);
    p = find_part(ot, partition);
    if (p == NULL || !p->assigned)
        goto out;
    i = lower_bound(p, offset);
    if (i == p->count || (e = at(p, i))->offset != offset || e->done ||
        e->epoch != epoch)
        goto out;
    e->done = 1;
    p->done++;
    p->pending--;
    ot->pending_total--;
    rc = i == 0 ? advance(p) : 0;
    if (rc == 1) {
        note_changed(ot, p, partition);
        if (committable != NULL)
            *committable = p->wm;
    }
    if (p->pending == 0)
        wake_idle_waiters(ot);
out:
    pthread_mutex_unlock(&ot->lock);
    return rc;
}

size_t dd_offsets_discard_from(dd_offsets_t *ot, int32_t partition,
                               int64_t offset) {
    part_t *p;
    size_t n = 0, from;

    pthread_mutex_lock(&ot->lock);
    p = find_part(ot, partition);
    if (p == NULL || !p->assigned)
        goto out;
    from = lower_bound(p, offset);
    /* Only the trailing not-done run: see the remark in offsets.h. */
    while (p->count > from && !at(p, p->count - 1)->done) {
        p->count--;
        n++;
    }
    if (n == 0)
        goto out;
    p->pending -= n;
    ot->pending_total -= n;
    p->discarded += n;
    /* Discarded offsets may be dispatched again. */
    if (p->count > 0)
        p->last = at(p, p->count - 1)->offset;
    else
        p->last = p->wm >= 0 ? p->wm - 1 : -1;
    if (p->pending == 0)
        wake_idle_waiters(ot);
out:
    pthread_mutex_unlock(&ot->lock);
    return n;
}

int dd_offsets_rebase(dd_offsets_t *ot, int32_t partition, int64_t position,
                      int64_t *last, int64_t *committable) {
    part_t *p;
    int rc = DD_ERR;
    size_t before;

    pthread_mutex_lock(&ot->lock);
    p = find_part(ot, partition);
    if (last != NULL)
        *last = p != NULL && p->assigned ? p->last : -1;
    if (p == NULL || !p->assigned || position < 0)
        goto out;
    before = p->pending;
    truncate_at(ot, p, lower_bound(p, position));
    /* Everything below the first entry left is done, and everything below
     * the new position was either dispatched (tracked) or is not there
     * any more: nothing past an undispatched record becomes committable. */
    p->wm = p->count > 0 ? at(p, 0)->offset : position;
    p->last = position - 1;
    p->epoch++;
    p->rewinds++;
    note_changed(ot, p, partition);
    if (before > 0 && p->pending == 0)
        wake_idle_waiters(ot);
    if (committable != NULL)
        *committable = p->wm;
    rc = DD_OK;
out:
    pthread_mutex_unlock(&ot->lock);
    return rc;
}

size_t dd_offsets_window(const dd_offsets_t *ot, int32_t partition) {
    dd_offsets_t *mot = unconst(ot);
    const part_t *p;
    size_t n = 0;

    pthread_mutex_lock(&mot->lock);
    p = find_part(mot, partition);
    if (p != NULL && p->assigned)
        n = p->count;
    pthread_mutex_unlock(&mot->lock);
    return n;
}

int dd_offsets_wait_idle(dd_offsets_t *ot, const int32_t *partitions, size_t n,
                         int64_t deadline_ms) {
    struct timespec ts = {0, 0};
    int rc = DD_OK, wrc;

    if (deadline_ms >= 0) {
        ts.tv_sec = (time_t)(deadline_ms / 1000);
        ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000;
    }
    pthread_mutex_lock(&ot->lock);
    while (!is_idle(ot, partitions, n)) {
        if (deadline_ms >= 0 && dd_now_ms() >= deadline_ms) {
            rc = DD_ERR;
            break;
        }
        ot->idle_waiters++;
        if (deadline_ms < 0)
            wrc = pthread_cond_wait(&ot->idle, &ot->lock);
        else
            wrc = pthread_cond_timedwait(&ot->idle, &ot->lock, &ts);
        ot->idle_waiters--;
        dd_assert(wrc == 0 || wrc == ETIMEDOUT);
    }
    pthread_mutex_unlock(&ot->lock);
    return rc;
}

void dd_offsets_set_committed(dd_offsets_t *ot, int32_t partition,
                              int64_t offset) {
    part_t *p;

    pthread_mutex_lock(&ot->lock);
    if ((p = get_part(ot, partition)) != NULL) {
        p->committed = offset;
        p->known = 1;
    }
    pthread_mutex_unlock(&ot->lock);
}

/* What one of the getters below reads, under the lock. */
typedef enum count {
    COUNT_COMMITTABLE,   /* the partition's watermark, -1 unassigned */
    COUNT_PENDING,       /* the partition's pending records */
    COUNT_PENDING_TOTAL, /* every partition's */
    COUNT_IDLE_WAITERS,  /* threads in dd_offsets_wait_idle() */
} count_t;

/* One counter read under the lock: the one body of the getters. */
static int64_t read_count(const dd_offsets_t *ot, int32_t partition,
                          count_t what) {
    dd_offsets_t *mot = unconst(ot);
    const part_t *p;
    int64_t v = 0;

    pthread_mutex_lock(&mot->lock);
    switch (what) {
        case COUNT_COMMITTABLE:
            v = -1;
            p = find_part(mot, partition);
            if (p != NULL && p->assigned)
                v = p->wm;
            break;
        case COUNT_PENDING:
            if ((p = find_part(mot, partition)) != NULL)
                v = (int64_t)p->pending;
            break;
        case COUNT_PENDING_TOTAL:
            v = (int64_t)mot->pending_total;
            break;
        case COUNT_IDLE_WAITERS:
            v = (int64_t)mot->idle_waiters;
            break;
    }
    pthread_mutex_unlock(&mot->lock);
    return v;
}

int64_t dd_offsets_committable(const dd_offsets_t *ot, int32_t partition) {
    return read_count(ot, partition, COUNT_COMMITTABLE);
}

size_t dd_offsets_pending(const dd_offsets_t *ot, int32_t partition) {
    return (size_t)read_count(ot, partition, COUNT_PENDING);
}

size_t dd_offsets_pending_total(const dd_offsets_t *ot) {
    return (size_t)read_count(ot, -1, COUNT_PENDING_TOTAL);
}

size_t dd_offsets_idle_waiters(const dd_offsets_t *ot) {
    return (size_t)read_count(ot, -1, COUNT_IDLE_WAITERS);
}

size_t dd_offsets_take_changed(dd_offsets_t *ot, dd_offsets_change_t *out,
                               size_t max) {
    size_t n;

    pthread_mutex_lock(&ot->lock);
    n = ot->nchanged < max ? ot->nchanged : max;
    for (size_t i = 0; i < n; i++) {
        part_t *p = &ot->parts[ot->changed[i]];
        p->changed = 0;
        out[i].partition = ot->changed[i];
        out[i].committable = p->assigned ? p->wm : -1;
    }
    /* What did not fit stays listed, first in line for the next call
     * (nothing to move when all fit: changed may still be NULL then). */
    if (ot->nchanged > n)
        memmove(ot->changed, ot->changed + n,
                (ot->nchanged - n) * sizeof(*ot->changed));
    ot->nchanged -= n;
    pthread_mutex_unlock(&ot->lock);
    return n;
}

size_t dd_offsets_snapshot(const dd_offsets_t *ot, dd_offsets_part_info_t *out,
                           size_t max) {
    dd_offsets_t *mot = unconst(ot);
    size_t n = 0;

    pthread_mutex_lock(&mot->lock);
    for (size_t i = 0; i < mot->nparts && n < max; i++) {
        const part_t *p = &mot->parts[i];
        if (!p->known)
            continue;
        out[n++] = (dd_offsets_part_info_t){
            .partition = (int32_t)i,
            .epoch = p->epoch,
            .assigned = p->assigned,
            .dispatched_count = p->dispatched,
            .done_count = p->done,
            .discarded_count = p->discarded,
            .pending = p->pending,
            .last_dispatched = p->last,
            .committable = p->wm,
            .committed = p->committed,
            .window = p->count,
            .rewinds = p->rewinds,
        };
    }
    pthread_mutex_unlock(&mot->lock);
    return n;
}
