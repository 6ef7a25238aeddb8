# SPDX-License-Identifier: MIT
"""System test of data from Redis that dispatchd must not trust (real broker,
real redis-server): a corrupted stored result, another request's result
under a request's key, a cached ETA no route can take, and courier and
parcel hashes that exist but hold invalid data. Each request gets the
answer the README's failure table gives, and every input offset is
committed."""
import http.client
import json
import re
import signal

import jsonschema

from conftest import MULT, wait_for
from http_probe import http_port
from kafka_io import committed_offsets, consume_to_end, produce
from pipeline_checks import VALIDATOR, header, produced, wait_committed_to_end
from poison_setup import eta_key

ALEX = ("52.521918", "13.413215")  # Alexanderplatz
TOR = ("52.516275", "13.377704")  # Brandenburger Tor
# The legs of c-good (at Alexanderplatz) for p-1 (Tor -> Alexanderplatz),
# by car: 389 s each in the route model (tests/unit/test_dispatch.c).
LEG1 = eta_key("car", ALEX, TOR)
LEG2 = eta_key("car", TOR, ALEX)

OTHER_RESULT = (b'{"request_id":"r-other","status":"rejected","reason":"unknown_courier",'
                b'"parcel_id":"p-1","courier_id":"c-good","source":{"topic":"t","partition":0,'
                b'"offset":5},"processed_at":"2026-01-01T00:00:00.000Z"}')
GARBAGE = b"\x00not a result\xff{"


def seed_bad_data(r):
    r.hset("courier:c-good", mapping={"lat": ALEX[0], "lon": ALEX[1], "vehicle": "car",
                                      "status": "available"})
    r.hset("courier:c-good2", mapping={"lat": TOR[0], "lon": TOR[1], "vehicle": "bike",
                                       "status": "available"})
    r.hset("courier:c-abc", mapping={"lat": "abc", "lon": ALEX[1], "vehicle": "car",
                                     "status": "available"})
    r.hset("courier:c-181", mapping={"lat": ALEX[0], "lon": "181", "vehicle": "car",
                                     "status": "available"})
    r.hset("courier:c-rocket", mapping={"lat": ALEX[0], "lon": ALEX[1], "vehicle": "rocket",
                                        "status": "available"})
    r.hset("courier:c-nostatus", mapping={"lat": ALEX[0], "lon": ALEX[1], "vehicle": "car"})
    r.hset("parcel:p-1", mapping={"pickup_lat": TOR[0], "pickup_lon": TOR[1],
                                  "dropoff_lat": ALEX[0], "dropoff_lon": ALEX[1]})
    r.hset("parcel:p-nodrop", mapping={"pickup_lat": TOR[0], "pickup_lon": TOR[1]})
    r.set("result:r-1", GARBAGE)
    r.set("result:r-2", OTHER_RESULT)
    r.set(LEG1, "999999999999999999")
    r.set(LEG2, "0")  # two different cells are never 0 s apart


# request id -> (request fields, expected status, reason, courier_id)
CASES = {
    "r-3": ({"courier_id": "c-good"}, "assigned", None, "c-good"),
    "r-4": ({"courier_id": "c-abc"}, "rejected", "courier_data_invalid", "c-abc"),
    "r-5": ({"courier_id": "c-181"}, "rejected", "courier_data_invalid", "c-181"),
    "r-6": ({"courier_id": "c-rocket"}, "rejected", "courier_data_invalid", "c-rocket"),
    "r-7": ({"courier_id": "c-nostatus"}, "rejected", "courier_data_invalid", "c-nostatus"),
    "r-8": ({"courier_id": "c-good", "parcel_id": "p-nodrop"}, "rejected",
            "parcel_data_invalid", "c-good"),
    "r-9": ({"candidates": ["c-abc", "c-rocket", "c-nostatus"]}, "rejected",
            "courier_data_invalid", None),
    "r-10": ({"courier_id": "c-none"}, "rejected", "unknown_courier", "c-none"),
    "r-11": ({"candidates": ["c-181", "c-good2"]}, "assigned", None, "c-good2"),
}
DEAD = ("r-1", "r-2")  # stored result corrupted / of another request


def request(rid, fields):
    req = {"request_id": rid, "parcel_id": "p-1"}
    req.update(fields)
    return json.dumps(req, separators=(",", ":")).encode()


def metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5 * MULT)
    try:
        c.request("GET", "/metrics")
        body = c.getresponse().read().decode()
    finally:
        c.close()
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series.replace("dispatchd_", "", 1)] = float(value)
    return out


