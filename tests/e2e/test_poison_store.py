# SPDX-License-Identifier: MIT
"""System tests of Redis data errors (issue 8 section 1, issue 9 section 2):
a key of the wrong type (a hash where result:{rid} should be a string, a
list where reservation:{c} should be, a string courier hash, a list parcel
hash) is a permanent error of the request that reads it. That request is
dead-lettered with class store_data_error; every other request of its batch
and its partition is answered; the committed offset reaches the end; /readyz
stays 200 because Redis answers; SIGTERM exits 0 at once. Real broker, real
Redis; every wait is for a condition with a deadline."""
import json
import signal
import threading
import time

from conftest import Topics, seed, wait_for
from http_probe import HTTP_ENV, http_port, metrics, readyz, samples
from kafka_io import consume_to_end, produce
from pipeline_checks import header, wait_committed_to_end

COURIERS = 400
PARCELS = 2000
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def req_record(rid, parcel, courier):
    body = {"request_id": rid, "parcel_id": parcel, "courier_id": courier}
    return (parcel.encode(), json.dumps(body, separators=(",", ":")).encode(), None)


def good_requests(n, tag, start=0):
    """n valid requests for seeded parcels and couriers (any outcome)."""
    out = []
    for i in range(start, start + n):
        out.append(req_record(f"r-{tag}-{i:05d}", f"p-{i % PARCELS + 1:05d}",
                           f"c-{i % COURIERS + 1:04d}"))
    return out


