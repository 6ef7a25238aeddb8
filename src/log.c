/* SPDX-License-Identifier: MIT */
/*
 * log: structured log lines (see include/log.h for the line format and the
 * escaping rules).
 *
 * DESIGN: the level, format and fd are atomics, so any thread may log while
 * another changes them. A line is built entirely in a stack buffer of
 * DD_LOG_MAX bytes (no allocation, no shared state) and written with one
 * write(2). The only lock, write_lock, is a leaf (row 6 of "Lock order" in
 * pipeline_int.h; the Redis state lock, row 8, logs under it): it is held
 * around that write (and the retries of a partial write) and nothing else,
 * so lines can never interleave even if the kernel writes part of one.
 */
#include "log.h"

#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Room kept free at the end of the buffer for the closing of a truncated
 * line: "\",\"truncated\":true}\n" (JSON) or the text position suffix. */
#define TAIL_RESERVE 24

static atomic_int log_level = DD_LOG_INFO;
static atomic_int log_format = DD_LOG_FORMAT_JSON;
static atomic_int log_fd = STDERR_FILENO;

static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_ullong lines_written; /* log lines written (dd_log_lines) */

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_text[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

/* A bounded line under construction. Appends that do not fit below limit
 * set truncated and are dropped whole, so an escape sequence or a UTF-8
 * sequence is never cut; in_str says whether a JSON string is open. */
typedef struct line {
    char *buf;
    size_t len;
    size_t limit; /* bytes usable before the tail reserve */
    int truncated;
    int in_str;
} line_t;

int dd_log_init(dd_log_level_t level, dd_log_format_t fmt) {
    if ((int)level < DD_LOG_DEBUG || (int)level > DD_LOG_ERROR)
        return DD_ERR;
    if ((int)fmt != DD_LOG_FORMAT_JSON && (int)fmt != DD_LOG_FORMAT_TEXT)
        return DD_ERR;
    atomic_store(&log_level, (int)level);
    atomic_store(&log_format, (int)fmt);
    return DD_OK;
}

void dd_log_set_fd(int fd) {
    atomic_store(&log_fd, fd);
}

int dd_log_level_parse(const char *s, dd_log_level_t *level) {
    for (int i = 0; i <= DD_LOG_ERROR; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *level = (dd_log_level_t)i;
            return DD_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *level = DD_LOG_WARN;
        return DD_OK;
    }
    return DD_ERR;
}

int dd_log_format_parse(const char *s, dd_log_format_t *fmt) {
    if (strcasecmp(s, "json") == 0)
        *fmt = DD_LOG_FORMAT_JSON;
    else if (strcasecmp(s, "text") == 0)
        *fmt = DD_LOG_FORMAT_TEXT;
    else
        return DD_ERR;
    return DD_OK;
}

const char *dd_log_level_name(dd_log_level_t level) {
    if ((int)level < DD_LOG_DEBUG || (int)level > DD_LOG_ERROR)
        return "?";
    return level_names[level];
}

int dd_log_enabled(dd_log_level_t level) {
    return (int)level >=
               atomic_load_explicit(&log_level, memory_order_relaxed) &&
           (int)level <= DD_LOG_ERROR;
}

/* Append n bytes as one unit, or mark the line truncated. */
static void put_n(line_t *l, const char *s, size_t n) {
    if (l->truncated)
        return;
    if (l->len + n > l->limit) {
        l->truncated = 1;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put(line_t *l, const char *s) {
    put_n(l, s, strlen(s));
}

/* printf-style append of a short piece (keys, numbers) as one unit. */
static void __attribute__((format(printf, 2, 3)))
putf(line_t *l, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        l->truncated = 1;
        return;
    }
    put_n(l, tmp, (size_t)n);
}

/* Append s escaped for a JSON string (json = 1) or a text line (json = 0). */
static void put_escaped(line_t *l, const char *str, int json) {
    const unsigned char *s = (const unsigned char *)str;
    char esc[8];

    while (*s != '\0' && !l->truncated) {
        unsigned char c = *s;
        size_t n;

        if (c >= 0x80) {
            n = dd_utf8_seq_len(s, strnlen((const char *)s, 4));
            if (n > 0) {
                put_n(l, (const char *)s, n);
                s += n;
            } else {
                put(l, json ? "\\ufffd" : "\xEF\xBF\xBD");
                s++;
            }
            continue;
        }
        s++;
        if (c == '\n')
            put(l, "\\n");
        else if (c == '\t')
            put(l, "\\t");
        else if (c == '\r')
            put(l, "\\r");
        else if (json && c == '"')
            put(l, "\\\"");
        else if (json && c == '\\')
            put(l, "\\\\");
        else if (json && c == '\b')
            put(l, "\\b");
        else if (json && c == '\f')
            put(l, "\\f");
        else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof(esc), json ? "\\u%04x" : "\\x%02x", c);
            put(l, esc);
        } else
            put_n(l, (const char *)&c, 1);
    }
}

/* Append ,"key":"<escaped value>" to a JSON line. */
static void put_json_field(line_t *l, const char *key, const char *value) {
    putf(l, ",\"%s\":\"", key);
    if (l->truncated)
        return;
    l->in_str = 1;
    put_escaped(l, value, 1);
    if (!l->truncated) {
        put(l, "\"");
        l->in_str = 0;
    }
}

