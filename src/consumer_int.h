/* SPDX-License-Identifier: MIT */
/*
 * consumer, private: helpers exposed for unit tests
 * (tests/unit/test_consumer.c). No librdkafka types. The replay range
 * resolution has its own module (include/replay_range.h).
 */
#ifndef DD_CONSUMER_INT_H
#define DD_CONSUMER_INT_H

#include <stddef.h>
#include <stdint.h>

/**
 * @brief "0,3,6" from n partition ids into buf (truncated with "..." when
 *        it does not fit); "-" for none. @returns buf
 * @locality any thread (pure)
 */
char *dd_consumer_format_parts(const int32_t *ids, size_t n, char *buf,
                               size_t size);

#endif /* DD_CONSUMER_INT_H */
