/* SPDX-License-Identifier: MIT */
/*
 * producer: results and dead letters through one idempotent librdkafka
 * producer.
 *
 * DESIGN: workers call dd_producer_send() concurrently (producev is
 * thread-safe). The dd-prod thread serves delivery reports with
 * rd_kafka_poll() and re-produces failed jobs whose backoff expired. A job's
 * record is produced with RD_KAFKA_MSG_F_COPY so the job keeps its bytes for
 * a retry. Lock: `lock` protects the retry list only; it is a leaf, row 5
 * of "Lock order" in pipeline_int.h, never held across a librdkafka call
 * that can call back into us.
 *
 * Every produce or delivery error goes through classify_delivery_error():
 * a transient one is retried with a capped backoff; a permanent one is
 * never retried as is. A result the broker refuses becomes a dead letter
 * (class result_rejected); a dead letter too large to write is written
 * again reduced (class record_too_large: value truncated, then value and
 * original headers dropped, with the original size and SHA-256 in
 * headers). Delivery reports never produce: they put the job on the retry
 * list (due at once for a permanent error), and dd-prod produces it. When
 * the local queue is full, dd-prod serves delivery reports while it waits
 * (it is the only thread that does), so it can never wait for itself.
 */
#include "producer.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka_int.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define RETRY_BACKOFF_MIN_MS 100
#define RETRY_BACKOFF_MAX_MS 5000

/* Room for the dispatch.* headers of a dead letter on top of the largest
 * record the consumer can fetch. */
#define DLQ_HEADER_ROOM 65536
/* librdkafka's upper bound of message.max.bytes. */
#define MAX_MESSAGE_MAX_BYTES 1000000000LL
/* A reduced dead letter keeps at most this much of the value, and the
 * original headers only when they total at most this much. */
#define DLQ_REDUCED_KEEP_BYTES 65536
/* At most one line per interval for a warning repeated per job. */
#define WARN_INTERVAL_MS 5000

/** What an error means for the record that got it. */
typedef enum delivery_class {
    DELIVERY_TRANSIENT, /* wait and produce again (capped backoff) */
    DELIVERY_TOO_LARGE, /* permanent: the record is over a size limit */
    DELIVERY_REJECTED,  /* permanent: the broker refuses this record */
} delivery_class_t;

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

static dd_log_ratelimit_t produce_failed_rl =
    DD_LOG_RATELIMIT_INIT(WARN_INTERVAL_MS);
static dd_log_ratelimit_t delivery_failed_rl =
    DD_LOG_RATELIMIT_INIT(WARN_INTERVAL_MS);

/*
 * The one place that says what a produce() or delivery-report error means.
 * Permanent for this record (producing it again can never succeed):
 *  - too large: MSG_SIZE_TOO_LARGE (client-side message.max.bytes, or the
 *    broker's / topic's max.message.bytes), RECORD_LIST_TOO_LARGE;
 *  - rejected: INVALID_RECORD,
 *    INVALID_TIMESTAMP, TOPIC_EXCEPTION (invalid topic),
 *    TOPIC_AUTHORIZATION_FAILED, POLICY_VIOLATION,
 *    UNSUPPORTED_FOR_MESSAGE_FORMAT, and the client's _INVALID_ARG,
 *    _BAD_MSG.
 * Everything else is transient (broker down, timeouts, leader changes,
 * local queue full, unknown topic while it is being created, the
 * producer's own message.timeout.ms): wait and produce again.
 */
static delivery_class_t classify_delivery_error(rd_kafka_resp_err_t err) {
    switch (err) {
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
            return DELIVERY_TOO_LARGE;
        case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
        case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
        case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
        case RD_KAFKA_RESP_ERR__INVALID_ARG:
        case RD_KAFKA_RESP_ERR__BAD_MSG:
            return DELIVERY_REJECTED;
        default:
            return DELIVERY_TRANSIENT;
    }
}

const char *dd_producer_kafka_version(void) {
    return rd_kafka_version_str();
}

