# SPDX-License-Identifier: MIT
"""The two backlogs of `make bench` and the Redis state each drain starts
from. It generates the requests, seeds a database with the fleet
(dispatchd-seed), pre-warms the ETA cache for backlog B, puts a database
back into its prepared state between drains, and reads Redis counters
(INFO commandstats, net bytes, the server's pid). It knows nothing of the
contenders.

Backlog A: single-courier requests whose two ETA legs are never in the
cache: request i names parcel (i mod 99,999) + 1 and a courier of vehicle
(i div 99,999) mod 4, so no (vehicle, parcel) pair repeats before 399,996
requests. Backlog B: 4 distinct random candidates and a random parcel;
its database is pre-warmed with every ETA key a drain of B writes, minus a
deterministic 5 % (a hash of the key), so about 95 % of the legs hit.

dispatchd-seed writes at most 9,999 couriers: once every courier holds a
reservation (--reservation-ttl, 5 min), later requests are answered with a
rejection by the same reservation script; the work per request (loads,
ETA, result documents, script call) is the same either way.

Prepared state: the fleet (no TTL) and, for B, the kept ETA keys made
persistent. Everything a drain writes has a TTL (results, reservations,
ETA entries), so a reset deletes every key that has one."""
import hashlib
import random
import subprocess
import time

import redis as redislib

COURIERS, PARCELS = 9999, 99999

# Keys are walked with SCAN in chunks, pipelined, never by one script over
# the whole keyspace: a script that long makes Redis answer BUSY to every
# other client (the bench's own counters included) on a loaded machine.
SCAN_COUNT = 2000


def eta_dropped(key, drop_pct):
    """True for the drop_pct % of ETA keys to drop (by a hash of the key)."""
    return int(hashlib.sha1(key).hexdigest()[:6], 16) % 100 < drop_pct


def requests_a(n, prefix="a"):
    """[(key, value, None)] of backlog A."""
    rnd = random.Random(11)
    out = []
    for i in range(n):
        parcel = f"p-{i % PARCELS + 1:05d}"
        v = (i // PARCELS) % 4
        courier = v + 4 * rnd.randint(0, (COURIERS - 4) // 4)
        courier = courier or 4 * ((COURIERS - 1) // 4)
        value = ('{"request_id":"%s-%07d","parcel_id":"%s","courier_id":"c-%04d"}'
                 % (prefix, i, parcel, courier))
        out.append((parcel.encode(), value.encode(), None))
    return out


def requests_b(n):
    """[(key, value, None)] of backlog B."""
    rnd = random.Random(22)
    out = []
    for i in range(n):
        parcel = f"p-{rnd.randint(1, PARCELS):05d}"
        cands = ",".join(f'"c-{c:04d}"' for c in rnd.sample(range(1, COURIERS + 1), 4))
        value = '{"request_id":"b-%07d","parcel_id":"%s","candidates":[%s]}' % (i, parcel, cands)
        out.append((parcel.encode(), value.encode(), None))
    return out


class Db:
    """One Redis database of the bench."""

    def __init__(self, host, port, db):
        self.host, self.port, self.db = host, port, db
        self.r = redislib.Redis(host=host, port=port, db=db)
        self.prepared = 0
        self.eta_kept = 0

    def url(self):
        return f"redis://{self.host}:{self.port}/{self.db}"

    def seed(self, seed_bin):
        self.r.flushdb()
        subprocess.run([seed_bin, "--redis", self.url(), "--couriers", str(COURIERS),
                        "--parcels", str(PARCELS), "--available-pct", "100", "--seed", "1"],
                       check=True, capture_output=True)
        self.prepared = self.r.dbsize()

    def keep_eta(self, drop_pct=5):
        """After a warm-up drain: the ETA keys become persistent except
        drop_pct % of them; everything else the drain wrote goes."""
        kept = 0
        for keys in self.scan_chunks("eta:*"):
            pipe = self.r.pipeline(transaction=False)
            for k in keys:
                if eta_dropped(k, drop_pct):
                    pipe.unlink(k)
                else:
                    pipe.persist(k)
                    kept += 1
            pipe.execute()
        self.eta_kept = kept
        self.prepared = 0
        self.reset()
        self.prepared = self.r.dbsize()
        return self.eta_kept

    def reset(self):
        """Back to the prepared state; returns the keys deleted."""
        n = 0
        for keys in self.scan_chunks("*"):
            pipe = self.r.pipeline(transaction=False)
            for k in keys:
                pipe.pttl(k)
            doomed = [k for k, ttl in zip(keys, pipe.execute()) if ttl > 0]
            if doomed:
                self.r.unlink(*doomed)
            n += len(doomed)
        left = self.r.dbsize()
        if self.prepared and abs(left - self.prepared) > 10:
            print(f"bench: warning: db {self.db} has {left} keys after a reset, "
                  f"{self.prepared} prepared (a key without TTL written by a drain?)")
        return n

    def eta_keys(self):
        return sum(len(keys) for keys in self.scan_chunks("eta:*"))

    def scan_chunks(self, match):
        """Lists of keys matching `match`, a SCAN batch at a time."""
        cursor = 0
        while True:
            cursor, keys = self.r.scan(cursor, match=match, count=SCAN_COUNT)
            if keys:
                yield keys
            if cursor == 0:
                return


class RedisServer:
    """Counters of the redis-server (all databases)."""

    def __init__(self, host, port):
        self.r = redislib.Redis(host=host, port=port)

    def pid(self):
        return int(self.r.info("server")["process_id"])

    def compact_aof(self, timeout_s=300):
        """When the server persists to an AOF: rewrites it now
        (BGREWRITEAOF) and waits until no rewrite is running or scheduled,
        so that every drain starts from a compacted AOF. Redis starts a
        rewrite by itself once the AOF has grown by
        auto-aof-rewrite-percentage (100) since the last one; left to that,
        a rewrite from the writes of earlier drains (and of the resets)
        lands in whichever drain comes next, and while its child runs the
        server stops resizing its dicts and the child takes a share of the
        two cores. A rewrite during a drain is then one its own writes
        caused; its child's CPU is counted in the redis column
        (contenders.cpu_us with children)."""
        if int(self.r.info("persistence").get("aof_enabled", 0)) != 1:
            return
        deadline = time.monotonic() + timeout_s
        while self._rewriting():  # one the server started by itself
            self._wait(deadline)
        self.r.bgrewriteaof()
        while self._rewriting():
            self._wait(deadline)

    def _rewriting(self):
        p = self.r.info("persistence")
        return int(p["aof_rewrite_in_progress"]) or int(p["aof_rewrite_scheduled"])

    @staticmethod
    def _wait(deadline):
        if time.monotonic() > deadline:
            raise SystemExit("bench: Redis AOF rewrite still running after the deadline")
        time.sleep(0.05)

    def counters(self):
        """{command: calls} plus net_in / net_out bytes."""
        out = {}
        for k, v in self.r.info("commandstats").items():
            out[k.replace("cmdstat_", "")] = int(v["calls"])
        st = self.r.info("stats")
        out["@net_in"] = int(st["total_net_input_bytes"])
        out["@net_out"] = int(st["total_net_output_bytes"])
        out["@aof_rewrites"] = int(self.r.info("persistence").get("aof_rewrites", 0))
        return out

