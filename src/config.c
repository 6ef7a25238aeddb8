/* SPDX-License-Identifier: MIT */
/*
 * config: one option table, dd_options[], drives everything: the
 * command-line parser (hand-rolled rather than getopt_long, so it has no
 * global state, never accepts abbreviated flags and can name the option in
 * every error), the environment, defaults, validation, --help, --dump-config
 * and --print-env-names.
 *
 * Loading order: defaults, then the command line is split into (option,
 * value) tokens (so --help works even with a bad environment), then the
 * environment, then the tokens, then the checks that span options. Every
 * value, defaults included, goes through the same set_value().
 *
 * Error classes: EX_USAGE (64) for the command line's shape and for scalar
 * values (integer, duration, enum, bool, timestamp, empty string);
 * EX_CONFIG (78) for structured values (redis URL, --http address, -X
 * properties) and for options that contradict each other.
 *
 * Leaf module: includes no librdkafka, hiredis or jansson header.
 */
#include "config.h"

#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

#define EX_USAGE_  DD_CONFIG_EX_USAGE
#define EX_CONFIG_ DD_CONFIG_EX_CONFIG

/* Largest timestamp accepted: 9999-12-31T23:59:59.999Z. */
#define MAX_TS_MS 253402300799999LL

#define NBSP '\x1f' /* see print_wrapped() */

#define SEC  ((int64_t)1000)
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

typedef enum opt_type {
    OPT_STRING,      /* char *; min = minimum length */
    OPT_INT,         /* int; min..max */
    OPT_DURATION,    /* int64_t ms; min..max in ms */
    OPT_ENUM,        /* int index into choices */
    OPT_BOOL,        /* int 0/1; a flag on the command line */
    OPT_KAFKA_PROP,  /* -X PROP=VALUE into kafka_props; env is a prefix */
    OPT_URL,         /* dd_redis_url_t */
    OPT_LISTEN,      /* dd_http_addr_t */
    OPT_REPLAY_FROM, /* dd_replay_bound_t */
    OPT_REPLAY_TO,   /* dd_replay_bound_t */
    OPT_ACTION,      /* sets cfg->action; no value, no environment */
} opt_type_t;

#define OPT_F_SECRET 0x1 /* value may hold a secret: never echoed */
#define OPT_F_HIDDEN 0x2 /* left out of --help */

typedef struct dd_option {
    const char *name;           /* long flag without "--"; NULL: none */
    int short_name;             /* short flag, or 0 */
    opt_type_t type;            /* how the value is parsed and stored */
    const char *env;            /* DISPATCHD_* (a prefix for -X), or NULL */
    const char *def;            /* default, parsed like any value; or NULL */
    int64_t min, max;           /* see opt_type_t */
    const char *const *choices; /* OPT_ENUM: NULL-terminated */
    const char *arg;            /* value placeholder in --help */
    const char *help;           /* one sentence for --help */
    unsigned flags;             /* OPT_F_* */
    dd_config_action_t action;  /* OPT_ACTION */
    size_t off;                 /* offsetof(dd_config_t, field) */
} dd_option_t;

static const char *const log_levels[] = {"debug", "info", "warn", "error",
                                         NULL};
static const char *const log_formats[] = {"json", "text", NULL};

_Static_assert(DD_LOG_DEBUG == 0 && DD_LOG_INFO == 1 && DD_LOG_WARN == 2 &&
                   DD_LOG_ERROR == 3,
               "log_levels[] follows dd_log_level_t");
_Static_assert(DD_LOG_FORMAT_JSON == 0 && DD_LOG_FORMAT_TEXT == 1,
               "log_formats[] follows dd_log_format_t");

#define OFF(field) offsetof(dd_config_t, field)

