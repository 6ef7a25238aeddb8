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
 *   2. queue     [dd-poll] consumer.c:handle_message pushes the job
 *                (queue.c:dd_queue_try_push); when the queue is full,
 *                consumer.c:hold keeps it and consumer.c:backpressure pauses
 *                the partitions until consumer.c:push_held got it in.
 *   3. worker    [dd-work-N] pool.c:worker_main pops up to --batch-size jobs
 *                (queue.c:dd_queue_pop_batch) and runs them through
 *                worker_batch.c:dd_worker_batch_run, which parses each
 *                request (codec.c:dd_codec_parse_request). An invalid one
 *                becomes a dead letter (worker_batch.c:dead_letter) and goes
 *                straight to step 5.
 *   4. store     [dd-work-N] worker_batch.c:answer answers the valid ones
 *                through the domain (dispatch.c:dd_dispatch_batch: lookups,
 *                reservation and result record in Redis via store.c; a
 *                result already stored is validated and read back with
 *                codec.c:dd_codec_result_check), retrying while Redis
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
 *                it every second, and consumer.c:revoke and
 *                consumer.c:dd_consumer_destroy commit synchronously.
 * A replay commits nothing (step 8 stops at the tracker). In a dry run there
 * is no producer: job_answered calls job_acked at once, on the worker, so
 * steps 5 and 6 are skipped. The locks these steps take, and how they may
 * nest, are in "Lock order" in src/pipeline_int.h.
 *
 * DESIGN: start order is tracker and queue, producer (dd-prod), pool
 * (dd-work-N), consumer (dd-poll); the main thread then waits in sigwait().
 * Shutdown reverses it so that every job either reaches the broker and is
 * marked done, or is dropped with its offset left uncommitted:
 *   1. stop the poll loop            (no new jobs)
 *   2. close the queue, join workers (they drain it; give up at the
 *                                     shutdown deadline if Redis is down)
 *   3. flush the producer            (delivery reports mark offsets done)
 *   4. store the final watermarks, commit, rd_kafka_consumer_close
 *   5. destroy the producer (undelivered jobs dropped), then the rest
 *   6. stop HTTP (it reports "shutting down" from step 1 on)
 * A second signal during shutdown exits immediately. No lock is held while
 * a job is handed on (job_answered, job_acked).
 */
#include "pipeline.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
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
#include "util.h"

typedef struct pipeline {
    const dd_config_t *cfg;
    dd_offsets_t *ot;
    dd_queue_t *jq;
    dd_producer_t *prod;
    dd_pool_t *pool;
    dd_consumer_t *cons;
    dd_pipeline_http_t *http;     /* HTTP endpoint (pipeline_http.c) */
    dd_pipeline_replay_t *replay; /* replay mode (pipeline_replay.c) */
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
    if (pl->prod == NULL)
        job_acked(job, pl);
    else
        dd_producer_send(pl->prod, job);
}

static void destroy_job(void *item, void *arg) {
    (void)arg;
    dd_job_destroy(item);
}

/* After the first signal: a second one ends the process at once. */
static void *second_signal_main(void *arg) {
    sigset_t set;
    int sig;

    (void)arg;
    pthread_setname_np(pthread_self(), "dd-signal");
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigwait(&set, &sig) == 0) {
        DD_LOG(DD_LOG_WARN, "pipeline", "shutdown_forced",
               "second signal (%d): exiting now without finishing", sig);
        _exit(DD_EXIT_SIGNAL);
    }
    return NULL;
}

static int wait_for_signal(void) {
    sigset_t set;
    int sig = 0;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    while (sigwait(&set, &sig) != 0)
        ;
    return sig;
}

static void shutdown_all(pipeline_t *pl) {
    int64_t deadline = dd_now_ms() + pl->cfg->shutdown_timeout_ms;
    int64_t left;

    dd_pipeline_http_draining(pl->http);
    dd_consumer_stop(pl->cons);
    if (pl->jq)
        dd_queue_close(pl->jq);
    if (pl->pool)
        dd_pool_join(pl->pool, deadline);
    left = deadline - dd_now_ms();
    if (pl->prod &&
        dd_producer_flush(pl->prod, (int)(left > 0 ? left : 0)) != DD_OK)
        DD_LOG(DD_LOG_WARN, "pipeline", "flush_timeout",
               "%zu result(s) not acknowledged within the shutdown timeout; "
               "their offsets stay uncommitted",
               dd_producer_outstanding(pl->prod));
    if (pl->jq)
        dd_queue_drain(pl->jq, destroy_job, NULL);
    dd_pipeline_http_detach(pl->http);
    dd_consumer_destroy(pl->cons);
    pl->cons = NULL;
    dd_producer_destroy(pl->prod);
    pl->prod = NULL;
    dd_pool_destroy(pl->pool);
    pl->pool = NULL;
    dd_queue_destroy(pl->jq);
    dd_offsets_destroy(pl->ot);
    dd_pipeline_http_stop(pl->http); /* 6. stop HTTP */
    pl->http = NULL;
}

int dd_pipeline_run(const dd_config_t *cfg) {
    pipeline_t pl = {cfg, NULL, NULL, NULL, NULL, NULL};
    char errstr[512];
    pthread_t sig_thread;
    int rc = DD_EXIT_OK, sig;
    int replay = cfg->replay_from.kind != DD_REPLAY_NONE;
    dd_consumer_fail_t why;

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
                                     errstr, sizeof(errstr));
    if (pl.http == NULL) {
        rc = DD_EXIT_CONFIG;
        goto fail;
    }
    DD_LOG(DD_LOG_INFO, "pipeline", "started", "consuming %s", cfg->topic);

    sig = replay ? dd_pipeline_replay_wait(pl.replay, pl.cons, pl.ot)
                 : wait_for_signal();
    if (replay && sig == 0) {
        DD_LOG(DD_LOG_INFO, "pipeline", "replay_complete",
               "every partition reached its end and every answer was "
               "delivered: shutting down");
        shutdown_all(&pl);
        rc = dd_pipeline_replay_finish(pl.replay, !dd_kafka_is_fatal()) == DD_OK
                 ? DD_EXIT_OK
                 : DD_EXIT_SOFTWARE;
        dd_pipeline_replay_destroy(pl.replay);
        DD_LOG(DD_LOG_INFO, "pipeline", "stopped", "exit status %d", rc);
        return rc;
    }
    DD_LOG(DD_LOG_INFO, "pipeline", "shutdown",
           "signal %d: stopping intake, finishing in-flight work (up to "
           "%lld ms)",
           sig, (long long)cfg->shutdown_timeout_ms);
    if (pthread_create(&sig_thread, NULL, second_signal_main, NULL) == 0)
        pthread_detach(sig_thread);
    shutdown_all(&pl);
    rc = dd_kafka_is_fatal() ? DD_EXIT_SOFTWARE : DD_EXIT_OK;
    if (replay) {
        /* Interrupted: the summary says how far it got. */
        dd_pipeline_replay_finish(pl.replay, 0);
        dd_pipeline_replay_destroy(pl.replay);
        rc = DD_EXIT_SIGNAL_BASE + sig;
    }
    DD_LOG(DD_LOG_INFO, "pipeline", "stopped", "exit status %d", rc);
    return rc;

fail:
    /* A bad replay range is the operator's typo: one line, no log line. */
    if (rc != DD_EXIT_USAGE)
        DD_LOG(DD_LOG_ERROR, "pipeline", "start_failed", "%s", errstr);
    fprintf(stderr, "dispatchd: %s\n", errstr);
    shutdown_all(&pl);
    dd_pipeline_replay_destroy(pl.replay);
    return rc;
}
