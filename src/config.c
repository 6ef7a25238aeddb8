/* SPDX-License-Identifier: MIT */
/*
 * config: loading the configuration, and nothing else. It walks the option
 * table dd_config_options[] (config_options.c) for defaults, the
 * environment and the command line, parses every value by the row's type
 * (scalars with config_value.c, --redis with redis_url.c, --http, -X and
 * the replay bounds here) and checks the options that span each other.
 * Printing (--help, --dump-config) is config_print.c. The command-line
 * parser is hand-rolled rather than getopt_long, so it has no global state,
 * never accepts abbreviated flags and can name the option in every error.
 *
 * Loading order: defaults, then the command line is split into (option,
 * value) tokens (so --help works even with a bad environment), then the
 * environment, then the tokens, then the checks that span options. Every
 * value, defaults included, goes through the same set_value().
 *
 * Error classes: DD_EXIT_USAGE (64) for the command line's shape and for
 * scalar values (integer, duration, enum, bool, timestamp, empty string);
 * DD_EXIT_CONFIG (78) for structured values (redis URL, --http address, -X
 * properties) and for options that contradict each other.
 *
 * Leaf module: includes no librdkafka, hiredis or jansson header.
 */
#include "config.h"

#include "config_int.h"
#include "exit_codes.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/*----- Structured values -----*/