static const dd_option_t dd_options[] = {
    {"brokers", 'b', OPT_STRING, "DISPATCHD_BROKERS", "localhost:9092", 1, 0,
     NULL, "LIST", "Kafka bootstrap brokers, comma-separated HOST:PORT.", 0, 0,
     OFF(brokers)},
    {"topic", 't', OPT_STRING, "DISPATCHD_TOPIC", "dispatch.requests", 1, 0,
     NULL, "TOPIC", "Input topic of dispatch requests.", 0, 0, OFF(topic)},
    {"group", 'G', OPT_STRING, "DISPATCHD_GROUP", "dispatch-workers", 1, 0,
     NULL, "GROUP", "Kafka consumer group id.", 0, 0, OFF(group)},
    {NULL, 'X', OPT_KAFKA_PROP, DD_CONFIG_KAFKA_ENV_PREFIX, NULL, 0, 0, NULL,
     "PROP=VALUE",
     "librdkafka property for both clients; prefix PROP with consumer. or "
     "producer. to set it on one only. Repeatable. -X list prints the "
     "properties. Environment: DISPATCHD_KAFKA_<PROP> with PROP upper-cased "
     "and '.' written as '_'.",
     0, 0, 0},
    {"result-topic", 0, OPT_STRING, "DISPATCHD_RESULT_TOPIC",
     "dispatch.assignments", 1, 0, NULL, "TOPIC",
     "Output topic of assignments and rejections.", 0, 0, OFF(result_topic)},
    {"dlq-topic", 0, OPT_STRING, "DISPATCHD_DLQ_TOPIC", "dispatch.requests.dlq",
     1, 0, NULL, "TOPIC", "Dead-letter topic for input that can never succeed.",
     0, 0, OFF(dlq_topic)},
    {"instance-id", 0, OPT_STRING, "DISPATCHD_INSTANCE_ID", "", 0, 0, NULL,
     "ID", "Static group membership id (group.instance.id); empty: none.", 0, 0,
     OFF(instance_id)},
    {"workers", 0, OPT_INT, "DISPATCHD_WORKERS", "4", 1, 256, NULL, "N",
     "Worker threads.", 0, 0, OFF(workers)},
    {"queue-capacity", 0, OPT_INT, "DISPATCHD_QUEUE_CAPACITY", "1024", 1,
     1000000, NULL, "N", "Job queue slots; when full, partitions are paused.",
     0, 0, OFF(queue_capacity)},
    {"batch-size", 0, OPT_INT, "DISPATCHD_BATCH_SIZE", "32", 1, 1024, NULL, "N",
     "Jobs a worker takes from the queue at once.", 0, 0, OFF(batch_size)},
    {"redis", 0, OPT_URL, "DISPATCHD_REDIS", "redis://127.0.0.1:6379/0", 0, 0,
     NULL, "URL",
     "Redis server: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or "
     "unix:///PATH[?db=N][&password=P]. The password is never printed.",
     OPT_F_SECRET, 0, OFF(redis)},
    {"redis-timeout", 0, OPT_DURATION, "DISPATCHD_REDIS_TIMEOUT", "1s", 1, HOUR,
     NULL, "DURATION", "Redis connect and command timeout.", 0, 0,
     OFF(redis_timeout_ms)},
    {"eta-ttl", 0, OPT_DURATION, "DISPATCHD_ETA_TTL", "1h", SEC, 365 * DAY,
     NULL, "DURATION", "Lifetime of cached route ETAs.", 0, 0, OFF(eta_ttl_ms)},
    {"idempotency-ttl", 0, OPT_DURATION, "DISPATCHD_IDEMPOTENCY_TTL", "7d", SEC,
     365 * DAY, NULL, "DURATION",
     "Lifetime of stored results used to answer redeliveries.", 0, 0,
     OFF(idempotency_ttl_ms)},
    {"reservation-ttl", 0, OPT_DURATION, "DISPATCHD_RESERVATION_TTL", "5m", SEC,
     DAY, NULL, "DURATION", "Lifetime of a courier reservation.", 0, 0,
     OFF(reservation_ttl_ms)},
    {"http", 0, OPT_LISTEN, "DISPATCHD_HTTP", "127.0.0.1:8080", 0, 0, NULL,
     "ADDR:PORT",
     "Listen address of /metrics, /healthz, /readyz and /debug/workers: "
     "IPV4:PORT, [IPV6]:PORT or :PORT (all IPv4 interfaces); port 0 picks a "
     "free port; 0 disables HTTP.",
     0, 0, OFF(http)},
    {"drain-timeout", 0, OPT_DURATION, "DISPATCHD_DRAIN_TIMEOUT", "10s", 0,
     HOUR, NULL, "DURATION",
     "On partition revoke, how long to wait for in-flight jobs.", 0, 0,
     OFF(drain_timeout_ms)},
    {"shutdown-timeout", 0, OPT_DURATION, "DISPATCHD_SHUTDOWN_TIMEOUT", "30s",
     0, HOUR, NULL, "DURATION",
     "On SIGTERM/SIGINT, how long to finish in-flight work before exiting.", 0,
     0, OFF(shutdown_timeout_ms)},
    {"stats-interval", 0, OPT_DURATION, "DISPATCHD_STATS_INTERVAL", "5s", 0,
     DAY, NULL, "DURATION", "librdkafka statistics interval; 0 disables.", 0, 0,
     OFF(stats_interval_ms)},
    {"log-level", 0, OPT_ENUM, "DISPATCHD_LOG_LEVEL", "info", 0, 0, log_levels,
     "LEVEL", "Minimum log level.", 0, 0, OFF(log_level)},
    {"log-format", 0, OPT_ENUM, "DISPATCHD_LOG_FORMAT", "json", 0, 0,
     log_formats, "FORMAT",
     "Log lines on stderr: one JSON object each, or text for people.", 0, 0,
     OFF(log_format)},
    {"replay-from", 0, OPT_REPLAY_FROM, "DISPATCHD_REPLAY_FROM", "", 0, 0, NULL,
     "START",
     "Replay mode (no group membership, no commits): start at earliest, at "
     "OFFSET (a plain integer, on every partition) or at a TIMESTAMP; empty: "
     "normal consumer group mode.",
     0, 0, OFF(replay_from)},
    {"replay-to", 0, OPT_REPLAY_TO, "DISPATCHD_REPLAY_TO", "end", 0, 0, NULL,
     "END",
     "Replay stop point: end (the end offsets captured at start) or a "
     "TIMESTAMP.",
     0, 0, OFF(replay_to)},
    {"dry-run", 0, OPT_BOOL, "DISPATCHD_DRY_RUN", "false", 0, 0, NULL, NULL,
     "Replay without producing results or writing to Redis.", 0, 0,
     OFF(dry_run)},
    {"help", 'h', OPT_ACTION, NULL, NULL, 0, 0, NULL, NULL,
     "Print this help and exit.", 0, DD_CONFIG_ACTION_HELP, 0},
    {"version", 'V', OPT_ACTION, NULL, NULL, 0, 0, NULL, NULL,
     "Print the version and exit.", 0, DD_CONFIG_ACTION_VERSION, 0},
    {"dump-config", 0, OPT_ACTION, NULL, NULL, 0, 0, NULL, NULL,
     "Print the effective configuration as NAME=value lines (secrets "
     "redacted) and exit.",
     0, DD_CONFIG_ACTION_DUMP, 0},
    {"print-env-names", 0, OPT_ACTION, NULL, NULL, 0, 0, NULL, NULL,
     "Print every environment variable name read, one per line, and exit.",
     OPT_F_HIDDEN, DD_CONFIG_ACTION_PRINT_ENV_NAMES, 0},
};

#define OPTIONS_CNT (sizeof(dd_options) / sizeof(dd_options[0]))

/* Where the first error goes. */
typedef struct err {
    char *buf;
    size_t size;
    int code;
} err_t;

/* One command-line option with its value, found before anything is set. */
typedef struct token {
    const dd_option_t *o;
    const char *value; /* borrowed from argv; NULL for OPT_ACTION */
    int is_short;      /* typed as -x rather than --name */
} token_t;

/* Record an error: its exit code and one line of text; evaluates to DD_ERR.
 * A macro over dd_set_error() rather than a variadic function here, which
 * clang-analyzer 14 misreads (valist.Uninitialized) when it inlines it. */
#define FAIL(e, ex, ...)                                                       \
    ((e)->code = (ex), dd_set_error((e)->buf, (e)->size, __VA_ARGS__), DD_ERR)

static void *field(dd_config_t *cfg, const dd_option_t *o) {
    return (char *)cfg + o->off;
}

static const void *cfield(const dd_config_t *cfg, const dd_option_t *o) {
    return (const char *)cfg + o->off;
}

/*----- Scalar parsers -----*/

/* Decimal integer, optional '-', nothing else (no spaces, no '+'). */
static int parse_int64(const char *s, int64_t *out) {
    char *end;
    long long v;

    if (!(isdigit((unsigned char)s[0]) ||
          (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return DD_ERR;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return DD_ERR;
    *out = v;
    return DD_OK;
}

/* Digits only (no sign), e.g. offsets, ports, epoch ms. */
static int parse_uint64(const char *s, int64_t *out) {
    if (!isdigit((unsigned char)s[0]))
        return DD_ERR;
    return parse_int64(s, out);
}

/* INTEGER[ms|s|m|h|d], a bare integer meaning seconds; in ms. */
static int parse_duration(const char *s, int64_t *ms) {
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {{"ms", 1},   {"s", SEC}, {"m", MIN},
                 {"h", HOUR}, {"d", DAY}, {"", SEC}};
    int64_t v = 0;
    const char *p = s;

    if (!isdigit((unsigned char)*p))
        return DD_ERR;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (INT64_MAX - 9) / 10)
            return DD_ERR;
        v = v * 10 + (*p - '0');
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].unit) == 0) {
            if (v > INT64_MAX / units[i].mult)
                return DD_ERR;
            *ms = v * units[i].mult;
            return DD_OK;
        }
    }
    return DD_ERR;
}

