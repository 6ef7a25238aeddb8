"""System tests of lost Redis state (issue 9, section 4): dispatchd runs as
a subprocess against the real broker and redis-server. When the data set
under a running dispatchd is flushed and only the fleet is reloaded, a
request for an already reserved courier must not be answered from the
empty state (a double booking, and a redelivery contradicting its first
answer): dispatchd reports the loss (/readyz 503 with the reason, an error
log line, dispatchd_redis_state_lost_total) and holds the request until an
operator acknowledges with POST /admin/redis-state-lost/ack. A brand-new,
empty Redis at first start is no loss. Every wait is for a condition with a
deadline."""
import http.client
import json
import re

from conftest import MULT, seed, wait_for
from http_probe import http_port
from kafka_io import consume_to_end, produce

HTTP_ENV = {"DISPATCHD_HTTP": "127.0.0.1:0", "DISPATCHD_LOG_FORMAT": "json"}
LOST_REASON = "redis state lost"
MARKER = "dispatchd:store_id"


def call(port, path, method="GET"):
    """(status, body str) of one request."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5 * MULT)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def readyz(port):
    status, body = call(port, "/readyz")
    return status, json.loads(body)["reasons"]


def lost_total(port):
    status, body = call(port, "/metrics")
    assert status == 200
    m = re.search(r"^dispatchd_redis_state_lost_total (\S+)$", body, re.M)
    assert m, "dispatchd_redis_state_lost_total is not exported"
    return float(m.group(1))


def request(rid, parcel, courier):
    body = {"request_id": rid, "parcel_id": parcel, "courier_id": courier}
    return (parcel.encode(), json.dumps(body).encode(), None)


def answers(brokers, topic):
    """request_id -> list of result documents on the topic so far."""
    out = {}
    for m in consume_to_end(brokers, topic):
        doc = json.loads(m["value"])
        out.setdefault(doc["request_id"], []).append(doc)
    return out


def wait_answer(brokers, topic, rid, timeout=60):
    return wait_for(lambda: answers(brokers, topic).get(rid), timeout,
                    f"the result of {rid}", interval=0.2)


def worker_holds(port, rid):
    status, body = call(port, "/debug/workers")
    assert status == 200
    return any(w.get("request_id") == rid for w in json.loads(body)["workers"])


def test_redis_state_loss_is_reported_and_held_until_acknowledged(
        topics, redis_addr, redis_db, dispatchd_factory):
    db, r = redis_db
    seed(redis_addr, db, couriers=20, parcels=20, available_pct=100)
    d = dispatchd_factory(extra_env=HTTP_ENV)
    port = http_port(d)
    d.wait_assigned()

    produce(topics.brokers, topics.requests, [request("r-1", "p-00001", "c-0001")])
    first = wait_answer(topics.brokers, topics.results, "r-1")
    assert first[0]["status"] == "assigned" and first[0]["courier_id"] == "c-0001"
    store_id = r.get(MARKER)
    assert readyz(port)[0] == 200

    # The data set is lost under the running process; only the fleet is
    # loaded again (the same seed: the same couriers and parcels).
    r.flushdb()
    seed(redis_addr, db, couriers=20, parcels=20, available_pct=100)
    produce(topics.brokers, topics.requests, [request("r-2", "p-00002", "c-0001")])

    def lost_reported():
        status, reasons = readyz(port)
        return status == 503 and any(LOST_REASON in x for x in reasons)
    wait_for(lambda: lost_reported() or "r-2" in answers(topics.brokers, topics.results),
             30, "/readyz 503 with the lost-state reason, or an answer to r-2")
    assert "r-2" not in answers(topics.brokers, topics.results), \
        f"r-2 answered from the lost state: {answers(topics.brokers, topics.results)['r-2']}"
    assert lost_reported(), readyz(port)
    status, reasons = readyz(port)
    print(f"/readyz {status} {reasons}")
    assert store_id is not None and len(store_id) == 32
    assert lost_total(port) == 1
    errors = [e for e in d.events("redis_state_lost") if e.get("level") == "error"]
    assert len(errors) == 1, d.log_text()[-3000:]
    print("log:", errors[0]["msg"])

    # Held, not answered: a worker keeps r-2; nothing of it was written.
    wait_for(lambda: worker_holds(port, "r-2"), 10, "a worker holding r-2")
    assert "r-2" not in answers(topics.brokers, topics.results)
    assert r.get("result:r-2") is None and r.get("reservation:c-0001") is None
    assert call(port, "/readyz")[0] == 503  # still, until acknowledged

    status, body = call(port, "/admin/redis-state-lost/ack", method="POST")
    print(f"ack: {status} {body.strip()}")
    assert status == 202
    second = wait_answer(topics.brokers, topics.results, "r-2")
    assert len(second) == 1
    wait_for(lambda: readyz(port)[0] == 200, 30, "/readyz 200 after the ack")
    assert r.get(MARKER) == store_id  # the remembered id, written back
    assert lost_total(port) == 1
    assert call(port, "/admin/redis-state-lost/ack", method="POST")[0] == 409
    assert len(answers(topics.brokers, topics.results)["r-1"]) == 1


def test_redis_fresh_database_is_no_loss(topics, redis_addr, redis_db, dispatchd_factory):
    db, r = redis_db
    assert r.dbsize() == 0
    d = dispatchd_factory(extra_env=HTTP_ENV)
    port = http_port(d)
    d.wait_assigned()
    # The fleet arrives after dispatchd connected to the empty database.
    seed(redis_addr, db, couriers=5, parcels=5, available_pct=100)
    produce(topics.brokers, topics.requests, [request("r-f1", "p-00001", "c-0001")])
    doc = wait_answer(topics.brokers, topics.results, "r-f1")[0]
    assert doc["status"] == "assigned"
    wait_for(lambda: readyz(port)[0] == 200, 30, "/readyz 200")
    assert lost_total(port) == 0
    assert not d.events("redis_state_lost")
    assert r.get(MARKER) is not None
