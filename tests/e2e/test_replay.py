"""System tests of replay mode (dispatchd --replay-from ...) against the real
broker and redis-server: three batches produced at known timestamps and
answered by a live group; a replay from the second batch's timestamp to a
fresh result topic answers exactly batches 2 and 3, byte for byte from the
ledger, without touching the live group's committed offsets; --dry-run
writes nothing; bad ranges fail with one line and exit 64."""
import json
import os
import pty
import select
import signal
import subprocess
import threading
import time
import uuid

from confluent_kafka.admin import AdminClient

from conftest import BIN, MULT, create_topic, iso_ms, redis_snapshot, summary_kv, wait_for
from kafka_io import committed_offsets, consume_to_end, end_offsets, produce
from mix import Expect, make_mix
from pipeline_checks import header, prepare, produced, wait_committed_to_end

BATCH = 3000  # requests per batch


def rid_of(record):
    """The request id of a mix record (a dead letter's is in its header)."""
    key, value, headers = record
    for k, v in headers or []:
        if k == "x-rid":
            return v.decode()
    return json.loads(value)["request_id"]


def split(expect, records, kind):
    return {rid_of(r) for r in records if expect[rid_of(r)]["kind"] == kind}


def run_replay(dispatchd_factory, args, name, timeout=120):
    d = dispatchd_factory(extra_args=args, name=name)
    rc = d.wait(timeout=timeout)
    return d, rc


