"""System tests of the HTTP endpoint (issue 5): dispatchd runs as a
subprocess with --http 127.0.0.1:0 against the real broker and
redis-server; the tests find the port in the http_listening log event and
check /metrics against a known request mix (and its format), /readyz across a
Redis outage (scripts/stack redis-stop / redis-start), /debug/workers while
Redis is paused, and that hostile HTTP clients do not stop the pipeline.
Every wait is for a condition with a deadline."""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

from conftest import ROOT, seed, wait_for
from http_probe import HTTP_ENV, get, http_port, metrics, readyz, samples
from kafka_io import consume_to_end, end_offsets, produce_with, producer

STACK = os.path.join(ROOT, "scripts", "stack")


def format_check(text):
    """scripts/check-metrics-format (prometheus_client's parser and more)."""
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "check-metrics-format")],
                       input=text, capture_output=True, text=True)
    assert p.returncode == 0, f"check-metrics-format failed:\n{p.stdout}{p.stderr}"


def stack(cmd):
    subprocess.run([STACK, cmd], check=True, capture_output=True, text=True, timeout=60)


def request_record(rid, parcel, ts=None, **kw):
    """A valid-shaped request keyed by its parcel id (DESIGN section 2)."""
    return (parcel.encode(), request_value(rid, parcel, **kw), None, ts)


def request_value(rid, parcel, **kw):
    d = {"request_id": rid, "parcel_id": parcel}
    d.update(kw)
    return json.dumps(d, separators=(",", ":")).encode()


def produce_now(p, topic, records):
    """records: (key, value, headers, timestamp_ms or None); waits for acks."""
    produce_with(p, topic, records, flush_timeout=30)


def known_mix():
    """100 valid requests with exact outcomes plus one malformed record per
    dead-letter reason. Returns (records, expected counters)."""
    recs = []
    now = int(time.time() * 1000)
    for i in range(1, 61):  # distinct available couriers: assigned
        recs.append(request_record(f"a-{i}", f"p-{i:05d}", courier_id=f"c-{i:04d}"))
    for i in range(20):  # unknown courier: rejected
        recs.append(request_record(f"u-{i}", f"p-{100 + i:05d}", courier_id=f"c-x{i}"))
    for i in range(10):  # unknown parcel: rejected
        recs.append(request_record(f"n-{i}", f"p-none-{i}", courier_id="c-0150"))
    for i in range(10):  # deadline long gone (message timestamp a minute ago)
        recs.append(request_record(f"e-{i}", f"p-{150 + i:05d}", ts=now - 60000, courier_id="c-0151",
                                   deadline_ms=1000))
    bad = {
        "not_json": b'{"request_id": "x-1", ',
        "schema": json.dumps({"request_id": "x-2", "parcel_id": "p-00001"}).encode(),
        "too_large": json.dumps({"request_id": "x-3", "parcel_id": "p-00001", "courier_id": "c-0001",
                                 "pad": "x" * 70000}).encode(),
        "invalid_utf8": b'{"request_id": "x-4", "parcel_id": "p-\xff\xfe"}',
        "bad_id": json.dumps({"request_id": "x-5", "parcel_id": "p 1/2", "courier_id": "c-0001"}).encode(),
    }
    for reason, value in bad.items():
        recs.append((reason.encode(), value, [("x-case", reason.encode())], None))
    expected = {
        'dispatchd_requests_total{outcome="assigned"}': 60,
        'dispatchd_requests_total{outcome="rejected"}': 30,
        'dispatchd_requests_total{outcome="expired"}': 10,
        'dispatchd_requests_total{outcome="dead_letter"}': 5,
    }
    for reason in bad:
        expected[f'dispatchd_dlq_total{{reason="{reason}"}}'] = 1
    return recs, expected


def start_ready(dispatchd_factory, extra_env=None):
    env = dict(HTTP_ENV)
    env.update(extra_env or {})
    d = dispatchd_factory(extra_env=env)
    port = http_port(d)
    wait_for(lambda: readyz(port)[0] == 200, 60, "/readyz to answer 200")
    return d, port


