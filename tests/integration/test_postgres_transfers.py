"""Transfers between a SQLite bank (bank-a) and a PostgreSQL bank (bank-b,
commit-agent --backend postgres): commits, aborts (a debit that would
overdraw), both directions, nothing left in pg_prepared_xacts, and the
clear start-up errors of the PostgreSQL backend."""

import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pg_cluster  # noqa: E402
from harness import agent_prepare, agent_commit, agent_abort, debit_ops, free_port  # noqa: E402
from pg_cluster import PgCluster, PgServer  # noqa: E402


def test_transfer_commits_and_aborts():
    with PgServer() as pg, PgCluster(pg) as c:
        status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 30)
        assert status == 200 and body["outcome"] == "committed", (status, body)
        c.eventually_balance("bank-a", "alice", 70)
        c.eventually_balance("bank-b", "bob", 80)
        assert c.journal("bank-b", body["txid"]) == [(body["txid"], "bob", 30)]
        # PostgreSQL to SQLite, committing.
        status, body = c.transfer("bank-b", "dave", "bank-a", "carol", 20)
        assert status == 200 and body["outcome"] == "committed", (status, body)
        c.eventually_balance("bank-b", "dave", 30)
        # An overdraft on the PostgreSQL side: it votes no, nothing changes anywhere.
        status, body = c.transfer("bank-b", "bob", "bank-a", "alice", 1000)
        assert status == 409 and body["outcome"] == "aborted", (status, body)
        assert "expected 1 changed row, got 0" in str(body), body
        # An overdraft on the SQLite side: the PostgreSQL branch prepared and is rolled back.
        status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 1000)
        assert status == 409 and body["outcome"] == "aborted", (status, body)
        c.eventually_nothing_prepared()
        harness.eventually(lambda: c.pg_prepared("bank-b") == [], what="no prepared gids left")
        assert c.balances("bank-b") == {"bob": 80, "dave": 30, "frank": 50, "heidi": 50}
        assert c.journal("bank-b", body["txid"]) == []


def test_repeated_commit_and_abort_are_idempotent():
    with PgServer() as pg, PgCluster(pg, banks={"bank-b": "seed-b.sql"}) as c:
        agent = c.agent("bank-b")
        status, vote = agent_prepare(agent, "tx-idem-1", debit_ops("bob", 5), participant="bank-b")
        assert status == 200 and vote["vote"] == "yes", (status, vote)
        assert pg.prepared_gids("bank-b") == ["commitd:bank-b:tx-idem-1"]
        for _ in range(2):
            status, body = agent_commit(agent, "tx-idem-1")
            assert status == 200 and body["state"] == "committed", (status, body)
        assert c.balances("bank-b")["bob"] == 45
        status, vote = agent_prepare(agent, "tx-idem-2", debit_ops("dave", 5), participant="bank-b")
        assert vote["vote"] == "yes", vote
        for _ in range(2):
            status, body = agent_abort(agent, "tx-idem-2")
            assert status == 200 and body["state"] == "aborted", (status, body)
        assert c.balances("bank-b")["dave"] == 50
        assert pg.prepared_gids() == []
        # After a restart the outcomes are still known: a repeated commit is acknowledged again.
        agent.terminate()
        agent.start().wait_healthy()
        status, body = agent_commit(agent, "tx-idem-1")
        assert status == 200 and body["state"] == "committed", (status, body)


