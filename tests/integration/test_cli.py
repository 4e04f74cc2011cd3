"""The command-line conventions of every binary, on real processes: --version,
-h/--help, one-line usage errors with exit 2; --config files holding every
flag of commitd and commit-agent (the command line wins); --log-level;
commitctl's COMMITD_ENDPOINTS/COMMITD_TOKEN and its wait messages;
commitd-bench's progress lines and its early stop when nothing answers.

Run one test: python3 test_cli.py --bin-dir build/release/bin test_version_help_and_bad_flag
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, Process, eventually, expect_status  # noqa: E402

BINARIES = ["commitd", "commit-agent", "commitctl", "commitd-bench", "commitd-sim", "commitd-raft-sim"]


def run(tool, *args, env=None, timeout=60):
    full_env = dict(os.environ)
    full_env.pop("COMMITD_ENDPOINTS", None)
    full_env.pop("COMMITD_TOKEN", None)
    full_env.update(env or {})
    p = subprocess.run([harness.bin_path(tool), *args], capture_output=True, text=True, timeout=timeout,
                       env=full_env, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def expected_commit():
    """The commit the build should report, or None when it cannot be known here."""
    try:
        out = subprocess.run(["git", "-C", harness.OPTIONS.source_dir, "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def check_one_line_usage_error(tool, args, must_name, env=None):
    rc, out, err = run(tool, *args, env=env)
    assert rc == 2, f"{tool} {args}: exit {rc}, want 2\n{out}\n{err}"
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, f"{tool} {args}: want one line on stderr, got {len(lines)}:\n{err}"
    assert must_name in lines[0] and "--help" in lines[0], f"{tool} {args}: {err!r}"
    assert "usage:" not in err, f"{tool} {args} repeats the usage: {err!r}"
    return lines[0]


def test_version_help_and_bad_flag():
    commit = expected_commit()
    for tool in BINARIES:
        rc, out, err = run(tool, "--version")
        assert rc == 0, f"{tool} --version: exit {rc}\n{err}"
        m = re.fullmatch(rf"{re.escape(tool)} (\d+\.\d+\.\d+) \(commit ([0-9a-f]{{7,40}}|unknown)\)\n", out)
        assert m, f"{tool} --version printed {out!r}"
        # The build may be one commit behind a checkout that moved since; the
        # test runs right after the build, so they agree.
        if commit is not None:
            assert m.group(2) == commit, f"{tool} --version says commit {m.group(2)}, the tree is at {commit}"
        for flag in ("-h", "--help"):
            rc, out, err = run(tool, flag)
            assert rc == 0 and out.startswith("usage: ") and err == "", f"{tool} {flag}: exit {rc}\n{out}\n{err}"
            assert "exit" in out, f"{tool} {flag} does not document its exit codes:\n{out}"
        check_one_line_usage_error(tool, ["--no-such-flag"], "--no-such-flag")
        check_one_line_usage_error(tool, ["-q"], "-q")


def test_errors_are_one_line():
    with tempfile.TemporaryDirectory(prefix="commitd-cli-") as d:
        check_one_line_usage_error("commitd", ["--id", "c1"], "--data-dir")
        check_one_line_usage_error("commitd", ["--data-dir", d, "--participant", "nope"], "--participant")
        check_one_line_usage_error("commitd", ["--data-dir", d, "--log-level", "loud"], "--log-level")
        check_one_line_usage_error("commit-agent", ["--name", "a"], "--db")
        check_one_line_usage_error("commitctl", [], "command")
        check_one_line_usage_error("commitctl", ["frob"], "frob")
        check_one_line_usage_error("commitctl", ["status", "--bogus"], "--bogus")
        check_one_line_usage_error("commitd-bench", [], "mode")
        check_one_line_usage_error("commitd-bench", ["nonsense"], "nonsense")
        check_one_line_usage_error("commitd-bench", ["transfers", "--bogus"], "--bogus")
        check_one_line_usage_error("commitd-raft-sim", [], "--seeds")
        check_one_line_usage_error("commitd-raft-sim", ["--seed"], "--seed")
        # A start failure (the data dir is a file) is one line and exit 1.
        not_a_dir = os.path.join(d, "file")
        open(not_a_dir, "w").close()
        rc, out, err = run("commitd", "--listen", f"127.0.0.1:{harness.free_port()}", "--data-dir", not_a_dir)
        assert rc == 1, (rc, out, err)
        assert "usage:" not in err, err


def write(path, value):
    with open(path, "w") as f:
        json.dump(value, f)
    return path


def info_lines(process):
    return [line for line in process.log_text().splitlines() if '"level":"info"' in line]


def test_config_file_holds_every_flag():
    with tempfile.TemporaryDirectory(prefix="commitd-cli-") as d:
        a_port, c_port, c_port_flag = harness.free_port(), harness.free_port(), harness.free_port()
        a_url, c_url = f"http://127.0.0.1:{a_port}", f"http://127.0.0.1:{c_port_flag}"
        db = os.path.join(d, "bank-a.db")
        harness.make_bank_db(db, "seed-a.sql")
        agent_config = write(os.path.join(d, "agent.json"), {
            "name": "bank-a", "listen": f"127.0.0.1:{a_port}", "db": db,
            "procedures": harness.source_path("examples", "bank", "procedures.json"),
            "coordinator": [c_url], "allow_raw_sql": True, "log_level": "warn",
            "resolve_initial_ms": 50, "resolve_max_ms": 300})
        agent = Process("bank-a", [harness.bin_path("commit-agent"), "--config", agent_config],
                        os.path.join(d, "bank-a.log"), a_url).start()
        agent.wait_healthy()

        data_dir = os.path.join(d, "c1")
        os.makedirs(data_dir)
        coord_config = write(os.path.join(d, "commitd.json"), {
            "id": "c7", "listen": f"127.0.0.1:{c_port}", "data_dir": data_dir,
            "participant": [f"bank-a={a_url}"], "log_level": "info", "request_timeout_ms": 2000})
        # --listen and --log-level on the command line win over the file.
        coord = Process("commitd", [harness.bin_path("commitd"), "--config", coord_config,
                                    "--listen", f"127.0.0.1:{c_port_flag}", "--log-level", "warn"],
                        os.path.join(d, "commitd.log"), c_url).start()
        coord.wait_healthy()
        status, cluster = harness.get(c_url, "/v1/cluster")
        assert status == 200 and cluster.get("id") == "c7", cluster
        status, participants = harness.get(c_url, "/v1/participants")
        assert status == 200 and "bank-a" in json.dumps(participants), participants

        # allow_raw_sql from the file: a raw SQL op is accepted.
        body = {"branches": [{"participant": "bank-a", "ops": [
            {"sql": "UPDATE accounts SET balance = balance - 1 WHERE id = 'alice'"}]}]}
        expect_status(harness.post(c_url, "/v1/transactions", body), 200, "raw SQL transaction")
        # --log-level warn: no info lines from either process.
        assert not info_lines(coord), info_lines(coord)[:3]
        assert not info_lines(agent), info_lines(agent)[:3]
        coord.terminate()
        agent.terminate()

        # The file's own log level applies when the command line gives none.
        coord2 = Process("commitd-2", [harness.bin_path("commitd"), "--config", coord_config],
                         os.path.join(d, "commitd2.log"), f"http://127.0.0.1:{c_port}").start()
        coord2.wait_healthy()
        eventually(lambda: info_lines(coord2), 10, what="info lines at --log-level info")
        coord2.terminate()

        # Unknown keys stay an error, named in one line; so do bad values.
        bad = write(os.path.join(d, "bad.json"), {"id": "c1", "data_dir": data_dir, "no_such_key": 1})
        line = check_one_line_usage_error("commitd", ["--config", bad], "no_such_key")
        assert "bad.json" in line, line
        bad = write(os.path.join(d, "bad2.json"), {"data_dir": data_dir, "join": "yes"})
        check_one_line_usage_error("commitd", ["--config", bad], "join")
        bad = write(os.path.join(d, "bad3.json"), {"name": "x", "db": db, "procedures": "p.json", "log_level": "x"})
        check_one_line_usage_error("commit-agent", ["--config", bad], "--log-level")


def test_commitctl_environment():
    secret = "s3cret-token"
    with Cluster(coordinator_args=["--token", secret], agent_args={
            "bank-a": ["--token", secret], "bank-b": ["--token", secret]}) as c:
        dead = f"http://127.0.0.1:{harness.free_port()}"
        env = {"COMMITD_ENDPOINTS": f"{dead},{c.url}", "COMMITD_TOKEN": secret}

        def settled():
            rc, out, err = run("commitctl", "status", env=env)
            assert rc == 0, (rc, out, err)
            return out
        out = eventually(settled, 15, what="commitctl status with COMMITD_ENDPOINTS")
        assert "bank-a" in out, out
        # Without the token the coordinator refuses; a wrong --token wins over the environment.
        rc, out, err = run("commitctl", "status", env={"COMMITD_ENDPOINTS": c.url})
        assert rc == 1, (rc, out, err)
        rc, out, err = run("commitctl", "status", "--token", "wrong", env=env)
        assert rc == 1, (rc, out, err)
        # --coordinator wins over COMMITD_ENDPOINTS.
        rc, out, err = run("commitctl", "--coordinator", dead, "status", env=env)
        assert rc == 1 and "cannot reach coordinator" in err and dead in err, (rc, out, err)


def test_commitctl_says_what_it_waits_for():
    env = {"bank-b": {"COMMITD_FAILPOINTS": "agent.ignore_decisions"}}
    with Cluster(agent_env=env) as c:
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 10), 200, "transfer")
        txid = body["txid"]
        rc, out, err = run("commitctl", "--coordinator", c.url, "resolve", txid, "--wait-s", "1")
        assert rc == 1, (rc, out, err)
        assert f"waiting up to 1 s for {txid} to finish" in err, err


def big_seeds(d):
    for name, accounts in (("a", ("alice", "carol")), ("b", ("bob", "dave"))):
        with open(os.path.join(d, f"seed-{name}.sql"), "w") as f:
            f.writelines(f"INSERT INTO accounts VALUES('{acct}', 1000000000);\n" for acct in accounts)
    return {"bank-a": os.path.join(d, "seed-a.sql"), "bank-b": os.path.join(d, "seed-b.sql")}


def test_bench_progress_and_dead_coordinator():
    line = re.compile(r"^transfers +\d+s( \(warmup\))?: \d+ committed/s, p50 [\d.]+ ms, p99 [\d.]+ ms, \d+ errors$")
    with tempfile.TemporaryDirectory(prefix="commitd-cli-seed-") as seeds:
        with Cluster(banks=big_seeds(seeds)) as c:
            args = ["transfers", "--coordinator", c.url, "--clients", "2", "--warmup-s", "0",
                    "--accounts-a", "alice,carol", "--accounts-b", "bob,dave"]
            rc, out, err = run("commitd-bench", *args, "--duration-s", "3", "--json")
            assert rc == 0, (out, err)
            progress = [l for l in err.splitlines() if line.match(l)]
            assert len(progress) >= 2, err
            assert any(not l.split(": ")[1].startswith("0 committed") for l in progress), err
            assert json.loads(out)["committed"] > 0, out

            # The coordinator dies mid-run: the bench stops within seconds, not after 60.
            bench = subprocess.Popen([harness.bin_path("commitd-bench"), *args, "--duration-s", "60"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                time.sleep(2)
                c.coordinator.kill9()
                killed = time.monotonic()
                out, err = bench.communicate(timeout=30)
            finally:
                if bench.poll() is None:
                    bench.kill()
                    bench.wait()
            took = time.monotonic() - killed
            assert bench.returncode == 1, (bench.returncode, out, err)
            assert "nothing answered" in err and c.url in err, err
            assert took < 15, f"the bench took {took:.1f}s to give up"

        # Nothing there from the start.
        dead = f"http://127.0.0.1:{harness.free_port()}"
        t0 = time.monotonic()
        rc, out, err = run("commitd-bench", "transfers", "--coordinator", dead, "--duration-s", "60")
        assert rc == 1 and "nothing answered" in err, (rc, out, err)
        assert time.monotonic() - t0 < 15, err


if __name__ == "__main__":
    harness.main(globals())
