"""A careless or hostile world: inputs that must change nothing and crash nothing.

Each test reproduces a way the coordinator used to break and checks that
commitd now fails closed:
- txids cannot be guessed: decision queries and forced decisions for guessed
  "next" txids collide with no later transaction, and the coordinator still
  stops on SIGTERM;
- a restart with the wall clock at an instant used before repeats no txid;
- a decisions.db truncated while commitd was stopped never turns a transaction
  whose client was told "committed" into an abort: it is reported in doubt;
- a damaged decisions.db is refused at start with an error naming the file;
- a commit or 3PC precommit record that cannot be written stops the
  coordinator unanswered, instead of an "aborted" a restart could contradict;
- a JSON number out of double's range is a 400 with a JSON error everywhere;
- an agent takes a prepare only from a coordinator it knows: one naming any
  other URL is refused and holds no lock;
- an abort of a prepared record is taken only with the transaction's abort
  key: an outsider's abort while the coordinator that decided commit is down
  is refused, and the restarted coordinator commits every participant;
- a commit of a prepared record is taken only with the transaction's commit
  key: an outsider's commit while the coordinator that decided abort is down
  is refused, and the restarted coordinator's abort still goes through;
- a coordinator group's log has an identity too: a group re-bootstrapped from
  empty directories never presumes abort for a record of the old group's log;
- an operator's forced decision under a replaced log adopts the records
  first: a commit of the lost log that reached a participant makes a forced
  abort refused, and an adopted record refuses the lost log's keys, also
  after a kill -9.
"""

import os
import re
import shutil
import signal
import sqlite3
import time

import harness
from harness import Cluster, eventually, get, post

FAILPOINTS = "COMMITD_FAILPOINTS"
# tests/support/frozen_wall_clock.cc; ctest names it.
FROZEN_WALL_CLOCK_LIB = os.environ.get("COMMITD_FROZEN_WALL_CLOCK_LIB", "")


def guesses(txid, count=5):
    """The txids a caller who saw `txid` would try next."""
    m = re.match(r"^(.*)-(\d+)-(\d+)-([0-9a-f]{16})$", txid)
    if m:
        prefix, incarnation, seq, rand = m.groups()
        out = [f"{prefix}-{incarnation}-{int(seq) + i}-{rand}" for i in range(1, count + 1)]
        out += [f"{prefix}-{int(incarnation) + 1}-{i}-{rand}" for i in range(1, count + 1)]
        return out
    m = re.match(r"^(.*)-(\d+)$", txid)
    assert m, f"unexpected txid format: {txid}"
    prefix, seq = m.groups()
    return [f"{prefix}-{int(seq) + i}" for i in range(1, count + 1)]


def metric(url, name):
    status, _, text, _ = harness.request("GET", url, "/metrics")
    assert status == 200, text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def assert_transfers_commit(c, n=5):
    for _ in range(n):
        status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
        assert status == 200, reply
        assert reply["outcome"] == "committed", reply


def assert_stops_on_sigterm(c):
    c.coordinator.terminate(timeout=15.0)
    assert c.coordinator.returncode() == 0, c.coordinator.returncode()


def test_decision_queries_for_guessed_txids_collide_with_nothing():
    with Cluster() as c:
        status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
        assert status == 200, reply
        for guess in guesses(reply["txid"]):
            status, body = get(c.url, f"/v1/transactions/{guess}?participant=bank-a")
            assert status in (400, 404), (guess, status, body)
        assert_transfers_commit(c)
        assert c.coordinator.alive()
        assert_stops_on_sigterm(c)


def test_forced_decisions_for_guessed_txids_collide_with_nothing():
    dead = f"http://127.0.0.1:{harness.free_port()}"
    with Cluster() as c:
        status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
        assert status == 200, reply
        for guess in guesses(reply["txid"]):
            status, body = post(c.url, f"/v1/admin/transactions/{guess}/force",
                                {"outcome": "commit", "participants": [{"name": "ghost", "url": dead}]})
            # 503: the participant named cannot adopt it (nothing is recorded).
            assert status in (200, 400, 404, 409, 503), (guess, status, body)
            assert status != 503 or body["error"]["code"] == "participant_unavailable", body
        assert_transfers_commit(c)
        eventually(lambda: metric(c.url, "commitd_transactions_undecided") == 0, what="nothing undecided")
        assert c.coordinator.alive()
        assert_stops_on_sigterm(c)


