#!/usr/bin/env python3
"""Group commit on one agent (issue 4): prepares+commits per second with many
concurrent transactions on distinct rows, against the one-row SQLite WAL
synchronous=FULL commit rate measured in the same run, on the same disk.

Standard library only. Starts one commit-agent over a fresh bank database
with one account per client, and drives it directly as a coordinator would:
each client (an asyncio connection with keep-alive) loops
POST /v1/prepare {credit + journal on its own account} -> POST /v1/commit.
No coordinator runs: the prepares carry a long timeout_ms, so the agent never
asks the (unreachable) coordinator URL they name.

    python3 scripts/bench_agent.py --bin-dir build/release/bin [--clients 64] [--seconds 10]

Prints the baseline, the agent's rates, the agent's group-commit batch size
(from its /metrics) and the ratio; --json writes them to a file as well.
"""

import argparse
import asyncio
import json
import os
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


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sqlite_baseline(path, seconds):
    """One-row commits per second: WAL, synchronous=FULL, one INSERT per transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    n = 0
    t0 = time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t(v) VALUES('x')")
        conn.execute("COMMIT")
        n += 1
    elapsed = time.monotonic() - t0
    conn.close()
    return n / elapsed


def make_db(path, accounts):
    conn = sqlite3.connect(path)
    with open(os.path.join(ROOT, "examples", "bank", "schema.sql")) as f:
        conn.executescript(f.read())
    conn.executemany("INSERT INTO accounts(id, balance) VALUES(?, 0)", [(a,) for a in accounts])
    conn.commit()
    conn.close()


def metrics(url):
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            out[name] = float(value)
    return out


class Conn:
    """One keep-alive HTTP/1.1 connection with just enough parsing for the agent's replies."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path, body):
        data = json.dumps(body).encode()
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (path.encode(), self.host.encode(), len(data), data))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        payload = await self.reader.readexactly(length)
        return status, payload


async def client(i, account, host, port, stop_at, measure_from, counts, errors):
    conn = Conn(host, port)
    await conn.open()
    seq = 0
    while time.monotonic() < stop_at:
        seq += 1
        txid = f"b{i}-{seq}"
        t_start = time.monotonic()
        status, payload = await conn.post("/v1/prepare", {
            "txid": txid, "protocol": "2pc", "participant": "bench", "coordinator": "http://127.0.0.1:9",
            "timeout_ms": 600000, "participants": [],
            "ops": [{"procedure": "credit", "args": {"account": account, "amount": 1}},
                    {"procedure": "journal", "args": {"account": account, "delta": 1}}]})
        if status != 200 or b'"vote":"yes"' not in payload:
            errors.append(f"prepare {txid}: {status} {payload[:200]!r}")
            return
        status, payload = await conn.post("/v1/commit", {"txid": txid})
        if status != 200:
            errors.append(f"commit {txid}: {status} {payload[:200]!r}")
            return
        if t_start >= measure_from:
            counts[i] += 1
    conn.writer.close()


async def drive(host, port, clients, warmup, seconds):
    accounts = [f"acct{i:04d}" for i in range(clients)]
    counts = [0] * clients
    errors = []
    t0 = time.monotonic()
    measure_from = t0 + warmup
    stop_at = measure_from + seconds
    await asyncio.gather(*(client(i, accounts[i], host, port, stop_at, measure_from, counts, errors)
                           for i in range(clients)))
    return sum(counts), time.monotonic() - measure_from, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "release", "bin"))
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--baseline-seconds", type=float, default=5)
    ap.add_argument("--work-dir", default=os.path.join(ROOT, "build", "bench-agent"),
                    help="parent of the run's files; keep it on the disk you measure (not tmpfs)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()

    os.makedirs(args.work_dir, exist_ok=True)
    run_dir = tempfile.mkdtemp(prefix="run-", dir=args.work_dir)
    agent = None
    try:
        baseline = sqlite_baseline(os.path.join(run_dir, "baseline.db"), args.baseline_seconds)
        print(f"sqlite one-row WAL FULL commits/s: {baseline:,.0f}", flush=True)

        db = os.path.join(run_dir, "bench.db")
        make_db(db, [f"acct{i:04d}" for i in range(args.clients)])
        with open(os.path.join(run_dir, "procedures.json"), "w") as f:
            with open(os.path.join(ROOT, "examples", "bank", "procedures.json")) as src:
                f.write(src.read())
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(os.path.join(run_dir, "agent.log"), "wb")
        agent = subprocess.Popen([os.path.join(args.bin_dir, "commit-agent"), "--name", "bench", "--listen",
                                  f"127.0.0.1:{port}", "--db", db, "--procedures",
                                  os.path.join(run_dir, "procedures.json")],
                                 stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        for _ in range(200):
            try:
                metrics(url)
                break
            except OSError:
                time.sleep(0.05)
        before = metrics(url)
        txs, elapsed, errors = asyncio.run(drive("127.0.0.1", port, args.clients, args.warmup, args.seconds))
        after = metrics(url)
        if errors:
            print("errors:\n  " + "\n  ".join(errors[:10]), file=sys.stderr)
            return 1
        batches = after["commitd_agent_storage_batches_total"] - before["commitd_agent_storage_batches_total"]
        jobs = after["commitd_agent_storage_jobs_total"] - before["commitd_agent_storage_jobs_total"]
        tx_rate = txs / elapsed
        op_rate = 2 * tx_rate
        figures = {
            "clients": args.clients,
            "seconds": round(elapsed, 2),
            "sqlite_one_row_commits_per_s": round(baseline),
            "agent_transactions_per_s": round(tx_rate),
            "agent_prepares_plus_commits_per_s": round(op_rate),
            "ratio_ops_to_sqlite": round(op_rate / baseline, 2),
            "ratio_transactions_to_sqlite": round(tx_rate / baseline, 2),
            "storage_jobs_per_batch": round(jobs / batches, 1) if batches else None,
        }
        print(f"agent, {args.clients} clients, {elapsed:.1f} s: {tx_rate:,.0f} transactions/s "
              f"(prepare+commit each) = {op_rate:,.0f} prepares+commits/s")
        print(f"storage: {jobs:,.0f} jobs in {batches:,.0f} group commits "
              f"({figures['storage_jobs_per_batch']} jobs per fsync; a transaction is 3 jobs: "
              f"execute, persist, commit)")
        print(f"ratio: prepares+commits/s / sqlite commits/s = {figures['ratio_ops_to_sqlite']}x "
              f"(transactions/s: {figures['ratio_transactions_to_sqlite']}x)")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(figures, f, indent=2)
        return 0
    finally:
        if agent is not None:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(timeout=15)
            except subprocess.TimeoutExpired:
                agent.kill()
        if args.keep:
            print(f"kept {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
