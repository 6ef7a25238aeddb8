/* SPDX-License-Identifier: MIT */
/*
 * consumer_replay: replay mode of the consumer. It reads the topic's
 * partitions, their end offsets and the timestamp lookups, resolves the
 * range (replay_range.c), assigns every partition with something to replay
 * at its start offset, and then, through one hook from the poll loop
 * (dd_consumer_replay_on_message()), skips what is out of range and
 * finishes each partition at its end offset.
 *
 * DESIGN: no subscription, no group membership and no commits.
 * dd_consumer_replay_plan() does its queries on the main thread, before
 * dd-poll exists, then assigns under a throwaway group.id with
 * enable.auto.commit=false. Offsets are not dense, so a partition is
 * finished when its message at end-1 was dispatched, or when a message or
 * a partition-EOF event at or past its end shows up; it is then paused for
 * good. start/end are read-only once dd-poll runs; `finished` and the
 * count of unfinished partitions are atomic (read by the pipeline's replay
 * wait on the main thread); the rest is dd-poll's.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <librdkafka/rdkafka.h>

#include "consumer.h"
#include "consumer_int.h"
#include "kafka_int.h"
#include "log.h"
#include "metrics.h"
#include "replay_range.h"
#include "util.h"

#define REPLAY_QUERY_TIMEOUT_MS 10000 /* metadata, watermarks, times */

/* One partition of a replay, indexed by partition id. */
typedef struct replay_part {
    int64_t start;       /* first offset; read-only once dd-poll runs */
    int64_t end;         /* end offset captured at start (exclusive) */
    atomic_int finished; /* every message below end was dispatched */
} replay_part_t;

struct dd_consumer_replay {
    replay_part_t *rp;     /* nrp entries; NULL until the plan */
    size_t nrp;            /* highest partition id + 1 */
    atomic_int unfinished; /* partitions not finished yet */
};

dd_consumer_replay_t *dd_consumer_replay_new(const dd_config_t *cfg,
                                             const dd_kafka_kv_t *defaults,
                                             size_t ndefaults,
                                             rd_kafka_conf_t **conf,
                                             char *errstr, size_t errstr_size) {
    char group[96];
    /* rd_kafka_assign() needs a group.id in 2.0.2, so a throwaway one that
     * never joins (no subscribe) and never commits. */
    dd_kafka_kv_t forced[] = {
        {"enable.auto.offset.store", "false"},
        {"enable.auto.commit", "false"},
        {"enable.partition.eof", "true"},
        {"group.id", group},
    };

    /* Unique per run: the wall clock plus the monotonic microseconds. */
    snprintf(group, sizeof(group), "dispatchd-replay-%lld-%lld",
             (long long)dd_wall_ms(), (long long)(dd_now_us() % 1000000));
    *conf = dd_kafka_conf_new(
        cfg, DD_KAFKA_TARGET_CONSUMER, defaults, ndefaults, forced,
        sizeof(forced) / sizeof(forced[0]), errstr, errstr_size);
    return dd_xcalloc(1, sizeof(dd_consumer_replay_t));
}

void dd_consumer_replay_destroy(dd_consumer_replay_t *r) {
    if (r == NULL)
        return;
    dd_free(r->rp);
    dd_free(r);
}

int dd_consumer_replay_ready(const dd_consumer_replay_t *r, char *errstr,
                             size_t errstr_size) {
    if (r->rp == NULL) {
        dd_set_error(errstr, errstr_size, "replay: no plan");
        return DD_ERR;
    }
    return DD_OK;
}

/*----- Plan (main thread) -----*/

/* offsets_for_times for every span at ts; stores the answers in from_ts or
 * to_ts. */
static int query_times(dd_consumer_t *c, dd_replay_span_t *spans, size_t n,
                       int64_t ts, int is_from, char *errstr,
                       size_t errstr_size) {
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new((int)n);
    rd_kafka_resp_err_t err;
    int rc = DD_ERR;

    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, c->cfg->topic,
                                          spans[i].partition)
            ->offset = ts;
    err = rd_kafka_offsets_for_times(c->rk, list, REPLAY_QUERY_TIMEOUT_MS);
    if (err) {
        dd_set_error(errstr, errstr_size, "offsets_for_times on %s: %s",
                     c->cfg->topic, rd_kafka_err2str(err));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_topic_partition_t *e =
            rd_kafka_topic_partition_list_find(list, c->cfg->topic,
                                               spans[i].partition);
        if (e == NULL || e->err) {
            dd_set_error(
                errstr, errstr_size, "offsets_for_times on %s [%d]: %s",
                c->cfg->topic, (int)spans[i].partition,
                rd_kafka_err2str(e ? e->err : RD_KAFKA_RESP_ERR__NOENT));
            goto out;
        }
        if (is_from)
            spans[i].from_ts = e->offset;
        else
            spans[i].to_ts = e->offset;
    }
    rc = DD_OK;
out:
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

