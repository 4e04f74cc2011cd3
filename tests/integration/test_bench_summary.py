"""scripts/bench/summarize.py on bench.sh outputs: medians and ranges of each
figure across runs, ratios taken within each run, the group's members by
role, and a clear failure on a file that holds no figures;
scripts/bench/chain.py's means of the servers' histograms and the servers it
reads; and scripts/bench/ab_cpu.py's reading of system call counts and its
naming of a group's members by role.

Run: python3 test_bench_summary.py --source-dir .
"""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def bench_output(sqlite_rate, transfers_rate, ratio, p50_2pc, p50_3pc, leader_us):
    members = {"leader": leader_us, "follower1": 36.0, "follower2": 35.0}
    member_lines = "\n".join(f"cpu_us.{name}  {us:.2f} [{us:.2f}-{us:.2f}]" for name, us in members.items())
    return f"""transfers     1s: 10 committed/s, p50 1.00 ms, p99 2.00 ms, 0 errors
measurement                           per second    p50 ms    p90 ms    p99 ms  aborts  errors  ÷ sqlite
sqlite one-row commit                       {sqlite_rate}      0.13                0.35                      1.00
transfers 2pc, 1 client                      700      {p50_2pc}      1.62      2.68       0       0      0.10
transfers 3pc, 1 client                      450      {p50_3pc}      2.48      3.33       0       0      0.06
transfers 2pc, 64 clients                   {transfers_rate}     12.46     15.49     18.34       0       0      {ratio}
etcd put, group of 3, 64 clients            6908      8.48               20.36               0      0.97
  commitd group ÷ etcd at 64 clients: 0.58   (CPU per put, etcd + wrk: 251 µs)

== CPU per transfer, every process (scripts/bench/ab_cpu.py --clients 64 --group)
figure                          build A median [min-max]
rate                           4000.00 [4000.00-4000.00]
leader_changes                    0.00 [0.00-0.00]
{member_lines}
cpu_us.total                      400.00 [400.00-400.00]
load1                                   1.24 [1.24-1.24]
"""