def test_metrics_count_a_known_mix_exactly(topics, redis_addr, redis_db, dispatchd_factory):
    seed(redis_addr, redis_db[0], 200, 200, available_pct=100)
    d, port = start_ready(dispatchd_factory, {"DISPATCHD_STATS_INTERVAL": "1s"})
    before = samples(metrics(port))
    assert all(v == 0 for k, v in before.items() if k.startswith("dispatchd_requests_total"))
    recs, expected = known_mix()
    produce_now(producer(topics.brokers),
                topics.requests, recs)

    def counted():
        s = samples(metrics(port))
        return s if all(s.get(k) == v for k, v in expected.items()) else None
    try:
        s = wait_for(counted, 60, "the request counters to reach the mix")
    except AssertionError:
        got = {k: samples(metrics(port)).get(k) for k in expected}
        raise AssertionError(f"counters {got} != {expected}")
    answered = sum(v for k, v in s.items()
                   if k.startswith("dispatchd_requests_total") and "dead_letter" not in k)
    assert answered == 100
    assert sum(v for k, v in s.items() if k.startswith("dispatchd_dlq_total")) == 5
    assert s["dispatchd_ledger_hits_total"] == 0
    # Each counted answer went out: 100 results, 5 dead letters.
    wait_for(lambda: sum(end_offsets(topics.brokers, topics.results).values()) == 100, 60, "100 results")
    assert len(consume_to_end(topics.brokers, topics.dlq)) == 5
    # Lag per partition from librdkafka statistics: 0 on every partition
    # that has a committed offset, once all is committed.
    lag_re = re.compile(r'dispatchd_consumer_lag\{topic="%s",partition="(\d+)"\}' % re.escape(topics.requests))
    used = {p for p, end in end_offsets(topics.brokers, topics.requests).items() if end > 0}
    lags = {}

    def lag_zero():
        lags.clear()
        lags.update({int(m.group(1)): v for k, v in samples(metrics(port)).items()
                     for m in [lag_re.match(k)] if m})
        return set(lags) >= used and all(v == 0 for v in lags.values())
    try:
        wait_for(lag_zero, 60, "consumer_lag 0 on every partition")
    except AssertionError:
        raise AssertionError(f"consumer_lag {lags}, partitions with records {sorted(used)}")
    text = metrics(port)
    assert re.search(r'^dispatchd_build_info\{version="[^"]+",librdkafka="2\.[0-9.]+"\} 1$', text, re.M)
    assert samples(text)["dispatchd_ready"] == 1
    assert samples(text)['dispatchd_processing_seconds_count'] == 100
    format_check(text)
    print(f"\nmetrics: {int(answered)} answered, 5 dead letters; {len(text)} bytes accepted by check-metrics-format")


