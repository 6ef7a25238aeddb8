/* SPDX-License-Identifier: MIT */
/*
 * stop: the process-wide stop request that main waits for and the shutdown
 * budget arithmetic; see stop.h.
 *
 * DESIGN: one mutex `lock` with the condition variable `wake` guards the
 * request (requested, signals, first signal, fatal reason); `fatal` and
 * `requested` are also atomics so that the readers (/readyz on dd-http, the
 * pipeline) need no lock for the flags. Any thread may request; only main
 * waits. `lock` is a leaf (row 7 of "Lock order" in pipeline_int.h): no
 * other lock is taken while it is held and nothing is called out to.
 */
#include "stop.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "exit_codes.h"
#include "util.h"

#define REASON_MAX 256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int signals;                   /* protected by lock */
static int first_signal;              /* protected by lock */
static char fatal_reason[REASON_MAX]; /* protected by lock */
static atomic_int requested;
static atomic_int fatal;

static void request_locked(void) {
    atomic_store(&requested, 1);
    pthread_cond_broadcast(&wake);
}

int dd_stop_request_signal(int sig) {
    int n;

    pthread_mutex_lock(&lock);
    n = ++signals;
    if (first_signal == 0)
        first_signal = sig;
    request_locked();
    pthread_mutex_unlock(&lock);
    return n;
}

void dd_stop_request_fatal(const char *fmt, ...) {
    char reason[REASON_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&lock);
    if (!atomic_load(&fatal))
        snprintf(fatal_reason, sizeof(fatal_reason), "%s", reason);
    atomic_store(&fatal, 1);
    request_locked();
    pthread_mutex_unlock(&lock);
}

void dd_stop_request_done(void) {
    pthread_mutex_lock(&lock);
    request_locked();
    pthread_mutex_unlock(&lock);
}

int dd_stop_wait(int64_t timeout_ms) {
    struct timespec ts;
    int rc = 0;

    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(timeout_ms / 1000);
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&lock);
    while (!atomic_load(&requested) && rc == 0)
        rc = timeout_ms >= 0 ? pthread_cond_timedwait(&wake, &lock, &ts)
                             : pthread_cond_wait(&wake, &lock);
    rc = atomic_load(&requested);
    pthread_mutex_unlock(&lock);
    return rc;
}

int dd_stop_is_requested(void) {
    return atomic_load(&requested);
}

int dd_stop_is_fatal(void) {
    return atomic_load(&fatal);
}

int dd_stop_signal(void) {
    int sig;

    pthread_mutex_lock(&lock);
    sig = first_signal;
    pthread_mutex_unlock(&lock);
    return sig;
}

void dd_stop_fatal_reason(char *buf, size_t size) {
    pthread_mutex_lock(&lock);
    snprintf(buf, size, "%s", fatal_reason);
    pthread_mutex_unlock(&lock);
}

int dd_stop_exit_status(int status) {
    return atomic_load(&fatal) ? DD_EXIT_SOFTWARE : status;
}

int64_t dd_stop_step_deadline(int64_t now, int64_t deadline, int weight,
                              int weights_left) {
    int64_t left = deadline - now;

    if (left <= 0)
        return now;
    if (weights_left <= 0 || weight >= weights_left)
        return deadline;
    if (weight <= 0)
        return now;
    return now + left * weight / weights_left;
}

void dd_stop_reset(void) {
    pthread_mutex_lock(&lock);
    signals = 0;
    first_signal = 0;
    fatal_reason[0] = '\0';
    atomic_store(&requested, 0);
    atomic_store(&fatal, 0);
    pthread_mutex_unlock(&lock);
}
