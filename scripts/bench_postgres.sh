#!/usr/bin/env bash
# The agents against PostgreSQL alone, in the same run.
# Starts a private PostgreSQL server (fsync and synchronous_commit on, as
# shipped; initdb into BENCH_WORK_DIR; as `nobody` when run as root) holding
# the example bank (accounts acct0..acct255), and a SQLite bank with the same
# accounts, then alternates, BENCH_ROUNDS times:
#   agent     commitd-bench agent: 64 clients, prepare (debit + journal) then
#             commit, straight to commit-agent --backend postgres;
#   sqlite    the same against commit-agent on the SQLite bank (WAL, FULL);
#   pgbench   the same statements driven directly by pgbench with 64 clients:
#             BEGIN; UPDATE; INSERT; PREPARE TRANSACTION; COMMIT PREPARED.
# Prints each run and the medians, min-max and the ratios of each agent to
# PostgreSQL alone (prepares+commits per second; one transaction = one
# prepare + one commit).
#
# Environment (defaults in brackets):
#   BENCH_ROUNDS [3]        alternated agent/pgbench rounds
#   BENCH_SECONDS [10]      measured seconds per run
#   BENCH_CLIENTS [64]      clients of both
#   BENCH_PG_CONNECTIONS [the agent's default]  the agent's pg_connections (its pool; docs/configuration.md)
#   BENCH_BACKGROUND_LOAD [0]  busy-loop processes kept running through every run (other work on the machine)
#   BENCH_SKIP_BUILD [0]    1: use the binaries already in BENCH_BIN_DIR
#   BENCH_BIN_DIR [build/release/bin]
#   BENCH_WORK_DIR [build/bench]  parent of the run's server and logs (keep it on a real disk)
#   BENCH_KEEP [0]          1: keep the run directory
#   COMMITD_PG_BIN [/usr/lib/postgresql/15/bin]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ROUNDS="${BENCH_ROUNDS:-3}"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
CLIENTS="${BENCH_CLIENTS:-64}"
BIN="${BENCH_BIN_DIR:-$ROOT/build/release/bin}"
PG_BIN="${COMMITD_PG_BIN:-/usr/lib/postgresql/15/bin}"
WORK_PARENT="${BENCH_WORK_DIR:-$ROOT/build/bench}"

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  echo "== building (./scripts/build.sh)"
  ./scripts/build.sh >/dev/null
fi
for exe in commit-agent commitd-bench; do
  [[ -x "$BIN/$exe" ]] || { echo "bench_postgres: $BIN/$exe not found; build first" >&2; exit 1; }
done
for exe in initdb postgres pg_isready psql pgbench; do
  [[ -x "$PG_BIN/$exe" ]] || { echo "bench_postgres: $PG_BIN/$exe not found (install postgresql)" >&2; exit 1; }
done

mkdir -p "$WORK_PARENT"
WORK="$(mktemp -d "$WORK_PARENT/pg-run.XXXXXX")"
chmod 755 "$WORK"
AS_PG=()
if [[ "$(id -u)" -eq 0 ]]; then
  AS_PG=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
  chown nobody:nogroup "$WORK"
fi
PIDS=()
PG_PID=""
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  if [[ -n "$PG_PID" ]]; then kill -INT "$PG_PID" 2>/dev/null || true; wait "$PG_PID" 2>/dev/null || true; fi
  if [[ $rc -ne 0 || "${BENCH_KEEP:-0}" == 1 ]]; then echo "bench_postgres: run kept in $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT

read -r PG_PORT AGENT_PORT SQLITE_PORT < <(python3 -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres)

"${AS_PG[@]}" "$PG_BIN/initdb" -D "$WORK/data" -U postgres --auth=trust -E UTF8 --locale=C >"$WORK/initdb.log" 2>&1
cat >>"$WORK/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$WORK'
max_prepared_transactions = 200
max_connections = 300
shared_buffers = 128MB
CONF
"${AS_PG[@]}" "$PG_BIN/postgres" -D "$WORK/data" >"$WORK/postgres.log" 2>&1 &
PG_PID=$!
for ((i = 0; i < 300; i++)); do "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.1; done
"${PSQL[@]}" -d postgres -c 'CREATE DATABASE bench'
"${PSQL[@]}" -d bench -f "$ROOT/examples/bank/schema.sql"
# acct* for the agent, pgacct* for pgbench: prepared transactions the agent run leaves (in flight when
# it stopped) are aborted before the next run, and never hold a row pgbench needs meanwhile.
"${PSQL[@]}" -d bench -c "INSERT INTO accounts SELECT p || i, 1000000000 FROM generate_series(0, 255) i,
                          unnest(ARRAY['acct', 'pgacct']) p"

if [[ -n "${BENCH_PG_CONNECTIONS:-}" ]]; then
  echo "{\"pg_connections\": $BENCH_PG_CONNECTIONS}" >"$WORK/agent-config.json"
else
  echo "{}" >"$WORK/agent-config.json"
