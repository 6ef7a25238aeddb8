"""System tests of what dispatchd says about itself under faults (issue 9):
its exit status after a fatal Kafka client error, /readyz while it cannot
make progress, and a shutdown that fits in --shutdown-timeout with the
broker gone. dispatchd runs as a subprocess against the real broker and
redis-server of scripts/stack; every wait is for a condition with a
deadline."""
import json
import os
import signal
import subprocess
import threading
import time
import uuid

import pytest

from conftest import MULT, ROOT, seed, wait_for
from kafka_io import end_offsets, produce_with, producer
from http_probe import HTTP_ENV, http_port, readyz

STACK = os.path.join(ROOT, "scripts", "stack")
EX_SOFTWARE = 70


def stack(cmd):
    subprocess.run([STACK, cmd], check=True, capture_output=True, text=True, timeout=120)


def requests(n, couriers=500, parcels=1000):
    out = []
    for i in range(n):
        body = {"request_id": f"r-{i}", "parcel_id": f"p-{i % parcels + 1:05d}",
                "courier_id": f"c-{i % couriers + 1:04d}"}
        out.append((body["parcel_id"].encode(),
                    json.dumps(body, separators=(",", ":")).encode(), None, None))
    return out


class ReadyzWatch(threading.Thread):
    """Polls /readyz until the process exits; keeps every answer seen."""

    def __init__(self, d, port):
        super().__init__(daemon=True)
        self.d, self.port, self.seen = d, port, []

    def run(self):
        while self.d.proc.poll() is None:
            status, body = readyz(self.port)
            if status is not None:
                self.seen.append((time.monotonic(), status, body))
            time.sleep(0.02)

    def first(self, pred):
        return next((s for s in self.seen if pred(s[1], s[2])), None)


def fatal_503(status, body):
    return status == 503 and any(r.startswith("fatal kafka client error")
                                 for r in body["reasons"])


def test_fenced_instance_exits_70_and_reports_the_fatal_error(topics, redis_addr, redis_db,
                                                               dispatchd_factory):
    """Two dispatchd with the same --instance-id: the broker fences the first
    (a fatal error that arrives through rd_kafka_consumer_poll()). It turns
    /readyz 503 with the fatal reason, shuts down and exits 70."""
    seed(redis_addr, redis_db[0], 500, 1000, available_pct=100)
    p = producer(topics.brokers)
    produce_with(p, topics.requests, requests(200))
    inst = f"dd-test-{uuid.uuid4().hex[:8]}"
    first = dispatchd_factory(["--instance-id", inst], HTTP_ENV, name="first")
    first.wait_assigned()
    port = http_port(first)
    wait_for(lambda: readyz(port)[0] == 200, 60, "/readyz 200 on the first instance")
    watch = ReadyzWatch(first, port)
    watch.start()
    t0 = time.monotonic()
    second = dispatchd_factory(["--instance-id", inst], HTTP_ENV, name="second")
    try:
        rc = first.proc.wait(timeout=60 * MULT)
    except subprocess.TimeoutExpired:
        raise AssertionError("the fenced instance is still running after 60 s:\n"
                             + first.log_text()[-3000:])
    secs = time.monotonic() - t0
    watch.join(timeout=5)
    assert rc == EX_SOFTWARE, f"exit status {rc}:\n{first.log_text()[-3000:]}"
    seen = watch.first(fatal_503)
    assert seen is not None, f"/readyz never 503 with the fatal reason: {watch.seen[-5:]}"
    assert first.events("kafka_fatal"), "no kafka_fatal log line"
    assert second.proc.poll() is None, "the second instance exited too"
    print(f"\nfenced: exit {rc} {secs:.2f}s after the second instance started; "
          f"/readyz {seen[1]} {seen[2]['reasons']} {seen[0] - t0:.2f}s after it started")


def test_missing_result_topic_turns_readyz_503(topics, redis_addr, redis_db, dispatchd_factory):
    """The result topic does not exist (auto create is off): nothing can be
    delivered, so /readyz turns 503 with the delivery reason once
    --ready-delivery-timeout has passed with results outstanding."""
    seed(redis_addr, redis_db[0], 500, 1000, available_pct=100)
    p = producer(topics.brokers)
    produce_with(p, topics.requests, requests(50))
    timeout_s = 5
    missing = topics.results + ".missing"
    d = dispatchd_factory(["--result-topic", missing, "--shutdown-timeout", "5s",
                           "--ready-delivery-timeout", f"{timeout_s}s"], HTTP_ENV)
    d.wait_assigned()
    port = http_port(d)
    t0 = time.monotonic()

    def stalled():
        status, body = readyz(port)
        return status == 503 and any(r.startswith("deliveries stalled")
                                     for r in body["reasons"]) and (status, body)
    status, body = wait_for(stalled, timeout_s + 15, "/readyz 503 'deliveries stalled'")
    secs = time.monotonic() - t0
    assert d.proc.poll() is None
    d.signal(signal.SIGTERM)
    rc = d.wait(timeout=60)
    print(f"\nmissing result topic: /readyz {status} {body['reasons']} "
          f"{secs:.2f}s after the assignment (threshold {timeout_s}s); exit {rc}")


