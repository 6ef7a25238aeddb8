#!/usr/bin/env python3
"""Runs dispatchd on sample requests and prints what it answered. Called by
scripts/demo with the stack's addresses in the environment."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from kafka_io import commit_offsets, end_offsets, produce, read_from  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROKERS = os.environ["DISPATCHD_BROKERS"]
REQ, RES, DLQ = "dispatch.requests", "dispatch.assignments", "dispatch.requests.dlq"


def sample_requests(run):
    reqs = []
    for i in range(12):
        cands = [f"c-{(i * 3 + k) % 40 + 1:04d}" for k in range(3)]
        reqs.append({"request_id": f"demo-{run}-{i:02d}", "parcel_id": f"p-{i + 1:05d}",
                     "candidates": cands})
    reqs.append({"request_id": f"demo-{run}-12", "parcel_id": "p-00013", "courier_id": "c-0039"})
    reqs.append({"request_id": f"demo-{run}-13", "parcel_id": "p-00014", "courier_id": "c-9999"})
    reqs.append({"request_id": f"demo-{run}-14", "parcel_id": "p-99999", "courier_id": "c-0001"})
    reqs.append({"request_id": f"demo-{run}-15", "parcel_id": "p-00015", "courier_id": "c-0002",
                 "deadline_ms": 1})
    bodies = [json.dumps(r).encode() for r in reqs]
    bodies.append(b'{"request_id": "demo-broken", ')            # not JSON
    bodies.append(json.dumps({"request_id": "demo-x", "parcel_id": "p 1"}).encode())  # bad id
    return bodies


def main():
    run = time.strftime("%H%M%S")
    group = f"dispatch-demo-{run}"
    res_start, dlq_start, req_start = (end_offsets(BROKERS, t) for t in (RES, DLQ, REQ))
    # A fresh group that starts at today's end of the request topic: commit
    # those offsets for it before dispatchd joins, so earlier runs' requests
    # are not answered again.
    commit_offsets(BROKERS, group, REQ, req_start)
    log = tempfile.NamedTemporaryFile(prefix="dispatchd-demo-", suffix=".log", delete=False)
    env = dict(os.environ, DISPATCHD_GROUP=group, DISPATCHD_HTTP="0",
               DISPATCHD_LOG_FORMAT="text")
    proc = subprocess.Popen([os.path.join(ROOT, "build/release/dispatchd")],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "rebalance_assign" not in open(log.name).read():
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"dispatchd did not join the group; see {log.name}")
            time.sleep(0.1)
        bodies = sample_requests(run)
        records = []
        for b in bodies:
            try:
                key = json.loads(b).get("parcel_id", "demo").encode()
            except ValueError:
                key = b"demo"
            records.append((key, b, None))
        produce(BROKERS, REQ, records)
        print(f"\nproduced {len(bodies)} requests to {REQ}; dispatchd answered:\n")
        results = read_from(BROKERS, RES, res_start, len(bodies) - 2, 60)
        dead = read_from(BROKERS, DLQ, dlq_start, 2, 30)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
    rows = sorted((json.loads(m.value()) for m in results), key=lambda r: r["request_id"])
    print(f"{'request':<16} {'status':<9} {'courier':<8} {'pickup':>7} {'total':>7} "
          f"{'km':>6}  reason")
    for r in rows:
        km = f"{r['distance_m'] / 1000:.1f}" if "distance_m" in r else ""
        pick = f"{r['pickup_eta_seconds'] // 60}m" if "pickup_eta_seconds" in r else ""
        tot = f"{r['eta_seconds'] // 60}m" if "eta_seconds" in r else ""
        print(f"{r['request_id']:<16} {r['status']:<9} {r.get('courier_id', ''):<8} {pick:>7} "
              f"{tot:>7} {km:>6}  {r.get('reason', '')}")
    print(f"\ndead letters in {DLQ}:")
    for m in dead:
        h = dict(m.headers() or [])
        print(f"  {m.value()[:40]!r}: {h.get('dispatch.error', b'').decode()}")
    print(f"\n{len(rows)} results, {len(dead)} dead letters; dispatchd exited {rc} "
          f"after SIGTERM (log: {log.name})")
    if len(rows) != len(bodies) - 2 or len(dead) != 2 or rc != 0:
        sys.exit("demo: not every request was answered")


if __name__ == "__main__":
    main()
