/* SPDX-License-Identifier: MIT */
/*
 * exit_codes: the process exit statuses of dispatchd and its tools, defined
 * once in DD_EXIT_CODES (name, value, meaning). Values come from
 * <sysexits.h> where one fits; 130 is the shell's 128 + SIGINT. Every exit
 * status the programs return is a DD_EXIT_* constant from this table, or
 * DD_EXIT_SIGNAL_BASE + N after a replay interrupted by signal N. Adding a
 * status is one row here (and a line in the README's exit status lists).
 */
#ifndef DD_EXIT_CODES_H
#define DD_EXIT_CODES_H

#include <sysexits.h>

/* X(NAME, VALUE, MEANING) */
#define DD_EXIT_CODES(X)                                                       \
    X(OK, EX_OK, "clean shutdown; replay finished; a printed answer")          \
    X(USAGE, EX_USAGE,                                                         \
      "bad usage: unknown flag, malformed or out-of-range value, bad "         \
      "replay range, unknown replay topic")                                    \
    X(UNAVAILABLE, EX_UNAVAILABLE,                                             \
      "a service did not answer (replay: the brokers; seed tool: Redis)")      \
    X(SOFTWARE, EX_SOFTWARE,                                                   \
      "fatal runtime failure (fatal librdkafka error, setup failed)")          \
    X(CONFIG, EX_CONFIG,                                                       \
      "bad configuration: Redis URL, --http address, -X property, options "    \
      "that contradict each other")                                            \
    X(SIGNAL, 130, "a second SIGINT/SIGTERM during shutdown: exit at once")

/** Process exit statuses; see DD_EXIT_CODES for what each means. */
typedef enum dd_exit_code {
#define DD_EXIT_ENUM_(name, value, meaning) DD_EXIT_##name = (value),
    DD_EXIT_CODES(DD_EXIT_ENUM_)
#undef DD_EXIT_ENUM_
} dd_exit_code_t;

/* The README and --help document these numbers. */
_Static_assert(DD_EXIT_OK == 0 && DD_EXIT_USAGE == 64 &&
                   DD_EXIT_UNAVAILABLE == 69 && DD_EXIT_SOFTWARE == 70 &&
                   DD_EXIT_CONFIG == 78 && DD_EXIT_SIGNAL == 130,
               "exit statuses are part of the interface");

/** Replay interrupted by signal N exits with DD_EXIT_SIGNAL_BASE + N. */
#define DD_EXIT_SIGNAL_BASE 128

#endif /* DD_EXIT_CODES_H */