class ReadyzSampler(threading.Thread):
    """Polls /readyz every 0.1 s until stopped; keeps every status code."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.codes = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            status, body = readyz(self.port)
            self.codes.append((status, body))
            self.stop.wait(0.1)


def run_and_check(topics, d, records, poisoned):
    """Waits for the commit to reach the end offsets with /readyz sampled,
    SIGTERMs d and checks that every request was answered exactly once:
    a result, or (for the poisoned ones) a store_data_error dead letter
    naming its key. Returns the figures."""
    port = http_port(d)
    wait_for(lambda: readyz(port)[0] == 200, 60, "/readyz 200")
    sampler = ReadyzSampler(port)
    sampler.start()
    try:
        t0 = time.monotonic()
        ends = wait_committed_to_end(topics)
        run_s = time.monotonic() - t0
    finally:
        sampler.stop.set()
        sampler.join()
    m = samples(metrics(port))
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    rc = d.wait(timeout=30)
    exit_s = time.monotonic() - t0
    assert rc == 0, f"exit status {rc}"
    assert exit_s < 10, f"SIGTERM took {exit_s:.1f} s"

    bad = [(s, b) for s, b in sampler.codes if s != 200]
    assert not bad, f"/readyz was not 200 {len(bad)} time(s), e.g. {bad[:2]}"

    results = consume_to_end(topics.brokers, topics.results)
    dlq = consume_to_end(topics.brokers, topics.dlq)
    answered = {}
    for msg in results:
        rid = json.loads(msg["value"])["request_id"]
        answered.setdefault(rid, []).append("result")
    by_class = {}
    for msg in dlq:
        rid = json.loads(msg["value"])["request_id"]
        cls = header(msg, "dispatch.error.class").decode()
        by_class[cls] = by_class.get(cls, 0) + 1
        answered.setdefault(rid, []).append(cls)
        assert cls == "store_data_error", f"{rid}: dead letter of class {cls}"
        text = header(msg, "dispatch.error").decode()
        assert poisoned.get(rid) in text and WRONGTYPE in text, f"{rid}: {text}"
    want = {json.loads(v)["request_id"] for _, v, _ in records}
    assert set(answered) == want, f"unanswered: {sorted(want - set(answered))[:5]}"
    twice = {r: a for r, a in answered.items() if len(a) != 1}
    assert not twice, f"answered more than once: {list(twice.items())[:3]}"
    for rid in poisoned:
        assert answered[rid] == ["store_data_error"], f"{rid}: {answered[rid]}"
    assert m['dispatchd_dlq_total{reason="store_data_error"}'] == len(poisoned)
    lines = d.events("store_data_error")
    assert len(lines) == len(poisoned), f"{len(lines)} store_data_error log lines"
    assert all("offset" in ln and "partition" in ln for ln in lines)
    codes = sorted({s for s, _ in sampler.codes})
    return {"records": len(records), "results": len(results), "dead_letters": by_class,
            "committed": ends, "readyz": f"{len(sampler.codes)} samples, codes {codes}",
            "run_s": round(run_s, 1), "exit_s": round(exit_s, 2)}


def test_wrong_type_keys_dead_letter_only_their_requests(brokers, redis_addr, redis_db,
                                                         dispatchd_factory, request):
    topics = Topics(brokers, request.node.name[:30], 1)
    seed(redis_addr, redis_db[0], COURIERS, PARCELS, available_pct=100)
    r = redis_db[1]
    # The four kinds of wrong-type key, each read by one request.
    r.hset("result:r-poison", "x", "1")
    r.hset("courier:c-1", mapping={"lat": "52.52", "lon": "13.41", "vehicle": "car",
                                   "status": "available"})
    r.rpush("reservation:c-1", "x")
    r.set("courier:c-9", "x")
    r.lpush("parcel:p-9", "x")
    poisoned = {"r-poison": "result:r-poison", "r-res-c1": "reservation:c-1",
                "r-courier-c9": "courier:c-9", "r-parcel-p9": "parcel:p-9"}
    poison_recs = [req_record("r-poison", "p-00001", "c-0002"),
                   req_record("r-res-c1", "p-00002", "c-1"),
                   req_record("r-courier-c9", "p-00003", "c-9"),
                   req_record("r-parcel-p9", "p-9", "c-0003")]
    records = []
    good = good_requests(400, "g", start=10)
    for i, rec in enumerate(good):  # a poisoned one every 100 records
        records.append(rec)
        if i % 100 == 50:
            records.append(poison_recs[i // 100])
    produce(topics.brokers, topics.requests, records)
    d = dispatchd_factory(extra_env=dict(HTTP_ENV, DISPATCHD_TOPIC=topics.requests,
                                         DISPATCHD_RESULT_TOPIC=topics.results,
                                         DISPATCHD_DLQ_TOPIC=topics.dlq,
                                         DISPATCHD_GROUP=topics.group))
    figures = run_and_check(topics, d, records, poisoned)
    print(f"\nwrong-type keys, 1 partition, default batch size: {figures}")


def test_four_poisoned_requests_do_not_stop_four_workers(brokers, redis_addr, redis_db,
                                                         dispatchd_factory, request):
    topics = Topics(brokers, request.node.name[:30], 4)
    seed(redis_addr, redis_db[0], COURIERS, PARCELS, available_pct=100)
    r = redis_db[1]
    poisoned = {}
    for k in range(4):
        r.hset(f"result:r-poison-{k}", "x", "1")
        poisoned[f"r-poison-{k}"] = f"result:r-poison-{k}"
    records = []
    good = good_requests(400, "w", start=20)
    for i, rec in enumerate(good):
        records.append(rec)
        if i % 100 == 0:  # one early in each quarter
            k = i // 100
            records.append(req_record(f"r-poison-{k}", f"p-{k + 1:05d}", f"c-{k + 1:04d}"))
    produce(topics.brokers, topics.requests, records)
    d = dispatchd_factory(["--workers", "4"],
                          extra_env=dict(HTTP_ENV, DISPATCHD_TOPIC=topics.requests,
                                         DISPATCHD_RESULT_TOPIC=topics.results,
                                         DISPATCHD_DLQ_TOPIC=topics.dlq,
                                         DISPATCHD_GROUP=topics.group))
    figures = run_and_check(topics, d, records, poisoned)
    print(f"\nfour poisoned requests, 4 workers, 4 partitions: {figures}")
