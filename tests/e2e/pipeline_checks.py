# SPDX-License-Identifier: MIT
"""What the pipeline, group and replay system tests share: seeding Redis and
building a request mix (prepare), checking a run's results and dead letters
against the mix (check), and waiting until the group has committed every
request (wait_committed_to_end, stop_and_read)."""
import json
import os
import signal

import jsonschema

from conftest import ROOT, seed, wait_for
from kafka_io import committed_offsets, consume_to_end, end_offsets
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


def wait_committed_to_end(topics, timeout=60):
    """Waits until the group's committed offsets reach the input topic's end
    offsets (a partition without records has nothing to commit); returns the
    end offsets."""
    ends = end_offsets(topics.brokers, topics.requests)

    def done():
        got = committed_offsets(topics.brokers, topics.group, topics.requests,
                                topics.partitions)
        return all(got[p] == end for p, end in ends.items() if end > 0)
    wait_for(done, timeout, "committed offsets to reach the end offsets", interval=0.2)
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