def run_on_tty(args, env, timeout=120):
    """Run dispatchd with stderr on a pseudo-terminal; returns (exit status,
    stdout, what the terminal showed)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([BIN] + args, env=env, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    shown = bytearray()

    def reader():
        while True:
            r, _, _ = select.select([master], [], [], 0.2)
            if not r:
                if p.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            shown.extend(data)
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    out, _ = p.communicate(timeout=timeout * MULT)
    t.join(timeout=10)
    os.close(master)
    return p.returncode, out.decode(), shown.decode("utf-8", "replace")


def test_replay_from_timestamp_is_byte_identical_and_dry_run_writes_nothing(
        topics, brokers, redis_addr, redis_db, dispatchd_factory):
    records, expect = prepare(redis_addr, redis_db, 3 * BATCH, seed_no=31)
    thirds = [records[:len(records) // 3], records[len(records) // 3:2 * len(records) // 3],
              records[2 * len(records) // 3:]]
    base = int(time.time() * 1000) - 600_000
    ts = [base, base + 60_000, base + 120_000]
    for batch, t in zip(thirds, ts):
        produce(brokers, topics.requests, batch, t)

    # The live group answers all three batches.
    valid = split(expect, records, Expect.RESULT)
    live = dispatchd_factory(name="live")
    live.wait_assigned()
    wait_for(lambda: produced(brokers, topics.results) >= len(valid), 120, "every live result")
    wait_committed_to_end(topics)
    live.signal(signal.SIGTERM)
    assert live.wait() == 0
    committed_before = committed_offsets(brokers, topics.group, topics.requests, topics.partitions)
    original = {json.loads(m["value"])["request_id"]: m["value"]
                for m in consume_to_end(brokers, topics.results)}
    assert len(original) == len(valid)

    # Replay from the second batch's timestamp into fresh topics.
    tag = uuid.uuid4().hex[:8]
    r2 = create_topic(brokers, f"{topics.requests}.replay-{tag}", 3)
    d2 = create_topic(brokers, f"{topics.requests}.replay-dlq-{tag}", 1)
    t0 = time.monotonic()
    rep, rc = run_replay(dispatchd_factory, ["--replay-from", iso_ms(ts[1]),
                                             "--result-topic", r2, "--dlq-topic", d2], "replay")
    replay_s = time.monotonic() - t0
    assert rc == 0, rep.log_text()[-2000:]
    want = set().union(*(split(expect, b, Expect.RESULT) for b in thirds[1:]))
    want_dlq = set().union(*(split(expect, b, Expect.DLQ) for b in thirds[1:]))
    results = consume_to_end(brokers, r2)
    got = [json.loads(m["value"])["request_id"] for m in results]
    assert len(got) == len(set(got)), "a request answered twice by one replay"
    assert set(got) == want, (f"{len(set(got) - want)} unexpected, "
                              f"{len(want - set(got))} missing")
    differ = [m for m in results if m["value"] != original[json.loads(m["value"])["request_id"]]]
    assert not differ, f"{len(differ)} replayed result(s) differ from the originals"
    dlq = consume_to_end(brokers, d2)
    assert sorted(header(m, "x-rid").decode() for m in dlq) == sorted(want_dlq)
    kv = summary_kv(rep)
    assert kv["complete"] == "1" and kv["dry_run"] == "0"
    assert int(kv["messages"]) == len(thirds[1]) + len(thirds[2])
    assert int(kv["from_ledger"]) == len(want), "every answer came from the ledger"
    assert int(kv["dead_letter"]) == len(want_dlq)
    assert "replay " in rep.log_text() and "(100.0%)" in rep.log_text(), "progress line"
    assert "replay summary:" in rep.log_text()
    # The live group's offsets did not move, and the replay registered no
    # group (it never committed).
    assert committed_offsets(brokers, topics.group, topics.requests,
                             topics.partitions) == committed_before
    groups = AdminClient({"bootstrap.servers": brokers}).list_consumer_groups().result(timeout=30)
    assert not [g.group_id for g in groups.valid if g.group_id.startswith("dispatchd-replay-")]

    # A fourth batch nobody answered yet; then a dry run over batches 2-4.
    more, more_expect, _ = make_mix(500, 2000, 20000, seed=37)
    produce(brokers, topics.requests, more, base + 180_000)
    before = redis_snapshot(redis_db[1])
    r3 = create_topic(brokers, f"{topics.requests}.dry-{tag}", 3)
    d3 = create_topic(brokers, f"{topics.requests}.dry-dlq-{tag}", 1)
    env = dict(os.environ, DISPATCHD_BROKERS=brokers, DISPATCHD_TOPIC=topics.requests,
               DISPATCHD_REDIS=f"redis://{redis_addr[0]}:{redis_addr[1]}/{redis_db[0]}",
               DISPATCHD_HTTP="0", DISPATCHD_LOG_LEVEL="warn")
    rc, out, shown = run_on_tty(["--replay-from", f"@{ts[1]}", "--dry-run",
                                 "--result-topic", r3, "--dlq-topic", d3], env)
    assert rc == 0, shown[-2000:]
    assert "\x1b[K" in shown and "[####################]" in shown, "progress redrawn in place"
    assert "dry run" in out and "replay summary:" in out
    lines = dict(l.split(None, 1) for l in out.splitlines()[1:] if l.startswith("  "))
    more_valid = split(more_expect, more, Expect.RESULT)
    more_dlq = split(more_expect, more, Expect.DLQ)
    assert lines["messages"].startswith(f"{len(thirds[1]) + len(thirds[2]) + len(more)} answered")
    assert lines["duplicates"].startswith(f"{len(want)} answered from the ledger")
    assert lines["dead"] == f"letters {len(want_dlq) + len(more_dlq)}"
    total = sum(int(lines[k].split()[0]) for k in ("assigned", "rejected", "expired"))
    assert total == len(want) + len(more_valid)
    expired = sum(1 for r in more_valid if more_expect[r]["status"] == ("expired",))
    assert int(lines["expired"].split()[0]) >= expired
    assert sum(end_offsets(brokers, r3).values()) == 0, "a dry run produced results"
    assert sum(end_offsets(brokers, d3).values()) == 0, "a dry run produced dead letters"
    assert redis_snapshot(redis_db[1]) == before, "a dry run changed Redis"

    # --replay-to: only the first batch.
    rc, out, _ = run_on_tty(["--replay-from", "earliest", "--replay-to", iso_ms(ts[1]),
                             "--dry-run"], env)
    assert rc == 0
    assert f"  messages     {len(thirds[0])} answered" in out
    assert committed_offsets(brokers, topics.group, topics.requests,
                             topics.partitions) == committed_before
    print(f"\nreplay: batches of {len(thirds[0])}/{len(thirds[1])}/{len(thirds[2])} records; "
          f"replay from {iso_ms(ts[1])}: {len(got)} results (all from the ledger, byte-identical) "
          f"+ {len(dlq)} dead letters in {replay_s:.1f}s; live offsets unchanged; dry run over "
          f"batches 2-4 + {len(more)} new: {out.splitlines()[3].strip()}; nothing written")


def test_replay_bad_ranges_exit_64_with_one_line(topics, brokers, redis_addr, redis_db):
    produce(brokers, topics.requests, [(b"k", b"{}", None)] * 10,
            int(time.time() * 1000) - 60_000)
    env = dict(os.environ, DISPATCHD_BROKERS=brokers, DISPATCHD_TOPIC=topics.requests,
               DISPATCHD_REDIS=f"redis://{redis_addr[0]}:{redis_addr[1]}/{redis_db[0]}",
               DISPATCHD_HTTP="0")
    future = int(time.time() * 1000) + 86_400_000
    cases = [
        (["--replay-from", f"@{future}"], "later than the last message"),
        (["--replay-from", "1000000"], "at or past the end of every partition"),
        (["--replay-from", "earliest", "-t", f"{topics.requests}.nosuch"], "does not exist"),
        (["--replay-from", "@2000", "--replay-to", "@1000"], "must be after --replay-from"),
        (["--replay-from", "earliest", "--replay-to", "@1000"], "not after --replay-from"),
    ]
    for args, needle in cases:
        p = subprocess.run([BIN] + args, env=env, capture_output=True, text=True,
                           timeout=60 * MULT)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert p.returncode == 64, f"{args}: exit {p.returncode}: {p.stderr[-500:]}"
        assert len(lines) == 1 and lines[0].startswith("dispatchd: ") and needle in lines[0], \
            f"{args}: {lines}"
        assert p.stdout == ""
