/* SPDX-License-Identifier: MIT */
/*
 * dd-passthrough: the pass-through baseline of `make bench`. It does what
 * dispatchd does around its work and nothing else: consume a topic, produce
 * the same key and value bytes to an output topic, and store each input
 * offset only after the delivery report of that record and of every record
 * before it in its partition (the committable prefix), with the client
 * settings of dispatchd (src/consumer.c, src/producer.c: idempotent
 * producer, enable.auto.offset.store=false, auto commit every second).
 *
 *   dd-passthrough -b BROKERS -t TOPIC -G GROUP -o OUTPUT_TOPIC [-c COUNT]
 *                  [-X [consumer.|producer.]prop=value]...
 *
 * It exits when COUNT records have been delivered or, without -c, when
 * every partition is done up to the end offset it had at start (or on
 * SIGTERM / SIGINT), and prints one line on stdout: the count, the time from
 * the first record consumed to the last delivery report, the time before
 * the first record (start, group join, first fetch) and its peak RSS.
 *
 * DESIGN: two threads, as in dispatchd (dd-poll, dd-prod). The main thread
 * polls the consumer, produces each record (RD_KAFKA_MSG_F_COPY, so the
 * consumed message is destroyed at once) and stores the offsets of the
 * partitions whose done prefix grew; the delivery thread serves the
 * producer's delivery reports (rd_kafka_poll()). Both block in librdkafka
 * when there is nothing to do. One lock, state_t.lock, guards the
 * partitions' in-flight rings and the counters the delivery reports
 * update; it is never held across a librdkafka call. A record's opaque
 * packs its input partition and its sequence number in that partition's
 * ring. Statistics (dispatchd's stats_cb) are left off: they are
 * metrics work, not pass-through work. One member, librdkafka's default
 * assignment handling: a rebalance in the middle of a run is not tracked.
 * enable.partition.eof is on (dispatchd has it off): the end-of-partition
 * events tell when a partition has nothing left below its end offset.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "exit_codes.h"
#include "util.h"

#define MAX_PROPS 32
#define SEQ_BITS  40 /* low bits of a record's opaque: its ring sequence */

_Static_assert(sizeof(uintptr_t) >= 8, "the opaque packs 64 bits");

/* One in-flight input record. */
typedef struct slot {
    int64_t offset;
    int done;
} slot_t;

/* One input partition: its in-flight records in consume order, as a ring
 * indexed by sequence number modulo cap. */
typedef struct part {
    slot_t *ring;
    uint64_t cap;  /* a power of two */
    uint64_t head; /* sequence of the oldest in-flight record */
    uint64_t tail; /* sequence of the next record */
    int64_t end;   /* high watermark at start */
    int64_t next;  /* next offset to commit (done prefix), -1: none yet */
    int64_t eof;   /* offset of the last end-of-partition event, -1 */
    int dirty;     /* next grew since the last store */
} part_t;

typedef struct opts {
    const char *brokers;
    const char *topic;
    const char *group;
    const char *out_topic;
    long count;
    const char *props[MAX_PROPS];
    int nprops;
} opts_t;

typedef struct state {
    rd_kafka_t *rkc; /* consumer */
    rd_kafka_t *rkp; /* producer */
    pthread_mutex_t lock;
    part_t *parts;      /* rings and prefixes: lock */
    int nparts;         /* fixed after start */
    long consumed;      /* main thread only */
    long delivered;     /* lock */
    long failed;        /* lock */
    int64_t last_dr_us; /* lock */
    atomic_int dr_stop; /* ends the delivery thread */
} state_t;

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: dd-passthrough -b BROKERS -t TOPIC -G GROUP "
            "-o OUTPUT_TOPIC [-c COUNT]\n"
            "                      [-X [consumer.|producer.]prop=value]...\n");
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value) {
    char msg[512];
    if (rd_kafka_conf_set(conf, key, value, msg, sizeof(msg)) ==
        RD_KAFKA_CONF_OK)
        return DD_OK;
    fprintf(stderr, "dd-passthrough: %s=%s: %s\n", key, value, msg);
    return DD_ERR;
}

/* The settings of dispatchd for one client: defaults, then -X, then the
 * invariants (see dd_consumer_new() and dd_producer_new()). */