/* Port from s[0..n), in min..65535. */
static int parse_port(const char *s, size_t n, int min, int *port) {
    char buf[8];
    int64_t v;

    if (n == 0 || n >= sizeof(buf))
        return DD_ERR;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (dd_config_parse_uint(buf, &v) != DD_OK || v < min || v > 65535)
        return DD_ERR;
    *port = (int)v;
    return DD_OK;
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
        return FAIL(e, DD_EXIT_CONFIG,
                    "%s: expected ADDR:PORT, [IPV6]:PORT, :PORT or 0, got "
                    "'%s'",
                    where, s);
    alen = (size_t)(colon - s);
    if (s[0] == '[') {
        if (alen < 3 || s[alen - 1] != ']')
            return FAIL(e, DD_EXIT_CONFIG, "%s: bad [IPV6]:PORT '%s'", where,
                        s);
        addr = s + 1;
        alen -= 2;
        af = AF_INET6;
    } else if (alen == 0) {
        addr = "0.0.0.0";
        alen = strlen(addr);
    }
    if (alen >= sizeof(buf))
        return FAIL(e, DD_EXIT_CONFIG, "%s: '%s' is not a numeric IP address",
                    where, s);
    memcpy(buf, addr, alen);
    buf[alen] = '\0';
    if (inet_pton(af, buf, sa) != 1)
        return FAIL(e, DD_EXIT_CONFIG,
                    "%s: '%s' is not a numeric IP%s address (IPv6 needs "
                    "[brackets])",
                    where, buf, af == AF_INET6 ? "v6" : "v4");
    if (parse_port(colon + 1, strlen(colon + 1), 0, &h->port) != DD_OK)
        return FAIL(e, DD_EXIT_CONFIG, "%s: bad port '%s' (0..65535)", where,
                    colon + 1);
    h->enabled = 1;
    h->addr = dd_xstrdup(buf);
    return DD_OK;
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
        return FAIL(e, DD_EXIT_CONFIG,
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
        return FAIL(e, DD_EXIT_CONFIG, "%s: empty property name in '%.*s='",
                    where, (int)(eq - spec), spec);
    for (size_t i = 0; i < klen; i++) {
        if (isspace((unsigned char)key[i]))
            return FAIL(e, DD_EXIT_CONFIG,
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
            return FAIL(e, DD_EXIT_USAGE,
                        "%s: '%s' is an offset; use end or a TIMESTAMP "
                        "(2026-11-27T20:00:00Z or @EPOCH_MS)",
                        where, s);
        if (dd_config_parse_uint(s, &v) != DD_OK)
            return FAIL(e, DD_EXIT_USAGE, "%s: offset '%s' is too large", where,
                        s);
        b->kind = DD_REPLAY_OFFSET;
        b->value = v;
        return DD_OK;
    }
    if (dd_config_parse_timestamp(s, &v) != DD_OK)
        return FAIL(e, DD_EXIT_USAGE,
                    "%s: '%s' is not %s or a TIMESTAMP "
                    "(2026-11-27T20:00:00Z, 2026-11-27T20:00:00.123+01:00 "
                    "or @EPOCH_MS)",
                    where, s, is_to ? "end" : "earliest, an OFFSET");
    b->kind = DD_REPLAY_TIMESTAMP;
    b->value = v;
    return DD_OK;
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
                return FAIL(e, DD_EXIT_USAGE, "%s: must not be empty", where);
            dd_free(*s);
            *s = dd_xstrdup(v);
            return DD_OK;
        }
        case OPT_INT:
            if (dd_config_parse_int(v, &n) != DD_OK)
                return FAIL(e, DD_EXIT_USAGE, "%s: '%s' is not an integer",
                            where, v);
            if (n < o->min || n > o->max)
                return FAIL(e, DD_EXIT_USAGE,
                            "%s: %" PRId64 " is out of range %" PRId64
                            "..%" PRId64,
                            where, n, o->min, o->max);
            *(int *)field(cfg, o) = (int)n;
            return DD_OK;
        case OPT_DURATION:
            if (dd_config_parse_duration(v, &n) != DD_OK)
                return FAIL(e, DD_EXIT_USAGE,
                            "%s: '%s' is not a duration (an integer with unit "
                            "ms, s, m, h or d; bare = seconds)",
                            where, v);
            if (n < o->min || n > o->max)
                return FAIL(e, DD_EXIT_USAGE, "%s: %s is out of range %s..%s",
                            where, v,
                            dd_config_fmt_duration(o->min, lo, sizeof(lo)),
                            dd_config_fmt_duration(o->max, hi, sizeof(hi)));
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
            return FAIL(e, DD_EXIT_USAGE, "%s: '%s' is not one of %s", where, v,
                        list);
        }
        case OPT_BOOL:
            if (dd_config_parse_bool(v, (int *)field(cfg, o)) != DD_OK)
                return FAIL(e, DD_EXIT_USAGE,
                            "%s: '%s' is not a boolean (true or false)", where,
                            v);
            return DD_OK;
        case OPT_KAFKA_PROP:
            return add_kafka_prop(cfg, v, where, e);
        case OPT_URL: {
            dd_redis_url_t u;
            char why[256];
            if (dd_redis_url_parse(v, &u, why, sizeof(why)) != DD_OK)
                return FAIL(e, DD_EXIT_CONFIG, "%s: %s", where, why);
            dd_redis_url_close(field(cfg, o));
            *(dd_redis_url_t *)field(cfg, o) = u;
            return DD_OK;
        }
        case OPT_CLUSTER_URL: {
            dd_redis_url_t u;
            char why[256];
            if (dd_redis_url_parse_cluster(v, &u, why, sizeof(why)) != DD_OK)
                return FAIL(e, DD_EXIT_CONFIG, "%s: %s", where, why);
            dd_redis_url_close(field(cfg, o));
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
    return FAIL(e, DD_EXIT_USAGE, "%s: unsupported option type", where);
}

static const dd_option_t *find_long(const char *name, size_t len) {
    for (size_t i = 0; i < dd_config_options_cnt; i++) {
        const char *n = dd_config_options[i].name;
        if (n != NULL && strlen(n) == len && strncmp(n, name, len) == 0)
            return &dd_config_options[i];
    }
    return NULL;
}

static const dd_option_t *find_short(int c) {
    for (size_t i = 0; i < dd_config_options_cnt; i++) {
        if (c != 0 && dd_config_options[i].short_name == c)
            return &dd_config_options[i];
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
                return FAIL(e, DD_EXIT_USAGE, "unexpected argument '%s'",
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
                return FAIL(e, DD_EXIT_USAGE,
                            "unknown option '--%.*s' (see --help)", (int)len,
                            name);
            if (t->o->type == OPT_ACTION && eq != NULL)
                return FAIL(e, DD_EXIT_USAGE,
                            "option '--%s' does not take a value", t->o->name);
            if (eq != NULL)
                t->value = eq + 1;
            else if (t->o->type == OPT_BOOL)
                t->value = "true";
            else if (t->o->type == OPT_ACTION)
                t->value = NULL;
            else if (i + 1 < argc)
                t->value = argv[++i];
            else
                return FAIL(e, DD_EXIT_USAGE, "option '--%s' requires a value",
                            t->o->name);
        } else if (a[0] == '-' && a[1] != '\0') {
            t->o = find_short((unsigned char)a[1]);
            t->is_short = 1;
            if (t->o == NULL)
                return FAIL(e, DD_EXIT_USAGE,
                            "unknown option '-%c' (see --help)", a[1]);
            if (!takes_value(t->o)) {
                if (a[2] != '\0')
                    return FAIL(e, DD_EXIT_USAGE,
                                "option '-%c' does not take a value", a[1]);
                t->value = t->o->type == OPT_BOOL ? "true" : NULL;
            } else if (a[2] != '\0') {
                t->value = a + 2;
            } else if (i + 1 < argc) {
                t->value = argv[++i];
            } else {
                return FAIL(e, DD_EXIT_USAGE, "option '-%c' requires a value",
                            a[1]);
            }
        } else {
            return FAIL(e, DD_EXIT_USAGE, "unexpected argument '%s'", a);
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

/* 1 when --redis holds its default, redis://127.0.0.1:6379/0. */
static int redis_is_default(const dd_redis_url_t *u) {
    return u->unix_path == NULL && u->host != NULL &&
           strcmp(u->host, "127.0.0.1") == 0 &&
           u->port == DD_REDIS_URL_DEFAULT_PORT && u->db == 0 &&
           u->user == NULL && u->password == NULL;
}

/* Checks that span options. */
static int validate(const dd_config_t *cfg, err_t *e) {
    const dd_replay_bound_t *from = &cfg->replay_from, *to = &cfg->replay_to;

    if (cfg->redis_cluster.nseeds > 0 && !redis_is_default(&cfg->redis))
        return FAIL(e, DD_EXIT_USAGE,
                    "--redis-cluster and --redis are mutually exclusive: "
                    "give the cluster's seeds (and credentials) in "
                    "--redis-cluster only");

    if (to->kind == DD_REPLAY_TIMESTAMP && from->kind == DD_REPLAY_NONE)
        return FAIL(e, DD_EXIT_CONFIG, "--replay-to needs --replay-from");
    if (to->kind == DD_REPLAY_TIMESTAMP && from->kind == DD_REPLAY_TIMESTAMP &&
        to->value <= from->value)
        /* A bad range, like the ones found at start: EX_USAGE. */
        return FAIL(e, DD_EXIT_USAGE,
                    "--replay-to must be after --replay-from");
    if (cfg->dry_run && from->kind == DD_REPLAY_NONE)
        return FAIL(e, DD_EXIT_CONFIG, "--dry-run needs --replay-from");
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

    for (size_t i = 0; i < dd_config_options_cnt; i++) {
        const dd_option_t *o = &dd_config_options[i];
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

    for (size_t i = 0; i < dd_config_options_cnt; i++) {
        const dd_option_t *o = &dd_config_options[i];
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
        *exit_code = e.code != 0 ? e.code : DD_EXIT_USAGE;
    } else {
        *exit_code = 0;
    }
    return rc;
}

void dd_config_close(dd_config_t *cfg) {
    for (size_t i = 0; i < dd_config_options_cnt; i++) {
        const dd_option_t *o = &dd_config_options[i];
        if (o->type == OPT_STRING)
            dd_free(*(char **)field(cfg, o));
    }
    dd_redis_url_close(&cfg->redis);
    dd_redis_url_close(&cfg->redis_cluster);
    dd_free(cfg->http.addr);
    for (size_t i = 0; i < cfg->kafka_props_cnt; i++)
        kafka_prop_free(&cfg->kafka_props[i]);
    dd_free(cfg->kafka_props);
    memset(cfg, 0, sizeof(*cfg));
}
