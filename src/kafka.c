/* SPDX-License-Identifier: MIT */
/*
 * Kafka client plumbing shared by the consumer and the producer; see
 * kafka_int.h. A fatal client error (idempotence broken, fenced) cannot be
 * repaired in place: whichever path it takes (librdkafka's "FATAL" log line
 * in log_cb, error_cb of either client, a consumer message or a commit with
 * err __FATAL, a produce or delivery error __FATAL), the first sighting is
 * logged once (kafka_fatal) and makes the stop request of stop.h, so main
 * runs the orderly shutdown and exits with EX_SOFTWARE.
 * It also keeps the outcome of the consumer's commits for /readyz.
 */
#include "kafka_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "stop.h"
#include "util.h"

static atomic_int commit_failures;        /* consecutive failed commits */
static atomic_llong commit_failing_since; /* dd_now_ms() of the first one */

void dd_kafka_fatal(rd_kafka_t *rk, const char *source) {
    char fatal[512];
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (dd_stop_is_fatal())
        return; /* seen already (log_cb or another path): logged once */
    if (rk != NULL)
        err = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        err = RD_KAFKA_RESP_ERR__FATAL;
        snprintf(fatal, sizeof(fatal), "no detail from the client");
    }
    DD_LOG(DD_LOG_ERROR, "kafka", "kafka_fatal",
           "fatal %s client error, shutting down: %s: %s", source,
           rd_kafka_err2name(err), fatal);
    dd_stop_request_fatal("fatal kafka client error (%s): %s: %s", source,
                          rd_kafka_err2name(err), fatal);
}

int dd_kafka_check_fatal(rd_kafka_t *rk, const char *source) {
    char buf[8];

    if (rk == NULL || rd_kafka_fatal_error(rk, buf, sizeof(buf)) ==
                          RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    dd_kafka_fatal(rk, source);
    return 1;
}

void dd_kafka_commit_result(rd_kafka_resp_err_t err) {
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        atomic_store(&commit_failures, 0);
        return;
    }
    if (atomic_fetch_add(&commit_failures, 1) == 0)
        atomic_store(&commit_failing_since, dd_now_ms());
}

int dd_kafka_commit_failing(int64_t *since_ms) {
    int n = atomic_load(&commit_failures);

    *since_ms = atomic_load(&commit_failing_since);
    return n;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf) {
    const char *text = buf;

    dd_log_rdkafka(level, fac, buf);
    /* librdkafka logs "FATAL" the moment a fatal error is raised, on any
     * thread and also while nobody polls (during the shutdown, the consumer
     * queue that would carry it is no longer served). The rk lock may be
     * held here, so rd_kafka_fatal_error() must not be called: the reason
     * is the logged text without its "[thrd:...]: " prefix. */
    if (strcmp(fac, "FATAL") != 0 || dd_stop_is_fatal())
        return;
    if (strncmp(text, "[thrd:", 6) == 0 && strstr(text, "]: ") != NULL)
        text = strstr(text, "]: ") + 3;
    DD_LOG(DD_LOG_ERROR, "kafka", "kafka_fatal",
           "fatal %s client error, shutting down: %s",
           rd_kafka_type(rk) == RD_KAFKA_PRODUCER ? "producer" : "consumer",
           text);
    dd_stop_request_fatal(
        "fatal kafka client error (%s): %s",
        rd_kafka_type(rk) == RD_KAFKA_PRODUCER ? "producer" : "consumer", text);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
    (void)opaque;
    dd_metrics_inc(DD_C_KAFKA_ERRORS);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        dd_kafka_fatal(rk, rd_kafka_type(rk) == RD_KAFKA_PRODUCER ? "producer"
                                                                  : "consumer");
        return;
    }
    /* Informational: librdkafka retries by itself (STYLE.md section 4). */
    DD_LOG(DD_LOG_WARN, "kafka", "kafka_error", "%s: %s",
           rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

int dd_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                      char *errstr, size_t errstr_size) {
    char msg[512];
    if (rd_kafka_conf_set(conf, key, value, msg, sizeof(msg)) ==
        RD_KAFKA_CONF_OK)
        return DD_OK;
    dd_set_error(errstr, errstr_size, "kafka property %s: %s", key, msg);
    return DD_ERR;
}

/* Whether the operator set key with -X for this client. */
static int prop_given(const dd_config_t *cfg, dd_kafka_target_t who,
                      const char *key) {
    for (size_t i = 0; i < cfg->kafka_props_cnt; i++) {
        const dd_kafka_prop_t *p = &cfg->kafka_props[i];
        if ((p->target == DD_KAFKA_TARGET_BOTH || p->target == who) &&
            strcmp(p->key, key) == 0)
            return 1;
    }
    return 0;
}

static int set_all(rd_kafka_conf_t *conf, const dd_kafka_kv_t *kv, size_t n,
                   char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < n; i++)
        if (dd_kafka_conf_set(conf, kv[i].key, kv[i].value, errstr,
                              errstr_size) != DD_OK)
            return DD_ERR;
    return DD_OK;
}

rd_kafka_conf_t *dd_kafka_conf_new(const dd_config_t *cfg,
                                   dd_kafka_target_t who,
                                   const dd_kafka_kv_t *defaults,
                                   size_t ndefaults,
                                   const dd_kafka_kv_t *forced, size_t nforced,
                                   char *errstr, size_t errstr_size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    if (dd_kafka_conf_set(conf, "bootstrap.servers", cfg->brokers, errstr,
                          errstr_size) != DD_OK ||
        dd_kafka_conf_set(conf, "client.id", "dispatchd", errstr,
                          errstr_size) != DD_OK)
        goto err;
    if (set_all(conf, defaults, ndefaults, errstr, errstr_size) != DD_OK)
        goto err;
    for (size_t i = 0; i < cfg->kafka_props_cnt; i++) {
        const dd_kafka_prop_t *p = &cfg->kafka_props[i];
        char msg[512];
        if (p->target != DD_KAFKA_TARGET_BOTH && p->target != who)
            continue;
        if (rd_kafka_conf_set(conf, p->key, p->value, msg, sizeof(msg)) !=
            RD_KAFKA_CONF_OK) {
            dd_set_error(errstr, errstr_size, "-X %s%s=...: %s",
                         p->target == DD_KAFKA_TARGET_CONSUMER   ? "consumer."
                         : p->target == DD_KAFKA_TARGET_PRODUCER ? "producer."
                                                                 : "",
                         p->key, msg);
            goto err;
        }
    }
    for (size_t i = 0; i < nforced; i++)
        if (prop_given(cfg, who, forced[i].key))
            DD_LOG(DD_LOG_WARN, "kafka", "kafka_property_overridden",
                   "-X %s is ignored: dispatchd needs %s=%s", forced[i].key,
                   forced[i].key, forced[i].value);
    if (set_all(conf, forced, nforced, errstr, errstr_size) != DD_OK)
        goto err;
    return conf;
err:
    rd_kafka_conf_destroy(conf);
    return NULL;
}
