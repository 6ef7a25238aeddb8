"""System tests of the pipeline against the real broker and redis-server:
dispatchd runs as a subprocess; the tests produce a known request mix and
check the result and dead-letter topics, Redis and the committed offsets."""
import json
import os
import random
import signal
import subprocess
import threading
import time

import jsonschema
import pytest

from conftest import (ROOT, committed_offsets, consume_to_end, end_offsets, produce,
                      seed, wait_for)
from mix import Expect, make_mix, mark_unavailable

COURIERS = 2000
PARCELS = 20000

with open(os.path.join(ROOT, "schemas", "assignment.schema.json")) as f:
    RESULT_SCHEMA = json.load(f)
VALIDATOR = jsonschema.Draft202012Validator(RESULT_SCHEMA)


def header(msg, name):
    for k, v in msg["headers"]:
        if k == name:
            return v
    return None


def prepare(redis_addr, redis_db, n, seed_no=7):
    seed(redis_addr, redis_db[0], COURIERS, PARCELS, available_pct=100)
    records, expect, unavailable = make_mix(n, COURIERS, PARCELS, seed=seed_no)
    mark_unavailable(redis_db[1], unavailable)
    return records, expect


def check(results, dlq, expect, clean):
    """Asserts the outcome of a run; returns (duplicates, counts)."""
    by_rid = {}
    for m in results:
        rid = json.loads(m["value"])["request_id"]
        by_rid.setdefault(rid, []).append(m)
    valid = {r for r, e in expect.items() if e["kind"] == Expect.RESULT}
    missing = valid - set(by_rid)
    assert not missing, f"{len(missing)} request(s) without a result, e.g. {sorted(missing)[:3]}"
    assert set(by_rid) <= valid, "results for requests that are not valid"
    dups = 0
    counts = {}
    assigned_courier = {}
    competing = {}
    for rid, msgs in by_rid.items():
        first = msgs[0]["value"]
        for m in msgs[1:]:
            assert m["value"] == first, f"duplicate of {rid} differs:\n{first}\n{m['value']}"
        dups += len(msgs) - 1
        res = json.loads(first)
        VALIDATOR.validate(res)
        e = expect[rid]
        assert res["status"] in e["status"], f"{rid}: {res['status']} not in {e['status']}"
        assert res.get("reason") in e["reason"], f"{rid}: reason {res.get('reason')}"
        assert msgs[0]["key"] == res["parcel_id"].encode()
        counts[res["status"]] = counts.get(res["status"], 0) + 1
        if res["status"] == "assigned":
            c = res["courier_id"]
            assert c not in assigned_courier, f"courier {c} assigned to {assigned_courier[c]} and {rid}"
            assigned_courier[c] = rid
        if "competing" in e:
            competing.setdefault(e["competing"], []).append(res["status"])
    for c, sts in competing.items():
        assert sorted(sts) == ["assigned", "rejected"], f"competing courier {c}: {sts}"
    if clean:
        assert dups == 0, f"{dups} duplicate result(s) in a clean run"
    # Dead letters: exactly the malformed inputs, each with its reason.
    dlq_expect = {r: e["reason"] for r, e in expect.items() if e["kind"] == Expect.DLQ}
    seen = {}
    for m in dlq:
        rid = header(m, "x-rid").decode()
        assert header(m, "dispatch.error.class").decode() == dlq_expect[rid]
        assert header(m, "x-case").decode() == dlq_expect[rid], "original headers kept"
        assert header(m, "dispatch.error"), "a human-readable reason"
        assert header(m, "dispatch.source.topic") is not None
        assert header(m, "dispatch.source.partition") is not None
        assert header(m, "dispatch.source.offset") is not None
        assert header(m, "dispatch.failed_at") is not None
        assert m["key"] == rid.encode(), "original key kept"
        seen[rid] = seen.get(rid, 0) + 1
    assert set(seen) == set(dlq_expect), f"DLQ {len(seen)} vs expected {len(dlq_expect)}"
    if clean:
        assert all(v == 1 for v in seen.values()), "duplicate dead letters in a clean run"
    counts["dead_letter"] = len(seen)
    return dups, counts


