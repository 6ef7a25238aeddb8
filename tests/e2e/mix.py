"""A deterministic mix of dispatch requests of every kind the product must
answer, with what each one must produce. Used by the system tests."""
import json
import random

# Seeded data (see dispatchd-seed): couriers c-0001..c-NNNN, parcels
# p-00001..p-NNNNN. The tests seed with --available-pct 100 and then mark a
# known set of couriers busy/offline, so every expectation is exact.


class Expect:
    RESULT = "result"
    DLQ = "dlq"


def make_mix(n, couriers, parcels, seed=7, now_ms=None):
    """Returns (records, expectations). records: list of (key, value, headers);
    expectations: dict request_id -> dict(kind=..., status/reason or dlq reason).
    DLQ records are identified by an 'x-case' header."""
    rnd = random.Random(seed)
    records, expect = [], {}
    unavailable = [f"c-{i:04d}" for i in range(1, couriers + 1) if i % 10 == 0]
    # The couriers used for 'competing' pairs are reserved by nobody else.
    competing_pool = [f"c-{i:04d}" for i in range(1, couriers + 1) if i % 10 == 5]
    free = [f"c-{i:04d}" for i in range(1, couriers + 1) if i % 10 not in (0, 5)]
    dlq_n = 0

    def req(rid, **kw):
        d = {"request_id": rid, "parcel_id": kw.pop("parcel", f"p-{rnd.randint(1, parcels):05d}")}
        d.update(kw)
        return d

    def add(rid, body, exp, key=None, headers=None):
        value = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        k = key if key is not None else (body.get("parcel_id", "x").encode() if isinstance(body, dict) else b"bad")
        records.append((k, value, headers))
        expect[rid] = exp

    comp_i = 0
    for i in range(n):
        rid = f"r-{seed}-{i:06d}"
        kind = rnd.random()
        if kind < 0.55:
            cands = rnd.sample(free, min(3, len(free)))
            add(rid, req(rid, candidates=cands), {"kind": Expect.RESULT, "status": ("assigned", "rejected"),
                                                   "reason": (None, "no_candidate_available")})
        elif kind < 0.62:
            add(rid, req(rid, courier_id=f"c-x{i}"), {"kind": Expect.RESULT, "status": ("rejected",),
                                                     "reason": ("unknown_courier",)})
        elif kind < 0.69:
            add(rid, req(rid, parcel=f"p-none-{i}", courier_id=free[0]),
                {"kind": Expect.RESULT, "status": ("rejected",), "reason": ("unknown_parcel",)})
        elif kind < 0.76:
            add(rid, req(rid, courier_id=rnd.choice(unavailable)),
                {"kind": Expect.RESULT, "status": ("rejected",), "reason": ("courier_unavailable",)})
        elif kind < 0.80 and comp_i < len(competing_pool):
            c = competing_pool[comp_i]
            comp_i += 1
            for j in (0, 1):
                r2 = f"{rid}-{j}"
                add(r2, req(r2, courier_id=c), {"kind": Expect.RESULT, "status": ("assigned", "rejected"),
                                                "reason": (None, "courier_unavailable"), "competing": c})
        elif kind < 0.85:
            # Expired: a deadline of 1 ms relative to the message timestamp.
            add(rid, req(rid, courier_id=rnd.choice(free), deadline_ms=1),
                {"kind": Expect.RESULT, "status": ("expired",), "reason": ("deadline_expired",)})
        else:
            dlq_n += 1
            case = rnd.choice(["not_json", "schema", "too_large", "invalid_utf8", "bad_id"])
            if case == "not_json":
                body = b'{"request_id": "' + rid.encode() + b'", '
            elif case == "schema":
                body = json.dumps({"request_id": rid, "parcel_id": "p-00001"}).encode()
            elif case == "too_large":
                body = json.dumps({"request_id": rid, "parcel_id": "p-00001", "courier_id": "c-0001",
                                   "pad": "x" * 70000}).encode()
            elif case == "invalid_utf8":
                body = b'{"request_id": "' + rid.encode() + b'", "parcel_id": "p-\xff\xfe"}'
            else:
                body = json.dumps({"request_id": rid, "parcel_id": "p 1/2", "courier_id": "c-0001"}).encode()
            add(rid, body, {"kind": Expect.DLQ, "reason": case}, key=rid.encode(),
                headers=[("x-case", case.encode()), ("x-rid", rid.encode())])
    return records, expect, unavailable


def mark_unavailable(r, unavailable):
    pipe = r.pipeline(transaction=False)
    for i, c in enumerate(unavailable):
        pipe.hset(f"courier:{c}", "status", "busy" if i % 2 else "offline")
    pipe.execute()
