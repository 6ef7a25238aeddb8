"""Fixtures for the system tests: dispatchd runs as a real subprocess against
the real Kafka broker and redis-server of scripts/stack. Every test gets its
own topics, consumer group and Redis database, so tests never see each
other's data. Waiting is always for a condition with a deadline."""
import json
import os
import signal
import subprocess
import time
import uuid

import pytest
import redis as redislib
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "release")
BIN = os.path.join(ROOT, "build", BUILD, "dispatchd")
SEED_BIN = os.path.join(ROOT, "build", BUILD, "dispatchd-seed")
MULT = int(os.environ.get("DD_TEST_TIMEOUT_MULTIPLIER", "1"))


def env_or_fail(name, fallback):
    v = os.environ.get(name) or os.environ.get(fallback)
    if not v:
        if os.environ.get("DD_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{name} is not set (run scripts/stack up)")
        pytest.skip(f"{name} is not set")
    return v


def wait_for(pred, timeout, what, interval=0.05):
    """Wait until pred() is truthy, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout * MULT
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout * MULT}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def brokers():
    return env_or_fail("DISPATCHD_TEST_BROKERS", "DISPATCHD_BROKERS")


@pytest.fixture(scope="session")
def redis_addr():
    host = env_or_fail("DISPATCHD_TEST_REDIS_HOST", "DISPATCHD_REDIS_HOST")
    port = int(env_or_fail("DISPATCHD_TEST_REDIS_PORT", "DISPATCHD_REDIS_PORT"))
    return host, port


_db_counter = [0]


@pytest.fixture
def redis_db(redis_addr):
    """A Redis database of its own (1..14), empty before and after."""
    _db_counter[0] = _db_counter[0] % 14 + 1
    db = _db_counter[0]
    r = redislib.Redis(host=redis_addr[0], port=redis_addr[1], db=db)
    r.flushdb()
    yield db, r
    try:
        r.flushdb()
    except redislib.exceptions.ConnectionError:
        pass


class Topics:
    def __init__(self, brokers, name, partitions):
        tag = f"dd_test_{os.getpid()}_{uuid.uuid4().hex[:8]}_{name}"
        self.requests = tag + ".requests"
        self.results = tag + ".results"
        self.dlq = tag + ".dlq"
        self.group = tag + ".group"
        self.partitions = partitions
        admin = AdminClient({"bootstrap.servers": brokers})
        futs = admin.create_topics([
            NewTopic(self.requests, partitions, 1),
            NewTopic(self.results, partitions, 1),
            NewTopic(self.dlq, 1, 1),
        ])
        for f in futs.values():
            f.result(timeout=30)
        self.brokers = brokers
        # Wait until every partition has a leader.
        def ready():
            md = admin.list_topics(timeout=5)
            for t in (self.requests, self.results, self.dlq):
                tm = md.topics.get(t)
                if tm is None or tm.error is not None or not tm.partitions:
                    return False
                if any(p.leader < 0 for p in tm.partitions.values()):
                    return False
            return True
        wait_for(ready, 30, "topic leaders")


@pytest.fixture
def topics(brokers, request):
    return Topics(brokers, request.node.name[:40], 4)


class Dispatchd:
    """One dispatchd process; stderr goes to a log file the test can read."""

    def __init__(self, args, env, logpath):
        self.logpath = logpath
        self.log = open(logpath, "ab")
        self.proc = subprocess.Popen([BIN] + args, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def log_text(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def events(self, name):
        out = []
        for line in self.log_text().splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if obj.get("event") == name:
                out.append(obj)
        return out

    def wait_assigned(self, timeout=60):
        wait_for(lambda: self.events("rebalance_assign"), timeout,
                 "dispatchd to get an assignment")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=60):
        try:
            return self.proc.wait(timeout=timeout * MULT)
        finally:
            self.log.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.log.close()


@pytest.fixture
def dispatchd_factory(brokers, redis_addr, topics, redis_db, tmp_path):
    procs = []

    def start(extra_args=(), extra_env=None, name="dispatchd"):
        env = dict(os.environ)
        env.update({
            "DISPATCHD_BROKERS": brokers,
            "DISPATCHD_REDIS": f"redis://{redis_addr[0]}:{redis_addr[1]}/{redis_db[0]}",
            "DISPATCHD_TOPIC": topics.requests,
            "DISPATCHD_RESULT_TOPIC": topics.results,
            "DISPATCHD_DLQ_TOPIC": topics.dlq,
            "DISPATCHD_GROUP": topics.group,
            "DISPATCHD_HTTP": "0",
            "DISPATCHD_LOG_LEVEL": "info",
            "DISPATCHD_KAFKA_CONSUMER_SESSION_TIMEOUT_MS": "6000",
            "DISPATCHD_KAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS": "500",
        })
        if extra_env:
            env.update(extra_env)
        d = Dispatchd(list(extra_args), env, str(tmp_path / f"{name}-{len(procs)}.log"))
        procs.append(d)
        return d

    yield start
    for d in procs:
        d.kill()


def seed(redis_addr, db, couriers, parcels, available_pct=80, seed_no=1):
    out = subprocess.run([SEED_BIN, "--redis", f"redis://{redis_addr[0]}:{redis_addr[1]}/{db}",
                          "--couriers", str(couriers), "--parcels", str(parcels),
                          "--available-pct", str(available_pct), "--seed", str(seed_no)],
                         check=True, capture_output=True, text=True)
    return out.stdout


# ----- Helpers of the consumer-group and replay tests (test_group.py,
# test_replay.py). Added at the end; the fixtures above are unchanged.

import datetime
import re
import threading

MAXPOLL_MARKS = ("MAXPOLL", "MAX_POLL_EXCEEDED", "max.poll.interval.ms) exceeded")


def log_ts(obj):
    """Wall time (s) of a dispatchd JSON log line."""
    return datetime.datetime.strptime(obj["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def iso_ms(ms):
    """Epoch ms -> 2026-11-27T20:00:00.123Z (what --replay-from accepts)."""
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_PARTS_RE = re.compile(r"partition\(s\): ([0-9,]+|-)")


def logged_partitions(obj):
    """Partition ids of a rebalance_assign / rebalance_revoke log line."""
    m = _PARTS_RE.search(obj.get("msg", ""))
    assert m, f"no partition list in {obj}"
    return [] if m.group(1) == "-" else [int(x) for x in m.group(1).split(",")]


def ownership(d, end_ts=None):
    """Per partition, the (start, end) wall-time intervals during which
    dispatchd d held it, from its rebalance_assign / rebalance_revoke lines
    (assign is logged before any message is taken, revoke after the drain
    and the commit). An interval still open ends at end_ts (a kill -9), or
    at the process's last log line."""
    events = []
    last = 0.0
    for line in d.log_text().splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        last = max(last, log_ts(obj))
        if obj.get("event") in ("rebalance_assign", "rebalance_revoke"):
            events.append((log_ts(obj), obj["event"], logged_partitions(obj)))
    open_at, out = {}, {}
    for ts, ev, parts in events:
        for p in parts:
            if ev == "rebalance_assign":
                open_at.setdefault(p, ts)
            elif p in open_at:
                out.setdefault(p, []).append((open_at.pop(p), ts))
    stop = end_ts if end_ts is not None else last
    for p, ts in open_at.items():
        out.setdefault(p, []).append((ts, stop))
    return out


