#!/usr/bin/env python3
"""Where a transfer's time goes, from the servers' own metrics, and what the disk's fsync costs.

  scripts/bench/chain.py --bin BIN_DIR [--clients 1] [--seconds 5] [--warmup 1] [--runs 3] [--group]

Each run starts fresh databases, two commit-agents and one commitd from BIN_DIR
(scripts/bench/ab_cpu.py's cluster), runs `commitd-bench transfers`, and over
the measured window takes the growth of every histogram's _sum and _count on
the coordinator's and each agent's /metrics: the mean of each, per run. The
figures that make up a transfer's chain are the coordinator's hold
(commitd_transaction_duration_seconds), the round trip of a prepare and of a
commit to each agent (commitd_participant_round_trip_seconds), the decision
log's durable write (commitd_decision_log_fsync_seconds) and the agents'
(commitd_agent_fsync_seconds: a batch's COMMIT with its fsync). With --group
the coordinator is a group of 3: the same figures of the leader, and of each
follower its Raft log's durable writes. Then, on the
same disk, the median of 300 fdatasync calls after a 4-KiB pwrite that
overwrites a block of the file, after one that extends it, and after eight
WAL-sized frames while 1, 2 or 3 processes fdatasync at the same moment (as
the two agents' prepares do): the floor under every durable write of the
chain. And what a bare hop costs with no work attached (`commitd-bench
hops`): a round trip between two processes over loopback TCP, and between
two threads through a condition variable; the chain is made of such hops.
Prints the median [min-max] of each figure over the runs.
"""
import argparse
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ab_cpu  # noqa: E402

SERIES = re.compile(r'^(\w+)_(sum|count)(\{[^}]*\})? (\S+)$')


def parse_histograms(text):
    """{series: {"sum": s, "count": n}} of every histogram in a /metrics text."""
    out = {}
    for line in text.splitlines():
        m = SERIES.match(line)
        if m:
            out.setdefault(m.group(1) + (m.group(3) or ""), {})[m.group(2)] = float(m.group(4))
    return out


def histograms(url):
    status, body = ab_cpu.http_get(url + "/metrics")
    if status != 200:
        raise RuntimeError(f"{url}/metrics answered {status}")
    return parse_histograms(body)


def means(before, after):
    """Mean of each series over the window; seconds become milliseconds."""
    out = {}
    for series, end in after.items():
        start = before.get(series, {})
        n = end.get("count", 0) - start.get("count", 0)
        if n <= 0 or "sum" not in end:
            continue
        mean = (end["sum"] - start.get("sum", 0)) / n
        out[series + (" ms" if "_seconds" in series else "")] = mean * (1000 if "_seconds" in series else 1)
    return out


def servers_read(agent_urls, member_urls, leader, group):
    """Name -> base URL of every server whose /metrics a run reads: the agents,
    and the coordinator, or the group's leader and its followers in order."""
    if not group:
        return dict(agent_urls, commitd=leader)
    followers = [url for url in member_urls if url != leader]
    return dict(agent_urls, leader=leader, **{f"follower{i + 1}": url for i, url in enumerate(followers)})


def one_run(args, run_no):
    work = tempfile.mkdtemp(prefix="chain-", dir=args.work_dir)
    cluster = ab_cpu.Cluster(args.bin, work, args.group)
    try:
        bench = subprocess.Popen([f"{args.bin}/commitd-bench", "transfers", "--coordinator", cluster.leader,
                                  "--clients", str(args.clients), "--duration-s", str(args.seconds),
                                  "--warmup-s", str(args.warmup), "--account-prefix", "acct", "--accounts", "256",
                                  "--json"], stdout=subprocess.PIPE, text=True)
        servers = servers_read(cluster.agent_urls, cluster.urls, cluster.leader, args.group)
        time.sleep(args.warmup)
        before = {name: histograms(url) for name, url in servers.items()}
        time.sleep(max(1, args.seconds - 1))
        after = {name: histograms(url) for name, url in servers.items()}
        out, _ = bench.communicate(timeout=120)
        result = json.loads(out.strip().splitlines()[-1])
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    row = {"client p50 ms": result["latency_ms"]["p50"], "transfers/s": result["committed_per_s"]}
    for name in servers:
        for series, mean in means(before[name], after[name]).items():
            row[f"{name} {series}"] = mean
    print(json.dumps({"run": run_no, **row}), file=sys.stderr)
    return row


