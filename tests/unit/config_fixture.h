/* SPDX-License-Identifier: MIT */
/*
 * config_fixture: what the config unit tests (test_config.c,
 * test_config_print.c) share: load a configuration from a given
 * environment and argv, and check the outcome. Header-only (static inline)
 * because each unit test is one program linked from its own modules.
 */
#ifndef DD_TEST_CONFIG_FIXTURE_H
#define DD_TEST_CONFIG_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

#define MAX_ARGS 64

typedef struct result {
    dd_config_t cfg;
    int rc;
    int code;
    char err[512];
} result_t;

/* Load with env (NULL-terminated array of "NAME=value", may be NULL for an
 * empty environment) and the flags that follow, NULL-terminated. argv and
 * envp are heap copies, as the loader may keep no pointer into them. */
static inline void load(result_t *r, const char *const *env, ...) {
    char *argv[MAX_ARGS];
    char *envp[MAX_ARGS];
    int argc = 0, envc = 0;
    const char *a;
    va_list ap;

    argv[argc++] = dd_xstrdup("dispatchd");
    va_start(ap, env);
    while ((a = va_arg(ap, const char *)) != NULL) {
        assert_true(argc < MAX_ARGS - 1);
        argv[argc++] = dd_xstrdup(a);
    }
    va_end(ap);
    argv[argc] = NULL;
    for (; env != NULL && env[envc] != NULL; envc++)
        envp[envc] = dd_xstrdup(env[envc]);
    envp[envc] = NULL;

    memset(r, 0, sizeof(*r));
    r->code = -1;
    r->rc = dd_config_load(&r->cfg, argc, argv, envp, r->err, sizeof(r->err),
                           &r->code);
    for (int i = 0; i < argc; i++)
        dd_free(argv[i]);
    for (int i = 0; i < envc; i++)
        dd_free(envp[i]);
    /* Nothing may point into argv or envp once they are gone. */
    if (r->rc == DD_OK && r->cfg.action == DD_CONFIG_ACTION_RUN)
        assert_non_null(r->cfg.brokers);
}

static inline void expect_ok(result_t *r) {
    if (r->rc != DD_OK)
        fail_msg("unexpected error %d: %s", r->code, r->err);
    assert_int_equal(r->code, 0);
}

/* Fails with code, one line that contains every needle. */
static inline void expect_err(result_t *r, int code, const char *needle,
                              const char *needle2) {
    if (r->rc == DD_OK)
        fail_msg("expected error %d (%s), got success", code, needle);
    assert_int_equal(r->rc, DD_ERR);
    if (r->code != code)
        fail_msg("expected exit %d, got %d: %s", code, r->code, r->err);
    assert_null(strchr(r->err, '\n'));
    if (strstr(r->err, needle) == NULL)
        fail_msg("'%s' not in error '%s'", needle, r->err);
    if (needle2 != NULL && strstr(r->err, needle2) == NULL)
        fail_msg("'%s' not in error '%s'", needle2, r->err);
    /* The loader released everything; closing again is harmless. */
    assert_null(r->cfg.brokers);
    dd_config_close(&r->cfg);
}

static inline void done(result_t *r) {
    dd_config_close(&r->cfg);
}

/* dd_config_dump() into a heap string (free() it). */
static inline char *dump(const dd_config_t *cfg) {
    char *buf = NULL;
    size_t size = 0;
    FILE *fp = open_memstream(&buf, &size);

    assert_non_null(fp);
    dd_config_dump(cfg, fp);
    fclose(fp);
    return buf;
}

#endif /* DD_TEST_CONFIG_FIXTURE_H */
