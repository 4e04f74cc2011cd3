"""Transfers between two bank agents through one coordinator: commits, aborts,
validation, participant failure and idempotency.

Run one test: python3 test_transfers.py --bin-dir build/release/bin test_overdraft_aborts
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, eventually, expect_status, reason_of  # noqa: E402

RAW_CREDIT = {"sql": "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2", "params": [30, "bob"]}


def assert_unchanged(c):
    for name in c.banks:
        assert c.balances(name) == c.seed(name), f"{name} changed: {c.balances(name)} vs seed {c.seed(name)}"
        assert c.journal(name) == [], f"{name} journal not empty: {c.journal(name)}"


def test_transfer_commits_on_both_sides():
    with Cluster() as c:
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30), 200, "transfer")
        assert body["outcome"] == "committed", body
        txid = body["txid"]
        assert txid, body
        votes = {b["participant"]: b.get("vote") for b in body.get("branches", [])}
        assert votes == {"bank-a": "yes", "bank-b": "yes"}, body
        c.eventually_balance("bank-a", "alice", 70)
        c.eventually_balance("bank-b", "bob", 80)
        assert c.journal("bank-a", txid) == [(txid, "alice", -30)], c.journal("bank-a")
        assert c.journal("bank-b", txid) == [(txid, "bob", 30)], c.journal("bank-b")
        # Nothing else moved.
        a, b = c.balances("bank-a"), c.balances("bank-b")
        assert sum(a.values()) == sum(c.seed("bank-a").values()) - 30, a
        assert sum(b.values()) == sum(c.seed("bank-b").values()) + 30, b
        c.eventually_nothing_prepared()

        # The coordinator's record of it.
        status, tx = c.tx_status(txid)
        assert status == 200, (status, tx)
        assert tx["txid"] == txid and tx["outcome"] == "committed", tx
        assert tx.get("protocol", "2pc") == "2pc", tx
        assert {b["participant"] for b in tx.get("branches", [])} == {"bank-a", "bank-b"}, tx

        # A txid it never saw: 404, or (presumed abort) aborted.
        status, tx = c.tx_status("no-such-txid")
        assert status == 404 or (status == 200 and tx.get("outcome") == "aborted"), (status, tx)


def test_back_to_back_transfers_over_the_same_rows_all_commit():
    # A client's next transaction writes the rows its last commit wrote. The
    # coordinator hands the commits out before it answers, so the agents
    # release those rows before the next prepare can meet them.
    with Cluster() as c:
        for i in range(200):
            src = ("bank-a", "alice") if i % 2 == 0 else ("bank-b", "bob")
            dst = ("bank-b", "bob") if i % 2 == 0 else ("bank-a", "alice")
            body = expect_status(c.transfer(src[0], src[1], dst[0], dst[1], 1), 200, f"transfer {i}")
            assert body["outcome"] == "committed", body
        c.eventually_nothing_prepared()
        assert c.balances("bank-a") == c.seed("bank-a") and c.balances("bank-b") == c.seed("bank-b")


def test_select_results_are_returned():
    with Cluster() as c:
        body = expect_status(c.post("/v1/transactions", {"branches": [
            {"participant": "bank-a", "ops": [{"procedure": "balance", "args": {"account": "alice"}}]},
            {"participant": "bank-b", "ops": [{"procedure": "balance", "args": {"account": "bob"}}]}]}),
            200, "read-only transaction")
        assert body["outcome"] == "committed", body
        results = {b["participant"]: b.get("results") for b in body["branches"]}
        assert results["bank-a"] == [[{"balance": 100}]], results
        assert results["bank-b"] == [[{"balance": 50}]], results


def test_overdraft_aborts():
    with Cluster() as c:
        ok = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30), 200, "first transfer")
        # The reply comes once the decision is durable, before the agents
        # apply it; wait, so that the overdraft cannot meet its locks.
        c.eventually_nothing_prepared()
        c.eventually_balance("bank-b", "bob", 80)
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 1000), 409, "overdraft")
        assert body["outcome"] == "aborted", body
        assert body.get("txid"), body
        reason = reason_of(body)
        assert "bank-a" in reason, reason
        assert "expect" in reason.lower() or "change" in reason.lower(), reason
        c.eventually_nothing_prepared()
        assert c.balances("bank-a")["alice"] == 70 and c.balances("bank-b")["bob"] == 80
        assert c.journal("bank-a", body["txid"]) == [] and c.journal("bank-b", body["txid"]) == []
        status, tx = c.tx_status(body["txid"])
        assert status == 200 and tx["outcome"] == "aborted", (status, tx)
        status, tx = c.tx_status(ok["txid"])
        assert status == 200 and tx["outcome"] == "committed", (status, tx)


def test_credit_to_unknown_account_aborts():
    with Cluster() as c:
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "nobody", 10), 409, "credit nobody")
        assert body["outcome"] == "aborted" and "bank-b" in reason_of(body), body
        c.eventually_nothing_prepared()
        assert_unchanged(c)


def test_raw_sql_refused_without_flag():
    with Cluster() as c:
        status, body = c.post("/v1/transactions", {"branches": [
            {"participant": "bank-a", "ops": [{"procedure": "debit", "args": {"account": "alice", "amount": 30}}]},
            {"participant": "bank-b", "ops": [RAW_CREDIT]}]})
        assert status == 400, (status, body)
        msg = body.get("error", {}).get("message", "")
        assert "raw sql" in msg.lower(), body
        assert c.prepared("bank-a") == [] and c.prepared("bank-b") == []
        assert_unchanged(c)


def test_raw_sql_accepted_with_flag():
    with Cluster(agent_args={"bank-b": ["--allow-raw-sql"]}) as c:
        body = expect_status(c.post("/v1/transactions", {"branches": [
            {"participant": "bank-a", "ops": [{"procedure": "debit", "args": {"account": "alice", "amount": 30}}]},
            {"participant": "bank-b", "ops": [RAW_CREDIT]}]}), 200, "raw SQL on an agent that allows it")
        assert body["outcome"] == "committed", body
        c.eventually_balance("bank-a", "alice", 70)
        c.eventually_balance("bank-b", "bob", 80)


def test_unknown_participant():
    with Cluster() as c:
        status, body = c.transfer("bank-a", "alice", "bank-z", "bob", 10)
        assert status == 400, (status, body)
        assert "error" in body and "bank-z" in json.dumps(body), body
        assert c.prepared("bank-a") == []
        assert_unchanged(c)


def test_unknown_procedure():
    with Cluster() as c:
        status, body = c.post("/v1/transactions", {"branches": [
            {"participant": "bank-a", "ops": [{"procedure": "debit", "args": {"account": "alice", "amount": 5}}]},
            {"participant": "bank-b", "ops": [{"procedure": "steal", "args": {"account": "bob"}}]}]})
        assert status == 400, (status, body)
        assert "steal" in json.dumps(body), body
        assert c.prepared("bank-a") == [] and c.prepared("bank-b") == []
        assert_unchanged(c)


def test_participant_down_aborts():
    with Cluster() as c:
        c.agent("bank-b").kill9()
        t0 = time.monotonic()
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 10), 409, "bank-b down")
        assert body["outcome"] == "aborted", body
        assert "bank-b" in reason_of(body), body
        # Bounded by the prepare deadline (3 s in FAST_CONFIG) plus slack.
        assert time.monotonic() - t0 < 15, "abort took too long"
        c.eventually_nothing_prepared(["bank-a"])
        assert c.balances("bank-a") == c.seed("bank-a")
        # bank-b comes back: it never saw the transaction, and works again.
        c.agent("bank-b").start().wait_healthy()
        assert c.balances("bank-b") == c.seed("bank-b")

        def transfer_commits():
            status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 10)
            assert status == 200 and body["outcome"] == "committed", (status, body)
            return True
        eventually(transfer_commits, 30, 0.2, "a transfer commits after bank-b restarted")
        c.eventually_balance("bank-b", "bob", 60)


def test_idempotency_key():
    with Cluster() as c:
        first = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, idem_key="k-1"), 200, "first")
        again = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, idem_key="k-1"), 200, "again")
        assert again["txid"] == first["txid"] and again["outcome"] == "committed", (first, again)
        c.eventually_balance("bank-a", "alice", 70)
        c.eventually_balance("bank-b", "bob", 80)
        c.eventually_nothing_prepared()
        time.sleep(0.3)
        assert c.balances("bank-a")["alice"] == 70 and c.balances("bank-b")["bob"] == 80
        assert len(c.journal("bank-a")) == 1 and len(c.journal("bank-b")) == 1

        # An aborted answer is remembered too.
        no1 = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 1000, idem_key="k-2"), 409, "overdraft")
        no2 = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 1000, idem_key="k-2"), 409, "again")
        assert no1["txid"] == no2["txid"] and no2["outcome"] == "aborted", (no1, no2)

        # A different key is a different transaction (after the aborted one's
        # prepared branch, if any, is gone, so that it meets no lock).
        c.eventually_nothing_prepared()
        other = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, idem_key="k-3"), 200, "k-3")
        assert other["txid"] != first["txid"]
        c.eventually_balance("bank-a", "alice", 40)


def test_malformed_bodies():
    debit = {"procedure": "debit", "args": {"account": "alice", "amount": 1}}
    cases = [
        ("not JSON", "{"),
        ("empty body", ""),
        ("JSON array", "[]"),
        ("JSON string", '"transfer"'),
        ("no branches", {}),
        ("empty branches", {"branches": []}),
        ("branches not an array", {"branches": "bank-a"}),
        ("branch not an object", {"branches": [42]}),
        ("branch without participant", {"branches": [{"ops": [debit]}]}),
        ("participant not a string", {"branches": [{"participant": 7, "ops": [debit]}]}),
        ("branch without ops", {"branches": [{"participant": "bank-a"}]}),
        ("ops not an array", {"branches": [{"participant": "bank-a", "ops": debit}]}),
        ("op not an object", {"branches": [{"participant": "bank-a", "ops": ["debit"]}]}),
        ("op with neither procedure nor sql", {"branches": [{"participant": "bank-a", "ops": [{"args": {}}]}]}),
        ("op with both procedure and sql", {"branches": [{"participant": "bank-a", "ops": [
            {"procedure": "debit", "sql": "SELECT 1", "args": {}}]}]}),
        ("procedure not a string", {"branches": [{"participant": "bank-a", "ops": [{"procedure": 3}]}]}),
        ("args not an object", {"branches": [{"participant": "bank-a", "ops": [
            {"procedure": "debit", "args": ["alice", 1]}]}]}),
        ("arg not a scalar", {"branches": [{"participant": "bank-a", "ops": [
            {"procedure": "debit", "args": {"account": "alice", "amount": {"n": 1}}}]}]}),
        ("params not an array", {"branches": [{"participant": "bank-a", "ops": [
            {"sql": "SELECT ?1", "params": {"a": 1}}]}]}),
        ("unknown protocol", {"protocol": "4pc", "branches": [{"participant": "bank-a", "ops": [debit]}]}),
        ("timeout_ms negative", {"timeout_ms": -5, "branches": [{"participant": "bank-a", "ops": [debit]}]}),
        ("timeout_ms a string", {"timeout_ms": "soon", "branches": [{"participant": "bank-a", "ops": [debit]}]}),
        ("timeout_ms too large", {"timeout_ms": 600001, "branches": [{"participant": "bank-a", "ops": [debit]}]}),
        ("too many branches", {"branches": [{"participant": "bank-a", "ops": [debit]}] * 65}),
    ]
    with Cluster() as c:
        bad = []
        for what, body in cases:
            status, reply = c.post("/v1/transactions", body)
            code = reply.get("error", {}).get("code") if isinstance(reply.get("error"), dict) else None
            msg = reply.get("error", {}).get("message") if isinstance(reply.get("error"), dict) else None
            if status != 400 or code != "invalid_request" or not msg:
                bad.append(f"{what}: HTTP {status} {json.dumps(reply)[:300]}")
        assert not bad, "malformed bodies not refused with 400 invalid_request:\n  " + "\n  ".join(bad)
        assert c.prepared("bank-a") == [] and c.prepared("bank-b") == []
        assert_unchanged(c)


def test_sigterm_exits_zero():
    with Cluster() as c:
        expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 1), 200, "transfer")
        c.eventually_nothing_prepared()
        codes = c.stop()
        assert all(rc == 0 for rc in codes.values()), f"exit codes after SIGTERM: {codes}"
        # Every line of every log that is not the harness's marker is a JSON object.
        for p in c.processes():
            for line in p.log_text().splitlines():
                if line.startswith("=== harness:") or not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    raise AssertionError(f"{p.name} logged a non-JSON line: {line[:200]}")
                assert isinstance(obj, dict), line


if __name__ == "__main__":
    harness.main(globals())