def test_restart_with_the_clock_at_an_earlier_instant_repeats_no_txid():
    # The wall clock stands still at one instant; monotonic time runs.
    assert os.path.exists(FROZEN_WALL_CLOCK_LIB), \
        f"COMMITD_FROZEN_WALL_CLOCK_LIB={FROZEN_WALL_CLOCK_LIB!r}: run this test through ctest"
    env = {"LD_PRELOAD": FROZEN_WALL_CLOCK_LIB, "COMMITD_TEST_WALL_CLOCK": "1704067200"}  # 2024-01-01 00:00:00 UTC
    with Cluster(coordinator_env=env) as c:
        seen = set()
        for _ in range(3):
            status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
            assert status == 200, reply
            seen.add(reply["txid"])
        c.coordinator.terminate()
        c.start_coordinator()
        for _ in range(3):
            status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
            assert status == 200, reply
            assert reply["txid"] not in seen, reply["txid"]
            seen.add(reply["txid"])
        assert c.coordinator.alive()
        c.eventually_balance("bank-b", "bob", c.seed("bank-b")["bob"] + 6)
        # The coordinator did run at the frozen instant: its log lines carry it.
        assert '"ts":"2024-01-01T00:00:00.000Z"' in c.coordinator.log_text()


def commit_then_lose_the_log(c):
    """A transfer decided commit whose commits were never delivered (the
    coordinator runs with coordinator.skip_commit_delivery), then the
    coordinator killed, its decisions.db emptied, and started again until it
    lists the transaction in doubt. Returns the txid and the lost log's keys
    for it (harness.decision_log_keys)."""
    status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 30, timeout_ms=15000)
    assert status == 200 and reply["outcome"] == "committed", reply
    txid = reply["txid"]
    assert txid in c.prepared("bank-a") and txid in c.prepared("bank-b")
    keys = harness.decision_log_keys(c.data_dir, txid)
    c.coordinator.kill9()
    for suffix in ("", "-wal", "-shm"):
        path = os.path.join(c.data_dir, "decisions.db" + suffix)
        if os.path.exists(path):
            open(path, "w").close()
    c.coordinator.start(env={})
    c.wait_coordinator()

    def listed_in_doubt():
        status, body = c.get("/v1/transactions?state=in_doubt")
        assert status == 200, body
        return txid in [t["txid"] for t in body["transactions"]]
    eventually(listed_in_doubt, timeout=10.0, what="the transaction listed in doubt")
    return txid, keys


def test_a_truncated_decision_log_reports_in_doubt_instead_of_presuming_abort():
    with Cluster(coordinator_env={FAILPOINTS: "coordinator.skip_commit_delivery"}) as c:
        txid, _ = commit_then_lose_the_log(c)
        time.sleep(2.0)  # sweeps and agents' questions have run by now
        # The client was told "committed": nobody may abort it.
        assert txid in c.prepared("bank-a") and txid in c.prepared("bank-b")
        assert c.balances("bank-a")["alice"] == c.seed("bank-a")["alice"]
        assert c.coordinator.alive()


def test_a_commit_or_precommit_that_cannot_be_written_stops_the_coordinator_without_an_answer():
    # A failed write may still have left the record in the WAL, to reappear
    # after a restart (a 3PC precommit record is then resumed into a commit):
    # answering "aborted" could be contradicted. The coordinator stops
    # unanswered; restarted with a working log, each transaction ends one way
    # everywhere (here: nothing was written, so presumed abort).
    for protocol in ("2pc", "3pc"):
        harness.log(f"protocol {protocol}")
        with Cluster(config={"resolve_initial_ms": 100, "resolve_max_ms": 200},
                     coordinator_env={FAILPOINTS: "decision_log.fail_append"}) as c:
            try:
                status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 30, protocol=protocol,
                                          timeout_ms=1000, http_timeout=10)
                raise AssertionError(f"the coordinator answered instead of stopping: {status} {body}")
            except OSError:
                pass
            assert c.coordinator.wait_exit(10) == -signal.SIGABRT
            assert "fatal_decision_log_failure" in c.coordinator.log_text()
            c.coordinator.start(env={})
            c.wait_coordinator()
            c.eventually_nothing_prepared(timeout=30)
            assert c.balances("bank-a") == c.seed("bank-a") and c.balances("bank-b") == c.seed("bank-b")
            status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 30, protocol=protocol)
            assert status == 200 and body["outcome"] == "committed", (status, body)


def test_a_damaged_decision_log_is_refused_at_start_naming_the_file():
    with Cluster() as c:
        committed = conflicts = 0
        while committed < 50:
            status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
            # The previous transfer's commit is delivered after its answer, so
            # it can still hold alice's row at bank-a when this prepare
            # arrives: a 409 the client may retry (docs/api.md). Only the
            # log's size matters here.
            if status == 409 and "lock conflict" in reply.get("reason", "") and conflicts < 10:
                conflicts += 1
                continue
            assert status == 200, reply
            committed += 1
        c.coordinator.terminate()
        path = os.path.join(c.data_dir, "decisions.db")
        size = os.path.getsize(path)
        assert size > 3 * 4096, size
        with open(path, "r+b") as f:
            for at in range(4096 + 100, size, 4096):
                f.seek(at)
                f.write(bytes((i * 151 + 7) & 0xFF for i in range(64)))
        c.coordinator.start()
        assert c.coordinator.wait_exit(timeout=10.0) != 0
        assert "decisions.db" in c.coordinator.log_text()
        assert "damaged" in c.coordinator.log_text()