static rd_kafka_conf_t *make_conf(const opts_t *o, int consumer) {
    static const char *const cdefaults[][2] = {
        {"enable.auto.commit", "true"},
        {"auto.commit.interval.ms", "1000"},
        {"auto.offset.reset", "earliest"},
        {"queued.max.messages.kbytes", "3072"},
        {"queued.min.messages", "100000"},
        {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "1000"},
        {"max.poll.interval.ms", "60000"},
        {"enable.partition.eof", "true"},
    };
    static const char *const pdefaults[][2] = {
        {"linger.ms", "1"},
        {"queue.buffering.max.messages", "8192"},
        {"message.timeout.ms", "60000"},
        {"compression.type", "lz4"},
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *const(*kv)[2] = consumer ? cdefaults : pdefaults;
    size_t n = consumer ? sizeof(cdefaults) / sizeof(cdefaults[0])
                        : sizeof(pdefaults) / sizeof(pdefaults[0]);
    int rc = DD_OK;

    rc |= conf_set(conf, "bootstrap.servers", o->brokers);
    rc |= conf_set(conf, "client.id", "dd-passthrough");
    for (size_t i = 0; i < n; i++)
        rc |= conf_set(conf, kv[i][0], kv[i][1]);
    for (int i = 0; i < o->nprops; i++) {
        char key[256];
        const char *prop = o->props[i], *eq;
        size_t klen;

        /* A "consumer." or "producer." prefix targets one client, as in
         * dispatchd's -X. */
        if (strncmp(prop, "consumer.", 9) == 0) {
            if (!consumer)
                continue;
            prop += 9;
        } else if (strncmp(prop, "producer.", 9) == 0) {
            if (consumer)
                continue;
            prop += 9;
        }
        eq = strchr(prop, '=');
        klen = eq ? (size_t)(eq - prop) : 0;
        if (eq == NULL || klen == 0 || klen >= sizeof(key)) {
            fprintf(stderr, "dd-passthrough: -X wants prop=value: %s\n",
                    o->props[i]);
            rc = DD_ERR;
            continue;
        }
        memcpy(key, prop, klen);
        key[klen] = '\0';
        rc |= conf_set(conf, key, eq + 1);
    }
    if (consumer) {
        rc |= conf_set(conf, "enable.auto.offset.store", "false");
        rc |= conf_set(conf, "group.id", o->group);
    } else {
        rc |= conf_set(conf, "enable.idempotence", "true");
    }
    if (rc != DD_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

/* Makes room for one more record in a partition's ring, keeping every
 * in-flight record at sequence modulo the new capacity. */
static void ring_grow(part_t *p) {
    uint64_t cap = p->cap ? p->cap * 2 : 1024;
    slot_t *ring = dd_xcalloc(cap, sizeof(*ring));

    for (uint64_t s = p->head; s < p->tail; s++)
        ring[s & (cap - 1)] = p->ring[s & (p->cap - 1)];
    dd_free(p->ring);
    p->ring = ring;
    p->cap = cap;
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                      void *opaque) {
    state_t *st = opaque;
    uint64_t packed = (uint64_t)(uintptr_t)rkm->_private;
    part_t *p = &st->parts[packed >> SEQ_BITS];
    uint64_t seq = packed & ((UINT64_C(1) << SEQ_BITS) - 1);

    (void)rk;
    pthread_mutex_lock(&st->lock);
    if (rkm->err) {
        /* A benchmark run must not lose a record: report and stop. */
        fprintf(stderr, "dd-passthrough: delivery failed: %s\n",
                rd_kafka_err2str(rkm->err));
        st->failed++;
        stop = 1;
        pthread_mutex_unlock(&st->lock);
        return;
    }
    st->delivered++;
    st->last_dr_us = dd_now_us();
    p->ring[seq & (p->cap - 1)].done = 1;
    while (p->head < p->tail && p->ring[p->head & (p->cap - 1)].done) {
        p->next = p->ring[p->head & (p->cap - 1)].offset + 1;
        p->head++;
        p->dirty = 1;
    }
    pthread_mutex_unlock(&st->lock);
}

/* The delivery thread: serves delivery reports until told to stop. */
static void *dr_main(void *arg) {
    state_t *st = arg;

    pthread_setname_np(pthread_self(), "dd-prod");
    while (!atomic_load(&st->dr_stop))
        rd_kafka_poll(st->rkp, 50);
    return NULL;
}

/* Stores the next offset of every partition whose done prefix grew. */
static void store_offsets(state_t *st, const char *topic) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t err;

    pthread_mutex_lock(&st->lock);
    for (int i = 0; i < st->nparts; i++) {
        if (!st->parts[i].dirty)
            continue;
        if (parts == NULL)
            parts = rd_kafka_topic_partition_list_new(st->nparts);
        rd_kafka_topic_partition_list_add(parts, topic, i)->offset =
            st->parts[i].next;
        st->parts[i].dirty = 0;
    }
    pthread_mutex_unlock(&st->lock);
    if (parts == NULL)
        return;
    err = rd_kafka_offsets_store(st->rkc, parts);
    if (err)
        fprintf(stderr, "dd-passthrough: offsets_store: %s\n",
                rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(parts);
}

/* Produces one consumed record to the output topic, waiting while the
 * local queue is full (the delivery thread frees space). */
static int forward(state_t *st, const opts_t *o, const rd_kafka_message_t *m) {
    part_t *p;
    rd_kafka_resp_err_t err;
    uint64_t seq;

    if (m->partition < 0 || m->partition >= st->nparts) {
        fprintf(stderr, "dd-passthrough: partition %" PRId32 " unknown\n",
                m->partition);
        return DD_ERR;
    }
    p = &st->parts[m->partition];
    pthread_mutex_lock(&st->lock);
    if (p->tail - p->head == p->cap)
        ring_grow(p);
    seq = p->tail++;
    p->ring[seq & (p->cap - 1)].offset = m->offset;
    p->ring[seq & (p->cap - 1)].done = 0;
    pthread_mutex_unlock(&st->lock);
    while ((err = rd_kafka_producev(
                st->rkp, RD_KAFKA_V_TOPIC(o->out_topic),
                RD_KAFKA_V_KEY(m->key, m->key_len),
                RD_KAFKA_V_VALUE(m->payload, m->len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_OPAQUE(
                    (void *)(uintptr_t)(((uint64_t)m->partition << SEQ_BITS) |
                                        seq)),
                RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL &&
           !stop)
        usleep(1000);
    if (err) {
        fprintf(stderr, "dd-passthrough: produce: %s\n", rd_kafka_err2str(err));
        return DD_ERR;
    }
    return DD_OK;
}

/* Every partition is done up to its end offset at start: its done prefix
 * reached it, or the consumer stands at or past it with nothing in
 * flight (a group that had committed that far already). Under st->lock. */
static int all_done(const state_t *st) {
    for (int i = 0; i < st->nparts; i++) {
        const part_t *p = &st->parts[i];
        if (p->next >= p->end)
            continue;
        if (p->eof >= p->end && p->head == p->tail)
            continue;
        return 0;
    }
    return 1;
}

/* Learns the output topic's partitions before the first record: librdkafka
 * otherwise looks an unknown topic up in its one-second topic scan, which
 * would hold the first deliveries back for up to a second. The returned
 * handle keeps the topic known; NULL on failure. */
static rd_kafka_topic_t *know_output(state_t *st, const char *topic) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(st->rkp, topic, NULL);
    rd_kafka_resp_err_t err;

    err = rd_kafka_metadata(st->rkp, 0, rkt, &md, 10000);
    if (!err && (md->topic_cnt != 1 || md->topics[0].err))
        err = md->topic_cnt == 1 ? md->topics[0].err
                                 : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (err) {
        fprintf(stderr, "dd-passthrough: no metadata for %s: %s\n", topic,
                rd_kafka_err2str(err));
        rd_kafka_topic_destroy(rkt);
        return NULL;
    }
    return rkt;
}

/* The partition count and high watermarks of the input topic. */
static int capture_ends(state_t *st, const char *topic) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(st->rkc, topic, NULL);
    rd_kafka_resp_err_t err;

    err = rd_kafka_metadata(st->rkc, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (!err && (md->topic_cnt != 1 || md->topics[0].partition_cnt == 0))
        err = md->topic_cnt == 1 && md->topics[0].err
                  ? md->topics[0].err
                  : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    if (err) {
        fprintf(stderr, "dd-passthrough: no metadata for %s: %s\n", topic,
                rd_kafka_err2str(err));
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        return DD_ERR;
    }
    st->nparts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    st->parts = dd_xcalloc((size_t)st->nparts, sizeof(*st->parts));
    for (int i = 0; i < st->nparts; i++) {
        int64_t lo, hi;
        err = rd_kafka_query_watermark_offsets(st->rkc, topic, i, &lo, &hi,
                                               10000);
        if (err) {
            fprintf(stderr, "dd-passthrough: end offset of %s [%d]: %s\n",
                    topic, i, rd_kafka_err2str(err));
            return DD_ERR;
        }
        st->parts[i].end = hi;
        st->parts[i].next = -1;
        st->parts[i].eof = -1;
    }
    return DD_OK;
}

static int parse_opts(int argc, char **argv, opts_t *o) {
    int opt;

    memset(o, 0, sizeof(*o));
    while ((opt = getopt(argc, argv, "b:t:G:o:c:X:h")) != -1) {
        char *end = NULL;
        switch (opt) {
            case 'b':
                o->brokers = optarg;
                break;
            case 't':
                o->topic = optarg;
                break;
            case 'G':
                o->group = optarg;
                break;
            case 'o':
                o->out_topic = optarg;
                break;
            case 'c':
                o->count = strtol(optarg, &end, 10);
                if (*end != '\0' || o->count < 0) {
                    fprintf(stderr, "dd-passthrough: bad count: %s\n", optarg);
                    return DD_EXIT_USAGE;
                }
                break;
            case 'X':
                if (o->nprops == MAX_PROPS) {
                    fprintf(stderr, "dd-passthrough: too many -X\n");
                    return DD_EXIT_USAGE;
                }
                o->props[o->nprops++] = optarg;
                break;
            case 'h':
                usage(stdout);
                return DD_EXIT_OK;
            default:
                usage(stderr);
                return DD_EXIT_USAGE;
        }
    }
    if (o->brokers == NULL || o->topic == NULL || o->group == NULL ||
        o->out_topic == NULL || optind != argc) {
        usage(stderr);
        return DD_EXIT_USAGE;
    }
    return -1;
}

/* Consume, forward, store until done or stopped; DD_ERR on a failure. */
static int run(state_t *st, const opts_t *o, int64_t *first_us) {
    int stopped_ok;

    while (!stop) {
        int inflight = 0, done, failed;
        rd_kafka_message_t *rkm = NULL;

        pthread_mutex_lock(&st->lock);
        for (int i = 0; i < st->nparts && !inflight; i++)
            inflight = st->parts[i].head < st->parts[i].tail;
        pthread_mutex_unlock(&st->lock);
        /* While records are in flight, turn often enough to store their
         * offsets and notice the end; with COUNT records taken, take no
         * more. */
        if (o->count == 0 || st->consumed < o->count)
            rkm = rd_kafka_consumer_poll(st->rkc, inflight ? 10 : 100);
        else
            usleep(10 * 1000);
        if (rkm != NULL) {
            int rc = DD_OK;
            if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                pthread_mutex_lock(&st->lock);
                if (rkm->partition >= 0 && rkm->partition < st->nparts)
                    st->parts[rkm->partition].eof = rkm->offset;
                pthread_mutex_unlock(&st->lock);
            } else if (rkm->err) {
                /* Informational: librdkafka retries by itself. */
                fprintf(stderr, "dd-passthrough: consumer: %s\n",
                        rd_kafka_message_errstr(rkm));
            } else {
                if (*first_us == 0)
                    *first_us = dd_now_us();
                st->consumed++;
                rc = forward(st, o, rkm);
            }
            rd_kafka_message_destroy(rkm);
            if (rc != DD_OK)
                return DD_ERR;
        }
        store_offsets(st, o->topic);
        pthread_mutex_lock(&st->lock);
        failed = st->failed > 0;
        done = o->count > 0 ? st->delivered >= o->count : all_done(st);
        pthread_mutex_unlock(&st->lock);
        if (failed)
            return DD_ERR;
        if (done)
            return DD_OK;
    }
    /* Stopped by a signal: a clean end unless a delivery failed. */
    pthread_mutex_lock(&st->lock);
    stopped_ok = st->failed == 0;
    pthread_mutex_unlock(&st->lock);
    return stopped_ok ? DD_OK : DD_ERR;
}

/* VmHWM of this process in KiB (getrusage() would also count the memory
 * of the process that forked it, before exec), or -1. */
static long peak_rss_kib(void) {
    char line[256];
    long kib = -1;
    FILE *fp = fopen("/proc/self/status", "r");

    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL)
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(fp);
    return kib;
}

int main(int argc, char **argv) {
    opts_t o;
    state_t st;
    rd_kafka_conf_t *conf;
    rd_kafka_topic_partition_list_t *sub;
    rd_kafka_topic_t *rkt_out = NULL;
    pthread_t dr_thread;
    int dr_started;
    char msg[512];
    int64_t t0 = dd_now_us(), first_us = 0;
    int rc = parse_opts(argc, argv, &o), ok;

    if (rc >= 0)
        return rc;
    memset(&st, 0, sizeof(st));
    pthread_mutex_init(&st.lock, NULL);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    if ((conf = make_conf(&o, 1)) == NULL)
        return DD_EXIT_USAGE;
    st.rkc = rd_kafka_new(RD_KAFKA_CONSUMER, conf, msg, sizeof(msg));
    if (st.rkc == NULL) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "dd-passthrough: consumer: %s\n", msg);
        return DD_EXIT_SOFTWARE;
    }
    rd_kafka_poll_set_consumer(st.rkc);
    if ((conf = make_conf(&o, 0)) == NULL) {
        rd_kafka_destroy(st.rkc);
        return DD_EXIT_USAGE;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_opaque(conf, &st);
    st.rkp = rd_kafka_new(RD_KAFKA_PRODUCER, conf, msg, sizeof(msg));
    if (st.rkp == NULL) {
        rd_kafka_conf_destroy(conf);
        rd_kafka_destroy(st.rkc);
        fprintf(stderr, "dd-passthrough: producer: %s\n", msg);
        return DD_EXIT_SOFTWARE;
    }

    ok = capture_ends(&st, o.topic) == DD_OK &&
         (rkt_out = know_output(&st, o.out_topic)) != NULL &&
         pthread_create(&dr_thread, NULL, dr_main, &st) == 0;
    dr_started = ok;
    if (ok) {
        sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, o.topic, RD_KAFKA_PARTITION_UA);
        ok = rd_kafka_subscribe(st.rkc, sub) == RD_KAFKA_RESP_ERR_NO_ERROR;
        rd_kafka_topic_partition_list_destroy(sub);
    }
    if (ok)
        ok = run(&st, &o, &first_us) == DD_OK;

    /* Whatever was delivered is stored; close commits it. */
    if (dr_started) {
        atomic_store(&st.dr_stop, 1);
        pthread_join(dr_thread, NULL);
    }
    rd_kafka_flush(st.rkp, 10000);
    store_offsets(&st, o.topic);
    rd_kafka_consumer_close(st.rkc);
    if (rkt_out != NULL)
        rd_kafka_topic_destroy(rkt_out);
    rd_kafka_destroy(st.rkp);
    rd_kafka_destroy(st.rkc);
    for (int i = 0; i < st.nparts; i++)
        dd_free(st.parts[i].ring);
    dd_free(st.parts);
    pthread_mutex_destroy(&st.lock);

    if (first_us == 0 || st.last_dr_us < first_us)
        first_us = st.last_dr_us = t0;
    {
        double secs = (double)(st.last_dr_us - first_us) / 1e6;
        printf("dd-passthrough: %ld records in %.3f s (%.0f msg/s), "
               "first record after %.3f s, peak RSS %ld KiB\n",
               st.delivered, secs, secs > 0 ? (double)st.delivered / secs : 0.0,
               (double)(first_us - t0) / 1e6, peak_rss_kib());
    }
    return ok ? DD_EXIT_OK : DD_EXIT_SOFTWARE;
}