/* The topic's partitions with their watermarks, sorted by partition id. */
static int read_partitions(dd_consumer_t *c, dd_replay_span_t **spansp,
                           size_t *np, dd_consumer_fail_t *why, char *errstr,
                           size_t errstr_size) {
    const char *topic = c->cfg->topic;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c->rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    const struct rd_kafka_metadata_topic *t;
    dd_replay_span_t *spans = NULL;
    rd_kafka_resp_err_t err;
    size_t n = 0;
    int rc = DD_ERR;

    *why = DD_CONSUMER_FAIL_UNAVAILABLE;
    if (rkt == NULL) {
        dd_set_error(errstr, errstr_size, "topic %s: %s", topic,
                     rd_kafka_err2str(rd_kafka_last_error()));
        *why = DD_CONSUMER_FAIL_RANGE;
        goto out;
    }
    err = rd_kafka_metadata(c->rk, 0, rkt, &md, REPLAY_QUERY_TIMEOUT_MS);
    if (err) {
        dd_set_error(errstr, errstr_size,
                     "cannot read the metadata of topic %s from %s: %s", topic,
                     c->cfg->brokers, rd_kafka_err2str(err));
        goto out;
    }
    t = md->topic_cnt == 1 ? &md->topics[0] : NULL;
    if (t == NULL || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        (t->err == RD_KAFKA_RESP_ERR_NO_ERROR && t->partition_cnt == 0)) {
        dd_set_error(errstr, errstr_size, "topic %s does not exist", topic);
        *why = DD_CONSUMER_FAIL_RANGE;
        goto out;
    }
    if (t->err) {
        dd_set_error(errstr, errstr_size, "metadata of topic %s: %s", topic,
                     rd_kafka_err2str(t->err));
        goto out;
    }
    n = (size_t)t->partition_cnt;
    spans = dd_xcalloc(n, sizeof(*spans));
    for (size_t i = 0; i < n; i++)
        spans[i].partition = t->partitions[i].id;
    dd_replay_sort_spans(spans, n);
    for (size_t i = 0; i < n; i++) {
        err = rd_kafka_query_watermark_offsets(c->rk, topic, spans[i].partition,
                                               &spans[i].low, &spans[i].high,
                                               REPLAY_QUERY_TIMEOUT_MS);
        if (err) {
            dd_set_error(errstr, errstr_size, "end offsets of %s [%d]: %s",
                         topic, (int)spans[i].partition, rd_kafka_err2str(err));
            goto out;
        }
        spans[i].from_ts = spans[i].to_ts = -1;
    }
    *spansp = spans;
    *np = n;
    spans = NULL;
    rc = DD_OK;
out:
    dd_free(spans);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    return rc;
}

int dd_consumer_replay_plan(dd_consumer_t *c, dd_consumer_fail_t *why,
                            char *errstr, size_t errstr_size) {
    const dd_config_t *cfg = c->cfg;
    rd_kafka_topic_partition_list_t *list = NULL;
    dd_replay_span_t *spans = NULL;
    size_t n = 0, len = 0;
    int64_t total = 0;
    int32_t maxp = 0;
    rd_kafka_resp_err_t err;
    char msg[512], ranges[1024];
    int rc = DD_ERR;

    if (c->replay == NULL || c->replay->rp != NULL) {
        dd_set_error(errstr, errstr_size, "replay: not in replay mode");
        *why = DD_CONSUMER_FAIL_INTERNAL;
        return DD_ERR;
    }
    if (read_partitions(c, &spans, &n, why, errstr, errstr_size) != DD_OK)
        goto out;
    *why = DD_CONSUMER_FAIL_UNAVAILABLE;
    if (cfg->replay_from.kind == DD_REPLAY_TIMESTAMP &&
        query_times(c, spans, n, cfg->replay_from.value, 1, errstr,
                    errstr_size) != DD_OK)
        goto out;
    if (cfg->replay_to.kind == DD_REPLAY_TIMESTAMP &&
        query_times(c, spans, n, cfg->replay_to.value, 0, errstr,
                    errstr_size) != DD_OK)
        goto out;
    if (dd_replay_resolve(&cfg->replay_from, &cfg->replay_to, spans, n, msg,
                          sizeof(msg)) != DD_OK) {
        dd_set_error(errstr, errstr_size, "replay of %s: %s", cfg->topic, msg);
        *why = DD_CONSUMER_FAIL_RANGE;
        goto out;
    }

    for (size_t i = 0; i < n; i++)
        if (spans[i].partition > maxp)
            maxp = spans[i].partition;
    c->replay->nrp = (size_t)maxp + 1;
    c->replay->rp = dd_xcalloc(c->replay->nrp, sizeof(*c->replay->rp));
    list = rd_kafka_topic_partition_list_new((int)n + 1);
    ranges[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const dd_replay_span_t *s = &spans[i];
        replay_part_t *r = &c->replay->rp[s->partition];
        int k;

        r->start = s->start;
        r->end = s->end;
        total += s->end - s->start;
        k = snprintf(ranges + len, sizeof(ranges) - len,
                     "%s%d:[%" PRId64 ",%" PRId64 ")", i > 0 ? " " : "",
                     (int)s->partition, s->start, s->end);
        if (k > 0 && len + (size_t)k < sizeof(ranges))
            len += (size_t)k;
        if (s->start >= s->end) {
            dd_consumer_pstate(c, s->partition)->finished = 1;
            atomic_store(&r->finished, 1);
            continue;
        }
        dd_offsets_assign(c->ot, s->partition, NULL);
        dd_consumer_pstate(c, s->partition)->assigned = 1;
        rd_kafka_topic_partition_list_add(list, cfg->topic, s->partition)
            ->offset = s->start;
    }
    /* Partition ids missing from the topic count as finished. */
    for (size_t p = 0; p < c->replay->nrp; p++)
        if (!dd_consumer_pstate(c, (int32_t)p)->assigned)
            atomic_store(&c->replay->rp[p].finished, 1);
    atomic_store(&c->replay->unfinished, list->cnt);
    if (list->cnt > 0 && (err = rd_kafka_assign(c->rk, list)) != 0) {
        dd_set_error(errstr, errstr_size, "replay: assign: %s",
                     rd_kafka_err2str(err));
        *why = DD_CONSUMER_FAIL_INTERNAL;
        goto out;
    }
    atomic_store(&c->assigned_cnt, list->cnt);
    atomic_store(&c->joined, 1);
    dd_metrics_gauge_set(DD_G_PARTITIONS_ASSIGNED, list->cnt);
    DD_LOG(DD_LOG_INFO, "consumer", "replay_plan",
           "replaying %s: %zu partition(s), %" PRId64
           " offset(s) in range, end offsets captured now: %s",
           cfg->topic, n, total, ranges);
    rc = DD_OK;
out:
    if (list != NULL)
        rd_kafka_topic_partition_list_destroy(list);
    dd_free(spans);
    return rc;
}