static int64_t backoff_ms(int attempts) {
    int64_t ms = RETRY_BACKOFF_MIN_MS;
    for (int i = 1; i < attempts && ms < RETRY_BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms < RETRY_BACKOFF_MAX_MS ? ms : RETRY_BACKOFF_MAX_MS;
}

static void schedule_retry(dd_producer_t *prod, dd_job_t *job,
                           int64_t delay_ms) {
    retry_t *r = dd_xmalloc(sizeof(*r));
    r->job = job;
    r->due_ms = delay_ms < 0 ? -1 : dd_now_ms() + delay_ms;
    pthread_mutex_lock(&prod->lock);
    r->next = prod->retries;
    prod->retries = r;
    pthread_mutex_unlock(&prod->lock);
}

/* Sum of the names and values of a header list. */
static size_t headers_size(const rd_kafka_headers_t *h) {
    const char *name;
    const void *val;
    size_t size, total = 0;

    for (size_t i = 0;
         h && rd_kafka_header_get_all(h, i, &name, &val, &size) == 0; i++)
        total += strlen(name) + size;
    return total;
}

/* The original headers of the input, those named dispatch.* renamed to
 * x-original-dispatch.* so that a dead letter's own dispatch.* headers are
 * the only ones. */
static void add_original_headers(rd_kafka_headers_t *h,
                                 const rd_kafka_headers_t *orig) {
    const char *name;
    const void *val;
    size_t size;
    char renamed[512];

    for (size_t i = 0;
         orig && rd_kafka_header_get_all(orig, i, &name, &val, &size) == 0;
         i++) {
        if (strncmp(name, "dispatch.", 9) == 0) {
            snprintf(renamed, sizeof(renamed), "x-original-%s", name);
            name = renamed;
        }
        rd_kafka_header_add(h, name, -1, val, (ssize_t)size);
    }
}

/* Lowercase hex SHA-256 of buf (65 bytes with the NUL). */
static void sha256_hex(const void *buf, size_t len, char out[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (EVP_Digest(buf, len, md, &md_len, EVP_sha256(), NULL) != 1)
        md_len = 0;
    for (unsigned int i = 0; i < md_len && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[2 * (md_len < 32 ? md_len : 32)] = '\0';
}

/* The headers of a job's dead letter: the original ones (unless a reduced
 * dead letter has to drop them), then the dispatch.* ones. */
static rd_kafka_headers_t *dlq_headers(const dd_producer_t *prod,
                                       const dd_job_t *job) {
    rd_kafka_headers_t *h = rd_kafka_headers_new(16);
    char part[16], off[24], ts[32], size[24], sha[65], reason[512];
    const char *cls = dd_codec_dlq_class_name(job->dlq_code);
    const char *text = job->dlq_text[0] ? job->dlq_text : cls;

    if (job->dlq_reduced == 0 ||
        (job->dlq_reduced == 1 &&
         headers_size(job->headers) <= DLQ_REDUCED_KEEP_BYTES))
        add_original_headers(h, job->headers);
    snprintf(part, sizeof(part), "%d", (int)job->partition);
    snprintf(off, sizeof(off), "%lld", (long long)job->offset);
    dd_format_iso8601(dd_wall_ms(), ts, sizeof(ts));
    if (job->dlq_reduced > 0) {
        snprintf(reason, sizeof(reason),
                 "record_too_large: the dead letter is over the size limit; "
                 "%s (original class %s: %s)",
                 job->dlq_reduced == 1 ? "value truncated"
                                       : "value and original headers dropped",
                 cls, text);
        text = reason;
        cls = dd_codec_dlq_class_name(DD_DLQ_RECORD_TOO_LARGE);
    }
    rd_kafka_header_add(h, "dispatch.error", -1, text, -1);
    rd_kafka_header_add(h, "dispatch.error.class", -1, cls, -1);
    rd_kafka_header_add(h, "dispatch.source.topic", -1, prod->cfg->topic, -1);
    rd_kafka_header_add(h, "dispatch.source.partition", -1, part, -1);
    rd_kafka_header_add(h, "dispatch.source.offset", -1, off, -1);
    rd_kafka_header_add(h, "dispatch.failed_at", -1, ts, -1);
    if (job->dlq_reduced > 0) {
        snprintf(size, sizeof(size), "%zu", job->value_len);
        sha256_hex(job->value ? job->value : "", job->value_len, sha);
        rd_kafka_header_add(h, "dispatch.original_size", -1, size, -1);
        rd_kafka_header_add(h, "dispatch.original_sha256", -1, sha, -1);
    }
    return h;
}

/* Hand a job's record to librdkafka. Returns the produce error (0 on
 * success); on error the job still belongs to the caller. */
static rd_kafka_resp_err_t produce_once(dd_producer_t *prod, dd_job_t *job) {
    rd_kafka_resp_err_t err;
    rd_kafka_headers_t *h;

    job->attempts++;
    if (job->out_kind == DD_JOB_OUT_DLQ) {
        size_t value_len = job->value_len;
        if (job->dlq_reduced == 1 && value_len > DLQ_REDUCED_KEEP_BYTES)
            value_len = DLQ_REDUCED_KEEP_BYTES;
        else if (job->dlq_reduced >= 2)
            value_len = 0;
        h = dlq_headers(prod, job);
        err = rd_kafka_producev(
            prod->rk, RD_KAFKA_V_TOPIC(prod->cfg->dlq_topic),
            RD_KAFKA_V_KEY(job->key, job->key_len),
            RD_KAFKA_V_VALUE(value_len ? job->value : NULL, value_len),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(job), RD_KAFKA_V_END);
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

/* A job whose record can never be written as is: turn it into what can
 * be written (a dead letter, a reduced dead letter) and put it on the
 * retry list due at once. Returns 0, or -1 when nothing smaller is left:
 * the caller then completes the job without a record. */
static int make_writable(dd_producer_t *prod, dd_job_t *job,
                         delivery_class_t cls, rd_kafka_resp_err_t err,
                         const char *errtext) {
    if (job->out_kind == DD_JOB_OUT_RESULT) {
        job->out_kind = DD_JOB_OUT_DLQ;
        job->dlq_code = DD_DLQ_RESULT_REJECTED;
        snprintf(job->dlq_text, sizeof(job->dlq_text),
                 "result_rejected: the broker refused the result for %s "
                 "(%s: %s)",
                 prod->cfg->result_topic, rd_kafka_err2name(err), errtext);
        dd_metrics_inc(dd_metrics_dlq_counter(DD_DLQ_RESULT_REJECTED));
        DD_LOG_TPO(DD_LOG_WARN, "producer", "result_rejected", prod->cfg->topic,
                   job->partition, job->offset,
                   "result refused permanently (%s); dead-lettering the "
                   "request",
                   errtext);
        return 0;
    }
    if (cls == DELIVERY_TOO_LARGE && job->dlq_reduced < 2) {
        job->dlq_reduced++;
        if (job->dlq_reduced == 1)
            dd_metrics_inc(dd_metrics_dlq_counter(DD_DLQ_RECORD_TOO_LARGE));
        DD_LOG_TPO(DD_LOG_WARN, "producer", "dead_letter_reduced",
                   prod->cfg->topic, job->partition, job->offset,
                   "dead letter of %zu value bytes over the size limit (%s); "
                   "writing it reduced (level %d)",
                   job->value_len, errtext, job->dlq_reduced);
        return 0;
    }
    return -1;
}

/* Complete a job whose record cannot be written at all. */
static void abandon_job(dd_producer_t *prod, dd_job_t *job,
                        const char *errtext) {
    dd_metrics_inc(DD_C_PRODUCE_ERRORS);
    DD_LOG_TPO(DD_LOG_ERROR, "producer", "dead_letter_rejected",
               prod->cfg->topic, job->partition, job->offset,
               "the dead-letter topic %s refused the record permanently "
               "(%s); the offset moves on without it",
               prod->cfg->dlq_topic, errtext);
    atomic_fetch_sub(&prod->outstanding, 1);
    prod->acked_cb(job, prod->opaque);
}

/* A produce or delivery error of a job that still belongs to us. */
static void handle_error(dd_producer_t *prod, dd_job_t *job,
                         rd_kafka_resp_err_t err, const char *errtext,
                         dd_log_ratelimit_t *rl, const char *event) {
    delivery_class_t cls = classify_delivery_error(err);
    uint64_t suppressed = 0;

    dd_metrics_inc(DD_C_PRODUCE_ERRORS);
    if (err == RD_KAFKA_RESP_ERR__FATAL) /* idempotence broken, fenced */
        dd_kafka_check_fatal(prod->rk, "producer");
    if (cls != DELIVERY_TRANSIENT) {
        /* Due at once: the next attempt is a different record. A job
         * abandoned here is completed on dd-prod, where delivery reports
         * complete jobs. */
        if (make_writable(prod, job, cls, err, errtext) == 0) {
            schedule_retry(prod, job, 0);
        } else {
            snprintf(job->dlq_text, sizeof(job->dlq_text), "%s: %s",
                     rd_kafka_err2name(err), errtext);
            schedule_retry(prod, job, -1); /* abandon */
        }
        return;
    }
    if (dd_log_ratelimit_allow(rl, &suppressed))
        DD_LOG_TPO(DD_LOG_WARN, "producer", event, prod->cfg->topic,
                   job->partition, job->offset,
                   "%s after %d attempt(s): %s; retrying (%llu similar "
                   "line(s) suppressed since the last one)",
                   strcmp(event, "produce_failed") == 0 ? "produce failed"
                                                        : "delivery failed",
                   job->attempts, errtext, (unsigned long long)suppressed);
    schedule_retry(prod, job, backoff_ms(job->attempts));
}

/* Produce; while the local queue is full, wait for room: dd-prod (on_prod)
 * serves delivery reports meanwhile, which is what frees room, and other
 * threads let dd-prod do it. Any other error goes to handle_error(). */
static void produce(dd_producer_t *prod, dd_job_t *job, int on_prod) {
    rd_kafka_resp_err_t err;

    while ((err = produce_once(prod, job)) == RD_KAFKA_RESP_ERR__QUEUE_FULL &&
           !atomic_load(&prod->stop)) {
        job->attempts--;
        if (on_prod)
            rd_kafka_poll(prod->rk, 100);
        else
            usleep(5 * 1000);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    handle_error(prod, job, err, rd_kafka_err2str(err), &produce_failed_rl,
                 "produce_failed");
}

void dd_producer_send(dd_producer_t *prod, dd_job_t *job) {
    atomic_fetch_add(&prod->outstanding, 1);
    produce(prod, job, 0);
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
        handle_error(prod, job, rkm->err, rd_kafka_err2str(rkm->err),
                     &delivery_failed_rl, "delivery_failed");
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
        if (r->due_ms <= now) { /* due_ms < 0: abandon */
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
        if (r->due_ms < 0)
            abandon_job(prod, r->job, r->job->dlq_text);
        else
            produce(prod, r->job, 1);
        dd_free(r);
    }
}

/* 1 if the user set librdkafka property `key` for the producer. */
static int user_set(const dd_config_t *cfg, const char *key) {
    for (size_t i = 0; i < cfg->kafka_props_cnt; i++) {
        const dd_kafka_prop_t *p = &cfg->kafka_props[i];
        if (p->target != DD_KAFKA_TARGET_CONSUMER && strcmp(p->key, key) == 0)
            return 1;
    }
    return 0;
}

/* message.max.bytes for the producer: the largest record the consumer can
 * fetch (its fetch.max.bytes or max.partition.fetch.bytes as configured,
 * librdkafka's defaults otherwise) plus room for the dead-letter headers, so
 * that a dead letter of any record read fits the client-side limit. */
static long long message_max_bytes(const dd_config_t *cfg) {
    static const char *const keys[] = {"fetch.max.bytes",
                                       "max.partition.fetch.bytes"};
    char errstr[256], val[64];
    long long max = 0;
    rd_kafka_conf_t *conf =
        dd_kafka_conf_new(cfg, DD_KAFKA_TARGET_CONSUMER, NULL, 0, NULL, 0,
                          errstr, sizeof(errstr));

    for (size_t i = 0; conf && i < sizeof(keys) / sizeof(keys[0]); i++) {
        size_t len = sizeof(val);
        if (rd_kafka_conf_get(conf, keys[i], val, &len) == RD_KAFKA_CONF_OK &&
            atoll(val) > max)
            max = atoll(val);
    }
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (max <= 0)
        max = 52428800; /* librdkafka's fetch.max.bytes default */
    max += DLQ_HEADER_ROOM;
    return max < MAX_MESSAGE_MAX_BYTES ? max : MAX_MESSAGE_MAX_BYTES;
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
    /* linger.ms (README "Tuning"): 1 ms instead of 5; a result waits that
     * long for a fuller batch, which is most of the latency at low rates,
     * and the drain rate was no lower. queue.buffering.max.messages (README
     * "Tuning", "What bounds the memory"): results waiting for delivery,
     * each holding its job, are bounded by 8,192 instead of 100,000; when
     * the queue is full, workers wait for room (produce()). At startup the
     * broker takes up to a second to grant the idempotent producer its id,
     * and a 100,000 queue let 15,000-20,000 results and their jobs pile up
     * meanwhile. */
    static const dd_kafka_kv_t defaults[] = {
        {"linger.ms", "1"},
        {"queue.buffering.max.messages", "8192"},
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
    if (!user_set(cfg, "message.max.bytes")) {
        char v[24];
        snprintf(v, sizeof(v), "%lld", message_max_bytes(cfg));
        if (dd_kafka_conf_set(conf, "message.max.bytes", v, errstr,
                              errstr_size) != DD_OK) {
            rd_kafka_conf_destroy(conf);
            goto err;
        }
    }
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
