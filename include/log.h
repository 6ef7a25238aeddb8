/* SPDX-License-Identifier: MIT */
/*
 * log: structured log lines. Every line is one JSON object on stderr (or, for
 * people, one text line), built in a fixed stack buffer and written with a
 * single write(2), so lines from concurrent threads never interleave. Also
 * the bridge for librdkafka's log_cb (dd_log_rdkafka()).
 *
 * JSON line fields: ts (UTC ISO-8601 with ms), level, module, thread
 * (pthread_getname_np), event (stable snake_case id), then topic, partition
 * and offset when given, then msg last, so a truncated line keeps every
 * field but the end of msg. A line longer than DD_LOG_MAX is cut and gets
 * "truncated":true (text format: " [truncated]").
 *
 * Escaping: '"', '\\' and control characters (U+0000..U+001F, U+007F) are
 * escaped (\n, \t, \u0001, ...); valid UTF-8 is written as is; every byte
 * that is not part of a well-formed UTF-8 sequence (stray continuation
 * bytes, overlong forms, surrogates, > U+10FFFF, cut sequences) is replaced
 * by U+FFFD, written as the escape \ufffd. A replacement rather than
 * \u00XX, because \u00XX would silently decode to a different, valid
 * Latin-1 character. The text format writes control characters as \n, \t
 * or \xNN and invalid bytes as a raw U+FFFD.
 */
#ifndef DD_LOG_H
#define DD_LOG_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

/** Maximum length of one log line, newline included. */
#define DD_LOG_MAX 4096

/** Pass as partition / offset when not known. */
#define DD_LOG_NO_PARTITION INT32_MIN
#define DD_LOG_NO_OFFSET    INT64_MIN

typedef enum dd_log_level {
    DD_LOG_DEBUG = 0,
    DD_LOG_INFO = 1,
    DD_LOG_WARN = 2,
    DD_LOG_ERROR = 3,
} dd_log_level_t;

typedef enum dd_log_format {
    DD_LOG_FORMAT_JSON = 0,
    DD_LOG_FORMAT_TEXT = 1,
} dd_log_format_t;

/*----- Macros -----*/

/**
 * @brief Log one line if level is enabled. The arguments (module, event,
 *        topic, partition, offset, format arguments) are evaluated only when
 *        the level is enabled; level is evaluated once.
 * @locality any thread
 */
#define DD_LOG_TPO(level, module, event, topic, partition, offset, ...)        \
    do {                                                                       \
        const dd_log_level_t dd_log_lvl_ = (level);                            \
        if (dd_log_enabled(dd_log_lvl_))                                       \
            dd_log_write(dd_log_lvl_, (module), (event), (topic), (partition), \
                         (offset), __VA_ARGS__);                               \
    } while (0)

/** @brief DD_LOG_TPO without an offset. */
#define DD_LOG_TP(level, module, event, topic, partition, ...)                 \
    DD_LOG_TPO(level, module, event, topic, partition, DD_LOG_NO_OFFSET,       \
               __VA_ARGS__)

/** @brief DD_LOG_TPO without Kafka position fields. Usage:
 *  DD_LOG(DD_LOG_INFO, "pool", "worker_started", "worker %d", i); */
#define DD_LOG(level, module, event, ...)                                      \
    DD_LOG_TPO(level, module, event, NULL, DD_LOG_NO_PARTITION,                \
               DD_LOG_NO_OFFSET, __VA_ARGS__)

/*----- Lifecycle -----*/

/**
 * @brief Set the minimum level and the output format. Before the first call
 *        the level is info, the format JSON and the output fd 2.
 * @returns DD_OK, or DD_ERR if level or fmt is out of range (nothing set).
 * @locality any thread; normally main, before other threads start
 */
int dd_log_init(dd_log_level_t level, dd_log_format_t fmt);

/**
 * @brief Send log lines to fd instead of stderr (tests use a pipe or file).
 * @param fd borrowed; the caller keeps it open while logging goes there.
 * @locality any thread
 */
void dd_log_set_fd(int fd);

/*----- Parsing and names -----*/

/**
 * @brief Parse "debug", "info", "warn" (or "warning") or "error",
 *        case-insensitively.
 * @returns DD_OK with *level set, or DD_ERR.
 */
int dd_log_level_parse(const char *s, dd_log_level_t *level);

/** @brief Parse "json" or "text". @returns DD_OK or DD_ERR. */
int dd_log_format_parse(const char *s, dd_log_format_t *fmt);

/** @brief "debug", "info", "warn" or "error" ("?" if out of range). */
const char *dd_log_level_name(dd_log_level_t level);

/*----- Writing -----*/

/**
 * @brief 1 if a line at this level would be written, else 0.
 * @locality any thread
 */
int dd_log_enabled(dd_log_level_t level);

/**
 * @brief Format and write one line (the DD_LOG* macros call this).
 * @param module, event borrowed; event is a stable snake_case id.
 * @param topic borrowed, optional (NULL: no topic/partition/offset fields).
 * @param partition DD_LOG_NO_PARTITION to leave it out.
 * @param offset DD_LOG_NO_OFFSET to leave it out.
 * @locality any thread
 * @remark Checks the level again; one write(2) per line, serialised by an
 *         internal leaf lock so that partial writes cannot interleave.
 */
void dd_log_write(dd_log_level_t level, const char *module, const char *event,
                  const char *topic, int32_t partition, int64_t offset,
                  const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/**
 * @brief Bridge for librdkafka's log_cb: syslog levels 0-3 -> error,
 *        4 -> warn, 5-6 -> info, 7 -> debug; module "rdkafka", event = fac.
 * @param fac, msg borrowed (fac NULL or "" gives event "log").
 * @locality any thread (librdkafka calls log_cb from internal threads)
 */
void dd_log_rdkafka(int syslog_level, const char *fac, const char *msg);

/**
 * @brief Write bytes that are not a log line (the replay progress display)
 *        to the log's fd, under the same lock, so they never interleave
 *        with a line. Not counted by dd_log_lines().
 * @locality any thread
 */
void dd_log_write_raw(const char *buf, size_t len);

/**
 * @brief Log lines written so far. A display redrawn in place compares it
 *        between two draws: a change means log output came in between, so
 *        it draws below instead of over it.
 * @locality any thread
 */
uint64_t dd_log_lines(void);

/*----- Rate limiting -----*/

/**
 * One rate limit per repeated event (e.g. a warning per job during an
 * outage): at most one line per interval, the others counted. Define it
 * static with DD_LOG_RATELIMIT_INIT(interval_ms); no destroy needed.
 */
typedef struct dd_log_ratelimit {
    _Atomic int64_t next_ms;     /* dd_now_ms() from which a line may go */
    _Atomic uint64_t suppressed; /* lines held back since the last one */
    int64_t interval_ms;         /* at most one line per interval */
} dd_log_ratelimit_t;

/** @brief Static initialiser of a dd_log_ratelimit_t. */
#define DD_LOG_RATELIMIT_INIT(interval_ms)                                     \
    { 0, 0, (interval_ms) }

/**
 * @brief Decide whether a rate-limited line may be written now.
 * @param rl borrowed; shared by every writer of the event.
 * @param suppressed out: when allowed, the number of lines held back since
 *        the previous allowed one (to append to this line); else untouched.
 * @returns 1: write the line; 0: count it as suppressed and skip it.
 * @locality any thread
 * @locks_required none (lock-free)
 * @remark Exactly one caller per interval gets 1.
 */
int dd_log_ratelimit_allow(dd_log_ratelimit_t *rl, uint64_t *suppressed);

#endif /* DD_LOG_H */
