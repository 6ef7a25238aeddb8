/* SPDX-License-Identifier: MIT */
/*
 * pipeline_replay: the pipeline's side of replay mode; see pipeline_int.h.
 * The consumer owns the replay bounds (which partitions, which offsets,
 * which ones reached their end); this file decides when the replay is
 * complete, shows progress and prints the summary.
 *
 * Complete means: every partition reached its end offset (the consumer
 * dispatched, and registered in the tracker, every message in range) and
 * the tracker has nothing pending, i.e. every dispatched message was
 * answered and its result or dead letter acknowledged by the broker (in a
 * dry run: answered). The main thread checks that every 200 ms while it
 * waits for SIGINT/SIGTERM, and redraws the progress display.
 *
 * DESIGN: the outcome counters are atomics bumped by whoever completes a
 * job (dd-prod's delivery reports, or the workers in a dry run); everything
 * else runs on the main thread. Progress goes to the log's fd through
 * dd_log_write_raw(): redrawn in place when it is a terminal (unless log
 * lines came in between: then drawn below them), one plain line every
 * DD_REPLAY_PLAIN_MS otherwise.
 */
#include "pipeline_int.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "progress.h"
#include "stop.h"
#include "util.h"

#define DD_REPLAY_TICK_MS  200  /* completion check and signal wait */
#define DD_REPLAY_TTY_MS   250  /* terminal redraw interval */
#define DD_REPLAY_PLAIN_MS 5000 /* plain progress line interval */
#define DD_REPLAY_TTY_ROWS 24   /* partitions shown on a terminal */
#define DD_REPLAY_LINE_MAX 1024 /* one progress line */

struct dd_pipeline_replay {
    const dd_config_t *cfg;
    int64_t start_ms; /* dd_now_ms() at creation */
    int tty;          /* the log fd is a terminal */

    /* Outcomes of completed jobs; any thread. */
    atomic_ullong messages;
    atomic_ullong assigned;
    atomic_ullong rejected;
    atomic_ullong rejected_by[DD_PROGRESS_REASONS];
    atomic_ullong expired;
    atomic_ullong dead_letter;
    atomic_ullong from_ledger;

    /* Main thread only. */
    dd_consumer_replay_part_t *cparts; /* consumer's view, nparts */
    dd_offsets_part_info_t *tparts;    /* tracker snapshot buffer */
    dd_progress_part_t *parts;         /* progress, nparts */
    size_t nparts;
    int64_t offsets;          /* in range, over all partitions */
    size_t finished;          /* partitions that reached their end */
    int complete;             /* see the file comment */
    int drawn_rows;           /* rows of the last terminal draw */
    uint64_t drawn_log_lines; /* dd_log_lines() after that draw */
    int64_t last_draw_ms;     /* dd_now_ms() of the last draw */
};

dd_pipeline_replay_t *dd_pipeline_replay_new(const dd_config_t *cfg) {
    dd_pipeline_replay_t *rp = dd_xcalloc(1, sizeof(*rp));

    rp->cfg = cfg;
    rp->start_ms = dd_now_ms();
    rp->tty = isatty(STDERR_FILENO);
    return rp;
}

void dd_pipeline_replay_destroy(dd_pipeline_replay_t *rp) {
    if (rp == NULL)
        return;
    dd_free(rp->cparts);
    dd_free(rp->tparts);
    dd_free(rp->parts);
    dd_free(rp);
}

void dd_pipeline_replay_count(dd_pipeline_replay_t *rp, const dd_job_t *job) {
    atomic_fetch_add(&rp->messages, 1);
    if (job->out_kind == DD_JOB_OUT_DLQ) {
        atomic_fetch_add(&rp->dead_letter, 1);
        return;
    }
    if (job->out_from_ledger)
        atomic_fetch_add(&rp->from_ledger, 1);
    switch (job->out_status) {
        case DD_STATUS_ASSIGNED:
            atomic_fetch_add(&rp->assigned, 1);
            break;
        case DD_STATUS_EXPIRED:
            atomic_fetch_add(&rp->expired, 1);
            break;
        case DD_STATUS_REJECTED: {
            int i = dd_progress_reason_index(job->out_reason);
            atomic_fetch_add(&rp->rejected, 1);
            if (i >= 0)
                atomic_fetch_add(&rp->rejected_by[i], 1);
            break;
        }
    }
}

/* Sample the consumer and the tracker into rp->parts. */
static void sample(dd_pipeline_replay_t *rp, const dd_consumer_t *cons,
                   const dd_offsets_t *ot) {
    size_t nt;

    if (rp->cparts == NULL) {
        /* The plan fixed the partitions before dd-poll started. */
        size_t n = dd_consumer_replay_parts(cons, NULL, 0);
        rp->cparts = dd_xcalloc(n + 1, sizeof(*rp->cparts));
        rp->tparts = dd_xcalloc(n + 1, sizeof(*rp->tparts));
        rp->parts = dd_xcalloc(n + 1, sizeof(*rp->parts));
        rp->nparts = n;
    }
    rp->nparts = dd_consumer_replay_parts(cons, rp->cparts, rp->nparts);
    nt = dd_offsets_snapshot(ot, rp->tparts, rp->nparts + 1);
    rp->offsets = 0;
    rp->finished = 0;
    for (size_t i = 0; i < rp->nparts; i++) {
        const dd_consumer_replay_part_t *cp = &rp->cparts[i];
        dd_progress_part_t *pp = &rp->parts[i];
        const dd_offsets_part_info_t *tp = NULL;
        int64_t done = 0;

        for (size_t j = 0; j < nt && tp == NULL; j++)
            if (rp->tparts[j].partition == cp->partition)
                tp = &rp->tparts[j];
        pp->partition = cp->partition;
        pp->total = cp->end - cp->start;
        if (cp->finished && (tp == NULL || tp->pending == 0))
            done = pp->total;
        else if (tp != NULL && tp->committable >= 0)
            done = tp->committable - cp->start;
        pp->done = done < 0 ? 0 : done > pp->total ? pp->total : done;
        rp->offsets += pp->total;
        rp->finished += (size_t)(cp->finished != 0);
    }
}

