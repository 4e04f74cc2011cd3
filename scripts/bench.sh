#!/usr/bin/env bash
# Benchmarks commitd on loopback: builds, creates two bank databases, starts one
# commitd and two commit-agents, measures the SQLite one-row commit baseline and
# transfers at 1 and 64 clients, prints a summary, and stops everything.
#
# Environment (defaults in brackets):
#   BENCH_SQLITE_S [5]      seconds of sqlite-commit
#   BENCH_TRANSFER_S [10]   measured seconds per transfers run
#   BENCH_WARMUP_S [1]      warmup seconds before each transfers run (not counted)
#   BENCH_CLIENTS ["1 64"]  client counts, one transfers run each
#   BENCH_ACCOUNTS [256]    accounts per bank
#   BENCH_PROTOCOL [2pc]    2pc, 3pc, or "2pc 3pc": the transfers runs once per protocol, side by side
#   BENCH_SKIP_AGENT [0]    1: skip the agent group-commit run
#   BENCH_GROUP [0]         1: also start a 3-node coordinator group (Raft) on the same agents and run
#                           the 2pc transfers against its leader, each right after the single
#                           coordinator's 2pc run with the same client count
#   BENCH_ETCD [0]          1: also run the etcd reference (scripts/bench/etcd_reference.py: a 3-member
#                           etcd cluster, puts through its JSON gateway with wrk) at BENCH_CLIENTS, after
#                           commitd's runs, and print the group's rate over etcd's
#   BENCH_POSTGRES [0]      1: also run scripts/bench_postgres.sh (the PostgreSQL and SQLite agents
#                           against PostgreSQL alone, 64 clients; BENCH_PG_ROUNDS [1] rounds) after the summary
#   BENCH_CPU [0]           1: also run scripts/bench/ab_cpu.py on these binaries (CPU per transfer of
#                           every process) at 64 clients and 1 client, and for the group if BENCH_GROUP=1
#   BENCH_PRESET [release]  CMake preset to build: release (-O2, no debug info) or
#                           relwithdebinfo (-O2 -g: symbols and lines for perf)
#   BENCH_SKIP_BUILD [0]    1: use the binaries already in BENCH_BIN_DIR
#   BENCH_BIN_DIR [build/BENCH_PRESET/bin]
#   BENCH_WORK_DIR [build/bench]  parent of the run's databases and logs; keep it on
#                           the disk you want to measure (not tmpfs)
#   BENCH_KEEP [0]          1: keep the run directory afterwards
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SQLITE_S="${BENCH_SQLITE_S:-5}"
TRANSFER_S="${BENCH_TRANSFER_S:-10}"
WARMUP_S="${BENCH_WARMUP_S:-1}"
CLIENTS="${BENCH_CLIENTS:-1 64}"
ACCOUNTS="${BENCH_ACCOUNTS:-256}"
PROTOCOL="${BENCH_PROTOCOL:-2pc}"
PRESET="${BENCH_PRESET:-release}"
BIN="${BENCH_BIN_DIR:-$ROOT/build/$PRESET/bin}"
WORK_PARENT="${BENCH_WORK_DIR:-$ROOT/build/bench}"

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  if [[ "$PRESET" == release ]]; then
    echo "== building (./scripts/build.sh)"
    ./scripts/build.sh >/dev/null
  else
    echo "== building preset $PRESET"
    ./scripts/deps.sh
    cmake --preset "$PRESET" >/dev/null
    cmake --build --preset "$PRESET" --parallel "$(nproc 2>/dev/null || echo 2)" \
      --target commitd commit-agent commitd-bench commitctl >/dev/null
  fi
fi
for exe in commitd commit-agent commitd-bench commitctl; do
  [[ -x "$BIN/$exe" ]] || { echo "bench: $BIN/$exe not found; build first (./scripts/build.sh)" >&2; exit 1; }
done

