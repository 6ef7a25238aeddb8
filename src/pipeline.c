/* SPDX-License-Identifier: MIT */
/*
 * pipeline: wiring and the shutdown sequence.
 *
 * Route of one request (file:function at each step; the thread in brackets):
 *   1. consume   [dd-poll] consumer.c:poll_main polls a message
 *                (rd_kafka_consumer_poll); consumer.c:handle_message
 *                registers its offset with the tracker
 *                (offsets.c:dd_offsets_dispatch, under the partition's
 *                epoch) and wraps it in a job (job.c:dd_job_new).
 *   2. queue     [dd-poll] consumer.c:hold appends the job to the
 *                overflow, and consumer.c:push_held pushes the overflow in
 *                batches (queue.c:dd_queue_push_batch, one wake-up per
 *                push); while the overflow is at its bound poll_main takes
 *                no message, and consumer_pause.c:dd_consumer_backpressure
 *                pauses the partitions once it stayed there.
 *   3. worker    [dd-work-N] pool.c:worker_main pops up to --batch-size jobs
 *                (queue.c:dd_queue_pop_batch) and runs them through
 *                worker_batch.c:dd_worker_batch_run, which parses each
 *                request (codec.c:dd_codec_parse_request). An invalid one
 *                becomes a dead letter (worker_batch.c:dead_letter) and goes
 *                straight to step 5.
 *   4. store     [dd-work-N] worker_batch.c:answer answers the valid ones
 *                through the domain (dispatch.c:dd_dispatch_batch: lookups,
 *                reservation and result record in Redis via store_read.c
 *                and store_commit.c; a result already stored is validated and
 *                read back by dispatch_data.c:dd_dispatch_take_stored with
 *                codec_result.c:dd_codec_result_check), retrying while Redis
 *                fails; worker_batch.c:marshal_result moves each result into
 *                its job.
 *   5. produce   [dd-work-N] the "job answered" event: pipeline.c:job_answered
 *                hands the job to producer.c:dd_producer_send, which
 *                publishes it (producer.c:produce, rd_kafka_producev) to the
 *                result topic or, with producer.c:dlq_headers, to the
 *                dead-letter topic.
 *   6. delivery report [dd-prod] producer.c:prod_main serves
 *                rd_kafka_poll(); producer.c:dr_msg_cb gets the report. A
 *                failure is produced again after a backoff
 *                (producer.c:schedule_retry, run_due_retries); a success is
 *                the "job acked" event.
 *   7. tracker   [dd-prod] pipeline.c:job_acked marks the offset done
 *                (offsets.c:dd_offsets_mark_done; a stale epoch is ignored),
 *                which may advance the partition's committable watermark,
 *                and destroys the job (job.c:dd_job_destroy).
 *   8. commit    [dd-poll] consumer.c:store_offsets stores each advanced
 *                watermark (offsets.c:dd_offsets_committable,
 *                rd_kafka_offsets_store); librdkafka's auto commit commits
 *                it every second, and consumer_rebalance.c:revoke and
 *                consumer.c:dd_consumer_destroy commit synchronously.
 * A replay commits nothing (step 8 stops at the tracker). In a dry run there
 * is no producer: job_answered calls job_acked at once, on the worker, so
 * steps 5 and 6 are skipped. The locks these steps take, and how they may
 * nest, are in "Lock order" in src/pipeline_int.h.
 *
 * DESIGN: start order is the signal thread (dd-signal), tracker and queue,
 * producer (dd-prod), pool (dd-work-N), consumer (dd-poll); the main thread
 * then waits for the one stop request of stop.h: dd-signal makes it on
 * SIGINT/SIGTERM, any fatal Kafka client error makes it (kafka.c), and so
 * does a completed replay. Shutdown reverses the start so that every job
 * either reaches the broker and is marked done, or is dropped with its
 * offset left uncommitted. It fits in --shutdown-timeout: each step gets
 * its share of what is left of the budget (dd_stop_step_deadline(), weights
 * STEP_*), and time a step does not use goes to the later ones:
 *   1. stop the poll loop            (no new jobs)
 *   2. close the queue, join workers (they drain it; a worker still
 *                                     retrying Redis at its deadline drops
 *                                     its batch)
 *   3. flush the producer            (delivery reports mark offsets done)
 *   4. on dd-close: store the final watermarks, commit,
 *      rd_kafka_consumer_close, destroy the consumer, then destroy the
 *      producer (undelivered jobs dropped); main waits for dd-close until
 *      the end of the budget
 *   5. free the rest, stop HTTP (it reports "shutting down" from step 1 on)
 * When the budget is spent in step 4 (a commit or the close waiting for a
 * broker that is gone), main skips what is left and ends the process with
 * _exit(): nothing was committed ahead of undone work, and the group
 * coordinator drops the member after session.timeout.ms. A fatal error at
 * any time, also during the shutdown, makes the exit status 70. A second
 * signal during shutdown exits at once (130, or 70 after a fatal error).
 * No lock is held while a job is handed on (job_answered, job_acked).
 */
