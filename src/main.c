/* SPDX-License-Identifier: MIT */
/*
 * main: load the configuration, initialise logging, block the signals that
 * the supervising thread will sigwait() for, run the pipeline and turn the
 * outcome into the exit status. Nothing else lives here (STYLE.md 1).
 *
 * Signals are blocked before any thread exists, so every thread inherits
 * the mask and SIGINT/SIGTERM are only ever taken by sigwait(); SIGPIPE is
 * blocked so a closed socket gives EPIPE instead of killing the process.
 *
 * Before any thread exists, glibc's malloc is limited to two arenas (README
 * "Tuning" and "What bounds the memory"): with one arena per thread (the
 * workers, dd-poll, dd-prod and librdkafka's threads), each arena keeps its
 * own high-water mark, and a drain's peak RSS was 6 to 13 MiB higher.
 * MALLOC_ARENA_MAX (or glibc.malloc.arena_max in GLIBC_TUNABLES) wins.
 */
#include "config.h"
#include "exit_codes.h"
#include "log.h"
#include "pipeline.h"
#include "util.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* malloc arenas when the environment names none (see the header comment). */
#define DD_MALLOC_ARENAS 2

/* Print what a --help, --version, --dump-config or --print-env-names asked
 * for. */
static int run_action(const dd_config_t *cfg) {
    switch (cfg->action) {
        case DD_CONFIG_ACTION_HELP:
            dd_config_print_help(stdout);
            break;
        case DD_CONFIG_ACTION_VERSION:
            printf("dispatchd %s\n", DD_VERSION);
            dd_pipeline_print_versions(stdout);
            break;
        case DD_CONFIG_ACTION_DUMP:
            dd_config_dump(cfg, stdout);
            break;
        case DD_CONFIG_ACTION_PRINT_ENV_NAMES:
            dd_config_print_env_names(stdout);
            break;
        case DD_CONFIG_ACTION_RUN:
            break;
    }
    return fflush(stdout) == 0 ? DD_EXIT_OK : DD_EXIT_SOFTWARE;
}

/* Limit glibc's malloc arenas unless the environment already does. */
static void limit_malloc_arenas(void) {
#ifdef M_ARENA_MAX
    const char *tun = getenv("GLIBC_TUNABLES");

    if (getenv("MALLOC_ARENA_MAX") == NULL &&
        (tun == NULL || strstr(tun, "arena_max") == NULL))
        (void)mallopt(M_ARENA_MAX, DD_MALLOC_ARENAS);
#endif
}

static int block_signals(void) {
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGPIPE);
    return pthread_sigmask(SIG_BLOCK, &set, NULL) == 0 ? DD_OK : DD_ERR;
}

int main(int argc, char **argv) {
    dd_config_t cfg;
    char errstr[512];
    int rc;

    limit_malloc_arenas();
    if (dd_config_load(&cfg, argc, argv, NULL, errstr, sizeof(errstr), &rc) !=
        DD_OK) {
        fprintf(stderr, "dispatchd: %s\n", errstr);
        return rc;
    }
    if (cfg.list_kafka_props) {
        dd_pipeline_print_kafka_properties(stdout);
        rc = DD_EXIT_OK;
    } else if (cfg.action != DD_CONFIG_ACTION_RUN) {
        rc = run_action(&cfg);
    } else if (dd_log_init((dd_log_level_t)cfg.log_level,
                           (dd_log_format_t)cfg.log_format) != DD_OK) {
        fprintf(stderr, "dispatchd: bad log level or format\n");
        rc = DD_EXIT_SOFTWARE;
    } else if (block_signals() != DD_OK) {
        DD_LOG(DD_LOG_ERROR, "main", "signal_mask_failed",
               "pthread_sigmask failed");
        rc = DD_EXIT_SOFTWARE;
    } else {
        rc = dd_pipeline_run(&cfg);
    }
    dd_config_close(&cfg);
    return rc;
}
