/* SPDX-License-Identifier: MIT */
/*
 * util: process-wide leaf helpers. Checked allocation that aborts on
 * failure (with a replaceable allocator so tests can inject failures), the
 * monotonic and wall clocks, bounded string copy, UTF-8 validation, and
 * the invariant macros.
 */
#ifndef DD_UTIL_H
#define DD_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define DD_OK  0
#define DD_ERR -1

#define DD_VERSION "0.1.0"

/*----- Invariants -----*/

/**
 * @brief Log file:line and the message to stderr, then abort().
 * @locality any thread
 * @remark For broken invariants only, never for bad input.
 */
void dd_panic_at(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

#define dd_panic(...) dd_panic_at(__FILE__, __LINE__, __VA_ARGS__)
#define dd_assert(expr)                                                        \
    do {                                                                       \
        if (!(expr))                                                           \
            dd_panic_at(__FILE__, __LINE__, "assertion failed: %s", #expr);    \
    } while (0)

/*----- Allocation -----*/

/**
 * @brief Allocator hooks. NULL restores the libc default.
 * @locality any thread, but set before other threads start
 */
typedef struct dd_allocator {
    void *(*malloc_fn)(size_t size);
    void *(*calloc_fn)(size_t n, size_t size);
    void *(*realloc_fn)(void *ptr, size_t size);
    void (*free_fn)(void *ptr);
} dd_allocator_t;

void dd_set_allocator(const dd_allocator_t *a);

/**
 * @brief malloc/calloc/realloc/strdup that abort with a log line on failure.
 * @returns owned memory, never NULL
 * @locality any thread
 */
void *dd_xmalloc(size_t size);
void *dd_xcalloc(size_t n, size_t size);
void *dd_xrealloc(void *ptr, size_t size);
char *dd_xstrdup(const char *s);
char *dd_xstrndup(const char *s, size_t n);
/** @brief Free memory from the dd_x* family. NULL is allowed. */
void dd_free(void *ptr);

/*----- Clocks and strings -----*/

/** @brief Monotonic clock in microseconds. @locality any thread */
int64_t dd_now_us(void);
/** @brief Monotonic clock in milliseconds. @locality any thread */
int64_t dd_now_ms(void);
/** @brief Wall clock, milliseconds since the Unix epoch. */
int64_t dd_wall_ms(void);

/**
 * @brief Format a wall-clock time in ms as ISO-8601 UTC with milliseconds,
 *        e.g. 2026-11-27T20:00:00.042Z, into buf (at least 25 bytes).
 * @returns buf
 */
char *dd_format_iso8601(int64_t wall_ms, char *buf, size_t size);

/**
 * @brief Copy src into dst, truncating; dst is always NUL-terminated when
 *        size > 0.
 * @returns the length of src (truncation happened when >= size)
 */
size_t dd_strlcpy(char *dst, const char *src, size_t size);

/** @brief printf-style message into errstr (optional, may be NULL). */
void dd_set_error(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*----- UTF-8 -----*/

/**
 * @brief Length of the well-formed UTF-8 sequence at s (RFC 3629, Unicode
 *        table 3-7: no overlong forms, no surrogates, nothing above
 *        U+10FFFF): 1 for an ASCII byte (NUL included), 2 to 4 for a
 *        multi-byte sequence, 0 when s does not start one.
 * @param s (borrowed) at least avail readable bytes, avail >= 1
 * @param avail bytes that may be read from s
 * @returns 0 to 4
 * @locality any thread
 * @remark Bytes are read in order and reading stops at the first one that
 *         is not a valid continuation, so on a NUL-terminated string it
 *         never reads past the NUL whatever avail is.
 */
size_t dd_utf8_seq_len(const unsigned char *s, size_t avail);

/**
 * @brief Offset of the first byte of s that does not start a well-formed
 *        UTF-8 sequence (see dd_utf8_seq_len()), or len when all of s is
 *        UTF-8. This is the set Python's strict UTF-8 decoder accepts.
 * @param s (borrowed) len bytes, NUL bytes allowed
 * @returns an offset in [0, len]
 * @locality any thread
 */
size_t dd_utf8_invalid_at(const char *s, size_t len);

#endif /* DD_UTIL_H */
