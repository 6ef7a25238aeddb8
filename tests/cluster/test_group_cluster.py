# SPDX-License-Identifier: MIT
"""Cluster system test of a consumer group against the clusters: three
dispatchd processes share the input topic; one is killed (-9) mid-run and
started again. Every request is answered, a duplicate is byte-identical,
no courier is assigned twice and no partition is held by two members at
once."""
import time

from conftest import current_partitions, ownership, ownership_overlaps, wait_for
from kafka_io import committed_offsets
from scenario import Run, first_result_after


def test_three_members_one_killed_and_restarted(topics, store, dispatchd_factory):
    run = Run(topics, store, dispatchd_factory, 16000, seed_no=47, produce_s=30, members=3)
    victim = run.members[1]

    def victim_committed():
        parts = current_partitions(victim)
        c = committed_offsets(topics.brokers, topics.group, topics.requests, topics.partitions)
        return parts and all(c[p] > 0 for p in parts)
    wait_for(lambda: run.results_so_far() >= run.nres * 0.3 and victim_committed(), 120,
             "30% of the results and commits by the victim", interval=0.1)
    killed_parts = sorted(current_partitions(victim))
    victim.kill()
    kill_ts = time.time()
    t = time.monotonic()
    again = dispatchd_factory(name="m2-restarted")
    run.members.append(again)
    wait_for(lambda: current_partitions(again), 60, "the restarted member's assignment",
             interval=0.2)
    rejoin_s = time.monotonic() - t
    results, dlq, dups, counts, elapsed = run.finish()
    names = ["m1", "m2", "m3", "m2-restarted"]
    intervals = {n: ownership(d, kill_ts if d is victim else None)
                 for n, d in zip(names, run.members)}
    overlaps = ownership_overlaps(intervals)
    assert not overlaps, f"a partition held by two members at once: {overlaps[:3]}"
    first = first_result_after(results, kill_ts)
    print(f"\ngroup of 3: member m2 (partitions {killed_parts}) killed -9, restarted, "
          f"assigned again {rejoin_s:.1f}s later; first result {first:.2f}s after the kill; "
          f"{len(run.records)} records, {run.nres} results {counts}, {dups} byte-identical "
          f"duplicate(s), lost 0; {elapsed:.1f}s")