def test_readyz_follows_a_redis_outage(topics, redis_addr, redis_db, dispatchd_factory):
    d, port = start_ready(dispatchd_factory)
    assert readyz(port) == (200, {"ready": True, "reasons": []})
    stopped = False
    try:
        # Poll /readyz while the stop command runs, to time the flip from
        # the moment the outage begins.
        t0 = time.monotonic()
        stopper = subprocess.Popen([STACK, "redis-stop"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        stopped = True
        wait_for(lambda: readyz(port)[0] == 503, 10, "/readyz 503 after redis-stop")
        down_s = time.monotonic() - t0
        assert stopper.wait(timeout=60) == 0
        status, body = readyz(port)
        assert status == 503 and body["ready"] is False
        assert any(x.startswith("redis is not answering") for x in body["reasons"]), body
        assert samples(metrics(port))["dispatchd_ready"] == 0
        # Liveness is not readiness: the process is fine.
        assert get(port, "/healthz")[0] == 200
        t1 = time.monotonic()
        stack("redis-start")
        stopped = False
        wait_for(lambda: readyz(port)[0] == 200, 20, "/readyz 200 after redis-start")
        up_s = time.monotonic() - t1
    finally:
        if stopped:
            stack("redis-start")
    assert d.proc.poll() is None
    print(f"\n/readyz: 503 {down_s:.2f}s after redis-stop began, "
          f"200 again {up_s:.2f}s after redis-start began")


def test_debug_workers_shows_a_worker_busy_while_redis_is_paused(topics, redis_addr, redis_db,
                                                                  dispatchd_factory):
    seed(redis_addr, redis_db[0], 50, 50, available_pct=100)
    # A short Redis timeout, so idle pings blocked by the pause give up and a
    # worker takes the request while Redis is still paused.
    d, port = start_ready(dispatchd_factory, {"DISPATCHD_WORKERS": "2",
                                              "DISPATCHD_REDIS_TIMEOUT": "300ms"})
    status, hdrs, body = get(port, "/debug/workers")
    assert status == 200 and hdrs["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert [w["id"] for w in doc["workers"]] == [0, 1]
    assert all(w["state"] == "idle" and w["request_id"] is None for w in doc["workers"])
    assert doc["queue"]["capacity"] > 0 and doc["queue"]["depth"] == 0
    assert doc["consumer"]["joined"] is True and doc["redis_ok"] is True
    parts = {p["partition"]: p for p in doc["partitions"]}
    assert sorted(parts) == list(range(topics.partitions))
    for p in parts.values():
        assert p["assigned"] is True and p["paused"] is False
        for k in ("dispatched", "done", "committable", "committed", "pending", "epoch"):
            assert k in p

    prod = producer(topics.brokers)
    produce_now(prod, topics.requests, [request_record("warm-0", "p-00001", courier_id="c-0001")])
    wait_for(lambda: sum(end_offsets(topics.brokers, topics.results).values()) == 1, 30, "warm-up result")
    seen = None
    for attempt in range(1, 4):
        rid = f"paused-{attempt}"
        redis_db[1].execute_command("CLIENT", "PAUSE", "3000", "ALL")
        t0 = time.monotonic()
        produce_now(prod, topics.requests,
                    [request_record(rid, f"p-{attempt + 1:05d}", courier_id=f"c-{attempt + 1:04d}")])

        def busy():
            doc = json.loads(get(port, "/debug/workers")[2])
            for w in doc["workers"]:
                if w["request_id"] == rid and w["state"] in ("redis", "backoff"):
                    return w, doc
            return None
        try:
            seen = wait_for(busy, 3, f"a worker busy on {rid}", interval=0.02)
            seen_after = time.monotonic() - t0
            break
        except AssertionError:
            continue
    assert seen, "no worker seen busy on a request while Redis was paused"
    w, doc = seen
    assert isinstance(w["partition"], int) and isinstance(w["offset"], int) and w["for_ms"] >= 0
    assert w["batch"] == 1
    # The pause ends by itself; the request is answered, not before.
    paused_at = t0
    wait_for(lambda: sum(end_offsets(topics.brokers, topics.results).values()) >= 1 + attempt, 30,
             "the paused request's result")
    answered_after = time.monotonic() - paused_at
    assert answered_after > 2.0, f"answered {answered_after:.2f}s into a 3 s pause"
    print(f"\n/debug/workers: worker {w['id']} in state {w['state']} on {w['request_id']} "
          f"(partition {w['partition']}, offset {w['offset']}, {w['for_ms']} ms) "
          f"{seen_after:.2f}s after CLIENT PAUSE, attempt {attempt}; answered {answered_after:.2f}s "
          f"after the pause began")


class Slowloris(threading.Thread):
    """Holds a connection open by sending one header byte a second."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        self.stop = threading.Event()
        self.sent = 0

    def run(self):
        while not self.stop.wait(1.0):
            try:
                self.sock.sendall(b"a")
                self.sent += 1
            except OSError:
                return


def test_hostile_http_clients_do_not_stop_results(topics, redis_addr, redis_db, dispatchd_factory):
    seed(redis_addr, redis_db[0], 200, 200, available_pct=100)
    d, port = start_ready(dispatchd_factory)
    slow = Slowloris(port)
    slow.start()
    try:
        # Unknown path, wrong method, oversized header.
        status, _, body = get(port, "/nope")
        assert (status, body) == (404, "not found\n")
        status, hdrs, _ = get(port, "/metrics", method="POST", headers={"Content-Length": "0"})
        assert status == 405 and hdrs["Allow"] == "GET, HEAD"
        status, _, _ = get(port, "/readyz", method="DELETE")
        assert status == 405
        try:
            status = get(port, "/metrics", headers={"X-Pad": "a" * 200000})[0]
        except (ConnectionError, http.client.HTTPException):
            status = None  # reset before the 431 could be read
        assert status in (None, 413, 414, 431)
        # Results keep flowing while the slow connection is held.
        recs = [request_record(f"h-{i}", f"p-{i:05d}", courier_id=f"c-{i:04d}") for i in range(1, 51)]
        t0 = time.monotonic()
        produce_now(producer(topics.brokers, idempotent=False), topics.requests, recs)
        wait_for(lambda: sum(end_offsets(topics.brokers, topics.results).values()) == 50, 60, "50 results")
        took = time.monotonic() - t0
        wait_for(lambda: slow.sent >= 2, 10, "the slow client to dribble two bytes")
        t1 = time.monotonic()
        status, _, body = get(port, "/healthz")
        health_s = time.monotonic() - t1
        assert (status, body) == (200, "ok\n")
        assert slow.is_alive(), "the slow client was cut off early"
    finally:
        slow.stop.set()
        slow.join()
        slow.sock.close()
    assert d.proc.poll() is None
    print(f"\nhostile clients: 50 results in {took:.2f}s with a slowloris held "
          f"({slow.sent} bytes dribbled); /healthz meanwhile in {health_s * 1000:.0f} ms")


def test_readyz_and_log_name_a_redis_auth_failure(redis_addr, redis_db, dispatchd_factory):
    """A wrong password shows while idle: /readyz's reason carries Redis's
    AUTH error and a warning names the address (never the password); the
    workers keep retrying, so fixing the password makes dispatchd ready."""
    host, port = redis_addr
    db, r = redis_db
    user, good, bad = "dd-readyz-test", "right-pw-1", "wrong-pw-1"
    r.execute_command("ACL", "SETUSER", user, "reset", "on", ">" + good, "~*", "&*", "+@all")
    try:
        env = dict(HTTP_ENV)
        env["DISPATCHD_REDIS"] = f"redis://{user}:{bad}@{host}:{port}/{db}"
        d = dispatchd_factory(extra_env=env)
        http = http_port(d)
        t0 = time.monotonic()

        def auth_reason():
            status, body = readyz(http)
            return status == 503 and any(
                x.startswith("redis is not answering: redis AUTH: WRONGPASS")
                for x in body["reasons"])
        wait_for(auth_reason, 10, "/readyz 503 with the AUTH error")
        wait_for(lambda: any("WRONGPASS" in e["msg"] and f"{host}:{port}" in e["msg"]
                             for e in d.events("redis_unavailable")),
                 10, "a redis_unavailable warning naming the address")
        shown_s = time.monotonic() - t0
        assert bad not in d.log_text() and good not in d.log_text()
        assert bad not in json.dumps(readyz(http)[1])
        # Still retrying: once the password is right, dispatchd gets ready.
        r.execute_command("ACL", "SETUSER", user, ">" + bad)
        t1 = time.monotonic()
        wait_for(lambda: readyz(http)[0] == 200, 30, "/readyz 200 once the password is right")
        up_s = time.monotonic() - t1
        warns = [e for e in d.events("redis_unavailable") if "WRONGPASS" in e["msg"]]
        assert d.proc.poll() is None
    finally:
        r.execute_command("ACL", "DELUSER", user)
    print(f"\nwrong password: reason and warning within {shown_s:.2f}s of start, "
          f"{len(warns)} warning line(s); ready {up_s:.2f}s after the fix")
