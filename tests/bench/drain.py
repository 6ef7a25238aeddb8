# SPDX-License-Identifier: MIT
"""One measured drain: a contender process consumes a preloaded backlog
from the beginning (a new consumer group) and writes to a results topic of
its own. The harness samples the CPU time of the contender, redis-server
and the broker every SAMPLE_S and looks at the results topic's end offsets
every CHECK_EVERY samples until all N results are in. The drain window is
the first result's Kafka timestamp (CreateTime: when the contender
produced it) to the moment the harness sees the last one in the topic
(looking every SAMPLE_S / 2 once results flow, one ListOffsets request):
msg/s is N over that window, and CPU per request is each process's CPU
time within that window (interpolated between samples) over N, so process
start, group join, the first fetch and the shutdown are left out; the
idempotent producer's first id request is not (it delays the first
delivery, not the first produce). Also the topics
and offset helpers of the bench."""
import os
import re
import sys
import time
import uuid

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from contenders import cpu_us

SAMPLE_S = 0.02  # CPU sampling period
CHECK_EVERY = 5  # samples between two looks at the results topic
TIMEOUT_S = float(os.environ.get("DD_BENCH_TIMEOUT", "900"))


class Kafka:
    def __init__(self, brokers, partitions):
        self.brokers = brokers
        self.partitions = partitions
        self.admin = AdminClient({"bootstrap.servers": brokers})
        self.wm = Consumer({"bootstrap.servers": brokers,
                            "group.id": "dd-bench-wm-" + uuid.uuid4().hex})
        self.tag = f"dd_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    def create(self, name, partitions=None, log_append_time=False):
        topic = f"{self.tag}.{name}"
        cfg = {"message.timestamp.type": "LogAppendTime"} if log_append_time else {}
        fut = self.admin.create_topics([NewTopic(topic, partitions or self.partitions, 1,
                                                 config=cfg)])
        for f in fut.values():
            f.result(timeout=30)
        deadline = time.monotonic() + 30
        while True:
            tm = self.admin.list_topics(topic, timeout=5).topics.get(topic)
            if tm is not None and tm.error is None and tm.partitions and \
                    all(p.leader >= 0 for p in tm.partitions.values()):
                return topic
            if time.monotonic() > deadline:
                sys.exit(f"bench: topic {topic} has no leader")
            time.sleep(0.1)

    def count(self, topic, partitions=None):
        """Records in a topic: the sum of its end offsets (one ListOffsets
        request for all partitions)."""
        futs = self.admin.list_offsets(
            {TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions or self.partitions)},
            request_timeout=10)
        return sum(f.result().offset for f in futs.values())

    def ends(self, topic):
        return {p: self.wm.get_watermark_offsets(TopicPartition(topic, p), timeout=10,
                                                 cached=False)[1]
                for p in range(self.partitions)}

    def committed(self, group, topic):
        c = Consumer({"bootstrap.servers": self.brokers, "group.id": group,
                      "enable.auto.commit": False})
        tps = c.committed([TopicPartition(topic, p) for p in range(self.partitions)],
                          timeout=10)
        c.close()
        return {tp.partition: tp.offset for tp in tps}

    def timestamps(self, topic, want, timeout=60):
        """The timestamps (ms) of the first want records of a topic."""
        c = Consumer({"bootstrap.servers": self.brokers,
                      "group.id": "dd-bench-rd-" + uuid.uuid4().hex,
                      "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        c.assign([TopicPartition(topic, p, 0) for p in range(self.partitions)])
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < want and time.monotonic() < deadline:
            out.extend(m.timestamp()[1] for m in c.consume(10000, 0.5) if not m.error())
        c.close()
        return out


def drain(kafka, contender, backlog, topic, n, db, redis_srv, kafka_pid, logpath):
    """Runs contender over topic (n records) once; returns a dict of
    figures, or exits on a failure."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", f"{backlog}.{contender.name}.{uuid.uuid4().hex[:6]}")
    results = kafka.create(base + ".results")
    dlq = kafka.create(base + ".dlq", partitions=1)
    group = f"{kafka.tag}.{base}.group"
    if db is not None:
        db.reset()
    redis_srv.compact_aof()
    rpid = redis_srv.pid()
    before = redis_srv.counters()
    t0, wall0 = time.monotonic(), time.time()
    proc = contender.start(kafka.brokers, topic, group, results, dlq, db, n, logpath)
    samples = []  # (wall s, contender, redis-server, broker, redis-server with its children CPU µs)
    i = got = 0
    while True:
        redis_own, redis_all = cpu_us(rpid, children=True)
        samples.append((time.time(), cpu_us(proc.pid), redis_own,
                        cpu_us(kafka_pid) if kafka_pid else None, redis_all))
        # Once results flow, look at every sample: the last look is the
        # end of the drain.
        if got > 0 or i % CHECK_EVERY == 0:
            proc.sample_rss()
            got = kafka.count(results)
            if got < n and proc.exited():
                got = kafka.count(results)  # it may have exited just now
            if got >= n:
                end = time.time()
                break
            if proc.exited():
                proc.finish()
                sys.exit(f"bench: {contender.name} exited (status {proc.rc}) after {got} "
                         f"of {n} results; log: {logpath}")
            if time.monotonic() - t0 > TIMEOUT_S:
                proc.finish()
                sys.exit(f"bench: {contender.name}: {got} of {n} results after "
                         f"{TIMEOUT_S:.0f} s; log: {logpath}")
        i += 1
        time.sleep(SAMPLE_S if got == 0 else SAMPLE_S / 2)
    after = redis_srv.counters()
    rc = proc.finish()
    if rc not in (0, None):
        print(f"bench: warning: {contender.name} exited with status {rc} (log {logpath})")
    dlq_n = kafka.count(dlq, 1)
    ts = kafka.timestamps(results, n)
    committed = kafka.committed(group, topic)
    ends = kafka.ends(topic)
    if committed != ends:
        print(f"bench: warning: {contender.name} committed {committed}, ends {ends}")
    first, last = min(ts) / 1000.0, end
    fig = {
        "n": n,
        "results": got,
        "dlq": dlq_n,
        "startup_s": first - wall0,
        "rate": n / (last - first) if last > first else float("nan"),
        "rss_mib": proc.rss_kib / 1024.0,
        "redis": _delta(before, after),
    }
    for col, key in ((1, "cpu_self"), (2, "cpu_redis"), (3, "cpu_kafka"), (4, "cpu_redis_all")):
        a, b = _at(samples, first, col), _at(samples, last, col)
        if a is not None and b is not None:
            fig[key] = (b - a) / n
    if "cpu_redis_all" in fig and "cpu_redis" in fig:
        fig["cpu_aof"] = max(0.0, fig["cpu_redis_all"] - fig["cpu_redis"])
    if db is not None and contender.kind == "dispatchd":
        total = db.eta_keys()
        fig["eta_miss"] = (total - db.eta_kept) / total if total else float("nan")
    return fig


def _at(samples, t, col):
    """The CPU counter of column col at wall time t, interpolated between
    the samples around it."""
    prev = None
    for s in samples:
        if s[col] is None:
            continue
        if s[0] >= t:
            if prev is None or s[0] == prev[0]:
                return s[col]
            return prev[col] + (s[col] - prev[col]) * (t - prev[0]) / (s[0] - prev[0])
        prev = s
    return prev[col] if prev else None


def _delta(before, after):
    out = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    out.pop("info", None)
    return {k: v for k, v in out.items() if v}