def test_outcomes_past_the_memory_window_are_read_from_postgresql():
    config = dict(harness.FAST_CONFIG, outcome_memory_ms=1000)
    with PgServer() as pg, PgCluster(pg, banks={"bank-b": "seed-b.sql"}, config=config) as c:
        agent = c.agent("bank-b")
        status, vote = agent_prepare(agent, "tx-mem-1", debit_ops("bob", 5), participant="bank-b")
        assert status == 200 and vote["vote"] == "yes", (status, vote)
        status, body = agent_commit(agent, "tx-mem-1")
        assert status == 200 and body["state"] == "committed", (status, body)
        status, body = agent_abort(agent, "tx-mem-2")  # before its prepare: a tombstone
        assert status == 200 and body["state"] == "aborted", (status, body)
        # Acknowledged once the tombstone is written.
        assert pg.psql("SELECT outcome FROM _commitd_pg_finished WHERE txid = 'tx-mem-2'", db="bank-b") == [["aborted"]]
        # A no vote leaves the same; the coordinator's abort after it is acknowledged once that is written.
        status, vote = agent_prepare(agent, "tx-mem-3", debit_ops("bob", 10**6), participant="bank-b")
        assert status == 200 and vote["vote"] == "no", (status, vote)
        status, body = agent_abort(agent, "tx-mem-3")
        assert status == 200 and body["state"] == "aborted", (status, body)
        assert pg.psql("SELECT outcome FROM _commitd_pg_finished WHERE txid = 'tx-mem-3'", db="bank-b") == [["aborted"]]
        time.sleep(1.5)  # both leave the agent's memory; PostgreSQL keeps them

        # A repeated prepare of the committed one gets its yes and runs nothing again.
        status, vote = agent_prepare(agent, "tx-mem-1", debit_ops("bob", 5), participant="bank-b")
        assert status == 200 and vote["vote"] == "yes" and vote["results"] is None, (status, vote)
        # The late prepare after the tombstone votes no.
        status, vote = agent_prepare(agent, "tx-mem-2", debit_ops("dave", 5), participant="bank-b")
        assert status == 200 and vote["vote"] == "no", (status, vote)
        assert c.balances("bank-b")["bob"] == 45 and c.balances("bank-b")["dave"] == 50
        assert pg.prepared_gids() == []
        assert pg.psql("SELECT count(*) FROM _commitd_pg_prepared", db="bank-b") == [["0"]]
        time.sleep(1.5)
        status, body = agent_commit(agent, "tx-mem-1")
        assert status == 200 and body["state"] == "committed", (status, body)

        # An outcome row that is neither committed nor aborted: the prepare is
        # answered 503, nothing of it stays, and the row is left for the operator.
        time.sleep(1.5)
        pg.psql("UPDATE _commitd_pg_finished SET outcome = 'maybe' WHERE txid = 'tx-mem-1'", db="bank-b")
        status, body = agent_prepare(agent, "tx-mem-1", debit_ops("bob", 5), participant="bank-b")
        assert status == 503 and body["error"]["code"] == "storage_error", (status, body)
        assert c.balances("bank-b")["bob"] == 45
        assert pg.prepared_gids() == []
        assert pg.psql("SELECT outcome FROM _commitd_pg_finished WHERE txid = 'tx-mem-1'", db="bank-b") == [["maybe"]]


def test_concurrency_on_same_rows():
    with PgServer() as pg, PgCluster(pg) as c:
        agent = c.agent("bank-b")
        # A prepared transaction holds its row: a second prepare on it votes no quickly, naming the lock.
        status, vote = agent_prepare(agent, "tx-hold", debit_ops("bob", 1), participant="bank-b")
        assert vote["vote"] == "yes", vote
        t0 = time.monotonic()
        status, vote = agent_prepare(agent, "tx-wait", debit_ops("bob", 1), participant="bank-b")
        assert vote["vote"] == "no" and "lock conflict" in vote["reason"], vote
        assert time.monotonic() - t0 < 5, "the conflicting prepare queued instead of voting no"
        status, body = agent_commit(agent, "tx-hold")
        assert status == 200, body
        status, vote = agent_prepare(agent, "tx-after", debit_ops("bob", 1), participant="bank-b")
        assert vote["vote"] == "yes", vote
        agent_abort(agent, "tx-after")
        # Many clients moving money both ways between the same accounts:
        # every outcome is definite, the money is conserved, nothing stays prepared.
        outcomes = []

        def client(i):
            for n in range(15):
                if (i + n) % 2:
                    status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
                else:
                    status, body = c.transfer("bank-b", "bob", "bank-a", "alice", 1)
                outcomes.append((status, body.get("outcome")))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
        assert len(outcomes) == 8 * 15, len(outcomes)
        assert all(o in ((200, "committed"), (409, "aborted")) for o in outcomes), outcomes
        assert any(o == (200, "committed") for o in outcomes), outcomes
        c.eventually_nothing_prepared()
        harness.eventually(lambda: c.pg_prepared("bank-b") == [], what="no prepared gids left")
        total = sum(c.balances("bank-a").values()) + sum(c.balances("bank-b").values())
        assert total == sum(c.seed("bank-a").values()) + sum(c.seed("bank-b").values()) - 1, total
        assert {t for t, _, _ in c.journal("bank-a")} | {"tx-hold"} == {t for t, _, _ in c.journal("bank-b")}


