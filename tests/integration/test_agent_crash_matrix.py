"""The crash matrix: a real process dies at each named
failpoint (it SIGKILLs itself there), is restarted without it, and both bank
databases must reach the coordinator's decision, with balances matching the
journal and nothing left prepared.

  agent.crash_before_prepare_durable   ops executed, prepared record not durable
  agent.crash_after_prepare_durable    record durable, vote not sent
  agent.crash_after_commit_applied     commit applied and durable, ack not sent
  agent.crash_during_abort             record discarded and durable, ack not sent
  coordinator.crash_after_decision_durable   decision durable, nothing sent (a 2PC commit:
                                             answered and sent already)
                                             (a commit and an abort decision)
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, eventually, held  # noqa: E402

FAILPOINTS = "COMMITD_FAILPOINTS"


def assert_converged(c, txid, outcome):
    """Both banks reflect the coordinator's decision `outcome` for txid."""
    status, tx = c.tx_status(txid)
    assert status in (200, 404) and tx["outcome"] == outcome, (status, tx)
    c.eventually_nothing_prepared(timeout=60)
    for name in ("bank-a", "bank-b"):
        eventually(lambda name=name: held(c.agent(name), "conflict") == {}, what=f"no conflict on {name}")
        rows = c.journal(name, txid)
        if outcome == "committed":
            assert len(rows) == 1, (name, rows)
        else:
            assert rows == [], (name, rows)
        # Every balance is its seed plus its journal deltas.
        seed = c.seed(name)
        deltas = {}
        for _, account, delta in c.journal(name):
            deltas[account] = deltas.get(account, 0) + delta
        assert c.balances(name) == {a: seed[a] + deltas.get(a, 0) for a in seed}, (name, c.balances(name))
    if outcome == "committed":
        assert c.journal("bank-a", txid)[0][1:] == ("alice", -30)
        assert c.journal("bank-b", txid)[0][1:] == ("bob", 30)


def agent_case(failpoint, expected_status, outcome):
    with Cluster(agent_env={"bank-b": {FAILPOINTS: failpoint}}) as c:
        status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 30)
        assert status == expected_status and body["outcome"] == outcome, (status, body)
        rc = c.agent("bank-b").wait_exit(timeout=15)
        assert rc == -signal.SIGKILL, f"bank-b did not die at {failpoint}: rc={rc}"
        assert failpoint in c.agent("bank-b").log_text()
        c.agent("bank-b").start(env={}).wait_healthy()
        assert_converged(c, body["txid"], outcome)


def test_agent_crash_before_prepare_durable():
    agent_case("agent.crash_before_prepare_durable", 409, "aborted")


def test_agent_crash_after_prepare_durable():
    agent_case("agent.crash_after_prepare_durable", 409, "aborted")


def test_agent_crash_after_commit_applied():
    agent_case("agent.crash_after_commit_applied", 200, "committed")


def test_agent_crash_during_abort():
    # bank-a is stopped (SIGSTOP), so the transaction misses its deadline after
    # bank-b prepared, and the coordinator's abort reaches a prepared bank-b.
    with Cluster(agent_env={"bank-b": {FAILPOINTS: "agent.crash_during_abort"}}) as c:
        bank_a = c.agent("bank-a")
        bank_a.popen.send_signal(signal.SIGSTOP)
        try:
            status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 30, timeout_ms=1500)
        finally:
            bank_a.popen.send_signal(signal.SIGCONT)
        assert status == 409 and body["outcome"] == "aborted", (status, body)
        rc = c.agent("bank-b").wait_exit(timeout=15)
        assert rc == -signal.SIGKILL, f"bank-b did not die during abort: rc={rc}"
        assert "agent.crash_during_abort" in c.agent("bank-b").log_text()
        c.agent("bank-b").start(env={}).wait_healthy()
        assert_converged(c, body["txid"], "aborted")


def coordinator_case(amount, outcome):
    with Cluster(coordinator_env={FAILPOINTS: "coordinator.crash_after_decision_durable"}) as c:
        key = f"matrix-{outcome}"
        try:
            status, body = c.transfer("bank-a", "alice", "bank-b", "bob", amount, idem_key=key, http_timeout=15)
            # A 2PC commit is answered on its staging record and the votes,
            # before its commit record is written; an abort only after.
            assert outcome == "committed" and status == 200 and body["outcome"] == outcome, \
                f"the coordinator answered instead of crashing: {status} {body}"
        except OSError:
            pass
        rc = c.coordinator.wait_exit(timeout=15)
        assert rc == -signal.SIGKILL, f"commitd did not die after the decision: rc={rc}"
        c.coordinator.start(env={})
        c.wait_coordinator()
        # The decision survived; the same Idempotency-Key returns it without running again.
        status, body = c.transfer("bank-a", "alice", "bank-b", "bob", amount, idem_key=key)
        assert body["outcome"] == outcome, (status, body)
        assert_converged(c, body["txid"], outcome)
        if outcome == "committed":
            time.sleep(0.3)
            assert len(c.journal("bank-a")) == 1, "the replay ran the transfer again"


def test_coordinator_crash_after_commit_decision_durable():
    coordinator_case(30, "committed")


def test_coordinator_crash_after_abort_decision_durable():
    coordinator_case(1000, "aborted")


if __name__ == "__main__":
    harness.main(globals())