def current_partitions(d):
    """The partitions dispatchd d holds according to its log so far."""
    held = set()
    for line in d.log_text().splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if obj.get("event") == "rebalance_assign":
            held |= set(logged_partitions(obj))
        elif obj.get("event") == "rebalance_revoke":
            held -= set(logged_partitions(obj))
    return held


def ownership_overlaps(intervals_by_member):
    """intervals_by_member: {name: {partition: [(start, end)]}}. Returns the
    (partition, member a, member b, interval a, interval b) pairs whose
    intervals overlap: two members holding one partition at once."""
    bad = []
    names = sorted(intervals_by_member)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for p, ivs in intervals_by_member[a].items():
                for sa, ea in ivs:
                    for sb, eb in intervals_by_member[b].get(p, []):
                        if sa < eb and sb < ea:
                            bad.append((p, a, b, (sa, ea), (sb, eb)))
    return bad


def maxpoll_lines(d):
    """Log lines that say max.poll.interval.ms was exceeded."""
    return [l for l in d.log_text().splitlines() if any(m in l for m in MAXPOLL_MARKS)]


def rss_kb(pid):
    """Resident set size of a process in kB, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler(threading.Thread):
    """Samples a process's RSS every `interval` s until stop is set."""

    def __init__(self, pid, interval=0.1):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            v = rss_kb(self.pid)
            if v is not None:
                self.samples.append(v)
            self.stop.wait(self.interval)

    @property
    def peak(self):
        return max(self.samples) if self.samples else 0


def create_topic(brokers, name, partitions):
    """A topic of its own (a replay's fresh result or DLQ topic)."""
    admin = AdminClient({"bootstrap.servers": brokers})
    for f in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        f.result(timeout=30)

    def ready():
        tm = admin.list_topics(timeout=5).topics.get(name)
        return tm is not None and tm.error is None and tm.partitions and \
            all(p.leader >= 0 for p in tm.partitions.values())
    wait_for(ready, 30, f"topic {name}")
    return name


def redis_snapshot(r):
    """Every key of a Redis database with its value (strings and hashes),
    read in pipelined chunks."""
    keys = list(r.scan_iter(count=5000))
    out = {}
    for i in range(0, len(keys), 2000):
        chunk = keys[i:i + 2000]
        pipe = r.pipeline(transaction=False)
        for k in chunk:
            pipe.type(k)
        types = pipe.execute()
        pipe = r.pipeline(transaction=False)
        for k, t in zip(chunk, types):
            if t == b"hash":
                pipe.hgetall(k)
            else:
                pipe.get(k)
        for k, t, v in zip(chunk, types, pipe.execute()):
            out[k] = (t, v)
    return out


def summary_kv(d):
    """The key=value pairs of a replay's replay_summary log line."""
    ev = d.events("replay_summary")
    assert ev, "no replay_summary line"
    return dict(kv.split("=", 1) for kv in ev[-1]["msg"].split())
