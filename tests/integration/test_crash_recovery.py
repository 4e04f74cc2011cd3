"""Crash recovery with real processes and kill -9.

Failpoints (environment variable COMMITD_FAILPOINTS, comma-separated names):
  coordinator.skip_commit_delivery   commitd makes the decision durable and
                                     answers the client, but never sends
                                     commit/abort to the participants
  agent.ignore_decisions             the agent votes, but answers 503 to
                                     commit/abort and applies neither
  agent.crash_after_prepare_durable  the agent SIGKILLs itself once its
                                     prepared record is durable, before the
                                     vote is sent
  coordinator.skip_early_commit_record
                                     a 2PC commit answered on its staging
                                     record and the votes is never written

Every process gets a --config with short timeouts (harness.FAST_CONFIG).
"""

import os
import signal
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, eventually, expect_status, reason_of  # noqa: E402

FAILPOINTS = "COMMITD_FAILPOINTS"

# Long enough that no agent starts asking the coordinator about a prepared
# transaction (which it does past this deadline) before the test has looked.
LONG_TX_TIMEOUT_MS = 15000


def assert_applied(c, txid, amount=30):
    c.eventually_balance("bank-a", "alice", 100 - amount, timeout=60)
    c.eventually_balance("bank-b", "bob", 50 + amount, timeout=60)
    assert c.journal("bank-a", txid) == [(txid, "alice", -amount)], c.journal("bank-a")
    assert c.journal("bank-b", txid) == [(txid, "bob", amount)], c.journal("bank-b")
    c.eventually_nothing_prepared(timeout=60)
    # Applied exactly once, nothing else moved.
    assert sum(c.balances("bank-a").values()) == sum(c.seed("bank-a").values()) - amount
    assert sum(c.balances("bank-b").values()) == sum(c.seed("bank-b").values()) + amount


def test_coordinator_crash_between_decision_and_delivery():
    with Cluster(coordinator_env={FAILPOINTS: "coordinator.skip_commit_delivery"}) as c:
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, timeout_ms=LONG_TX_TIMEOUT_MS),
                             200, "transfer")
        assert body["outcome"] == "committed", body
        txid = body["txid"]

        # Decided, but no participant has heard: both hold it prepared, and
        # their databases still show only committed data.
        assert txid in c.prepared("bank-a"), c.prepared("bank-a")
        assert txid in c.prepared("bank-b"), c.prepared("bank-b")
        assert c.balances("bank-a") == c.seed("bank-a")
        assert c.balances("bank-b") == c.seed("bank-b")

        c.coordinator.kill9()
        c.coordinator.start(env={})  # same --data-dir, no failpoint
        c.wait_coordinator()

        # The decision survived the crash, and it gets delivered.
        status, tx = c.tx_status(txid)
        assert status == 200 and tx["outcome"] == "committed", (status, tx)
        assert_applied(c, txid)


def test_coordinator_crash_after_answering_commit_before_its_record():
    # The client hears commit once every vote is yes and the staging record
    # is durable; the commit record follows. Killed before it is written (and
    # before any commit was sent), the restarted coordinator finds only the
    # staging record, fences both participants, finds both prepared, and
    # commits: what the client heard holds.
    env = {FAILPOINTS: "coordinator.skip_early_commit_record,coordinator.skip_commit_delivery"}
    with Cluster(coordinator_env=env) as c:
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, idem_key="early-k",
                                        timeout_ms=LONG_TX_TIMEOUT_MS), 200, "transfer")
        assert body["outcome"] == "committed", body
        txid = body["txid"]
        assert harness.recorded_outcome(c, txid) == "pending"
        assert txid in c.prepared("bank-a") and txid in c.prepared("bank-b")

        c.coordinator.kill9()
        c.coordinator.start(env={})
        c.wait_coordinator()

        assert_applied(c, txid)
        eventually(lambda: harness.recorded_outcome(c, txid) == "committed", timeout=30, what="the commit recorded")
        status, tx = c.tx_status(txid)
        assert status == 200 and tx["outcome"] == "committed", (status, tx)
        # A retry with the key is answered from the record: the same commit,
        # without the rows a SELECT read (they went to the first answer only).
        again = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, idem_key="early-k"), 200,
                              "same key after recovery")
        assert again["txid"] == txid and again["outcome"] == "committed", again
        assert all(b["results"] is None for b in again["branches"]), again
        assert_applied(c, txid)


