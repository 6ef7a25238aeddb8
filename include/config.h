/* SPDX-License-Identifier: MIT */
/*
 * config: the settings of dispatchd. Every setting comes from one row of
 * the option table (src/config_options.c): command-line flag, environment
 * variable DISPATCHD_<NAME>, type, default, range and help. Loading and
 * validation (config.c), --help, --dump-config and --print-env-names
 * (config_print.c) are all driven by that table.
 *
 * Precedence: default < environment < command line. An empty environment
 * variable counts as unset. librdkafka properties come from -X PROP=VALUE
 * and from DISPATCHD_KAFKA_<PROP> (PROP lower-cased, '_' -> '.'); they are
 * stored as strings and applied to librdkafka by the pipeline.
 *
 * Value syntax:
 *   DURATION   integer with a unit ms, s, m, h or d (250ms, 30s, 7d); a bare
 *              integer means seconds. Stored in milliseconds.
 *   TIMESTAMP  ISO-8601 2026-11-27T20:00:00Z, optional fraction of a second
 *              (.123) and Z or +HH:MM/-HH:MM; or @EPOCH_MS (@1795809600000).
 *   --replay-from  earliest | OFFSET (plain integer) | TIMESTAMP
 *   --replay-to    end | TIMESTAMP (a plain integer is rejected)
 *
 * Config is read-only once threads start: modules get a const dd_config_t *.
 */
#ifndef DD_CONFIG_H
#define DD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "redis_url.h"

/** Environment prefix of librdkafka passthrough properties. */
#define DD_CONFIG_KAFKA_ENV_PREFIX "DISPATCHD_KAFKA_"

/** Which librdkafka client a -X property goes to. */
typedef enum dd_kafka_target {
    DD_KAFKA_TARGET_BOTH = 0, /* no prefix */
    DD_KAFKA_TARGET_CONSUMER, /* "consumer." prefix (stripped) */
    DD_KAFKA_TARGET_PRODUCER, /* "producer." prefix (stripped) */
} dd_kafka_target_t;

typedef struct dd_kafka_prop {
    dd_kafka_target_t target;
    char *key;   /* owned; without the consumer./producer. prefix */
    char *value; /* owned; may be "" */
} dd_kafka_prop_t;

/** Parsed --http. */
typedef struct dd_http_addr {
    int enabled; /* 0 when --http 0 */
    char *addr;  /* owned; numeric IPv4/IPv6 (no []); NULL when disabled */
    int port;    /* 0..65535; 0 = any free port */
} dd_http_addr_t;

typedef enum dd_replay_kind {
    DD_REPLAY_NONE = 0,  /* replay-from unset: live consumer group mode */
    DD_REPLAY_EARLIEST,  /* replay-from: log start of every partition */
    DD_REPLAY_OFFSET,    /* replay-from: value = offset, every partition */
    DD_REPLAY_TIMESTAMP, /* value = epoch ms */
    DD_REPLAY_END,       /* replay-to: end offsets captured at start */
} dd_replay_kind_t;

typedef struct dd_replay_bound {
    dd_replay_kind_t kind;
    int64_t value; /* offset (DD_REPLAY_OFFSET) or epoch ms (TIMESTAMP) */
} dd_replay_bound_t;

/** What main should do after a successful dd_config_load(). */
typedef enum dd_config_action {
    DD_CONFIG_ACTION_RUN = 0,         /* run the pipeline */
    DD_CONFIG_ACTION_HELP,            /* dd_config_print_help(stdout) */
    DD_CONFIG_ACTION_VERSION,         /* print "dispatchd <DD_VERSION>" */
    DD_CONFIG_ACTION_DUMP,            /* dd_config_dump(cfg, stdout) */
    DD_CONFIG_ACTION_PRINT_ENV_NAMES, /* dd_config_print_env_names() */
} dd_config_action_t;

/**
 * @brief All settings. Filled by dd_config_load(), released by
 *        dd_config_close(). Strings are owned and never NULL unless noted.
 * @remark Not thread-safe to modify; read-only once threads start.
 */