/* The largest unit that represents ms exactly: 7d, 1h, 1500ms, 0s. */
static const char *fmt_duration(int64_t ms, char *buf, size_t size) {
    if (ms == 0)
        snprintf(buf, size, "0s");
    else if (ms % DAY == 0)
        snprintf(buf, size, "%" PRId64 "d", ms / DAY);
    else if (ms % HOUR == 0)
        snprintf(buf, size, "%" PRId64 "h", ms / HOUR);
    else if (ms % MIN == 0)
        snprintf(buf, size, "%" PRId64 "m", ms / MIN);
    else if (ms % SEC == 0)
        snprintf(buf, size, "%" PRId64 "s", ms / SEC);
    else
        snprintf(buf, size, "%" PRId64 "ms", ms);
    return buf;
}

static int parse_bool(const char *s, int *out) {
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return DD_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return DD_OK;
        }
    }
    return DD_ERR;
}

/* Exactly n digits at s into *out. */
static int digits(const char *s, int n, int *out) {
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return DD_ERR;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return DD_OK;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil), so no timegm() and no TZ dependence. */
static int64_t days_from_civil(int y, int m, int d) {
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return days[m - 1] + (m == 2 && leap);
}

/* TIMESTAMP: @EPOCH_MS, or YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|+HH:MM|-HH:MM);
 * epoch ms in 0..MAX_TS_MS. */
static int parse_timestamp(const char *s, int64_t *ms) {
    int y, mo, d, h, mi, sec, frac = 0, tz = 0;
    int64_t v;

    if (s[0] == '@') {
        if (parse_uint64(s + 1, &v) != DD_OK || v > MAX_TS_MS)
            return DD_ERR;
        *ms = v;
        return DD_OK;
    }
    if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
        s[7] != '-' || digits(s + 8, 2, &d) || s[10] != 'T' ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) ||
        s[16] != ':' || digits(s + 17, 2, &sec))
        return DD_ERR;
    s += 19;
    if (*s == '.') {
        int n = 0;
        for (s++; isdigit((unsigned char)*s); s++, n++) {
            if (n < 3)
                frac = frac * 10 + (*s - '0');
        }
        if (n == 0 || n > 9)
            return DD_ERR;
        for (; n < 3; n++)
            frac *= 10;
    }
    if (*s == 'Z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int th, tm;
        if (digits(s + 1, 2, &th) || s[3] != ':' || digits(s + 4, 2, &tm) ||
            th > 23 || tm > 59)
            return DD_ERR;
        tz = (th * 60 + tm) * (*s == '-' ? -1 : 1);
        s += 6;
    } else {
        return DD_ERR;
    }
    if (*s != '\0' || y < 1970 || mo < 1 || mo > 12 || d < 1 ||
        d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
        return DD_ERR;
    v = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
        (int64_t)tz * 60;
    v = v * 1000 + frac;
    if (v < 0 || v > MAX_TS_MS)
        return DD_ERR;
    *ms = v;
    return DD_OK;
}

/*----- Structured values -----*/

static void redis_url_free(dd_redis_url_t *u) {
    dd_free(u->host);
    dd_free(u->unix_path);
    dd_free(u->user);
    dd_free(u->password);
    memset(u, 0, sizeof(*u));
}

