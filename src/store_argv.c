/* SPDX-License-Identifier: MIT */
/*
 * store_argv: the argv builder of the Redis adapter. Its one job is to
 * collect the arguments of one command for dd_store_conn_append_argv():
 * values are borrowed from the caller, keys (prefix + kind + id) are built
 * in owned buffers that the reset frees once the command is appended.
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
