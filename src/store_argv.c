/* SPDX-License-Identifier: MIT */
/*
 * store_argv: the argv builder of the Redis adapter. Its one job is to
 * collect the arguments of one command for dd_store_conn_append_argv():
 * values are borrowed from the caller, keys (prefix + kind + id) are built
 * in owned buffers that the reset frees once the command is appended; and
 * to write such a command in RESP (dd_store_resp_format()). The RESP writer
 * is ours rather than hiredis's redisFormatCommandArgv() because the latter
 * grows an sds string piece by piece, a measured part of the worker's CPU;
 * tests/unit/test_store_argv.c checks it byte for byte against hiredis.
 */
#include "store_int.h"

#include <string.h>

#include "util.h"

void dd_store_argv_init(dd_store_argv_t *a, int cap) {
    a->argv = dd_xcalloc((size_t)cap, sizeof(*a->argv));
    a->argvlen = dd_xcalloc((size_t)cap, sizeof(*a->argvlen));
    a->owned = dd_xcalloc((size_t)cap, sizeof(*a->owned));
    a->argc = 0;
    a->cap = cap;
}

void dd_store_argv_reset(dd_store_argv_t *a) {
    for (int i = 0; i < a->argc; i++) {
        dd_free(a->owned[i]);
        a->owned[i] = NULL;
    }
    a->argc = 0;
}

void dd_store_argv_close(dd_store_argv_t *a) {
    dd_store_argv_reset(a);
    dd_free(a->argv);
    dd_free(a->argvlen);
    dd_free(a->owned);
}

void dd_store_argv_add(dd_store_argv_t *a, const char *s, size_t len) {
    dd_assert(a->argc < a->cap);
    a->argv[a->argc] = s;
    a->argvlen[a->argc] = len;
    a->argc++;
}

void dd_store_argv_add_str(dd_store_argv_t *a, const char *s) {
    dd_store_argv_add(a, s, strlen(s));
}

void dd_store_argv_add_key(dd_store_argv_t *a, const char *prefix,
                           const char *kind, const char *id) {
    size_t lp = strlen(prefix), lk = strlen(kind), li = strlen(id);
    char *k = dd_xmalloc(lp + lk + li + 1);

    memcpy(k, prefix, lp);
    memcpy(k + lp, kind, lk);
    memcpy(k + lp + lk, id, li);
    k[lp + lk + li] = '\0';
    dd_assert(a->argc < a->cap);
    a->owned[a->argc] = k;
    dd_store_argv_add(a, k, lp + lk + li);
}

/* "<c><v>\r\n" at p (v in decimal); returns the end. */
static char *resp_line_long(char *p, char c, size_t v) {
    char tmp[24];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    *p++ = c;
    while (n > 0)
        *p++ = tmp[--n];
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* The same; counts and lengths below 100 (nearly all of them) inline,
 * without the digit buffer. */
static inline char *resp_line(char *p, char c, size_t v) {
    if (v >= 100)
        return resp_line_long(p, c, v);
    *p++ = c;
    if (v >= 10)
        *p++ = (char)('0' + v / 10);
    *p++ = (char)('0' + v % 10);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

size_t dd_store_resp_format(char *buf, size_t size, int argc, const char **argv,
                            const size_t *argvlen) {
    /* A header line is at most 1 + 20 digits + CRLF = 23 bytes. */
    char *p = buf;

    if (size < 23)
        return 0;
    p = resp_line(p, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t used = (size_t)(p - buf);

        /* The header line, the bytes and their CRLF must fit; the first
         * test keeps the second from wrapping around. */
        if (used + 25 > size || argvlen[i] > size - used - 25)
            return 0;
        p = resp_line(p, '$', argvlen[i]);
        memcpy(p, argv[i], argvlen[i]);
        p += argvlen[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    return (size_t)(p - buf);
}
