# SPDX-License-Identifier: MIT
"""The latency mode of `make bench` (DD_BENCH_LATENCY=1): an open-loop
producer sends backlog-A-shaped requests at a fixed rate, on schedule and
not when an answer came back, to a contender that is already up and
consuming an empty topic. The sender is tests/bench/dd_openloop (C,
librdkafka, built by `make bench`): this module writes the requests to a
file, runs it and reads back its achieved send rate, so the harness's
Python takes no CPU while requests are sent. The latency of a request is
its result's Kafka timestamp (LogAppendTime: when the result reached the
broker) minus the request's (CreateTime: set by the producer when it was
sent), in ms (Kafka timestamps have a resolution of 1 ms). The first
WARMUP_S of the schedule are left out of the percentiles."""
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

from confluent_kafka import Consumer, TopicPartition

from backlog import requests_a
from contenders import BIN_DIR, cpu_us
from kafka_io import producer

WARMUP_S = 1.0
# Records the sender produces and flushes before its schedule (request ids
# from n on, so outside the percentiles): see tests/bench/dd_openloop.c.
SENDER_WARMUP = 20
OPENLOOP = os.path.join(BIN_DIR, "bench", "dd_openloop")


def _read_all(brokers, topic, partitions, want, timeout):
    """{request_id: timestamp ms} of a topic, read until want records or
    the deadline."""
    c = Consumer({"bootstrap.servers": brokers, "group.id": "dd-bench-lat-" + uuid.uuid4().hex,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = {}
    deadline = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < deadline:
        for m in c.consume(1000, 0.5):
            if m.error():
                continue
            out[json.loads(m.value())["request_id"]] = m.timestamp()[1]
    c.close()
    return out


def pct(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    return sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))]


def run(kafka, contender, rate, seconds, db, redis_srv, logpath):
    """One open-loop run at rate msg/s for seconds; returns figures."""
    topic = kafka.create(f"lat.{uuid.uuid4().hex[:6]}.requests")
    results = kafka.create(f"lat.{uuid.uuid4().hex[:6]}.results", log_append_time=True)
    dlq = kafka.create(f"lat.{uuid.uuid4().hex[:6]}.dlq", partitions=1)
    if db is not None:
        db.reset()
    redis_srv.compact_aof()
    n = int(rate * seconds)
    reqs = requests_a(n + 400, prefix="l")
    prod = producer(kafka.brokers, linger_ms=1)
    proc = contender.start(kafka.brokers, topic, topic + ".group", results, dlq, db, n + 400,
                           logpath)
    # Probe until the contender answers: it is then assigned and fetching.
    probes = 0
    deadline = time.monotonic() + 90
    while kafka.count(results) == 0:
        if time.monotonic() > deadline or proc.exited():
            proc.finish()
            sys.exit(f"bench: latency: {contender.name} never answered (log {logpath})")
        key, value, _ = reqs[n + probes]
        prod.produce(topic, key=key, value=value)
        prod.poll(0)
        probes += 1
        time.sleep(0.2)
    prod.flush(10)
    base = kafka.count(results)
    while base < probes and time.monotonic() < deadline:
        time.sleep(0.1)
        base = kafka.count(results)

    with tempfile.NamedTemporaryFile("wb", prefix="dd-openloop-", suffix=".tsv",
                                     delete=False) as f:
        warm = reqs[n + probes:n + probes + SENDER_WARMUP]
        for key, value, _ in warm + reqs[:n]:
            f.write(key + b"\t" + value + b"\n")
        reqs_path = f.name

    rpid = redis_srv.pid()
    c0, r0 = cpu_us(proc.pid), cpu_us(rpid, children=True)[1]
    sender = subprocess.run([OPENLOOP, kafka.brokers, topic, str(rate), reqs_path,
                             str(SENDER_WARMUP)],
                            capture_output=True, text=True)
    os.unlink(reqs_path)
    figs = dict(kv.split("=", 1) for kv in sender.stdout.split() if "=" in kv)
    if "rate" not in figs:
        proc.finish()
        sys.exit(f"bench: latency: dd_openloop failed ({sender.returncode}): "
                 f"{sender.stderr.strip()}")
    deadline = time.monotonic() + 120
    base += SENDER_WARMUP
    while kafka.count(results) < base + n:
        if time.monotonic() > deadline or proc.exited():
            break
        time.sleep(0.05)
    c1, r1 = cpu_us(proc.pid), cpu_us(rpid, children=True)[1]
    proc.sample_rss()
    answered = kafka.count(results) - base
    proc.finish()

    req_ts = _read_all(kafka.brokers, topic, kafka.partitions, n + probes + SENDER_WARMUP, 60)
    res_ts = _read_all(kafka.brokers, results, kafka.partitions, n + probes + SENDER_WARMUP,
                       60)
    # The schedule's start: its first record, not the probes or the
    # sender's warm-up records (ids from n on).
    start_ms = min((req_ts[k] for k in req_ts if k.startswith("l-") and int(k[2:]) < n),
                   default=0)
    lat = sorted(res_ts[k] - req_ts[k] for k in req_ts
                 if k in res_ts and req_ts[k] >= start_ms + WARMUP_S * 1000
                 and int(k[2:]) < n)
    return {
        "rate": rate,
        "sent_rate": float(figs["rate"]),
        "late_max_ms": float(figs["late_max_ms"]),
        "answered": answered,
        "n": n,
        "p50": pct(lat, 0.50),
        "p99": pct(lat, 0.99),
        "p999": pct(lat, 0.999),
        "max": lat[-1] if lat else float("nan"),
        "cpu_self": (c1 - c0) / answered if answered and c1 is not None else float("nan"),
        "cpu_redis": (r1 - r0) / answered if answered and r1 is not None else float("nan"),
        "measured": len(lat),
        "rss_mib": proc.rss_kib / 1024.0,
    }


def default_rate(medians, contender):
    """DD_BENCH_RATE, else half the contender's median rate on backlog A."""
    if os.environ.get("DD_BENCH_RATE"):
        return float(os.environ["DD_BENCH_RATE"])
    return 0.5 * medians[contender.name]
