#!/usr/bin/env bash
# Quickstart demo: builds commitd, starts one coordinator and two participant
# agents (bank-a, bank-b) on loopback, each agent wrapping a SQLite bank
# database from examples/bank, then runs a committed and an aborted transfer
# through the HTTP API, shows what happened, and shuts everything down.
#
# Environment:
#   COMMITD_DEMO_KEEP=1   keep the temp dir (databases and logs) afterwards
#   COMMITD_DEMO_NO_BUILD=1  skip deps and build (use the existing binaries)
#   COMMITD_BIN_DIR=DIR   where commitd and commit-agent are (default build/release/bin)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ "${COMMITD_DEMO_NO_BUILD:-0}" != 1 ]]; then
  "$ROOT/scripts/build.sh"
fi
BIN="${COMMITD_BIN_DIR:-$ROOT/build/release/bin}"
BANK="$ROOT/examples/bank"

bold() { if [[ -t 1 ]]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
step() { printf '\n'; bold "== $*"; }
die() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }

for exe in commitd commit-agent; do
  [[ -x "$BIN/$exe" ]] || die "$BIN/$exe not found (did the build succeed?)"
done
for tool in sqlite3 curl python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required (run ./scripts/deps.sh)"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/commitd-demo.XXXXXX")"
PIDS=()
NAMES=()

