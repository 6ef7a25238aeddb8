# SPDX-License-Identifier: MIT
"""System test of a poison record every 100 records (issue 8, "Done
when"): one input partition, real broker and redis-server, and every kind
of poison the product knows, in turn: oversized inputs (a random value of
999,800 bytes, a compressible 3 MB value, a 4-byte value under 999,800
bytes of headers) whose dead letters exceed the DLQ topic's
max.message.bytes; malformed inputs (over 64 KiB, not JSON, invalid UTF-8,
schema violation, bad id); forged dispatch.* input headers; Redis keys of
the wrong type (result, reservation, courier, parcel); invalid fleet data;
stored results that are garbage or another request's; a cached ETA no
route can take. Every input offset must be answered exactly once (a result
or a dead letter) with the answer its kind calls for, the group must commit
to the end offset, SIGTERM must end dispatchd within 5 s with status 0, and
/metrics must count the dead letters by class as the topic holds them."""
import hashlib
import json
import os
import signal
import subprocess
import time

import jsonschema
import pytest

from conftest import Topics, seed
from http_probe import HTTP_ENV, http_port, metrics, samples
from kafka_io import committed_offsets, consume_to_end, end_offsets, produce_with, producer
from pipeline_checks import VALIDATOR, wait_committed_to_end
from poison_setup import eta_key, set_topic_config

N = int(os.environ.get("DD_TEST_POISON_MIX_RECORDS", "3000"))
EVERY = 100
COURIERS = 1000
PARCELS = 2000
INPUT_MAX_BYTES = 2_000_000
DLQ_MAX_BYTES = 200_000
BIG = 999_800
BIG_COMPRESSIBLE = 3_000_000
WRONGTYPE = "WRONGTYPE"
ETA_POISON = b"999999999999999999"
# Positions around Berlin for the couriers and parcels the test plants.
ALEX = (52.521918, 13.413215)
TOR = (52.516275, 13.377704)
GARBAGE = b"\x00not a result\xff{"

# Dead-letter kinds: (expected class, the only class a dead letter of this
# kind may have: "reduced" = record_too_large is required, "full" = it must
# be written whole unless the broker refused the batch it shared).
PARSE_KINDS = {
    "big_random": ("too_large", "reduced"),
    "big_compressible": ("too_large", "full"),
    "big_headers": ("not_json", "reduced"),
    "too_large": ("too_large", "full"),
    "not_json": ("not_json", "full"),
    "invalid_utf8": ("invalid_utf8", "full"),
    "schema": ("schema", "full"),
    "bad_id": ("bad_id", "full"),
    "forged_headers": ("not_json", "full"),
}
STORE_KINDS = ("result_hash", "reservation_list", "courier_string", "parcel_list",
               "result_garbage", "result_other")
REJECT_KINDS = {
    "courier_lat_abc": "courier_data_invalid",
    "courier_lon_181": "courier_data_invalid",
    "courier_rocket": "courier_data_invalid",
    "parcel_missing_field": "parcel_data_invalid",
}
KINDS = list(PARSE_KINDS) + list(STORE_KINDS) + list(REJECT_KINDS) + ["eta_poison"]
FORGED = [("dispatch.error", b"forged reason"), ("dispatch.error.class", b"forged_class"),
          ("dispatch.source.offset", b"-1")]


@pytest.fixture
def topics(brokers, request):
    """One input partition (this module's dispatchd_factory uses it)."""
    return Topics(brokers, request.node.name[:30], 1)


def value_of(rid, parcel, courier):
    return json.dumps({"request_id": rid, "parcel_id": parcel, "courier_id": courier},
                      separators=(",", ":")).encode()


def courier_hash(r, cid, pos, vehicle="car", **override):
    fields = {"lat": str(pos[0]), "lon": str(pos[1]), "vehicle": vehicle, "status": "available"}
    fields.update(override)
    r.hset(f"courier:{cid}", mapping=fields)


def parcel_hash(r, pid, pickup, dropoff):
    r.hset(f"parcel:{pid}", mapping={"pickup_lat": str(pickup[0]), "pickup_lon": str(pickup[1]),
                                     "dropoff_lat": str(dropoff[0]), "dropoff_lon": str(dropoff[1])})