static int hexval(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decode s[0..n) into a new string; NULL if the encoding is bad or
 * decodes to a NUL byte. */
static char *pct_decode(const char *s, size_t n) {
    char *out = dd_xmalloc(n + 1);
    size_t j = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                dd_free(out);
                return NULL;
            }
            out[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

/* Database index from s[0..n). */
static int parse_db(const char *s, size_t n, int *db) {
    char buf[16];
    int64_t v;

    if (n == 0 || n >= sizeof(buf))
        return DD_ERR;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (parse_uint64(buf, &v) != DD_OK || v > INT_MAX)
        return DD_ERR;
    *db = (int)v;
    return DD_OK;
}

/* Port from s[0..n), in min..65535. */
static int parse_port(const char *s, size_t n, int min, int *port) {
    char buf[8];
    int64_t v;

    if (n == 0 || n >= sizeof(buf))
        return DD_ERR;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (parse_uint64(buf, &v) != DD_OK || v < min || v > 65535)
        return DD_ERR;
    *port = (int)v;
    return DD_OK;
}

/* unix:///PATH[?db=N][&password=P][&user=U]; s points at "/PATH...". */
static int parse_redis_unix(const char *s, dd_redis_url_t *u, const char *where,
                            err_t *e) {
    const char *q = strchr(s, '?');
    size_t plen = q != NULL ? (size_t)(q - s) : strlen(s);

    if (s[0] != '/' || plen < 2)
        return FAIL(e, EX_CONFIG_,
                    "%sunix:// needs an absolute socket path "
                    "(unix:///path/to/redis.sock)",
                    where);
    if (plen >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
        return FAIL(e, EX_CONFIG_, "%sunix socket path longer than %zu", where,
                    sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1);
    u->unix_path = dd_xstrndup(s, plen);
    while (q != NULL) {
        const char *name = q + 1;
        const char *eq = strchr(name, '=');
        const char *amp = strchr(name, '&');
        const char *val, *end = amp != NULL ? amp : name + strlen(name);
        char **dst = NULL;

        if (eq == NULL || eq > end)
            return FAIL(e, EX_CONFIG_, "%sexpected NAME=VALUE after '%c'",
                        where, *q);
        val = eq + 1;
        if ((size_t)(eq - name) == 2 && strncmp(name, "db", 2) == 0) {
            if (parse_db(val, (size_t)(end - val), &u->db) != DD_OK)
                return FAIL(e, EX_CONFIG_,
                            "%sbad database '%.*s' (0..2147483647)", where,
                            (int)(end - val), val);
        } else if ((size_t)(eq - name) == 8 &&
                   strncmp(name, "password", 8) == 0) {
            dst = &u->password;
        } else if ((size_t)(eq - name) == 4 && strncmp(name, "user", 4) == 0) {
            dst = &u->user;
        } else {
            return FAIL(e, EX_CONFIG_,
                        "%sunknown parameter '%.*s' (db, password, user)",
                        where, (int)(eq - name), name);
        }
        if (dst != NULL) {
            dd_free(*dst);
            *dst = pct_decode(val, (size_t)(end - val));
            if (*dst == NULL)
                return FAIL(e, EX_CONFIG_, "%sbad percent-encoding", where);
            if (**dst == '\0') {
                dd_free(*dst);
                *dst = NULL;
            }
        }
        q = amp;
    }
    return DD_OK;
}

/* redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]; s points after "redis://". */
static int parse_redis_tcp(const char *s, dd_redis_url_t *u, const char *where,
                           err_t *e) {
    size_t alen = strcspn(s, "/?#");
    const char *at = NULL, *host, *hend, *port = NULL, *aend = s + alen;

    for (const char *p = s; p < aend; p++) {
        if (*p == '@')
            at = p;
    }
    if (at != NULL) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        if (colon == NULL)
            return FAIL(e, EX_CONFIG_,
                        "%scredentials must be [USER]:PASSWORD@ "
                        "(percent-encode special characters)",
                        where);
        if (colon > s)
            u->user = pct_decode(s, (size_t)(colon - s));
        if (at > colon + 1)
            u->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
        if ((colon > s && u->user == NULL) ||
            (at > colon + 1 && u->password == NULL))
            return FAIL(e, EX_CONFIG_, "%sbad percent-encoding in credentials",
                        where);
        s = at + 1;
    }
    if (*s == '[') {
        host = s + 1;
        hend = memchr(host, ']', (size_t)(aend - host));
        if (hend == NULL || hend == host ||
            memchr(host, '[', (size_t)(hend - host)) != NULL ||
            (hend + 1 < aend && hend[1] != ':'))
            return FAIL(e, EX_CONFIG_, "%sbad [IPV6] host", where);
        if (hend + 1 < aend)
            port = hend + 2;
    } else {
        host = s;
        hend = memchr(s, ':', (size_t)(aend - s));
        if (hend != NULL) {
            port = hend + 1;
            if (memchr(port, ':', (size_t)(aend - port)) != NULL)
                return FAIL(e, EX_CONFIG_,
                            "%sIPv6 hosts need brackets: "
                            "redis://[::1]:6379",
                            where);
        } else {
            hend = aend;
        }
    }
    if (hend == host)
        return FAIL(e, EX_CONFIG_, "%smissing host", where);
    u->host = dd_xstrndup(host, (size_t)(hend - host));
    u->port = 6379;
    if (port != NULL &&
        parse_port(port, (size_t)(aend - port), 1, &u->port) != DD_OK)
        return FAIL(e, EX_CONFIG_, "%sbad port '%.*s' (1..65535)", where,
                    (int)(aend - port), port);
    s = aend;
    if (*s == '/') {
        s++;
        if (*s != '\0' && *s != '?' && *s != '#' &&
            parse_db(s, strcspn(s, "?#"), &u->db) != DD_OK)
            return FAIL(e, EX_CONFIG_, "%sbad database '%.*s' (0..2147483647)",
                        where, (int)strcspn(s, "?#"), s);
        s += strcspn(s, "?#");
    }
    if (*s != '\0')
        return FAIL(e, EX_CONFIG_,
                    "%sunexpected '%c...' after the database (only "
                    "unix:// takes parameters)",
                    where, *s);
    return DD_OK;
}

/* Never echoes the URL: it may hold a password. In these three parsers,
 * where is a prefix that includes its ": " (or is ""). */
static int parse_redis_url(const char *url, dd_redis_url_t *u,
                           const char *where, err_t *e) {
    const char *sep = strstr(url, "://");

    memset(u, 0, sizeof(*u));
    if (strncasecmp(url, "redis://", 8) == 0)
        return parse_redis_tcp(url + 8, u, where, e);
    if (strncasecmp(url, "unix://", 7) == 0)
        return parse_redis_unix(url + 7, u, where, e);
    if (sep != NULL && sep - url < 16 &&
        strcspn(url, ":@/") == (size_t)(sep - url))
        return FAIL(e, EX_CONFIG_,
                    "%sunsupported scheme '%.*s://' (expected redis:// or "
                    "unix://)",
                    where, (int)(sep - url), url);
    return FAIL(e, EX_CONFIG_,
                "%snot a Redis URL (expected redis://HOST[:PORT][/DB] or "
                "unix:///PATH)",
                where);
}

/* Characters that need no percent-encoding in the user part of a URL. */
static void fputs_pct(const char *s, FILE *fp) {
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || strchr("-._~", c) != NULL)
            fputc(c, fp);
        else
            fprintf(fp, "%%%02X", c);
    }
}

static void print_redis_url(const dd_redis_url_t *u, FILE *fp) {
    if (u->unix_path != NULL) {
        fprintf(fp, "unix://%s?db=%d", u->unix_path, u->db);
        if (u->user != NULL) {
            fputs("&user=", fp);
            fputs_pct(u->user, fp);
        }
        if (u->password != NULL)
            fputs("&password=***", fp);
        return;
    }
    fputs("redis://", fp);
    if (u->user != NULL || u->password != NULL) {
        if (u->user != NULL)
            fputs_pct(u->user, fp);
        fprintf(fp, ":%s@", u->password != NULL ? "***" : "");
    }
    if (strchr(u->host, ':') != NULL)
        fprintf(fp, "[%s]:%d/%d", u->host, u->port, u->db);
    else
        fprintf(fp, "%s:%d/%d", u->host, u->port, u->db);
}

int dd_config_parse_redis_url(const char *url, dd_redis_url_t *u, char *errstr,
                              size_t errstr_size) {
    err_t e = {errstr, errstr_size, 0};

    if (parse_redis_url(url, u, "", &e) != DD_OK) {
        redis_url_free(u);
        return DD_ERR;
    }
    return DD_OK;
}

void dd_redis_url_close(dd_redis_url_t *u) {
    redis_url_free(u);
}

