# SPDX-License-Identifier: MIT
"""System tests of the input partition's fetch position moving backwards and
of the bound on what the tracker keeps behind an unfinished offset, against
the real broker and Redis (one input partition each).

Rewinds. The input topic is deleted and re-created while dispatchd runs:
librdkafka 2.0.2 does not rebalance, its fetch position on the new, empty
topic is out of range and resets to 0 (auto.offset.reset=earliest). Every
request of the new topic must be answered and the committed offset must be
its end, both when the new topic grows past the old position (25 records
after 20) and when it stays below it (5 after 20). Before the fix the
tracker refused every offset up to the old position: 20 of the 25, and all
5, were never answered. A DeleteRecords cannot produce a rewind (it only
moves the log start forward: a position below it jumps forward, which is
normal), so the second member here is the short re-created topic.

Window. --max-partition-window 8 with Redis paused (CLIENT PAUSE): no
request can be answered, so the window grows with every dispatched offset;
the partition must be paused at 8 (partition_window_full, /debug/workers
paused_by_window, the partitions_window_paused gauge) instead of the tracker
growing with every record, and once Redis answers again everything is
answered, committed to the end, and the partition resumed."""
import http.client
import json
import re
import signal

import pytest
import redis as redislib
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import MULT, Topics, wait_for
from http_probe import http_port
from kafka_io import committed_offsets, consume_to_end, end_offsets, produce


@pytest.fixture
def topics(brokers, request):
    """One input partition, so offsets tell the whole story."""
    return Topics(brokers, re.sub(r"[^A-Za-z0-9._-]", "_", request.node.name)[:40], 1)


def requests(prefix, n):
    """n requests for a courier and parcel Redis does not know: each is
    answered with a rejection, which is all these tests need."""
    return [(f"p-{i}".encode(),
             json.dumps({"request_id": f"{prefix}-{i}", "parcel_id": f"p-{i:05d}",
                         "courier_id": "c-0001"}).encode(), None)
            for i in range(n)]


def answered(brokers, topic):
    return {json.loads(m["value"])["request_id"] for m in consume_to_end(brokers, topic)}


def offset_reset_logged(d):
    for line in d.log_text().splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if obj.get("module") == "rdkafka" and "offset reset" in obj.get("msg", ""):
            return True
    return False


def committed(topics):
    return committed_offsets(topics.brokers, topics.group, topics.requests, 1)[0]


def recreate(topics):
    """Delete the input topic and create it again with one partition at
    once (retried while the broker still deletes it), then wait for its
    leader. Done quickly, dispatchd's consumer never sees the topic missing
    from its metadata, so no rebalance happens: its fetch position stays,
    and is out of range on the new, empty partition."""
    admin = AdminClient({"bootstrap.servers": topics.brokers})
    admin.delete_topics([topics.requests])[topics.requests].result(timeout=30)

    def create():
        fut = admin.create_topics([NewTopic(topics.requests, 1, 1)])[topics.requests]
        try:
            fut.result(timeout=30)
            return True
        except Exception:  # still being deleted: TOPIC_ALREADY_EXISTS
            return False
    wait_for(create, 30, "the input topic to be created again", interval=0.02)

    def ready():
        tm = admin.list_topics(timeout=5).topics.get(topics.requests)
        return tm is not None and tm.error is None and tm.partitions and \
            all(p.leader >= 0 for p in tm.partitions.values())
    wait_for(ready, 30, "the new input topic's leader")


@pytest.mark.parametrize("new_count", [25, 5])
def test_rewind_topic_recreated(topics, dispatchd_factory, new_count):
    d = dispatchd_factory()
    d.wait_assigned()
    produce(topics.brokers, topics.requests, requests("old", 20))
    wait_for(lambda: committed(topics) == 20, 60, "the first 20 offsets to be committed")

    recreate(topics)
    # The fetch position (20) is out of range on the empty new topic and
    # resets to 0 before the new records arrive: wait for librdkafka's
    # "offset reset" log line (OFFSET facility, info level).
    wait_for(lambda: offset_reset_logged(d), 60, "the fetch position to reset on the new topic")
    produce(topics.brokers, topics.requests, requests("new", new_count))
    want = {f"new-{i}" for i in range(new_count)}
    wait_for(lambda: want <= answered(topics.brokers, topics.results), 60,
             f"every one of the {new_count} requests of the new topic to be answered")
    assert end_offsets(topics.brokers, topics.requests) == {0: new_count}
    wait_for(lambda: committed(topics) == new_count, 60,
             f"the committed offset to be the new end ({new_count})")
    rewound = d.events("partition_rewound")
    assigns = len(d.events("rebalance_assign"))
    if assigns == 1:
        # No rebalance: the position moved backwards within the assignment.
        assert rewound, "a partition_rewound warning"
        assert rewound[0]["level"] == "warn" and rewound[0]["partition"] == 0
        assert rewound[0]["offset"] == 0 and "from 20 to 0" in rewound[0]["msg"]
    else:
        # The consumer saw the topic missing and rebalanced: a new
        # assignment starts from scratch, and the outcome must be the same.
        print(f"note: {assigns} assignments (the consumer saw the topic missing)")
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    assert committed(topics) == new_count
    print(f"records old=20 new={new_count} answered(new)={len(want)} "
          f"committed={committed(topics)} end={new_count} rewinds={len(rewound)} "
          f"assignments={assigns}")


def http_get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10 * MULT)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def gauge(port, name):
    status, body = http_get(port, "/metrics")
    assert status == 200
    for line in body.splitlines():
        if line.startswith(f"dispatchd_{name} "):
            return float(line.split()[1])
    raise AssertionError(f"no dispatchd_{name} in /metrics:\n{body}")


def test_rewind_window_pauses_behind_unfinished_offsets(topics, dispatchd_factory, redis_addr):
    window, n, pause_ms = 8, 100, 8000
    d = dispatchd_factory(extra_args=["--max-partition-window", str(window)],
                          extra_env={"DISPATCHD_HTTP": "127.0.0.1:0"})
    port = http_port(d)
    d.wait_assigned()
    # Redis holds every answer: nothing dispatched can finish, so each
    # dispatched offset stays in the window until Redis answers again.
    pauser = redislib.Redis(host=redis_addr[0], port=redis_addr[1])
    pauser.execute_command("CLIENT", "PAUSE", pause_ms, "ALL")
    produce(topics.brokers, topics.requests, requests("w", n))
    wait_for(lambda: d.events("partition_window_full"), pause_ms / 1000 / MULT,
             "the partition to be paused by its window while Redis is paused")
    status, body = http_get(port, "/debug/workers")
    assert status == 200
    part = json.loads(body)["partitions"][0]
    assert part["paused_by_window"] is True and part["paused"] is True, part
    assert part["window"] == window and part["dispatched"] == window, part
    assert gauge(port, "partitions_window_paused") == 1, http_get(port, "/metrics")[1]
    # Redis answers again: everything is answered and committed, and the
    # partition was resumed on the way.
    want = {f"w-{i}" for i in range(n)}
    wait_for(lambda: want <= answered(topics.brokers, topics.results), 90,
             f"all {n} requests to be answered")
    wait_for(lambda: committed(topics) == n, 60, f"the committed offset to reach {n}")
    drained = d.events("partition_window_drained")
    assert drained, "a partition_window_drained event"
    assert gauge(port, "partitions_window_paused") == 0
    full = d.events("partition_window_full")
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    print(f"records={n} window={window} paused_at(dispatched)={part['dispatched']} "
          f"window_full={len(full)} drained={len(drained)} committed={committed(topics)} end={n}")