def summarize(*texts):
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i, text in enumerate(texts):
            path = os.path.join(d, f"run{i}.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            paths.append(path)
        script = os.path.join(harness.OPTIONS.source_dir, "scripts", "bench", "summarize.py")
        done = subprocess.run([sys.executable, script, *paths], capture_output=True, text=True, timeout=30)
    lines = {}
    for line in done.stdout.splitlines():
        name, value = re.match(r"^(.*?)\s{2,}(\S.*)$", line).groups()
        lines[name] = value
    return done.returncode, lines, done.stderr


def test_medians_and_ranges_of_figures_taken_within_each_run():
    rc, lines, err = summarize(bench_output(7000, 5000, 0.71, 1.20, 1.80, 120.0),
                               bench_output(6000, 5400, 0.90, 1.30, 2.60, 130.0),
                               bench_output(8000, 4800, 0.60, 1.00, 1.60, 110.0))
    assert rc == 0, err
    assert lines["sqlite one-row commit: per second"] == "7,000 [6,000–8,000]", lines
    assert lines["transfers 2pc, 64 clients: ÷ sqlite"] == "0.71 [0.60–0.90]", lines
    # 1.80/1.20 = 1.50, 2.60/1.30 = 2.00, 1.60/1.00 = 1.60: the median of the runs' own ratios.
    assert lines["3pc p50 ÷ 2pc p50, 1 client"] == "1.60 [1.50–2.00]", lines
    assert lines["group ÷ etcd, 64 clients"] == "0.58 [0.58–0.58]", lines
    # ab_cpu.py names the members by role, whichever of them led a run.
    assert lines["ab_cpu --clients 64 --group: cpu_us.leader"] == "120 [110–130]", lines
    assert lines["ab_cpu --clients 64 --group: cpu_us.follower1"] == "36.00 [36.00–36.00]", lines
    assert lines["ab_cpu --clients 64 --group: cpu_us.total"] == "400 [400–400]", lines
    assert not any(name.endswith("load1") for name in lines), lines


def test_a_figure_missing_from_a_run_says_so():
    partial = bench_output(7000, 5000, 0.71, 1.20, 1.80, 120.0).replace(
        "transfers 3pc, 1 client ", "transfers 3pc, 1 clientX")
    rc, lines, err = summarize(bench_output(7000, 5000, 0.71, 1.20, 1.80, 120.0), partial)
    assert rc == 0, err
    assert lines["transfers 3pc, 1 client: p50 ms"].endswith("(1 of 2 runs)"), lines


def test_chain_means_over_the_window():
    """scripts/bench/chain.py's reading of two /metrics texts: the mean of each
    histogram over the window (seconds as ms), per label set; a series that did
    not grow, or has no sum, gives none."""
    sys.path.insert(0, os.path.join(harness.OPTIONS.source_dir, "scripts", "bench"))
    import chain  # noqa: E402
    before = chain.parse_histograms("""# TYPE commitd_x_seconds histogram
commitd_x_seconds_bucket{le="0.001"} 1
commitd_x_seconds_sum{phase="prepare"} 0.002
commitd_x_seconds_count{phase="prepare"} 2
commitd_idle_seconds_sum 1
commitd_idle_seconds_count 4
commitd_things_total 7
""")
    after = chain.parse_histograms("""commitd_x_seconds_sum{phase="prepare"} 0.005
commitd_x_seconds_count{phase="prepare"} 4
commitd_x_seconds_sum{phase="commit"} 0.004
commitd_x_seconds_count{phase="commit"} 1
commitd_batch_size_sum 30
commitd_batch_size_count 10
commitd_idle_seconds_sum 1
commitd_idle_seconds_count 4
commitd_things_total 9
""")
    got = {k: round(v, 6) for k, v in chain.means(before, after).items()}
    assert got == {'commitd_x_seconds{phase="prepare"} ms': 1.5, 'commitd_x_seconds{phase="commit"} ms': 4.0,
                   "commitd_batch_size": 3.0}, got


def test_chain_reads_the_leader_and_each_follower():
    """scripts/bench/chain.py --group names the leader and the followers it
    reads by role, whichever member leads; alone, the coordinator."""
    sys.path.insert(0, os.path.join(harness.OPTIONS.source_dir, "scripts", "bench"))
    import chain  # noqa: E402
    agents = {"bank-a": "http://a", "bank-b": "http://b"}
    members = ["http://g1", "http://g2", "http://g3"]
    assert chain.servers_read(agents, members, "http://g2", True) == {
        "bank-a": "http://a", "bank-b": "http://b", "leader": "http://g2", "follower1": "http://g1",
        "follower2": "http://g3"}
    assert chain.servers_read(agents, ["http://c1"], "http://c1", False) == {
        "bank-a": "http://a", "bank-b": "http://b", "commitd": "http://c1"}


def test_ab_cpu_reads_system_call_counts():
    """scripts/bench/ab_cpu.py --syscalls: each call's count from `perf stat -x,`
    (the total under "all"); lines that are not counts, such as an event perf
    could not count, are left out."""
    sys.path.insert(0, os.path.join(harness.OPTIONS.source_dir, "scripts", "bench"))
    import ab_cpu  # noqa: E402
    got = ab_cpu.syscall_counts("""12840,,raw_syscalls:sys_enter,5001234567,100.00,,
5310,,syscalls:sys_enter_recvmsg,5001234567,100.00,,
2211,,syscalls:sys_enter_sendmsg,5001234567,100.00,,
<not counted>,,syscalls:sys_enter_fcntl,0,0.00,,
""")
    assert got == {"all": 12840, "recvmsg": 5310, "sendmsg": 2211}, got


def test_ab_cpu_names_a_groups_members_by_role():
    """ab_cpu.py --group: the member the load went to is "leader", the
    follower that used more CPU "follower1", each figure's members in that
    order; other processes keep their names."""
    sys.path.insert(0, os.path.join(harness.OPTIONS.source_dir, "scripts", "bench"))
    import ab_cpu  # noqa: E402
    row = {"rate": 4000.0, "cpu_us.g1": 30.0, "cpu_us.g2": 110.0, "cpu_us.g3": 35.0, "vcs.g1": 1.0, "vcs.g2": 2.0,
           "vcs.g3": 3.0, "sys.g3.sendmsg": 4.0, "cpu_us.bank-a": 80.0}
    got = ab_cpu.by_role(row, {"g1": "http://1", "g2": "http://2", "g3": "http://3"}, "http://2")
    assert list(got.items()) == [
        ("rate", 4000.0), ("cpu_us.leader", 110.0), ("cpu_us.follower1", 35.0), ("cpu_us.follower2", 30.0),
        ("vcs.leader", 2.0), ("vcs.follower1", 3.0), ("vcs.follower2", 1.0), ("sys.follower1.sendmsg", 4.0),
        ("cpu_us.bank-a", 80.0)], got


def test_no_figures_is_an_error():
    rc, lines, err = summarize("nothing measured here\n")
    assert rc == 1 and "no bench.sh figures" in err, (rc, lines, err)


if __name__ == "__main__":
    harness.main(globals())