mkdir -p "$WORK_PARENT"
WORK="$(mktemp -d "$WORK_PARENT/run.XXXXXX")"
PIDS=()

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $rc -ne 0 ]]; then
    echo "bench: failed (exit $rc); last log lines:" >&2
    for log in "$WORK"/*.log; do [[ -f "$log" ]] && { echo "--- $log" >&2; tail -n 5 "$log" >&2; }; done
    echo "bench: run directory kept: $WORK" >&2
  elif [[ "${BENCH_KEEP:-0}" == 1 ]]; then
    echo "run directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Below Linux's ephemeral range, so that the 64 clients' outgoing connections
# cannot take a listening port first.
free_port() {
  python3 -c '
import random, socket
while True:
    port = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        print(port)
        break
    except OSError:
        pass
    finally:
        s.close()'
}

wait_healthy() {  # url name
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$1/healthz" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench: $2 did not answer $1/healthz within 10 s" >&2
  return 1
}

echo "== run directory $WORK"
"$BIN/commitd-bench" setup-bank --db "$WORK/a.db" --prefix acct --accounts "$ACCOUNTS" --balance 1000000000000
"$BIN/commitd-bench" setup-bank --db "$WORK/b.db" --prefix acct --accounts "$ACCOUNTS" --balance 1000000000000

PA="$(free_port)"; PB="$(free_port)"; PC="$(free_port)"
while [[ "$PB" == "$PA" ]]; do PB="$(free_port)"; done
while [[ "$PC" == "$PA" || "$PC" == "$PB" ]]; do PC="$(free_port)"; done
COORD="http://127.0.0.1:$PC"
GP=(); PEERS=""
if [[ "${BENCH_GROUP:-0}" == 1 ]]; then
  for i in 1 2 3; do
    p="$(free_port)"
    while [[ " $PA $PB $PC ${GP[*]} " == *" $p "* ]]; do p="$(free_port)"; done
    GP+=("$p"); PEERS+="${PEERS:+,}g$i=http://127.0.0.1:$p"
  done
fi
# Agents take prepares only from coordinators they know: the single one, the
# group's members, and the address `commitd-bench agent` names in its prepares.
KNOWN="$COORD,http://127.0.0.1:1"
for p in "${GP[@]}"; do KNOWN+=",http://127.0.0.1:$p"; done

"$BIN/commit-agent" --name bank-a --listen "127.0.0.1:$PA" --db "$WORK/a.db" \
  --procedures examples/bank/procedures.json --coordinator "$KNOWN" 2>"$WORK/bank-a.log" &
PIDS+=($!)
"$BIN/commit-agent" --name bank-b --listen "127.0.0.1:$PB" --db "$WORK/b.db" \
  --procedures examples/bank/procedures.json --coordinator "$KNOWN" 2>"$WORK/bank-b.log" &
PIDS+=($!)
mkdir -p "$WORK/c1"
"$BIN/commitd" --id c1 --listen "127.0.0.1:$PC" --data-dir "$WORK/c1" \
  --participant "bank-a=http://127.0.0.1:$PA" --participant "bank-b=http://127.0.0.1:$PB" 2>"$WORK/commitd.log" &
PIDS+=($!)

wait_healthy "http://127.0.0.1:$PA" bank-a
wait_healthy "http://127.0.0.1:$PB" bank-b
wait_healthy "$COORD" commitd
for _ in $(seq 100); do
  "$BIN/commitctl" --coordinator "$COORD" status >/dev/null 2>&1 && break
  sleep 0.1
done
"$BIN/commitctl" --coordinator "$COORD" status

echo "== sqlite-commit for ${SQLITE_S}s"
"$BIN/commitd-bench" sqlite-commit --db "$WORK/sqlite-baseline.db" --duration-s "$SQLITE_S" --json \
  | tee "$WORK/sqlite.json"

RESULTS=("$WORK/sqlite.json")
AGENT_CLIENTS="${BENCH_AGENT_CLIENTS:-64}"
if [[ "${BENCH_SKIP_AGENT:-0}" == 1 ]]; then
  echo '{}' >"$WORK/agent.json"
else
  echo "== agent group commit: prepare+commit straight to bank-a, $AGENT_CLIENTS clients, ${TRANSFER_S}s"
  "$BIN/commitd-bench" agent --agent "http://127.0.0.1:$PA" --participant bank-a --clients "$AGENT_CLIENTS" \
    --duration-s "$TRANSFER_S" --warmup-s "$WARMUP_S" --account-prefix acct --accounts "$ACCOUNTS" --json \
    | tee "$WORK/agent.json"
fi
LEADER=""
if [[ "${BENCH_GROUP:-0}" == 1 ]]; then
  for i in 1 2 3; do
    mkdir -p "$WORK/g$i"
    "$BIN/commitd" --id "g$i" --listen "127.0.0.1:${GP[$((i - 1))]}" --data-dir "$WORK/g$i" --peers "$PEERS" \
      --participant "bank-a=http://127.0.0.1:$PA" --participant "bank-b=http://127.0.0.1:$PB" 2>"$WORK/g$i.log" &
    PIDS+=($!)
  done
  for _ in $(seq 100); do
    for i in 1 2 3; do
      url="http://127.0.0.1:${GP[$((i - 1))]}"
      if curl -fsS "$url/v1/cluster" 2>/dev/null | grep -q '"leader_ready":true'; then LEADER="$url"; break; fi
    done
    [[ -n "$LEADER" ]] && break
    sleep 0.1
  done
  [[ -n "$LEADER" ]] || { echo "bench: the coordinator group elected no leader within 10 s" >&2; exit 1; }
  echo "== coordinator group of 3, leader $LEADER"
fi

for n in $CLIENTS; do
  for protocol in $PROTOCOL; do
    echo "== transfers $protocol, $n client(s), ${TRANSFER_S}s after ${WARMUP_S}s warmup"
    "$BIN/commitd-bench" transfers --coordinator "$COORD" --clients "$n" --duration-s "$TRANSFER_S" \
      --warmup-s "$WARMUP_S" --account-prefix acct --accounts "$ACCOUNTS" --protocol "$protocol" --json \
      | tee "$WORK/transfers-$protocol-$n.json"
    RESULTS+=("$WORK/transfers-$protocol-$n.json")
    # The group's run follows the single coordinator's at once, on the same
    # databases: later runs meet larger journal tables and decision logs.
    if [[ -n "$LEADER" && "$protocol" == 2pc ]]; then
      echo "== transfers 2pc through the group, $n client(s), ${TRANSFER_S}s after ${WARMUP_S}s warmup"
      "$BIN/commitd-bench" transfers --coordinator "$LEADER" --clients "$n" --duration-s "$TRANSFER_S" \
        --warmup-s "$WARMUP_S" --account-prefix acct --accounts "$ACCOUNTS" --protocol 2pc --json \
        | tee "$WORK/transfers-group-$n.json"
      RESULTS+=("$WORK/transfers-group-$n.json")
    fi
  done
done


ETCD_RESULTS="$WORK/etcd.jsonl"
: >"$ETCD_RESULTS"
if [[ "${BENCH_ETCD:-0}" == 1 ]]; then
  echo "== etcd reference: 3 members, puts through the JSON gateway, clients $CLIENTS"
  mkdir -p "$WORK/etcd"
  python3 scripts/bench/etcd_reference.py --work-dir "$WORK/etcd" --clients "$CLIENTS" \
    --seconds "$TRANSFER_S" --warmup "$WARMUP_S" | tee "$ETCD_RESULTS"
fi

settled=0
for _ in $(seq 50); do
  if "$BIN/commitctl" --coordinator "$COORD" status >/dev/null 2>&1; then settled=1; break; fi
  sleep 0.1
done
[[ $settled == 1 ]] || echo "note: commits still being delivered 5 s after the run (see commitctl status)"

python3 - "$WORK/agent.json" "$ETCD_RESULTS" "${RESULTS[@]}" <<'PY'
import json, sys
agent = json.load(open(sys.argv[1]))
etcd = [json.loads(line) for line in open(sys.argv[2]) if line.strip()]
runs = [json.load(open(p)) for p in sys.argv[3:]]
for p, r in zip(sys.argv[3:], runs):
    r["group"] = "transfers-group-" in p
base = runs[0]["commits_per_s"]
print()
print(f"{'measurement':<36}{'per second':>12}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'aborts':>8}{'errors':>8}{'÷ sqlite':>10}")
print(f"{'sqlite one-row commit':<36}{base:>12.0f}{runs[0]['p50_us']/1000:>10.2f}{'':>10}{runs[0]['p99_us']/1000:>10.2f}"
      f"{'':>8}{'':>8}{1:>10.2f}")
for r in runs[1:]:
    lat = r["latency_ms"]
    name = f"transfers {r['protocol']}{' group of 3' if r['group'] else ''}, {r['clients']} client" + ("s" if r["clients"] != 1 else "")
    ratio = r["committed_per_s"] / base if base else 0
    print(f"{name:<36}{r['committed_per_s']:>12.0f}{lat['p50']:>10.2f}{lat['p90']:>10.2f}{lat['p99']:>10.2f}"
          f"{r['aborted']:>8}{r['errors']:>8}{ratio:>10.2f}")
lat = agent.get("latency_ms")
if lat: print(f"{'agent prepares+commits, ' + str(agent['clients']):<36}{agent['prepares_commits_per_s']:>12.0f}{lat['p50']:>10.2f}"
      f"{lat['p90']:>10.2f}{lat['p99']:>10.2f}{agent['refused']:>8}{agent['errors']:>8}"
      f"{agent['prepares_commits_per_s'] / base if base else 0:>10.2f}")
group_rate = {r["clients"]: r["committed_per_s"] for r in runs[1:] if r["group"]}
for e in etcd:
    name = f"etcd put, group of 3, {e['clients']} client" + ("s" if e["clients"] != 1 else "")
    print(f"{name:<36}{e['ops_per_s']:>12.0f}{e['p50_ms']:>10.2f}{'':>10}{e['p99_ms']:>10.2f}{'':>8}{e['errors']:>8}"
          f"{e['ops_per_s'] / base if base else 0:>10.2f}")
    if e["clients"] in group_rate and e["ops_per_s"]:
        print(f"  commitd group ÷ etcd at {e['clients']} clients: {group_rate[e['clients']] / e['ops_per_s']:.2f}"
              f"   (CPU per put, etcd + wrk: {e['cpu_us_per_op']:.0f} µs)")
print()
print("÷ sqlite: committed transfers per second over one-row SQLite commits per second on this disk.")
print("The agent line counts prepares plus commits per second on one agent.")
print("Each transfer needs at least 3 durable writes (two prepares and the decision) plus two commits.")
PY

if [[ "${BENCH_POSTGRES:-0}" == 1 ]]; then
  echo
  echo "== the agents against PostgreSQL alone (scripts/bench_postgres.sh)"
  BENCH_SKIP_BUILD=1 BENCH_BIN_DIR="$BIN" BENCH_ROUNDS="${BENCH_PG_ROUNDS:-1}" BENCH_SECONDS="$TRANSFER_S" BENCH_CLIENTS=64 \
    BENCH_WORK_DIR="$WORK_PARENT" ./scripts/bench_postgres.sh
fi
if [[ "${BENCH_CPU:-0}" == 1 ]]; then
  cpu_runs=("--clients 64" "--clients 1")
  [[ "${BENCH_GROUP:-0}" == 1 ]] && cpu_runs+=("--clients 64 --group")
  for args in "${cpu_runs[@]}"; do
    echo
    echo "== CPU per transfer, every process (scripts/bench/ab_cpu.py $args)"
    # shellcheck disable=SC2086
    python3 scripts/bench/ab_cpu.py --a "$BIN" --pairs 1 --seconds "$TRANSFER_S" $args \
      --work-dir "$WORK_PARENT" | grep -E '^(figure|rate|p50_ms|cpu_us|vcs|leader_changes)'
  done
fi