def test_backend_and_dsn_file_from_the_config_file():
    with PgServer() as pg:
        pg.make_bank("bank", "seed-b.sql")
        dsn_file = os.path.join(pg.dir, "dsn")
        with open(dsn_file, "w") as f:
            f.write(pg.dsn("bank") + "\n")
        config = harness.write_config(os.path.join(pg.dir, "agent.json"),
                                      {"backend": "postgres", "dsn_file": dsn_file, "pg_lock_timeout_ms": 50})
        port = free_port()
        agent = harness.Process("bank", [harness.bin_path("commit-agent"), "--name", "bank", "--listen",
                                         f"127.0.0.1:{port}", "--procedures",
                                         harness.source_path("examples", "bank", "procedures.json"),
                                         "--config", config, "--coordinator", harness.UNANSWERED_COORDINATOR],
                                os.path.join(pg.dir, "agent.log"), f"http://127.0.0.1:{port}")
        try:
            agent.start().wait_healthy()
            status, vote = agent_prepare(agent, "tx-config", debit_ops("bob", 2), participant="bank")
            assert vote["vote"] == "yes", vote
            assert pg.prepared_gids("bank") == ["commitd:bank:tx-config"]
            status, body = agent_commit(agent, "tx-config")
            assert status == 200, body
            assert pg.balances("bank")["bob"] == 48
        finally:
            agent.terminate()


def test_statement_plans_follow_table_changes():
    """The agent plans each procedure statement once per connection; a table
    dropped or changed under a plan costs at most one no, never a stuck agent."""
    with PgServer() as pg:
        pg.make_bank("bank", "seed-b.sql")
        procedures = os.path.join(pg.dir, "procedures.json")
        with open(procedures, "w") as f:
            json.dump({"procedures": {"peek": {"sql": "SELECT * FROM accounts WHERE id = :account"},
                                      "note": {"sql": "INSERT INTO notes(txid) VALUES (:txid)"}}}, f)
        pg.psql("CREATE TABLE notes(txid text)", db="bank")
        config = harness.write_config(os.path.join(pg.dir, "agent.json"), {"pg_connections": 1})
        port = free_port()
        agent = harness.Process("bank", [harness.bin_path("commit-agent"), "--name", "bank", "--listen",
                                         f"127.0.0.1:{port}", "--backend", "postgres", "--dsn", pg.dsn("bank"),
                                         "--procedures", procedures, "--config", config,
                                         "--coordinator", harness.UNANSWERED_COORDINATOR],
                                os.path.join(pg.dir, "agent.log"), f"http://127.0.0.1:{port}")
        peek = [{"procedure": "peek", "args": {"account": "bob"}}]
        note = [{"procedure": "note", "args": {}}]
        counter = iter(range(1000))

        def prepare_until_yes(ops):
            """The votes of prepares of ops until the first yes (each yes aborted after)."""
            votes = []
            while not votes or votes[-1]["vote"] != "yes":
                txid = f"tx-plan-{next(counter)}"
                status, vote = agent_prepare(agent, txid, ops, participant="bank")
                assert status == 200, (status, vote)
                votes.append(vote)
                agent_abort(agent, txid)
                assert len(votes) <= 2, votes
            return votes

        try:
            agent.start().wait_healthy()
            for _ in range(3):  # the plan made, then reused
                assert prepare_until_yes(peek)[-1]["results"] == [[{"id": "bob", "balance": 50}]]
            # A new column changes what the planned SELECT * returns.
            pg.psql("ALTER TABLE accounts ADD COLUMN note text DEFAULT 'n'", db="bank")
            votes = prepare_until_yes(peek)
            assert votes[-1]["results"] == [[{"id": "bob", "balance": 50, "note": "n"}]], votes
            assert [v["results"] for v in prepare_until_yes(peek)] == [votes[-1]["results"]]
            # A table gone while the agent reconnects: the new session's plan
            # fails, a no naming it; the table back: planned anew.
            assert prepare_until_yes(note)[-1]["vote"] == "yes"
            pg.psql("DROP TABLE notes", db="bank")
            pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'commitd:bank'",
                    db="bank")
            # The first may meet the ended session: then whether it finished
            # here before is unknown, and it is answered 503 (retried).
            status, vote = agent_prepare(agent, "tx-plan-gone-1", note, participant="bank")
            assert (status, vote.get("vote")) == (200, "no") or (status, vote["error"]["code"]) == (503, "storage_error"), (status, vote)
            status, vote = agent_prepare(agent, "tx-plan-gone-2", note, participant="bank")
            assert status == 200 and vote["vote"] == "no", (status, vote)
            assert "notes" in vote["reason"], vote
            pg.psql("CREATE TABLE notes(txid text)", db="bank")
            assert prepare_until_yes(note)[-1]["results"] == [[]]
            assert pg.prepared_gids("bank") == []
        finally:
            agent.terminate()


