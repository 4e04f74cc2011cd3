"""Retention of finished decisions on real processes: a coordinator with a
short decision_retention_ms deletes finished decisions from decisions.db,
answers Idempotency-Key retries and GET /v1/transactions/{txid} from the record
inside the window and with a clear "forgotten" outside it (never a presumed
abort, never a second run), and a kill -9 in the middle of deleting leaves
nothing half-deleted.
"""

import os
import sqlite3
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, eventually, expect_status  # noqa: E402


def decision_rows(c):
    db = sqlite3.connect(f"file:{os.path.join(c.data_dir, 'decisions.db')}?mode=ro", uri=True, timeout=10)
    try:
        return {row[0]: row[1] for row in db.execute("SELECT txid, finished FROM decisions")}
    finally:
        db.close()


def log_id(c):
    db = sqlite3.connect(f"file:{os.path.join(c.data_dir, 'decisions.db')}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()[0]
    finally:
        db.close()


def metric(c, name):
    status, body = harness.request("GET", c.url, "/metrics")[0:3:2]
    assert status == 200, status
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_finished_decisions_are_deleted_and_answered_forgotten_after_the_window():
    config = dict(harness.FAST_CONFIG, decision_retention_ms=1500)
    with Cluster(config=config) as c:
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, idem_key="order-1"), 200, "transfer")
        txid = body["txid"]
        # Inside the window: the same key answers the first reply, the txid its record.
        again = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, idem_key="order-1"), 200, "retry")
        assert again == body, (again, body)
        status, tx = c.tx_status(txid)
        assert status == 200 and tx["outcome"] == "committed", (status, tx)

        # Finished (both agents acknowledged), then deleted after the window.
        eventually(lambda: decision_rows(c).get(txid) == 1, 30, what="decision finished")
        eventually(lambda: txid not in decision_rows(c), 30, what="decision deleted after retention")
        assert metric(c, "commitd_decisions_forgotten_total") >= 1

        # Outside it: a clear "forgotten", never a presumed abort ...
        status, tx = c.tx_status(txid)
        assert status == 404, (status, tx)
        assert tx["error"]["code"] == "forgotten", tx
        assert "outcome" not in tx, tx
        # ... also to a participant asking (naming the log, as agents do), and nothing is recorded for it.
        status, tx = c.get(f"/v1/transactions/{urllib.parse.quote(txid, safe='')}?participant=bank-a"
                           f"&log_id={log_id(c)}")
        assert status == 404 and tx["error"]["code"] == "forgotten", (status, tx)
        assert txid not in decision_rows(c)
        # ... and the key is not run a second time.
        status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 30, idem_key="order-1")
        assert status == 409 and reply["error"]["code"] == "forgotten", (status, reply)
        assert c.balances("bank-a")["alice"] == 70 and c.balances("bank-b")["bob"] == 80
        # A txid this coordinator never issued keeps the presumed-abort answer.
        status, tx = c.tx_status("c1-999-1-0123456789abcdef")
        assert status == 404 and tx["error"]["code"] == "not_found" and tx["outcome"] == "aborted", (status, tx)


def test_kill9_while_deleting_leaves_nothing_half_deleted():
    with Cluster(coordinator_args=["--decision-retention-ms", "200"]) as c:
        committed = []
        stop = threading.Event()

        def load():
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 1, idem_key=f"k-{i}",
                                              http_timeout=10)
                except OSError:
                    return  # the coordinator was killed: the outcome is looked up below
                if status == 200:
                    committed.append((f"k-{i}", body["txid"]))

        worker = threading.Thread(target=load)
        worker.start()
        try:
            eventually(lambda: metric(c, "commitd_decisions_forgotten_total") >= 20, 60,
                       what="retention deleting under load")
        finally:
            c.coordinator.kill9()
            stop.set()
            worker.join(30)
        c.start_coordinator()
        assert committed, "no transfer committed"
        # Every committed transaction is either still recorded as committed or
        # answered forgotten: none is reported aborted, none half-deleted.
        rows = decision_rows(c)
        for key, txid in committed:
            status, tx = c.tx_status(txid)
            if status == 200:
                assert tx["outcome"] == "committed", tx
                assert txid in rows
            else:
                assert status == 404 and tx["error"]["code"] == "forgotten", (txid, status, tx)
        # Every decision left is resumed or finished, and goes in time.
        eventually(lambda: not decision_rows(c), 60, what="every decision deleted after restart")
        c.eventually_nothing_prepared(timeout=60)
        moved = 100 - c.balances("bank-a")["alice"]
        assert moved >= len(committed), (moved, len(committed))
        assert sum(c.balances("bank-a").values()) + sum(c.balances("bank-b").values()) == \
            sum(c.seed("bank-a").values()) + sum(c.seed("bank-b").values())


if __name__ == "__main__":
    harness.main(globals())
