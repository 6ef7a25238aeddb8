# SPDX-License-Identifier: MIT
"""One run of a cluster system test: a mixed request set produced at a
steady pace while dispatchd (one or more processes of one group) answers
it, a disruption (the test's) in the middle, then the checks every cluster
test makes, by request id: nothing lost, duplicates only byte-identical, no
courier assigned twice (pipeline_checks.check), and committed offsets at the
end offsets. Also the figures the tests print: when results flowed around
a given moment."""
import signal
import time

from confluent_kafka import KafkaException

from conftest import PacedProducer, wait_for
from kafka_io import committed_offsets, consume_to_end
from pipeline_checks import check, n_expected, produced, wait_committed_to_end


class Run:
    def __init__(self, topics, store, factory, n, seed_no, produce_s, members=1,
                 extra_env=None):
        self.topics, self.factory = topics, factory
        self.records, self.expect = store.prepare(n, seed_no)
        self.nres, self.ndlq = n_expected(self.expect)
        self.t0 = time.monotonic()
        self.members = [factory(name=f"m{i + 1}", extra_env=extra_env)
                        for i in range(members)]
        for d in self.members:
            d.wait_assigned()
        self.prod = PacedProducer(topics.brokers, topics.requests, self.records, produce_s)
        self.prod.start()

    def results_so_far(self, timeout=60):
        """Results on the topic so far; asked again while a broker is lost
        (its handles die with errors kafka_io does not retry on)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return produced(self.topics.brokers, self.topics.results)
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # retry interval while the cluster moves

    def wait_results(self, fraction, timeout=120):
        """Waits until `fraction` of the expected results are on the topic."""
        want = int(self.nres * fraction)
        wait_for(lambda: self.results_so_far() >= want, timeout,
                 f"{want} results ({fraction:.0%})", interval=0.1)

    def finish(self, timeout=180):
        """Every record produced and answered, every offset committed, every
        member stopped with SIGTERM (exit 0); then the checks. Returns
        (results, dlq, duplicates, counts, seconds)."""
        self.prod.finish()
        wait_for(lambda: self.results_so_far() >= self.nres, timeout, "every result",
                 interval=0.2)
        ends = wait_committed_to_end(self.topics, timeout=90)
        elapsed = time.monotonic() - self.t0
        alive = [d for d in self.members if d.proc.poll() is None]
        for d in alive:
            d.signal(signal.SIGTERM)
        for d in alive:
            assert d.wait() == 0, f"dispatchd did not exit 0 after SIGTERM:\n{d.log_text()[-2000:]}"
        assert committed_offsets(self.topics.brokers, self.topics.group, self.topics.requests,
                                 self.topics.partitions) == ends
        results = consume_to_end(self.topics.brokers, self.topics.results)
        dlq = consume_to_end(self.topics.brokers, self.topics.dlq)
        dups, counts = check(results, dlq, self.expect, clean=False)
        return results, dlq, dups, counts, elapsed


def first_result_after(results, t):
    """Seconds from wall time t to the first result produced after it."""
    after = [m["ts"] for m in results if m["ts"] > t]
    return min(after) - t if after else None


def longest_gap(results, start, end=None):
    """The longest pause (s) between consecutive results in [start, end],
    counting from start: how long the stream stopped."""
    ts = sorted(m["ts"] for m in results if m["ts"] >= start and (end is None or m["ts"] <= end))
    if not ts:
        return (end - start) if end is not None else None
    gaps = [ts[0] - start] + [b - a for a, b in zip(ts, ts[1:])]
    return max(gaps)