def test_a_prepare_still_running_when_its_connection_is_lost_is_rolled_back_once_it_ends():
    """PREPARE TRANSACTION can outlive the agent's connection: PostgreSQL's
    process finishes it, and notices the loss only when it answers. The agent
    votes no at once, so the gid must be rolled back once that process is
    gone, not given up when the first ROLLBACK PREPARED finds nothing yet;
    else it stays prepared, holding its rows, until the agent restarts."""
    with PgServer() as pg:
        pg.make_bank("bank", "seed-b.sql")
        # A deferred trigger makes one txid's PREPARE TRANSACTION take 10 s.
        pg.psql("CREATE TABLE slow_txids(txid text PRIMARY KEY); "
                "CREATE FUNCTION slow_prepare() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF EXISTS (SELECT 1 FROM slow_txids WHERE txid = NEW.txid) THEN PERFORM pg_sleep(10); END IF; "
                "RETURN NULL; END $$; "
                "CREATE CONSTRAINT TRIGGER slow_prepare AFTER INSERT ON journal DEFERRABLE INITIALLY DEFERRED "
                "FOR EACH ROW EXECUTE FUNCTION slow_prepare(); "
                "INSERT INTO slow_txids VALUES ('tx-slow')", db="bank")
        proxy = pg_cluster.DroppingProxy(pg.port)
        config = harness.write_config(os.path.join(pg.dir, "agent.json"),
                                      {"pg_connections": 1, "sql_statement_timeout_ms": 20000,
                                       "outcome_memory_ms": 1000})
        port = free_port()
        agent = harness.Process("bank", [harness.bin_path("commit-agent"), "--name", "bank", "--listen",
                                         f"127.0.0.1:{port}", "--backend", "postgres", "--dsn", proxy.dsn("bank"),
                                         "--procedures", harness.source_path("examples", "bank", "procedures.json"),
                                         "--config", config, "--coordinator", harness.UNANSWERED_COORDINATOR],
                                os.path.join(pg.dir, "agent.log"), f"http://127.0.0.1:{port}")
        try:
            agent.start().wait_healthy()
            vote = {}
            slow = threading.Thread(target=lambda: vote.update(
                answer=agent_prepare(agent, "tx-slow", debit_ops("bob", 5), participant="bank")))
            slow.start()
            harness.eventually(lambda: pg.psql("SELECT count(*) FROM pg_stat_activity "
                                               "WHERE query LIKE 'PREPARE TRANSACTION%' AND state = 'active'")
                               == [["1"]], what="the PREPARE TRANSACTION running")
            proxy.drop()
            slow.join(30)
            status, body = vote["answer"]
            assert status == 200 and body["vote"] == "no", (status, body)
            # Its tombstone cannot be written while the PREPARE holds the
            # outcome row, so once the agent's memory of the no has passed, a
            # prepare of the same txid reaches PostgreSQL again: it is a no
            # of its own, not a PREPARE that the rollback meant for the
            # first would undo.
            time.sleep(2.5)
            status, body = agent_prepare(agent, "tx-slow", debit_ops("bob", 5), participant="bank")
            assert status == 200 and body["vote"] == "no", (status, body)
            assert "may still take effect" in body["reason"], body
            # The coordinator's abort, and the next prepare: both while
            # PostgreSQL is still preparing the first. Its outcome row is
            # locked by that PREPARE, so the abort may be answered 503 (the
            # coordinator retries it) until the gid is rolled back.
            assert agent_abort(agent, "tx-slow")[0] in (200, 503)
            status, body = agent_prepare(agent, "tx-next", debit_ops("dave", 5), participant="bank")
            assert status == 200 and body["vote"] == "yes", (status, body)
            assert agent_abort(agent, "tx-next")[0] == 200
            assert pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'PREPARE TRANSACTION%' "
                           "AND state = 'active'") == [["1"]], "the first PREPARE ended too early for this test"
            # It ends prepared, and the agent rolls it back; the abort's retries then succeed.
            harness.eventually(lambda: pg.prepared_gids("bank") == [] and agent_abort(agent, "tx-slow")[0] == 200,
                               timeout=20, what="the orphaned gid rolled back and the abort answered")
            assert pg.journal("bank") == []
            assert pg.balances("bank")["bob"] == 50
        finally:
            agent.terminate()
            proxy.close()