/* --http: 0 | IPV4:PORT | [IPV6]:PORT | :PORT. */
static int parse_http(const char *s, dd_http_addr_t *h, const char *where,
                      err_t *e) {
    const char *colon, *addr = s;
    size_t alen;
    char buf[INET6_ADDRSTRLEN];
    unsigned char sa[sizeof(struct in6_addr)];
    int af = AF_INET;

    memset(h, 0, sizeof(*h));
    if (strcmp(s, "0") == 0)
        return DD_OK;
    colon = strrchr(s, ':');
    if (colon == NULL)
        return FAIL(e, EX_CONFIG_,
                    "%s: expected ADDR:PORT, [IPV6]:PORT, :PORT or 0, got "
                    "'%s'",
                    where, s);
    alen = (size_t)(colon - s);
    if (s[0] == '[') {
        if (alen < 3 || s[alen - 1] != ']')
            return FAIL(e, EX_CONFIG_, "%s: bad [IPV6]:PORT '%s'", where, s);
        addr = s + 1;
        alen -= 2;
        af = AF_INET6;
    } else if (alen == 0) {
        addr = "0.0.0.0";
        alen = strlen(addr);
    }
    if (alen >= sizeof(buf))
        return FAIL(e, EX_CONFIG_, "%s: '%s' is not a numeric IP address",
                    where, s);
    memcpy(buf, addr, alen);
    buf[alen] = '\0';
    if (inet_pton(af, buf, sa) != 1)
        return FAIL(e, EX_CONFIG_,
                    "%s: '%s' is not a numeric IP%s address (IPv6 needs "
                    "[brackets])",
                    where, buf, af == AF_INET6 ? "v6" : "v4");
    if (parse_port(colon + 1, strlen(colon + 1), 0, &h->port) != DD_OK)
        return FAIL(e, EX_CONFIG_, "%s: bad port '%s' (0..65535)", where,
                    colon + 1);
    h->enabled = 1;
    h->addr = dd_xstrdup(buf);
    return DD_OK;
}

/* Keys whose values --dump-config never shows. */
static int is_secret_key(const char *key) {
    return strcasestr(key, "password") != NULL ||
           strcasestr(key, "secret") != NULL ||
           strcasestr(key, "sasl") != NULL ||
           strcasestr(key, "key.pem") != NULL;
}

static void kafka_prop_free(dd_kafka_prop_t *p) {
    dd_free(p->key);
    dd_free(p->value);
}

/* -X list | -X [consumer.|producer.]PROP=VALUE. A later setting of the same
 * (target, key) replaces the earlier one and moves to the end, so array
 * order is precedence order. */
static int add_kafka_prop(dd_config_t *cfg, const char *spec, const char *where,
                          err_t *e) {
    static const struct {
        const char *prefix;
        dd_kafka_target_t target;
    } prefixes[] = {{"consumer.", DD_KAFKA_TARGET_CONSUMER},
                    {"producer.", DD_KAFKA_TARGET_PRODUCER}};
    const char *eq = strchr(spec, '=');
    const char *key = spec;
    dd_kafka_target_t target = DD_KAFKA_TARGET_BOTH;
    dd_kafka_prop_t *p;
    size_t klen;

    if (strcmp(spec, "list") == 0) {
        cfg->list_kafka_props = 1;
        return DD_OK;
    }
    if (eq == NULL)
        return FAIL(e, EX_CONFIG_,
                    "%s: expected PROP=VALUE (or list), got '%s'", where, spec);
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t n = strlen(prefixes[i].prefix);
        if (strncmp(key, prefixes[i].prefix, n) == 0) {
            key += n;
            target = prefixes[i].target;
            break;
        }
    }
    klen = (size_t)(eq - key);
    if (klen == 0)
        return FAIL(e, EX_CONFIG_, "%s: empty property name in '%.*s='", where,
                    (int)(eq - spec), spec);
    for (size_t i = 0; i < klen; i++) {
        if (isspace((unsigned char)key[i]))
            return FAIL(e, EX_CONFIG_,
                        "%s: property name '%.*s' contains white space", where,
                        (int)klen, key);
    }
    for (size_t i = 0; i < cfg->kafka_props_cnt; i++) {
        p = &cfg->kafka_props[i];
        if (p->target == target && strlen(p->key) == klen &&
            strncmp(p->key, key, klen) == 0) {
            kafka_prop_free(p);
            memmove(p, p + 1, (cfg->kafka_props_cnt - i - 1) * sizeof(*p));
            cfg->kafka_props_cnt--;
            break;
        }
    }
    cfg->kafka_props =
        dd_xrealloc(cfg->kafka_props, (cfg->kafka_props_cnt + 1) * sizeof(*p));
    p = &cfg->kafka_props[cfg->kafka_props_cnt++];
    p->target = target;
    p->key = dd_xstrndup(key, klen);
    p->value = dd_xstrdup(eq + 1);
    return DD_OK;
}

static int parse_replay(const char *s, int is_to, dd_replay_bound_t *b,
                        const char *where, err_t *e) {
    int64_t v;

    if (*s == '\0') {
        b->kind = is_to ? DD_REPLAY_END : DD_REPLAY_NONE;
        b->value = 0;
        return DD_OK;
    }
    if (strcmp(s, is_to ? "end" : "earliest") == 0) {
        b->kind = is_to ? DD_REPLAY_END : DD_REPLAY_EARLIEST;
        b->value = 0;
        return DD_OK;
    }
    if (isdigit((unsigned char)s[0]) && strspn(s, "0123456789") == strlen(s)) {
        if (is_to)
            return FAIL(e, EX_USAGE_,
                        "%s: '%s' is an offset; use end or a TIMESTAMP "
                        "(2026-11-27T20:00:00Z or @EPOCH_MS)",
                        where, s);
        if (parse_uint64(s, &v) != DD_OK)
            return FAIL(e, EX_USAGE_, "%s: offset '%s' is too large", where, s);
        b->kind = DD_REPLAY_OFFSET;
        b->value = v;
        return DD_OK;
    }
    if (parse_timestamp(s, &v) != DD_OK)
        return FAIL(e, EX_USAGE_,
                    "%s: '%s' is not %s or a TIMESTAMP "
                    "(2026-11-27T20:00:00Z, 2026-11-27T20:00:00.123+01:00 "
                    "or @EPOCH_MS)",
                    where, s, is_to ? "end" : "earliest, an OFFSET");
    b->kind = DD_REPLAY_TIMESTAMP;
    b->value = v;
    return DD_OK;
}

static void print_replay(const dd_replay_bound_t *b, FILE *fp) {
    char ts[32];

    switch (b->kind) {
        case DD_REPLAY_NONE:
            break;
        case DD_REPLAY_EARLIEST:
            fputs("earliest", fp);
            break;
        case DD_REPLAY_OFFSET:
            fprintf(fp, "%" PRId64, b->value);
            break;
        case DD_REPLAY_TIMESTAMP:
            fputs(dd_format_iso8601(b->value, ts, sizeof(ts)), fp);
            break;
        case DD_REPLAY_END:
            fputs("end", fp);
            break;
    }
}

/*----- The table -----*/

static int takes_value(const dd_option_t *o) {
    return o->type != OPT_BOOL && o->type != OPT_ACTION;
}

/* "--workers", "-X" or, for a short flag typed as such, "-b". */
static const char *flag_name(const dd_option_t *o, int is_short, char *buf,
                             size_t size) {
    if (o->name != NULL && !is_short)
        snprintf(buf, size, "--%s", o->name);
    else
        snprintf(buf, size, "-%c", o->short_name);
    return buf;
}