def fdatasync_ms(path, extend, frames=1, frame_bytes=4096, barrier=None, n=300):
    """Median ms of fdatasync after writing `frames` frames at the next offsets
    (a WAL's are 4,120 bytes from offset 32); with a barrier, in step with the
    other processes that wait on it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        offset = 0 if frame_bytes == 4096 else 32
        if not extend:
            os.pwrite(fd, b"\0" * (offset + frame_bytes * frames * n), 0)
            os.fsync(fd)
        times = []
        for _ in range(n):
            for _ in range(frames):
                os.pwrite(fd, b"x" * frame_bytes, offset)
                offset += frame_bytes
            if barrier is not None:
                barrier.wait()
            start = time.perf_counter()
            os.fdatasync(fd)
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)
    finally:
        os.close(fd)
        os.unlink(path)


def _in_step(path, barrier, results):
    results.put(fdatasync_ms(path, False, frames=8, frame_bytes=4120, barrier=barrier))


def concurrent_fdatasync_ms(directory, processes):
    """Median ms of an fdatasync of eight WAL frames while `processes` processes
    (two agents and a coordinator on one disk) do the same at the same moment."""
    barrier = multiprocessing.Barrier(processes)
    results = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_in_step, args=(
        os.path.join(directory, f"fdatasync-probe-{os.getpid()}-{i}"), barrier, results)) for i in range(processes)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return statistics.median(results.get() for _ in workers)


def bare_hops(bin_dir):
    """Median µs of a bare round trip between two processes and between two threads, and the CPU µs each takes."""
    out = subprocess.run([os.path.join(bin_dir, "commitd-bench"), "hops", "--json"], check=True,
                         capture_output=True, text=True).stdout
    hops = json.loads(out)
    return {"bare round trip, loopback TCP between two processes us": hops["loopback_rtt_p50_us"],
            "bare round trip, condition variable between two threads us": hops["thread_rtt_p50_us"],
            "bare round trip, loopback TCP between two processes, CPU us": hops["loopback_cpu_us_per_round_trip"],
            "bare round trip, condition variable between two threads, CPU us": hops["thread_cpu_us_per_round_trip"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="bin directory of the build")
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--group", action="store_true", help="a coordinator group of 3 instead of one coordinator")
    ap.add_argument("--work-dir", default=os.path.join(ab_cpu.ROOT, "build", "bench"),
                    help="on the disk being measured (not tmpfs)")
    args = ap.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    rows = []
    for i in range(args.runs):
        rows.append(one_run(args, i))
        probe = os.path.join(args.work_dir, f"fdatasync-probe-{os.getpid()}")
        rows[-1]["disk fdatasync, 4 KiB overwritten ms"] = fdatasync_ms(probe, extend=False)
        rows[-1]["disk fdatasync, 4 KiB appended ms"] = fdatasync_ms(probe, extend=True)
        for processes in (1, 2, 3):
            rows[-1][f"disk fdatasync, 8 WAL frames, {processes} process(es) at once ms"] = \
                concurrent_fdatasync_ms(args.work_dir, processes)
        rows[-1].update(bare_hops(args.bin))
    keys = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    print(f"{'figure':100s} median [min-max] over {len(rows)} runs")
    for key in keys:
        values = [row[key] for row in rows if key in row]
        print(f"{key:100s} {statistics.median(values):10.3f} [{min(values):.3f}-{max(values):.3f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
