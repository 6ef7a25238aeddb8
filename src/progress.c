/* SPDX-License-Identifier: MIT */
/*
 * progress: replay progress and summary text; see progress.h. Pure: no
 * state, no I/O, any thread.
 */
#include "progress.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "util.h"

#define BAR_WIDTH 20 /* characters of a partition's bar */

/* The rejected reasons are the first DD_PROGRESS_REASONS rows of
 * DD_REASON_MAP (codec.h); the expired one follows them. */
static const char *const reason_names[DD_REASON__COUNT] = {
#define ROW_(id, wire, status, meaning) [DD_REASON_ID_##id] = (wire),
    DD_REASON_MAP(ROW_)
#undef ROW_
};
_Static_assert(DD_REASON_ID_DEADLINE_EXPIRED == DD_PROGRESS_REASONS,
               "rejected reasons first in DD_REASON_MAP");

const char *dd_progress_reason_name(int i) {
    return i >= 0 && i < DD_PROGRESS_REASONS ? reason_names[i] : NULL;
}

int dd_progress_reason_index(const char *reason) {
    for (int i = 0; reason != NULL && i < DD_PROGRESS_REASONS; i++)
        if (strcmp(reason, reason_names[i]) == 0)
            return i;
    return -1;
}

void dd_progress_totals(const dd_progress_t *pg, int64_t *done,
                        int64_t *total) {
    int64_t d = 0, t = 0;

    for (size_t i = 0; i < pg->nparts; i++) {
        d += pg->parts[i].done;
        t += pg->parts[i].total;
    }
    if (done != NULL)
        *done = d;
    if (total != NULL)
        *total = t;
}

double dd_progress_rate(int64_t done, int64_t elapsed_ms) {
    if (done <= 0 || elapsed_ms <= 0)
        return 0.0;
    return (double)done * 1000.0 / (double)elapsed_ms;
}

int64_t dd_progress_eta_s(int64_t done, int64_t total, double rate) {
    double left;

    if (done >= total)
        return 0;
    if (!(rate > 0.0))
        return -1;
    left = (double)(total - done) / rate;
    if (left >= (double)INT64_MAX / 2)
        return -1;
    return (int64_t)left + ((double)(int64_t)left < left ? 1 : 0);
}

char *dd_progress_format_duration(int64_t secs, char *buf, size_t size) {
    if (secs < 0)
        snprintf(buf, size, "--");
    else if (secs >= 3600)
        snprintf(buf, size, "%" PRId64 "h%02dm%02ds", secs / 3600,
                 (int)(secs % 3600 / 60), (int)(secs % 60));
    else if (secs >= 60)
        snprintf(buf, size, "%dm%02ds", (int)(secs / 60), (int)(secs % 60));
    else
        snprintf(buf, size, "%ds", (int)secs);
    return buf;
}

static double percent(int64_t done, int64_t total) {
    return total > 0 ? 100.0 * (double)done / (double)total : 100.0;
}

size_t dd_progress_format_line(const dd_progress_t *pg, char *buf,
                               size_t size) {
    int64_t done, total;
    size_t finished = 0;
    double rate;
    char eta[32], elapsed[32];
    int n;

    dd_progress_totals(pg, &done, &total);
    for (size_t i = 0; i < pg->nparts; i++)
        if (pg->parts[i].done >= pg->parts[i].total)
            finished++;
    rate = dd_progress_rate(done, pg->elapsed_ms);
    dd_progress_format_duration(dd_progress_eta_s(done, total, rate), eta,
                                sizeof(eta));
    dd_progress_format_duration(pg->elapsed_ms / 1000, elapsed,
                                sizeof(elapsed));
    n = snprintf(buf, size,
                 "replay %" PRId64 "/%" PRId64
                 " offsets (%.1f%%), %.0f/s, ETA %s, %zu/%zu partitions "
                 "done, elapsed %s",
                 done, total, percent(done, total), rate, eta, finished,
                 pg->nparts, elapsed);
    return n < 0 ? 0 : (size_t)n;
}

size_t dd_progress_format_part(const dd_progress_part_t *pp, char *buf,
                               size_t size) {
    char bar[BAR_WIDTH + 1];
    int fill =
        pp->total > 0 ? (int)(pp->done * BAR_WIDTH / pp->total) : BAR_WIDTH;
    int n;

    if (fill < 0)
        fill = 0;
    if (fill > BAR_WIDTH)
        fill = BAR_WIDTH;
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '.', (size_t)(BAR_WIDTH - fill));
    bar[BAR_WIDTH] = '\0';
    n = snprintf(buf, size, "  p%-4d %10" PRId64 "/%-10" PRId64 " %5.1f%% [%s]",
                 (int)pp->partition, pp->done, pp->total,
                 percent(pp->done, pp->total), bar);
    return n < 0 ? 0 : (size_t)n;
}

