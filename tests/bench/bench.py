#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`make bench`: throughput side by side, in one run against the local
stack. Backlogs A and B (backlog.py) are preloaded once; each repeat then
drains the same backlog through every contender in turn (the order rotates
per repeat): dd-passthrough, dispatchd of this tree, dispatchd built from
DD_BENCH_BASELINE (if set) and dispatchd of this tree with each setting of
DD_BENCH_SETTINGS. It prints, per backlog and contender, msg/s
min/median/max, the ratios of the medians to the baseline and to
pass-through, CPU µs per request of the contender, redis-server and the
broker, peak RSS, and Redis commands and bytes per request; with
DD_BENCH_LATENCY=1 an open-loop latency run per contender follows
(latency.py). It asserts nothing: compare figures of one run, not across
runs or machines.

Env: DD_BENCH_A (150000), DD_BENCH_B (100000), DD_BENCH_REPEATS (3),
DD_BENCH_BASELINE (commit; default bf61b81, the reference the targets are
set against; "none": no baseline contender),
DD_BENCH_SETTINGS ("name:VAR=v,VAR=v;..."), DD_BENCH_PASSTHROUGH_ARGS
(adds a second pass-through contender with these arguments, e.g. "-X
consumer.queued.min.messages=100000"), DD_BENCH_PARTITIONS (6), DD_BENCH_LATENCY (0),
DD_BENCH_RATE (msg/s; default half the contender's median on A),
DD_BENCH_LATENCY_SECONDS (10), DD_BENCH_TIMEOUT (900 s per drain), BUILD.
Last, it prints the performance targets (TARGETS) with this tree's figures
and whether each is met."""
import os
import shlex
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import backlog  # noqa: E402
import contenders as ct  # noqa: E402
import drain as dr  # noqa: E402
import latency  # noqa: E402
from kafka_io import produce  # noqa: E402


def env_int(name, default):
    return int(os.environ.get(name) or default)


def kafka_pid():
    stack = os.environ.get("DISPATCHD_STACK_DIR") or os.path.join(ct.ROOT, ".stack")
    try:
        with open(os.path.join(stack, "kafka.pid")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def fmt(v, spec):
    return "-" if v is None or v != v else format(v, spec)


def med(figs, key):
    vals = [f[key] for f in figs if f.get(key) is not None]
    return statistics.median(vals) if vals else None


def per_request(figs):
    """Median over the repeats of Redis commands (total and by command)
    and bytes in / out per request."""
    out = {}
    keys = set().union(*(f["redis"].keys() for f in figs))
    for k in keys:
        out[k] = statistics.median(f["redis"].get(k, 0) / f["n"] for f in figs)
    return out


def report(title, runs, order, base_name, pass_name):
    print(f"\n{title}")
    hdr = (f"  {'contender':<24} {'msg/s min':>10} {'median':>9} {'max':>9} {'x base':>7} "
           f"{'x pass':>7} {'µs/req':>7} {'redis':>6} {'aof':>5} {'kafka':>6} {'RSS MiB':>8} "
           f"{'cmd/req':>8} {'B in/req':>9} {'B out/req':>9}")
    print(hdr)
    meds = {c: med(runs[c], "rate") for c in order if runs.get(c)}
    for c in order:
        figs = runs.get(c)
        if not figs:
            continue
        rates = [f["rate"] for f in figs]
        pr = per_request(figs)
        cmds = sum(v for k, v in pr.items() if not k.startswith("@"))
        xb = meds[c] / meds[base_name] if base_name in meds else None
        xp = meds[c] / meds[pass_name] if pass_name in meds else None
        redis_used = not c.startswith("pass-through")
        print(f"  {c:<24} {min(rates):>10.0f} {statistics.median(rates):>9.0f} "
              f"{max(rates):>9.0f} {fmt(xb, '>7.2f')} {fmt(xp, '>7.2f')} "
              f"{fmt(med(figs, 'cpu_self'), '>7.1f')} "
              f"{fmt(med(figs, 'cpu_redis') if redis_used else None, '>6.1f')} "
              f"{fmt(med(figs, 'cpu_aof') if redis_used else None, '>5.1f')} "
              f"{fmt(med(figs, 'cpu_kafka'), '>6.1f')} "
              f"{max(f['rss_mib'] for f in figs):>8.1f} "
              f"{fmt(cmds if redis_used else None, '>8.2f')} "
              f"{fmt(pr.get('@net_in') if redis_used else None, '>9.0f')} "
              f"{fmt(pr.get('@net_out') if redis_used else None, '>9.0f')}")
    for c in order:
        figs = runs.get(c)
        if not figs or c.startswith("pass-through"):
            continue
        pr = per_request(figs)
        by = ", ".join(f"{k} {v:.2f}" for k, v in sorted(pr.items(), key=lambda kv: -kv[1])
                       if not k.startswith("@") and v >= 0.005)
        miss = med(figs, "eta_miss")
        rewrites = sum(f["redis"].get("@aof_rewrites", 0) for f in figs)
        print(f"    {c}: Redis commands per request: {by or '-'}; "
              f"ETA keys missed {fmt(miss * 100 if miss is not None else None, '.1f')} %; "
              f"AOF rewrites in its drains {rewrites}; "
              f"startup {fmt(med(figs, 'startup_s'), '.1f')} s")
        bad = [f for f in figs if f["dlq"] or f["results"] != f["n"]]
        if bad:
            print(f"    {c}: warning: dead letters or extra results in {len(bad)} drain(s)")


# The performance targets, each against this tree's dispatchd: (label,
# backlog or "latency", figure key, target, "min" (at least) or "max" (at
# most), unit). "x base" is only meaningful against the reference commit
# REFERENCE (the dispatchd the targets were set against).
REFERENCE = "bf61b81"
TARGETS = [
    ("throughput A, x base", "A", "x_base", 4.0, "min", "x"),
    ("throughput B, x base", "B", "x_base", 3.0, "min", "x"),
    ("dispatchd CPU A", "A", "cpu_self", 15.0, "max", "µs/req"),
    ("dispatchd CPU B", "B", "cpu_self", 30.0, "max", "µs/req"),
    ("redis CPU A, with AOF", "A", "cpu_redis_all", 15.0, "max", "µs/req"),
    ("peak RSS (A drain)", "A", "rss_mib", 64.0, "max", "MiB"),
    ("latency p50", "latency", "p50", 3.0, "max", "ms"),
    ("latency p99", "latency", "p99", 10.0, "max", "ms"),
]


def targets(runs, tree, base_name, lat):
    """Prints each target, the figure of this tree's dispatchd and whether
    it is met; a figure this run did not measure is printed as "-"."""
    print(f"\ntargets ({tree}; x base against dispatchd ({REFERENCE}); RSS is the peak of "
          f"the A drains, the target is for a 1,000,000-request backlog: "
          f"DD_BENCH_A=1000000)")
    for label, where, key, goal, kind, unit in TARGETS:
        if where == "latency":
            val = lat.get(key) if lat else None
        elif key == "x_base":
            figs, base = runs[where].get(tree), runs[where].get(base_name)
            ok = figs and base and base_name == f"dispatchd ({REFERENCE})"
            val = med(figs, "rate") / med(base, "rate") if ok else None
        elif key == "rss_mib":
            figs = runs[where].get(tree)
            val = max(f["rss_mib"] for f in figs) if figs else None
        else:
            val = med(runs[where].get(tree) or [], key)
        if val is None:
            verdict = "not measured"
        elif (val >= goal) if kind == "min" else (val <= goal):
            verdict = "met"
        else:
            verdict = f"missed by {abs(val - goal) / goal * 100:.0f} %"
        sign = ">=" if kind == "min" else "<="
        print(f"  {label:<24} {sign} {goal:>6.1f} {unit:<7} {fmt(val, '>8.2f')}  {verdict}")


def main():
    brokers = os.environ["DISPATCHD_BROKERS"]
    rhost, rport = os.environ["DISPATCHD_REDIS_HOST"], int(os.environ["DISPATCHD_REDIS_PORT"])
    n_a, n_b = env_int("DD_BENCH_A", 150000), env_int("DD_BENCH_B", 100000)
    repeats = env_int("DD_BENCH_REPEATS", 3)
    parts = env_int("DD_BENCH_PARTITIONS", 6)
    logdir = os.path.join(ct.CACHE, "logs")
    os.makedirs(logdir, exist_ok=True)
    seed_bin = os.path.join(ct.BIN_DIR, "dispatchd-seed")

    # Contenders; dispatchd binaries each get two databases (A and B).
    pt = ct.Passthrough([])
    tree = ct.Dispatchd("dispatchd (tree)", os.path.join(ct.BIN_DIR, "dispatchd"), {})
    cons = [pt, tree]
    if os.environ.get("DD_BENCH_PASSTHROUGH_ARGS"):
        cons.append(ct.Passthrough(shlex.split(os.environ["DD_BENCH_PASSTHROUGH_ARGS"]),
                                   "pass-through +args"))
    base_name = None
    baseline = os.environ.get("DD_BENCH_BASELINE", REFERENCE)
    if baseline and baseline != "none":
        short, path = ct.build_baseline(baseline)
        base_name = f"dispatchd ({short})"
        cons.append(ct.Dispatchd(base_name, path, {}))
    for name, env in ct.parse_settings(os.environ.get("DD_BENCH_SETTINGS", "")):
        cons.append(ct.Dispatchd(f"tree {name}", tree.bin, env))

    kafka = dr.Kafka(brokers, parts)
    redis_srv = backlog.RedisServer(rhost, rport)
    kpid = kafka_pid()
    t0 = time.monotonic()
    topic_a = kafka.create("A.requests")
    topic_b = kafka.create("B.requests")
    produce(brokers, topic_a, backlog.requests_a(n_a))
    produce(brokers, topic_b, backlog.requests_b(n_b))
    print(f"bench: backlogs preloaded in {time.monotonic() - t0:.1f} s: A {n_a}, B {n_b} "
          f"requests on {parts} partitions; {repeats} repeat(s)", flush=True)

    dbs = {}
    next_db = 40
    for c in cons:
        if c.kind != "dispatchd":
            continue
        if c.bin not in dbs:
            a, b = backlog.Db(rhost, rport, next_db), backlog.Db(rhost, rport, next_db + 1)
            next_db += 2
            a.seed(seed_bin)
            b.seed(seed_bin)
            # Pre-warm B's ETA cache with this binary's own key format.
            t1 = time.monotonic()
            fig = dr.drain(kafka, c, "warm", topic_b, n_b, b, redis_srv, kpid,
                           os.path.join(logdir, "warm.log"))
            kept = b.keep_eta()
            print(f"bench: {c.name}: B's ETA cache warmed in {time.monotonic() - t1:.1f} s "
                  f"({kept} keys kept, {fig['rate']:.0f} msg/s)", flush=True)
            dbs[c.bin] = (a, b)
        c.db_a, c.db_b = dbs[c.bin]

    runs = {"A": {}, "B": {}}
    for rep in range(repeats):
        order = cons[rep % len(cons):] + cons[:rep % len(cons)]
        for name, topic, n in (("A", topic_a, n_a), ("B", topic_b, n_b)):
            for c in order:
                db = c.db_a if name == "A" else c.db_b
                log = os.path.join(logdir, f"{name}-{rep}-{c.name.replace(' ', '_')}.log")
                fig = dr.drain(kafka, c, name, topic, n, db, redis_srv, kpid, log)
                runs[name].setdefault(c.name, []).append(fig)
                print(f"bench: repeat {rep + 1}, {name}, {c.name}: {fig['rate']:.0f} msg/s",
                      flush=True)

    names = [c.name for c in cons]
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\nbench: {os.uname().nodename}, {os.cpu_count()} CPUs, load average {load}; "
          f"medians of {repeats} "
          f"repeat(s); x base / x pass: median msg/s over the baseline's / pass-through's; "
          f"µs/req: CPU per request of the contender, redis-server, broker")
    report(f"A: {n_a} single-courier requests, all ETA misses", runs["A"], names, base_name,
           pt.name)
    report(f"B: {n_b} 4-candidate requests, ETA cache pre-warmed (~95 % hits)", runs["B"],
           names, base_name, pt.name)

    lat = None
    if os.environ.get("DD_BENCH_LATENCY") == "1":
        secs = float(os.environ.get("DD_BENCH_LATENCY_SECONDS", "10"))
        meds = {c.name: med(runs["A"][c.name], "rate") for c in cons}
        print(f"\nlatency: open loop, A-shaped requests, {secs:.0f} s per contender (the first "
              f"{latency.WARMUP_S:.0f} s left out); request CreateTime -> result LogAppendTime")
        print(f"  {'contender':<24} {'rate':>7} {'sent/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'p99.9 ms':>8} {'max ms':>7} {'µs/req':>7} {'redis':>6}")
        for c in cons:
            rate = latency.default_rate(meds, c)
            log = os.path.join(logdir, f"latency-{c.name.replace(' ', '_')}.log")
            f = latency.run(kafka, c, rate, secs, c.db_a, redis_srv, log)
            if c is tree:
                lat = f
            print(f"  {c.name:<24} {f['rate']:>7.0f} {f['sent_rate']:>7.0f} {f['p50']:>7.0f} "
                  f"{f['p99']:>7.0f} {f['p999']:>8.0f} {f['max']:>7.0f} "
                  f"{fmt(f['cpu_self'], '>7.1f')} "
                  f"{fmt(f['cpu_redis'] if c.kind == 'dispatchd' else None, '>6.1f')}"
                  + ("" if f["answered"] >= f["n"] else
                     f"  ({f['answered']} of {f['n']} answered)"), flush=True)
    targets(runs, tree.name, base_name, lat)
    for a, b in dbs.values():
        a.r.flushdb()
        b.r.flushdb()
    print(f"\nbench: done in {time.monotonic() - t0:.0f} s; logs in {logdir}")


if __name__ == "__main__":
    main()
