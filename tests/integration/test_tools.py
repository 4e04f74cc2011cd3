"""commitctl and commitd-bench against real processes: status, tx list/show,
in-doubt, retry-now, resolve, exit codes, and short bench runs.

Run one test: python3 test_tools.py --bin-dir build/release/bin test_in_doubt_and_resolve
"""

import json
import os
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, eventually, expect_status, participant_flags  # noqa: E402


def run(tool, *args, timeout=60):
    """(exit code, stdout, stderr) of one tool run."""
    p = subprocess.run([harness.bin_path(tool), *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def ctl(c, *args, **kw):
    return run("commitctl", "--coordinator", c.url, *args, **kw)


def ctl_json(c, *args, want_rc=0):
    rc, out, err = ctl(c, *args, "--json")
    assert rc == want_rc, f"commitctl {args}: exit {rc}, want {want_rc}\n{out}\n{err}"
    return json.loads(out)



def test_status_tx_and_retry():
    with Cluster() as c:
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30), 200, "transfer")
        txid = body["txid"]

        def settled():
            rc, out, err = ctl(c, "status")
            assert rc == 0, f"status exit {rc}\n{out}\n{err}"
            return out
        out = eventually(settled, 15, what="commitctl status exit 0")
        assert "bank-a" in out and "bank-b" in out and "healthy" in out, out
        status = ctl_json(c, "status")
        assert status["ok"] is True and status["in_doubt"] == 0, status
        assert status["cluster"]["role"] == "leader", status

        listing = ctl_json(c, "tx", "list", "--state", "committed", "--limit", "10")
        assert txid in [t["txid"] for t in listing["transactions"]], listing

        rc, out, err = ctl(c, "tx", "show", txid)
        assert rc == 0, (out, err)
        assert "committed" in out and "bank-a" in out and "timeline" in out, out
        shown = ctl_json(c, "tx", "show", txid)
        assert shown["outcome"] == "committed", shown

        rc, out, _ = ctl(c, "tx", "show", "no-such-txid")
        assert rc == 1 and "presumed abort" in out, out

        assert "active" in ctl_json(c, "retry-now")
        resolved = ctl_json(c, "resolve", txid)
        assert resolved["finished"] and resolved["outcome"] == "committed", resolved
        rc, out, _ = ctl(c, "in-doubt", *participant_flags(c))
        assert rc == 0 and "no prepared transactions" in out, out


def test_in_doubt_and_resolve():
    # bank-b refuses decisions, so the committed transfer stays prepared there.
    env = {"bank-b": {"COMMITD_FAILPOINTS": "agent.ignore_decisions"}}
    with Cluster(agent_env=env) as c:
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 10), 200, "transfer")
        txid = body["txid"]

        report = ctl_json(c, "in-doubt", *participant_flags(c), want_rc=1)
        # bank-a may still be applying its commit; bank-b holds the record for good.
        rows = [r for r in report["in_doubt"] if r["txid"] == txid and r["participant"] == "bank-b"]
        assert rows and rows[0]["state"] == "prepared", report
        assert rows[0]["coordinator_outcome"].startswith("committed"), report

        rc, out, err = ctl(c, "status")
        assert rc == 1 and "in doubt" in out, (out, err)
        rc, out, _ = ctl(c, "resolve", txid, "--wait-s", "0.5")
        assert rc == 1 and "still" in out, out

        c.agent("bank-b").restart(env={})
        c.agent("bank-b").wait_healthy()
        resolved = ctl_json(c, "resolve", txid, "--wait-s", "15")
        assert resolved["finished"] and resolved["outcome"] == "committed", resolved
        c.eventually_balance("bank-b", "bob", c.seed("bank-b")["bob"] + 10)
        c.eventually_nothing_prepared()


def test_unreachable_and_usage():
    port = harness.free_port()
    rc, _, err = run("commitctl", "--coordinator", f"http://127.0.0.1:{port}", "status")
    assert rc == 1 and "cannot reach coordinator" in err and "--coordinator" in err, err
    for args in (["frob"], ["tx"], ["tx", "show"], ["status", "--bogus"], ["in-doubt", "--participant", "x"]):
        rc, _, err = run("commitctl", *args)
        assert rc == 2, f"commitctl {args}: exit {rc}, want 2; {err}"
    rc, out, _ = run("commitctl", "--help")
    assert rc == 0 and "resolve" in out, out
    rc, out, _ = run("commitctl", "resolve", "--help")
    assert rc == 0 and "--wait-s" in out, out
    rc, _, _ = run("commitd-bench", "nonsense")
    assert rc == 2


def test_bench_modes():
    with tempfile.TemporaryDirectory(prefix="commitd-bench-") as d:
        db = os.path.join(d, "bank.db")
        rc, out, err = run("commitd-bench", "setup-bank", "--db", db, "--prefix", "acct", "--accounts", "5",
                           "--balance", "7")
        assert rc == 0, (out, err)
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT id, balance FROM accounts ORDER BY id").fetchall()
        assert rows == [(f"acct{i}", 7) for i in range(5)], rows

        rc, out, err = run("commitd-bench", "sqlite-commit", "--db", os.path.join(d, "s.db"), "--count", "20",
                           "--json")
        assert rc == 0, (out, err)
        result = json.loads(out)
        assert result["commits"] == 20 and result["commits_per_s"] > 0, result

    rc, out, err = run("commitd-bench", "hops", "--count", "200", "--json")
    assert rc == 0, (out, err)
    result = json.loads(out)
    assert result["round_trips"] == 200, result
    for key in ("loopback_rtt_p50_us", "loopback_rtt_p90_us", "thread_rtt_p50_us", "thread_rtt_p90_us",
                "loopback_cpu_us_per_round_trip", "thread_cpu_us_per_round_trip"):
        assert 0 < result[key] < 1e6, (key, result)
    assert result["loopback_rtt_p50_us"] <= result["loopback_rtt_p90_us"], result
    rc, out, err = run("commitd-bench", "hops", "--count", "0")
    assert rc == 2 and "--count" in err, (rc, out, err)

    # Balances large enough that a fast machine cannot drain them during the run
    # (with the example's 100 each, every transfer after the first ~200 is an overdraft).
    with tempfile.TemporaryDirectory(prefix="commitd-bench-seed-") as seeds:
        for name, accounts in (("a", ("alice", "carol")), ("b", ("bob", "dave"))):
            with open(os.path.join(seeds, f"seed-{name}.sql"), "w") as f:
                f.writelines(f"INSERT INTO accounts VALUES('{acct}', 1000000000);\n" for acct in accounts)
        with Cluster(banks={"bank-a": os.path.join(seeds, "seed-a.sql"), "bank-b": os.path.join(seeds, "seed-b.sql")}) as c:
            rc, out, err = run("commitd-bench", "transfers", "--coordinator", c.url, "--clients", "2",
                               "--duration-s", "1.5", "--warmup-s", "0.3", "--accounts-a", "alice,carol",
                               "--accounts-b", "bob,dave", "--json")
            assert rc == 0, (out, err)
            result = json.loads(out)
            assert result["committed"] > 0 and result["errors"] == 0, result
            assert result["latency_ms"]["p50"] > 0, result
            moved = result["committed"]

            def journals_match():
                # Every counted commit (and any from warmup or the tail) is journaled on both sides.
                a, b = c.journal("bank-a"), c.journal("bank-b")
                assert len(a) == len(b) >= moved, (len(a), len(b), moved)
                return True
            eventually(journals_match, 15, what="both journals hold every transfer")


if __name__ == "__main__":
    harness.main(globals())