def test_redis_data_is_validated(topics, redis_db, dispatchd_factory):
    r = redis_db[1]
    seed_bad_data(r)
    records = [(rid.encode(), request(rid, {"courier_id": "c-good"}), None) for rid in DEAD]
    records += [(rid.encode(), request(rid, f[0]), None) for rid, f in CASES.items()]
    d = dispatchd_factory(extra_env={"DISPATCHD_HTTP": "127.0.0.1:0"})
    port = http_port(d)
    d.wait_assigned()
    assert produce(topics.brokers, topics.requests, records) == len(records)
    wait_for(lambda: produced(topics.brokers, topics.results) + produced(topics.brokers, topics.dlq)
             >= len(records), 60, "an answer to every request")
    ends = wait_committed_to_end(topics)
    m = metrics(port)
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    assert committed_offsets(topics.brokers, topics.group, topics.requests,
                             topics.partitions) == ends
    assert sum(ends.values()) == len(records)
    results = consume_to_end(topics.brokers, topics.results)
    dlq = consume_to_end(topics.brokers, topics.dlq)

    # Every problem is collected, so a run shows them all at once.
    problems = []

    def expect(ok, what):
        if not ok:
            problems.append(what)

    # 1. A stored result that is garbage or another request's: a dead letter
    # of class store_data_error, never republished; the record stays.
    by_rid, republished = {}, []
    for x in results:
        try:
            res = json.loads(x["value"])
            VALIDATOR.validate(res)
        except ValueError:
            res = None
        except jsonschema.ValidationError:
            res = None
        if res is None or res["request_id"] == "r-other":
            republished.append(x["value"])
        else:
            by_rid[res["request_id"]] = x
    expect(not republished, f"stored bytes republished as results: {republished}")
    expect(sorted(header(x, "dispatch.error.class") for x in dlq) == [b"store_data_error"] * 2,
           f"dead-letter classes {[header(x, 'dispatch.error.class') for x in dlq]}")
    dead = {json.loads(x["value"])["request_id"]: x for x in dlq}
    expect(set(dead) == set(DEAD), f"dead letters for {sorted(dead)}")
    for rid, x in dead.items():
        expect(x["value"] == request(rid, {"courier_id": "c-good"}), "original value kept")
        expect(header(x, "dispatch.error").startswith(f"result:{rid} is not a valid".encode()),
               f"{rid}: dispatch.error {header(x, 'dispatch.error')}")
    if "r-2" in dead:
        expect(b"names another request" in header(dead["r-2"], "dispatch.error"), "r-2 error text")
    expect(r.get("result:r-1") == GARBAGE and r.get("result:r-2") == OTHER_RESULT,
           "the corrupted records are left in Redis")

    # 2. and 3. Every other request answered as specified, schema-valid.
    for rid, (_, status, reason, courier) in CASES.items():
        if rid not in by_rid:
            problems.append(f"{rid}: no result")
            continue
        res = json.loads(by_rid[rid]["value"])
        VALIDATOR.validate(res)
        got = (res["status"], res.get("reason"), res.get("courier_id"))
        expect(got == (status, reason, courier), f"{rid}: {got} != {(status, reason, courier)}")
        expect(r.get(f"result:{rid}") == by_rid[rid]["value"], f"{rid}: not the stored bytes")
    # The poisoned ETA legs were recomputed (389 s each by car) and rewritten.
    r3 = by_rid.get("r-3", {"value": b""})["value"]
    expect(r3.startswith(b'{"request_id":"r-3","status":"assigned","parcel_id":"p-1",'
                         b'"courier_id":"c-good","eta_seconds":778,"pickup_eta_seconds":389,'
                         b'"distance_m":6457,"eta_cached":false,"source":{'), f"r-3: {r3}")
    expect((r.get(LEG1), r.get(LEG2)) == (b"389", b"389"),
           f"ETA cache after the run: {r.get(LEG1)}, {r.get(LEG2)}")
    expect(r.get("reservation:c-good") == b"r-3", "c-good reserved by r-3")
    assert not problems, "\n".join(problems)

    # Counted and logged (each warning at most once per 10 s).
    assert m['dlq_total{reason="store_data_error"}'] == 2
    assert m['requests_total{outcome="dead_letter"}'] == 2
    assert m['requests_total{outcome="rejected"}'] == 7
    assert m['requests_total{outcome="assigned"}'] == 2
    assert m['eta_cache_total{result="error"}'] == 2
    assert m["ledger_hits_total"] == 0
    logged = {ev: d.events(ev) for ev in ("stored_result_invalid", "fleet_data_invalid",
                                          "eta_cache_invalid")}
    assert all(logged.values()), {k: len(v) for k, v in logged.items()}
    assert all(ev["level"] == "error" for ev in logged["stored_result_invalid"])
    assert re.search(r"result:r-[12] is not a valid result", logged["stored_result_invalid"][0]["msg"])
    assert re.search(r"(courier|parcel):\S+ holds invalid data \(field \w+\)",
                     logged["fleet_data_invalid"][0]["msg"])
    assert LEG1 in logged["eta_cache_invalid"][0]["msg"] or LEG2 in logged["eta_cache_invalid"][0]["msg"]
    n_lines = sum(len(v) for v in logged.values())
    print(f"\nredis data: {len(results)} results, {len(dlq)} store_data_error dead letters, "
          f"r-3 eta_seconds 778 (cache held 999999999999999999), committed {sum(ends.values())} "
          f"= end offsets; {n_lines} data warning line(s) for 2+7+2 bad reads")
