#!/usr/bin/env python3
"""The etcd reference of the benchmark: a 3-member etcd cluster (Debian's
etcd-server) on loopback, puts through its JSON gateway (POST /v3/kv/put)
driven by wrk with scripts/bench/etcd_put.lua, at each given client count.
Prints one JSON line per run, the shape commitd-bench prints:

  {"mode":"etcd-put","clients":64,"seconds":10.0,"ops":...,"ops_per_s":...,
   "p50_ms":...,"p99_ms":...,"errors":0,"cpu_us_per_op":...}

cpu_us_per_op counts the three etcd processes and wrk (the load client),
as commitd's figure counts its processes and commitd-bench.

    scripts/bench/etcd_reference.py --work-dir DIR [--clients "1 64"] [--seconds 10] [--warmup 1]
"""
import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TICKS = os.sysconf("SC_CLK_TCK")


def free_port(taken):
    while True:
        port = random.randint(20000, 32000)
        if port in taken:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            taken.add(port)
            return port
        except OSError:
            pass
        finally:
            s.close()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def wait_healthy(url, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as r:
                if json.loads(r.read()).get("health") == "true":
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"etcd_reference: {url} not healthy within {seconds} s")


def parse_duration_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]
    return float(m.group(1)) * scale


def run_wrk(url, clients, seconds):
    threads = min(clients, 2)
    cmd = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{seconds}s", "--latency", "--timeout", "5s",
           "-s", os.path.join(HERE, "etcd_put.lua"), url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    ops = int(re.search(r"(\d+) requests in", out).group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    p50 = parse_duration_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = parse_duration_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    return ops, errors, p50, p99, wrk_cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work-dir", required=True)
    ap.add_argument("--clients", default="1 64")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=1)
    args = ap.parse_args()
    for exe in ("etcd", "wrk"):
        if shutil.which(exe) is None:
            raise SystemExit(f"etcd_reference: {exe} not found (Debian packages etcd-server and wrk)")

    taken = set()
    client_ports = [free_port(taken) for _ in range(3)]
    peer_ports = [free_port(taken) for _ in range(3)]
    cluster = ",".join(f"e{i}=http://127.0.0.1:{peer_ports[i]}" for i in range(3))
    procs = []
    try:
        for i in range(3):
            data = os.path.join(args.work_dir, f"etcd{i}")
            os.makedirs(data, exist_ok=True)
            log = open(os.path.join(args.work_dir, f"etcd{i}.log"), "w")
            procs.append(subprocess.Popen(
                ["etcd", "--name", f"e{i}", "--data-dir", data,
                 "--listen-client-urls", f"http://127.0.0.1:{client_ports[i]}",
                 "--advertise-client-urls", f"http://127.0.0.1:{client_ports[i]}",
                 "--listen-peer-urls", f"http://127.0.0.1:{peer_ports[i]}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_ports[i]}",
                 "--initial-cluster", cluster, "--initial-cluster-state", "new",
                 "--initial-cluster-token", "commitd-bench"],
                stdout=log, stderr=subprocess.STDOUT))
        urls = [f"http://127.0.0.1:{p}" for p in client_ports]
        for url in urls:
            wait_healthy(url)
        # Puts go to the leader, as commitd's transfers go to the group's leader.
        leader = None
        for url in urls:
            req = urllib.request.Request(url + "/v3/maintenance/status", data=b"{}", method="POST")
            with urllib.request.urlopen(req, timeout=2) as r:
                status = json.loads(r.read())
            if status.get("leader") == status.get("header", {}).get("member_id"):
                leader = url
        if leader is None:
            raise SystemExit("etcd_reference: no etcd leader found")
        for clients in [int(c) for c in args.clients.split()]:
            if args.warmup > 0:
                run_wrk(leader, clients, max(1, int(round(args.warmup))))
            cpu_before = sum(cpu_seconds(p.pid) for p in procs)
            ops, errors, p50, p99, wrk_cpu = run_wrk(leader, clients, int(round(args.seconds)))
            cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu_before + wrk_cpu
            print(json.dumps({"mode": "etcd-put", "clients": clients, "seconds": args.seconds, "ops": ops,
                              "ops_per_s": round(ops / args.seconds, 1), "p50_ms": round(p50, 3),
                              "p99_ms": round(p99, 3), "errors": errors,
                              "cpu_us_per_op": round(cpu * 1e6 / max(ops, 1), 1)}), flush=True)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


if __name__ == "__main__":
    sys.exit(main())
