/* SPDX-License-Identifier: MIT */
/*
 * stop: the one stop request of the process and the shutdown budget. A
 * signal (through the pipeline's dd-signal thread), a fatal Kafka client
 * error (from any client, on any path) or a completed replay asks the main
 * thread to stop by calling dd_stop_request_*(); main waits in
 * dd_stop_wait() and runs the orderly shutdown. A fatal error is sticky:
 * once seen, the exit status is 70 (EX_SOFTWARE) whatever else happens, and
 * its reason is what /readyz reports. The shutdown sequence splits its
 * --shutdown-timeout between its steps with dd_stop_step_deadline().
 */
#ifndef DD_STOP_H
#define DD_STOP_H

#include <stddef.h>
#include <stdint.h>

/**
 * @brief A signal asks for a stop: records the first signal number and
 *        wakes dd_stop_wait().
 * @returns the number of signals received so far (1 for the first)
 * @locality any thread (the pipeline's dd-signal thread)
 * @remark Not async-signal-safe: called from a sigwait() loop, never from a
 *         signal handler.
 */
int dd_stop_request_signal(int sig);

/**
 * @brief A fatal error asks for a stop: from now on dd_stop_is_fatal() is 1
 *        and the exit status is 70. The first reason is kept (later ones are
 *        only logged by their caller). Wakes dd_stop_wait(); harmless when a
 *        shutdown is already in progress.
 * @param fmt printf format of the reason (borrowed)
 * @locality any thread (librdkafka callbacks, dd-poll, dd-prod, main)
 */
void dd_stop_request_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/**
 * @brief The work is complete (a replay reached its end): wakes
 *        dd_stop_wait() without a signal or a fatal error.
 * @locality any thread
 */
void dd_stop_request_done(void);

/**
 * @brief Wait until a stop is requested or @p timeout_ms passed (negative:
 *        no limit). @returns 1 when a stop was requested, else 0.
 * @locality main thread
 */
int dd_stop_wait(int64_t timeout_ms);

/** @brief 1 once any stop was requested. @locality any thread */
int dd_stop_is_requested(void);

/** @brief 1 once a fatal error was seen. @locality any thread */
int dd_stop_is_fatal(void);

/** @brief The first signal that asked for a stop, or 0. @locality any */
int dd_stop_signal(void);

/**
 * @brief Copy the first fatal reason ("" when there was none) into @p buf.
 * @param buf caller's buffer of @p size bytes (size > 0)
 * @locality any thread
 */
void dd_stop_fatal_reason(char *buf, size_t size);

/**
 * @brief The exit status: 70 (EX_SOFTWARE) once a fatal error was seen,
 *        otherwise @p status. @locality any thread
 */
int dd_stop_exit_status(int status);

/**
 * @brief The deadline of one shutdown step: its share of what is left of
 *        the budget, @p weight out of @p weights_left (the weights of this
 *        step and of every later one). Time a step does not use goes to the
 *        later steps; the last step (weight == weights_left) gets all that
 *        is left.
 * @param now, deadline monotonic ms; deadline is the end of the budget
 * @returns a monotonic deadline, never later than @p deadline nor earlier
 *          than @p now
 * @locality any thread (pure)
 */
int64_t dd_stop_step_deadline(int64_t now, int64_t deadline, int weight,
                              int weights_left);

/** @brief Forget every request (unit tests only). @locality one thread */
void dd_stop_reset(void);

#endif /* DD_STOP_H */
