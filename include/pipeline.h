/* SPDX-License-Identifier: MIT */
/*
 * pipeline: creates and owns the modules (offset tracker, job queue,
 * producer, worker pool, consumer), starts them in order, waits for SIGINT
 * or SIGTERM and runs the shutdown sequence of STYLE.md section 6.
 */
#ifndef DD_PIPELINE_H
#define DD_PIPELINE_H

#include <stdio.h>

#include "config.h"

/**
 * @brief Run dispatchd until SIGINT/SIGTERM (which the caller blocked in
 *        every thread before calling) or a fatal Kafka client error, then
 *        shut down in order within cfg->shutdown_timeout_ms.
 * @param cfg borrowed, read-only for the whole run
 * @returns the process exit status: 0 after a clean shutdown, 78 when
 *          librdkafka rejects a property, 70 after a fatal Kafka error
 *          (seen at any time). A second signal during shutdown exits at
 *          once with 130 (70 after a fatal error); when the shutdown budget
 *          runs out before the clients are closed, the process ends here
 *          (_exit) with the status. Nothing is committed past undone work,
 *          so the next run reprocesses it.
 * @locality main thread
 */
int dd_pipeline_run(const dd_config_t *cfg);

/** @brief Print librdkafka's configuration properties (-X list). */
void dd_pipeline_print_kafka_properties(FILE *fp);

/** @brief Print the versions of the libraries linked in (--version). */
void dd_pipeline_print_versions(FILE *fp);

#endif /* DD_PIPELINE_H */