def test_numbers_out_of_range_are_400_with_a_json_error():
    with Cluster() as c:
        for url, path, body in [(c.url, "/v1/transactions", '{"branches":1e400}'),
                                (c.bank("bank-a").url, "/v1/prepare", '{"txid":"t-1","timeout_ms":1e400}'),
                                (c.bank("bank-a").url, "/v1/commit", '{"txid":1e400}'),
                                (c.bank("bank-a").url, "/v1/abort", '{"txid":1e400}'),
                                (c.bank("bank-a").url, "/v1/precommit", '{"txid":1e400}')]:
            status, reply, raw, _ = harness.request("POST", url, path, body=body)
            assert status == 400, (url, path, status, raw)
            assert isinstance(reply, dict) and "error" in reply, (path, reply)
        assert c.coordinator.alive() and c.agent("bank-a").alive()


def test_a_prepare_naming_an_unknown_coordinator_is_refused_and_holds_nothing():
    stranger = f"http://127.0.0.1:{harness.free_port()}"
    with Cluster() as c:
        agent = c.bank("bank-a").url
        status, body = harness.agent_prepare(agent, "stranger-1", harness.debit_ops("alice", 5),
                                             participant="bank-a", coordinator=stranger, timeout_ms=600000)
        assert status == 403, (status, body)
        assert body["error"]["code"] == "unknown_coordinator", body
        assert harness.agent_locks(agent) == {}
        assert harness.held(agent) == {}
        assert harness.prepared_in_db(c.bank("bank-a").db) == {}
        # The same rows are free for the coordinator the agent knows.
        assert_transfers_commit(c, n=2)
        c.eventually_balance("bank-a", "alice", c.seed("bank-a")["alice"] - 2)
        assert c.agent("bank-a").alive()


def test_an_abort_without_the_coordinators_key_is_refused_while_commit_was_decided():
    with Cluster(coordinator_env={FAILPOINTS: "coordinator.skip_commit_delivery"}) as c:
        status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 30, timeout_ms=15000)
        assert status == 200 and reply["outcome"] == "committed", reply
        txid = reply["txid"]
        assert txid in c.prepared("bank-a") and txid in c.prepared("bank-b")
        c.coordinator.kill9()
        for key in ("", "0" * 64, harness.test_abort_key(txid)):
            status, body = harness.agent_abort(c.bank("bank-a").url, txid, abort_key=key)
            assert status == 409, (key, status, body)
            assert body["error"]["code"] == "abort_not_from_coordinator", body
        assert txid in c.prepared("bank-a")
        c.coordinator.start(env={})
        c.wait_coordinator()
        c.eventually_balance("bank-a", "alice", c.seed("bank-a")["alice"] - 30)
        c.eventually_balance("bank-b", "bob", c.seed("bank-b")["bob"] + 30)
        c.eventually_nothing_prepared()


def test_a_commit_without_the_coordinators_key_is_refused_while_abort_was_decided():
    with Cluster(agent_env={"bank-b": {FAILPOINTS: "agent.ignore_decisions"}}) as c:
        # alice cannot pay 1000: bank-a votes no, the coordinator decides abort;
        # bank-b votes yes and holds its record (it answers no decision yet).
        status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 1000, timeout_ms=15000)
        assert status != 200 and reply.get("outcome") == "aborted", (status, reply)
        txid = reply["txid"]
        eventually(lambda: txid in c.prepared("bank-b"), what="bank-b holds the record")
        c.coordinator.kill9()
        c.agent("bank-b").terminate()
        c.agent("bank-b").start(env={}).wait_healthy()
        agent = c.bank("bank-b").url
        for body in ({"txid": txid}, {"txid": txid, "commit_key": "0" * 64},
                     {"txid": txid, "commit_key": harness.test_abort_key(txid)}):
            status, answer = post(agent, "/v1/commit", body)
            assert status == 409, (body, status, answer)
            assert answer["error"]["code"] == "commit_not_from_coordinator", answer
        assert txid in c.prepared("bank-b")
        assert c.balances("bank-b")["bob"] == c.seed("bank-b")["bob"]
        assert c.journal("bank-b") == []
        # The coordinator, back, still ends it with its abort.
        c.coordinator.start(env={})
        c.wait_coordinator()
        c.eventually_nothing_prepared()
        assert c.balances("bank-b")["bob"] == c.seed("bank-b")["bob"]
        assert c.balances("bank-a")["alice"] == c.seed("bank-a")["alice"]
        assert c.journal("bank-b") == []