/*----- Progress (any thread) -----*/

size_t dd_consumer_replay_parts(const dd_consumer_t *c,
                                dd_consumer_replay_part_t *out, size_t max) {
    dd_consumer_replay_t *r = c->replay; /* NULL outside replay mode */
    size_t n = 0;

    for (size_t p = 0; r != NULL && r->rp != NULL && p < r->nrp; p++, n++) {
        if (n >= max)
            continue;
        out[n].partition = (int32_t)p;
        out[n].start = r->rp[p].start;
        out[n].end = r->rp[p].end;
        out[n].finished = atomic_load(&r->rp[p].finished);
    }
    return n;
}

int dd_consumer_replay_finished(const dd_consumer_t *c) {
    dd_consumer_replay_t *r = c->replay;
    return r != NULL && r->rp != NULL && atomic_load(&r->unfinished) == 0;
}

/*----- Range checks (dd-poll) -----*/

/* A partition of the replay has nothing more in range: pause it for good
 * (backpressure in consumer.c leaves it alone from now on). */
static void replay_finish(dd_consumer_t *c, int32_t p, const char *why) {
    pstate_t *s = dd_consumer_pstate(c, p);

    if (s->finished)
        return;
    if (!s->paused) {
        rd_kafka_topic_partition_list_t *list =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, c->cfg->topic, p);
        dd_consumer_set_paused(c, list, 1);
        rd_kafka_topic_partition_list_destroy(list);
    }
    s->finished = 1;
    atomic_store(&c->replay->rp[p].finished, 1);
    atomic_fetch_sub(&c->replay->unfinished, 1);
    DD_LOG_TP(DD_LOG_INFO, "consumer", "replay_partition_end", c->cfg->topic, p,
              "reached end offset %" PRId64 " (%s)", c->replay->rp[p].end, why);
}

/* 1 when the message is to be processed; a message at or past the end
 * finishes its partition (offsets are not dense: never wait for end-1). */
static int replay_in_range(dd_consumer_t *c, int32_t p, int64_t offset) {
    if (p < 0 || (size_t)p >= c->replay->nrp ||
        dd_consumer_pstate(c, p)->finished)
        return 0;
    if (offset >= c->replay->rp[p].end) {
        replay_finish(c, p, "message past the end");
        return 0;
    }
    return 1;
}

static void replay_eof(dd_consumer_t *c, int32_t p, int64_t offset) {
    if (p >= 0 && (size_t)p < c->replay->nrp &&
        !dd_consumer_pstate(c, p)->finished && offset >= c->replay->rp[p].end)
        replay_finish(c, p, "partition end");
}

void dd_consumer_replay_on_message(dd_consumer_t *c, rd_kafka_message_t *rkm) {
    if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        replay_eof(c, rkm->partition, rkm->offset);
        return;
    }
    if (!rkm->err && !replay_in_range(c, rkm->partition, rkm->offset))
        return;
    /* Dispatched (and tracked) before the partition counts as finished. */
    if (dd_consumer_dispatch(c, rkm) &&
        rkm->offset + 1 >= c->replay->rp[rkm->partition].end)
        replay_finish(c, rkm->partition, "last offset dispatched");
}
