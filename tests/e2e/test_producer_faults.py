"""System tests of the producer's fault handling against the real broker and
redis-server: records whose dead letter is over a size limit, results the
broker refuses, forged dispatch.* input headers, and a broker outage with a
tiny local producer queue. Every record must be answered (a result or a dead
letter), the committed offsets must reach the end offsets, and SIGTERM must
end dispatchd promptly."""
import hashlib
import json
import os
import signal
import subprocess
import time

import pytest
from confluent_kafka import Producer

from conftest import MULT, ROOT, seed, wait_for
from kafka_io import committed_offsets, consume_to_end, end_offsets
from pipeline_checks import wait_committed_to_end
from poison_setup import set_topic_config

BIG_RANDOM = 999_800
BIG_COMPRESSIBLE = 3_000_000


def produce_big(brokers, topic, records):
    """Like conftest.produce(), for records up to a few MB."""
    p = Producer({"bootstrap.servers": brokers, "enable.idempotence": True,
                  "message.max.bytes": 8_000_000, "compression.type": "lz4",
                  "linger.ms": 5})
    errors = []

    def cb(err, msg):
        if err is not None:
            errors.append(err)

    for key, value, headers in records:
        p.produce(topic, key=key, value=value, headers=headers, on_delivery=cb)
        p.poll(0)
    assert p.flush(60 * MULT) == 0 and not errors, f"produce failed: {errors[:3]}"


def headers_named(msg, name):
    return [v for k, v in msg["headers"] if k == name]


def header(msg, name):
    vals = headers_named(msg, name)
    return vals[0] if vals else None


def stop(d):
    """SIGTERM; returns the seconds dispatchd took to exit (exit code 0)."""
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    assert d.wait(timeout=30) == 0
    return time.monotonic() - t0