#include "pipeline.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "consumer.h"
#include "exit_codes.h"
#include "kafka_int.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"
#include "pipeline_int.h"
#include "pool.h"
#include "producer.h"
#include "queue.h"
#include "stop.h"
#include "util.h"

/* Weights of the shutdown steps in the --shutdown-timeout budget. */
#define STEP_JOIN  4 /* drain the queue, join the workers */
#define STEP_FLUSH 4 /* flush the producer */
#define STEP_CLOSE 2 /* final commit, consumer close, destroy the clients */

typedef struct pipeline {
    const dd_config_t *cfg;
    dd_offsets_t *ot;
    dd_queue_t *jq;
    dd_producer_t *prod;
    dd_pool_t *pool;
    dd_consumer_t *cons;
    dd_pipeline_http_t *http;        /* HTTP endpoint (pipeline_http.c) */
    dd_pipeline_replay_t *replay;    /* replay mode (pipeline_replay.c) */
    dd_pipeline_delivery_t delivery; /* for /readyz */

    /* dd-close: the client teardown of step 4 */
    pthread_mutex_t close_lock; /* row 9 of "Lock order", pipeline_int.h */
    pthread_cond_t close_done_cv;
    int close_done; /* protected by close_lock */
} pipeline_t;

void dd_pipeline_print_kafka_properties(FILE *fp) {
    rd_kafka_conf_properties_show(fp);
}

void dd_pipeline_print_versions(FILE *fp) {
    fprintf(fp, "librdkafka %s\n", rd_kafka_version_str());
}

/* Job acked (dd-prod; a worker in a dry run): the broker acknowledged the
 * job's record, so its offset is done in the tracker. */
static void job_acked(dd_job_t *job, void *opaque) {
    pipeline_t *pl = opaque;
    int64_t committable;

    if (pl->prod != NULL) {
        atomic_store(&pl->delivery.last_ack_ms, dd_now_ms());
        atomic_fetch_sub(&pl->delivery.outstanding, 1);
    }

    if (dd_offsets_mark_done(pl->ot, job->partition, job->epoch, job->offset,
                             &committable) < 0)
        DD_LOG_TPO(DD_LOG_DEBUG, "pipeline", "stale_completion", pl->cfg->topic,
                   job->partition, job->offset,
                   "completion of a revoked partition ignored");
    if (pl->replay != NULL)
        dd_pipeline_replay_count(pl->replay, job);
    if (job->timestamp_ms > 0)
        dd_metrics_observe(DD_H_END_TO_END,
                           (double)(dd_wall_ms() - job->timestamp_ms) / 1e3);
    dd_job_destroy(job);
}

/* Job answered (dd-work-N): the worker has the job's output, which goes to
 * the producer; in a dry run (no producer) the job is complete as soon as
 * it is answered. */