def _start_error(argv):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return r.returncode, r.stderr.decode(errors="replace")


def test_clear_errors_at_start():
    procs = harness.source_path("examples", "bank", "procedures.json")
    with PgServer(settings={"max_prepared_transactions": "0"}) as pg:
        pg.make_bank("bank", "seed-b.sql")
        rc, err = _start_error(pg_cluster.agent_argv("bank", free_port(), pg.dsn("bank")))
        assert rc == 1 and "max_prepared_transactions = 0" in err, (rc, err)
    with PgServer() as pg:
        pg.make_bank("bank", "seed-b.sql")
        # A DSN that does not connect.
        rc, err = _start_error(pg_cluster.agent_argv("bank", free_port(), pg.dsn("nosuchdb")))
        assert rc == 1 and "cannot connect to PostgreSQL" in err and "nosuchdb" in err, (rc, err)
        # A role without rights on the bank's tables.
        pg.psql("CREATE ROLE clerk LOGIN")
        pg.psql("GRANT CREATE ON SCHEMA public TO clerk", db="bank")
        rc, err = _start_error(pg_cluster.agent_argv("bank", free_port(), pg.dsn("bank", user="clerk")))
        assert rc == 1 and "permission denied for table accounts" in err, (rc, err)
        # A procedure whose table is missing.
        bad = os.path.join(pg.dir, "bad.json")
        with open(bad, "w") as f:
            f.write('{"procedures": {"debit": {"sql": "UPDATE acounts SET balance = balance - :amount"}}}')
        argv = pg_cluster.agent_argv("bank", free_port(), pg.dsn("bank"))
        argv[argv.index(procs)] = bad
        rc, err = _start_error(argv)
        assert rc == 1 and "procedure 'debit'" in err and 'relation "acounts" does not exist' in err, (rc, err)
        # --db and --dsn are exclusive; --dsn-file reads the DSN from a file.
        rc, err = _start_error(pg_cluster.agent_argv("bank", free_port(), pg.dsn("bank"), ["--db", "x.db"]))
        assert rc == 2 and "exclusive" in err, (rc, err)
        dsn_file = os.path.join(pg.dir, "dsn")
        with open(dsn_file, "w") as f:
            f.write(pg.dsn("nosuchdb2") + "\n")
        argv = pg_cluster.agent_argv("bank", free_port(), "x")
        i = argv.index("--dsn")
        argv[i:i + 2] = ["--dsn-file", dsn_file]
        rc, err = _start_error(argv)
        assert rc == 1 and "nosuchdb2" in err, (rc, err)


if __name__ == "__main__":
    if not pg_cluster.available():
        print("SKIP: PostgreSQL binaries not found in " + pg_cluster.PG_BIN + " (install postgresql)")
        sys.exit(77)
    harness.main(globals())