def poison(kind, k, r):
    """The k-th poison record of a kind, with what Redis must hold for it.
    Returns ((key, value, headers), expectation); every courier and parcel
    it names is its own, so no other request reads the poisoned keys."""
    rid, cid, pid = f"r-px-{k}", f"c-px-{k}", f"p-px-{k}"
    seeded_parcel = f"p-{k % PARCELS + 1:05d}"
    hdr = [("x-kind", kind.encode())]
    exp = {"kind": kind, "rid": rid}
    if kind in PARSE_KINDS:
        exp["class"], exp["size"] = PARSE_KINDS[kind]
        key = rid.encode()
        if kind == "big_random":
            return (key, os.urandom(BIG), hdr), exp
        if kind == "big_compressible":
            return (key, b"x" * BIG_COMPRESSIBLE, hdr), exp
        if kind == "big_headers":
            # Random bytes, so that compression cannot shrink them.
            big = [(f"h{i}", os.urandom(BIG // 10)) for i in range(10)]
            return (key, b"abcd", hdr + big), exp
        if kind == "too_large":
            body = json.dumps({"request_id": rid, "parcel_id": seeded_parcel,
                               "courier_id": "c-0001", "pad": "x" * 70000}).encode()
            return (key, body, hdr), exp
        if kind == "not_json":
            return (key, b'{"request_id": "' + rid.encode() + b'", ', hdr), exp
        if kind == "invalid_utf8":
            return (key, b'{"request_id": "' + rid.encode() + b'", "parcel_id": "p-\xff\xfe"}',
                    hdr), exp
        if kind == "schema":
            return (key, json.dumps({"request_id": rid, "parcel_id": seeded_parcel}).encode(),
                    hdr), exp
        if kind == "bad_id":
            return (key, json.dumps({"request_id": rid, "parcel_id": "p 1/2",
                                     "courier_id": "c-0001"}).encode(), hdr), exp
        assert kind == "forged_headers"
        return (key, b"not json at all", hdr + FORGED), exp

    parcel = seeded_parcel
    courier_hash(r, cid, ALEX)
    if kind in STORE_KINDS:
        exp["class"] = "store_data_error"
        if kind == "result_hash":
            r.hset(f"result:{rid}", "x", "1")
            exp["text"] = (f"result:{rid}", WRONGTYPE)
        elif kind == "reservation_list":
            r.rpush(f"reservation:{cid}", "x")
            exp["text"] = (f"reservation:{cid}", WRONGTYPE)
        elif kind == "courier_string":
            r.delete(f"courier:{cid}")
            r.set(f"courier:{cid}", "x")
            exp["text"] = (f"courier:{cid}", WRONGTYPE)
        elif kind == "parcel_list":
            parcel = pid
            r.lpush(f"parcel:{pid}", "x")
            exp["text"] = (f"parcel:{pid}", WRONGTYPE)
        elif kind == "result_garbage":
            r.set(f"result:{rid}", GARBAGE)
            exp["text"] = (f"result:{rid} is not a valid",)
        else:
            other = {"request_id": f"r-other-{k}", "status": "rejected",
                     "reason": "unknown_courier", "parcel_id": parcel, "courier_id": cid,
                     "source": {"topic": "t", "partition": 0, "offset": 5},
                     "processed_at": "2026-01-01T00:00:00.000Z"}
            r.set(f"result:{rid}", json.dumps(other, separators=(",", ":")))
            exp["text"] = (f"result:{rid} is not a valid", "names another request")
    elif kind in REJECT_KINDS:
        exp["reason"] = REJECT_KINDS[kind]
        if kind == "courier_lat_abc":
            courier_hash(r, cid, ALEX, lat="abc")
        elif kind == "courier_lon_181":
            courier_hash(r, cid, ALEX, lon="181")
        elif kind == "courier_rocket":
            courier_hash(r, cid, ALEX, vehicle="rocket")
        else:
            parcel = pid
            r.hset(f"parcel:{pid}", mapping={"pickup_lat": str(TOR[0]),
                                             "pickup_lon": str(TOR[1])})
    else:
        assert kind == "eta_poison"
        # Positions of their own within a few km (cells of 7 geohash
        # characters are about 150 m wide), so both legs are cache keys of
        # their own.
        j = k // len(KINDS)
        pos = (ALEX[0] + 0.003 * (j % 50 + 1), ALEX[1] + 0.003 * (j // 50))
        pickup = (TOR[0] - 0.003 * (j // 50), TOR[1] - 0.003 * (j % 50 + 1))
        courier_hash(r, cid, pos)
        parcel = pid
        parcel_hash(r, pid, pickup, ALEX)
        exp["legs"] = (eta_key("car", pos, pickup), eta_key("car", pickup, ALEX))
        for leg in exp["legs"]:
            r.set(leg, ETA_POISON)
    return (parcel.encode(), value_of(rid, parcel, cid), hdr), exp


def build(r):
    """N records, a poison every EVERY records cycling through KINDS.
    Returns (records, {offset: expectation}) for the poisons."""
    records, poisons = [], {}
    k = 0
    for i in range(N):
        if i % EVERY == EVERY - 1:
            rec, exp = poison(KINDS[k % len(KINDS)], k, r)
            poisons[i] = exp
            k += 1
        else:
            rid = f"r-g-{i:06d}"
            parcel = f"p-{i % PARCELS + 1:05d}"
            rec = (parcel.encode(), value_of(rid, parcel, f"c-{i % COURIERS + 1:04d}"), None)
        records.append(rec)
    return records, poisons


def headers_named(m, name):
    return [v for k, v in m["headers"] if k == name]


def one_header(m, name, problems):
    """The value of a header a dead letter must carry once (the last one,
    b"" when there is none); a count other than one is a problem."""
    vals = headers_named(m, name)
    if len(vals) != 1:
        problems.append(f"offset {m.get('src')}: {len(vals)} {name} header(s): {vals[:3]}")
    return vals[-1] if vals else b""


def check_dead_letter(m, rec, exp, problems):
    """Checks one dead letter against its record; returns (class of the
    header, original class)."""
    off = m["src"]
    key, value, hdrs = rec
    cls = one_header(m, "dispatch.error.class", problems).decode()
    text = one_header(m, "dispatch.error", problems).decode("utf-8", "replace")
    for h in ("dispatch.source.topic", "dispatch.source.partition", "dispatch.failed_at"):
        one_header(m, h, problems)
    orig = cls
    if m["key"] != key:
        problems.append(f"offset {off}: key {m['key']!r} != {key!r}")
    if cls == "record_too_large":
        # "... (original class too_large: ...)"
        marker = "(original class "
        orig = text[text.index(marker) + len(marker):].split(":", 1)[0] if marker in text else "?"
        size = int(one_header(m, "dispatch.original_size", problems) or -1)
        sha = one_header(m, "dispatch.original_sha256", problems).decode()
        if size != len(value) or sha != hashlib.sha256(value).hexdigest():
            problems.append(f"offset {off}: reduced dead letter names size {size} sha {sha}, "
                            f"the value has {len(value)} bytes")
        got = m["value"] or b""
        if not value.startswith(got) or (len(value) > 65536 and len(got) >= len(value)):
            problems.append(f"offset {off}: reduced value of {len(got)} bytes is not a cut "
                            f"of the original {len(value)}")
        if exp and exp["kind"] == "big_headers" and headers_named(m, "h0"):
            problems.append(f"offset {off}: the oversized original headers were kept")
    else:
        if m["value"] != value:
            problems.append(f"offset {off}: dead letter value differs from the record")
        if hdrs and headers_named(m, "x-kind") != [dict(hdrs)["x-kind"]]:
            problems.append(f"offset {off}: original headers not kept")
    if exp is None:
        problems.append(f"offset {off}: a valid request dead-lettered ({cls}: {text})")
        return cls, orig
    if orig != exp["class"]:
        problems.append(f"offset {off} ({exp['kind']}): class {cls} / original {orig}, "
                        f"expected {exp['class']}: {text}")
    if exp.get("size") == "reduced" and cls != "record_too_large":
        problems.append(f"offset {off} ({exp['kind']}): written whole ({len(m['value'] or b'')} "
                        f"bytes) over a DLQ limit of {DLQ_MAX_BYTES}")
    for part in exp.get("text", ()):
        if part not in text:
            problems.append(f"offset {off} ({exp['kind']}): '{part}' not in dispatch.error {text}")
    if exp["kind"] == "forged_headers":
        for name, val in FORGED:
            if headers_named(m, "x-original-" + name) != [val]:
                problems.append(f"offset {off}: forged {name} not renamed x-original-{name}")
    return cls, orig


def check_result(res, raw, rec, exp, topic, problems):
    """Checks one result against its record; returns its status/reason."""
    off = res["source"]["offset"]
    if exp and exp["kind"] in PARSE_KINDS:
        problems.append(f"offset {off} ({exp['kind']}): a result for a malformed record: {res}")
        return "?"
    req = json.loads(rec[1])
    if res["request_id"] != req["request_id"] or raw["key"] != req["parcel_id"].encode():
        problems.append(f"offset {off}: result {res['request_id']} for request "
                        f"{req['request_id']}")
    if res["source"]["topic"] != topic or res["source"]["partition"] != 0:
        problems.append(f"offset {off}: source {res['source']}")
    got = (res["status"], res.get("reason"))
    if exp is None:
        if got not in (("assigned", None), ("rejected", "courier_unavailable")):
            problems.append(f"offset {off}: {got} for a valid request")
    elif "reason" in exp:
        if got != ("rejected", exp["reason"]):
            problems.append(f"offset {off} ({exp['kind']}): {got}, expected {exp['reason']}")
    elif exp["kind"] == "eta_poison":
        # Sane: both legs take time, and no car is slower than 1 m/s on
        # legs of a few km.
        eta, pickup = res.get("eta_seconds", -1), res.get("pickup_eta_seconds", -1)
        dist = res.get("distance_m", 0)
        if got != ("assigned", None) or not 0 < pickup < eta <= dist < 50000:
            problems.append(f"offset {off} (eta_poison): {got}, eta_seconds {eta}, "
                            f"pickup_eta_seconds {pickup}, distance_m {dist}")
    else:
        problems.append(f"offset {off} ({exp['kind']}): a result {got}, expected a dead "
                        f"letter of class {exp['class']}")
    return "/".join(x for x in got if x)


def test_poison_mix(topics, redis_addr, redis_db, dispatchd_factory):
    assert N // EVERY >= len(KINDS), f"{N} records hold fewer poisons than the {len(KINDS)} kinds"
    set_topic_config(topics.brokers, topics.requests, max_message_bytes=INPUT_MAX_BYTES)
    set_topic_config(topics.brokers, topics.dlq, max_message_bytes=DLQ_MAX_BYTES)
    seed(redis_addr, redis_db[0], COURIERS, PARCELS, available_pct=100)
    r = redis_db[1]
    records, poisons = build(r)
    t0 = time.monotonic()
    p = producer(topics.brokers, message_max_bytes=8_000_000, compression_type="lz4",
                 linger_ms=5)
    assert produce_with(p, topics.requests, records) == N
    produce_s = time.monotonic() - t0
    assert end_offsets(topics.brokers, topics.requests) == {0: N}

    d = dispatchd_factory(extra_env=HTTP_ENV)
    port = http_port(d)
    d.wait_assigned()
    t0 = time.monotonic()
    try:
        wait_committed_to_end(topics)
    except AssertionError:
        pass  # a stall: the figures below say where
    run_s = time.monotonic() - t0
    m = samples(metrics(port))
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    try:
        rc = d.wait(timeout=60)
    except subprocess.TimeoutExpired:
        rc = None
        d.kill()
    exit_s = time.monotonic() - t0
    ends = end_offsets(topics.brokers, topics.requests)
    committed = committed_offsets(topics.brokers, topics.group, topics.requests, 1)

    results = consume_to_end(topics.brokers, topics.results)
    dlq = consume_to_end(topics.brokers, topics.dlq)
    problems = []
    answers = {}  # offset -> [(what, bytes)]
    outcome = {}  # result status/reason or dead-letter class -> count
    by_class, by_orig = {}, {}
    reduced_small = []
    for raw in results:
        try:
            res = json.loads(raw["value"])
            VALIDATOR.validate(res)
        except (ValueError, jsonschema.ValidationError) as e:
            problems.append(f"a result that is not one: {raw['value'][:80]!r} ({e})")
            continue
        off = res["source"]["offset"]
        if not 0 <= off < N:
            problems.append(f"a result for offset {off}")
            continue
        answers.setdefault(off, []).append(("result", raw["value"]))
        what = check_result(res, raw, records[off], poisons.get(off), topics.requests, problems)
        outcome[what] = outcome.get(what, 0) + 1
    for raw in dlq:
        raw["src"] = (headers_named(raw, "dispatch.source.offset") or [b"?"])[-1].decode()
        off = int(one_header(raw, "dispatch.source.offset", problems) or -1)
        raw["src"] = off
        if not 0 <= off < N:
            problems.append(f"a dead letter for offset {off}")
            continue
        answers.setdefault(off, []).append(("dead_letter", raw["value"]))
        cls, orig = check_dead_letter(raw, records[off], poisons.get(off), problems)
        by_class[cls] = by_class.get(cls, 0) + 1
        by_orig[orig] = by_orig.get(orig, 0) + 1
        exp = poisons.get(off)
        if cls == "record_too_large" and exp and exp.get("size") != "reduced":
            reduced_small.append((off, exp["kind"]))

    missing = [o for o in range(N) if o not in answers]
    twice = {o: [w for w, _ in a] for o, a in answers.items()
             if len(a) > 1 and not all(w == "result" and v == a[0][1] for w, v in a)}
    dups = sum(len(a) - 1 for o, a in answers.items() if o not in twice)
    legs = [(leg, r.get(leg)) for e in poisons.values() for leg in e.get("legs", ())]
    if any(v == ETA_POISON for _, v in legs):
        problems.append(f"poisoned ETA legs left in the cache: {legs}")

    # What /metrics counted: each dead letter under its original class, and
    # a reduced one under record_too_large as well.
    want_dlq = dict(by_orig)
    if by_class.get("record_too_large"):
        want_dlq["record_too_large"] = by_class["record_too_large"]
    got_dlq = {k.split('"')[1]: int(v) for k, v in m.items()
               if k.startswith("dispatchd_dlq_total{") and v}
    want_cache_errors = sum(len(e.get("legs", ())) for e in poisons.values())
    cache_errors = int(m.get('dispatchd_eta_cache_total{result="error"}', 0))
    rejected_lines = d.events("dead_letter_rejected")

    kinds_seen = {}
    for e in poisons.values():
        kinds_seen[e["kind"]] = kinds_seen.get(e["kind"], 0) + 1
    print(f"\npoison mix: {N} records on 1 partition, {len(poisons)} poisons of "
          f"{len(kinds_seen)} kinds ({min(kinds_seen.values())}-{max(kinds_seen.values())} "
          f"each), produced in {produce_s:.1f}s")
    print(f"  results: {len(results)} {dict(sorted(outcome.items()))}")
    print(f"  dead letters: {len(dlq)} by header class {dict(sorted(by_class.items()))}, "
          f"by original class {dict(sorted(by_orig.items()))}; small ones written reduced "
          f"(batch refused): {reduced_small}")
    print(f"  /metrics dlq_total {dict(sorted(got_dlq.items()))}; eta_cache_total"
          f"{{result=\"error\"}} {cache_errors} for {want_cache_errors} poisoned legs")
    print(f"  unanswered {len(missing)}, answered twice {len(twice)}, identical duplicates "
          f"{dups}; dead_letter_rejected lines {len(rejected_lines)}")
    print(f"  committed {committed} vs end {ends} after {run_s:.1f}s; SIGTERM -> exit {rc} "
          f"in {exit_s:.2f}s")

    # Every problem is collected, so a run shows them all at once.
    if missing:
        problems.insert(0, f"{len(missing)} offset(s) never answered: " + ", ".join(
            f"{o} ({poisons.get(o, {}).get('kind', 'valid')})" for o in missing[:10]))
    if twice:
        problems.insert(0, f"answered more than once: {list(twice.items())[:5]}")
    if committed != {0: N} or ends != {0: N}:
        at = committed.get(0)
        problems.append(f"committed {committed}, end {ends} after {run_s:.0f}s; the record "
                        f"at the committed offset: {poisons.get(at, {}).get('kind', 'valid')}")
    if rc != 0:
        problems.append(f"exit status {rc}")
    if exit_s >= 5:
        problems.append(f"SIGTERM took {exit_s:.1f}s")
    if got_dlq != want_dlq:
        problems.append(f"/metrics dlq_total {got_dlq} != dead letters {want_dlq}")
    if cache_errors != want_cache_errors:
        problems.append(f"eta_cache_total{{result=\"error\"}} {cache_errors} != {want_cache_errors}")
    if rejected_lines:
        problems.append(f"dead letters given up: {rejected_lines[:2]}")
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])