print_logs() {
  local f
  for f in "$WORK"/*.log; do
    [[ -e "$f" ]] || continue
    printf '\n--- last lines of %s ---\n' "$f" >&2
    tail -n 30 "$f" >&2 || true
  done
}

# Stops one process with SIGTERM (SIGKILL after 10 s); prints its exit code.
stop_pid() {
  local pid="$1" name="$2" i rc
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "  $name did not stop within 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rc=0
  wait "$pid" 2>/dev/null || rc=$?
  printf '  %-8s stopped (exit code %s)\n' "$name" "$rc"
}

cleanup() {
  local rc=$? i
  trap - EXIT
  if [[ $rc -ne 0 && ${#PIDS[@]} -gt 0 ]]; then
    print_logs
  fi
  # Reverse order: the coordinator (started last) first.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    stop_pid "${PIDS[i]}" "${NAMES[i]}" >/dev/null || true
  done
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

# Three distinct free loopback ports.
read -r A_PORT B_PORT C_PORT < <(python3 - <<'PY'
import socket
socks = []
for _ in range(3):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)
A_URL="http://127.0.0.1:$A_PORT"
B_URL="http://127.0.0.1:$B_PORT"
C_URL="http://127.0.0.1:$C_PORT"

start() {  # start NAME COMMAND...  (stdout and stderr go to $WORK/NAME.log)
  local name="$1"
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
  NAMES+=("$name")
}

wait_healthy() {  # wait_healthy NAME URL PID
  local name="$1" url="$2" pid="$3" i
  for ((i = 0; i < 200; i++)); do
    if curl -fsS -m 1 "$url/healthz" >/dev/null 2>&1; then
      printf '  %-8s up at %s (pid %s)\n' "$name" "$url" "$pid"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || die "$name exited while starting (log: $WORK/$name.log)"
    sleep 0.1
  done
  die "$name did not answer $url/healthz within 20 s (log: $WORK/$name.log)"
}

show_balances() {
  local bank
  for bank in bank-a bank-b; do
    printf '  %s:\n' "$bank"
    sqlite3 -header -column "$WORK/$bank.db" \
      "SELECT id AS account, balance FROM accounts ORDER BY id;" | sed 's/^/    /'
  done
}

balance_of() {  # balance_of BANK ACCOUNT
  sqlite3 "$WORK/$1.db" "SELECT balance FROM accounts WHERE id = '$2';"
}

json_get() {  # json_get FILE KEY  -> top-level string field, or empty
  python3 -c 'import json,sys
try:
    v = json.load(open(sys.argv[1])).get(sys.argv[2], "")
except Exception:
    v = ""
print(v if isinstance(v, str) else json.dumps(v))' "$1" "$2"
}

pretty() {  # pretty FILE
  python3 -m json.tool "$1" 2>/dev/null | sed 's/^/    /' || sed 's/^/    /' "$1"
}

# POST a transaction; sets STATUS and writes the reply to $WORK/$2.json.
post_tx() {  # post_tx BODY NAME
  STATUS="$(curl -sS -m 30 -o "$WORK/$2.json" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' --data-binary "$1" "$C_URL/v1/transactions")" \
    || die "could not reach the coordinator at $C_URL"
}

transfer_body() {  # transfer_body FROM TO AMOUNT   (FROM in bank-a, TO in bank-b)
  cat <<JSON
{"branches": [
  {"participant": "bank-a", "ops": [
    {"procedure": "debit",   "args": {"account": "$1", "amount": $3}},
    {"procedure": "journal", "args": {"account": "$1", "delta": -$3}}]},
  {"participant": "bank-b", "ops": [
    {"procedure": "credit",  "args": {"account": "$2", "amount": $3}},
    {"procedure": "journal", "args": {"account": "$2", "delta": $3}}]}]}
JSON
}

bold "commitd demo — two banks, one coordinator, two-phase commit over HTTP"
echo "  work dir: $WORK"

step "Creating the bank databases (examples/bank)"
sqlite3 "$WORK/bank-a.db" <"$BANK/schema.sql"
sqlite3 "$WORK/bank-a.db" <"$BANK/seed-a.sql"
sqlite3 "$WORK/bank-b.db" <"$BANK/schema.sql"
sqlite3 "$WORK/bank-b.db" <"$BANK/seed-b.sql"
echo "  bank-a.db and bank-b.db created"

step "Starting two participant agents and the coordinator"
start bank-a "$BIN/commit-agent" --name bank-a --listen "127.0.0.1:$A_PORT" --db "$WORK/bank-a.db" \
  --procedures "$BANK/procedures.json" --coordinator "$C_URL"
start bank-b "$BIN/commit-agent" --name bank-b --listen "127.0.0.1:$B_PORT" --db "$WORK/bank-b.db" \
  --procedures "$BANK/procedures.json" --coordinator "$C_URL"
wait_healthy bank-a "$A_URL" "${PIDS[0]}"
wait_healthy bank-b "$B_URL" "${PIDS[1]}"
mkdir -p "$WORK/c1-data"
start commitd "$BIN/commitd" --id c1 --listen "127.0.0.1:$C_PORT" --data-dir "$WORK/c1-data" \
  --participant "bank-a=$A_URL" --participant "bank-b=$B_URL"
wait_healthy commitd "$C_URL" "${PIDS[2]}"
echo "  (each process logs JSON lines to $WORK/<name>.log)"

step "Balances before"
show_balances
ALICE0="$(balance_of bank-a alice)"
BOB0="$(balance_of bank-b bob)"
SUM_A0="$(sqlite3 "$WORK/bank-a.db" 'SELECT sum(balance) FROM accounts;')"
SUM_B0="$(sqlite3 "$WORK/bank-b.db" 'SELECT sum(balance) FROM accounts;')"

step "Transfer 1: alice (bank-a) -> bob (bank-b), 30 — should commit"
post_tx "$(transfer_body alice bob 30)" transfer1
echo "  POST /v1/transactions -> HTTP $STATUS"
pretty "$WORK/transfer1.json"
[[ "$STATUS" == 200 ]] || die "expected HTTP 200 for the first transfer, got $STATUS"
TXID1="$(json_get "$WORK/transfer1.json" txid)"
[[ "$(json_get "$WORK/transfer1.json" outcome)" == committed ]] || die "first transfer did not commit"

step "Transfer 2: alice (bank-a) -> bob (bank-b), 1000 — an overdraft, should abort"
post_tx "$(transfer_body alice bob 1000)" transfer2
echo "  POST /v1/transactions -> HTTP $STATUS"
pretty "$WORK/transfer2.json"
[[ "$STATUS" == 409 ]] || die "expected HTTP 409 for the overdraft, got $STATUS"
[[ "$(json_get "$WORK/transfer2.json" outcome)" == aborted ]] || die "the overdraft did not abort"
REASON="$(json_get "$WORK/transfer2.json" reason)"
[[ "$REASON" == *bank-a* ]] || die "the abort reason does not name bank-a: $REASON"
echo "  -> aborted, because: $REASON"

step "What the coordinator recorded for transfer 1"
curl -sS -m 10 -o "$WORK/tx1.json" "$C_URL/v1/transactions/$TXID1" || die "GET /v1/transactions/$TXID1 failed"
echo "  GET /v1/transactions/$TXID1"
pretty "$WORK/tx1.json"

# The coordinator answers once its decision is durable; the agents apply the
# commit right after. Wait (bounded) until both databases show it.
applied=0
for ((i = 0; i < 150; i++)); do
  if [[ "$(balance_of bank-a alice)" == "$((ALICE0 - 30))" && "$(balance_of bank-b bob)" == "$((BOB0 + 30))" ]]; then
    applied=1
    break
  fi
  sleep 0.1
done
[[ $applied == 1 ]] || die "transfer 1 was not applied on both banks within 15 s"

step "Balances after"
show_balances
echo
echo "  journal rows (bank-a, then bank-b):"
sqlite3 -header -column "$WORK/bank-a.db" "SELECT txid, account, delta FROM journal;" | sed 's/^/    /'
sqlite3 -header -column "$WORK/bank-b.db" "SELECT txid, account, delta FROM journal;" | sed 's/^/    /'

step "Checking"
SUM_A1="$(sqlite3 "$WORK/bank-a.db" 'SELECT sum(balance) FROM accounts;')"
SUM_B1="$(sqlite3 "$WORK/bank-b.db" 'SELECT sum(balance) FROM accounts;')"
[[ "$(balance_of bank-a alice)" == "$((ALICE0 - 30))" ]] || die "alice should have $((ALICE0 - 30))"
[[ "$(balance_of bank-b bob)" == "$((BOB0 + 30))" ]] || die "bob should have $((BOB0 + 30))"
[[ "$SUM_A1" == "$((SUM_A0 - 30))" && "$SUM_B1" == "$((SUM_B0 + 30))" ]] \
  || die "bank totals are wrong: bank-a $SUM_A0 -> $SUM_A1, bank-b $SUM_B0 -> $SUM_B1"
[[ $((SUM_A1 + SUM_B1)) == $((SUM_A0 + SUM_B0)) ]] || die "money was created or destroyed"
[[ "$(sqlite3 "$WORK/bank-a.db" "SELECT count(*) FROM journal WHERE txid = '$TXID1';")" == 1 ]] \
  || die "bank-a has no journal row for transfer 1"
[[ "$(sqlite3 "$WORK/bank-b.db" "SELECT count(*) FROM journal WHERE txid = '$TXID1';")" == 1 ]] \
  || die "bank-b has no journal row for transfer 1"
[[ "$(sqlite3 "$WORK/bank-a.db" 'SELECT count(*) FROM journal;')" == 1 ]] || die "bank-a has extra journal rows"
[[ "$(sqlite3 "$WORK/bank-b.db" 'SELECT count(*) FROM journal;')" == 1 ]] || die "bank-b has extra journal rows"
echo "  ok: alice $ALICE0 -> $((ALICE0 - 30)), bob $BOB0 -> $((BOB0 + 30)); the overdraft changed nothing;"
echo "      total money $((SUM_A0 + SUM_B0)) before and $((SUM_A1 + SUM_B1)) after"

step "Stopping (SIGTERM)"
for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
  stop_pid "${PIDS[i]}" "${NAMES[i]}"
done
PIDS=()
NAMES=()

printf '\n'
bold "Demo finished: one transfer committed on both banks, one aborted on both."
