/* SPDX-License-Identifier: MIT */
/*
 * replay_range: resolve --replay-from/--replay-to into per-partition offset
 * spans; see include/replay_range.h. Pure functions, no I/O.
 */
#include "replay_range.h"

#include <inttypes.h>
#include <stdlib.h>

#include "util.h"

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

int dd_replay_resolve(const dd_replay_bound_t *from,
                      const dd_replay_bound_t *to, dd_replay_span_t *spans,
                      size_t n, char *errstr, size_t errstr_size) {
    int64_t total = 0, max_end = 0;
    int any_start = 0; /* a partition has something at or after the start */
    char ts[32];

    for (size_t i = 0; i < n; i++) {
        dd_replay_span_t *s = &spans[i];
        int64_t hi = s->high > s->low ? s->high : s->low;

        s->end = hi;
        if (to->kind == DD_REPLAY_TIMESTAMP && s->to_ts >= 0)
            s->end = clamp64(s->to_ts, s->low, hi);
        switch (from->kind) {
            case DD_REPLAY_OFFSET:
                s->start = clamp64(from->value, s->low, hi);
                break;
            case DD_REPLAY_TIMESTAMP:
                s->start =
                    s->from_ts >= 0 ? clamp64(s->from_ts, s->low, hi) : hi;
                break;
            default:
                s->start = s->low;
                break;
        }
        if (s->start < hi)
            any_start = 1;
        if (s->start > s->end)
            s->start = s->end;
        total += s->end - s->start;
        if (hi > max_end)
            max_end = hi;
    }
    if (from->kind == DD_REPLAY_TIMESTAMP && !any_start) {
        dd_set_error(errstr, errstr_size,
                     "--replay-from %s is later than the last message of "
                     "every partition: nothing to replay",
                     dd_format_iso8601(from->value, ts, sizeof(ts)));
        return DD_ERR;
    }
    if (from->kind == DD_REPLAY_OFFSET && !any_start) {
        dd_set_error(errstr, errstr_size,
                     "--replay-from %" PRId64 " is at or past the end of every "
                     "partition (the largest end offset is %" PRId64 ")",
                     from->value, max_end);
        return DD_ERR;
    }
    if (to->kind == DD_REPLAY_TIMESTAMP && total == 0) {
        dd_set_error(errstr, errstr_size,
                     "--replay-to %s is not after --replay-from on any "
                     "partition: nothing to replay",
                     dd_format_iso8601(to->value, ts, sizeof(ts)));
        return DD_ERR;
    }
    return DD_OK;
}

static int cmp_span(const void *a, const void *b) {
    const dd_replay_span_t *x = a, *y = b;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

void dd_replay_sort_spans(dd_replay_span_t *spans, size_t n) {
    if (n > 0)
        qsort(spans, n, sizeof(*spans), cmp_span);
}
