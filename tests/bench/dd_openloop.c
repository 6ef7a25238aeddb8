/* SPDX-License-Identifier: MIT */
/*
 * dd_openloop: the open-loop sender of the latency mode of `make bench`
 * (tests/bench/latency.py). It reads prepared records, one "key TAB value"
 * line each (latency.py writes backlog-A-shaped requests, so the keys and
 * request ids are the ones it matches answers by). The first WARMUP records
 * are produced at once and flushed before the schedule starts, so the
 * producer id of the idempotent producer, the metadata and the connection
 * to every leader are in place: a cold producer held the first second of
 * the schedule back (about 1 s of latency at the start, also for the
 * pass-through). The rest are produced to the topic on a fixed schedule:
 * record i is due at start + i / rate, sent as soon as it is due and never
 * later because of an answer (nothing is read back). librdkafka sets each
 * record's CreateTime when it is produced. At the end it flushes and prints
 * one line of figures on stdout:
 *
 *   sent=N seconds=S rate=R late_max_ms=L failed=F
 *
 * where N counts the scheduled records only, rate is N / S over the sending
 * (not the flush), late_max_ms the longest a record waited past its due time
 * before produce() took it, and failed the records the delivery report called
 * failed. Not a test; it asserts nothing. C instead of the harness's Python so
 * that the sender takes little of the CPU the broker, Redis and the contender
 * share.
 *
 *   dd_openloop BROKERS TOPIC RATE FILE WARMUP [-X prop=value ...]
 *
 * DESIGN: one thread sends and serves delivery reports (rd_kafka_poll with
 * timeout 0 between sends); librdkafka's own threads do the I/O. The
 * records are read into memory before the schedule starts, so a slow disk
 * is not on it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

typedef struct {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
} record_t;

static long failed;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t) {
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
           EINTR) {
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque) {
    (void)rk;
    (void)opaque;
    if (m->err) {
        failed++;
    }
}

/* The tool gives up on the first allocation failure: nothing to recover. */
static void *must(void *p) {
    if (!p) {
        fprintf(stderr, "dd_openloop: out of memory\n");
        exit(70);
    }
    return p;
}

/* Reads FILE into *out; returns the number of records or -1. */
static long read_records(const char *path, record_t **out) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 1024, n = 0;
    record_t *recs = must(malloc(cap * sizeof(*recs)));
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    while ((len = getline(&line, &line_cap, f)) > 0) {
        if (line[len - 1] == '\n') {
            line[--len] = '\0';
        }
        const char *tab = memchr(line, '\t', (size_t)len);
        if (!tab) {
            continue;
        }
        if (n == cap) {
            cap *= 2;
            recs = must(realloc(recs, cap * sizeof(*recs)));
        }
        recs[n].key_len = (size_t)(tab - line);
        recs[n].key = must(strndup(line, recs[n].key_len));
        recs[n].value_len = (size_t)(line + len - tab - 1);
        recs[n].value = must(strndup(tab + 1, recs[n].value_len));
        n++;
    }
    free(line);
    fclose(f);
    *out = recs;
    return (long)n;
}

static int set_conf(rd_kafka_conf_t *conf, const char *name,
                    const char *value) {
    char err[256];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "dd_openloop: %s=%s: %s\n", name, value, err);
        return -1;
    }
    return 0;
}

/* 0 when queued, 1 when the local queue is full (try again), -1 on error. */
static int produce(rd_kafka_t *rk, const char *topic, const record_t *r) {
    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(r->key, r->key_len),
        RD_KAFKA_V_VALUE(r->value, r->value_len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        return 1;
    }
    if (e) {
        fprintf(stderr, "dd_openloop: produce: %s\n", rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 6 || (argc - 6) % 2 != 0) {
        fprintf(stderr, "usage: dd_openloop BROKERS TOPIC RATE FILE WARMUP "
                        "[-X prop=value ...]\n");
        return 64;
    }
    const char *topic = argv[2];
    double rate = strtod(argv[3], NULL);
    if (rate <= 0) {
        fprintf(stderr, "dd_openloop: need a rate > 0\n");
        return 64;
    }

    /* Idempotent and linger 1 as the harness's Python producer was. Nagle
     * off: a request must not wait in this host's TCP stack for the
     * broker's acknowledgement of the previous one, which would count
     * against the contender. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int bad = set_conf(conf, "bootstrap.servers", argv[1]) ||
              set_conf(conf, "enable.idempotence", "true") ||
              set_conf(conf, "linger.ms", "1") ||
              set_conf(conf, "socket.nagle.disable", "true");
    for (int i = 6; i + 1 < argc && !bad; i += 2) {
        char *eq = strchr(argv[i + 1], '=');
        if (strcmp(argv[i], "-X") != 0 || !eq) {
            fprintf(stderr, "dd_openloop: expected -X prop=value, got %s\n",
                    argv[i + 1]);
            return 64;
        }
        *eq = '\0';
        bad = set_conf(conf, argv[i + 1], eq + 1);
    }
    if (bad) {
        return 78;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "dd_openloop: %s\n", err);
        return 69;
    }

    record_t *recs = NULL;
    long n = read_records(argv[4], &recs);
    if (n < 0) {
        rd_kafka_destroy(rk);
        return 66;
    }

    long warm = strtol(argv[5], NULL, 10);
    if (warm < 0 || warm > n) {
        warm = n;
    }
    for (long i = 0; i < warm; i++) {
        if (produce(rk, topic, &recs[i]) != 0) {
            failed++;
        }
    }
    rd_kafka_flush(rk, 30000);

    double t0 = now_s(), late_max = 0.0;
    long sent = 0;
    while (warm + sent < n) {
        double due = t0 + (double)sent / rate, t = now_s();
        if (t < due) {
            rd_kafka_poll(rk, 0);
            sleep_until(due);
            continue;
        }
        if (t - due > late_max) {
            late_max = t - due;
        }
        int rc = produce(rk, topic, &recs[warm + sent]);
        if (rc > 0) {
            rd_kafka_poll(rk, 1);
            continue;
        }
        failed += rc < 0;
        sent++;
    }
    double send_s = now_s() - t0;
    rd_kafka_flush(rk, 30000);
    printf("sent=%ld seconds=%.3f rate=%.1f late_max_ms=%.1f failed=%ld\n",
           sent, send_s, send_s > 0 ? (double)sent / send_s : 0.0,
           late_max * 1000.0, failed);
    rd_kafka_destroy(rk);
    for (long i = 0; i < n; i++) {
        free(recs[i].key);
        free(recs[i].value);
    }
    free(recs);
    return failed ? 1 : 0;
}