def produced(brokers, topic):
    """Records in a topic so far (sum of its end offsets)."""
    return sum(end_offsets(brokers, topic).values())


def wait_committed_to_end(topics):
    ends = end_offsets(topics.brokers, topics.requests)

    def done():
        c = committed_offsets(topics.brokers, topics.group, topics.requests, topics.partitions)
        return c == ends
    wait_for(done, 60, "committed offsets to reach the end offsets")
    return ends


def stop_and_read(d, topics):
    """Once every offset is committed: SIGTERM, expect exit 0, then read the
    result and dead-letter topics to their ends."""
    wait_committed_to_end(topics)
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    return consume_to_end(topics.brokers, topics.results), consume_to_end(topics.brokers, topics.dlq)


def n_expected(expect):
    return (sum(1 for e in expect.values() if e["kind"] == Expect.RESULT),
            sum(1 for e in expect.values() if e["kind"] == Expect.DLQ))


def test_mixed_requests_get_exactly_one_answer_each(topics, redis_addr, redis_db, dispatchd_factory):
    records, expect = prepare(redis_addr, redis_db, 20000)
    nres, ndlq = n_expected(expect)
    t0 = time.monotonic()
    d = dispatchd_factory()
    d.wait_assigned()
    assert produce(topics.brokers, topics.requests, records) == len(records)
    wait_for(lambda: produced(topics.brokers, topics.results) >= nres, 240, "every result")
    elapsed = time.monotonic() - t0
    ends = wait_committed_to_end(topics)
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    assert committed_offsets(topics.brokers, topics.group, topics.requests, topics.partitions) == ends
    results = consume_to_end(topics.brokers, topics.results)
    dlq = consume_to_end(topics.brokers, topics.dlq)
    dups, counts = check(results, dlq, expect, clean=True)
    # Every answered request has its ledger record in Redis.
    r = redis_db[1]
    ledger = sum(1 for _ in r.scan_iter("result:*", count=5000))
    assert ledger == nres
    print(f"\nmix: {len(records)} records, {nres} results {counts}, {ndlq} dead letters, "
          f"{dups} duplicates, {elapsed:.1f}s end to end")


