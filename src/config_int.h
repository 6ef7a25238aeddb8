/* SPDX-License-Identifier: MIT */
/*
 * config, private: what the files of the config module share. The option
 * table's row type and the table itself (src/config_options.c), the scalar
 * value syntax (src/config_value.c); the loader (src/config.c) and the
 * printers (src/config_print.c) both read them. Not for other modules.
 */
#ifndef DD_CONFIG_INT_H
#define DD_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Duration units, in ms. */
#define DD_CONFIG_SEC  ((int64_t)1000)
#define DD_CONFIG_MIN  (60 * DD_CONFIG_SEC)
#define DD_CONFIG_HOUR (60 * DD_CONFIG_MIN)
#define DD_CONFIG_DAY  (24 * DD_CONFIG_HOUR)

/** How an option's value is parsed and stored. */
typedef enum opt_type {
    OPT_STRING,      /* char *; min = minimum length */
    OPT_INT,         /* int; min..max */
    OPT_DURATION,    /* int64_t ms; min..max in ms */
    OPT_ENUM,        /* int index into choices */
    OPT_BOOL,        /* int 0/1; a flag on the command line */
    OPT_KAFKA_PROP,  /* -X PROP=VALUE into kafka_props; env is a prefix */
    OPT_URL,         /* dd_redis_url_t */
    OPT_CLUSTER_URL, /* dd_redis_url_t of seeds; "" = none */
    OPT_LISTEN,      /* dd_http_addr_t */
    OPT_REPLAY_FROM, /* dd_replay_bound_t */
    OPT_REPLAY_TO,   /* dd_replay_bound_t */
    OPT_ACTION,      /* sets cfg->action; no value, no environment */
} opt_type_t;

#define OPT_F_SECRET 0x1 /* value may hold a secret: never echoed */
#define OPT_F_HIDDEN 0x2 /* left out of --help */

/** One row of the option table. */
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

/** The option table, in --help order (src/config_options.c). */
extern const dd_option_t dd_config_options[];
extern const size_t dd_config_options_cnt;

/*----- Scalar values (src/config_value.c); DD_OK or DD_ERR -----*/

/** @brief Decimal integer, optional '-', nothing else (no space, no '+'). */
int dd_config_parse_int(const char *s, int64_t *out);

/** @brief Digits only (no sign): offsets, epoch ms. */
int dd_config_parse_uint(const char *s, int64_t *out);

/** @brief DURATION: INTEGER[ms|s|m|h|d], bare = seconds; into ms. */
int dd_config_parse_duration(const char *s, int64_t *ms);

/**
 * @brief Format ms with the largest unit that is exact: 7d, 1h, 1500ms, 0s.
 * @returns buf
 */
const char *dd_config_fmt_duration(int64_t ms, char *buf, size_t size);

/** @brief true|1|yes|on or false|0|no|off, any case; into 1 or 0. */
int dd_config_parse_bool(const char *s, int *out);

/**
 * @brief TIMESTAMP: YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|+HH:MM|-HH:MM) or
 *        @EPOCH_MS, from 1970 to 9999-12-31T23:59:59.999Z; into epoch ms.
 */
int dd_config_parse_timestamp(const char *s, int64_t *ms);

#endif /* DD_CONFIG_INT_H */
