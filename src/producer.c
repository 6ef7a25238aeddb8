/* SPDX-License-Identifier: MIT */
/*
 * producer: results and dead letters through one idempotent librdkafka
 * producer.
 *
 * DESIGN: workers call dd_producer_send() concurrently (producev is
 * thread-safe). The dd-prod thread serves delivery reports with
 * rd_kafka_poll() and re-produces failed jobs whose backoff expired. A job's
 * record is produced with RD_KAFKA_MSG_F_COPY so the job keeps its bytes for
 * a retry. Lock: `lock` protects the retry list only; it is never held
 * across a librdkafka call that can call back into us.
 */
#include "producer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kafka_int.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define RETRY_BACKOFF_MIN_MS 100
#define RETRY_BACKOFF_MAX_MS 5000

typedef struct retry {
    dd_job_t *job;
    int64_t due_ms; /* dd_now_ms() at which to produce again */
    struct retry *next;
} retry_t;

struct dd_producer {
    const dd_config_t *cfg;
    rd_kafka_t *rk;
    dd_producer_acked_cb *acked_cb;
    void *opaque;
    pthread_t thread;
    int thread_started;
    atomic_int stop;
    atomic_size_t outstanding; /* jobs handed over, not yet delivered */

    pthread_mutex_t lock;
    retry_t *retries; /* protected by lock */
};

const char *dd_producer_kafka_version(void) {
    return rd_kafka_version_str();
}

