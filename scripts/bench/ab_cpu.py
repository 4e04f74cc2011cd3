#!/usr/bin/env python3
"""CPU per transfer of commitd and its agents, and paired A/B runs of two builds.

  scripts/bench/ab_cpu.py --a BIN_DIR [--b BIN_DIR] [--pairs 3] [--clients 64]
      [--seconds 8] [--warmup 1] [--protocol 2pc] [--group] [--perf-dir DIR]
      [--agent-config-b FILE]

Each run starts from fresh databases: two commit-agents (bank-a, bank-b) and
one commitd (or, with --group, a 3-member coordinator group) from BIN_DIR,
then `commitd-bench transfers` against the coordinator (the group's leader).
Over the measured window (after the warmup) it reads, for every process,
utime+stime from /proc/PID/stat, the context switches of all its threads
(/proc/PID/task/*/status), the growth of its resident memory (VmRSS) and the
bytes its writes sent to the disk (write_bytes of /proc/PID/io), and
prints them per committed transfer along with the rate. With --b the runs alternate A, B, B, A, A, B, ... (--pairs pairs)
and the summary shows the median and [min–max] of each figure per build.
With --group it also counts leader changes (commitd_raft_leader_changes_total
summed over the members, before and after the window), and names each member
by its role in the run: "leader" (the member the load went to), then
"follower1" (the follower that used more CPU) and "follower2". A group run
that saw a leader change or an error keeps its directory (logs, databases)
and prints the members' leadership events and the bench's error kinds to
stderr.
--perf-dir: `perf record -g` each server process over the window into
DIR/<run>-<process>.data (one run per build is enough for a profile).
--syscalls: count each process's system calls over the window (`perf stat`
on the syscalls tracepoints): sys.<process>.<call> per transfer for the
calls in SYSCALLS, and sys.<process>.all for every call. Counting costs CPU
of its own, so compare the CPU figures only between runs that both count.
--agent-config-b: a --config file for build B's agents only, to measure a
setting build A does not have.
--instructions: run every server process under valgrind's callgrind, with
its instrumentation switched on for the measured window only, and print the
user-space instructions each executed per transfer (ir.<process>, in
thousands). The count does not move with the machine's noise, so a change of
a few percent in one process's own code shows there when CPU time cannot
tell; it leaves out the kernel (system calls, wake-ups, the disk) and every
cost that is not an instruction (cache misses, waiting), and under valgrind
the servers run tens of times slower, so batches fill differently: compare
builds by it, never with a run without it.

The machine is shared and noisy: compare builds only within one invocation,
by CPU per transfer first and rate second. Runs under --work-dir (default
build/bench), which must be on the disk being measured (not tmpfs).
"""

import argparse
import glob
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLK_TCK = os.sysconf("SC_CLK_TCK")
# A group member's log events about who leads.
LEADERSHIP_EVENTS = ("leader_changed", "leading", "leader_retake", "leader_recover_failed",
                     "fatal_raft_storage_failure")


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


