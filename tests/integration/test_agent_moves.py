#!/usr/bin/env python3
"""An agent that comes back on another address (and re-registers) still gets
its pending decisions: the coordinator delivers to the registry's current URL,
not the one recorded when the transaction started."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, Process, eventually, expect_status, free_port  # noqa: E402


def test_decision_reaches_an_agent_that_moved_to_another_port():
    with Cluster(agent_env={"bank-b": {"COMMITD_FAILPOINTS": "agent.ignore_decisions"}}) as c:
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, timeout_ms=15000), 200, "transfer")
        txid = body["txid"]
        c.eventually_balance("bank-a", "alice", 70)
        assert txid in c.prepared("bank-b"), c.prepared("bank-b")

        old = c.agent("bank-b")
        old.kill9()
        port = free_port()
        argv = list(old.argv)
        argv[argv.index("--listen") + 1] = f"127.0.0.1:{port}"
        moved = Process("bank-b-moved", argv, old.log_path, f"http://127.0.0.1:{port}").start()
        try:
            moved.wait_healthy()
            c.eventually_balance("bank-b", "bob", 80, timeout=30)

            def finished():
                status, tx = c.tx_status(txid)
                return status == 200 and tx["state"] == "finished"
            # Only an ack from the moved agent lets the coordinator finish the transaction.
            eventually(finished, 30, what="the coordinator finished the transaction")
        finally:
            moved.terminate()


if __name__ == "__main__":
    harness.main(globals())
