# SPDX-License-Identifier: MIT
"""Cluster system tests of the Redis Cluster (dispatchd --redis-cluster):
the master that owns the most keys is killed (-9) mid-run and its replica
promoted; slots move between masters (reshard, then rebalance) while
dispatchd runs. dispatchd follows the new slot owners (MOVED / ASK) by
itself and loses nothing."""
import subprocess
import time

import cluster_stack as cs
from conftest import wait_for
from http_probe import HTTP_ENV, http_port, metrics, samples
from scenario import Run, first_result_after, longest_gap


def promoted(victim, old_masters):
    """The victim's slots have a new master: three running masters, none of
    them the victim, and every running node says cluster_state:ok."""
    live = [n for n in cs.redis_nodes() if n != victim]
    infos = [cs.node_info(n) for n in live]
    if any(i is None or i[1] != "ok" for i in infos):
        return False
    now = [n for n, i in zip(live, infos) if i[0] == "master"]
    return len(now) == 3 and set(now) != set(old_masters)


def test_redis_master_killed_replica_promoted(topics, redis_cluster, dispatchd_factory):
    run = Run(topics, redis_cluster, dispatchd_factory, 16000, seed_no=53, produce_s=30)
    run.wait_results(0.25)
    keys = cs.keys_per_master()
    victim = max(keys, key=keys.get)
    kill_ts = cs.kill9(cs.redis_pid_file(victim))
    at_kill = run.results_so_far()
    wait_for(lambda: promoted(victim, keys), 30, "the replica's promotion", interval=0.05)
    failover_s = time.time() - kill_ts
    results, dlq, dups, counts, elapsed = run.finish()
    first = first_result_after(results, kill_ts)
    first_after_promotion = first_result_after(results, kill_ts + failover_s)
    gap = longest_gap(results, kill_ts)
    print(f"\nredis master kill: node {victim} ({keys[victim]} of {sum(keys.values())} keys) "
          f"killed -9 after {at_kill} results; replica promoted {failover_s:.2f}s after the "
          f"kill; first result {first:.2f}s after the kill, {first_after_promotion:.2f}s after "
          f"the promotion; longest pause {gap:.2f}s; {len(run.records)} records, {run.nres} "
          f"results {counts}, {dups} byte-identical duplicate(s), lost 0; {elapsed:.1f}s")


def cluster_cli(*args, timeout=120):
    """redis-cli --cluster ... against node 1; returns its output."""
    out = subprocess.run(["redis-cli", "--cluster", args[0], f"127.0.0.1:{cs.redis_port(1)}",
                          *args[1:]], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"redis-cli --cluster {args[0]} failed:\n{out.stdout[-2000:]}" \
                                f"\n{out.stderr[-2000:]}"
    return out.stdout


def cluster_agrees():
    """redis-cli --cluster check passes: every node agrees on the slot map,
    no slot is left open (migrating or importing)."""
    out = subprocess.run(["redis-cli", "--cluster", "check", f"127.0.0.1:{cs.redis_port(1)}"],
                         capture_output=True, text=True, timeout=30)
    return out.returncode == 0


def test_redis_slots_move_while_running(topics, redis_cluster, dispatchd_factory):
    run = Run(topics, redis_cluster, dispatchd_factory, 16000, seed_no=59, produce_s=30,
              extra_env=HTTP_ENV)
    run.wait_results(0.2)
    ids = {n: cs.node_info(n)[2] for n in cs.masters()}
    src, dst = sorted(ids)[:2]
    before = cs.slots_per_master()
    t0 = time.time()
    cluster_cli("reshard", "--cluster-from", ids[src], "--cluster-to", ids[dst],
                "--cluster-slots", "2000", "--cluster-yes", "--cluster-pipeline", "100")
    reshard_s = time.time() - t0
    after_reshard = cs.slots_per_master()
    # The nodes learn the new owners by gossip: rebalance refuses to start
    # before they agree.
    wait_for(cluster_agrees, 30, "every node to agree on the slot map", interval=0.2)
    t1 = time.time()
    cluster_cli("rebalance", "--cluster-pipeline", "100")
    rebalance_s = time.time() - t1
    wait_for(cluster_agrees, 30, "every node to agree on the slot map", interval=0.2)
    cs.wait_cluster_healthy()
    after_rebalance = cs.slots_per_master()
    assert after_reshard[src] == before[src] - 2000, (before, after_reshard)
    assert after_reshard[dst] == before[dst] + 2000, (before, after_reshard)
    assert max(after_rebalance.values()) - min(after_rebalance.values()) < 1000, after_rebalance
    # dispatchd followed the moves itself: redirections were answered.
    port = http_port(run.members[0])
    m = samples(metrics(port))
    moved = m.get('dispatchd_redis_redirects_total{kind="moved"}', 0)
    ask = m.get('dispatchd_redis_redirects_total{kind="ask"}', 0)
    assert moved + ask > 0, "no MOVED or ASK followed while slots moved"
    results, dlq, dups, counts, elapsed = run.finish()
    gap = longest_gap(results, t0, t1 + rebalance_s)
    print(f"\nredis redirections followed: MOVED {moved:.0f}, ASK {ask:.0f}")
    print(f"\nredis slots moved while running: 2000 slots node {src} -> node {dst} in "
          f"{reshard_s:.1f}s (slots per master {after_reshard}), rebalance in "
          f"{rebalance_s:.1f}s (slots per master {after_rebalance}); longest "
          f"pause of the results {gap:.2f}s; {len(run.records)} records, {run.nres} results "
          f"{counts}, {dups} byte-identical duplicate(s), lost 0; {elapsed:.1f}s")