/* Draw the progress: in place on a terminal, a plain line otherwise. */
static void draw(dd_pipeline_replay_t *rp, int force) {
    dd_progress_t pg = {rp->parts, rp->nparts, dd_now_ms() - rp->start_ms};
    int64_t now = dd_now_ms();
    char line[DD_REPLAY_LINE_MAX];

    if (!force && now - rp->last_draw_ms <
                      (rp->tty ? DD_REPLAY_TTY_MS : DD_REPLAY_PLAIN_MS))
        return;
    rp->last_draw_ms = now;
    if (!rp->tty) {
        size_t n = dd_progress_format_plain(&pg, line, sizeof(line) - 1);
        if (n > sizeof(line) - 2)
            n = sizeof(line) - 2;
        line[n++] = '\n';
        dd_log_write_raw(line, n);
        return;
    }
    {
        size_t cap = (size_t)(DD_REPLAY_TTY_ROWS + 3) * DD_REPLAY_LINE_MAX;
        char *buf = dd_xmalloc(cap);
        size_t len = 0, shown = 0;
        int rows = 0;

        /* Move up over the last draw, unless log lines came since. */
        if (rp->drawn_rows > 0 && dd_log_lines() == rp->drawn_log_lines)
            len += (size_t)snprintf(buf + len, cap - len, "\033[%dA",
                                    rp->drawn_rows);
        dd_progress_format_line(&pg, line, sizeof(line));
        len += (size_t)snprintf(buf + len, cap - len, "\r\033[K%s\n", line);
        rows++;
        for (size_t i = 0; i < rp->nparts && shown < DD_REPLAY_TTY_ROWS; i++) {
            /* Many partitions: show the unfinished ones first. */
            if (rp->nparts > DD_REPLAY_TTY_ROWS &&
                rp->parts[i].done >= rp->parts[i].total)
                continue;
            dd_progress_format_part(&rp->parts[i], line, sizeof(line));
            len += (size_t)snprintf(buf + len, cap - len, "\r\033[K%s\n", line);
            rows++;
            shown++;
        }
        if (shown < rp->nparts) {
            len += (size_t)snprintf(buf + len, cap - len,
                                    "\r\033[K  ... %zu more partition(s)\n",
                                    rp->nparts - shown);
            rows++;
        }
        /* The display changes height as partitions finish: clear below. */
        len += (size_t)snprintf(buf + len, cap - len, "\033[J");
        dd_log_write_raw(buf, len < cap ? len : cap - 1);
        dd_free(buf);
        rp->drawn_rows = rows;
        rp->drawn_log_lines = dd_log_lines();
    }
}

int dd_pipeline_replay_wait(dd_pipeline_replay_t *rp, const dd_consumer_t *cons,
                            const dd_offsets_t *ot) {
    for (;;) {
        int sig;

        sample(rp, cons, ot);
        /* Finished first, then pending: a partition counts as finished only
         * after its last dispatch was registered in the tracker. */
        if (dd_consumer_replay_finished(cons) &&
            dd_offsets_pending_total(ot) == 0) {
            sample(rp, cons, ot);
            rp->complete = 1;
            draw(rp, 1);
            return 0;
        }
        draw(rp, 0);
        if (dd_stop_wait(DD_REPLAY_TICK_MS)) {
            /* A signal, or a fatal error (stop.h): interrupted. */
            sample(rp, cons, ot);
            draw(rp, 1);
            sig = dd_stop_signal();
            return sig > 0 ? sig : SIGTERM;
        }
    }
}

int dd_pipeline_replay_finish(dd_pipeline_replay_t *rp, int delivered_all) {
    dd_progress_summary_t s;
    char kv[512];
    char *text;

    memset(&s, 0, sizeof(s));
    s.dry_run = rp->cfg->dry_run;
    s.complete = rp->complete && delivered_all;
    s.topic = rp->cfg->topic;
    s.result_topic = rp->cfg->result_topic;
    s.partitions = rp->nparts;
    s.partitions_finished = rp->finished;
    s.offsets = rp->offsets;
    s.messages = atomic_load(&rp->messages);
    s.assigned = atomic_load(&rp->assigned);
    s.rejected = atomic_load(&rp->rejected);
    for (int i = 0; i < DD_PROGRESS_REASONS; i++)
        s.rejected_by[i] = atomic_load(&rp->rejected_by[i]);
    s.expired = atomic_load(&rp->expired);
    s.dead_letter = atomic_load(&rp->dead_letter);
    s.from_ledger = atomic_load(&rp->from_ledger);
    s.elapsed_ms = dd_now_ms() - rp->start_ms;
    dd_progress_format_kv(&s, kv, sizeof(kv));
    DD_LOG(s.complete ? DD_LOG_INFO : DD_LOG_WARN, "pipeline", "replay_summary",
           "%s", kv);
    text = dd_progress_format_summary(&s);
    fputs(text, stdout);
    fflush(stdout);
    dd_free(text);
    return s.complete ? 0 : DD_ERR;
}
