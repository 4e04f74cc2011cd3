"""The participant agent on its own, driven as a coordinator would drive it:
many transactions prepared at once, lock release exactly at
commit/abort, the lock table rebuilt after kill -9, unknown commits, abort
before prepare, the retention window, and changes made behind the agent's back.

Most tests post /v1/prepare, /v1/commit and /v1/abort straight to one agent,
with a long timeout_ms and a coordinator URL that is never asked, so nothing
but the test decides. Lock keys come from GET /v1/locks (a debug listing of
the agent's lock table).
"""

import os
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Cluster, agent_abort, agent_commit, agent_locks, agent_prepare, debit_ops,  # noqa: E402
                     eventually, expect_status, held, metrics)

FAILPOINTS = "COMMITD_FAILPOINTS"
ACCOUNTS = [f"acct{i:02d}" for i in range(24)]


def many_accounts_cluster(config=None, **kw):
    """bank-a with 24 accounts of 100 each, and a coordinator."""
    c = Cluster(banks={"bank-a": "placeholder"}, config=config, start=False, **kw)
    seed = harness.write_seed(os.path.join(c.dir, "seed-many.sql"),
                              {"accounts": [(a, 100) for a in ACCOUNTS]})
    c.bank_seeds["bank-a"] = seed
    try:
        c.start()
    except BaseException:
        c.failed = True
        c.close()
        raise
    return c


def vote(result):
    status, body = result
    assert status == 200, (status, body)
    return body["vote"], body.get("reason", "")