def test_a_forced_decision_under_a_replaced_log_adopts_the_records_first():
    with Cluster(coordinator_env={FAILPOINTS: "coordinator.skip_commit_delivery"}) as c:
        txid, (lost_log_id, abort_key, commit_key) = commit_then_lose_the_log(c)
        # The lost log's commit, late in the network, reaches bank-b.
        status, body = post(c.bank("bank-b").url, "/v1/commit", {"txid": txid, "commit_key": commit_key})
        assert status == 200, body
        # The operator names the participant still holding it, as commitctl does;
        # bank-a's record names bank-b too, which is asked as well. Forced abort:
        # refused, nothing recorded.
        participants = [{"name": "bank-a"}]
        assert txid not in c.prepared("bank-b")
        status, body = c.post(f"/v1/admin/transactions/{txid}/force", {"outcome": "abort", "participants": participants})
        assert status == 409, body
        assert body["error"]["code"] == "participant_decided", body
        assert (body["outcome"], body["participant"]) == ("committed", "bank-b"), body
        status, body = c.get(f"/v1/transactions/{txid}")
        assert body.get("outcome") != "aborted", body
        # bank-a adopted it: the lost log's keys no longer move it, also after a crash.
        adopted_by = harness.held(c.bank("bank-a").url)[txid].get("adopted_by")
        assert adopted_by and adopted_by != lost_log_id, adopted_by
        c.agent("bank-a").kill9()
        c.agent("bank-a").start(env={}).wait_healthy()
        assert harness.held(c.bank("bank-a").url)[txid]["adopted_by"] == adopted_by
        status, body = post(c.bank("bank-a").url, "/v1/commit", {"txid": txid, "commit_key": commit_key})
        assert status == 409 and body["error"]["code"] == "commit_not_from_coordinator", (status, body)
        status, body = harness.agent_abort(c.bank("bank-a").url, txid, abort_key=abort_key)
        assert status == 409 and body["error"]["code"] == "abort_not_from_coordinator", (status, body)
        assert txid in c.prepared("bank-a")
        status, body = c.post(f"/v1/admin/transactions/{txid}/force",
                              {"outcome": "commit", "participants": participants, "skip_participants": ["bank-a"]})
        assert status == 400 and "skip_participants[0]" in body["error"]["message"], (status, body)
        # What the participants did decides: forced commit finishes it.
        status, body = c.post(f"/v1/admin/transactions/{txid}/force",
                              {"outcome": "commit", "participants": participants})
        assert status == 200 and body["forced"] and body["outcome"] == "committed", (status, body)
        c.eventually_balance("bank-a", "alice", c.seed("bank-a")["alice"] - 30)
        c.eventually_balance("bank-b", "bob", c.seed("bank-b")["bob"] + 30)
        c.eventually_nothing_prepared()


def test_a_rebootstrapped_group_reports_the_old_groups_records_in_doubt():
    from test_group import Group
    with Group() as g:
        # Every member decides but delivers no commit: the agents keep their records.
        for p in g.nodes.values():
            p.terminate()
        for p in g.nodes.values():
            p.start(env={FAILPOINTS: "coordinator.skip_commit_delivery"})
        for p in g.nodes.values():
            p.wait_healthy()
        leader = g.wait_leader()
        status, reply = harness.transfer(g.urls[leader], "bank-a", "alice", "bank-b", "bob", 30, timeout_ms=3000)
        assert status == 200 and reply["outcome"] == "committed", (status, reply)
        txid = reply["txid"]
        assert txid in g.c.prepared("bank-a") and txid in g.c.prepared("bank-b")
        for node_id, p in g.nodes.items():
            p.kill9()
            data_dir = os.path.join(g.c.dir, f"{node_id}-data")
            shutil.rmtree(data_dir)
            os.makedirs(data_dir)
        for p in g.nodes.values():
            p.start(env={})
        for p in g.nodes.values():
            p.wait_healthy()
        leader = g.wait_leader()

        def listed_in_doubt():
            status, body = harness.get(g.urls[g.wait_leader()], "/v1/transactions?state=in_doubt")
            assert status == 200, body
            return txid in [t["txid"] for t in body["transactions"]]
        eventually(listed_in_doubt, timeout=20.0, what="the old group's transaction listed in doubt")
        time.sleep(3.0)  # past the records' deadline: the agents have asked the new group by now
        # The client was told "committed": the new group knows nothing, and presumes nothing.
        assert txid in g.c.prepared("bank-a") and txid in g.c.prepared("bank-b")
        assert g.c.balances("bank-a")["alice"] == g.c.seed("bank-a")["alice"]


if __name__ == "__main__":
    harness.main(globals())
