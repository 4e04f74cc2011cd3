#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<name>/):
real examples of each input, from the API docs, the bank example, the
integration tests' config, and binary forms encoded as commitd encodes them.
Rerun after changing a format; files it does not write (regression inputs
kept by hand, named crash-* or regress-*) are left alone.

    python3 tests/fuzz/make_corpus.py
"""
import json
import os
import struct
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SEP = b"\x1f"


def write(target, name, data):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(directory, "seed-" + name), "wb") as f:
        f.write(data)


def dumps(value):
    return json.dumps(value, separators=(",", ":"))


# --- client transactions (docs/api.md) ---------------------------------------
TRANSFER = {
    "protocol": "2pc", "timeout_ms": 5000,
    "branches": [
        {"participant": "bank-a", "ops": [{"procedure": "debit", "args": {"account": "alice", "amount": 30}}]},
        {"participant": "bank-b", "ops": [
            {"sql": "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2", "params": [30, "bob"]}]}]}
write("tx_request", "transfer", json.dumps(TRANSFER, indent=1))
write("tx_request", "three-phase", dumps({
    "protocol": "3pc", "branches": [
        {"participant": "bank-a", "ops": [
            {"procedure": "debit", "args": {"account": "alice", "amount": 1.5, "note": None, "ok": True}},
            {"procedure": "journal", "args": {"account": "alice", "delta": -1}}]}]}))
write("tx_request", "overflow", '{"branches":1e400}')

# --- coordinator -> agent, agent -> coordinator -------------------------------
PREPARE = {
    "txid": "c1-000000000000002a", "protocol": "2pc", "participant": "bank-a",
    "coordinator": "http://127.0.0.1:7000", "timeout_ms": 5000,
    "ops": [{"procedure": "debit", "args": {"account": "alice", "amount": 30}},
            {"sql": "INSERT INTO journal(txid, account, delta) VALUES(?1, ?2, ?3)",
             "params": ["c1-000000000000002a", "alice", -30]}],
    "participants": [{"name": "bank-a", "url": "http://127.0.0.1:7101"},
                     {"name": "bank-b", "url": "http://127.0.0.1:7102"}]}
write("agent_request", "prepare", dumps(PREPARE))
write("agent_request", "vote-yes", dumps({"txid": "c1-000000000000002a", "vote": "yes", "reason": "",
                                           "results": [[], [{"balance": 70}]]}))
write("agent_request", "vote-no", dumps({"txid": "c1-000000000000002b", "vote": "no",
                                          "reason": "procedure 'debit': expected 1 change(s), got 0"}))
write("agent_request", "txid", dumps({"txid": "c1-000000000000002a"}))
write("agent_request", "commit-key", dumps({"txid": "c1-1-7-00c0ffee00c0ffee", "commit_key": "c" * 64}))

# --- batches (common/http_batch.h) ------------------------------------------
write("http_batch", "requests", dumps({"requests": [
    {"method": "POST", "target": "/v1/prepare", "body": PREPARE},
    {"target": "/v1/commit", "body": {"txid": "c1-0000000000000029"}},
    {"method": "GET", "target": "/v1/transactions/c1-0000000000000028?x=1"}]}))
write("http_batch", "responses", dumps({"responses": [
    {"status": 200, "body": {"txid": "c1-000000000000002a", "vote": "yes", "reason": "", "results": [[]]}},
    {"status": 409, "body": {"error": {"code": "conflict", "message": "lock held by c1-1"}}},
    {"status": 200, "body": "plain text"}]}))
write("http_batch", "escaped", '{"re\\u0071uests":[{"t\\u0061rget":"/v1/\\"abort","body":{"txid":"t"}}, 7, []]}')


# --- Raft frames (raft/wire.cc) ----------------------------------
def node_id(name):
    h = 14695981039346656037
    for c in name.encode():
        h ^= c
        h = (h * 1099511628211) % (1 << 64)
    return h or 1


C1, C2, C3 = node_id("c1"), node_id("c2"), node_id("c3")


def u8(v): return struct.pack("<B", v)
def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v % (1 << 64))
def blob(b): return u32(len(b)) + (b.encode() if isinstance(b, str) else b)


def membership(voters, learners=()):
    return "v=" + ",".join(str(v) for v in sorted(voters)) + ";l=" + ",".join(str(v) for v in sorted(learners))


def frame(*messages):
    return b"RFT1" + u32(len(messages)) + b"".join(messages)


def message(frm, to, term, body):
    return u64(frm) + u64(to) + u64(term) + body


# --- Raft log commands (coordinator/raft_codec.cc, format 2) ------------------
def decide(txid, outcome=1, protocol=0, reply=None, finished=False):
    parts = [("bank-a", "http://127.0.0.1:7101"), ("bank-b", "http://127.0.0.1:7102")]
    out = u8(2) + u8(1) + blob(txid) + u8(protocol) + u8(outcome) + u32(len(parts))
    for name, url in parts:
        out += blob(name) + blob(url)
    out += blob("" if outcome != 2 else "vote no from bank-b") + blob("key-1")
    out += blob("" if reply is None else dumps(reply))
    out += u64(1764700000000) + u64(1764700000012) + u8(1 if finished else 0) + u64(0) + u8(0)
    return out


DECIDE = decide("c1-000000000000002a", reply={"txid": "c1-000000000000002a", "outcome": "committed"})
write("raft_codec", "decide", DECIDE)
write("raft_codec", "precommit", decide("c1-000000000000002c", outcome=0, protocol=1))
write("raft_codec", "finish", u8(2) + u8(2) + blob("c1-000000000000002a") + u64(1764700000100))
write("raft_codec", "participant", u8(2) + u8(3) + blob("bank-a") + blob("http://127.0.0.1:7101") + u64(1764700000000))
write("raft_codec", "finish-many", u8(2) + u8(4) + u32(2) + blob("t1") + u64(5) + blob("t2") + u64(6))
write("raft_codec", "member", u8(2) + u8(5) + blob("c2") + blob("http://127.0.0.1:7002"))
RECORD = {"txid": "c1-1", "protocol": "2pc", "outcome": "aborted",
          "participants": [{"name": "bank-a", "url": "http://127.0.0.1:7101"}], "reason": "timeout",
          "idempotency_key": "", "reply": {"outcome": "aborted"}, "created_ms": 1, "decided_ms": 2,
          "finished": False, "finished_ms": 0, "heuristic": False}
write("raft_codec", "json-decide", dumps({"op": "decide", "record": RECORD}))
write("raft_codec", "json-finish-many", dumps({"op": "finish_many", "marks": [{"txid": "t1", "finished_ms": 3}]}))
write("raft_codec", "json-participant", dumps({"op": "participant", "name": "bank-a", "url": "http://x",
                                                "updated_ms": 4}))

write("raft_wire", "vote", frame(message(C1, C2, 3, u8(0) + u64(10) + u64(2) + u8(1) + u8(0)),
                                 message(C1, C3, 3, u8(0) + u64(10) + u64(2) + u8(1) + u8(0))))
write("raft_wire", "vote-response", frame(message(C2, C1, 3, u8(1) + u8(1) + u8(0))))
entries = [(3, 11, 0, DECIDE), (3, 12, 1, membership([C1, C2, C3])), (3, 13, 2, "")]
append = u8(2) + u64(10) + u64(2) + u64(10) + u64(7) + u32(len(entries))
for term, index, kind, data in entries:
    append += u64(term) + u64(index) + u8(kind) + blob(data)
write("raft_wire", "append", frame(message(C1, C2, 3, append)))
write("raft_wire", "append-response",
      frame(message(C2, C1, 3, u8(3) + u8(0) + u64(0) + u64(10) + u64(2) + u64(8) + u64(7))))
write("raft_wire", "snapshot", frame(message(
    C1, C3, 4, u8(4) + u64(100) + u64(3) + blob(membership([C1, C2], [C3])) + u64(0) + blob('{"version":1}') + u8(1))))
write("raft_wire", "snapshot-response", frame(message(C3, C1, 4, u8(5) + u64(100) + u64(13) + u8(1))))
write("raft_wire", "timeout-now", frame(message(C1, C2, 4, u8(6))))

# --- decision rows (coordinator/decision_store.cc) ----------------------------
PARTICIPANTS = dumps([{"name": "bank-a", "url": "http://127.0.0.1:7101"},
                      {"name": "bank-b", "url": "http://127.0.0.1:7102"}])


def row(*fields):
    return SEP.join(f.encode() if isinstance(f, str) else f for f in fields)


write("decision_rows", "committed", row(
    "c1-000000000000002a", "2pc", "committed", PARTICIPANTS, "", "key-1",
    dumps({"txid": "c1-000000000000002a", "outcome": "committed"}), "1764700000000", "1764700000012", "1",
    "1764700000100", "0", "bank-a", "http://127.0.0.1:7101", "1764700000000",
    dumps(["http://127.0.0.1:7000"])))
write("decision_rows", "aborted-unfinished", row(
    "c1-000000000000002b", "3pc", "aborted", PARTICIPANTS, "vote no from bank-b", "", "null", "5", "6", "0", "0",
    "1", "bank-b", "http://127.0.0.1:7102", "7", ""))
write("decision_rows", "precommit", row(
    "c1-000000000000002c", "3pc", "pending", "[]", "", "", "{}", "1", "1", "0", "0", "0", "a", "b", "1", "[]"))

# --- state machine snapshots (coordinator/state_snapshot.cc) ------------------
write("state_snapshot", "group", dumps({
    "version": 1, "decisions": [dict(RECORD, txid="c1-1"), dict(RECORD, txid="c1-2", outcome="committed",
                                                                 reason="", finished=True, finished_ms=9)],
    "participants": [{"name": "bank-a", "url": "http://127.0.0.1:7101", "updated_ms": 3}],
    "members": {"c1": "http://127.0.0.1:7001", "c2": "http://127.0.0.1:7002"}}))
write("state_snapshot", "empty", dumps({"version": 1, "decisions": [], "participants": [], "members": {}}))
# Version 2: a header line, a line per decision, an end line that counts them.
write("state_snapshot", "lines", "".join(line + "\n" for line in [
    dumps({"version": 2, "participants": [{"name": "bank-a", "url": "http://127.0.0.1:7101", "updated_ms": 3}],
           "members": {"c1": "http://127.0.0.1:7001", "c2": "http://127.0.0.1:7002"},
           "forgotten": {"txids": [["c1", 1, 4]], "keys": [[77, 5]], "before_ms": 5}}),
    dumps(dict(RECORD, txid="c1-1")),
    dumps(dict(RECORD, txid="c1-2", outcome="committed", reason="", finished=True, finished_ms=9)),
    dumps({"end": {"decisions": 2}})]).encode())

# --- procedures and config ---------------------------------------------------
with open(os.path.join(ROOT, "examples", "bank", "procedures.json"), "rb") as f:
    write("procedures", "bank", f.read())
write("procedures", "list", dumps({"procedures": {"move": {"sql": ["UPDATE a SET n = n - 1", "UPDATE b SET n = n + 1"],
                                                           "expect_changes": 1}}}))
write("config", "integration", json.dumps({
    "request_timeout_ms": 2000, "retry_initial_ms": 20, "retry_max_ms": 200, "resolve_initial_ms": 50,
    "resolve_max_ms": 300, "default_tx_timeout_ms": 3000}, indent=2))
write("config", "group", dumps({"raft_election_timeout_ms": 300, "raft_heartbeat_ms": 100,
                                "raft_snapshot_entries": 500, "max_batch": 64}))

# --- auth files (docs/security.md) -------------------------------------------
write("auth_file", "roles", json.dumps({"tokens": [
    {"name": "orders-service", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
     "roles": ["client"]},
    {"name": "ops", "token": "admin-token-0123456789", "roles": ["admin", "reader"]},
    {"name": "bank-a", "token": "peer-token-bank-a-0123", "roles": ["peer"]}]}, indent=2))
write("auth_file", "rotation", dumps({"tokens": [
    {"name": "orders-service", "token": "old-client-token-0123", "roles": ["client"]},
    {"name": "orders-service", "token": "new-client-token-0123", "roles": ["client"]}]}))


# --- changesets (participant/changeset_apply.cc), recorded by SQLite's session
# extension (the sqlite3 shell's .session) on the bank schema of changeset_fuzz.cc
BANK = """
CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0));
CREATE TABLE journal (txid TEXT NOT NULL, account TEXT NOT NULL, delta INTEGER NOT NULL, PRIMARY KEY (txid, account));
CREATE TABLE holds (id INTEGER PRIMARY KEY, account TEXT NOT NULL REFERENCES accounts(id), amount REAL);
CREATE TABLE items (sku BLOB, lot REAL, name TEXT UNIQUE COLLATE NOCASE, qty INTEGER DEFAULT 0, PRIMARY KEY (sku, lot));
CREATE TABLE audit (n INTEGER PRIMARY KEY, what TEXT);
CREATE TABLE notes (body TEXT);
CREATE TRIGGER holds_audit AFTER INSERT ON holds BEGIN INSERT INTO audit(what) VALUES ('hold ' || NEW.id); END;
INSERT INTO accounts VALUES ('alice', 100), ('bob', 50), ('carol', 0);
INSERT INTO journal VALUES ('t1', 'alice', -10), ('t1', 'bob', 10);
INSERT INTO holds VALUES (1, 'alice', 2.5);
INSERT INTO items VALUES (x'01', 1.5, 'Bolt', 10), (x'02', -0.0, 'nut', NULL);
"""
CHANGES = {
    "transfer": "UPDATE accounts SET balance = balance - 30 WHERE id = 'alice';"
                "UPDATE accounts SET balance = balance + 30 WHERE id = 'bob';"
                "INSERT INTO journal VALUES ('c1-2a', 'alice', -30), ('c1-2a', 'bob', 30);",
    "insert-delete": "INSERT INTO accounts VALUES ('dave', 5); DELETE FROM journal WHERE account = 'bob';",
    "hold": "INSERT INTO holds VALUES (2, 'carol', 0.25); DELETE FROM holds WHERE id = 1;",
    "items": "UPDATE items SET qty = qty + 1, name = 'BOLT' WHERE sku = x'01';"
             "INSERT INTO items VALUES (x'0300ff', 1e300, 'washer', -1); DELETE FROM items WHERE lot = 0;",
}


def changeset(changes):
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "bank.db")
        out = os.path.join(tmp, "changeset")
        script = (BANK + ".session open main s\n.session s attach *\n" + changes + "\n.session s changeset " + out + "\n")
        subprocess.run(["sqlite3", db], input=script.encode(), check=True)
        with open(out, "rb") as f:
            return f.read()


for name, changes in CHANGES.items():
    bytes_ = changeset(changes)
    write("changeset", name, bytes_)
    if name == "transfer":
        TRANSFER_CHANGESET = bytes_

# --- prepared records (participant/resource_manager.cc's _commitd_prepared) -----
PREPARED_BANK = """
CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0));
CREATE TABLE journal (txid TEXT NOT NULL, account TEXT NOT NULL, delta INTEGER NOT NULL, PRIMARY KEY (txid, account));
INSERT INTO accounts VALUES ('alice', 100), ('bob', 50);
"""


def bank_changeset(changes):
    global BANK
    saved, BANK = BANK, PREPARED_BANK
    try:
        return changeset(changes)
    finally:
        BANK = saved


PEERS = dumps([{"name": "bank-a", "url": "http://127.0.0.1:7101"}, {"name": "bank-b", "url": "http://127.0.0.1:7102"}])
write("prepared_record", "debit", row(
    "c1-000000000000002a", "2pc", "prepared", dumps(["accounts/pk/'alice'"]), "http://127.0.0.1:7000", PEERS,
    "1764700000000", "1764700005000", "", "", "", "",
    bank_changeset("UPDATE accounts SET balance = balance - 30 WHERE id = 'alice';"
                   "INSERT INTO journal VALUES ('c1-000000000000002a', 'alice', -30);")))
write("prepared_record", "conflict", row(
    "c1-000000000000002b", "3pc", "conflict", dumps(["accounts/pk/'carol'"]), "http://127.0.0.1:7000", "[]",
    "1", "2", "changeset conflict on accounts (NOTFOUND, pk=('carol')): row deleted outside commitd",
    "5f3c0a9e1d2b4c6f8a7e9d0c1b2a3f4e", "a" * 64, "c" * 64,
    bank_changeset("INSERT INTO accounts VALUES ('carol', 1); DELETE FROM accounts WHERE id = 'carol';"
                   "UPDATE accounts SET balance = 0 WHERE id = 'bob';")))
write("prepared_record", "read-only", row("c1-3", "2pc", "precommitted", "[]", "", "[]", "1", "2", "", "", "", "", ""))
# A record prepared by a coordinator with a log identity: its abort key and
# the check of its commit key (common/abort_key.h), as an agent stores them.
write("prepared_record", "with-keys", row(
    "c1-1-7-00c0ffee00c0ffee", "3pc", "precommitted", dumps(["accounts/pk/'bob'"]), "http://127.0.0.1:7000", PEERS,
    "1764700000000", "1764700005000", "", "5f3c0a9e1d2b4c6f8a7e9d0c1b2a3f4e",
    "3b8a1f0c9e2d7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b",
    "9d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e",
    bank_changeset("UPDATE accounts SET balance = balance + 30 WHERE id = 'bob';"
                   "INSERT INTO journal VALUES ('c1-1-7-00c0ffee00c0ffee', 'bob', 30);")))