fi
# Agents take prepares only from coordinators they know: `commitd-bench agent`
# names this address in its prepares and never needs it answered.
"$BIN/commit-agent" --name bank-a --coordinator http://127.0.0.1:1 --config "$WORK/agent-config.json" --listen "127.0.0.1:$AGENT_PORT" --backend postgres \
  --dsn "host=127.0.0.1 port=$PG_PORT dbname=bench user=postgres" \
  --procedures "$ROOT/examples/bank/procedures.json" --log-level warn >"$WORK/agent.log" 2>&1 &
PIDS+=("$!")
"$BIN/commitd-bench" setup-bank --db "$WORK/sqlite-bank.db" --prefix acct --accounts 256 --balance 1000000000 >/dev/null
"$BIN/commit-agent" --name bank-a --coordinator http://127.0.0.1:1 --listen "127.0.0.1:$SQLITE_PORT" \
  --db "$WORK/sqlite-bank.db" --procedures "$ROOT/examples/bank/procedures.json" --log-level warn >"$WORK/sqlite-agent.log" 2>&1 &
PIDS+=("$!")
for port in "$AGENT_PORT" "$SQLITE_PORT"; do
  for ((i = 0; i < 200; i++)); do curl -fsS -m 1 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done
for ((i = 0; i < ${BENCH_BACKGROUND_LOAD:-0}; i++)); do
  bash -c 'while :; do :; done' &
  PIDS+=("$!")
done

# The agent's statements (examples/bank/procedures.json), on a row per client, with PostgreSQL's own 2PC.
cat >"$WORK/prepare_commit.sql" <<'SQL'
\set n random(1, 1000000000000)
BEGIN;
UPDATE accounts SET balance = balance - 1 WHERE id = 'pgacct:client_id' AND balance >= 1;
INSERT INTO journal(txid, account, delta) VALUES ('pgb-:client_id-:n', 'pgacct:client_id', -1);
PREPARE TRANSACTION 'pgb-:client_id-:n';
COMMIT PREPARED 'pgb-:client_id-:n';
SQL

# One `commitd-bench agent` run against the agent at port $1: "rate refused errors p50".
agent_run() {
  "$BIN/commitd-bench" agent --agent "http://127.0.0.1:$1" --participant bank-a \
      --clients "$CLIENTS" --duration-s "$SECONDS_PER_RUN" --warmup-s 1 --json 2>/dev/null \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.0f %d %d %.2f" % (d["prepares_commits_per_s"], d["refused"], d["errors"], d["latency_ms"]["p50"]))'
  # Abort what the run left prepared (its last prepares, never committed).
  curl -fsS "http://127.0.0.1:$1/v1/transactions?state=prepared" \
    | python3 -c 'import json,sys; [print(t["txid"]) for t in json.load(sys.stdin)["transactions"]]' \
    | while read -r txid; do
        curl -fsS -o /dev/null -X POST -d "{\"txid\": \"$txid\"}" "http://127.0.0.1:$1/v1/abort"
      done
}

AGENT=()
SQLITE=()
PGB=()
for ((r = 1; r <= ROUNDS; r++)); do
  read -r a_rate a_refused a_errors a_p50 <<<"$(agent_run "$AGENT_PORT")"
  AGENT+=("$a_rate")
  echo "round $r  agent    $a_rate prepares+commits/s  (p50 ${a_p50} ms, refused $a_refused, errors $a_errors)"
  read -r s_rate s_refused s_errors s_p50 <<<"$(agent_run "$SQLITE_PORT")"
  SQLITE+=("$s_rate")
  echo "round $r  sqlite   $s_rate prepares+commits/s  (p50 ${s_p50} ms, refused $s_refused, errors $s_errors)"
  p="$(pgbench -n -M simple -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" -f "$WORK/prepare_commit.sql" \
        -h 127.0.0.1 -p "$PG_PORT" -U postgres bench 2>&1 | tee -a "$WORK/pgbench.log" \
        | awk '/^tps = / {printf "%.0f", 2 * $3}')"
  PGB+=("$p")
  echo "round $r  pgbench  $p prepares+commits/s"
done

python3 - "${AGENT[*]}" "${SQLITE[*]}" "${PGB[*]}" <<'PY'
import statistics, sys
agent, sqlite, pg = ([float(x) for x in arg.split()] for arg in sys.argv[1:4])
for name, runs in (("agent", agent), ("sqlite", sqlite), ("pgbench", pg)):
    print(f"{name:8} median {statistics.median(runs):,.0f}  min-max {min(runs):,.0f}-{max(runs):,.0f} prepares+commits/s")
mp = statistics.median(pg)
for name, label, runs in (("agent", "PostgreSQL agent", agent), ("sqlite", "SQLite agent", sqlite)):
    print(f"ratio {label} / PostgreSQL alone (medians): {statistics.median(runs) / mp:.2f}  (per round: "
          + ", ".join(f"{a / p:.2f}" for a, p in zip(runs, pg)) + ")")
PY