size_t dd_progress_format_plain(const dd_progress_t *pg, char *buf,
                                size_t size) {
    size_t len = dd_progress_format_line(pg, buf, size);

    for (size_t i = 0; i < pg->nparts && len < size; i++) {
        char one[64];
        int k = snprintf(one, sizeof(one), "%s p%d %" PRId64 "/%" PRId64,
                         i == 0 ? " |" : "", (int)pg->parts[i].partition,
                         pg->parts[i].done, pg->parts[i].total);
        /* Keep room for " ..." unless this is the last partition. */
        if (k < 0 ||
            len + (size_t)k + (i + 1 < pg->nparts ? 4 : 0) + 1 > size) {
            dd_strlcpy(buf + len, " ...", size - len);
            len += strlen(buf + len);
            break;
        }
        memcpy(buf + len, one, (size_t)k + 1);
        len += (size_t)k;
    }
    return len;
}

/* printf at *len into out (cap bytes), advancing *len; truncates. */
static void __attribute__((format(printf, 4, 5)))
appendf(char *out, size_t cap, size_t *len, const char *fmt, ...) {
    va_list ap;
    int n;

    if (*len + 1 >= cap)
        return;
    va_start(ap, fmt);
    n = vsnprintf(out + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n < cap - *len ? (size_t)n : cap - *len - 1;
}

char *dd_progress_format_summary(const dd_progress_summary_t *s) {
    const size_t cap = 2048;
    char *out = dd_xmalloc(cap);
    char elapsed[32], reasons[512];
    double secs = (double)s->elapsed_ms / 1000.0;
    size_t len = 0, rl = 0;

    out[0] = '\0';
    reasons[0] = '\0';
    for (int i = 0; i < DD_PROGRESS_REASONS; i++)
        if (s->rejected_by[i] > 0)
            appendf(reasons, sizeof(reasons), &rl, "%s%s %" PRIu64,
                    rl > 0 ? ", " : " (", reason_names[i], s->rejected_by[i]);
    if (rl > 0)
        appendf(reasons, sizeof(reasons), &rl, ")");
    dd_progress_format_duration(s->elapsed_ms / 1000, elapsed, sizeof(elapsed));
    appendf(out, cap, &len, "replay summary: %s -> %s%s\n", s->topic,
            s->dry_run ? "nothing (dry run: no result produced, Redis not "
                         "written; what it would have answered)"
                       : s->result_topic,
            s->complete ? "" : " [INCOMPLETE]");
    appendf(out, cap, &len, "  partitions   %zu/%zu reached their end\n",
            s->partitions_finished, s->partitions);
    appendf(out, cap, &len,
            "  messages     %" PRIu64 " answered, %" PRId64
            " offsets in range, in %.1f s (%.0f msg/s)\n",
            s->messages, s->offsets, secs,
            secs > 0 ? (double)s->messages / secs : 0.0);
    appendf(out, cap, &len, "  assigned     %" PRIu64 "%s\n", s->assigned,
            s->dry_run ? " (an upper bound: reservations not checked)" : "");
    appendf(out, cap, &len, "  rejected     %" PRIu64 "%s\n", s->rejected,
            reasons);
    appendf(out, cap, &len, "  expired      %" PRIu64 "\n", s->expired);
    appendf(out, cap, &len, "  dead letters %" PRIu64 "\n", s->dead_letter);
    appendf(out, cap, &len,
            "  duplicates   %" PRIu64
            " answered from the ledger (requests answered before)\n",
            s->from_ledger);
    appendf(out, cap, &len, "  elapsed      %s\n", elapsed);
    return out;
}

size_t dd_progress_format_kv(const dd_progress_summary_t *s, char *buf,
                             size_t size) {
    int n =
        snprintf(buf, size,
                 "complete=%d dry_run=%d partitions=%zu/%zu offsets=%" PRId64
                 " messages=%" PRIu64 " assigned=%" PRIu64 " rejected=%" PRIu64
                 " expired=%" PRIu64 " dead_letter=%" PRIu64
                 " from_ledger=%" PRIu64 " elapsed_ms=%" PRId64,
                 s->complete, s->dry_run, s->partitions_finished, s->partitions,
                 s->offsets, s->messages, s->assigned, s->rejected, s->expired,
                 s->dead_letter, s->from_ledger, s->elapsed_ms);
    return n < 0 ? 0 : (size_t)n;
}
