#!/usr/bin/env python3
"""Graceful shutdown of the coordinator: SIGTERM while a transaction waits for
a vote must still answer that client, deliver the decision, and exit 0."""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, eventually  # noqa: E402


def test_sigterm_answers_transactions_in_flight_and_delivers_their_decision():
    with Cluster() as c:
        before_a, before_b = c.balances("bank-a"), c.balances("bank-b")
        bank_b = c.agent("bank-b")
        os.kill(bank_b.pid, signal.SIGSTOP)  # its vote cannot come until it resumes
        answer = {}

        def run():
            answer["reply"] = c.transfer("bank-a", "alice", "bank-b", "bob", 10, timeout_ms=15000)

        client = threading.Thread(target=run)
        client.start()
        eventually(lambda: len(harness.held(c.agent("bank-a"))) == 1 or None, 10, what="bank-a prepared the transfer")
        c.coordinator.popen.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert c.coordinator.alive(), "commitd exited while a transaction was still waiting for its votes"
        os.kill(bank_b.pid, signal.SIGCONT)
        client.join(20)
        assert not client.is_alive(), "the client got no answer"
        status, body = answer["reply"]
        assert status == 200 and body["outcome"] == "committed", (status, body)
        assert c.coordinator.wait_exit(15) == 0
        # The decision was delivered before exit: nothing is left prepared, no restart needed.
        eventually(lambda: not harness.held(c.agent("bank-a")) and not harness.held(c.agent("bank-b")) or None, 10,
                   what="both agents applied the commit")
        assert c.balances("bank-a")["alice"] == before_a["alice"] - 10
        assert c.balances("bank-b")["bob"] == before_b["bob"] + 10


if __name__ == "__main__":
    harness.main(globals())