def test_crash_then_restart_reprocesses_with_identical_bytes(topics, redis_addr, redis_db,
                                                               dispatchd_factory):
    records, expect = prepare(redis_addr, redis_db, 20000, seed_no=11)
    nres, ndlq = n_expected(expect)
    produce(topics.brokers, topics.requests, records)
    watcher = CommitWatcher(topics)
    watcher.start()
    d = dispatchd_factory(extra_env={"DISPATCHD_WORKERS": "4"})
    d.wait_assigned()
    # Kill at a random point while results flow.
    target = random.Random(os.getpid()).randint(nres // 10, nres // 2)
    wait_for(lambda: produced(topics.brokers, topics.results) >= target,
             120, f"{target} results before the kill", interval=0.1)
    d.kill()
    watcher.stop.set()
    watcher.join()
    # Nothing may be committed past the done prefix: every input offset
    # below a committed offset has its result or dead letter on the broker,
    # at the kill and at every moment the watcher sampled while it ran.
    committed = committed_offsets(topics.brokers, topics.group, topics.requests, topics.partitions)
    answered = {}
    for m in consume_to_end(topics.brokers, topics.results):
        src = json.loads(m["value"])["source"]
        k = (src["partition"], src["offset"])
        answered[k] = min(answered.get(k, m["ts"]), m["ts"])
    for m in consume_to_end(topics.brokers, topics.dlq):
        k = (int(header(m, "dispatch.source.partition")), int(header(m, "dispatch.source.offset")))
        answered[k] = min(answered.get(k, m["ts"]), m["ts"])
    assert len(watcher.samples) > 5
    assert check_commits_never_ahead(watcher.samples, answered) == 0
    input_offsets = consume_to_end(topics.brokers, topics.requests)
    beyond = [(m["partition"], m["offset"]) for m in input_offsets
              if m["offset"] < committed.get(m["partition"], -1)
              and (m["partition"], m["offset"]) not in answered]
    assert not beyond, f"{len(beyond)} committed offset(s) without an answer, e.g. {beyond[:3]}"
    d2 = dispatchd_factory(name="restarted")
    d2.wait_assigned()
    results, dlq = stop_and_read(d2, topics)
    dups, counts = check(results, dlq, expect, clean=False)
    print(f"\ncrash: {len(watcher.samples)} commit samples, none ahead of the answers; "
          f"killed after {target} results; committed at kill {committed}; "
          f"{nres} results {counts}, {dups} byte-identical duplicates")


class CommitWatcher(threading.Thread):
    """Samples the group's committed offsets while dispatchd runs."""

    def __init__(self, topics):
        super().__init__(daemon=True)
        self.topics = topics
        self.samples = []  # (wall time s, {partition: committed})
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            c = committed_offsets(self.topics.brokers, self.topics.group, self.topics.requests,
                                  self.topics.partitions)
            self.samples.append((time.time(), c))
            self.stop.wait(0.2)


def check_commits_never_ahead(samples, answers):
    """answers: {(partition, offset): earliest broker timestamp (s) of its
    result or dead letter}. A commit of C at time T is legal only if every
    input offset below C was answered before T."""
    violations = 0
    by_part = {}
    for (p, o), ts in answers.items():
        by_part.setdefault(p, []).append((o, ts))
    for p in by_part:
        by_part[p].sort()
    for t, committed in samples:
        for p, c in committed.items():
            for o, ts in by_part.get(p, []):
                if o >= c:
                    break
                if ts is None or ts > t + 0.5:  # 0.5 s: clock granularity and skew
                    violations += 1
    return violations


def test_sigterm_then_restart_gives_no_duplicates(topics, redis_addr, redis_db, dispatchd_factory):
    records, expect = prepare(redis_addr, redis_db, 10000, seed_no=13)
    nres, ndlq = n_expected(expect)
    produce(topics.brokers, topics.requests, records)
    d = dispatchd_factory()
    d.wait_assigned()
    wait_for(lambda: produced(topics.brokers, topics.results) >= nres // 3,
             120, "a third of the results", interval=0.1)
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    d2 = dispatchd_factory(name="restarted")
    d2.wait_assigned()
    results, dlq = stop_and_read(d2, topics)
    dups, counts = check(results, dlq, expect, clean=True)
    print(f"\nsigterm: {nres} results {counts}, {dups} duplicates")


def test_redis_outage_loses_nothing(topics, redis_addr, redis_db, dispatchd_factory):
    records, expect = prepare(redis_addr, redis_db, 10000, seed_no=17)
    nres, ndlq = n_expected(expect)
    produce(topics.brokers, topics.requests, records)
    d = dispatchd_factory(extra_env={"DISPATCHD_QUEUE_CAPACITY": "256"})
    d.wait_assigned()
    wait_for(lambda: produced(topics.brokers, topics.results) >= nres // 4, 120,
             "a quarter of the results", interval=0.1)
    subprocess.run([os.path.join(ROOT, "scripts", "stack"), "redis-stop"], check=True)
    try:
        # The outage lasts 10 s. Results stall (at most the batches already
        # answered still drain) and dispatchd stays up, retrying.
        stalled_at = produced(topics.brokers, topics.results)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            assert d.proc.poll() is None, "dispatchd exited during the Redis outage"
            time.sleep(0.5)  # observation interval of a fixed-length outage
        during = produced(topics.brokers, topics.results) - stalled_at
        assert during <= 4 * 32 * 2, f"{during} results appeared while Redis was down"
    finally:
        subprocess.run([os.path.join(ROOT, "scripts", "stack"), "redis-start"], check=True)
    assert d.events("redis_unavailable"), "the outage was noticed and logged"
    results, dlq = stop_and_read(d, topics)
    dups, counts = check(results, dlq, expect, clean=True)
    print(f"\nredis outage: 10 s down after {stalled_at} results, {during} more during it; "
          f"{nres} results {counts}, {dups} duplicates")
