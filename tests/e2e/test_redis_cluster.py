# SPDX-License-Identifier: MIT
"""System test of dispatchd on a Redis Cluster (--redis-cluster): a cluster
of three masters of its own (tests/integration/redis-cluster, ports from
DD_TEST_CLUSTER_PORT, default 17101..17103) next to the stack's Kafka. The
request mix of the pipeline tests is seeded into the cluster, dispatchd
answers it through the cluster, and every answer, dead letter and ledger
record must be what a single Redis server gives. It needs every command of
the store to name a single key (reservations and records without a script):
a cluster refuses a script over keys of several slots (CROSSSLOT)."""
import os
import signal
import subprocess
import time

import pytest
import redis as redislib
from redis.cluster import ClusterNode, RedisCluster

from conftest import ROOT, redis_snapshot, seed, wait_for
from kafka_io import committed_offsets, consume_to_end, produce
from pipeline_checks import check, n_expected, prepare, produced, wait_committed_to_end

CTL = os.path.join(ROOT, "tests", "integration", "redis-cluster")
BASE = int(os.environ.get("DD_TEST_CLUSTER_PORT", "17101"))
PORTS = [BASE, BASE + 1, BASE + 2]


@pytest.fixture
def cluster(tmp_path):
    env = dict(os.environ, DD_TEST_CLUSTER_DIR=str(tmp_path / "redis-cluster"),
               DD_TEST_CLUSTER_PORT=str(BASE))
    try:
        subprocess.run([CTL, "up"], env=env, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as e:
        subprocess.run([CTL, "down"], env=env, capture_output=True)
        pytest.fail(f"redis cluster: {e.stderr}")
    rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in PORTS])
    yield rc
    rc.close()
    subprocess.run([CTL, "down"], env=env, capture_output=True)


def copy_to_cluster(src, rc):
    """Every key of the seeded single-server database, into the cluster."""
    pipe = rc.pipeline()
    for k, (t, v) in redis_snapshot(src).items():
        if t == b"hash":
            pipe.hset(k, mapping=v)
        else:
            pipe.set(k, v)
    pipe.execute()


def test_mix_answered_through_a_redis_cluster(topics, redis_addr, redis_db, dispatchd_factory,
                                              cluster):
    records, expect = prepare(redis_addr, redis_db, 5000, seed_no=23)
    copy_to_cluster(redis_db[1], cluster)
    redis_db[1].flushdb()  # dispatchd must not read the single server
    nres, ndlq = n_expected(expect)
    seeds = ",".join(f"127.0.0.1:{p}" for p in PORTS)
    t0 = time.monotonic()
    d = dispatchd_factory(extra_env={"DISPATCHD_REDIS": "",
                                     "DISPATCHD_REDIS_CLUSTER": f"redis://{seeds}"})
    d.wait_assigned()
    maps = d.events("redis_cluster_slots")
    assert maps and "3 masters, 16384 of 16384 slots served" in maps[0]["msg"]
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
    # The ledger records are in the cluster, spread over every master, and
    # nothing was written to the single server.
    per_master = []
    for p in PORTS:
        node = redislib.Redis(host="127.0.0.1", port=p)
        per_master.append(sum(1 for _ in node.scan_iter("result:*", count=5000)))
        node.close()
    assert sum(per_master) == nres
    assert all(n > 0 for n in per_master), per_master
    assert redis_db[1].dbsize() == 0
    print(f"\ncluster mix: {len(records)} records, {nres} results {counts}, {ndlq} dead letters, "
          f"{dups} duplicates, ledger per master {per_master}, {elapsed:.1f}s end to end")


def test_flushed_cluster_master_is_a_lost_state(topics, redis_addr, redis_db, dispatchd_factory,
                                                 cluster):
    """One lost-state marker per master: FLUSHALL on a master other than the
    one of the single-server marker key is reported (/readyz 503, metric,
    log) and holds the next request until the ack, which writes every
    master's marker back."""
    from test_redis_state import HTTP_ENV, LOST_REASON, answers, call, lost_total, readyz
    from test_redis_state import request, wait_answer
    from http_probe import http_port

    db, r = redis_db
    seed(redis_addr, db, couriers=20, parcels=20, available_pct=100)
    copy_to_cluster(r, cluster)
    seeds = ",".join(f"127.0.0.1:{p}" for p in PORTS)
    d = dispatchd_factory(extra_env=dict(HTTP_ENV, DISPATCHD_REDIS="",
                                         DISPATCHD_REDIS_CLUSTER=f"redis://{seeds}"))
    port = http_port(d)
    d.wait_assigned()
    produce(topics.brokers, topics.requests, [request("r-1", "p-00001", "c-0001")])
    first = wait_answer(topics.brokers, topics.results, "r-1")
    assert first[0]["status"] == "assigned"
    # One marker per master, all holding the same id.
    nodes = {p: redislib.Redis(host="127.0.0.1", port=p) for p in PORTS}
    markers = {p: list(n.scan_iter("dispatchd:store_id:*")) for p, n in nodes.items()}
    assert all(len(m) == 1 for m in markers.values()), markers
    ids = {nodes[p].get(m[0]) for p, m in markers.items()}
    assert len(ids) == 1 and len(next(iter(ids))) == 32, ids
    assert readyz(port)[0] == 200

    # A master other than the one the single-server key would live on.
    home = cluster.get_node_from_key("dispatchd:store_id").port
    victim = next(p for p in PORTS if p != home)
    nodes[victim].flushall()
    copy_to_cluster(r, cluster)  # the fleet only, loaded again
    produce(topics.brokers, topics.requests, [request("r-2", "p-00002", "c-0001")])

    def lost_reported():
        status, reasons = readyz(port)
        return status == 503 and any(LOST_REASON in x for x in reasons)
    wait_for(lambda: lost_reported() or "r-2" in answers(topics.brokers, topics.results),
             30, "/readyz 503 with the lost-state reason, or an answer to r-2")
    assert "r-2" not in answers(topics.brokers, topics.results)
    assert lost_total(port) == 1
    errors = [e for e in d.events("redis_state_lost") if e.get("level") == "error"]
    assert errors and f":{victim}" in errors[0]["msg"], errors
    print(f"\nFLUSHALL on {victim}: {errors[0]['msg']}")

    status, _ = call(port, "/admin/redis-state-lost/ack", method="POST")
    assert status == 202
    assert len(wait_answer(topics.brokers, topics.results, "r-2")) == 1
    wait_for(lambda: readyz(port)[0] == 200, 30, "/readyz 200 after the ack")
    markers = {p: list(n.scan_iter("dispatchd:store_id:*")) for p, n in nodes.items()}
    assert all(len(m) == 1 for m in markers.values()), markers
    assert {nodes[p].get(m[0]) for p, m in markers.items()} == ids
    for n in nodes.values():
        n.close()
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
