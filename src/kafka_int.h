/* SPDX-License-Identifier: MIT */
/*
 * Kafka client plumbing shared by consumer.c and producer.c: building a
 * librdkafka configuration from dd_config_t (defaults, then the operator's
 * -X properties, then the invariants dispatchd relies on), and the log and
 * error callbacks both clients use.
 */
#ifndef DD_KAFKA_INT_H
#define DD_KAFKA_INT_H

#include <librdkafka/rdkafka.h>

#include "config.h"

/** A property name and value. */
typedef struct dd_kafka_kv {
    const char *key;
    const char *value;
} dd_kafka_kv_t;

/**
 * @brief A configuration for one client: bootstrap.servers, client.id,
 *        log_cb and error_cb; then @p defaults; then every -X property for
 *        BOTH or @p who, in order; then @p forced, the invariants dispatchd
 *        relies on (an -X that tried to change one is logged and overridden).
 * @param defaults, forced borrowed arrays (may be empty)
 * @returns owned conf, or NULL with "-X key=...: reason" in errstr.
 * @locality main thread, at startup
 */
rd_kafka_conf_t *dd_kafka_conf_new(const dd_config_t *cfg,
                                   dd_kafka_target_t who,
                                   const dd_kafka_kv_t *defaults,
                                   size_t ndefaults,
                                   const dd_kafka_kv_t *forced, size_t nforced,
                                   char *errstr, size_t errstr_size);

/**
 * @brief Set one property; on failure fills errstr with the property name
 *        and librdkafka's own message. @returns DD_OK or DD_ERR.
 */
int dd_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                      char *errstr, size_t errstr_size);

/**
 * @brief A client raised a fatal error (RD_KAFKA_RESP_ERR__FATAL, by any
 *        path): log rd_kafka_fatal_error() and make the fatal stop request
 *        (stop.h), so the process shuts down and exits 70.
 * @param rk borrowed (optional: NULL when unknown)
 * @param source "consumer" or "producer", for the log and the reason
 * @locality any thread
 */
void dd_kafka_fatal(rd_kafka_t *rk, const char *source);

/**
 * @brief Whether @p rk is in a fatal state (rd_kafka_fatal_error()); the
 *        first time, the same as dd_kafka_fatal().
 * @param rk borrowed (optional) @returns 1 when fatal, else 0
 * @locality any thread
 */
int dd_kafka_check_fatal(rd_kafka_t *rk, const char *source);

/**
 * @brief Record the outcome of one offset commit (offset_commit_cb).
 * @locality dd-poll (or main during the final commit)
 */
void dd_kafka_commit_result(rd_kafka_resp_err_t err);

/**
 * @brief Consecutive failed commits so far (0 after a success), and in
 *        @p since_ms the dd_now_ms() of the first of them.
 * @locality any thread (atomics)
 */
int dd_kafka_commit_failing(int64_t *since_ms);

#endif /* DD_KAFKA_INT_H */