def big_records():
    """The oversized inputs: (key, value, headers), keyed by case name."""
    rnd_value = os.urandom(BIG_RANDOM)
    # Random header bytes so that compression cannot shrink them.
    hdrs = [(f"h{i}", os.urandom(BIG_RANDOM // 10)) for i in range(10)]
    return {
        "random": (b"random", rnd_value, [("x-case", b"random")]),
        "compressible": (b"compressible", b"x" * BIG_COMPRESSIBLE,
                         [("x-case", b"compressible")]),
        "headers": (b"headers", b"abcd", [("x-case", b"headers")] + hdrs),
    }


def check_dead_letter(m, orig_value, allowed):
    """One dispatch.error header; the class in allowed; a reduced dead letter
    names the original size and SHA-256 and fits what it kept."""
    assert len(headers_named(m, "dispatch.error")) == 1
    assert len(headers_named(m, "dispatch.error.class")) == 1
    cls = header(m, "dispatch.error.class").decode()
    assert cls in allowed, f"class {cls}, expected one of {allowed}"
    if cls == "record_too_large":
        assert int(header(m, "dispatch.original_size")) == len(orig_value)
        assert header(m, "dispatch.original_sha256").decode() == \
            hashlib.sha256(orig_value).hexdigest()
        assert orig_value.startswith(m["value"] or b""), "a prefix of the value"
        assert len(m["value"] or b"") < len(orig_value) or len(orig_value) <= 65536
    else:
        assert m["value"] == orig_value, "a full dead letter keeps the value"
    return cls


def test_oversized_inputs_and_forged_headers_are_dead_lettered(topics, dispatchd_factory):
    """Inputs the consumer can read always get a dead letter that fits; an
    input's dispatch.* headers come out renamed."""
    set_topic_config(topics.brokers, topics.requests, max_message_bytes=8_000_000)
    recs = big_records()
    forged = (b"forged", b"not json", [("x-case", b"forged"),
                                       ("dispatch.error", b"forged reason"),
                                       ("dispatch.error.class", b"forged_class")])
    produce_big(topics.brokers, topics.requests, list(recs.values()) + [forged])
    d = dispatchd_factory()
    d.wait_assigned()
    t0 = time.monotonic()
    ends = wait_committed_to_end(topics, timeout=90)
    took = time.monotonic() - t0
    committed = committed_offsets(topics.brokers, topics.group, topics.requests,
                                  topics.partitions)
    secs = stop(d)
    dlq = consume_to_end(topics.brokers, topics.dlq)
    by_case = {header(m, "x-case").decode(): m for m in dlq if header(m, "x-case")}
    classes = {}
    for case, (key, value, _) in recs.items():
        assert case in by_case, f"no dead letter for {case}"
        classes[case] = check_dead_letter(by_case[case], value,
                                          ("too_large", "not_json", "record_too_large"))
        assert by_case[case]["key"] == key
    fm = by_case["forged"]
    assert headers_named(fm, "dispatch.error.class") == [b"not_json"]
    assert headers_named(fm, "x-original-dispatch.error") == [b"forged reason"]
    assert headers_named(fm, "x-original-dispatch.error.class") == [b"forged_class"]
    assert len(dlq) == 4, f"{len(dlq)} dead letters for 4 records"
    assert secs < 10, f"SIGTERM took {secs:.1f}s"
    print(f"\noversized inputs: 4 records, dead letters {classes} + forged not_json; "
          f"committed {committed} = end {ends} after {took:.1f}s; exit in {secs:.2f}s")


@pytest.mark.parametrize("limit", ["broker", "client"])
def test_dead_letters_over_a_limit_are_written_reduced(topics, dispatchd_factory, limit):
    """A dead letter over the DLQ topic's max.message.bytes (broker) or the
    producer's own message.max.bytes (client) is written reduced."""
    set_topic_config(topics.brokers, topics.requests, max_message_bytes=8_000_000)
    args = []
    if limit == "broker":
        set_topic_config(topics.brokers, topics.dlq, max_message_bytes=200_000)
    else:
        args = ["-X", "producer.message.max.bytes=300000"]
    recs = big_records()
    produce_big(topics.brokers, topics.requests, list(recs.values()))
    d = dispatchd_factory(args)
    d.wait_assigned()
    ends = wait_committed_to_end(topics, timeout=90)
    secs = stop(d)
    dlq = consume_to_end(topics.brokers, topics.dlq)
    by_case = {header(m, "x-case").decode() if header(m, "x-case") else m["key"].decode(): m
               for m in dlq}
    classes = {}
    for case, (key, value, _) in recs.items():
        assert case in by_case, f"no dead letter for {case}"
        m = by_case[case]
        assert m["key"] == key
        # The incompressible ones cannot fit in full; the compressible one
        # may (the broker's limit applies to the compressed batch).
        allowed = ("record_too_large",) if case != "compressible" or limit == "client" \
            else ("too_large", "record_too_large")
        classes[case] = check_dead_letter(m, value, allowed)
    assert header(by_case["headers"], "h0") is None, "oversized original headers dropped"
    assert header(by_case["random"], "x-case") == b"random", "small original headers kept"
    assert len(dlq) == 3
    assert secs < 10, f"SIGTERM took {secs:.1f}s"
    print(f"\nreduced dead letters ({limit} limit): 3 records, classes {classes}; "
          f"committed = end {ends}; exit in {secs:.2f}s")


def test_results_the_broker_refuses_are_dead_lettered(topics, redis_addr, redis_db,
                                                      dispatchd_factory):
    """A result topic whose max.message.bytes is smaller than any result:
    each request is dead-lettered with class result_rejected."""
    seed(redis_addr, redis_db[0], 50, 100, available_pct=100)
    set_topic_config(topics.brokers, topics.results, max_message_bytes=150)
    n = 20
    reqs = []
    for i in range(n):
        body = {"request_id": f"r-{i}", "parcel_id": f"p-{i + 1:05d}",
                "courier_id": f"c-{i + 1:04d}"}
        reqs.append((body["parcel_id"].encode(),
                     json.dumps(body, separators=(",", ":")).encode(), None))
    produce_big(topics.brokers, topics.requests, reqs)
    d = dispatchd_factory()
    d.wait_assigned()
    ends = wait_committed_to_end(topics, timeout=90)
    secs = stop(d)
    dlq = consume_to_end(topics.brokers, topics.dlq)
    results = consume_to_end(topics.brokers, topics.results)
    assert not results
    rids = sorted(json.loads(m["value"])["request_id"] for m in dlq)
    assert rids == sorted(f"r-{i}" for i in range(n)), "each request once"
    for m in dlq:
        assert headers_named(m, "dispatch.error.class") == [b"result_rejected"]
        assert b"MSG_SIZE_TOO_LARGE" in header(m, "dispatch.error")
    assert secs < 10, f"SIGTERM took {secs:.1f}s"
    print(f"\nrefused results: {n} requests, {len(dlq)} dead letters result_rejected, "
          f"0 results; committed = end {ends}; exit in {secs:.2f}s")


def stack(cmd):
    subprocess.run([os.path.join(ROOT, "scripts", "stack"), cmd], check=True)


def test_broker_outage_with_a_full_local_queue_loses_nothing(topics, redis_addr, redis_db,
                                                             dispatchd_factory):
    """A tiny local producer queue and a broker outage long enough for
    deliveries to time out and retries to fall due while the queue is full:
    once the broker is back, every request is answered and committed, and
    the per-job warnings are rate-limited."""
    seed(redis_addr, redis_db[0], 500, 1000, available_pct=100)
    n = 3000
    reqs = []
    for i in range(n):
        body = {"request_id": f"r-{i}", "parcel_id": f"p-{i % 1000 + 1:05d}",
                "courier_id": f"c-{i % 500 + 1:04d}"}
        reqs.append((body["parcel_id"].encode(),
                     json.dumps(body, separators=(",", ":")).encode(), None))
    produce_big(topics.brokers, topics.requests, reqs)
    d = dispatchd_factory(["-X", "producer.queue.buffering.max.messages=5",
                           "-X", "producer.message.timeout.ms=2000"])
    d.wait_assigned()
    wait_for(lambda: sum(end_offsets(topics.brokers, topics.results).values()) >= 50, 60,
             "the first results", interval=0.1)
    stack("kafka-stop")
    try:
        # The outage outlasts message.timeout.ms several times over, so
        # deliveries fail and their retries fall due with the queue full.
        end = time.monotonic() + 12
        while time.monotonic() < end:
            assert d.proc.poll() is None, "dispatchd exited during the broker outage"
            time.sleep(0.5)  # observation interval of a fixed-length outage
    finally:
        stack("kafka-start")
    ends = wait_committed_to_end(topics, timeout=120)
    secs = stop(d)
    results = consume_to_end(topics.brokers, topics.results)
    dlq = consume_to_end(topics.brokers, topics.dlq)
    answered = {json.loads(m["value"])["request_id"] for m in results}
    answered |= {json.loads(m["value"])["request_id"] for m in dlq}
    missing = {f"r-{i}" for i in range(n)} - answered
    assert not missing, f"{len(missing)} request(s) unanswered, e.g. {sorted(missing)[:3]}"
    failed = d.events("delivery_failed")
    assert len(failed) <= 12, f"{len(failed)} delivery_failed lines in a 12 s outage"
    assert secs < 10, f"SIGTERM took {secs:.1f}s"
    print(f"\nbroker outage, queue of 5: {n} requests, {len(results)} results, "
          f"{len(dlq)} dead letters, all answered; {len(failed)} delivery_failed lines; "
          f"committed = end {ends}; exit in {secs:.2f}s")
