/* SPDX-License-Identifier: MIT */
/*
 * config_options: the option table, one row per option, in --help order.
 * A row says everything about one setting: long and short flag, the
 * DISPATCHD_* environment variable, the dd_config_t field, the default
 * (parsed like any other value), the range or choices and the --help text.
 * The loader (config.c) and the printers (config_print.c) only walk this
 * table, so adding an option is one row here plus its dd_config_t field.
 */
#include "config_int.h"

#include "log.h"

#define SEC  DD_CONFIG_SEC
#define HOUR DD_CONFIG_HOUR
#define DAY  DD_CONFIG_DAY

static const char *const log_levels[] = {"debug", "info", "warn", "error",
                                         NULL};
static const char *const log_formats[] = {"json", "text", NULL};

_Static_assert(DD_LOG_DEBUG == 0 && DD_LOG_INFO == 1 && DD_LOG_WARN == 2 &&
                   DD_LOG_ERROR == 3,
               "log_levels[] follows dd_log_level_t");
_Static_assert(DD_LOG_FORMAT_JSON == 0 && DD_LOG_FORMAT_TEXT == 1,
               "log_formats[] follows dd_log_format_t");

#define OFF(field) offsetof(dd_config_t, field)

/* One macro per kind of row. LONG is the flag without "--", SHORT a char
 * or 0, ENV the DISPATCHD_* name, FIELD the dd_config_t member, DEF the
 * default as it would be typed. */

/* A string of at least MINLEN bytes. */
#define ROW_STRING(LONG, SHORT, ENV, FIELD, DEF, MINLEN, ARG, HELP)            \
    {                                                                          \
        .name = (LONG), .short_name = (SHORT), .type = OPT_STRING,             \
        .env = (ENV), .def = (DEF), .min = (MINLEN), .arg = (ARG),             \
        .help = (HELP), .off = OFF(FIELD)                                      \
    }

/* An int in LO..HI. */
#define ROW_INT(LONG, ENV, FIELD, DEF, LO, HI, HELP)                           \
    {                                                                          \
        .name = (LONG), .type = OPT_INT, .env = (ENV), .def = (DEF),           \
        .min = (LO), .max = (HI), .arg = "N", .help = (HELP),                  \
        .off = OFF(FIELD)                                                      \
    }

/* A DURATION in LO..HI ms, stored as int64_t ms. */
#define ROW_DURATION(LONG, ENV, FIELD, DEF, LO, HI, HELP)                      \
    {                                                                          \
        .name = (LONG), .type = OPT_DURATION, .env = (ENV), .def = (DEF),      \
        .min = (LO), .max = (HI), .arg = "DURATION", .help = (HELP),           \
        .off = OFF(FIELD)                                                      \
    }

/* One of CHOICES (NULL-terminated), stored as its index. */
#define ROW_ENUM(LONG, ENV, FIELD, DEF, CHOICES, ARG, HELP)                    \
    {                                                                          \
        .name = (LONG), .type = OPT_ENUM, .env = (ENV), .def = (DEF),          \
        .choices = (CHOICES), .arg = (ARG), .help = (HELP), .off = OFF(FIELD)  \
    }

/* A flag without a value on the command line; true/false elsewhere. */
#define ROW_BOOL(LONG, ENV, FIELD, DEF, HELP)                                  \
    {                                                                          \
        .name = (LONG), .type = OPT_BOOL, .env = (ENV), .def = (DEF),          \
        .help = (HELP), .off = OFF(FIELD)                                      \
    }

/* A structured value of TYPE (OPT_URL, OPT_LISTEN, OPT_REPLAY_*). */
#define ROW_VALUE(TYPE, LONG, ENV, FIELD, DEF, ARG, FLAGS, HELP)               \
    {                                                                          \
        .name = (LONG), .type = (TYPE), .env = (ENV), .def = (DEF),            \
        .arg = (ARG), .help = (HELP), .flags = (FLAGS), .off = OFF(FIELD)      \
    }