static void job_answered(dd_job_t *job, void *opaque) {
    pipeline_t *pl = opaque;
    if (pl->prod == NULL) {
        job_acked(job, pl);
        return;
    }
    if (atomic_fetch_add(&pl->delivery.outstanding, 1) == 0)
        atomic_store(&pl->delivery.busy_since_ms, dd_now_ms());
    dd_producer_send(pl->prod, job);
}

int64_t dd_pipeline_delivery_stalled_ms(const dd_pipeline_delivery_t *d,
                                        int64_t now) {
    dd_pipeline_delivery_t *md = (dd_pipeline_delivery_t *)d;
    int64_t busy, ack, from;

    if (atomic_load(&md->outstanding) <= 0)
        return 0;
    busy = atomic_load(&md->busy_since_ms);
    ack = atomic_load(&md->last_ack_ms);
    from = busy > ack ? busy : ack;
    return now > from ? now - from : 0;
}

static void destroy_job(void *item, void *arg) {
    (void)arg;
    dd_job_destroy(item);
}

/* dd-signal: the first SIGINT/SIGTERM is a stop request; a second one ends
 * the process at once, with 70 when a fatal error was seen. */
static void *signal_main(void *arg) {
    sigset_t set;
    int sig;

    (void)arg;
    pthread_setname_np(pthread_self(), "dd-signal");
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (dd_stop_request_signal(sig) < 2)
            continue;
        DD_LOG(DD_LOG_WARN, "pipeline", "shutdown_forced",
               "second signal (%d): exiting now without finishing", sig);
        _exit(dd_stop_exit_status(DD_EXIT_SIGNAL));
    }
    return NULL;
}

/* dd-close: step 4 of the shutdown, off the main thread so that main can
 * give up on it when the budget is spent. */
static void *close_main(void *arg) {
    pipeline_t *pl = arg;

    pthread_setname_np(pthread_self(), "dd-close");
    dd_consumer_destroy(pl->cons);
    dd_producer_destroy(pl->prod);
    pthread_mutex_lock(&pl->close_lock);
    pl->close_done = 1;
    pthread_cond_broadcast(&pl->close_done_cv);
    pthread_mutex_unlock(&pl->close_lock);
    return NULL;
}

/* Run close_main until deadline; 1 when it finished, 0 when it did not
 * (it goes on running until the process ends). */
static int close_clients(pipeline_t *pl, int64_t deadline) {
    pthread_t t;
    int done;

    if (pthread_create(&t, NULL, close_main, pl) != 0) {
        close_main(pl); /* no thread: unbounded, but never skipped */
        return 1;
    }
    pthread_mutex_lock(&pl->close_lock);
    while (!pl->close_done && dd_now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&pl->close_done_cv, &pl->close_lock, &ts);
    }
    done = pl->close_done;
    pthread_mutex_unlock(&pl->close_lock);
    if (done)
        pthread_join(t, NULL);
    else
        pthread_detach(t);
    return done;
}

/* The shutdown sequence; returns 0 when it skipped the client teardown
 * because the budget was spent (the caller must then end the process). */