static void build_json(line_t *l, const char *ts, dd_log_level_t level,
                       const char *module, const char *event,
                       const char *thread, const char *topic, int32_t partition,
                       int64_t offset, const char *msg) {
    putf(l, "{\"ts\":\"%s\",\"level\":\"%s\"", ts, level_names[level]);
    put_json_field(l, "module", module);
    put_json_field(l, "thread", thread);
    put_json_field(l, "event", event);
    if (topic != NULL) {
        put_json_field(l, "topic", topic);
        if (partition != DD_LOG_NO_PARTITION)
            putf(l, ",\"partition\":%d", (int)partition);
        if (offset != DD_LOG_NO_OFFSET)
            putf(l, ",\"offset\":%lld", (long long)offset);
    }
    put_json_field(l, "msg", msg);
    /* The limit keeps TAIL_RESERVE bytes free for exactly this. */
    l->limit = DD_LOG_MAX;
    if (l->truncated) {
        l->truncated = 0;
        if (l->in_str)
            put(l, "\"");
        put(l, ",\"truncated\":true");
    }
    put(l, "}\n");
}

static void build_text(line_t *l, const char *ts, dd_log_level_t level,
                       const char *module, const char *event, const char *topic,
                       int32_t partition, int64_t offset, const char *msg) {
    char pos[DD_LOG_MAX / 4];
    line_t p = {pos, 0, sizeof(pos) - 1, 0, 0};
    int truncated;

    /* The position goes at the end but must survive truncation of the
     * message, so it is built first and its room kept free. */
    if (topic != NULL) {
        put(&p, " (");
        put_escaped(&p, topic, 0);
        if (partition != DD_LOG_NO_PARTITION)
            putf(&p, "/%d", (int)partition);
        if (offset != DD_LOG_NO_OFFSET)
            putf(&p, "@%lld", (long long)offset);
        put(&p, ")");
    }
    l->limit -= p.len;

    putf(l, "%s %s ", ts, level_text[level]);
    put_escaped(l, module, 0);
    put(l, " ");
    put_escaped(l, event, 0);
    put(l, ": ");
    put_escaped(l, msg, 0);
    truncated = l->truncated;
    l->truncated = 0;
    l->limit = DD_LOG_MAX;
    put_n(l, pos, p.len);
    if (truncated)
        put(l, " [truncated]");
    put(l, "\n");
}

static void write_line(const char *buf, size_t len) {
    atomic_fetch_add(&lines_written, 1);
    dd_log_write_raw(buf, len);
}

uint64_t dd_log_lines(void) {
    return atomic_load(&lines_written);
}

void dd_log_write_raw(const char *buf, size_t len) {
    int fd = atomic_load(&log_fd);

    pthread_mutex_lock(&write_lock);
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break; /* Nowhere to report a failing log write. */
        }
        buf += n;
        len -= (size_t)n;
    }
    pthread_mutex_unlock(&write_lock);
}

static void vlog(dd_log_level_t level, const char *module, const char *event,
                 const char *topic, int32_t partition, int64_t offset,
                 const char *fmt, va_list ap) {
    char buf[DD_LOG_MAX];
    char msg[DD_LOG_MAX];
    char ts[32];
    char thread[16];
    line_t l = {buf, 0, DD_LOG_MAX - TAIL_RESERVE, 0, 0};
    int n;

    if (!dd_log_enabled(level))
        return;
    /* A message cut here is always cut again, and marked, by the builder:
     * msg holds more than the line has room for. */
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0)
        dd_strlcpy(msg, "(log format error)", sizeof(msg));
    dd_format_iso8601(dd_wall_ms(), ts, sizeof(ts));
    if (pthread_getname_np(pthread_self(), thread, sizeof(thread)) != 0)
        dd_strlcpy(thread, "?", sizeof(thread));
    if (module == NULL)
        module = "";
    if (event == NULL)
        event = "";

    if (atomic_load(&log_format) == DD_LOG_FORMAT_TEXT)
        build_text(&l, ts, level, module, event, topic, partition, offset, msg);
    else
        build_json(&l, ts, level, module, event, thread, topic, partition,
                   offset, msg);
    write_line(buf, l.len);
}

void dd_log_write(dd_log_level_t level, const char *module, const char *event,
                  const char *topic, int32_t partition, int64_t offset,
                  const char *fmt, ...) {
    va_list ap;

    va_start(ap, fmt);
    vlog(level, module, event, topic, partition, offset, fmt, ap);
    va_end(ap);
}

void dd_log_rdkafka(int syslog_level, const char *fac, const char *msg) {
    dd_log_level_t level;

    if (syslog_level <= 3)
        level = DD_LOG_ERROR;
    else if (syslog_level == 4)
        level = DD_LOG_WARN;
    else if (syslog_level <= 6)
        level = DD_LOG_INFO;
    else
        level = DD_LOG_DEBUG;
    if (fac == NULL || *fac == '\0')
        fac = "log";
    dd_log_write(level, "rdkafka", fac, NULL, DD_LOG_NO_PARTITION,
                 DD_LOG_NO_OFFSET, "%s", msg != NULL ? msg : "");
}

int dd_log_ratelimit_allow(dd_log_ratelimit_t *rl, uint64_t *suppressed) {
    int64_t now = dd_now_ms();
    int64_t next = atomic_load(&rl->next_ms);

    if (now < next || !atomic_compare_exchange_strong(&rl->next_ms, &next,
                                                      now + rl->interval_ms)) {
        atomic_fetch_add(&rl->suppressed, 1);
        return 0;
    }
    *suppressed = atomic_exchange(&rl->suppressed, 0);
    return 1;
}