def test_coordinator_crash_after_staging_record_with_a_prepare_lost():
    # commitd is killed once the staging record is durable and bank-a has
    # voted yes; bank-b, frozen, never read its prepare and dies too.
    # Restarted, the coordinator fences both: bank-a is prepared, bank-b
    # leaves a tombstone (fenced), so the transaction aborts on bank-b's
    # account and bank-a's prepared changes are rolled back.
    with Cluster() as c:
        c.agent("bank-b").popen.send_signal(signal.SIGSTOP)
        replies = []
        client = threading.Thread(target=lambda: replies.append(_transfer_or_error(c)), daemon=True)
        client.start()

        def staged_and_voted():
            pending = pending_txids(c)
            assert len(pending) == 1, pending
            assert pending[0] in c.prepared("bank-a"), c.prepared("bank-a")
            return pending[0]
        txid = eventually(staged_and_voted, timeout=10, what="the staging record durable and bank-a prepared")
        c.coordinator.kill9()
        client.join(timeout=30)
        assert replies and replies[0] != 200, replies

        c.agent("bank-b").kill9()
        c.coordinator.start(env={})
        c.wait_coordinator()
        c.agent("bank-b").start(env={}).wait_healthy()

        c.eventually_nothing_prepared(timeout=60)
        eventually(lambda: harness.recorded_outcome(c, txid) == "aborted", timeout=30, what="the abort recorded")
        status, tx = c.tx_status(txid)
        assert status == 200 and tx["outcome"] == "aborted" and "bank-b" in tx.get("reason", ""), (status, tx)
        assert c.balances("bank-a") == c.seed("bank-a")
        assert c.balances("bank-b") == c.seed("bank-b")
        assert c.journal("bank-a") == [] and c.journal("bank-b") == []
        ok = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30), 200, "transfer after recovery")
        assert_applied(c, ok["txid"])


def _transfer_or_error(c):
    try:
        status, _ = c.transfer("bank-a", "alice", "bank-b", "bob", 30, timeout_ms=LONG_TX_TIMEOUT_MS)
        return status
    except Exception as e:  # noqa: BLE001 - the coordinator dies under the request
        return repr(e)


def pending_txids(c):
    db = sqlite3.connect(os.path.join(c.data_dir, "decisions.db"))
    try:
        return [row[0] for row in db.execute("SELECT txid FROM decisions WHERE outcome = 'pending'")]
    finally:
        db.close()


def test_agent_crash_after_voting_yes():
    with Cluster(agent_env={"bank-b": {FAILPOINTS: "agent.ignore_decisions"}}) as c:
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, timeout_ms=LONG_TX_TIMEOUT_MS),
                             200, "transfer")
        assert body["outcome"] == "committed", body
        txid = body["txid"]

        # bank-a applies; bank-b keeps it prepared (it ignores the commit).
        c.eventually_balance("bank-a", "alice", 70)
        assert txid in c.prepared("bank-b"), c.prepared("bank-b")
        assert c.balances("bank-b") == c.seed("bank-b")

        c.agent("bank-b").kill9()
        c.agent("bank-b").start(env={}).wait_healthy()

        # It learns the decision (asking the coordinator, or by redelivery).
        assert_applied(c, txid)
        status, tx = c.tx_status(txid)
        assert status == 200 and tx["outcome"] == "committed", (status, tx)


