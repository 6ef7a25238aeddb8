# SPDX-License-Identifier: MIT
"""The cluster stack of scripts/stack (DISPATCHD_STACK_MODE=cluster) as the
cluster system tests see it: its brokers and Redis nodes by number (port,
pid, kill -9, stop and start through scripts/stack), and the conditions the
tests wait for: every broker registered and every partition's ISR full,
every Redis Cluster node ok. It reads only stack.env's variables (exported
by scripts/with-stack); it knows nothing of dispatchd."""
import os
import signal
import subprocess
import time

import redis as redislib
from confluent_kafka.admin import AdminClient

from conftest import ROOT, wait_for

STACK = os.path.join(ROOT, "scripts", "stack")


def env(name):
    v = os.environ.get(name)
    assert v, f"{name} is not set (run under scripts/with-stack with DISPATCHD_STACK_MODE=cluster)"
    return v


def is_cluster():
    return os.environ.get("DISPATCHD_STACK_MODE") == "cluster"


def redis_is_cluster():
    return os.environ.get("DISPATCHD_STACK_REDIS") == "cluster"


def stack(*args):
    """Runs scripts/stack on the stack's own state folder."""
    subprocess.run([STACK, *args], check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, DISPATCHD_STACK_DIR=env("DISPATCHD_STACK_DIR")))


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def pid_alive(pid):
    """True while pid runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return line.split()[1] != "Z"
    except OSError:
        return False
    return False


def kill9(pid_file):
    """kill -9 the process of a pid file; waits until it is gone. Returns
    the wall time of the kill."""
    pid = read_pid(pid_file)
    assert pid and pid_alive(pid), f"no running process in {pid_file}"
    os.kill(pid, signal.SIGKILL)
    t = time.time()
    wait_for(lambda: not pid_alive(pid), 10, f"pid {pid} to exit after SIGKILL", interval=0.02)
    return t


# ----------------------------------------------------------------- Kafka --

def kafka_nodes():
    return list(range(1, int(env("DISPATCHD_STACK_KAFKA_NODES")) + 1))


def kafka_pid_file(n):
    return env(f"DISPATCHD_STACK_KAFKA_{n}_PID_FILE")


def leaders(brokers, topic):
    """{partition: leader broker id} of a topic."""
    md = AdminClient({"bootstrap.servers": brokers}).list_topics(topic, timeout=10)
    return {p: pm.leader for p, pm in md.topics[topic].partitions.items()}


def isr_full(brokers, topics=None):
    """Every broker registered, and every partition of `topics` (default:
    all, __consumer_offsets included) led and with its full replica set in
    sync."""
    try:
        md = AdminClient({"bootstrap.servers": brokers}).list_topics(timeout=5)
    except Exception:  # the cluster moves: not yet
        return False
    if len(md.brokers) != len(kafka_nodes()):
        return False
    for name, tm in md.topics.items():
        if topics is not None and name not in topics:
            continue
        if tm.error is not None or not tm.partitions:
            return False
        for pm in tm.partitions.values():
            if pm.leader < 0 or sorted(pm.isrs) != sorted(pm.replicas):
                return False
    return True


def wait_isr_full(brokers, timeout=90, topics=None):
    t0 = time.monotonic()
    wait_for(lambda: isr_full(brokers, topics), timeout, "every broker and a full ISR everywhere",
             interval=0.2)
    return time.monotonic() - t0


# ----------------------------------------------------------------- Redis --

def redis_nodes():
    return list(range(1, int(env("DISPATCHD_STACK_REDIS_NODES")) + 1))


def redis_port(n):
    return int(env(f"DISPATCHD_STACK_REDIS_{n}_PORT"))


def redis_pid_file(n):
    return env(f"DISPATCHD_STACK_REDIS_{n}_PID_FILE")


def node_client(n):
    return redislib.Redis(host="127.0.0.1", port=redis_port(n), socket_timeout=2)


def node_info(n):
    """(role, cluster_state, node id) of Redis node n, or None when down."""
    try:
        c = node_client(n)
        info = c.execute_command("CLUSTER", "INFO").decode()
        state = dict(l.split(":", 1) for l in info.split() if ":" in l)
        return c.execute_command("ROLE")[0].decode(), state.get("cluster_state"), \
            c.execute_command("CLUSTER", "MYID").decode()
    except (redislib.exceptions.RedisError, OSError):
        return None


def masters():
    """Numbers of the nodes that run and are masters."""
    out = []
    for n in redis_nodes():
        i = node_info(n)
        if i and i[0] == "master":
            out.append(n)
    return out


def cluster_healthy():
    """Every node runs and says cluster_state:ok, three masters, each with a
    replica whose link is up."""
    infos = [node_info(n) for n in redis_nodes()]
    if any(i is None or i[1] != "ok" for i in infos):
        return False
    if sum(1 for i in infos if i[0] == "master") != len(infos) // 2:
        return False
    for n, i in zip(redis_nodes(), infos):
        if i[0] == "slave":
            repl = node_client(n).info("replication")
            if repl.get("master_link_status") != "up":
                return False
    return True


def wait_cluster_healthy(timeout=60):
    t0 = time.monotonic()
    wait_for(cluster_healthy, timeout, "a healthy Redis Cluster (6 nodes ok, 3 masters)",
             interval=0.1)
    return time.monotonic() - t0


def keys_per_master():
    """{node number: keys} of the masters."""
    return {n: node_client(n).dbsize() for n in masters()}


def slots_per_master():
    """{node number: hash slots it owns}, from CLUSTER SLOTS of a master."""
    by_port = {redis_port(n): n for n in redis_nodes()}
    out = {}
    for first, last, master, *_ in node_client(masters()[0]).execute_command("CLUSTER", "SLOTS"):
        n = by_port[int(master[1])]
        out[n] = out.get(n, 0) + last - first + 1
    return dict(sorted(out.items()))


def flush_all():
    for n in masters():
        node_client(n).flushall()


def cluster_client():
    return redislib.RedisCluster(host="127.0.0.1", port=redis_port(redis_nodes()[0]),
                                 socket_timeout=5)
