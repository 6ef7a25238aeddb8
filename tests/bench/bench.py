#!/usr/bin/env python3
"""Throughput benchmark (`make bench`): the same backlog of dispatch requests
answered by dispatchd with different settings, one after the other in one
run, against the local stack. Prints requests per second for each setting and
the ratios against the first one; it asserts nothing (machines are noisy:
compare ratios from one run, not absolute figures across runs).

Env: BENCH_REQUESTS (default 40000), BUILD (release)."""
import json
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from conftest import BIN, Topics, seed  # noqa: E402
from kafka_io import committed_offsets, end_offsets, produce  # noqa: E402
import redis as redislib  # noqa: E402

N = int(os.environ.get("BENCH_REQUESTS", "40000"))
COURIERS, PARCELS = 5000, 50000
SETTINGS = [
    ("batch 1, 4 workers", {"DISPATCHD_BATCH_SIZE": "1", "DISPATCHD_WORKERS": "4"}),
    ("batch 32, 4 workers", {"DISPATCHD_BATCH_SIZE": "32", "DISPATCHD_WORKERS": "4"}),
    ("batch 32, 1 worker", {"DISPATCHD_BATCH_SIZE": "32", "DISPATCHD_WORKERS": "1"}),
    ("batch 128, 2 workers", {"DISPATCHD_BATCH_SIZE": "128", "DISPATCHD_WORKERS": "2"}),
]


def main():
    brokers = os.environ["DISPATCHD_BROKERS"]
    host, port = os.environ["DISPATCHD_REDIS_HOST"], int(os.environ["DISPATCHD_REDIS_PORT"])
    topics = Topics(brokers, "bench", 6)
    rnd = random.Random(1)
    records = []
    for i in range(N):
        req = {"request_id": f"b-{i:07d}", "parcel_id": f"p-{rnd.randint(1, PARCELS):05d}",
               "candidates": [f"c-{rnd.randint(1, COURIERS):04d}" for _ in range(3)]}
        records.append((req["parcel_id"].encode(), json.dumps(req).encode(), None))
    produce(brokers, topics.requests, records)
    ends = end_offsets(brokers, topics.requests)
    print(f"bench: {N} requests (3 candidates each) on {topics.partitions} partitions; "
          f"{COURIERS} couriers, {PARCELS} parcels; dispatchd {BIN}")
    rates = []
    for i, (name, env_extra) in enumerate(SETTINGS):
        db = 20 + i
        r = redislib.Redis(host=host, port=port, db=db)
        r.flushdb()
        # Every courier available and a long reservation: each setting does the
        # same work (a fresh database, so no answer comes from the ledger).
        seed((host, port), db, COURIERS, PARCELS, available_pct=100)
        group = f"{topics.group}.{i}"
        env = dict(os.environ, DISPATCHD_TOPIC=topics.requests, DISPATCHD_RESULT_TOPIC=topics.results,
                   DISPATCHD_DLQ_TOPIC=topics.dlq, DISPATCHD_GROUP=group, DISPATCHD_HTTP="0",
                   DISPATCHD_LOG_LEVEL="warn", DISPATCHD_QUEUE_CAPACITY="4096",
                   DISPATCHD_REDIS=f"redis://{host}:{port}/{db}", **env_extra)
        t0 = time.monotonic()
        p = subprocess.Popen([BIN], env=env, stderr=subprocess.DEVNULL)
        try:
            deadline = t0 + 600
            while committed_offsets(brokers, group, topics.requests, topics.partitions) != ends:
                if time.monotonic() > deadline or p.poll() is not None:
                    sys.exit(f"bench: {name}: did not finish")
                time.sleep(0.2)
            elapsed = time.monotonic() - t0
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(60)
        rates.append(N / elapsed)
        print(f"  {name:<22} {elapsed:7.2f} s  {N / elapsed:9.0f} req/s  "
              f"x{rates[-1] / rates[0]:.2f} vs {SETTINGS[0][0]}")
        r.flushdb()
    print("bench: figures include group join and commit latency (about 1-3 s per run)")


if __name__ == "__main__":
    main()