@pytest.mark.parametrize("timeout_s", [10, 3])
def test_shutdown_with_the_broker_gone_fits_the_timeout(topics, redis_addr, redis_db,
                                                        dispatchd_factory, timeout_s):
    """Broker stopped under load, SIGTERM 3 s later with --shutdown-timeout
    10s (and 3s, too short for the consumer close): dispatchd exits within
    the timeout (plus a small margin) instead of waiting for the flush and
    then for the consumer close."""
    seed(redis_addr, redis_db[0], 500, 1000, available_pct=100)
    p = producer(topics.brokers)
    produce_with(p, topics.requests, requests(3000))
    d = dispatchd_factory(["--shutdown-timeout", f"{timeout_s}s"])
    d.wait_assigned()
    wait_for(lambda: sum(end_offsets(topics.brokers, topics.results).values()) >= 50, 60,
             "the first results", interval=0.1)
    stack("kafka-stop")
    try:
        # The scenario: the operator's SIGTERM comes 3 s into the outage.
        time.sleep(3)
        assert d.proc.poll() is None, "dispatchd exited during the broker outage"
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        try:
            rc = d.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            rc = None
        secs = time.monotonic() - t0
    finally:
        stack("kafka-start")
    assert rc is not None, "dispatchd did not exit within 60 s of SIGTERM"
    assert secs < timeout_s + 2, \
        f"SIGTERM to exit took {secs:.1f}s with --shutdown-timeout {timeout_s}s"
    assert rc == 0, f"exit status {rc}:\n{d.log_text()[-3000:]}"
    spent = d.events("shutdown_budget_spent")
    print(f"\nbroker gone: exit {rc} {secs:.2f}s after SIGTERM (--shutdown-timeout {timeout_s}s); "
          f"budget spent before the close finished: {bool(spent)}")


def test_fatal_error_during_shutdown_still_exits_70(topics, redis_addr, redis_db,
                                                    dispatchd_factory):
    """The first instance is shutting down (SIGTERM) and waiting to flush
    results it cannot deliver (result topic missing) when a second one with
    the same --instance-id fences it: the fatal error arrives while nobody
    polls the consumer, is still seen (librdkafka's FATAL log line, the
    failed final commit), and the exit status is 70 (neither 0 as if nothing
    happened nor the 130 of a second signal)."""
    seed(redis_addr, redis_db[0], 500, 1000, available_pct=100)
    p = producer(topics.brokers)
    produce_with(p, topics.requests, requests(50))
    inst = f"dd-test-{uuid.uuid4().hex[:8]}"
    first = dispatchd_factory(["--instance-id", inst,
                               "--result-topic", topics.results + ".missing",
                               "--shutdown-timeout", "20s"], name="first")
    first.wait_assigned()
    # Every request answered (its result stored in Redis) and handed to the
    # producer, which cannot deliver it.
    wait_for(lambda: len(redis_db[1].keys("result:*")) >= 50, 30,
             "50 answers waiting for the producer")
    t0 = time.monotonic()
    first.signal(signal.SIGTERM)
    wait_for(lambda: first.events("shutdown"), 10, "the first instance to start its shutdown")
    dispatchd_factory(["--instance-id", inst], name="second")
    try:
        rc = first.proc.wait(timeout=60 * MULT)
    except subprocess.TimeoutExpired:
        raise AssertionError("the first instance did not exit:\n" + first.log_text()[-3000:])
    secs = time.monotonic() - t0
    fatal = first.events("kafka_fatal")
    assert fatal, f"no fatal error during the shutdown:\n{first.log_text()[-3000:]}"
    assert rc == EX_SOFTWARE, f"exit status {rc}:\n{first.log_text()[-3000:]}"
    print(f"\nfatal during shutdown: exit {rc} {secs:.2f}s after SIGTERM; "
          f"{fatal[0]['msg']}")
