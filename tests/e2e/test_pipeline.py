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

from conftest import ROOT, wait_for
from kafka_io import committed_offsets, consume_to_end, produce
from pipeline_checks import (check, header, n_expected, prepare, produced, stop_and_read,
                             wait_committed_to_end)


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
    # One worker taking 4 jobs at a time: slow enough that the kill lands
    # while results flow and after commits were made (they are made every
    # second), whatever the speed of the defaults; a drain at the defaults
    # can end before the first commit, and the check below would be empty.
    d = dispatchd_factory(extra_env={"DISPATCHD_WORKERS": "1", "DISPATCHD_BATCH_SIZE": "4"})
    d.wait_assigned()
    # Kill at a random point while results flow, once a commit was sampled.
    target = random.Random(os.getpid()).randint(nres // 10, nres // 2)

    def commit_sampled():
        return any(c >= 0 for _, s in list(watcher.samples) for c in s.values())

    wait_for(lambda: produced(topics.brokers, topics.results) >= target and commit_sampled(),
             120, f"{target} results and a sampled commit before the kill", interval=0.1)
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
    assert commit_sampled()
    assert produced(topics.brokers, topics.results) < nres, "the kill came after the last result"
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