typedef struct dd_config {
    /* Kafka */
    char *brokers;      /* -b: bootstrap.servers list */
    char *topic;        /* -t: input topic */
    char *group;        /* -G: consumer group id */
    char *result_topic; /* assignments / rejections */
    char *dlq_topic;    /* dead letters */
    char *instance_id;  /* group.instance.id; "" = no static membership */
    dd_kafka_prop_t *kafka_props; /* owned array; apply in order (later
                                     entries win; environment first, then
                                     -X flags) */
    size_t kafka_props_cnt;
    int list_kafka_props; /* -X list: print librdkafka's properties, exit */

    /* Pipeline */
    int workers;              /* worker threads, 1..256 */
    int queue_capacity;       /* job queue slots, 1..1000000 */
    int batch_size;           /* jobs a worker takes at once, 1..1024 */
    int max_partition_window; /* tracked offsets per partition before it
                                 is paused, 1..100000000 */

    /* Redis */
    dd_redis_url_t redis;         /* --redis (redis_url.h) */
    dd_redis_url_t redis_cluster; /* --redis-cluster: seeds, nseeds 0 = off */
    int64_t redis_timeout_ms;     /* ms: connect and command timeout */
    int64_t eta_ttl_ms;           /* ms: TTL of eta:v1:* cache keys */
    int64_t idempotency_ttl_ms;   /* ms: TTL of result:* records */
    int64_t reservation_ttl_ms;   /* ms: TTL of reservation:* keys */

    /* HTTP and lifecycle */
    dd_http_addr_t http;
    int64_t drain_timeout_ms;    /* ms: wait for in-flight jobs on revoke */
    int64_t shutdown_timeout_ms; /* ms: SIGTERM to exit */
    int64_t ready_delivery_timeout_ms; /* ms: no delivery -> /readyz 503 */
    int64_t ready_commit_timeout_ms;   /* ms: failing commits -> 503 */
    int64_t stats_interval_ms;         /* ms: statistics.interval.ms; 0 = off */

    /* Logging */
    int log_level;  /* dd_log_level_t */
    int log_format; /* dd_log_format_t */

    /* Replay */
    dd_replay_bound_t replay_from; /* kind NONE: live mode */
    dd_replay_bound_t replay_to;   /* END or TIMESTAMP */
    int dry_run;                   /* bool: replay without producing */

    dd_config_action_t action;
} dd_config_t;

/*----- Lifecycle -----*/

/**
 * @brief Build the configuration from defaults, the environment and argv.
 * @param cfg caller storage; fully overwritten (no init needed).
 * @param argv borrowed; argv[0] is the program name and is skipped.
 * @param envp borrowed, optional: "NAME=value" strings ending with NULL;
 *        NULL reads environ.
 * @param errstr optional: on DD_ERR one line naming the option and the
 *        problem (never a secret).
 * @param exit_code set to 0 on DD_OK, else DD_EXIT_USAGE (unknown flag,
 *        missing value, bad number, duration, enum or bool, out of range,
 *        stray argument, --replay-to not after --replay-from) or
 *        DD_EXIT_CONFIG (bad redis URL, --http address, -X syntax,
 *        --replay-to or --dry-run without --replay-from).
 * @returns DD_OK (check cfg->action: RUN, or something to print and exit
 *          0) or DD_ERR, in which case cfg holds nothing to free (calling
 *          dd_config_close() is still allowed).
 * @remark --help, --version and --print-env-names return as soon as they
 *         are seen, before the environment is read or values are checked.
 * @locality main, before other threads start
 */
int dd_config_load(dd_config_t *cfg, int argc, char **argv, char **envp,
                   char *errstr, size_t errstr_size, int *exit_code);

/**
 * @brief Free everything cfg owns and zero it. Safe to call twice.
 * @locality owner thread
 */
void dd_config_close(dd_config_t *cfg);

/*----- Output -----*/

/** @brief The --help text, generated from the option table. */
void dd_config_print_help(FILE *fp);

/**
 * @brief --dump-config: one NAME=value line per option using the
 *        environment names (DISPATCHD_WORKERS=4), then one
 *        DISPATCHD_KAFKA_<PROP>=value line per librdkafka property.
 *        Feeding the lines back as the environment gives the same config.
 * @remark Redacts as "***" the redis password and the value of every
 *         property whose key contains "password", "secret", "sasl" or
 *         "key.pem".
 */
void dd_config_dump(const dd_config_t *cfg, FILE *fp);

/**
 * @brief The exact DISPATCHD_* names the table reads, in table order.
 * @param out borrowed array of at least max entries; may be NULL if max 0.
 * @returns the total number of names (may exceed max; then out holds the
 *          first max). Properties DISPATCHD_KAFKA_* are not included.
 */
size_t dd_config_env_names(const char **out, size_t max);

/** @brief --print-env-names: one name per line, then "DISPATCHD_KAFKA_*". */
void dd_config_print_env_names(FILE *fp);

#endif /* DD_CONFIG_H */
