"""The SQL sandbox of a real commit-agent: a runaway raw SQL statement is
interrupted at sql_statement_timeout_ms (a no vote with the reason, the next
transaction commits, SIGTERM still stops the agent promptly), functions outside
the allow-list are refused, and an agent refuses a database its procedures do
not match.

Run one test: python3 test_agent_sandbox.py --bin-dir build/release/bin test_runaway_raw_sql_is_interrupted
"""

import os
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, expect_status, reason_of  # noqa: E402

RUNAWAY = {"sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c"}
CREDIT_BOB = {"procedure": "credit", "args": {"account": "bob", "amount": 5}}
# The default of sql_statement_timeout_ms (common/config.h); FAST_CONFIG does not set it.
TIMEOUT_MS = 1000
INTERRUPTED = f"the statement ran longer than {TIMEOUT_MS} ms (sql_statement_timeout_ms) and was interrupted"


def runaway_body():
    return {"timeout_ms": 10000, "branches": [
        {"participant": "bank-a", "ops": [RUNAWAY]},
        {"participant": "bank-b", "ops": [CREDIT_BOB]}]}


def test_runaway_raw_sql_is_interrupted_and_the_next_transfer_commits():
    with Cluster(agent_args={"bank-a": ["--allow-raw-sql"]}) as c:
        start = time.monotonic()
        body = expect_status(c.post("/v1/transactions", runaway_body()), 409, "runaway statement")
        took = time.monotonic() - start
        assert body["outcome"] == "aborted", body
        reason = reason_of(body)
        assert "bank-a" in reason and "ops[0]: " + INTERRUPTED in reason, reason
        # Interrupted once, in the prepare's first step, and not run again.
        assert TIMEOUT_MS / 1000 <= took < 2 * TIMEOUT_MS / 1000 + 1.5, f"the runaway prepare took {took:.2f}s"
        c.eventually_nothing_prepared()
        assert c.balances("bank-b") == c.seed("bank-b")

        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30), 200, "transfer after the runaway")
        assert body["outcome"] == "committed", body
        c.eventually_balance("bank-a", "alice", 70)
        c.eventually_balance("bank-b", "bob", 80)


def test_the_statement_timeout_comes_from_the_config_file():
    config = dict(harness.FAST_CONFIG, sql_statement_timeout_ms=200)
    with Cluster(config=config, agent_args={"bank-a": ["--allow-raw-sql"]}) as c:
        start = time.monotonic()
        body = expect_status(c.post("/v1/transactions", runaway_body()), 409, "runaway statement")
        took = time.monotonic() - start
        assert "ran longer than 200 ms (sql_statement_timeout_ms)" in reason_of(body), body
        assert took < 1.0, f"the runaway prepare took {took:.2f}s with a 200 ms limit"


def test_sigterm_stops_an_agent_running_a_runaway_statement():
    with Cluster(agent_args={"bank-a": ["--allow-raw-sql"]}) as c:
        replies = []
        client = threading.Thread(target=lambda: replies.append(c.post("/v1/transactions", runaway_body())))
        client.start()
        time.sleep(0.3)  # the prepare is running its statement now
        agent = c.agent("bank-a")
        start = time.monotonic()
        agent.popen.send_signal(harness.signal.SIGTERM)
        rc = agent.wait_exit(TIMEOUT_MS / 1000 + 5)
        took = time.monotonic() - start
        assert rc == 0, f"bank-a exited with {rc}"
        assert took < TIMEOUT_MS / 1000 + 3, f"bank-a took {took:.2f}s to stop"
        client.join(30)
        assert replies and replies[0][0] == 409, replies
        assert replies[0][1]["outcome"] == "aborted", replies


def test_functions_outside_the_allow_list_are_refused():
    with Cluster(agent_args={"bank-a": ["--allow-raw-sql"]}) as c:
        for sql, function in [("SELECT hex(fts3_tokenizer('simple')) AS p", "fts3_tokenizer"),
                              ("SELECT load_extension('/tmp/nothing.so')", "load_extension")]:
            body = expect_status(c.post("/v1/transactions", {"branches": [
                {"participant": "bank-a", "ops": [{"sql": sql}]},
                {"participant": "bank-b", "ops": [CREDIT_BOB]}]}), 409, function)
            reason = reason_of(body)
            assert f"ops[0]: SQL function '{function}' is not allowed in ops" in reason, reason
        body = expect_status(c.post("/v1/transactions", {"branches": [
            {"participant": "bank-a", "ops": [{"sql": "DELETE FROM _commitd_finished"}]},
            {"participant": "bank-b", "ops": [CREDIT_BOB]}]}), 409, "write to _commitd_finished")
        assert "table '_commitd_finished' is reserved" in reason_of(body), body
        c.eventually_nothing_prepared()
        assert c.balances("bank-b") == c.seed("bank-b")


def test_agent_refuses_a_database_its_procedures_do_not_match():
    with Cluster(start=False) as c:
        db = os.path.join(c.dir, "empty.db")
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE unrelated(id INTEGER PRIMARY KEY)")
        conn.close()
        argv = [harness.bin_path("commit-agent"), "--name", "empty", "--listen", f"127.0.0.1:{harness.free_port()}",
                "--db", db, "--procedures", harness.source_path("examples", "bank", "procedures.json")]
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        assert done.returncode != 0, (done.returncode, done.stderr)
        assert "procedure 'balance', statement 1 of 1 (SELECT balance FROM accounts WHERE id = :account): " \
               "no such table: accounts" in done.stderr, done.stderr
        # Nothing was created in the refused database but the agent's own tables.
        with sqlite3.connect(db) as conn:
            tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        conn.close()
        assert "accounts" not in tables and "unrelated" in tables, tables


if __name__ == "__main__":
    harness.main(globals())