def test_many_prepared_at_once_and_exact_lock_release():
    with many_accounts_cluster() as c:
        agent = c.agent("bank-a")
        txids = [f"many-{i:02d}" for i in range(20)]
        votes = {}

        def prepare(i):
            votes[txids[i]] = vote(agent_prepare(agent, txids[i], debit_ops(ACCOUNTS[i], 10),
                                                 participant="bank-a"))
        threads = [threading.Thread(target=prepare, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert all(v == ("yes", "") for v in votes.values()), votes

        # All 20 held at once; each holds its account row and its journal row.
        assert sorted(held(agent)) == txids, held(agent)
        locks = agent_locks(agent)
        assert len(locks) == 40, locks
        for txid in txids:
            assert sum(1 for holder in locks.values() if holder == txid) == 2, (txid, locks)
        # Prepared changes are invisible: the database holds committed data only.
        assert c.balances("bank-a") == c.seed("bank-a")

        # A conflicting prepare votes no at once, naming the holder.
        v, reason = vote(agent_prepare(agent, "intruder-0", debit_ops(ACCOUNTS[0], 1), participant="bank-a"))
        assert v == "no" and "lock conflict with many-00" in reason, reason

        # Each commit or abort releases exactly that transaction's keys, when it is answered.
        for i, txid in enumerate(txids):
            if i < 10:
                expect_status(agent_commit(agent, txid), 200, f"commit {txid}")
            else:
                expect_status(agent_abort(agent, txid), 200, f"abort {txid}")
            now = agent_locks(agent)
            assert txid not in now.values(), (txid, now)
            assert now == {k: h for k, h in locks.items() if h in txids[i + 1:]}, (txid, now)
        assert agent_locks(agent) == {}
        assert held(agent) == {}

        # The row is free again.
        v, reason = vote(agent_prepare(agent, "intruder-1", debit_ops(ACCOUNTS[0], 1), participant="bank-a"))
        assert v == "yes", reason
        expect_status(agent_abort(agent, "intruder-1"), 200, "abort intruder-1")

        bal = c.balances("bank-a")
        for i, account in enumerate(ACCOUNTS):
            assert bal[account] == (90 if i < 10 else 100), (account, bal[account])
        assert sorted(t for t, _, _ in c.journal("bank-a")) == txids[:10]

        # Repeats are answered consistently.
        assert vote(agent_prepare(agent, "many-05", debit_ops(ACCOUNTS[5], 10), participant="bank-a"))[0] == "yes"
        assert vote(agent_prepare(agent, "many-15", debit_ops(ACCOUNTS[15], 10), participant="bank-a"))[0] == "no"
        expect_status(agent_commit(agent, "many-05"), 200, "repeated commit")
        expect_status(agent_abort(agent, "many-15"), 200, "repeated abort")
        body = expect_status(agent_abort(agent, "many-05"), 409, "abort after commit")
        assert body["error"]["code"] == "already_committed", body
        body = expect_status(agent_commit(agent, "many-15"), 409, "commit after abort")
        assert body["error"]["code"] == "already_aborted", body
        assert c.balances("bank-a")[ACCOUNTS[5]] == 90


def test_rebuilt_lock_table_equals_the_one_before_a_crash():
    with many_accounts_cluster() as c:
        agent = c.agent("bank-a")
        for i in range(8):
            assert vote(agent_prepare(agent, f"rb-{i}", debit_ops(ACCOUNTS[i], 5), participant="bank-a"))[0] == "yes"
        # A transaction on two rows, and an insert-only one.
        ops = debit_ops(ACCOUNTS[8], 1) + [{"procedure": "credit", "args": {"account": ACCOUNTS[9], "amount": 1}}]
        assert vote(agent_prepare(agent, "rb-two", ops, participant="bank-a"))[0] == "yes"
        ins = [{"procedure": "journal", "args": {"account": "nobody", "delta": 0}}]
        assert vote(agent_prepare(agent, "rb-insert", ins, participant="bank-a"))[0] == "yes"
        before = agent_locks(agent)
        held_before = sorted(held(agent))
        assert len(before) == 8 * 2 + 3 + 1, before

        # Without a coordinator to answer, the restarted agent keeps every record.
        c.coordinator.terminate()
        agent.kill9()
        agent.start().wait_healthy()

        assert agent_locks(agent) == before
        assert sorted(held(agent)) == held_before
        # The rebuilt table still refuses conflicting prepares.
        v, reason = vote(agent_prepare(agent, "rb-late", debit_ops(ACCOUNTS[8], 1), participant="bank-a"))
        assert v == "no" and "lock conflict with rb-two" in reason, reason
        assert int(metrics(agent)["commitd_agent_locks_held"]) == len(before)

        expect_status(agent_commit(agent, "rb-two"), 200, "commit after restart")
        for txid in held_before:
            if txid != "rb-two":
                expect_status(agent_abort(agent, txid), 200, f"abort {txid}")
        assert agent_locks(agent) == {} and held(agent) == {}
        bal = c.balances("bank-a")
        assert bal[ACCOUNTS[8]] == 99 and bal[ACCOUNTS[9]] == 101 and bal[ACCOUNTS[0]] == 100, bal


def test_commit_of_unknown_txid_is_404():
    with Cluster(banks={"bank-a": "seed-a.sql"}) as c:
        agent = c.agent("bank-a")
        body = expect_status(agent_commit(agent, "never-prepared"), 404, "commit unknown")
        assert body["error"]["code"] == "unknown_transaction", body
        # It left nothing behind: the txid can still be prepared and committed.
        assert vote(agent_prepare(agent, "never-prepared", debit_ops("alice", 5), participant="bank-a"))[0] == "yes"
        expect_status(agent_commit(agent, "never-prepared"), 200, "commit")
        assert c.balances("bank-a")["alice"] == 95


def test_a_coordinator_that_did_not_run_the_transaction_never_aborts_it():
    # Regression: the agent asked its --coordinator (not the record's own) with
    # ?participant=NAME, so that coordinator recorded a presumed abort and then
    # answered "aborted" (200) the next time, which the agent obeyed. Only the
    # record's own coordinator may presume abort.
    with Cluster(banks={"bank-a": "seed-a.sql"}) as c:
        agent = c.agent("bank-a")
        assert vote(agent_prepare(agent, "foreign-1", debit_ops("alice", 5), participant="bank-a",
                                  coordinator="http://127.0.0.1:1", timeout_ms=100))[0] == "yes"
        time.sleep(1.5)  # many rounds of resolution (FAST_CONFIG: resolve_max_ms 300)
        assert "foreign-1" in held(agent), held(agent)
        status, body = c.tx_status("foreign-1")
        assert status == 404, (status, body)  # nothing recorded there
        expect_status(agent_abort(agent, "foreign-1"), 200, "abort")


def test_abort_before_prepare_leaves_a_tombstone():
    with Cluster(banks={"bank-a": "seed-a.sql"}) as c:
        agent = c.agent("bank-a")
        body = expect_status(agent_abort(agent, "early-abort"), 200, "abort before prepare")
        assert body["state"] == "aborted", body
        v, reason = vote(agent_prepare(agent, "early-abort", debit_ops("alice", 5), participant="bank-a"))
        assert v == "no" and "aborted" in reason, reason
        assert held(agent) == {} and agent_locks(agent) == {}
        assert c.balances("bank-a") == c.seed("bank-a")

        # The tombstone is in the database, so it survives a crash.
        eventually(lambda: harness._read(c.bank("bank-a").db,
                                         "SELECT outcome FROM _commitd_finished WHERE txid = 'early-abort'")
                   == [("aborted",)], what="tombstone written")
        agent.kill9()
        agent.start().wait_healthy()
        v, reason = vote(agent_prepare(agent, "early-abort", debit_ops("alice", 5), participant="bank-a"))
        assert v == "no", reason
        assert c.balances("bank-a") == c.seed("bank-a") and c.journal("bank-a") == []


def test_retention_window_then_a_duplicate_prepare_is_new():
    config = dict(harness.FAST_CONFIG, outcome_retention_ms=1000)
    credit = [{"procedure": "credit", "args": {"account": "erin", "amount": 1}}]
    with Cluster(banks={"bank-a": "seed-a.sql"}, config=config) as c:
        agent = c.agent("bank-a")
        db = c.bank("bank-a").db
        assert vote(agent_prepare(agent, "ret-journal", debit_ops("alice", 5), participant="bank-a"))[0] == "yes"
        expect_status(agent_commit(agent, "ret-journal"), 200, "commit")
        assert vote(agent_prepare(agent, "ret-plain", credit, participant="bank-a"))[0] == "yes"
        expect_status(agent_commit(agent, "ret-plain"), 200, "commit")
        expect_status(agent_abort(agent, "ret-tomb"), 200, "tombstone")

        # Within the window: the same answers, nothing runs again.
        assert vote(agent_prepare(agent, "ret-journal", debit_ops("alice", 5), participant="bank-a"))[0] == "yes"
        assert vote(agent_prepare(agent, "ret-plain", credit, participant="bank-a"))[0] == "yes"
        assert vote(agent_prepare(agent, "ret-tomb", debit_ops("carol", 5), participant="bank-a"))[0] == "no"
        assert held(agent) == {}

        # After it they are forgotten, in memory and in _commitd_finished ...
        def forgotten():
            return harness._read(db, "SELECT txid FROM _commitd_finished WHERE txid LIKE 'ret-%'") == []
        eventually(forgotten, timeout=15, what="outcomes forgotten")

        # ... so a duplicate prepare of a finished txid is a new transaction
        # and runs again. A row keyed by :txid (the bank's journal) makes the
        # re-run fail instead of applying twice; without one it would prepare.
        v, reason = vote(agent_prepare(agent, "ret-journal", debit_ops("alice", 5), participant="bank-a"))
        assert v == "no" and "UNIQUE constraint failed: journal" in reason, reason
        assert vote(agent_prepare(agent, "ret-plain", credit, participant="bank-a"))[0] == "yes"
        assert vote(agent_prepare(agent, "ret-tomb", debit_ops("carol", 5), participant="bank-a"))[0] == "yes"
        assert sorted(held(agent)) == ["ret-plain", "ret-tomb"]
        expect_status(agent_abort(agent, "ret-plain"), 200, "abort the re-run")
        expect_status(agent_abort(agent, "ret-tomb"), 200, "abort the late prepare")
        bal = c.balances("bank-a")
        assert bal["alice"] == 95 and bal["erin"] == 101 and bal["carol"] == 100, bal


def test_change_behind_the_agents_back_is_kept_as_a_conflict():
    with Cluster(coordinator_env={FAILPOINTS: "coordinator.skip_commit_delivery"}) as c:
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, timeout_ms=15000), 200, "transfer")
        txid = body["txid"]
        assert txid in held(c.agent("bank-b")), held(c.agent("bank-b"))

        # Someone writes the locked row directly.
        conn = sqlite3.connect(c.bank("bank-b").db, timeout=10)
        conn.execute("UPDATE accounts SET balance = 999 WHERE id = 'bob'")
        conn.commit()
        conn.close()

        c.coordinator.kill9()
        c.coordinator.start(env={})
        c.wait_coordinator()

        c.eventually_balance("bank-a", "alice", 70)
        entry = eventually(lambda: held(c.agent("bank-b"), "conflict").get(txid), what="conflict listed")
        assert entry["state"] == "conflict", entry
        assert "changeset conflict on accounts" in entry["last_error"] and "'bob'" in entry["last_error"], entry
        assert txid in held(c.agent("bank-b"), "prepared"), "a conflict is still held"
        time.sleep(1.0)  # the coordinator keeps retrying; the count stays per transaction
        m = metrics(c.agent("bank-b"))
        assert m["commitd_agent_apply_conflicts_total"] == 1, m
        assert m["commitd_agent_apply_conflict_attempts_total"] >= 1, m
        assert m["commitd_agent_conflicts_held"] == 1, m
        # Nothing was forced: the row keeps the outside value, no journal row, the locks stay.
        assert c.balances("bank-b")["bob"] == 999
        assert c.journal("bank-b", txid) == []
        assert txid in agent_locks(c.agent("bank-b")).values()

        # Putting the row back lets the next retry apply the changeset.
        conn = sqlite3.connect(c.bank("bank-b").db, timeout=10)
        conn.execute("UPDATE accounts SET balance = 50 WHERE id = 'bob'")
        conn.commit()
        conn.close()
        c.eventually_balance("bank-b", "bob", 80)
        c.eventually_nothing_prepared()
        assert c.journal("bank-b", txid) == [(txid, "bob", 30)]
        assert metrics(c.agent("bank-b"))["commitd_agent_conflicts_held"] == 0


if __name__ == "__main__":
    harness.main(globals())