def test_agent_crash_after_prepare_durable():
    with Cluster(agent_env={"bank-b": {FAILPOINTS: "agent.crash_after_prepare_durable"}}) as c:
        t0 = time.monotonic()
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30), 409, "transfer")
        assert body["outcome"] == "aborted", body
        assert "bank-b" in reason_of(body), body
        assert time.monotonic() - t0 < 20, "the abort took too long"
        txid = body["txid"]

        # The agent killed itself (SIGKILL).
        rc = c.agent("bank-b").wait_exit(timeout=10)
        assert rc is not None and rc != 0, rc

        c.eventually_nothing_prepared(["bank-a"])
        c.agent("bank-b").start(env={}).wait_healthy()

        # Restarted, it finds its durable prepared record and resolves it:
        # the coordinator decided abort.
        c.eventually_nothing_prepared(timeout=60)
        assert c.balances("bank-a") == c.seed("bank-a")
        assert c.balances("bank-b") == c.seed("bank-b")
        assert c.journal("bank-a") == [] and c.journal("bank-b") == []
        status, tx = c.tx_status(txid)
        assert status == 200 and tx["outcome"] == "aborted", (status, tx)

        # And it works normally again.
        ok = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30), 200, "transfer after recovery")
        assert_applied(c, ok["txid"])


def test_restarted_coordinator_aborts_what_it_left_undecided_at_once():
    # A prepared transaction of the coordinator's previous incarnation with no
    # decision in its log can never be decided: the restarted coordinator
    # records the abort and tells the agent right away, long before the
    # agent's own deadline (60 s here) would make it ask.
    with Cluster() as c:
        agent = c.bank("bank-a").url
        status, vote = harness.agent_prepare(agent, "orphan-1", harness.debit_ops("alice", 5), participant="bank-a",
                                             coordinator=c.url, timeout_ms=60000)
        assert status == 200 and vote["vote"] == "yes", (status, vote)
        c.coordinator.kill9()
        started = time.monotonic()
        c.start_coordinator()
        c.eventually_nothing_prepared(["bank-a"], timeout=10)
        harness.log(f"orphan aborted {time.monotonic() - started:.2f} s after the restart began")
        assert c.balances("bank-a")["alice"] == 100
        status, tx = c.tx_status("orphan-1")
        assert status == 200 and tx["outcome"] == "aborted" and "took over" in tx.get("reason", ""), (status, tx)
        _, _, metrics, _ = harness.request("GET", c.url, "/metrics")
        assert "commitd_presumed_aborts_swept_total 1" in metrics


def test_coordinator_restart_keeps_outcomes_and_idempotency():
    with Cluster() as c:
        ok = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, idem_key="crash-k"), 200, "transfer")
        no = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 1000), 409, "overdraft")
        assert_applied(c, ok["txid"])
        c.coordinator.kill9()
        c.coordinator.start()
        c.wait_coordinator()
        for txid, outcome in ((ok["txid"], "committed"), (no["txid"], "aborted")):
            status, tx = c.tx_status(txid)
            assert status == 200 and tx["outcome"] == outcome, (status, tx)
        again = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, idem_key="crash-k"), 200,
                              "same key after restart")
        assert again["txid"] == ok["txid"] and again["outcome"] == "committed", (ok, again)
        time.sleep(0.3)
        assert_applied(c, ok["txid"])


def test_soak_repeated_coordinator_crashes():
    """Crash the coordinator repeatedly with transfers in between; money is
    conserved and everything converges. Short by default, longer with
    COMMITD_SOAK=1."""
    rounds = 8 if harness.soak() else 2
    with Cluster() as c:
        committed = []
        for i in range(rounds):
            for j in range(5):
                status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
                assert status in (200, 409), (status, body)
                if status == 200:
                    committed.append(body["txid"])
            c.coordinator.kill9()
            c.coordinator.start()
            c.wait_coordinator()
        c.eventually_nothing_prepared(timeout=60)
        n = len(committed)
        assert n > 0
        c.eventually_balance("bank-a", "alice", 100 - n, timeout=60)
        c.eventually_balance("bank-b", "bob", 50 + n, timeout=60)
        for txid in committed:
            assert len(c.journal("bank-a", txid)) == 1 and len(c.journal("bank-b", txid)) == 1, txid


if __name__ == "__main__":
    harness.main(globals())