def http_get(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def ctx_switches(pid):
    voluntary = involuntary = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        voluntary += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        involuntary += int(line.split()[1])
        except OSError:
            pass
    return voluntary, involuntary


def proc_number(path, key):
    """The first number on the line of `path` that starts with `key` (0 if none)."""
    with open(path) as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def storage_bytes_written(pid):
    # write_bytes: what the process's writes sent (or will send) to the disk,
    # counted when the pages are dirtied; a figure of the work its durable
    # writes do that the machine's noise hardly moves.
    return proc_number(f"/proc/{pid}/io", "write_bytes:")


def resident_bytes(pid):
    return proc_number(f"/proc/{pid}/status", "VmRSS:") * 1024


# The calls a transfer's path makes (network, wake-ups, the WAL's writes and
# fsyncs, SQLite's file locks), counted one by one with --syscalls.
SYSCALLS = ("recvmsg", "sendmsg", "epoll_wait", "futex", "pwrite64", "pread64", "fdatasync", "fcntl")


def start_syscall_count(pid, seconds):
    events = ["raw_syscalls:sys_enter"] + [f"syscalls:sys_enter_{name}" for name in SYSCALLS]
    return subprocess.Popen(["perf", "stat", "-x,", "-e", ",".join(events), "-p", str(pid), "--", "sleep", str(seconds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def syscall_counts(perf_stat_csv):
    """{call: count} from `perf stat -x,` output; "all" is raw_syscalls:sys_enter."""
    counts = {}
    for line in perf_stat_csv.splitlines():
        fields = line.split(",")
        if len(fields) < 3 or not fields[0].strip().isdigit():
            continue
        event = fields[2]
        name = "all" if event == "raw_syscalls:sys_enter" else event.removeprefix("syscalls:sys_enter_")
        counts[name] = int(fields[0])
    return counts


def counter_total(urls, name):
    """The counter `name` on every server's /metrics, summed over its labels and the servers."""
    total = 0
    for url in urls:
        for line in http_get(url + "/metrics")[1].splitlines():
            if line.startswith(name):
                total += int(float(line.split()[-1]))
    return total


def leader_changes(urls):
    return counter_total(urls, "commitd_raft_leader_changes_total")


NEEDED_BINARIES = ("commitd", "commit-agent", "commitd-bench", "commitctl")


# The servers under callgrind (--instructions): nothing counted until the
# window starts (start_counting), only instructions (no cache simulation).
CALLGRIND = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]


def callgrind_control_all(option, pids):
    """Sends one callgrind_control command to every process at once (each takes a tenth of a second)."""
    calls = [subprocess.Popen(["callgrind_control", option, str(pid)], stdout=subprocess.DEVNULL) for pid in pids]
    for call in calls:
        if call.wait() != 0:
            raise RuntimeError(f"callgrind_control {option} failed")


def callgrind_totals(out_file):
    """The instructions counted in the first dump (out_file.1): the window's."""
    with open(out_file + ".1") as f:
        for line in f:
            if line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {out_file}.1")


def transactions_decided(url):
    return counter_total([url], "commitd_transactions_total")


class Cluster:
    def __init__(self, bin_dir, work, group, agent_config=None, instructions=False):
        self.bin = bin_dir
        self.work = work
        self.procs = {}
        self.instructions = instructions
        self.callgrind_out = {}
        try:
            self._launch(bin_dir, work, group, agent_config)
        except BaseException:
            self.stop()  # what started must not outlive a start that failed
            raise

    def _launch(self, bin_dir, work, group, agent_config):
        taken = set()
        for db in ("a", "b"):
            subprocess.run([f"{bin_dir}/commitd-bench", "setup-bank", "--db", f"{work}/{db}.db", "--prefix", "acct",
                            "--accounts", "256", "--balance", "1000000000000"], check=True, stdout=subprocess.DEVNULL)
        pa, pb = free_port(taken), free_port(taken)
        participants = ["--participant", f"bank-a=http://127.0.0.1:{pa}", "--participant", f"bank-b=http://127.0.0.1:{pb}"]
        ports = [free_port(taken) for _ in range(3 if group else 1)]
        self.urls = [f"http://127.0.0.1:{p}" for p in ports]
        self.member_urls = {f"g{i + 1}": url for i, url in enumerate(self.urls)} if group else {"commitd": self.urls[0]}
        self.agent_urls = {"bank-a": f"http://127.0.0.1:{pa}", "bank-b": f"http://127.0.0.1:{pb}"}
        # Agents take prepares only from the coordinators they know.
        for name, port, db in (("bank-a", pa, "a"), ("bank-b", pb, "b")):
            self.start(name, [f"{bin_dir}/commit-agent", "--name", name, "--listen", f"127.0.0.1:{port}", "--db",
                              f"{work}/{db}.db", "--procedures", f"{ROOT}/examples/bank/procedures.json",
                              "--coordinator", ",".join(self.urls)]
                       + (["--config", agent_config] if agent_config else []))
        if group:
            peers = ",".join(f"g{i + 1}=http://127.0.0.1:{p}" for i, p in enumerate(ports))
            for i, p in enumerate(ports):
                os.makedirs(f"{work}/g{i + 1}")
                self.start(f"g{i + 1}", [f"{bin_dir}/commitd", "--id", f"g{i + 1}", "--listen", f"127.0.0.1:{p}",
                                         "--data-dir", f"{work}/g{i + 1}", "--peers", peers] + participants)
        else:
            os.makedirs(f"{work}/c1")
            self.start("commitd", [f"{bin_dir}/commitd", "--id", "c1", "--listen", f"127.0.0.1:{ports[0]}",
                                   "--data-dir", f"{work}/c1"] + participants)
        for url in [f"http://127.0.0.1:{pa}", f"http://127.0.0.1:{pb}"] + self.urls:
            self.wait(lambda: http_get(url + "/healthz")[0] == 200, f"{url}/healthz")
        self.leader = None

        def find_leader():
            for url in self.urls:
                status, body = http_get(url + "/v1/cluster")
                if not group or (status == 200 and json.loads(body).get("leader_ready")):
                    self.leader = url
                    return True
            return False

        self.wait(find_leader, "a ready leader")
        self.wait(lambda: subprocess.run([f"{bin_dir}/commitctl", "--coordinator", self.leader, "status"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0,
                  "both participants healthy")

    def start(self, name, argv):
        log = open(f"{self.work}/{name}.log", "w")
        if self.instructions:
            self.callgrind_out[name] = f"{self.work}/{name}.callgrind"
            argv = CALLGRIND + [f"--callgrind-out-file={self.callgrind_out[name]}"] + argv
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=log)

    @staticmethod
    def wait(pred, what, seconds=60):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if pred():
                return
            time.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {what}")

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def report_disturbance(work, changes, result):
    """A leader change or an error is rare and worth a look: the run's
    directory stays, and its members' leadership events go to stderr."""
    print(f"ab_cpu: {changes} leader change(s), {result['errors'] if result else '?'} error(s) "
          f"{json.dumps(result.get('error_kinds', {})) if result else ''}; kept {work}", file=sys.stderr)
    for log in sorted(glob.glob(f"{work}/g*.log")):
        with open(log, errors="replace") as f:
            for line in f:
                if any(f'"event":"{e}"' in line for e in LEADERSHIP_EVENTS):
                    print(f"  {os.path.basename(log)}: {line.rstrip()}", file=sys.stderr)


def one_run(args, label, bin_dir, run_no):
    work = tempfile.mkdtemp(prefix=f"ab-{label}-", dir=args.work_dir)
    cluster = Cluster(bin_dir, work, args.group, args.agent_config_b if label == "B" else None, args.instructions)
    perf = []
    changes = 0
    result = None
    try:
        bench = subprocess.Popen([f"{bin_dir}/commitd-bench", "transfers", "--coordinator", cluster.leader, "--clients",
                                  str(args.clients), "--duration-s", str(args.seconds), "--warmup-s", str(args.warmup),
                                  "--account-prefix", "acct", "--accounts", "256", "--protocol", args.protocol,
                                  "--json"], stdout=subprocess.PIPE, text=True)
        pids = {name: p.pid for name, p in cluster.procs.items()}
        pids["bench"] = bench.pid
        time.sleep(args.warmup)
        changes_before = leader_changes(cluster.urls) if args.group else 0
        cpu0 = {n: cpu_seconds(pid) for n, pid in pids.items()}
        cs0 = {n: ctx_switches(pid) for n, pid in pids.items()}
        rss0 = {n: resident_bytes(pid) for n, pid in pids.items()}
        disk0 = {n: storage_bytes_written(pid) for n, pid in pids.items()}
        if args.instructions:
            callgrind_control_all("--instr=on", [p.pid for p in cluster.procs.values()])
            decided0 = transactions_decided(cluster.leader)
        if args.perf_dir:
            os.makedirs(args.perf_dir, exist_ok=True)
            for name, p in cluster.procs.items():
                perf.append(subprocess.Popen(["perf", "record", "-q", "-F", str(args.perf_freq), "--call-graph", args.call_graph,
                                              "-o", f"{args.perf_dir}/{label}{run_no}-{name}.data", "-p", str(p.pid),
                                              "--", "sleep", str(max(1, args.seconds - 1))],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        syscall_counters = {}
        if args.syscalls:
            syscall_counters = {n: start_syscall_count(pid, args.seconds) for n, pid in pids.items()}
        time.sleep(args.seconds)
        cpu1 = {n: cpu_seconds(pid) for n, pid in pids.items()}
        cs1 = {n: ctx_switches(pid) for n, pid in pids.items()}
        rss1 = {n: resident_bytes(pid) for n, pid in pids.items()}
        disk1 = {n: storage_bytes_written(pid) for n, pid in pids.items()}
        changes = (leader_changes(cluster.urls) - changes_before) if args.group else 0
        instructions = {}
        if args.instructions:
            # Per transaction decided within the counted window: the load
            # generator's own window is not aligned with it closely enough at
            # the tens of transfers a second the servers manage under valgrind.
            decided = transactions_decided(cluster.leader) - decided0
            callgrind_control_all("--dump", [p.pid for p in cluster.procs.values()])
            callgrind_control_all("--instr=off", [p.pid for p in cluster.procs.values()])
            instructions = {name: callgrind_totals(cluster.callgrind_out[name]) / max(1, decided) / 1000
                            for name in cluster.procs}
        out, _ = bench.communicate(timeout=60)
        for p in perf:
            p.wait()
        syscalls = {n: syscall_counts(p.communicate()[1]) for n, p in syscall_counters.items()}
        result = json.loads(out.strip().splitlines()[-1])
    finally:
        cluster.stop()
        disturbed = changes > 0 or result is None or result["errors"] > 0
        if args.group and disturbed:
            report_disturbance(work, changes, result)
        elif not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    n = max(1, result["committed"] + result["aborted"])
    if result["committed"] == 0:
        print(json.dumps(result), file=sys.stderr)
    row = {"build": label, "rate": result["committed_per_s"], "aborts": result["aborted"], "errors": result["errors"],
           "p50_ms": result["latency_ms"]["p50"], "leader_changes": changes}
    total = 0.0
    for name in pids:
        us = (cpu1[name] - cpu0[name]) * 1e6 / n
        total += us
        row[f"cpu_us.{name}"] = us
        row[f"vcs.{name}"] = (cs1[name][0] - cs0[name][0]) / n
        row[f"ivcs.{name}"] = (cs1[name][1] - cs0[name][1]) / n
        row[f"rss_growth_b.{name}"] = (rss1[name] - rss0[name]) / n
        row[f"disk_b.{name}"] = (disk1[name] - disk0[name]) / n
        for call in (("all",) + SYSCALLS) if args.syscalls else ():
            row[f"sys.{name}.{call}"] = syscalls[name].get(call, 0) / n
    row["cpu_us.total"] = total
    for name, thousands in instructions.items():
        row[f"ir.{name}"] = thousands
    if instructions:
        row["ir.total"] = sum(instructions.values())
    if args.group:
        row = by_role(row, cluster.member_urls, cluster.leader)
    return row


def by_role(row, member_urls, leader_url):
    """The row with each group member's figures under its role: "leader",
    then "follower1" for the follower that used more CPU, "follower2"."""
    followers = sorted((name for name, url in member_urls.items() if url != leader_url),
                       key=lambda name: row.get(f"cpu_us.{name}", 0.0), reverse=True)
    role = {name: "leader" for name, url in member_urls.items() if url == leader_url}
    role.update({name: f"follower{i + 1}" for i, name in enumerate(followers)})
    ranks = {"leader": 0, "follower1": 1, "follower2": 2}
    renamed = []
    first_place = {}  # figure (and call) -> where its first member stood
    for place, (key, value) in enumerate(row.items()):
        figure, _, process = key.partition(".")
        name, _, call = process.partition(".")  # sys.<process>.<call>
        rank = 0
        if name in role:
            rank = ranks[role[name]]
            place = first_place.setdefault((figure, call), place)
            key = f"{figure}.{role[name]}" + (f".{call}" if call else "")
        renamed.append((place, rank, key, value))
    # Each figure's members in role order, where the first of them stood.
    return {key: value for _, _, key, value in sorted(renamed)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="bin directory of build A (the baseline)")
    ap.add_argument("--b", help="bin directory of build B")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--protocol", default="2pc")
    ap.add_argument("--group", action="store_true")
    ap.add_argument("--perf-dir")
    ap.add_argument("--perf-freq", type=int, default=999, help="perf samples per second")
    ap.add_argument("--call-graph", default="dwarf", help="perf --call-graph mode (dwarf or fp)")
    ap.add_argument("--syscalls", action="store_true", help="count each process's system calls (perf stat)")
    ap.add_argument("--instructions", action="store_true",
                    help="count each server's user-space instructions per transfer under callgrind")
    ap.add_argument("--agent-config-b", help="a --config file for build B's agents (a setting build A lacks)")
    ap.add_argument("--work-dir", default=os.path.join(ROOT, "build", "bench"))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    builds = [("A", os.path.abspath(args.a))] + ([("B", os.path.abspath(args.b))] if args.b else [])
    for _, bin_dir in builds:
        missing = [b for b in NEEDED_BINARIES if not os.access(os.path.join(bin_dir, b), os.X_OK)]
        if missing:
            sys.exit(f"ab_cpu.py: {bin_dir} lacks {', '.join(missing)}")
    rows = []
    for i in range(args.pairs):
        order = builds if i % 2 == 0 else builds[::-1]
        for label, bin_dir in order:
            load = os.getloadavg()[0]
            row = one_run(args, label, bin_dir, i)
            row["load1"] = load
            rows.append(row)
            print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    keys = [k for k in rows[0] if k not in ("build",)]
    print()
    print(f"{'figure':<22}" + "".join(f"{'build ' + label + ' median [min-max]':>34}" for label, _ in builds))
    for k in keys:
        line = f"{k:<22}"
        for label, _ in builds:
            vals = [r[k] for r in rows if r["build"] == label]
            line += f"{statistics.median(vals):>16.2f} [{min(vals):.2f}-{max(vals):.2f}]".rjust(34)
        print(line)


if __name__ == "__main__":
    sys.exit(main())
