/* SPDX-License-Identifier: MIT */
/*
 * util: checked allocation, clocks, bounded strings, UTF-8, panic. Leaf module:
 * it includes nothing of the project but its own header.
 */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static dd_allocator_t allocator = {malloc, calloc, realloc, free};

void dd_panic_at(const char *file, int line, const char *fmt, ...) {
    char buf[1024];
    int n;
    va_list ap;

    n = snprintf(buf, sizeof(buf), "dispatchd: panic at %s:%d: ", file, line);
    if (n < 0 || (size_t)n >= sizeof(buf))
        n = 0;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    n = (int)strlen(buf);
    if ((size_t)n < sizeof(buf) - 1)
        buf[n++] = '\n';
    /* One write so the line is not interleaved with other threads' logs. */
    if (write(STDERR_FILENO, buf, (size_t)n) < 0) {
        /* Nothing more can be done: we abort next. */
    }
    abort();
}

void dd_set_allocator(const dd_allocator_t *a) {
    if (a == NULL) {
        allocator.malloc_fn = malloc;
        allocator.calloc_fn = calloc;
        allocator.realloc_fn = realloc;
        allocator.free_fn = free;
        return;
    }
    allocator = *a;
}

void *dd_xmalloc(size_t size) {
    void *p = allocator.malloc_fn(size ? size : 1);
    if (p == NULL)
        dd_panic("out of memory allocating %zu bytes", size);
    return p;
}

void *dd_xcalloc(size_t n, size_t size) {
    void *p = allocator.calloc_fn(n ? n : 1, size ? size : 1);
    if (p == NULL)
        dd_panic("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *dd_xrealloc(void *ptr, size_t size) {
    void *p = allocator.realloc_fn(ptr, size ? size : 1);
    if (p == NULL)
        dd_panic("out of memory reallocating %zu bytes", size);
    return p;
}

char *dd_xstrdup(const char *s) {
    return dd_xstrndup(s, strlen(s));
}

char *dd_xstrndup(const char *s, size_t n) {
    size_t len = strnlen(s, n);
    char *p = dd_xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void dd_free(void *ptr) {
    if (ptr != NULL)
        allocator.free_fn(ptr);
}

int64_t dd_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t dd_now_ms(void) {
    return dd_now_us() / 1000;
}

int64_t dd_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *dd_format_iso8601(int64_t wall_ms, char *buf, size_t size) {
    time_t secs = (time_t)(wall_ms / 1000);
    int ms = (int)(wall_ms % 1000);
    struct tm tm;

    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    gmtime_r(&secs, &tm);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, ms);
    return buf;
}

size_t dd_strlcpy(char *dst, const char *src, size_t size) {
    size_t len = strlen(src);
    if (size > 0) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

void dd_set_error(char *errstr, size_t errstr_size, const char *fmt, ...) {
    va_list ap;
    if (errstr == NULL || errstr_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

size_t dd_utf8_seq_len(const unsigned char *s, size_t avail) {
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
    size_t n;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0; /* overlong */
    else if (c == 0xED)
        hi = 0x9F; /* surrogates */
    else if (c == 0xF0)
        lo = 0x90; /* overlong */
    else if (c == 0xF4)
        hi = 0x8F; /* above U+10FFFF */
    if (avail < 2 || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (avail <= i || s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    }
    return n;
}

size_t dd_utf8_invalid_at(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        size_t n = dd_utf8_seq_len(u + i, len - i);

        if (n == 0)
            return i;
        i += n;
    }
    return len;
}
