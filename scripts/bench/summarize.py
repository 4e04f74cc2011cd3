#!/usr/bin/env python3
"""Medians and [min-max] of several scripts/bench.sh outputs, one line per figure.

  scripts/bench.sh > run1.txt; scripts/bench.sh > run2.txt; scripts/bench.sh > run3.txt
  scripts/bench/summarize.py run1.txt run2.txt run3.txt

Reads what bench.sh prints: its summary table (rate, p50 and the ratio over
SQLite of each row), the group-over-etcd lines, the PostgreSQL comparison and
the ab_cpu.py sections (CPU per transfer and context switches of every
process, and leader changes of a group). Every ratio is the one taken within
its run; the summary gives the median of those and their range, never a
ratio of medians. A figure missing
from some runs is summarized over the runs that have it, and says how many.
"""

import re
import statistics
import sys

TABLE_ROW = re.compile(r"^(?P<name>(?:sqlite one-row commit|transfers \S.*?|agent prepares\+commits, \d+|etcd put, .*?))"
                       r"\s{2,}(?P<numbers>[\d.\s]+)$")
GROUP_OVER_ETCD = re.compile(r"commitd group ÷ etcd at (\d+) clients?: ([\d.]+)\s+\(CPU per put, etcd \+ wrk: (\d+)")
POSTGRES_RATIO = re.compile(r"^ratio (PostgreSQL agent|SQLite agent) / PostgreSQL alone \(medians\): ([\d.]+)", re.M)
POSTGRES_RATE = re.compile(r"^(agent|sqlite|pgbench)\s+median ([\d,]+)", re.M)
# A line of ab_cpu.py's summary: figure, then build A's median [min-max].
CPU_FIGURE = re.compile(r"^([a-z_0-9.-]+)\s+([\d.]+) \[[\d.]+-[\d.]+\]")
CPU_SECTION = re.compile(r"^== CPU per transfer, every process \(scripts/bench/ab_cpu\.py (?P<args>[^)]*)\)$", re.M)


def figures(text):
    """{figure name: value} of one bench.sh output."""
    out = {}
    for line in text.splitlines():
        m = TABLE_ROW.match(line.rstrip())
        if m:
            numbers = [float(n) for n in m.group("numbers").split()]
            name = m.group("name")
            out[f"{name}: per second"] = numbers[0]
            out[f"{name}: p50 ms"] = numbers[1]
            out[f"{name}: ÷ sqlite"] = numbers[-1]
            continue
        m = GROUP_OVER_ETCD.search(line)
        if m:
            out[f"group ÷ etcd, {m.group(1)} clients"] = float(m.group(2))
            out[f"etcd CPU µs per put, {m.group(1)} clients"] = float(m.group(3))
    p50_2pc = out.get("transfers 2pc, 1 client: p50 ms")
    p50_3pc = out.get("transfers 3pc, 1 client: p50 ms")
    if p50_2pc and p50_3pc:
        out["3pc p50 ÷ 2pc p50, 1 client"] = p50_3pc / p50_2pc
    for m in POSTGRES_RATIO.finditer(text):
        out[f"{m.group(1)} ÷ PostgreSQL alone"] = float(m.group(2))
    for m in POSTGRES_RATE.finditer(text):
        out[f"postgres comparison, {m.group(1)}: prepares+commits/s"] = float(m.group(2).replace(",", ""))
    sections = list(CPU_SECTION.finditer(text))
    for i, section in enumerate(sections):
        end = sections[i + 1].start() if i + 1 < len(sections) else len(text)
        prefix = f"ab_cpu {section.group('args')}"
        for line in text[section.end():end].splitlines():
            m = CPU_FIGURE.match(line)
            if not m or m.group(1) == "load1" or (m.group(1) == "leader_changes" and "--group" not in prefix):
                continue
            # A group's members are named by role (ab_cpu.py): leader, follower1 (the busier), follower2.
            out[f"{prefix}: {m.group(1)}"] = float(m.group(2))
    return out


def main(paths):
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    runs = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            runs.append(figures(f.read()))
    names = []
    for run in runs:
        names += [n for n in run if n not in names]
    if not names:
        print("summarize.py: no bench.sh figures found in " + ", ".join(paths), file=sys.stderr)
        return 1
    width = max(len(n) for n in names)
    for name in names:
        values = [run[name] for run in runs if name in run]
        digits = 2 if max(abs(v) for v in values) < 100 else 0
        spread = f"{statistics.median(values):,.{digits}f} [{min(values):,.{digits}f}–{max(values):,.{digits}f}]"
        partial = f"  ({len(values)} of {len(runs)} runs)" if len(values) != len(runs) else ""
        print(f"{name:<{width}}  {spread}{partial}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