/* Parse v for option o into cfg. where names the source for errors. */
static int set_value(dd_config_t *cfg, const dd_option_t *o, const char *v,
                     const char *where, err_t *e) {
    int64_t n;
    char lo[32], hi[32];

    switch (o->type) {
        case OPT_STRING: {
            char **s = field(cfg, o);
            if ((int64_t)strlen(v) < o->min)
                return FAIL(e, EX_USAGE_, "%s: must not be empty", where);
            dd_free(*s);
            *s = dd_xstrdup(v);
            return DD_OK;
        }
        case OPT_INT:
            if (parse_int64(v, &n) != DD_OK)
                return FAIL(e, EX_USAGE_, "%s: '%s' is not an integer", where,
                            v);
            if (n < o->min || n > o->max)
                return FAIL(e, EX_USAGE_,
                            "%s: %" PRId64 " is out of range %" PRId64
                            "..%" PRId64,
                            where, n, o->min, o->max);
            *(int *)field(cfg, o) = (int)n;
            return DD_OK;
        case OPT_DURATION:
            if (parse_duration(v, &n) != DD_OK)
                return FAIL(e, EX_USAGE_,
                            "%s: '%s' is not a duration (an integer with unit "
                            "ms, s, m, h or d; bare = seconds)",
                            where, v);
            if (n < o->min || n > o->max)
                return FAIL(e, EX_USAGE_, "%s: %s is out of range %s..%s",
                            where, v, fmt_duration(o->min, lo, sizeof(lo)),
                            fmt_duration(o->max, hi, sizeof(hi)));
            *(int64_t *)field(cfg, o) = n;
            return DD_OK;
        case OPT_ENUM: {
            char list[128] = "";
            for (int i = 0; o->choices[i] != NULL; i++) {
                if (strcmp(v, o->choices[i]) == 0) {
                    *(int *)field(cfg, o) = i;
                    return DD_OK;
                }
                if (i > 0)
                    strncat(list, "|", sizeof(list) - strlen(list) - 1);
                strncat(list, o->choices[i], sizeof(list) - strlen(list) - 1);
            }
            return FAIL(e, EX_USAGE_, "%s: '%s' is not one of %s", where, v,
                        list);
        }
        case OPT_BOOL:
            if (parse_bool(v, (int *)field(cfg, o)) != DD_OK)
                return FAIL(e, EX_USAGE_,
                            "%s: '%s' is not a boolean (true or false)", where,
                            v);
            return DD_OK;
        case OPT_KAFKA_PROP:
            return add_kafka_prop(cfg, v, where, e);
        case OPT_URL: {
            dd_redis_url_t u;
            char prefix[192];
            snprintf(prefix, sizeof(prefix), "%s: ", where);
            if (parse_redis_url(v, &u, prefix, e) != DD_OK) {
                redis_url_free(&u);
                return DD_ERR;
            }
            redis_url_free(field(cfg, o));
            *(dd_redis_url_t *)field(cfg, o) = u;
            return DD_OK;
        }
        case OPT_LISTEN: {
            dd_http_addr_t h;
            if (parse_http(v, &h, where, e) != DD_OK)
                return DD_ERR;
            dd_free(((dd_http_addr_t *)field(cfg, o))->addr);
            *(dd_http_addr_t *)field(cfg, o) = h;
            return DD_OK;
        }
        case OPT_REPLAY_FROM:
        case OPT_REPLAY_TO:
            return parse_replay(v, o->type == OPT_REPLAY_TO, field(cfg, o),
                                where, e);
        case OPT_ACTION:
            cfg->action = o->action;
            return DD_OK;
    }
    return FAIL(e, EX_USAGE_, "%s: unsupported option type", where);
}

static const dd_option_t *find_long(const char *name, size_t len) {
    for (size_t i = 0; i < OPTIONS_CNT; i++) {
        const char *n = dd_options[i].name;
        if (n != NULL && strlen(n) == len && strncmp(n, name, len) == 0)
            return &dd_options[i];
    }
    return NULL;
}

static const dd_option_t *find_short(int c) {
    for (size_t i = 0; i < OPTIONS_CNT; i++) {
        if (c != 0 && dd_options[i].short_name == c)
            return &dd_options[i];
    }
    return NULL;
}

/* Split argv into tokens; nothing is set yet. */
static int tokenize(int argc, char **argv, token_t *toks, size_t *cnt,
                    err_t *e) {
    *cnt = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        token_t *t = &toks[*cnt];

        if (strcmp(a, "--") == 0) {
            if (i + 1 < argc)
                return FAIL(e, EX_USAGE_, "unexpected argument '%s'",
                            argv[i + 1]);
            break;
        }
        if (a[0] == '-' && a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);

            t->o = find_long(name, len);
            t->is_short = 0;
            if (t->o == NULL)
                return FAIL(e, EX_USAGE_,
                            "unknown option '--%.*s' (see --help)", (int)len,
                            name);
            if (t->o->type == OPT_ACTION && eq != NULL)
                return FAIL(e, EX_USAGE_, "option '--%s' does not take a value",
                            t->o->name);
            if (eq != NULL)
                t->value = eq + 1;
            else if (t->o->type == OPT_BOOL)
                t->value = "true";
            else if (t->o->type == OPT_ACTION)
                t->value = NULL;
            else if (i + 1 < argc)
                t->value = argv[++i];
            else
                return FAIL(e, EX_USAGE_, "option '--%s' requires a value",
                            t->o->name);
        } else if (a[0] == '-' && a[1] != '\0') {
            t->o = find_short((unsigned char)a[1]);
            t->is_short = 1;
            if (t->o == NULL)
                return FAIL(e, EX_USAGE_, "unknown option '-%c' (see --help)",
                            a[1]);
            if (!takes_value(t->o)) {
                if (a[2] != '\0')
                    return FAIL(e, EX_USAGE_,
                                "option '-%c' does not take a value", a[1]);
                t->value = t->o->type == OPT_BOOL ? "true" : NULL;
            } else if (a[2] != '\0') {
                t->value = a + 2;
            } else if (i + 1 < argc) {
                t->value = argv[++i];
            } else {
                return FAIL(e, EX_USAGE_, "option '-%c' requires a value",
                            a[1]);
            }
        } else {
            return FAIL(e, EX_USAGE_, "unexpected argument '%s'", a);
        }
        (*cnt)++;
    }
    return DD_OK;
}

static const char *env_get(char **envp, const char *name) {
    size_t n = strlen(name);

    for (char **p = envp; p != NULL && *p != NULL; p++) {
        if (strncmp(*p, name, n) == 0 && (*p)[n] == '=')
            return *p + n + 1;
    }
    return NULL;
}

