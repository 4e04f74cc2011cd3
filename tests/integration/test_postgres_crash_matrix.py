"""The crash matrix of test_agent_crash_matrix.py for the PostgreSQL agent:
bank-b is commit-agent --backend postgres. At each failpoint the agent
SIGKILLs itself; in the "power cut" variant PostgreSQL is SIGKILLed too at
that moment (the postmaster and every backend) and restarted. Both banks must
reach the coordinator's decision, with balances matching the journal and
nothing left prepared, neither in the agent nor in pg_prepared_xacts.

  agent.crash_before_prepare_durable   ops run, PREPARE TRANSACTION not sent
  agent.crash_after_prepare_durable    PREPARE TRANSACTION returned, vote not sent
  agent.crash_after_commit_applied     COMMIT PREPARED returned, ack not sent
  agent.crash_during_abort             ROLLBACK PREPARED returned, ack not sent

And PostgreSQL going down under load while the agent runs: prepares vote no,
commits are retried until it is back, no acknowledged transfer is lost.
"""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pg_cluster  # noqa: E402
from harness import eventually, held  # noqa: E402
from pg_cluster import PgCluster, PgServer  # noqa: E402

FAILPOINTS = "COMMITD_FAILPOINTS"


def assert_converged(c, txid, outcome):
    status, tx = c.tx_status(txid)
    assert status in (200, 404) and tx["outcome"] == outcome, (status, tx)
    c.eventually_nothing_prepared(timeout=60)
    eventually(lambda: c.pg_prepared("bank-b") == [], timeout=60, what="pg_prepared_xacts empty")
    for name in ("bank-a", "bank-b"):
        eventually(lambda name=name: held(c.agent(name), "conflict") == {}, what=f"no conflict on {name}")
        rows = c.journal(name, txid)
        assert len(rows) == (1 if outcome == "committed" else 0), (name, rows)
        seed = c.seed(name)
        deltas = {}
        for _, account, delta in c.journal(name):
            deltas[account] = deltas.get(account, 0) + delta
        assert c.balances(name) == {a: seed[a] + deltas.get(a, 0) for a in seed}, (name, c.balances(name))
    if outcome == "committed":
        assert c.journal("bank-b", txid)[0][1:] == ("bob", 30)


def crash_case(failpoint, expected_status, outcome, kill_postgres, stop_bank_a=False):
    with PgServer() as pg, PgCluster(pg, agent_env={"bank-b": {FAILPOINTS: failpoint}}) as c:
        bank_a = c.agent("bank-a")
        if stop_bank_a:
            # The transaction misses its deadline after bank-b prepared: the abort reaches a prepared bank-b.
            bank_a.popen.send_signal(signal.SIGSTOP)
        try:
            status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 30,
                                      timeout_ms=1500 if stop_bank_a else None)
        finally:
            if stop_bank_a:
                bank_a.popen.send_signal(signal.SIGCONT)
        assert status == expected_status and body["outcome"] == outcome, (status, body)
        rc = c.agent("bank-b").wait_exit(timeout=15)
        assert rc == -signal.SIGKILL, f"bank-b did not die at {failpoint}: rc={rc}"
        assert failpoint in c.agent("bank-b").log_text()
        if kill_postgres:
            pg.kill9()
            pg.start()
        c.agent("bank-b").start(env={}).wait_healthy()
        assert_converged(c, body["txid"], outcome)


CASES = [
    ("agent.crash_before_prepare_durable", 409, "aborted", False),
    ("agent.crash_after_prepare_durable", 409, "aborted", False),
    ("agent.crash_after_commit_applied", 200, "committed", False),
    ("agent.crash_during_abort", 409, "aborted", True),
]


def test_agent_crash_matrix():
    for failpoint, status, outcome, stop_a in CASES:
        harness.log(f"  case {failpoint}")
        crash_case(failpoint, status, outcome, kill_postgres=False, stop_bank_a=stop_a)


def test_agent_and_postgres_crash_matrix():
    for failpoint, status, outcome, stop_a in CASES:
        harness.log(f"  case {failpoint} + kill -9 postgres")
        crash_case(failpoint, status, outcome, kill_postgres=True, stop_bank_a=stop_a)


def test_postgres_prepared_survives_its_own_crash():
    """A prepared transaction survives kill -9 of PostgreSQL (not of the
    agent); the commit that found it down is retried and applies."""
    with PgServer() as pg, PgCluster(pg, banks={"bank-b": "seed-b.sql"}) as c:
        agent = c.agent("bank-b")
        status, vote = harness.agent_prepare(agent, "tx-pgcrash", harness.debit_ops("bob", 7), participant="bank-b")
        assert vote["vote"] == "yes", vote
        pg.kill9()
        status, body = harness.agent_commit(agent, "tx-pgcrash")
        assert status == 503, (status, body)
        # A prepare meanwhile is refused quickly, naming the cause: 503, since
        # whether the txid finished here before cannot be read (never a guessed no).
        status, body = harness.agent_prepare(agent, "tx-pgdown", harness.debit_ops("dave", 1), participant="bank-b")
        assert status == 503 and body["error"]["code"] == "storage_error", (status, body)
        assert "PostgreSQL unavailable" in body["error"]["message"], body
        pg.start()
        assert pg.prepared_gids("bank-b") == ["commitd:bank-b:tx-pgcrash"]
        status, body = eventually(lambda: (lambda r: r if r[0] == 200 else None)(
            harness.agent_commit(agent, "tx-pgcrash")), what="commit after postgres restart")
        assert body["state"] == "committed", body
        assert c.balances("bank-b")["bob"] == 43 and c.balances("bank-b")["dave"] == 50
        assert pg.prepared_gids() == []


def test_postgres_down_under_load():
    with PgServer() as pg, PgCluster(pg) as c:
        results = []
        stop = threading.Event()

        def client(i):
            n = 0
            while not stop.is_set():
                n += 1
                src, dst = ("alice", "bob") if i % 2 == 0 else ("carol", "dave")
                try:
                    status, body = c.transfer("bank-a", src, "bank-b", dst, 1, http_timeout=30)
                    results.append((status, body))
                except OSError:
                    pass

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(2)
        pg.kill9()
        time.sleep(2)
        pg.start()
        time.sleep(3)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        committed = [b["txid"] for s, b in results if s == 200 and b.get("outcome") == "committed"]
        aborted = [b for s, b in results if b.get("outcome") == "aborted"]
        assert committed, "no transfer committed"
        assert aborted, "no prepare voted no while PostgreSQL was down"
        c.eventually_nothing_prepared(timeout=60)
        eventually(lambda: c.pg_prepared("bank-b") == [], timeout=60, what="pg_prepared_xacts empty")
        # Every acknowledged commit is in both journals; the money is conserved.
        journal_b = {t for t, _, _ in c.journal("bank-b")}
        journal_a = {t for t, _, _ in c.journal("bank-a")}
        for txid in committed:
            assert txid in journal_a and txid in journal_b, txid
        assert journal_a == journal_b, (journal_a ^ journal_b)
        total = sum(c.balances("bank-a").values()) + sum(c.balances("bank-b").values())
        seed_total = sum(c.seed("bank-a").values()) + sum(c.seed("bank-b").values())
        assert total == seed_total, (total, seed_total)


if __name__ == "__main__":
    if not pg_cluster.available():
        print("SKIP: PostgreSQL binaries not found in " + pg_cluster.PG_BIN + " (install postgresql)")
        sys.exit(77)
    harness.main(globals())