static int shutdown_all(pipeline_t *pl) {
    int64_t deadline = dd_now_ms() + pl->cfg->shutdown_timeout_ms;
    int64_t step;

    dd_pipeline_http_draining(pl->http);
    dd_consumer_stop(pl->cons);
    if (pl->jq)
        dd_queue_close(pl->jq);
    step = dd_stop_step_deadline(dd_now_ms(), deadline, STEP_JOIN,
                                 STEP_JOIN + STEP_FLUSH + STEP_CLOSE);
    if (pl->pool)
        dd_pool_join(pl->pool, step);
    step = dd_stop_step_deadline(dd_now_ms(), deadline, STEP_FLUSH,
                                 STEP_FLUSH + STEP_CLOSE);
    if (pl->prod &&
        dd_producer_flush(pl->prod, (int)(step - dd_now_ms())) != DD_OK)
        DD_LOG(DD_LOG_WARN, "pipeline", "flush_timeout",
               "%zu result(s) not acknowledged within their share of the "
               "shutdown timeout; their offsets stay uncommitted",
               dd_producer_outstanding(pl->prod));
    if (pl->jq)
        dd_queue_drain(pl->jq, destroy_job, NULL);
    dd_pipeline_http_detach(pl->http);
    if (!close_clients(pl, deadline)) {
        DD_LOG(DD_LOG_WARN, "pipeline", "shutdown_budget_spent",
               "--shutdown-timeout (%lld ms) spent before the final commit "
               "and the consumer close finished: exiting without them; "
               "nothing was committed ahead of undone work, and the group "
               "drops this member after session.timeout.ms",
               (long long)pl->cfg->shutdown_timeout_ms);
        return 0;
    }
    pl->cons = NULL;
    pl->prod = NULL;
    dd_pool_destroy(pl->pool);
    pl->pool = NULL;
    dd_queue_destroy(pl->jq);
    dd_offsets_destroy(pl->ot);
    dd_pipeline_http_stop(pl->http); /* 5. stop HTTP */
    pl->http = NULL;
    return 1;
}

/* The end of the run: log the exit status; when the shutdown skipped the
 * client teardown, end the process here (dd-close is still inside
 * librdkafka, so returning through exit() is not safe). */
static int finish(int rc, int complete) {
    DD_LOG(DD_LOG_INFO, "pipeline", "stopped", "exit status %d", rc);
    if (!complete)
        _exit(rc);
    return rc;
}

