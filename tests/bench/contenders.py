# SPDX-License-Identifier: MIT
"""The contenders of `make bench` and how one process is run and measured:
dd-passthrough, dispatchd of this tree (optionally with extra settings) and
dispatchd built from a given commit in a temporary clone. A run is a child
process whose CPU time (utime + stime of /proc/<pid>/stat, also readable
while it is a zombie, since the harness reaps it only at the end) and peak
RSS (VmHWM of /proc/<pid>/status, sampled while it runs: wait4's
ru_maxrss would count the harness's own memory, copied by fork before
exec) the harness reads; other processes (redis-server, the broker) are
sampled the same way by pid."""
import os
import re
import shutil
import signal
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "release")
BIN_DIR = os.path.join(ROOT, "build", BUILD)
CACHE = os.path.join(ROOT, "build", "bench")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_us(pid, children=False):
    """utime + stime of a process (all its threads) in microseconds, or
    None when it is gone. With children: the pair (that, that plus the CPU
    of the children it has reaped (cutime + cstime) and of those still
    running (their own utime + stime + cutime + cstime, from
    /proc/<pid>/task/*/children)), from one read of its stat, so that the
    work of a redis-server's AOF rewrite child is counted whether or not
    the child has ended yet; (None, None) when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return (None, None) if children else None
    # After ") ": state is field 3, utime 14, stime 15, cutime 16, cstime 17
    # (1-based, proc(5)).
    own = int(fields[11]) + int(fields[12])
    if not children:
        return own * 1_000_000 // TICK
    family = own + int(fields[13]) + int(fields[14])
    for kid in _children(pid):
        try:
            with open(f"/proc/{kid}/stat") as f:
                kf = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended (and counted in cutime once reaped)
        family += sum(int(v) for v in kf[11:15])
    return own * 1_000_000 // TICK, family * 1_000_000 // TICK


def _children(pid):
    """Pids of the running children of every thread of pid."""
    out = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(v) for v in f.read().split())
        except OSError:
            pass
    return out


def hwm_kib(pid):
    """Peak RSS (VmHWM) of a running process in KiB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Proc:
    """One contender process, reaped only by finish()."""

    def __init__(self, argv, env, logpath):
        self.log = open(logpath, "wb")
        self.p = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.p.pid
        self.rss_kib = 0
        self.rc = None

    def sample_rss(self):
        v = hwm_kib(self.pid)
        if v is not None:
            self.rss_kib = max(self.rss_kib, v)

    def exited(self):
        """True once the process exited (it stays a zombie until finish)."""
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def finish(self, timeout=60):
        """SIGTERM if still running, reap, record exit status and peak RSS."""
        if not self.exited():
            os.kill(self.pid, signal.SIGTERM)
        _, status, ru = os.wait4(self.pid, 0)
        self.p.returncode = self.rc = os.waitstatus_to_exitcode(status)
        del ru
        self.log.close()
        return self.rc


class PassthroughProc(Proc):
    """dd-passthrough prints its own peak RSS when it ends, which sampling
    can miss: its drains can be shorter than the sampling period."""

    def finish(self, timeout=60):
        rc = super().finish(timeout)
        with open(self.log.name, "rb") as f:
            m = re.search(rb"peak RSS (\d+) KiB", f.read())
        if m:
            self.rss_kib = max(self.rss_kib, int(m.group(1)))
        return rc


class Passthrough:
    kind = "pass"

    def __init__(self, extra_args, name="pass-through"):
        self.name = name
        self.bin = os.path.join(BIN_DIR, "dd-passthrough")
        self.extra = extra_args
        self.db_a = self.db_b = None

    def start(self, brokers, topic, group, results, dlq, db, count, logpath):
        del dlq, db
        argv = [self.bin, "-b", brokers, "-t", topic, "-G", group, "-o", results,
                "-c", str(count)] + self.extra
        return PassthroughProc(argv, dict(os.environ), logpath)


class Dispatchd:
    kind = "dispatchd"

    def __init__(self, name, binary, env_extra):
        self.name = name
        self.bin = binary
        self.env_extra = env_extra
        self.db_a = self.db_b = None  # backlog.Db, set by the harness

    def start(self, brokers, topic, group, results, dlq, db, count, logpath):
        del count
        env = dict(os.environ, DISPATCHD_BROKERS=brokers, DISPATCHD_TOPIC=topic,
                   DISPATCHD_RESULT_TOPIC=results, DISPATCHD_DLQ_TOPIC=dlq,
                   DISPATCHD_GROUP=group, DISPATCHD_HTTP="0", DISPATCHD_LOG_LEVEL="warn",
                   DISPATCHD_REDIS=db.url(), **self.env_extra)
        return Proc([self.bin], env, logpath)


def build_baseline(commit):
    """dispatchd built from commit in a temporary clone of this repository,
    cached as build/bench/dispatchd-<sha>. Returns (short sha, path)."""
    sha = subprocess.run(["git", "-C", ROOT, "rev-parse", "--verify", commit + "^{commit}"],
                         check=True, capture_output=True, text=True).stdout.strip()
    path = os.path.join(CACHE, f"dispatchd-{sha[:12]}")
    if os.path.exists(path):
        return sha[:7], path
    os.makedirs(CACHE, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="dd-bench-baseline-")
    try:
        print(f"bench: building the baseline {sha[:7]} in {tmp} ...", flush=True)
        subprocess.run(["git", "clone", "-q", "--no-checkout", ROOT, tmp], check=True)
        subprocess.run(["git", "-C", tmp, "checkout", "-q", sha], check=True)
        out = subprocess.run(["make", "-C", tmp, "-j2", "WERROR=0", "build/release/dispatchd"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"bench: baseline {sha[:7]} does not build:\n{out.stderr[-2000:]}")
        shutil.copy2(os.path.join(tmp, "build", "release", "dispatchd"), path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return sha[:7], path


def parse_settings(spec):
    """DD_BENCH_SETTINGS "name:VAR=v,VAR=v;name2:VAR=v" -> [(name, {VAR: v})]."""
    out = []
    for part in filter(None, (s.strip() for s in spec.split(";"))):
        name, _, assigns = part.partition(":")
        env = {}
        for a in filter(None, (s.strip() for s in assigns.split(","))):
            k, _, v = a.partition("=")
            env[k.strip()] = v.strip()
        out.append((name.strip(), env))
    return out
