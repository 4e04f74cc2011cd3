#!/usr/bin/env python3
"""Footprint figures of commitd under steady load, and restart times.

  scripts/footprint.py steady  [--marks 100000,1000000,3000000] [--retention-ms 60000] [--clients 64] [--group]
  scripts/footprint.py restart [--history 1000000] [--unfinished 10000] [--outcomes 100000]

steady: two commit-agents and one commitd (or, with --group, a 3-member
coordinator group) with decision_retention_ms, forgotten_key_retention_ms and
outcome_retention_ms set to --retention-ms, driven by `commitd-bench
transfers --idempotency-keys` (every transaction has a key of its own). Each time the committed +
aborted count passes a mark it prints bytes on disk (decisions.db or raft.db
with their -wal, each agent's database with its -wal) and the RSS of every
process. Steady state means these level off.

restart: a decisions.db holding --history finished decisions and --unfinished
decided-but-undelivered ones (their participants unreachable), written with
the real schema by a commitd that is then stopped; then the time from exec of
commitd to /readyz 200 (median of 3). Likewise an agent whose database holds
--outcomes remembered outcomes, exec to /readyz 200.

Nothing here asserts: these are figures for docs/operations.md. Everything
runs niced, under --work-dir (default build/footprint), on 127.0.0.1.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROCS = []


def free_port():
    while True:
        port = random.randint(20000, 32000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            pass
        finally:
            s.close()


def http_get(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def start(argv, log_path):
    log = open(log_path, "ab")
    p = subprocess.Popen(["nice", "-n", "10", *argv], stdout=log, stderr=log, preexec_fn=os.setsid)
    PROCS.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=20):
    if p.poll() is None:
        os.killpg(p.pid, sig)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    if p in PROCS:
        PROCS.remove(p)


def stop_all():
    for p in list(PROCS):
        stop(p)


def wait_for(url, path, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_get(url + path, 1.0)[0] == 200:
            return
        time.sleep(0.05)
    raise SystemExit(f"footprint: {url}{path} not 200 within {timeout} s")


def rss_kib(p):
    # The niced process is `nice`'s exec: the same pid.
    try:
        with open(f"/proc/{p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def size(paths):
    return sum(os.path.getsize(p) for p in paths if os.path.exists(p))


def with_wal(path):
    return [path, path + "-wal"]


def own_tables_bytes(db_path):
    """Bytes of the agent's own tables (_commitd_*) in its database, from
    SQLite's dbstat; the rest is the application's data (the bank's journal
    grows with every transfer by design)."""
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
        try:
            row = db.execute("SELECT SUM(pgsize) FROM dbstat WHERE name LIKE '\\_commitd%' ESCAPE '\\'").fetchone()
            return row[0] or 0
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def metric_total(url):
    status, text = http_get(url + "/metrics", 5.0)
    if status != 200:
        return None
    total = 0
    for line in text.splitlines():
        for name in ('commitd_transactions_total{outcome="committed"} ',
                     'commitd_transactions_total{outcome="aborted"} '):
            if line.startswith(name):
                total += float(line.split()[1])
    return int(total)


def leader_of(urls):
    for url in urls:
        status, body = http_get(url + "/v1/cluster")
        if status == 200 and '"leader_ready":true' in body.replace(" ", ""):
            return url
    return None


def mib(n):
    return f"{n / 1048576:.1f}"


def steady(args, work):
    bench = os.path.join(args.bin_dir, "commitd-bench")
    for name in ("a", "b"):
        subprocess.run([bench, "setup-bank", "--db", f"{work}/{name}.db", "--prefix", "acct", "--accounts", "256",
                        "--balance", "1000000000000"], check=True, stdout=subprocess.DEVNULL)
    config = {"decision_retention_ms": args.retention_ms, "forgotten_key_retention_ms": args.retention_ms,
              "outcome_retention_ms": args.retention_ms}
    with open(f"{work}/config.json", "w") as f:
        json.dump(config, f)
    # Agents take prepares only from the coordinators they are given.
    coordinator_ports = [free_port() for _ in range(3 if args.group else 1)]
    coordinator_flags = []
    for port in coordinator_ports:
        coordinator_flags += ["--coordinator", f"http://127.0.0.1:{port}"]
    agents = {}
    for name in ("a", "b"):
        port = free_port()
        p = start([os.path.join(args.bin_dir, "commit-agent"), "--name", f"bank-{name}", "--listen",
                   f"127.0.0.1:{port}", "--db", f"{work}/{name}.db", "--procedures",
                   os.path.join(ROOT, "examples", "bank", "procedures.json"), "--config", f"{work}/config.json",
                   *coordinator_flags],
                  f"{work}/bank-{name}.log")
        agents[name] = (p, f"http://127.0.0.1:{port}")
        wait_for(agents[name][1], "/healthz")
    participants = ["--participant", f"bank-a={agents['a'][1]}", "--participant", f"bank-b={agents['b'][1]}"]
    coordinators = []
    if args.group:
        ports = coordinator_ports
        peers = ",".join(f"g{i + 1}=http://127.0.0.1:{ports[i]}" for i in range(3))
        for i in range(3):
            d = f"{work}/g{i + 1}"
            os.makedirs(d)
            p = start([os.path.join(args.bin_dir, "commitd"), "--id", f"g{i + 1}", "--listen",
                       f"127.0.0.1:{ports[i]}", "--data-dir", d, "--peers", peers, "--config", f"{work}/config.json",
                       *participants], f"{work}/g{i + 1}.log")
            coordinators.append((p, f"http://127.0.0.1:{ports[i]}", with_wal(f"{d}/raft.db")))
        deadline = time.monotonic() + 30
        url = None
        while url is None and time.monotonic() < deadline:
            url = leader_of([c[1] for c in coordinators])
            time.sleep(0.1)
        if url is None:
            raise SystemExit("footprint: the group elected no leader")
    else:
        port = coordinator_ports[0]
        os.makedirs(f"{work}/c1")
        p = start([os.path.join(args.bin_dir, "commitd"), "--id", "c1", "--listen", f"127.0.0.1:{port}",
                   "--data-dir", f"{work}/c1", "--config", f"{work}/config.json", *participants], f"{work}/c1.log")
        url = f"http://127.0.0.1:{port}"
        coordinators.append((p, url, with_wal(f"{work}/c1/decisions.db")))
        wait_for(url, "/readyz")
    load = start([bench, "transfers", "--coordinator", url, "--clients", str(args.clients), "--duration-s",
                  "1000000", "--warmup-s", "0", "--account-prefix", "acct", "--accounts", "256", "--idempotency-keys"],
                 f"{work}/bench.log")
    marks = [int(m) for m in args.marks.split(",")]
    kind = "group of 3" if args.group else "single coordinator"
    print(f"steady load: {kind}, {args.clients} clients, retention {args.retention_ms} ms; work dir {work}",
          flush=True)
    header = ("| transactions | elapsed s | tx/s | coordinator files MiB | agent files MiB (a, b) | "
              "agent _commitd_ tables MiB (a, b) | RSS MiB commitd | RSS MiB agents (a, b) |")
    print(header)
    print("|---|---|---|---|---|---|---|---|", flush=True)
    t0 = time.monotonic()
    last = (t0, 0)
    for mark in marks:
        while True:
            if load.poll() is not None:
                raise SystemExit(f"footprint: commitd-bench exited {load.returncode}; see {work}/bench.log")
            total = metric_total(url) or 0
            if total >= mark:
                break
            time.sleep(2)
        now = time.monotonic()
        rate = (total - last[1]) / max(now - last[0], 1e-9)
        last = (now, total)
        coord_bytes = "; ".join(mib(size(c[2])) for c in coordinators)
        coord_rss = "; ".join(mib(rss_kib(c[0]) * 1024) for c in coordinators)
        print(f"| {total:,} | {now - t0:.0f} | {rate:.0f} | {coord_bytes} | "
              f"{mib(size(with_wal(work + '/a.db')))}, {mib(size(with_wal(work + '/b.db')))} | "
              f"{mib(own_tables_bytes(work + '/a.db'))}, {mib(own_tables_bytes(work + '/b.db'))} | {coord_rss} | "
              f"{mib(rss_kib(agents['a'][0]) * 1024)}, {mib(rss_kib(agents['b'][0]) * 1024)} |", flush=True)
    stop(load, signal.SIGINT)


def fill_history(db_path, history, unfinished, now_ms):
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    participants = json.dumps([{"name": "bank-a", "url": "http://127.0.0.1:1"},
                               {"name": "bank-b", "url": "http://127.0.0.1:2"}])
    batch = []

    def flush():
        db.executemany("INSERT INTO decisions(txid, protocol, outcome, participants, reason, idempotency_key, reply, "
                       "created_ms, decided_ms, finished, finished_ms, heuristic) "
                       "VALUES (?, '2pc', 'committed', ?, '', NULL, ?, ?, ?, ?, ?, 0)", batch)
        db.commit()
        batch.clear()

    for i in range(1, history + unfinished + 1):
        txid = f"c1-1-{i}-{random.getrandbits(64):016x}"
        finished = 1 if i <= history else 0
        reply = json.dumps({"txid": txid, "outcome": "committed", "branches": [
            {"participant": "bank-a", "vote": "yes", "results": [[], []]},
            {"participant": "bank-b", "vote": "yes", "results": [[], []]}]})
        batch.append((txid, participants, reply, now_ms - 5, now_ms - 4, finished, now_ms if finished else 0))
        if len(batch) == 50000:
            flush()
    flush()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def time_to(argv, url, path, log_path, runs=3):
    times = []
    for _ in range(runs):
        t = time.monotonic()
        p = start(argv, log_path)
        wait_for(url, path, 60)
        times.append(time.monotonic() - t)
        stop(p)
    times.sort()
    return times[len(times) // 2], times


def restart(args, work):
    commitd = os.path.join(args.bin_dir, "commitd")
    os.makedirs(f"{work}/c1")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [commitd, "--id", "c1", "--listen", f"127.0.0.1:{port}", "--data-dir", f"{work}/c1",
            "--participant", "bank-a=http://127.0.0.1:1", "--participant", "bank-b=http://127.0.0.1:2"]
    empty, _ = time_to(argv, url, "/readyz", f"{work}/c1.log", runs=1)
    t = time.monotonic()
    fill_history(f"{work}/c1/decisions.db", args.history, args.unfinished, int(time.time() * 1000))
    print(f"wrote {args.history:,} finished + {args.unfinished:,} unfinished decisions in "
          f"{time.monotonic() - t:.0f} s; decisions.db {mib(size(with_wal(work + '/c1/decisions.db')))} MiB",
          flush=True)
    median, all_runs = time_to(argv, url, "/readyz", f"{work}/c1.log")
    print(f"commitd exec -> /readyz 200: {median * 1000:.0f} ms median of {[round(x * 1000) for x in all_runs]} ms "
          f"(empty log: {empty * 1000:.0f} ms)", flush=True)

    bench = os.path.join(args.bin_dir, "commitd-bench")
    agent_db = f"{work}/bank-a.db"
    subprocess.run([bench, "setup-bank", "--db", agent_db, "--prefix", "acct", "--accounts", "256"], check=True,
                   stdout=subprocess.DEVNULL)
    port = free_port()
    aurl = f"http://127.0.0.1:{port}"
    aargv = [os.path.join(args.bin_dir, "commit-agent"), "--name", "bank-a", "--listen", f"127.0.0.1:{port}",
             "--db", agent_db, "--procedures", os.path.join(ROOT, "examples", "bank", "procedures.json")]
    aempty, _ = time_to(aargv, aurl, "/readyz", f"{work}/bank-a.log", runs=1)
    db = sqlite3.connect(agent_db)
    now_ms = int(time.time() * 1000)
    db.executemany("INSERT INTO _commitd_finished(txid, outcome, finished_ms) VALUES (?, 'committed', ?)",
                   ((f"c1-1-{i}-{random.getrandbits(64):016x}", now_ms) for i in range(args.outcomes)))
    db.commit()
    db.close()
    median, all_runs = time_to(aargv, aurl, "/readyz", f"{work}/bank-a.log")
    print(f"commit-agent with {args.outcomes:,} outcome records, exec -> /readyz 200: {median * 1000:.0f} ms median "
          f"of {[round(x * 1000) for x in all_runs]} ms (empty: {aempty * 1000:.0f} ms)", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["steady", "restart"])
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "release", "bin"))
    ap.add_argument("--work-dir", default=os.path.join(ROOT, "build", "footprint"))
    ap.add_argument("--marks", default="100000,1000000,3000000")
    ap.add_argument("--retention-ms", type=int, default=60000)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--group", action="store_true")
    ap.add_argument("--history", type=int, default=1000000)
    ap.add_argument("--unfinished", type=int, default=10000)
    ap.add_argument("--outcomes", type=int, default=100000)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f"{args.mode}.", dir=args.work_dir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        if args.mode == "steady":
            steady(args, work)
        else:
            restart(args, work)
    finally:
        stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
