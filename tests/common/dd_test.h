/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the integration tests: where the real services are,
 * unique topic names, topic creation through the Kafka admin API, a Redis
 * connection on the dedicated test database, and waiting for a condition
 * with a deadline (never a bare sleep).
 *
 * Services come from the environment: DISPATCHD_TEST_BROKERS (else
 * DISPATCHD_BROKERS, as written by scripts/stack), DISPATCHD_TEST_REDIS_HOST
 * / _PORT (else DISPATCHD_REDIS_HOST / _PORT). When a service is missing a
 * test skips (exit 77 for the binary), unless DD_TEST_REQUIRE_SERVICES=1
 * (set by `make test` and CI), where a missing service is a failure.
 */
#ifndef DD_TEST_H
#define DD_TEST_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#define DD_TEST_REDIS_DB 15

/** @brief Broker list, or NULL when none is configured. */
const char *dd_test_brokers(void);

/** @brief Redis host and port, 0 when none is configured. */
const char *dd_test_redis_host(void);
int dd_test_redis_port(void);

/**
 * @brief Call at the start of a test that needs Kafka (and Redis when
 *        need_redis): skips or fails as the environment says.
 */
void dd_test_require_services(int need_redis);

/** @brief dd_test_<pid>_<rand>_<name> into buf. */
void dd_test_topic_name(char *buf, size_t size, const char *name);

/**
 * @brief Create a topic with the admin API and wait until its metadata shows
 *        every partition. Fails the test on error.
 */
void dd_test_create_topic(const char *topic, int partitions);

/**
 * @brief Connect to the test Redis, SELECT the test database and check it is
 *        empty. Fails the test otherwise. @returns owned context.
 */
redisContext *dd_test_redis_connect(void);

/** @brief FLUSHDB and free. Accepts NULL. */
void dd_test_redis_close(redisContext *c);

/**
 * @brief Poll pred(arg) every few milliseconds until it returns non-zero or
 *        timeout_ms passes. @returns 1 when the condition held, 0 on timeout.
 */
int dd_test_wait_until(int (*pred)(void *arg), void *arg, int timeout_ms);

/** @brief The test timeout multiplier (DD_TEST_TIMEOUT_MULTIPLIER, >= 1). */
int dd_test_timeout_multiplier(void);

#endif /* DD_TEST_H */