int dd_pipeline_run(const dd_config_t *cfg) {
    pipeline_t pl = {.cfg = cfg};
    char errstr[512], fatal[320];
    pthread_t sig_thread;
    int rc = DD_EXIT_OK, sig, complete;
    int replay = cfg->replay_from.kind != DD_REPLAY_NONE;
    dd_consumer_fail_t why;

    pthread_mutex_init(&pl.close_lock, NULL);
    pthread_cond_init(&pl.close_done_cv, NULL);
    if (pthread_create(&sig_thread, NULL, signal_main, NULL) != 0) {
        dd_set_error(errstr, sizeof(errstr), "cannot start dd-signal thread");
        rc = DD_EXIT_SOFTWARE;
        goto fail;
    }
    pthread_detach(sig_thread);
    if (!replay)
        DD_LOG(DD_LOG_INFO, "pipeline", "starting",
               "dispatchd %s (librdkafka %s): brokers %s, topic %s, group "
               "%s, %d worker(s), queue %d",
               DD_VERSION, rd_kafka_version_str(), cfg->brokers, cfg->topic,
               cfg->group, cfg->workers, cfg->queue_capacity);
    else
        pl.replay = dd_pipeline_replay_new(cfg);
    pl.ot = dd_offsets_new(errstr, sizeof(errstr));
    pl.jq = dd_queue_new((size_t)cfg->queue_capacity, errstr, sizeof(errstr));
    if (pl.ot == NULL || pl.jq == NULL) {
        rc = DD_EXIT_SOFTWARE;
        goto fail;
    }
    dd_metrics_gauge_set(DD_G_QUEUE_CAPACITY, cfg->queue_capacity);
    /* A dry run produces nothing: no producer at all. */
    if (!cfg->dry_run)
        pl.prod = dd_producer_new(cfg, job_acked, &pl, errstr, sizeof(errstr));
    if (pl.prod == NULL && !cfg->dry_run) {
        rc = DD_EXIT_CONFIG;
        goto fail;
    }
    pl.cons = dd_consumer_new(cfg, pl.jq, pl.ot, errstr, sizeof(errstr));
    if (pl.cons == NULL) {
        rc = DD_EXIT_CONFIG;
        goto fail;
    }
    if (replay && dd_consumer_replay_plan(pl.cons, &why, errstr,
                                          sizeof(errstr)) != DD_OK) {
        rc = why == DD_CONSUMER_FAIL_RANGE         ? DD_EXIT_USAGE
             : why == DD_CONSUMER_FAIL_UNAVAILABLE ? DD_EXIT_UNAVAILABLE
                                                   : DD_EXIT_SOFTWARE;
        goto fail;
    }
    if (replay)
        DD_LOG(DD_LOG_INFO, "pipeline", "replay_starting",
               "dispatchd %s (librdkafka %s): replaying %s to %s, %d "
               "worker(s), queue %d",
               DD_VERSION, rd_kafka_version_str(), cfg->topic,
               cfg->dry_run ? "nothing (dry run)" : cfg->result_topic,
               cfg->workers, cfg->queue_capacity);
    pl.pool =
        dd_pool_new(cfg, pl.jq, job_answered, &pl, errstr, sizeof(errstr));
    if (pl.pool == NULL ||
        dd_consumer_start(pl.cons, errstr, sizeof(errstr)) != DD_OK) {
        rc = DD_EXIT_SOFTWARE;
        goto fail;
    }
    pl.http = dd_pipeline_http_start(cfg, pl.cons, pl.pool, pl.jq, pl.ot,
                                     cfg->dry_run ? NULL : &pl.delivery, errstr,
                                     sizeof(errstr));
    if (pl.http == NULL) {
        rc = DD_EXIT_CONFIG;
        goto fail;
    }
    DD_LOG(DD_LOG_INFO, "pipeline", "started", "consuming %s", cfg->topic);

    if (replay) {
        sig = dd_pipeline_replay_wait(pl.replay, pl.cons, pl.ot);
    } else {
        dd_stop_wait(-1);
        sig = dd_stop_signal();
    }
    if (replay && sig == 0) {
        DD_LOG(DD_LOG_INFO, "pipeline", "replay_complete",
               "every partition reached its end and every answer was "
               "delivered: shutting down");
        complete = shutdown_all(&pl);
        rc = dd_pipeline_replay_finish(pl.replay,
                                       !dd_stop_is_fatal() && complete) == DD_OK
                 ? DD_EXIT_OK
                 : DD_EXIT_SOFTWARE;
        dd_pipeline_replay_destroy(pl.replay);
        return finish(dd_stop_exit_status(rc), complete);
    }
    dd_stop_fatal_reason(fatal, sizeof(fatal));
    if (dd_stop_is_fatal())
        DD_LOG(DD_LOG_ERROR, "pipeline", "shutdown",
               "%s: stopping intake, finishing in-flight work (up to %lld "
               "ms), then exiting %d",
               fatal, (long long)cfg->shutdown_timeout_ms, DD_EXIT_SOFTWARE);
    else
        DD_LOG(DD_LOG_INFO, "pipeline", "shutdown",
               "signal %d: stopping intake, finishing in-flight work (up to "
               "%lld ms)",
               sig, (long long)cfg->shutdown_timeout_ms);
    complete = shutdown_all(&pl);
    rc = DD_EXIT_OK;
    if (replay) {
        /* Interrupted: the summary says how far it got. */
        dd_pipeline_replay_finish(pl.replay, 0);
        dd_pipeline_replay_destroy(pl.replay);
        rc = DD_EXIT_SIGNAL_BASE + (sig > 0 ? sig : SIGTERM);
    }
    /* Whatever else happened, a fatal error seen at any time (also during
     * the shutdown) makes it 70. */
    return finish(dd_stop_exit_status(rc), complete);

fail:
    /* A bad replay range is the operator's typo: one line, no log line. */
    if (rc != DD_EXIT_USAGE)
        DD_LOG(DD_LOG_ERROR, "pipeline", "start_failed", "%s", errstr);
    fprintf(stderr, "dispatchd: %s\n", errstr);
    complete = shutdown_all(&pl);
    dd_pipeline_replay_destroy(pl.replay);
    if (!complete)
        _exit(rc);
    return rc;
}
