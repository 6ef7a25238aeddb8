# SPDX-License-Identifier: MIT
"""Cluster system tests of the three-broker Kafka cluster: the broker that
leads the most input partitions is killed (-9) mid-run and started again
20 s later; all three brokers are restarted one at a time with SIGTERM
while requests flow. dispatchd keeps answering through both (the topics
keep two in-sync replicas of three, min.insync.replicas=2) and loses
nothing."""
import time

import cluster_stack as cs
from conftest import wait_for
from scenario import Run, first_result_after, longest_gap

OUTAGE_S = 20


def test_kafka_leader_killed_and_restarted(topics, store, dispatchd_factory):
    run = Run(topics, store, dispatchd_factory, 16000, seed_no=41, produce_s=45)
    run.wait_results(0.15)
    lead = cs.leaders(topics.brokers, topics.requests)
    counts = {n: sum(1 for b in lead.values() if b == n) for n in cs.kafka_nodes()}
    victim = max(counts, key=counts.get)
    kill_ts = cs.kill9(cs.kafka_pid_file(victim))
    at_kill = run.results_so_far()
    # The outage lasts OUTAGE_S seconds (the scenario's length, not a
    # synchronisation); meanwhile the leaders move to the other brokers.
    wait_for(lambda: time.time() >= kill_ts + OUTAGE_S * 1.0 and run.results_so_far() > at_kill,
             OUTAGE_S + 60, "the outage's end (and results after the kill)", interval=0.2)
    during = run.results_so_far() - at_kill
    moved = cs.leaders(topics.brokers, topics.requests)
    assert victim not in moved.values(), f"broker {victim} still leads {moved}"
    t_start = time.monotonic()
    cs.stack("kafka-start", str(victim))
    back_s = time.monotonic() - t_start
    isr_s = cs.wait_isr_full(topics.brokers)
    results, dlq, dups, counts_, elapsed = run.finish()
    first = first_result_after(results, kill_ts)
    gap = longest_gap(results, kill_ts, kill_ts + OUTAGE_S)
    print(f"\nkafka leader kill: broker {victim} (led {counts[victim]} of {len(lead)} input "
          f"partitions) killed -9 after {at_kill} results; {during} results during the "
          f"{OUTAGE_S}s outage; first result {first:.2f}s after the kill, longest pause "
          f"{gap:.2f}s; restarted in {back_s:.1f}s, ISR full {isr_s:.1f}s later; "
          f"{len(run.records)} records, {run.nres} results {counts_}, {dups} byte-identical "
          f"duplicate(s), lost 0; {elapsed:.1f}s")


def test_kafka_rolling_restart(topics, store, dispatchd_factory):
    run = Run(topics, store, dispatchd_factory, 16000, seed_no=43, produce_s=50)
    run.wait_results(0.1)
    steps = []
    t0 = time.time()
    for n in cs.kafka_nodes():
        t = time.monotonic()
        cs.stack("kafka-stop", str(n))
        stop_s = time.monotonic() - t
        t = time.monotonic()
        cs.stack("kafka-start", str(n))
        start_s = time.monotonic() - t
        isr_s = cs.wait_isr_full(topics.brokers)
        steps.append(f"broker {n}: stop {stop_s:.1f}s, start {start_s:.1f}s, ISR full "
                     f"{isr_s:.1f}s")
    roll_s = time.time() - t0
    results, dlq, dups, counts, elapsed = run.finish()
    gap = longest_gap(results, t0, t0 + roll_s)
    print(f"\nkafka rolling restart (SIGTERM, one at a time) in {roll_s:.1f}s: "
          f"{'; '.join(steps)}; longest pause of the results {gap:.2f}s; "
          f"{len(run.records)} records, {run.nres} results {counts}, {dups} byte-identical "
          f"duplicate(s), lost 0; {elapsed:.1f}s")