/* DISPATCHD_KAFKA_SESSION_TIMEOUT_MS=6000 -> session.timeout.ms=6000. */
static int load_kafka_env(dd_config_t *cfg, char **envp, err_t *e) {
    size_t plen = strlen(DD_CONFIG_KAFKA_ENV_PREFIX);

    for (char **p = envp; p != NULL && *p != NULL; p++) {
        const char *eq = strchr(*p, '=');
        char where[128];
        char *spec;
        size_t klen;
        int rc;

        if (strncmp(*p, DD_CONFIG_KAFKA_ENV_PREFIX, plen) != 0 || eq == NULL ||
            eq[1] == '\0')
            continue;
        klen = (size_t)(eq - *p) - plen;
        snprintf(where, sizeof(where), "%.*s", (int)(eq - *p), *p);
        spec = dd_xstrdup(*p + plen);
        for (size_t i = 0; i < klen; i++)
            spec[i] =
                spec[i] == '_' ? '.' : (char)tolower((unsigned char)spec[i]);
        rc = add_kafka_prop(cfg, spec, where, e);
        dd_free(spec);
        if (rc != DD_OK)
            return DD_ERR;
    }
    return DD_OK;
}

/* Checks that span options. */
static int validate(const dd_config_t *cfg, err_t *e) {
    const dd_replay_bound_t *from = &cfg->replay_from, *to = &cfg->replay_to;

    if (to->kind == DD_REPLAY_TIMESTAMP && from->kind == DD_REPLAY_NONE)
        return FAIL(e, EX_CONFIG_, "--replay-to needs --replay-from");
    if (to->kind == DD_REPLAY_TIMESTAMP && from->kind == DD_REPLAY_TIMESTAMP &&
        to->value <= from->value)
        /* A bad range, like the ones found at start: EX_USAGE. */
        return FAIL(e, EX_USAGE_, "--replay-to must be after --replay-from");
    if (cfg->dry_run && from->kind == DD_REPLAY_NONE)
        return FAIL(e, EX_CONFIG_, "--dry-run needs --replay-from");
    return DD_OK;
}

int dd_config_load(dd_config_t *cfg, int argc, char **argv, char **envp,
                   char *errstr, size_t errstr_size, int *exit_code) {
    err_t e = {errstr, errstr_size, 0};
    token_t *toks = dd_xcalloc(argc > 0 ? (size_t)argc : 1, sizeof(*toks));
    size_t ntok = 0;
    char where[160], flag[64];
    int rc = DD_ERR;

    memset(cfg, 0, sizeof(*cfg));
    if (envp == NULL)
        envp = environ;
    if (errstr != NULL && errstr_size > 0)
        errstr[0] = '\0';

    for (size_t i = 0; i < OPTIONS_CNT; i++) {
        const dd_option_t *o = &dd_options[i];
        if (o->def == NULL)
            continue;
        snprintf(where, sizeof(where), "default of %s",
                 flag_name(o, 0, flag, sizeof(flag)));
        if (set_value(cfg, o, o->def, where, &e) != DD_OK)
            goto out;
    }

    if (tokenize(argc, argv, toks, &ntok, &e) != DD_OK)
        goto out;
    for (size_t i = 0; i < ntok; i++) {
        dd_config_action_t a = toks[i].o->action;
        if (toks[i].o->type == OPT_ACTION && a != DD_CONFIG_ACTION_DUMP) {
            cfg->action = a;
            rc = DD_OK;
            goto out;
        }
    }

    for (size_t i = 0; i < OPTIONS_CNT; i++) {
        const dd_option_t *o = &dd_options[i];
        const char *v;
        if (o->env == NULL || o->type == OPT_KAFKA_PROP)
            continue;
        v = env_get(envp, o->env);
        if (v == NULL || *v == '\0')
            continue;
        snprintf(where, sizeof(where), "%s (%s)", o->env,
                 flag_name(o, 0, flag, sizeof(flag)));
        if (set_value(cfg, o, v, where, &e) != DD_OK)
            goto out;
    }
    if (load_kafka_env(cfg, envp, &e) != DD_OK)
        goto out;

    for (size_t i = 0; i < ntok; i++) {
        flag_name(toks[i].o, toks[i].is_short, where, sizeof(where));
        if (set_value(cfg, toks[i].o, toks[i].value, where, &e) != DD_OK)
            goto out;
    }
    rc = validate(cfg, &e);

out:
    dd_free(toks);
    if (rc != DD_OK) {
        dd_config_close(cfg);
        *exit_code = e.code != 0 ? e.code : EX_USAGE_;
    } else {
        *exit_code = 0;
    }
    return rc;
}

void dd_config_close(dd_config_t *cfg) {
    for (size_t i = 0; i < OPTIONS_CNT; i++) {
        const dd_option_t *o = &dd_options[i];
        if (o->type == OPT_STRING)
            dd_free(*(char **)field(cfg, o));
    }
    redis_url_free(&cfg->redis);
    dd_free(cfg->http.addr);
    for (size_t i = 0; i < cfg->kafka_props_cnt; i++)
        kafka_prop_free(&cfg->kafka_props[i]);
    dd_free(cfg->kafka_props);
    memset(cfg, 0, sizeof(*cfg));
}

/*----- Output -----*/

/* Print text word-wrapped to 79 columns, continuation lines at indent;
 * col is the current column. NBSP (\x1f) joins words that must stay on one
 * line and prints as a space. */