/* -X PROP=VALUE, repeatable; ENV_PREFIX is followed by the property. */
#define ROW_KAFKA_PROPS(SHORT, ENV_PREFIX, ARG, HELP)                          \
    {                                                                          \
        .short_name = (SHORT), .type = OPT_KAFKA_PROP, .env = (ENV_PREFIX),    \
        .arg = (ARG), .help = (HELP)                                           \
    }

/* Print something and exit: no value, no environment. */
#define ROW_ACTION(LONG, SHORT, ACTION, FLAGS, HELP)                           \
    {                                                                          \
        .name = (LONG), .short_name = (SHORT), .type = OPT_ACTION,             \
        .help = (HELP), .flags = (FLAGS), .action = (ACTION)                   \
    }

const dd_option_t dd_config_options[] = {
    ROW_STRING("brokers", 'b', "DISPATCHD_BROKERS", brokers, "localhost:9092",
               1, "LIST",
               "Kafka bootstrap brokers, comma-separated HOST:PORT."),
    ROW_STRING("topic", 't', "DISPATCHD_TOPIC", topic, "dispatch.requests", 1,
               "TOPIC", "Input topic of dispatch requests."),
    ROW_STRING("group", 'G', "DISPATCHD_GROUP", group, "dispatch-workers", 1,
               "GROUP", "Kafka consumer group id."),
    ROW_KAFKA_PROPS('X', DD_CONFIG_KAFKA_ENV_PREFIX, "PROP=VALUE",
                    "librdkafka property for both clients; prefix PROP with "
                    "consumer. or producer. to set it on one only. Repeatable. "
                    "-X list prints the properties. Environment: "
                    "DISPATCHD_KAFKA_<PROP> with PROP upper-cased and '.' "
                    "written as '_'."),
    ROW_STRING("result-topic", 0, "DISPATCHD_RESULT_TOPIC", result_topic,
               "dispatch.assignments", 1, "TOPIC",
               "Output topic of assignments and rejections."),
    ROW_STRING("dlq-topic", 0, "DISPATCHD_DLQ_TOPIC", dlq_topic,
               "dispatch.requests.dlq", 1, "TOPIC",
               "Dead-letter topic for input that can never succeed."),
    ROW_STRING("instance-id", 0, "DISPATCHD_INSTANCE_ID", instance_id, "", 0,
               "ID",
               "Static group membership id (group.instance.id); empty: none."),
    ROW_INT("workers", "DISPATCHD_WORKERS", workers, "4", 1, 256,
            "Worker threads."),
    ROW_INT("queue-capacity", "DISPATCHD_QUEUE_CAPACITY", queue_capacity,
            "1024", 1, 1000000,
            "Job queue slots; when full, partitions are paused."),
    ROW_INT("batch-size", "DISPATCHD_BATCH_SIZE", batch_size, "64", 1, 1024,
            "Jobs a worker takes from the queue at once."),
    ROW_INT("max-partition-window", "DISPATCHD_MAX_PARTITION_WINDOW",
            max_partition_window, "100000", 1, 100000000,
            "Offsets a partition may have dispatched behind its oldest "
            "unfinished one; past it the partition is paused until half "
            "drained."),
    ROW_VALUE(
        OPT_URL, "redis", "DISPATCHD_REDIS", redis, "redis://127.0.0.1:6379/0",
        "URL", OPT_F_SECRET,
        "Redis server: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or "
        "unix:///PATH[?db=N][&password=P]. The password is never printed."),
    ROW_VALUE(
        OPT_CLUSTER_URL, "redis-cluster", "DISPATCHD_REDIS_CLUSTER",
        redis_cluster, "", "URL", OPT_F_SECRET,
        "Redis Cluster seeds: redis://[[USER]:PASSWORD@]HOST[:PORT][,...] "
        "(no database). Keys are routed to their slot's master; MOVED "
        "and ASK are followed. Excludes --redis; empty: no cluster. "
        "The password is never printed."),
    ROW_DURATION("redis-timeout", "DISPATCHD_REDIS_TIMEOUT", redis_timeout_ms,
                 "1s", 1, HOUR, "Redis connect and command timeout."),
    ROW_DURATION("eta-ttl", "DISPATCHD_ETA_TTL", eta_ttl_ms, "1h", SEC,
                 365 * DAY, "Lifetime of cached route ETAs."),
    ROW_DURATION("idempotency-ttl", "DISPATCHD_IDEMPOTENCY_TTL",
                 idempotency_ttl_ms, "7d", SEC, 365 * DAY,
                 "Lifetime of stored results used to answer redeliveries."),
    ROW_DURATION("reservation-ttl", "DISPATCHD_RESERVATION_TTL",
                 reservation_ttl_ms, "5m", SEC, DAY,
                 "Lifetime of a courier reservation."),
    ROW_VALUE(
        OPT_LISTEN, "http", "DISPATCHD_HTTP", http, "127.0.0.1:8080",
        "ADDR:PORT", 0,
        "Listen address of /metrics, /healthz, /readyz and /debug/workers: "
        "IPV4:PORT, [IPV6]:PORT or :PORT (all IPv4 interfaces); port 0 picks a "
        "free port; 0 disables HTTP."),
    ROW_DURATION("drain-timeout", "DISPATCHD_DRAIN_TIMEOUT", drain_timeout_ms,
                 "10s", 0, HOUR,
                 "On partition revoke, how long to wait for in-flight jobs."),
    ROW_DURATION(
        "shutdown-timeout", "DISPATCHD_SHUTDOWN_TIMEOUT", shutdown_timeout_ms,
        "30s", 0, HOUR,
        "On SIGTERM/SIGINT, how long to finish in-flight work before exiting."),
    ROW_DURATION("ready-delivery-timeout", "DISPATCHD_READY_DELIVERY_TIMEOUT",
                 ready_delivery_timeout_ms, "30s", 1000, HOUR,
                 "/readyz turns 503 when results are outstanding and none was "
                 "delivered for this long."),
    ROW_DURATION("ready-commit-timeout", "DISPATCHD_READY_COMMIT_TIMEOUT",
                 ready_commit_timeout_ms, "30s", 1000, HOUR,
                 "/readyz turns 503 when offset commits have kept failing for "
                 "this long."),
    ROW_DURATION("stats-interval", "DISPATCHD_STATS_INTERVAL",
                 stats_interval_ms, "5s", 0, DAY,
                 "librdkafka statistics interval; 0 disables."),
    ROW_ENUM("log-level", "DISPATCHD_LOG_LEVEL", log_level, "info", log_levels,
             "LEVEL", "Minimum log level."),
    ROW_ENUM("log-format", "DISPATCHD_LOG_FORMAT", log_format, "json",
             log_formats, "FORMAT",
             "Log lines on stderr: one JSON object each, or text for people."),
    ROW_VALUE(
        OPT_REPLAY_FROM, "replay-from", "DISPATCHD_REPLAY_FROM", replay_from,
        "", "START", 0,
        "Replay mode (no group membership, no commits): start at earliest, at "
        "OFFSET (a plain integer, on every partition) or at a TIMESTAMP; "
        "empty: normal consumer group mode."),
    ROW_VALUE(OPT_REPLAY_TO, "replay-to", "DISPATCHD_REPLAY_TO", replay_to,
              "end", "END", 0,
              "Replay stop point: end (the end offsets captured at start) or a "
              "TIMESTAMP."),
    ROW_BOOL("dry-run", "DISPATCHD_DRY_RUN", dry_run, "false",
             "Replay without producing results or writing to Redis."),
    ROW_ACTION("help", 'h', DD_CONFIG_ACTION_HELP, 0,
               "Print this help and exit."),
    ROW_ACTION("version", 'V', DD_CONFIG_ACTION_VERSION, 0,
               "Print the version and exit."),
    ROW_ACTION("dump-config", 0, DD_CONFIG_ACTION_DUMP, 0,
               "Print the effective configuration as NAME=value lines (secrets "
               "redacted) and exit."),
    ROW_ACTION(
        "print-env-names", 0, DD_CONFIG_ACTION_PRINT_ENV_NAMES, OPT_F_HIDDEN,
        "Print every environment variable name read, one per line, and exit."),
};

const size_t dd_config_options_cnt =
    sizeof(dd_config_options) / sizeof(dd_config_options[0]);
