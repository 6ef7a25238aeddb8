# SPDX-License-Identifier: MIT
"""Producing to and reading from Kafka for the system tests, the benchmark
and the demo: one producer configuration, one produce loop (retried on a
full local queue, every delivery checked), and the readers of a topic
(to a count, to its end offsets, from given offsets) and of its end and
committed offsets. It knows nothing of dispatchd; deadlines scale with
DD_TEST_TIMEOUT_MULTIPLIER like the fixtures' waits."""
import os
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

MULT = int(os.environ.get("DD_TEST_TIMEOUT_MULTIPLIER", "1"))


def producer(brokers, idempotent=True, **conf):
    """A Producer for brokers; conf adds librdkafka properties with '_' for
    '.' (linger_ms=20 sets linger.ms)."""
    c = {"bootstrap.servers": brokers}
    if idempotent:
        c["enable.idempotence"] = True
    c.update({k.replace("_", "."): v for k, v in conf.items()})
    return Producer(c)


def produce_one(p, topic, key, value, headers=None, timestamp_ms=None, on_delivery=None):
    """Queues one record, polling while the local queue is full."""
    kw = {"timestamp": timestamp_ms} if timestamp_ms else {}
    while True:
        try:
            p.produce(topic, key=key, value=value, headers=headers, on_delivery=on_delivery, **kw)
            break
        except BufferError:
            p.poll(0.1)
    p.poll(0)


def produce_with(p, topic, records, timestamp_ms=None, flush_timeout=60):
    """records: iterable of (key bytes|None, value bytes, headers|None) or of
    (key, value, headers, timestamp_ms|None); timestamp_ms sets the
    timestamp of those without one. Waits for every acknowledgement; fails
    on any delivery error. Returns the number acknowledged."""
    errors = []
    n = [0]

    def cb(err, msg):
        if err is not None:
            errors.append(err)
        else:
            n[0] += 1

    for rec in records:
        key, value, headers = rec[:3]
        ts = rec[3] if len(rec) > 3 and rec[3] else timestamp_ms
        produce_one(p, topic, key, value, headers, ts, cb)
    remaining = p.flush(flush_timeout * MULT)
    assert remaining == 0 and not errors, f"produce failed: {errors[:3]} ({remaining} left)"
    return n[0]


def produce(brokers, topic, records, timestamp_ms=None):
    """produce_with() on a fresh idempotent producer (linger.ms 20)."""
    return produce_with(producer(brokers, linger_ms=20), topic, records, timestamp_ms)


def reader(brokers, prefix="dd-test-reader-", **conf):
    """A Consumer of a group of its own that never commits."""
    c = {"bootstrap.servers": brokers, "group.id": prefix + uuid.uuid4().hex,
         "enable.auto.commit": False, "auto.offset.reset": "earliest"}
    c.update(conf)
    return Consumer(c)


def as_dict(m, ts=False):
    """A consumed message as a dict (key, value, headers, partition, offset
    and, with ts, its timestamp in seconds)."""
    d = {"key": m.key(), "value": m.value(), "headers": m.headers() or [],
         "partition": m.partition(), "offset": m.offset()}
    if ts:
        d["ts"] = m.timestamp()[1] / 1000.0
    return d


def consume_all(brokers, topic, expect, timeout=120, partitions=None):
    """Read a topic from the beginning (no group commits) until `expect`
    records arrived or the deadline; returns the list of messages as dicts."""
    c = reader(brokers, **{"enable.partition.eof": False})
    md = c.list_topics(topic, timeout=10)
    c.assign([TopicPartition(topic, p, 0) for p in md.topics[topic].partitions])
    out = []
    deadline = time.monotonic() + timeout * MULT
    while len(out) < expect and time.monotonic() < deadline:
        for m in c.consume(1000, 0.5):
            if m.error():
                continue
            out.append(as_dict(m))
    c.close()
    return out


def end_offsets(brokers, topic, timeout=30):
    """{partition: high watermark} of a topic. While partition leaders move
    (a broker just restarted), asks again until timeout s."""
    c = Consumer({"bootstrap.servers": brokers, "group.id": "dd-test-wm-" + uuid.uuid4().hex})
    try:
        def read():
            md = c.list_topics(topic, timeout=10)
            return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in md.topics[topic].partitions}
        return _asking_again(read, timeout)
    finally:
        c.close()


# Answers of a cluster whose leaders or group coordinator move or load (a
# broker just restarted): ask again.
_MOVING = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
           KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_LEADER_FOR_PARTITION,
           KafkaError.LEADER_NOT_AVAILABLE, KafkaError._TRANSPORT,
           KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT)


def _asking_again(read, timeout):
    """read(), asked again while the cluster answers that it is moving, until
    timeout s (a wait for a condition with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return read()
        except KafkaException as e:
            if e.args[0].code() not in _MOVING or time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # retry interval while the cluster moves


def committed_offsets(brokers, group, topic, partitions, timeout=30):
    """{partition: committed offset} of a group on partitions 0..partitions-1.
    While the group coordinator moves or loads, asks again until timeout s."""
    c = Consumer({"bootstrap.servers": brokers, "group.id": group,
                  "enable.auto.commit": False})
    try:
        def read():
            tps = c.committed([TopicPartition(topic, p) for p in range(partitions)],
                              timeout=10)
            return {tp.partition: tp.offset for tp in tps}
        return _asking_again(read, timeout)
    finally:
        c.close()


def commit_offsets(brokers, group, topic, offsets):
    """Commits {partition: offset} for a group that has no member yet."""
    c = Consumer({"bootstrap.servers": brokers, "group.id": group})
    c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
             asynchronous=False)
    c.close()


def consume_to_end(brokers, topic, timeout=120):
    """Read every record of a topic up to its end offsets at call time."""
    ends = end_offsets(brokers, topic)
    c = reader(brokers)
    c.assign([TopicPartition(topic, p, 0) for p in ends])
    out = []
    pos = {p: 0 for p in ends}
    deadline = time.monotonic() + timeout * MULT
    while any(pos[p] < ends[p] for p in ends):
        assert time.monotonic() < deadline, f"timed out reading {topic} to its end"
        for m in c.consume(1000, 0.5):
            if m.error():
                continue
            pos[m.partition()] = m.offset() + 1
            if m.offset() < ends[m.partition()]:
                out.append(as_dict(m, ts=True))
    c.close()
    return out


def read_from(brokers, topic, start, want, timeout):
    """Up to `want` messages (confluent_kafka Message objects) from the
    offsets start = {partition: offset}, or fewer at the deadline."""
    c = reader(brokers)
    c.assign([TopicPartition(topic, p, o) for p, o in start.items()])
    out, deadline = [], time.monotonic() + timeout * MULT
    while len(out) < want and time.monotonic() < deadline:
        for m in c.consume(100, 0.5):
            if not m.error():
                out.append(m)
    c.close()
    return out
