/* SPDX-License-Identifier: MIT */
/*
 * replay_range: turn the operator's --replay-from/--replay-to bounds and
 * what the broker said about each partition (watermarks, offsets_for_times
 * answers) into the offset span [start, end) to replay on each partition.
 * Pure: no librdkafka types and no I/O; the consumer (consumer_replay.c)
 * does the queries and fills the spans, so unit tests fill them by hand.
 */
#ifndef DD_REPLAY_RANGE_H
#define DD_REPLAY_RANGE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/** One partition of a replay: what the broker said, and the range. */
typedef struct dd_replay_span {
    /* in */
    int32_t partition;
    int64_t low;     /* log start offset */
    int64_t high;    /* end offset captured at start (high watermark, or
                      * the LSO with read_committed) */
    int64_t from_ts; /* TIMESTAMP start: offsets_for_times answer, the first
                      * offset with a timestamp >= it, or < 0 for none */
    int64_t to_ts;   /* TIMESTAMP end: the same for --replay-to */
    /* out */
    int64_t start; /* first offset to replay */
    int64_t end;   /* replay offsets < end; start == end: nothing */
} dd_replay_span_t;

/**
 * @brief Compute [start, end) of every span from the bounds.
 *
 * end: `end` -> high; TIMESTAMP -> to_ts clamped to [low, high] (high when
 * no message is that late). start: `earliest` -> low; OFFSET -> the offset
 * clamped to [low, high]; TIMESTAMP -> from_ts clamped to [low, high] (high
 * when no message is that late). A start past the end gives an empty span.
 *
 * @param from, to borrowed bounds (from->kind is not DD_REPLAY_NONE)
 * @param spans borrowed, n spans with the in fields set
 * @param errstr (optional) one line for the operator on DD_ERR
 * @returns DD_OK; DD_ERR for a bad range: a TIMESTAMP start later than
 *          every message, an OFFSET start at or past the end of every
 *          partition, or an end (TIMESTAMP) that leaves nothing to replay.
 *          An empty topic replayed from earliest to end is not an error.
 * @locality any thread (pure)
 * @locks_required none
 */
int dd_replay_resolve(const dd_replay_bound_t *from,
                      const dd_replay_bound_t *to, dd_replay_span_t *spans,
                      size_t n, char *errstr, size_t errstr_size);

/**
 * @brief Sort n spans by partition id, ascending (the order of the replay
 *        plan and of its log line).
 * @param spans borrowed
 * @locality any thread (pure)
 * @locks_required none
 */
void dd_replay_sort_spans(dd_replay_span_t *spans, size_t n);

#endif /* DD_REPLAY_RANGE_H */