static int64_t backoff_ms(int attempts) {
    int64_t ms = RETRY_BACKOFF_MIN_MS;
    for (int i = 1; i < attempts && ms < RETRY_BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms < RETRY_BACKOFF_MAX_MS ? ms : RETRY_BACKOFF_MAX_MS;
}

static void schedule_retry(dd_producer_t *prod, dd_job_t *job) {
    retry_t *r = dd_xmalloc(sizeof(*r));
    r->job = job;
    r->due_ms = dd_now_ms() + backoff_ms(job->attempts);
    pthread_mutex_lock(&prod->lock);
    r->next = prod->retries;
    prod->retries = r;
    pthread_mutex_unlock(&prod->lock);
}

/* Add the dispatch.* dead-letter headers to a copy of the original ones. */
static rd_kafka_headers_t *dlq_headers(const dd_producer_t *prod,
                                       const dd_job_t *job) {
    rd_kafka_headers_t *h = job->headers ? rd_kafka_headers_copy(job->headers)
                                         : rd_kafka_headers_new(5);
    char part[16], off[24], ts[32];
    const char *reason = job->dlq_text[0]
                             ? job->dlq_text
                             : dd_codec_dlq_class_name(job->dlq_code);

    snprintf(part, sizeof(part), "%d", (int)job->partition);
    snprintf(off, sizeof(off), "%lld", (long long)job->offset);
    dd_format_iso8601(dd_wall_ms(), ts, sizeof(ts));
    rd_kafka_header_add(h, "dispatch.error", -1, reason, -1);
    rd_kafka_header_add(h, "dispatch.error.class", -1,
                        dd_codec_dlq_class_name(job->dlq_code), -1);
    rd_kafka_header_add(h, "dispatch.source.topic", -1, prod->cfg->topic, -1);
    rd_kafka_header_add(h, "dispatch.source.partition", -1, part, -1);
    rd_kafka_header_add(h, "dispatch.source.offset", -1, off, -1);
    rd_kafka_header_add(h, "dispatch.failed_at", -1, ts, -1);
    return h;
}

/* Hand a job's record to librdkafka. Returns the produce error (0 on
 * success); on error the job still belongs to the caller. */
static rd_kafka_resp_err_t produce_once(dd_producer_t *prod, dd_job_t *job) {
    rd_kafka_resp_err_t err;
    rd_kafka_headers_t *h;

    job->attempts++;
    if (job->out_kind == DD_JOB_OUT_DLQ) {
        h = dlq_headers(prod, job);
        err = rd_kafka_producev(
            prod->rk, RD_KAFKA_V_TOPIC(prod->cfg->dlq_topic),
            RD_KAFKA_V_KEY(job->key, job->key_len),
            RD_KAFKA_V_VALUE(job->value, job->value_len), RD_KAFKA_V_HEADERS(h),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(job),
            RD_KAFKA_V_END);
        /* The message owns the headers only when producev succeeded. */
        if (err)
            rd_kafka_headers_destroy(h);
        return err;
    }
    dd_assert(job->out_kind == DD_JOB_OUT_RESULT);
    return rd_kafka_producev(prod->rk,
                             RD_KAFKA_V_TOPIC(prod->cfg->result_topic),
                             RD_KAFKA_V_KEY(job->out_key, strlen(job->out_key)),
                             RD_KAFKA_V_VALUE(job->out, job->out_len),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_OPAQUE(job), RD_KAFKA_V_END);
}

/* Produce, waiting politely while the local queue is full; any other local
 * error goes to the retry list. */
static void produce(dd_producer_t *prod, dd_job_t *job) {
    rd_kafka_resp_err_t err;

    while ((err = produce_once(prod, job)) == RD_KAFKA_RESP_ERR__QUEUE_FULL &&
           !atomic_load(&prod->stop)) {
        job->attempts--;
        /* dd-prod serves delivery reports, which frees queue space. */
        usleep(5 * 1000);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    dd_metrics_inc(DD_C_PRODUCE_ERRORS);
    DD_LOG_TPO(DD_LOG_WARN, "producer", "produce_failed", prod->cfg->topic,
               job->partition, job->offset, "produce failed (%s), retrying",
               rd_kafka_err2str(err));
    schedule_retry(prod, job);
}

void dd_producer_send(dd_producer_t *prod, dd_job_t *job) {
    atomic_fetch_add(&prod->outstanding, 1);
    produce(prod, job);
}

size_t dd_producer_outstanding(const dd_producer_t *prod) {
    return atomic_load(&((dd_producer_t *)prod)->outstanding);
}

static void drop_job(dd_producer_t *prod, dd_job_t *job) {
    DD_LOG_TPO(DD_LOG_WARN, "producer", "job_dropped", prod->cfg->topic,
               job->partition, job->offset,
               "undelivered at shutdown; the offset stays uncommitted");
    atomic_fetch_sub(&prod->outstanding, 1);
    dd_job_destroy(job);
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                      void *opaque) {
    dd_producer_t *prod = opaque;
    dd_job_t *job = rkm->_private;

    (void)rk;
    if (rkm->err && atomic_load(&prod->stop)) {
        /* Purged at shutdown: nobody may mark it done now. */
        drop_job(prod, job);
        return;
    }
    if (rkm->err) {
        dd_metrics_inc(DD_C_PRODUCE_ERRORS);
        DD_LOG_TPO(DD_LOG_WARN, "producer", "delivery_failed", prod->cfg->topic,
                   job->partition, job->offset,
                   "delivery failed after %d attempt(s): %s; retrying",
                   job->attempts, rd_kafka_err2str(rkm->err));
        schedule_retry(prod, job);
        return;
    }
    atomic_fetch_sub(&prod->outstanding, 1);
    prod->acked_cb(job, prod->opaque);
}

/* Take the retries whose backoff expired and produce them again. */
static void run_due_retries(dd_producer_t *prod) {
    int64_t now = dd_now_ms();
    retry_t *due = NULL, **pp;

    pthread_mutex_lock(&prod->lock);
    pp = &prod->retries;
    while (*pp) {
        retry_t *r = *pp;
        if (r->due_ms <= now) {
            *pp = r->next;
            r->next = due;
            due = r;
        } else {
            pp = &r->next;
        }
    }
    pthread_mutex_unlock(&prod->lock);
    while (due) {
        retry_t *r = due;
        due = r->next;
        produce(prod, r->job);
        dd_free(r);
    }
}

static void *prod_main(void *arg) {
    dd_producer_t *prod = arg;

    pthread_setname_np(pthread_self(), "dd-prod");
    while (!atomic_load(&prod->stop)) {
        rd_kafka_poll(prod->rk, 50);
        run_due_retries(prod);
    }
    return NULL;
}

dd_producer_t *dd_producer_new(const dd_config_t *cfg,
                               dd_producer_acked_cb *acked_cb, void *opaque,
                               char *errstr, size_t errstr_size) {
    static const dd_kafka_kv_t defaults[] = {
        {"linger.ms", "5"},
        {"message.timeout.ms", "60000"},
        {"compression.type", "lz4"},
    };
    static const dd_kafka_kv_t forced[] = {
        /* Retries must not duplicate or reorder records. */
        {"enable.idempotence", "true"},
    };
    dd_producer_t *prod = dd_xcalloc(1, sizeof(*prod));
    rd_kafka_conf_t *conf;
    char msg[512];

    prod->cfg = cfg;
    prod->acked_cb = acked_cb;
    prod->opaque = opaque;
    pthread_mutex_init(&prod->lock, NULL);
    conf = dd_kafka_conf_new(cfg, DD_KAFKA_TARGET_PRODUCER, defaults,
                             sizeof(defaults) / sizeof(defaults[0]), forced,
                             sizeof(forced) / sizeof(forced[0]), errstr,
                             errstr_size);
    if (conf == NULL)
        goto err;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_opaque(conf, prod);
    prod->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, msg, sizeof(msg));
    if (prod->rk == NULL) {
        /* rd_kafka_new() takes the conf only on success. */
        rd_kafka_conf_destroy(conf);
        dd_set_error(errstr, errstr_size, "kafka producer: %s", msg);
        goto err;
    }
    if (pthread_create(&prod->thread, NULL, prod_main, prod) != 0) {
        dd_set_error(errstr, errstr_size, "cannot start dd-prod thread");
        goto err;
    }
    prod->thread_started = 1;
    return prod;
err:
    dd_producer_destroy(prod);
    return NULL;
}

int dd_producer_flush(dd_producer_t *prod, int timeout_ms) {
    int64_t deadline = dd_now_ms() + timeout_ms;
    /* dd-prod serves the delivery reports; wait for the count to drain. */
    while (atomic_load(&prod->outstanding) > 0) {
        if (dd_now_ms() >= deadline)
            return DD_ERR;
        usleep(2 * 1000);
    }
    return DD_OK;
}

void dd_producer_destroy(dd_producer_t *prod) {
    if (prod == NULL)
        return;
    atomic_store(&prod->stop, 1);
    if (prod->thread_started)
        pthread_join(prod->thread, NULL);
    if (prod->rk != NULL) {
        /* Anything still queued was not acknowledged: purge it so its
         * delivery report (with an error) hands the job back for dropping.
         * Successful ones that race in are still passed to acked_cb. */
        rd_kafka_purge(prod->rk,
                       RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        for (int i = 0; i < 1000 && rd_kafka_outq_len(prod->rk) > 0; i++)
            rd_kafka_poll(prod->rk, 10);
        rd_kafka_destroy(prod->rk);
    }
    while (prod->retries) {
        retry_t *r = prod->retries;
        prod->retries = r->next;
        drop_job(prod, r->job);
        dd_free(r);
    }
    pthread_mutex_destroy(&prod->lock);
    dd_free(prod);
}
