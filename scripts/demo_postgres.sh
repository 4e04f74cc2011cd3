#!/usr/bin/env bash
# Mixed demo: one coordinator, a SQLite bank (bank-a) and a PostgreSQL bank
# (bank-b, commit-agent --backend postgres) on loopback. Starts a private
# PostgreSQL server (initdb into a temp dir, max_prepared_transactions set;
# as `nobody` when run as root), runs a committed and an aborted transfer
# from bank-a to bank-b, shows the balances on both sides and that
# pg_prepared_xacts is empty, and shuts everything down.
#
# Environment:
#   COMMITD_DEMO_KEEP=1      keep the temp dir (databases and logs) afterwards
#   COMMITD_DEMO_NO_BUILD=1  skip deps and build (use the existing binaries)
#   COMMITD_BIN_DIR=DIR      where commitd and commit-agent are (default build/release/bin)
#   COMMITD_PG_BIN=DIR       PostgreSQL's binaries (default /usr/lib/postgresql/15/bin)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ "${COMMITD_DEMO_NO_BUILD:-0}" != 1 ]]; then
  "$ROOT/scripts/build.sh"
fi
BIN="${COMMITD_BIN_DIR:-$ROOT/build/release/bin}"
PG_BIN="${COMMITD_PG_BIN:-/usr/lib/postgresql/15/bin}"
BANK="$ROOT/examples/bank"

bold() { if [[ -t 1 ]]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
step() { printf '\n'; bold "== $*"; }
die() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }

for exe in commitd commit-agent; do
  [[ -x "$BIN/$exe" ]] || die "$BIN/$exe not found (did the build succeed?)"
done
for exe in initdb postgres pg_isready psql; do
  [[ -x "$PG_BIN/$exe" ]] || die "$PG_BIN/$exe not found (install postgresql: ./scripts/deps.sh)"
done
for tool in sqlite3 curl python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required (run ./scripts/deps.sh)"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/commitd-demo-pg.XXXXXX")"
chmod 755 "$WORK"
PIDS=()
AS_PG=()
if [[ "$(id -u)" -eq 0 ]]; then
  AS_PG=(setpriv --reuid=nobody --regid=nogroup --clear-groups)  # postgres refuses to run as root