static void print_wrapped(FILE *fp, const char *text, int col, int indent) {
    while (*text != '\0') {
        size_t w = strcspn(text, " ");
        if (col > indent && col + 1 + (int)w > 79) {
            fprintf(fp, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', fp);
            col++;
        }
        for (size_t i = 0; i < w; i++)
            fputc(text[i] == NBSP ? ' ' : text[i], fp);
        col += (int)w;
        text += w;
        while (*text == ' ')
            text++;
    }
    fputc('\n', fp);
}

void dd_config_print_help(FILE *fp) {
    const int indent = 28;

    fputs("Usage: dispatchd [OPTION]...\n"
          "Consume courier-dispatch requests from Kafka, assign couriers "
          "with Redis\n"
          "lookups and publish the results to Kafka.\n"
          "\n"
          "Options (every option also reads the environment variable "
          "shown; an empty\n"
          "variable counts as unset; flags win over the environment):\n",
          fp);
    for (size_t i = 0; i < OPTIONS_CNT; i++) {
        const dd_option_t *o = &dd_options[i];
        char head[96], extra[256];
        int n;

        if (o->flags & OPT_F_HIDDEN)
            continue;
        if (o->short_name != 0 && o->name != NULL)
            n = snprintf(head, sizeof(head), "  -%c, --%s", o->short_name,
                         o->name);
        else if (o->name != NULL)
            n = snprintf(head, sizeof(head), "      --%s", o->name);
        else
            n = snprintf(head, sizeof(head), "  -%c", o->short_name);
        if (o->arg != NULL)
            n += snprintf(head + n, sizeof(head) - (size_t)n, " %s", o->arg);
        fputs(head, fp);
        if (n + 2 > indent) {
            fprintf(fp, "\n%*s", indent, "");
        } else {
            fprintf(fp, "%*s", indent - n, "");
        }
        print_wrapped(fp, o->help, indent, indent);
        extra[0] = '\0';
        if (o->env != NULL && o->type != OPT_KAFKA_PROP)
            snprintf(extra, sizeof(extra), "[%s]", o->env);
        if (o->def != NULL) {
            size_t len = strlen(extra);
            snprintf(extra + len, sizeof(extra) - len, " default:\x1f%s",
                     *o->def != '\0' ? o->def : "(empty)");
        }
        if (o->type == OPT_INT) {
            size_t len = strlen(extra);
            snprintf(extra + len, sizeof(extra) - len,
                     ", %" PRId64 "..%" PRId64, o->min, o->max);
        }
        if (o->type == OPT_ENUM) {
            size_t len = strlen(extra);
            snprintf(extra + len, sizeof(extra) - len, ", one of");
            for (int c = 0; o->choices[c] != NULL; c++) {
                len = strlen(extra);
                snprintf(extra + len, sizeof(extra) - len, "%s%s",
                         c > 0 ? "|" : " ", o->choices[c]);
            }
        }
        if (extra[0] != '\0') {
            fprintf(fp, "%*s", indent, "");
            print_wrapped(fp, extra[0] == ' ' ? extra + 1 : extra, indent,
                          indent);
        }
    }
    fputs("\n"
          "Values:\n"
          "  DURATION   an integer with unit ms, s, m, h or d (250ms, 30s, "
          "7d); a bare\n"
          "             integer means seconds.\n"
          "  TIMESTAMP  ISO-8601 date and time with Z or an offset, "
          "optional fraction:\n"
          "             2026-11-27T20:00:00Z, 2026-11-27T20:00:00.123+01:00;"
          " or @EPOCH_MS\n"
          "             (@1795809600000, milliseconds since 1970).\n"
          "  START      earliest | OFFSET (a plain integer: an offset, never"
          " a time) |\n"
          "             TIMESTAMP.\n"
          "  END        end | TIMESTAMP.\n"
          "\n"
          "Exit status: 0 ok; 64 bad usage; 78 bad configuration; 69 or 70 "
          "fatal runtime\n"
          "failure.\n",
          fp);
}

static void print_value(const dd_config_t *cfg, const dd_option_t *o,
                        FILE *fp) {
    char buf[32];

    switch (o->type) {
        case OPT_STRING: {
            const char *s = *(char *const *)cfield(cfg, o);
            fputs((o->flags & OPT_F_SECRET) && *s != '\0' ? "***" : s, fp);
            break;
        }
        case OPT_INT:
            fprintf(fp, "%d", *(const int *)cfield(cfg, o));
            break;
        case OPT_DURATION:
            fputs(fmt_duration(*(const int64_t *)cfield(cfg, o), buf,
                               sizeof(buf)),
                  fp);
            break;
        case OPT_ENUM:
            fputs(o->choices[*(const int *)cfield(cfg, o)], fp);
            break;
        case OPT_BOOL:
            fputs(*(const int *)cfield(cfg, o) ? "true" : "false", fp);
            break;
        case OPT_URL:
            print_redis_url(cfield(cfg, o), fp);
            break;
        case OPT_LISTEN: {
            const dd_http_addr_t *h = cfield(cfg, o);
            if (!h->enabled)
                fputs("0", fp);
            else if (strchr(h->addr, ':') != NULL)
                fprintf(fp, "[%s]:%d", h->addr, h->port);
            else
                fprintf(fp, "%s:%d", h->addr, h->port);
            break;
        }
        case OPT_REPLAY_FROM:
        case OPT_REPLAY_TO:
            print_replay(cfield(cfg, o), fp);
            break;
        case OPT_KAFKA_PROP:
        case OPT_ACTION:
            break;
    }
}

void dd_config_dump(const dd_config_t *cfg, FILE *fp) {
    static const char *const target_prefix[] = {"", "CONSUMER_", "PRODUCER_"};

    for (size_t i = 0; i < OPTIONS_CNT; i++) {
        const dd_option_t *o = &dd_options[i];
        if (o->env == NULL || o->type == OPT_KAFKA_PROP)
            continue;
        fprintf(fp, "%s=", o->env);
        print_value(cfg, o, fp);
        fputc('\n', fp);
    }
    for (size_t i = 0; i < cfg->kafka_props_cnt; i++) {
        const dd_kafka_prop_t *p = &cfg->kafka_props[i];
        const char *value = is_secret_key(p->key) ? "***" : p->value;

        /* Only lower-case names without '_' survive the env mapping, and
         * an empty environment variable counts as unset. */
        if (strpbrk(p->key, "_=ABCDEFGHIJKLMNOPQRSTUVWXYZ") != NULL ||
            p->value[0] == '\0') {
            fprintf(fp, "# -X %s%s=%s (no environment form)\n",
                    p->target == DD_KAFKA_TARGET_BOTH       ? ""
                    : p->target == DD_KAFKA_TARGET_CONSUMER ? "consumer."
                                                            : "producer.",
                    p->key, value);
            continue;
        }
        fprintf(fp, "%s%s", DD_CONFIG_KAFKA_ENV_PREFIX,
                target_prefix[p->target]);
        for (const char *k = p->key; *k != '\0'; k++)
            fputc(*k == '.' ? '_' : toupper((unsigned char)*k), fp);
        fprintf(fp, "=%s\n", value);
    }
}

size_t dd_config_env_names(const char **out, size_t max) {
    size_t n = 0;

    for (size_t i = 0; i < OPTIONS_CNT; i++) {
        const dd_option_t *o = &dd_options[i];
        if (o->env == NULL || o->type == OPT_KAFKA_PROP)
            continue;
        if (n < max)
            out[n] = o->env;
        n++;
    }
    return n;
}

void dd_config_print_env_names(FILE *fp) {
    for (size_t i = 0; i < OPTIONS_CNT; i++) {
        const dd_option_t *o = &dd_options[i];
        if (o->env != NULL && o->type != OPT_KAFKA_PROP)
            fprintf(fp, "%s\n", o->env);
    }
    fprintf(fp, "%s*\n", DD_CONFIG_KAFKA_ENV_PREFIX);
}
