# SPDX-License-Identifier: MIT
"""Fixtures of the cluster system tests (make test-cluster): dispatchd as real
subprocesses against the cluster stack of scripts/stack - three Kafka
brokers (topics at replication factor 3, min.insync.replicas=2) and a Redis
Cluster, or one plain redis-server when DISPATCHD_STACK_REDIS=single. The
helpers of tests/e2e (kafka_io, pipeline_checks, mix, http_probe) are
reused as they are: this file loads tests/e2e/conftest.py and re-exports
what they import from `conftest`. Every test gets its own topics and
consumer group; Redis is emptied and seeded again for each test (a Redis
Cluster has database 0 only). Every test starts on a whole, healthy stack."""
import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import redis as redislib
from confluent_kafka.admin import AdminClient, NewTopic

E2E = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e")
sys.path.insert(0, E2E)
_spec = importlib.util.spec_from_file_location("e2e_conftest", os.path.join(E2E, "conftest.py"))
e2e_conftest = importlib.util.module_from_spec(_spec)
sys.modules["e2e_conftest"] = e2e_conftest
_spec.loader.exec_module(e2e_conftest)

# What the e2e helpers import from `conftest` (this module when the cluster
# tests run).
from e2e_conftest import (BIN, MULT, ROOT, SEED_BIN, Dispatchd, current_partitions,  # noqa: E402,F401
                          ownership, ownership_overlaps, seed, wait_for)

import cluster_stack as cs  # noqa: E402
from kafka_io import producer, produce_one  # noqa: E402
from mix import make_mix, mark_unavailable  # noqa: E402
from pipeline_checks import COURIERS, PARCELS  # noqa: E402

PARTITIONS = 6


def pytest_collection_modifyitems(config, items):
    if not cs.is_cluster():
        skip = pytest.mark.skip(reason="not a cluster stack (DISPATCHD_STACK_MODE=cluster)")
        if os.environ.get("DD_TEST_REQUIRE_SERVICES") == "1":
            raise pytest.UsageError("the cluster tests need DISPATCHD_STACK_MODE=cluster "
                                    "(make test-cluster)")
        for it in items:
            it.add_marker(skip)


@pytest.fixture(scope="session")
def brokers():
    return cs.env("DISPATCHD_BROKERS")


@pytest.fixture(autouse=True)
def whole_stack(brokers):
    """Every broker and Redis node of the stack runs (an earlier test's
    victim is started again), every ISR is full and the Redis Cluster is
    healthy, before the test starts."""
    for n in cs.kafka_nodes():
        pid = cs.read_pid(cs.kafka_pid_file(n))
        if not (pid and cs.pid_alive(pid)):
            cs.stack("kafka-start", str(n))
    if cs.redis_is_cluster():
        for n in cs.redis_nodes():
            pid = cs.read_pid(cs.redis_pid_file(n))
            if not (pid and cs.pid_alive(pid)):
                cs.stack("redis-start", str(n))
        cs.wait_cluster_healthy()
    cs.wait_isr_full(brokers)
    yield


class ClusterTopics:
    """A test's own input, result and dead-letter topics (replication
    factor 3, min.insync.replicas=2) and consumer group."""

    def __init__(self, brokers, name, partitions=PARTITIONS):
        tag = f"dd_cluster_{os.getpid()}_{int(time.time() * 1000) % 100000000}_{name}"
        self.requests, self.results, self.dlq = tag + ".requests", tag + ".results", tag + ".dlq"
        self.group = tag + ".group"
        self.partitions, self.brokers = partitions, brokers
        admin = AdminClient({"bootstrap.servers": brokers})
        cfg = {"min.insync.replicas": "2"}
        futs = admin.create_topics([NewTopic(self.requests, partitions, 3, config=cfg),
                                    NewTopic(self.results, partitions, 3, config=cfg),
                                    NewTopic(self.dlq, 1, 3, config=cfg)])
        for f in futs.values():
            f.result(timeout=30)
        cs.wait_isr_full(brokers, 30, topics={self.requests, self.results, self.dlq})


@pytest.fixture
def topics(brokers, request):
    return ClusterTopics(brokers, request.node.name.replace("[", "_").replace("]", "")[:40])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def seeded_dump(tmp_path_factory):
    """The keys dispatchd-seed writes (the seed every test uses), as DUMP
    payloads: seeded once into a scratch redis-server, then restored into
    the Redis Cluster for each test (dispatchd-seed speaks to one node)."""
    if not cs.redis_is_cluster():
        return None
    port = _free_port()
    d = tmp_path_factory.mktemp("seed-redis")
    srv = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                            "--save", "", "--appendonly", "no", "--dir", str(d)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r = redislib.Redis(host="127.0.0.1", port=port)

        def up():
            try:
                return r.ping()
            except redislib.exceptions.ConnectionError:
                return False
        wait_for(up, 10, "the scratch redis-server")
        seed(("127.0.0.1", port), 0, COURIERS, PARCELS, available_pct=100)
        keys = list(r.scan_iter(count=5000))
        pipe = r.pipeline(transaction=False)
        for k in keys:
            pipe.dump(k)
        return list(zip(keys, pipe.execute()))
    finally:
        srv.terminate()
        srv.wait()


