"""Three-phase commit with real processes (docs/protocol.md):
3PC transfers commit and abort like 2PC ones, and when the coordinator is
killed -9 the agents finish the transaction among themselves (termination
protocol) without it ever restarting — committed when it died after every
precommit was acknowledged, aborted when it died before sending any. Restarted
before the agents' deadline, it resumes the transaction from its staging
record.

Run one test: python3 test_three_phase.py --bin-dir build/release/bin test_3pc_transfer_commits
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, eventually, expect_status, reason_of  # noqa: E402

CONFIG = harness.QUICK_3PC_CONFIG


def test_3pc_transfer_commits():
    with Cluster(config=CONFIG) as c:
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, protocol="3pc"), 200, "3pc transfer")
        assert body["outcome"] == "committed", body
        txid = body["txid"]
        c.eventually_balance("bank-a", "alice", 70)
        c.eventually_balance("bank-b", "bob", 80)
        assert c.journal("bank-a", txid) == [(txid, "alice", -30)]
        status, tx = c.tx_status(txid)
        assert status == 200 and tx["protocol"] == "3pc" and tx["outcome"] == "committed", (status, tx)
        c.eventually_nothing_prepared()
        _, _, metrics, _ = harness.request("GET", c.url, "/metrics")
        assert "commitd_precommits_sent_total 2" in metrics, metrics


def test_3pc_no_vote_aborts():
    with Cluster(config=CONFIG) as c:
        status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 1000, protocol="3pc")
        assert status == 409 and body["outcome"] == "aborted", (status, body)
        assert "bank-a voted no" in reason_of(body), body
        c.eventually_nothing_prepared()
        assert c.balances("bank-a") == c.seed("bank-a") and c.balances("bank-b") == c.seed("bank-b")


def _kill_coordinator_mid_3pc(failpoint):
    """Starts a 3PC transfer whose coordinator SIGKILLs itself at `failpoint`.
    Returns the cluster with the coordinator dead (never restarted)."""
    c = Cluster(config=CONFIG, coordinator_env={"COMMITD_FAILPOINTS": failpoint})
    try:
        harness.crash_coordinator_in_3pc_transfer(c)
    except BaseException:
        c.failed = True
        c.close()
        raise
    return c


def test_coordinator_killed_after_every_precommit_ack_commits_without_it():
    c = _kill_coordinator_mid_3pc("coordinator.crash_before_3pc_commit_record")
    with c:
        started = time.monotonic()
        c.eventually_balance("bank-a", "alice", 70, timeout=30)
        c.eventually_balance("bank-b", "bob", 80, timeout=30)
        c.eventually_nothing_prepared(timeout=30)
        harness.log(f"both agents committed {time.monotonic() - started:.2f} s after the coordinator died")
        assert not c.coordinator.alive(), "the coordinator was restarted"
        a, b = c.journal_txids("bank-a"), c.journal_txids("bank-b")
        assert len(a) == 1 and a == b, (a, b)
        # The termination protocol decided it: the agents' logs say so.
        logs = c.agent("bank-a").log_text() + c.agent("bank-b").log_text()
        assert "termination_call" in logs
        decided = 0
        for name in ("bank-a", "bank-b"):
            _, _, text, _ = harness.request("GET", c.bank(name).url, "/metrics")
            assert re.search(r"^commitd_agent_precommits_total 1$", text, re.M), text
            decided += int(re.search(r"^commitd_agent_termination_decisions_total (\d+)$", text, re.M).group(1))
        assert decided >= 1, "no agent decided by termination"


def test_coordinator_back_after_the_agents_forgot_leaves_the_outcome_in_doubt():
    # The agents commit by termination and forget the txid after their
    # outcome retention; the coordinator then returns to its staging record,
    # older than half that retention. A fence there would find nobody prepared
    # and abort what both committed: nothing is decided, and no abort reaches
    # the agents (an abort of an unknown txid would leave a tombstone, and a
    # client retrying would hear "aborted").
    with Cluster(config=harness.FORGETFUL_3PC_CONFIG, coordinator_env=harness.CRASH_BEFORE_3PC_COMMIT) as c:
        txid = harness.leave_3pc_transfer_in_doubt(c)
        time.sleep(2)  # several sweeps later, still undecided
        status, tx = c.tx_status(txid)
        assert status == 200 and tx["outcome"] == "pending", (status, tx)
        for name in ("bank-a", "bank-b"):  # not fenced: a fence would leave an "aborted" tombstone
            status, body = c.agent_tx(name, txid)
            assert status == 200 and body["state"] == "unknown", (name, body)
        assert c.balances("bank-a")["alice"] == 70 and c.balances("bank-b")["bob"] == 80
        assert tx.get("in_doubt") is True, tx
        # Asked, neither agent knows the transaction any more (no tombstone either: the query is read-only).
        assert all("does not know the transaction" in b["last_error"] for b in tx["branches"]), tx
        _, _, metrics, _ = harness.request("GET", c.url, "/metrics")
        assert re.search(r'^commitd_transactions_in_doubt\{kind="staging_unknown"\} 1$', metrics, re.M), metrics

        # SIGTERM does not wait for it: the record stays for the next start.
        assert c.coordinator.terminate(timeout=8) == 0, "commitd did not stop cleanly on SIGTERM"
        assert "shutdown_done" in c.coordinator.log_text()
        harness.restart_coordinator_in_doubt(c, txid)

        status = subprocess.run([harness.bin_path("commitctl"), "--coordinator", c.url, "status", "--json"],
                                capture_output=True, text=True, timeout=30)
        assert status.returncode == 1, status  # trouble: a transaction waits for an operator
        summary = json.loads(status.stdout)
        assert summary["in_doubt"] == 1 and summary["pending"] == 0, summary

        # The operator compares the data (both banks applied it) and settles it.
        ctl = [harness.bin_path("commitctl"), "--coordinator", c.url, "resolve", txid, "--force", "commit"]
        unconfirmed = subprocess.run(ctl, capture_output=True, text=True, timeout=30)
        assert unconfirmed.returncode == 2 and "nothing changed" in unconfirmed.stdout, unconfirmed
        assert c.tx_status(txid)[1]["outcome"] == "pending"
        forced = subprocess.run(ctl + ["--yes"], capture_output=True, text=True, timeout=30)
        assert forced.returncode == 0, forced

        def settled():
            status, tx = c.tx_status(txid)
            return status == 200 and tx["outcome"] == "committed" and tx.get("heuristic") and tx["state"] == "finished"
        eventually(settled, timeout=20, what=f"{txid} committed by the operator and finished")
        assert c.balances("bank-a")["alice"] == 70 and c.balances("bank-b")["bob"] == 80
        _, _, metrics, _ = harness.request("GET", c.url, "/metrics")
        assert re.search(r'^commitd_transactions_in_doubt\{kind="staging_unknown"\} 0$', metrics, re.M), metrics


def _back_after_the_agents_decided(failpoint):
    """The coordinator dies at `failpoint` in a 3PC transfer and the agents
    decide it by termination and remember the outcome. The coordinator comes
    back with an outcome retention of 1.5 s in its own config (the agents keep
    theirs), so its staging record is too old to fence: it must ask the
    agents. Returns (cluster, txid) with the coordinator restarted."""
    c = Cluster(config=CONFIG, coordinator_env={"COMMITD_FAILPOINTS": failpoint}, start=False)
    try:
        # The last --config is the one read: the agents' settings with a short outcome retention.
        c.coordinator_args = ["--config", harness.write_config(os.path.join(c.dir, "coordinator.json"),
                                                                harness.FORGETFUL_3PC_CONFIG)]
        c.start()
        harness.crash_coordinator_in_3pc_transfer(c)
        c.eventually_nothing_prepared(timeout=30)
        time.sleep(1.0)  # older than half of the coordinator's 1.5 s
        c.coordinator.start(env={})
        c.wait_coordinator()
        status, listed = c.get("/v1/transactions?limit=10")
        assert status == 200, (status, listed)
        txids = [t["txid"] for t in listed["transactions"]]
        assert len(txids) == 1, listed
        return c, txids[0]
    except BaseException:
        c.failed = True
        c.close()
        raise


def test_coordinator_back_after_termination_committed_commits_from_what_the_agents_remember():
    # Killed after every precommit ack: the agents commit by termination and
    # remember it. The staging record is too old to fence, so the agents are
    # asked; one that committed proves commit: settled without an operator.
    c, txid = _back_after_the_agents_decided("coordinator.crash_before_3pc_commit_record")
    with c:
        assert c.journal_txids("bank-a") == [txid], c.journal_txids("bank-a")

        def settled():
            status, tx = c.tx_status(txid)
            return status == 200 and tx["outcome"] == "committed" and tx["state"] == "finished" and tx
        tx = eventually(settled, timeout=20, what=f"{txid} committed from the agents' answers")
        assert not tx.get("heuristic"), tx
        assert c.balances("bank-a")["alice"] == 70 and c.balances("bank-b")["bob"] == 80
        for name in ("bank-a", "bank-b"):
            status, body = c.agent_tx(name, txid)
            assert status == 200 and body["state"] == "committed", (name, body)
        _, _, metrics, _ = harness.request("GET", c.url, "/metrics")
        assert re.search(r'^commitd_transactions_in_doubt\{kind="staging_unknown"\} 0$', metrics, re.M), metrics


def test_coordinator_back_after_termination_aborted_aborts_from_what_the_agents_remember():
    # Killed before any precommit: the agents abort by termination. Asked,
    # they answer aborted: the coordinator records the abort, no operator.
    c, txid = _back_after_the_agents_decided("coordinator.crash_before_precommits")
    with c:
        assert c.journal_txids("bank-a") == [] and c.journal_txids("bank-b") == []

        def settled():
            status, tx = c.tx_status(txid)
            return status == 200 and tx["outcome"] == "aborted" and tx["state"] == "finished" and tx
        tx = eventually(settled, timeout=20, what=f"{txid} aborted from the agents' answers")
        assert not tx.get("heuristic"), tx
        assert "had aborted the transaction" in harness.reason_of(tx), tx
        assert c.balances("bank-a") == c.seed("bank-a") and c.balances("bank-b") == c.seed("bank-b")


def test_coordinator_killed_before_precommit_aborts_without_it():
    # Killed as the first precommit is about to leave: both agents voted yes
    # (prepared) and none precommitted. (At the staging record's durability
    # instead, the prepares may not have reached the agents yet, and then
    # there is nothing to terminate.)
    c = _kill_coordinator_mid_3pc("coordinator.crash_before_precommits")
    with c:
        c.eventually_nothing_prepared(timeout=30)
        assert not c.coordinator.alive(), "the coordinator was restarted"
        assert c.balances("bank-a") == c.seed("bank-a") and c.balances("bank-b") == c.seed("bank-b")
        assert c.journal("bank-a") == [] and c.journal("bank-b") == []
        logs = c.agent("bank-a").log_text() + c.agent("bank-b").log_text()
        assert "termination_call" in logs


def test_coordinator_killed_before_its_precommits_resumes_them_and_commits():
    # Every vote is yes and the staging record durable; the coordinator dies
    # as the first precommit is about to leave. The agents wait (a long
    # timeout_ms keeps their termination away); restarted, the coordinator
    # fences both, finds them prepared, precommits them and commits, and the
    # client's retry with the same Idempotency-Key hears it.
    with Cluster(config=CONFIG, coordinator_env={"COMMITD_FAILPOINTS": "coordinator.crash_before_precommits"}) as c:
        try:
            status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 30, protocol="3pc", idem_key="k-pre",
                                      timeout_ms=60000, http_timeout=10)
            raise AssertionError(f"the coordinator answered instead of crashing: {status} {body}")
        except OSError:
            pass
        assert c.coordinator.wait_exit(10) == -signal.SIGKILL
        a, b = harness.prepared_in_db(c.bank("bank-a").db), harness.prepared_in_db(c.bank("bank-b").db)
        assert list(a.values()) == ["prepared"] and a == b, (a, b)  # voted yes, not precommitted
        (txid,) = a
        c.coordinator.start(env={})
        c.wait_coordinator()
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, protocol="3pc", idem_key="k-pre",
                                        timeout_ms=60000), 200, "the retry")
        assert body["txid"] == txid and body["outcome"] == "committed", body
        c.eventually_balance("bank-a", "alice", 70)
        c.eventually_balance("bank-b", "bob", 80)
        c.eventually_nothing_prepared()
        assert c.journal_txids("bank-a") == [txid] and c.journal_txids("bank-b") == [txid]
        for name in ("bank-a", "bank-b"):
            _, _, text, _ = harness.request("GET", c.bank(name).url, "/metrics")
            assert re.search(r"^commitd_agent_precommits_total 1$", text, re.M), text
            assert re.search(r"^commitd_agent_termination_decisions_total 0$", text, re.M), text


def test_restarted_coordinator_does_not_hold_the_participants_while_one_is_unreachable():
    # The coordinator dies as its precommits are about to leave and comes
    # back at once, while bank-b is frozen: its fence to bank-b goes
    # unanswered. It does not tell bank-a "pending" (which would hold bank-a
    # until bank-b returns): bank-a decides by termination (bank-b silent,
    # itself merely prepared: abort), as it would with the coordinator down.
    # Thawed, bank-b ends aborted too, and so does the coordinator.
    with Cluster(config=CONFIG, coordinator_env={"COMMITD_FAILPOINTS": "coordinator.crash_before_precommits"}) as c:
        try:
            status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 30, protocol="3pc", idem_key="k-frozen",
                                      http_timeout=10)
            raise AssertionError(f"the coordinator answered instead of crashing: {status} {body}")
        except OSError:
            pass
        assert c.coordinator.wait_exit(10) == -signal.SIGKILL
        (txid,) = harness.prepared_in_db(c.bank("bank-a").db)
        c.agent("bank-b").popen.send_signal(signal.SIGSTOP)
        try:
            c.coordinator.start(env={})
            c.wait_coordinator()
            c.eventually_balance("bank-a", "alice", c.seed("bank-a")["alice"], timeout=20)
            eventually(lambda: not harness.prepared_in_db(c.bank("bank-a").db), timeout=20,
                       what="bank-a deciding while bank-b is frozen")
            status, tx = c.tx_status(txid)
            assert status == 200 and tx["outcome"] == "pending", (status, tx)  # bank-b's fence still unanswered
            assert "termination_call" in c.agent("bank-a").log_text()
        finally:
            c.agent("bank-b").popen.send_signal(signal.SIGCONT)
        c.eventually_nothing_prepared(timeout=30)
        assert c.balances("bank-a") == c.seed("bank-a") and c.balances("bank-b") == c.seed("bank-b")
        status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 30, protocol="3pc", idem_key="k-frozen")
        assert status == 409 and body["txid"] == txid and body["outcome"] == "aborted", (status, body)


def test_a_precommitted_agent_does_not_take_a_forgetful_peer_for_an_abort():
    # Every precommit acked, the coordinator dies, and so does bank-a
    # (precommitted). bank-b, precommitted and alone, commits by termination
    # and, with a 1.5-s retention, forgets it. bank-a restarts, asks bank-b
    # and hears "unknown": every participant voted yes, so bank-b finished
    # the transaction either way and forgot. bank-a decides nothing (aborting
    # here would undo half of a transfer bank-b applied) and waits for the
    # coordinator, which, back and unable to learn the outcome, leaves it to
    # the operator.
    with Cluster(config=harness.FORGETFUL_3PC_CONFIG, coordinator_env=harness.CRASH_BEFORE_3PC_COMMIT) as c:
        harness.crash_coordinator_in_3pc_transfer(c)
        c.agent("bank-a").kill9()
        (txid,) = harness.prepared_in_db(c.bank("bank-a").db)
        c.eventually_balance("bank-b", "bob", c.seed("bank-b")["bob"] + 30, timeout=30)
        eventually(lambda: c.agent_tx("bank-b", txid) == (200, {"txid": txid, "state": "unknown"}), timeout=30,
                   what="bank-b forgetting the transaction it committed")
        c.agent("bank-a").restart()
        c.agent("bank-a").wait_healthy()

        def waiting():
            _, held = harness.get(c.bank("bank-a").url, "/v1/transactions?state=prepared")
            mine = [t for t in held.get("transactions", []) if t["txid"] == txid]
            assert mine and "bank-b no longer knows the transaction" in mine[0]["last_error"], held
            return mine[0]
        held = eventually(waiting, timeout=30, what="bank-a waiting instead of aborting")
        assert held["state"] == "precommitted", held
        time.sleep(2)  # more termination rounds: still nothing decided
        assert harness.prepared_in_db(c.bank("bank-a").db) == {txid: "precommitted"}
        assert c.balances("bank-a") == c.seed("bank-a"), "bank-a applied or undid something"

        # The coordinator comes back: its staging record is too old to fence,
        # bank-a holds it and bank-b no longer knows it: in doubt, for the
        # operator, who sees bank-b's journal row and commits.
        c.coordinator.start(env={})
        c.wait_coordinator()
        tx = eventually(lambda: c.tx_status(txid)[1].get("in_doubt") and c.tx_status(txid)[1], timeout=20,
                        what=f"{txid} in doubt")
        assert tx["outcome"] == "pending", tx
        assert [b["state"] for b in tx["branches"]] == ["prepared", "unknown"], tx
        forced = subprocess.run([harness.bin_path("commitctl"), "--coordinator", c.url, "resolve", txid, "--force",
                                 "commit", "--yes"], capture_output=True, text=True, timeout=30)
        assert forced.returncode == 0, forced
        c.eventually_balance("bank-a", "alice", c.seed("bank-a")["alice"] - 30, timeout=30)
        assert c.balances("bank-b")["bob"] == c.seed("bank-b")["bob"] + 30


def test_agent_killed_after_precommit_durable_converges_on_commit():
    # bank-b dies with its precommit durable and unacknowledged; bank-a's ack is
    # enough for the coordinator to commit at the precommit deadline.
    with Cluster(config=CONFIG, agent_env={"bank-b": {"COMMITD_FAILPOINTS": "agent.crash_after_precommit_durable"}}) as c:
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, protocol="3pc"), 200, "3pc transfer")
        assert body["outcome"] == "committed", body
        assert c.agent("bank-b").wait_exit(10) == -signal.SIGKILL
        assert harness.prepared_in_db(c.bank("bank-b").db) == {body["txid"]: "precommitted"}
        c.agent("bank-b").start(env={}).wait_healthy()
        c.eventually_balance("bank-a", "alice", 70)
        c.eventually_balance("bank-b", "bob", 80)
        c.eventually_nothing_prepared()
        assert c.journal("bank-b", body["txid"]) == [(body["txid"], "bob", 30)]


def test_2pc_stays_in_doubt_where_3pc_terminates():
    # The same kill under 2PC: the agents hold the transaction until the
    # coordinator returns (blocking), then commit it. A 2PC commit is
    # answered once its staging record and the votes are durable; here its
    # commits and its commit record never leave, and it is killed after.
    env = {"COMMITD_FAILPOINTS": "coordinator.skip_commit_delivery,coordinator.skip_early_commit_record"}
    c = Cluster(config=CONFIG, coordinator_env=env)
    with c:
        status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 30, http_timeout=10)
        assert status == 200 and body["outcome"] == "committed", (status, body)
        c.coordinator.kill9()
        time.sleep(4)  # well past the deadline and the termination grace of 3PC
        assert c.prepared("bank-a") and c.prepared("bank-b"), "2PC agents decided without their coordinator"
        c.coordinator.start(env={})
        c.wait_coordinator()
        c.eventually_balance("bank-a", "alice", 70)
        c.eventually_balance("bank-b", "bob", 80)
        c.eventually_nothing_prepared()


def test_agent_precommit_and_state_endpoints_validate():
    with Cluster(config=CONFIG) as c:
        agent = c.bank("bank-a").url
        status, body = harness.post(agent, "/v1/precommit", {"tx": "x"})
        assert status == 400 and body["error"]["code"] == "invalid_request", (status, body)
        status, body = harness.post(agent, "/v1/precommit", {"txid": "never-seen"})
        assert status == 404 and body["error"]["code"] == "unknown_transaction", (status, body)
        status, body = harness.get(agent, "/v1/transactions/never-seen")
        assert status == 200 and body == {"txid": "never-seen", "state": "unknown"}, (status, body)
        status, body = harness.get(agent, "/v1/transactions/bad%20id")
        assert status == 400, (status, body)
        # A 2PC transaction refuses precommit.
        txid = "two-phase-1"
        status, vote = harness.agent_prepare(agent, txid, harness.debit_ops("alice", 5), participant="bank-a")
        assert status == 200 and vote["vote"] == "yes", (status, vote)
        # A peer that never answers: restarted, bank-a must wait rather than decide alone.
        prepared_3pc = harness.prepare_body("three-phase-1", "bank-a", harness.debit_ops("carol", 5),
                                            participants=[{"name": "bank-a", "url": agent},
                                                          {"name": "bank-z", "url": "http://127.0.0.1:1"}])
        prepared_3pc["protocol"] = "3pc"
        status, vote = harness.post(agent, "/v1/prepare", prepared_3pc)
        assert status == 200 and vote["vote"] == "yes", (status, vote)
        expect_status(harness.post(agent, "/v1/precommit", {"txid": "three-phase-1"}), 200, "precommit")
        status, body = harness.get(agent, "/v1/transactions/three-phase-1")
        assert body["state"] == "precommitted", body
        # Durable: a restarted agent still holds it precommitted (and the lock).
        c.agent("bank-a").kill9()
        c.agent("bank-a").start().wait_healthy()
        time.sleep(0.5)  # several rounds of asking the (unreachable) coordinator and peer
        status, body = harness.get(agent, "/v1/transactions/three-phase-1")
        assert body["state"] == "precommitted", body
        expect_status(harness.post(agent, "/v1/commit", {"txid": "three-phase-1"}), 200, "commit")
        assert c.balances("bank-a")["carol"] == 95
        status, body = harness.post(agent, "/v1/precommit", {"txid": txid})
        assert status == 409 and body["error"]["code"] == "not_3pc", (status, body)
        status, body = harness.get(agent, f"/v1/transactions/{txid}")
        assert status == 200 and body["state"] == "prepared", (status, body)
        expect_status(harness.agent_abort(agent, txid), 200, "abort")
        status, body = harness.get(agent, f"/v1/transactions/{txid}")
        assert body["state"] == "aborted", body


if __name__ == "__main__":
    harness.main(globals())
