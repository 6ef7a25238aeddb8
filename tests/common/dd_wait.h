/* SPDX-License-Identifier: MIT */
/*
 * dd_wait: the one way threaded unit tests wait for callbacks: until a
 * counter that other threads raise (under a mutex, signalling a condition
 * variable) reaches a target, or a deadline passes. Header-only, so any
 * unit test can include it without a link dependency.
 */
#ifndef DD_WAIT_H
#define DD_WAIT_H

#include <pthread.h>
#include <time.h>

/**
 * @brief Waits until *count >= n or ms milliseconds have passed.
 * @param lock borrowed; protects *count
 * @param cond borrowed; signalled (or broadcast) after *count changes
 * @param count borrowed; read under lock
 * @returns 1 when *count reached n, 0 on timeout
 * @locality any thread but the ones raising the counter
 */
static inline int dd_wait_count(pthread_mutex_t *lock, pthread_cond_t *cond,
                                const int *count, int n, int ms) {
    struct timespec until;
    int ok;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(lock);
    while (*count < n && pthread_cond_timedwait(cond, lock, &until) == 0)
        ;
    ok = *count >= n;
    pthread_mutex_unlock(lock);
    return ok;
}

#endif /* DD_WAIT_H */
