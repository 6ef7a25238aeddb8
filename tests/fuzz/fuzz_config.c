/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the option table: splits the input at NUL bytes
 * into words; a word "DISPATCHD_...=..." goes to the environment, any
 * other word to argv (after the program name), and dd_config_load() parses
 * them. It never reads the real environment, never prints and never exits,
 * so any input is fair. Checks what config.h promises: DD_OK with exit code
 * 0 and every value in its range, or DD_ERR with exit code 64 or 78, a
 * non-empty error line and nothing left to free; and --dump-config output
 * fed back as the environment gives the same dump. A broken promise aborts,
 * which libFuzzer reports as a crash. Run by `make fuzz`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "exit_codes.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_WORDS 64

static char prog[] = "dispatchd";

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            dd_panic("fuzz_config: check failed: %s", #cond);                  \
    } while (0)

static void check_loaded(const dd_config_t *cfg) {
    CHECK(cfg->brokers != NULL && cfg->brokers[0] != '\0');
    CHECK(cfg->topic != NULL && cfg->topic[0] != '\0');
    CHECK(cfg->group != NULL && cfg->group[0] != '\0');
    CHECK(cfg->result_topic != NULL && cfg->dlq_topic != NULL);
    CHECK(cfg->instance_id != NULL);
    CHECK(cfg->workers >= 1 && cfg->workers <= 256);
    CHECK(cfg->queue_capacity >= 1 && cfg->queue_capacity <= 1000000);
    CHECK(cfg->batch_size >= 1 && cfg->batch_size <= 1024);
    CHECK((cfg->redis.host != NULL) != (cfg->redis.unix_path != NULL));
    CHECK(cfg->redis.db >= 0);
    CHECK(cfg->redis_timeout_ms > 0);
    CHECK(!cfg->http.enabled || cfg->http.addr != NULL);
    CHECK(cfg->http.port >= 0 && cfg->http.port <= 65535);
    for (size_t i = 0; i < cfg->kafka_props_cnt; i++) {
        CHECK(cfg->kafka_props[i].key != NULL);
        CHECK(cfg->kafka_props[i].key[0] != '\0');
        CHECK(cfg->kafka_props[i].value != NULL);
    }
    CHECK(cfg->replay_to.kind == DD_REPLAY_END ||
          cfg->replay_to.kind == DD_REPLAY_TIMESTAMP);
    CHECK(!cfg->dry_run || cfg->replay_from.kind != DD_REPLAY_NONE);
}

/* The --dump-config text without its comment lines; owned. */
static char *dump(const dd_config_t *cfg) {
    char *text = NULL, *out;
    size_t len = 0, j = 0;
    FILE *fp = open_memstream(&text, &len);

    CHECK(fp != NULL);
    dd_config_dump(cfg, fp);
    CHECK(fclose(fp) == 0);
    out = dd_xmalloc(len + 1);
    for (char *line = text; *line != '\0';) {
        char *nl = strchr(line, '\n');
        size_t n = nl != NULL ? (size_t)(nl - line) + 1 : strlen(line);
        if (line[0] != '#') {
            memcpy(out + j, line, n);
            j += n;
        }
        line += n;
    }
    out[j] = '\0';
    free(text);
    return out;
}

/* Load the dump as the environment: the same dump must come out. */
static void check_dump_round_trip(const dd_config_t *cfg) {
    char *first = dump(cfg), *second, *copy = dd_xstrdup(first);
    char *envp[128], *argv[] = {prog, NULL};
    char errstr[512];
    size_t n = 0;
    int exit_code;
    dd_config_t again;

    for (char *line = strtok(copy, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
        CHECK(n + 1 < sizeof(envp) / sizeof(envp[0]));
        envp[n++] = line;
    }
    envp[n] = NULL;
    if (dd_config_load(&again, 1, argv, envp, errstr, sizeof(errstr),
                       &exit_code) != DD_OK)
        dd_panic("fuzz_config: the dump does not load back: %s", errstr);
    second = dump(&again);
    if (strcmp(first, second) != 0)
        dd_panic("fuzz_config: dump differs once loaded back:\n%s---\n%s",
                 first, second);
    dd_config_close(&again);
    dd_free(second);
    dd_free(copy);
    dd_free(first);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    char *argv[MAX_WORDS + 2], *envp[MAX_WORDS + 1];
    char errstr[512];
    int argc = 1, envc = 0, exit_code = -1, rc, newline;
    dd_config_t cfg;

    CHECK(buf != NULL);
    if (size > 0)
        memcpy(buf, data, size);
    buf[size] = '\0';
    newline = memchr(buf, '\n', size) != NULL;

    argv[0] = prog;
    for (size_t i = 0; i < size && argc + envc < MAX_WORDS;) {
        char *w = buf + i;
        size_t n = strlen(w);
        if (strncmp(w, "DISPATCHD_", 10) == 0 && strchr(w, '=') != NULL)
            envp[envc++] = w;
        else
            argv[argc++] = w;
        i += n + 1;
    }
    argv[argc] = NULL;
    envp[envc] = NULL;

    memset(errstr, 'x', sizeof(errstr));
    rc = dd_config_load(&cfg, argc, argv, envp, errstr, sizeof(errstr),
                        &exit_code);
    CHECK(memchr(errstr, '\0', sizeof(errstr)) != NULL);
    if (rc == DD_OK) {
        CHECK(exit_code == 0);
        CHECK(errstr[0] == '\0');
        if (cfg.action == DD_CONFIG_ACTION_RUN ||
            cfg.action == DD_CONFIG_ACTION_DUMP) {
            check_loaded(&cfg);
            /* A value with a newline cannot be one NAME=value line. */
            if (!newline)
                check_dump_round_trip(&cfg);
        }
    } else {
        CHECK(rc == DD_ERR);
        CHECK(exit_code == DD_EXIT_USAGE || exit_code == DD_EXIT_CONFIG);
        CHECK(errstr[0] != '\0');
    }
    dd_config_close(&cfg);
    dd_config_close(&cfg); /* safe twice */
    free(buf);
    return 0;
}