fi
PG_DIR="$WORK/pg"
mkdir -p "$PG_DIR"
[[ ${#AS_PG[@]} -eq 0 ]] || chown nobody:nogroup "$PG_DIR"
PG_PID=""

cleanup() {
  local rc=$? i
  trap - EXIT
  if [[ $rc -ne 0 ]]; then
    for f in "$WORK"/*.log "$PG_DIR/postgres.log"; do
      [[ -e "$f" ]] && { printf '\n--- last lines of %s ---\n' "$f" >&2; tail -n 30 "$f" >&2; }
    done
  fi
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[i]}" 2>/dev/null || true
    wait "${PIDS[i]}" 2>/dev/null || true
  done
  if [[ -n "$PG_PID" ]]; then
    kill -INT "$PG_PID" 2>/dev/null || true
    wait "$PG_PID" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 || "${COMMITD_DEMO_KEEP:-0}" == 1 ]]; then
    echo "demo: databases and logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

read -r A_PORT B_PORT C_PORT PG_PORT < <(python3 - <<'PY'
import socket
socks = []
for _ in range(4):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)
C_URL="http://127.0.0.1:$C_PORT"
DSN="host=127.0.0.1 port=$PG_PORT dbname=bank-b user=postgres"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres)

step "A private PostgreSQL server on 127.0.0.1:$PG_PORT (max_prepared_transactions = 64)"
"${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C --no-sync \
  >"$PG_DIR/initdb.log" 2>&1 || die "initdb failed (see $PG_DIR/initdb.log)"
cat >>"$PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
max_prepared_transactions = 64
CONF
"${AS_PG[@]}" "$PG_BIN/postgres" -D "$PG_DIR/data" >"$PG_DIR/postgres.log" 2>&1 &
PG_PID=$!
for ((i = 0; i < 200; i++)); do
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
  kill -0 "$PG_PID" 2>/dev/null || die "postgres exited while starting"
  sleep 0.1
done
"${PSQL[@]}" -d postgres -c 'CREATE DATABASE "bank-b"'
"${PSQL[@]}" -d bank-b -f "$BANK/schema.sql" -f "$BANK/seed-b.sql"
sqlite3 "$WORK/bank-a.db" <"$BANK/schema.sql"
sqlite3 "$WORK/bank-a.db" <"$BANK/seed-a.sql"

start() {  # start NAME COMMAND...
  local name="$1"
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
}
wait_healthy() {  # wait_healthy NAME URL
  for ((i = 0; i < 200; i++)); do
    curl -fsS -m 1 "$2/healthz" >/dev/null 2>&1 && { printf '  %-8s up at %s\n' "$1" "$2"; return 0; }
    sleep 0.1
  done
  die "$1 did not answer $2/healthz within 20 s (log: $WORK/$1.log)"
}

step "bank-a on SQLite, bank-b on PostgreSQL, one coordinator"
start bank-a "$BIN/commit-agent" --name bank-a --listen "127.0.0.1:$A_PORT" --db "$WORK/bank-a.db" \
  --procedures "$BANK/procedures.json" --coordinator "$C_URL"
start bank-b "$BIN/commit-agent" --name bank-b --listen "127.0.0.1:$B_PORT" --backend postgres --dsn "$DSN" \
  --procedures "$BANK/procedures.json" --coordinator "$C_URL"
wait_healthy bank-a "http://127.0.0.1:$A_PORT"
wait_healthy bank-b "http://127.0.0.1:$B_PORT"
start commitd "$BIN/commitd" --id c1 --listen "127.0.0.1:$C_PORT" --data-dir "$WORK/c1-data" \
  --participant "bank-a=http://127.0.0.1:$A_PORT" --participant "bank-b=http://127.0.0.1:$B_PORT"
wait_healthy commitd "$C_URL"

transfer() {  # transfer AMOUNT -> prints the reply, sets STATUS
  local body
  body='{"branches": [
    {"participant": "bank-a", "ops": [
      {"procedure": "debit",   "args": {"account": "alice", "amount": '"$1"'}},
      {"procedure": "journal", "args": {"account": "alice", "delta": -'"$1"'}}]},
    {"participant": "bank-b", "ops": [
      {"procedure": "credit",  "args": {"account": "bob", "amount": '"$1"'}},
      {"procedure": "journal", "args": {"account": "bob", "delta": '"$1"'}}]}]}'
  STATUS="$(curl -sS -m 30 -o "$WORK/reply.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary "$body" "$C_URL/v1/transactions")"
  python3 -m json.tool "$WORK/reply.json" | sed 's/^/    /'
}
show() {
  printf '  bank-a (SQLite):     alice = %s\n' "$(sqlite3 "$WORK/bank-a.db" "SELECT balance FROM accounts WHERE id = 'alice'")"
  printf '  bank-b (PostgreSQL): bob   = %s\n' "$("${PSQL[@]}" -At -d bank-b -c "SELECT balance FROM accounts WHERE id = 'bob'")"
}

step "Before"
show
step "Transfer 30 from alice (SQLite) to bob (PostgreSQL): commits"
transfer 30
[[ "$STATUS" == 200 ]] || die "expected 200, got $STATUS"
show
step "Transfer 1000: alice cannot pay, bank-a votes no: the transfer aborts on both"
transfer 1000
[[ "$STATUS" == 409 ]] || die "expected 409, got $STATUS"
show
step "pg_prepared_xacts (gids commitd:<agent>:<txid>; empty once every transaction is resolved)"
sleep 0.5
"${PSQL[@]}" -d bank-b -c "SELECT gid, prepared FROM pg_prepared_xacts"
[[ "$(sqlite3 "$WORK/bank-a.db" "SELECT balance FROM accounts WHERE id = 'alice'")" == 70 ]] || die "alice should have 70"
[[ "$("${PSQL[@]}" -At -d bank-b -c "SELECT balance FROM accounts WHERE id = 'bob'")" == 80 ]] || die "bob should have 80"
step "Done: one committed and one aborted transfer across SQLite and PostgreSQL"