class Store:
    """Where dispatchd keeps its state in this stack: the Redis Cluster, or
    one plain redis-server (database 1). prepare() empties it, seeds it and
    builds a request mix; args are dispatchd's Redis option."""

    def __init__(self, dump):
        self.cluster = cs.redis_is_cluster()
        if self.cluster:
            url = cs.env("DISPATCHD_REDIS_CLUSTER")
            self.args = ["--redis-cluster", url]
            self.client = cs.cluster_client()
            self.dump = dump
        else:
            host = cs.env("DISPATCHD_REDIS_HOST")
            port = int(cs.env("DISPATCHD_REDIS_PORT"))
            self.addr, self.db = (host, port), 1
            self.args = ["--redis", f"redis://{host}:{port}/{self.db}"]
            self.client = redislib.Redis(host=host, port=port, db=self.db)

    def prepare(self, n, seed_no):
        if self.cluster:
            cs.flush_all()
            pipe = self.client.pipeline()
            for k, v in self.dump:
                pipe.restore(k, 0, v)
            pipe.execute()
        else:
            self.client.flushdb()
            seed(self.addr, self.db, COURIERS, PARCELS, available_pct=100)
        records, expect, unavailable = make_mix(n, COURIERS, PARCELS, seed=seed_no)
        mark_unavailable(self.client, unavailable)
        return records, expect


@pytest.fixture
def store(seeded_dump):
    return Store(seeded_dump)


@pytest.fixture
def redis_cluster(store):
    """For the tests of Redis Cluster failures."""
    if not store.cluster:
        pytest.skip("the stack's Redis is a single node (DISPATCHD_STACK_REDIS=single)")
    return store


@pytest.fixture
def dispatchd_factory(brokers, topics, store, tmp_path):
    """start(name) starts one dispatchd of the test's group."""
    procs = []

    def start(name="dispatchd", extra_args=(), extra_env=None):
        env = {k: v for k, v in os.environ.items()
               if k not in ("DISPATCHD_REDIS", "DISPATCHD_REDIS_CLUSTER")}
        env.update({
            "DISPATCHD_BROKERS": brokers,
            "DISPATCHD_TOPIC": topics.requests,
            "DISPATCHD_RESULT_TOPIC": topics.results,
            "DISPATCHD_DLQ_TOPIC": topics.dlq,
            "DISPATCHD_GROUP": topics.group,
            "DISPATCHD_HTTP": "0",
            "DISPATCHD_LOG_LEVEL": "info",
            "DISPATCHD_KAFKA_CONSUMER_SESSION_TIMEOUT_MS": "6000",
            "DISPATCHD_KAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS": "500",
        })
        env.update(extra_env or {})
        d = Dispatchd(store.args + list(extra_args), env,
                      str(tmp_path / f"{name}-{len(procs)}.log"))
        procs.append(d)
        return d

    yield start
    for d in procs:
        d.kill()


class PacedProducer(threading.Thread):
    """Produces records evenly over `seconds` (an even share every 0.5 s),
    so that requests keep arriving while nodes fail; every delivery must
    succeed (the idempotent producer retries through a broker loss)."""

    def __init__(self, brokers, topic, records, seconds):
        super().__init__(daemon=True)
        self.brokers, self.topic, self.records, self.seconds = brokers, topic, records, seconds
        self.errors, self.left, self.acked = [], None, 0

    def run(self):
        p = producer(self.brokers, linger_ms=20)
        ticks = max(1, int(self.seconds * 2))
        step = (len(self.records) + ticks - 1) // ticks

        def cb(err, msg):
            if err is not None:
                self.errors.append(err)
            else:
                self.acked += 1
        start = time.monotonic()
        for k, i in enumerate(range(0, len(self.records), step)):
            for key, value, headers in self.records[i:i + step]:
                produce_one(p, self.topic, key, value, headers, on_delivery=cb)
            # Pacing of the load (not a synchronisation): the next tick.
            time.sleep(max(0.0, start + (k + 1) * 0.5 - time.monotonic()))
        self.left = p.flush(120 * MULT)

    def finish(self):
        self.join(180 * MULT)
        assert not self.is_alive(), "the producer did not finish"
        assert self.left == 0 and not self.errors, \
            f"produce failed: {self.errors[:3]} ({self.left} left)"
        assert self.acked == len(self.records)
