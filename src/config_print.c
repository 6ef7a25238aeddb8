/* SPDX-License-Identifier: MIT */
/*
 * config_print: everything config writes out, all driven by the option
 * table dd_config_options[]: --help (word-wrapped to 79 columns),
 * --dump-config (NAME=value lines that load back into the same config, with
 * the Redis password and secret-looking librdkafka properties redacted as
 * "***") and --print-env-names. Nothing here parses or validates.
 */
#include "config_int.h"

#include "util.h"

#include <ctype.h>
#include <inttypes.h>
#include <string.h>

#define NBSP '\x1f' /* see print_wrapped() */

static const void *cfield(const dd_config_t *cfg, const dd_option_t *o) {
    return (const char *)cfg + o->off;
}

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
    for (size_t i = 0; i < dd_config_options_cnt; i++) {
        const dd_option_t *o = &dd_config_options[i];
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

/* Keys whose values --dump-config never shows. */
static int is_secret_key(const char *key) {
    return strcasestr(key, "password") != NULL ||
           strcasestr(key, "secret") != NULL ||
           strcasestr(key, "sasl") != NULL ||
           strcasestr(key, "key.pem") != NULL;
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
            fputs(dd_config_fmt_duration(*(const int64_t *)cfield(cfg, o), buf,
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
        case OPT_CLUSTER_URL:
            dd_redis_url_print(cfield(cfg, o), fp);
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

    for (size_t i = 0; i < dd_config_options_cnt; i++) {
        const dd_option_t *o = &dd_config_options[i];
        if (o->env == NULL || o->type == OPT_KAFKA_PROP)
            continue;
        /* With --redis-cluster, --redis is unused (and can only be its
         * default): left out, the dump fed back loads the same. */
        if (o->type == OPT_URL && cfg->redis_cluster.nseeds > 0)
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

    for (size_t i = 0; i < dd_config_options_cnt; i++) {
        const dd_option_t *o = &dd_config_options[i];
        if (o->env == NULL || o->type == OPT_KAFKA_PROP)
            continue;
        if (n < max)
            out[n] = o->env;
        n++;
    }
    return n;
}

void dd_config_print_env_names(FILE *fp) {
    for (size_t i = 0; i < dd_config_options_cnt; i++) {
        const dd_option_t *o = &dd_config_options[i];
        if (o->env != NULL && o->type != OPT_KAFKA_PROP)
            fprintf(fp, "%s\n", o->env);
    }
    fprintf(fp, "%s*\n", DD_CONFIG_KAFKA_ENV_PREFIX);
}
