/* SPDX-License-Identifier: MIT */
/*
 * progress: the text of replay mode's progress display and final summary.
 * Pure functions over plain numbers (no I/O, no clock, no Kafka types): the
 * pipeline samples the consumer and the offset tracker, fills these
 * structs and writes the text where it belongs.
 *
 * Units: progress counts offsets, not messages. A partition's total is
 * end - start of its replay range and its done count the tracker's done
 * prefix (watermark - start), so both grow in the same unit even though
 * offsets are not dense; a finished partition counts as its total.
 */
#ifndef DD_PROGRESS_H
#define DD_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

/** One partition's progress. */
typedef struct dd_progress_part {
    int32_t partition;
    int64_t done;  /* offsets processed, 0..total */
    int64_t total; /* offsets in range */
} dd_progress_part_t;

/** A progress sample. */
typedef struct dd_progress {
    const dd_progress_part_t *parts; /* borrowed, nparts entries */
    size_t nparts;
    int64_t elapsed_ms; /* since the replay started */
} dd_progress_t;

/** Rejection reasons counted separately in the summary, in this order. */
#define DD_PROGRESS_REASONS 6
/** @brief The rejected rows of DD_REASON_MAP (codec.h) in order:
 *         "unknown_courier", "unknown_parcel", "courier_unavailable",
 *         "no_candidate_available", "courier_data_invalid",
 *         "parcel_data_invalid" for 0..5; NULL otherwise. */
const char *dd_progress_reason_name(int i);
/** @brief Index of a reason wire string among the above, or -1. */
int dd_progress_reason_index(const char *reason);

/** What a replay did (or, dry run, would have done). */
typedef struct dd_progress_summary {
    int dry_run;
    int complete;             /* every partition reached its end, every
                               * answer delivered */
    const char *topic;        /* borrowed */
    const char *result_topic; /* borrowed */
    size_t partitions;
    size_t partitions_finished;
    int64_t offsets;   /* offsets in range */
    uint64_t messages; /* messages answered (delivered) */
    uint64_t assigned;
    uint64_t rejected;
    uint64_t rejected_by[DD_PROGRESS_REASONS];
    uint64_t expired;
    uint64_t dead_letter;
    uint64_t from_ledger; /* answered from result:{id}: duplicates */
    int64_t elapsed_ms;
} dd_progress_summary_t;

/*----- Numbers -----*/

/** @brief Sum of done and total over the parts (either may be NULL). */
void dd_progress_totals(const dd_progress_t *pg, int64_t *done, int64_t *total);

/** @brief Offsets per second since the start; 0 when unknown. */
double dd_progress_rate(int64_t done, int64_t elapsed_ms);

/**
 * @brief Seconds left at the given rate: 0 when done >= total, -1 when
 *        unknown (rate <= 0), else rounded up.
 */
int64_t dd_progress_eta_s(int64_t done, int64_t total, double rate);

/*----- Text -----*/

/**
 * @brief "1h02m03s", "4m05s", "7s"; "--" for a negative value.
 * @returns buf
 */
char *dd_progress_format_duration(int64_t secs, char *buf, size_t size);

/**
 * @brief The overall line, without a newline:
 *        "replay 1200/5000 offsets (24.0%), 300/s, ETA 13s, 2/4 partitions
 *        done, elapsed 4s".
 * @returns the length snprintf would have written (truncation >= size)
 */
size_t dd_progress_format_line(const dd_progress_t *pg, char *buf, size_t size);

/**
 * @brief One partition's line for the terminal, without a newline:
 *        "  p3      400/1000   40.0% [########............]".
 */
size_t dd_progress_format_part(const dd_progress_part_t *pp, char *buf,
                               size_t size);

/**
 * @brief The plain (non-terminal) line: the overall line, then
 *        " | p0 1000/1000 p1 200/1000 ..." (truncated with "...").
 */
size_t dd_progress_format_plain(const dd_progress_t *pg, char *buf,
                                size_t size);

/**
 * @brief The final summary: several lines, each ending with a newline.
 * @returns owned text (dd_free)
 */
char *dd_progress_format_summary(const dd_progress_summary_t *s);

/**
 * @brief The summary as "key=value" pairs on one line (the replay_summary
 *        log event): complete= dry_run= partitions=F/N offsets= messages=
 *        assigned= rejected= expired= dead_letter= from_ledger= elapsed_ms=
 */
size_t dd_progress_format_kv(const dd_progress_summary_t *s, char *buf,
                             size_t size);

#endif /* DD_PROGRESS_H */
