"""Health that tells the truth: a participant is healthy only if it answered a
probe recently (a SIGSTOPped agent turns unhealthy within a few probe
intervals), probes of an unreachable one back off, the transitions are
logged; an agent logs why its registration fails and its /readyz says
whether it is ready."""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import FAST_CONFIG, Cluster, eventually  # noqa: E402

INTERVAL_MS = 200
CONFIG = dict(FAST_CONFIG, health_interval_ms=INTERVAL_MS, health_stale_probes=3, health_backoff_max_ms=800)


def participant(c, name, headers=None):
    status, body = harness.request("GET", c.url, "/v1/participants", headers=headers)[:2]
    assert status == 200, body
    for p in body["participants"]:
        if p["name"] == name:
            return p
    raise AssertionError(f"{name} not registered: {body}")


def log_events(process, event):
    out = []
    for line in process.log_text().splitlines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if j.get("event") == event:
            out.append(j)
    return out


def errors(c, name, kind):
    return harness.metrics(c.url).get(f'commitd_participant_errors_total{{participant="{name}",kind="{kind}"}}', 0)


def test_a_stopped_agent_turns_unhealthy_and_healthy_again():
    with Cluster(config=CONFIG) as c:
        eventually(lambda: participant(c, "bank-b")["healthy"], what="bank-b healthy")
        pid = c.bank("bank-b").process.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            stopped = time.monotonic()
            eventually(lambda: not participant(c, "bank-b")["healthy"], timeout=20, what="bank-b unhealthy")
            took = time.monotonic() - stopped
            # A few probe intervals (stale after 3, a probe waits 1), with a margin for a loaded machine.
            assert took < 10 * INTERVAL_MS / 1000 + 3, took
            assert participant(c, "bank-a")["healthy"]
            assert harness.metrics(c.url)['commitd_participant_healthy{participant="bank-b"}'] == 0
            unhealthy = log_events(c.coordinator, "participant_unhealthy")
            assert any(e.get("participant") == "bank-b" for e in unhealthy), unhealthy
        finally:
            os.kill(pid, signal.SIGCONT)
        eventually(lambda: participant(c, "bank-b")["healthy"], timeout=20, what="bank-b healthy again")
        healthy = log_events(c.coordinator, "participant_healthy")
        assert sum(1 for e in healthy if e.get("participant") == "bank-b") >= 2, healthy
        status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
        assert status == 200, reply


def test_probes_of_an_unreachable_agent_back_off():
    with Cluster(config=CONFIG) as c:
        eventually(lambda: participant(c, "bank-b")["healthy"], what="bank-b healthy")
        c.bank("bank-b").process.terminate()
        eventually(lambda: errors(c, "bank-b", "unreachable") >= 3, timeout=20, what="failed probes")
        before = errors(c, "bank-b", "unreachable")
        time.sleep(4.0)
        during = errors(c, "bank-b", "unreachable") - before
        # Every 200 ms that would be 20 probes; backed off to 800 ms it is about 5.
        assert 2 <= during <= 9, during
        c.bank("bank-b").process.start()
        c.bank("bank-b").process.wait_healthy()
        eventually(lambda: participant(c, "bank-b")["healthy"], timeout=20, what="bank-b healthy again")


def test_agent_readyz_and_why_registration_fails():
    coordinator_token = "right-token"
    c = Cluster(config=CONFIG, start=False, coordinator_args=["--token", coordinator_token],
                agent_args={"bank-a": ["--token", coordinator_token], "bank-b": ["--token", "wrong-token"]})
    with c:
        for name, seed in c.bank_seeds.items():
            c.add_bank(name, seed)
        for bank in c.banks.values():
            bank.process.wait_healthy()
        # No coordinator yet: not ready, and the agent says why.
        for name in ("bank-a", "bank-b"):
            status, body = harness.get(c.bank(name).url, "/readyz")
            assert status == 503 and body["error"]["code"] == "not_registered", (name, status, body)
        eventually(lambda: log_events(c.bank("bank-a").process, "registration_failed"), what="logged")
        failed = log_events(c.bank("bank-a").process, "registration_failed")
        assert failed[0]["reason"] == "unreachable" and failed[0]["coordinator"] == c.url, failed
        c.start_coordinator()

        def ready(name):
            status, _ = harness.get(c.bank(name).url, "/readyz")
            return status == 200
        eventually(lambda: ready("bank-a"), timeout=20, what="bank-a ready")
        eventually(lambda: any(e["reason"] == "wrong_token"
                               for e in log_events(c.bank("bank-b").process, "registration_failed")),
                   timeout=20, what="bank-b logs the refused token")
        status, body = harness.get(c.bank("bank-b").url, "/readyz")
        assert status == 503 and body["error"]["code"] == "not_registered", (status, body)
        # Logged when the reason changes, not at every retry.
        time.sleep(1.0)
        reasons = [e["reason"] for e in log_events(c.bank("bank-b").process, "registration_failed")]
        assert reasons.count("wrong_token") == 1, reasons


def test_an_agent_that_forgets_sooner_than_the_coordinator_assumes_is_reported():
    # bank-b remembers finished transactions 60 s, the coordinator (like
    # bank-a) assumes the default: the probe's catalog tells, once.
    with Cluster(config=CONFIG, start=False) as c:
        c.agent_args = {"bank-b": ["--config", harness.write_config(os.path.join(c.dir, "bank-b.json"),
                                                                     dict(CONFIG, outcome_retention_ms=60000))]}
        c.start()
        eventually(lambda: participant(c, "bank-b").get("outcome_retention_ms") == 60000,
                   what="bank-b's retention in the registry")
        assert participant(c, "bank-a")["outcome_retention_ms"] == 86400000
        time.sleep(3 * INTERVAL_MS / 1000)  # more probes: still reported once
        short = log_events(c.coordinator, "participant_outcome_retention_short")
        assert [e["participant"] for e in short] == ["bank-b"], short
        assert short[0]["agent_outcome_retention_ms"] == 60000 and short[0]["outcome_retention_ms"] == 86400000, short


if __name__ == "__main__":
    harness.main(globals())
