"""`cmake --install` into a temporary prefix, then the installed files on
real processes: the layout (bin/, share/doc/commitd, lib/systemd/system), the
installed binaries' --version, -h and bad flags, the installed commitd and
commit-agent running a transfer with the installed bank example, release
binaries without debug info, and `systemd-analyze verify` on the installed
units.

Run: python3 test_install.py --bin-dir build/release/bin --source-dir .
"""

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Process, expect_status  # noqa: E402

INSTALLED_BINARIES = ["commitd", "commit-agent", "commitctl", "commitd-bench"]
UNITS = ["commitd@.service", "commit-agent@.service"]


class Installed:
    """A `cmake --install` of the build that holds --bin-dir, into a temp prefix."""

    def __enter__(self):
        self.build_dir = os.path.dirname(os.path.abspath(harness.OPTIONS.bin_dir))
        self.prefix = tempfile.mkdtemp(prefix="commitd-install-")
        p = subprocess.run(["cmake", "--install", self.build_dir, "--prefix", self.prefix],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, f"cmake --install failed:\n{p.stdout}\n{p.stderr}"
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.prefix, ignore_errors=True)
        return False

    def path(self, *parts):
        return os.path.join(self.prefix, *parts)

    def run(self, tool, *args, timeout=30):
        p = subprocess.run([self.path("bin", tool), *args], capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr


def build_type(build_dir):
    with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
        m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", f.read(), re.M)
    return m.group(1) if m else ""


def section_names(path):
    p = subprocess.run(["readelf", "-S", "-W", path], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return set(re.findall(r"\]\s+(\.\S+)", p.stdout))


def test_layout_and_cli_conventions():
    with Installed() as inst:
        for tool in INSTALLED_BINARIES:
            assert os.access(inst.path("bin", tool), os.X_OK), f"bin/{tool} not installed"
        doc = inst.path("share", "doc", "commitd")
        for rel in ("README.md", "LICENSE", "docs/install.md", "docs/operations.md", "docs/procedures.md",
                    "docs/configuration.md", "examples/bank/procedures.json", "examples/bank/schema.sql",
                    "examples/systemd/c1.json", "examples/systemd/agent-bank-a.json"):
            assert os.path.isfile(os.path.join(doc, rel)), f"share/doc/commitd/{rel} not installed"
        with open(os.path.join(doc, "LICENSE")) as f:
            assert "Apache License" in f.read(200)
        assert os.path.isfile(inst.path("lib", "sysusers.d", "commitd.conf"))
        for unit in UNITS:
            with open(inst.path("lib", "systemd", "system", unit)) as f:
                text = f.read()
            exec_start = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)
            assert exec_start.startswith(inst.path("bin") + "/"), f"{unit}: ExecStart={exec_start}"
            for option in ("User=commitd", "ProtectSystem=strict", "ReadWritePaths=", "NoNewPrivileges=yes",
                           "PrivateTmp=yes"):
                assert option in text, f"{unit} lacks {option}"

        for tool in INSTALLED_BINARIES:
            rc, out, err = inst.run(tool, "--version")
            assert rc == 0 and re.fullmatch(rf"{re.escape(tool)} \d+\.\d+\.\d+ \(commit \S+\)\n", out), (rc, out, err)
            rc, built, _ = harness_run(tool, "--version")
            assert out == built, f"installed {tool} is not the build's: {out!r} vs {built!r}"
            rc, out, err = inst.run(tool, "-h")
            assert rc == 0 and out.startswith("usage: "), (tool, rc, out, err)
            rc, out, err = inst.run(tool, "--frobnicate")
            assert rc == 2 and len(err.strip().splitlines()) == 1 and "--frobnicate" in err, (tool, rc, err)

        if build_type(inst.build_dir) == "Release":
            if shutil.which("readelf") is None:
                print("note: readelf not found; not checking that release binaries carry no debug info")
            else:
                for tool in INSTALLED_BINARIES:
                    debug = {s for s in section_names(inst.path("bin", tool)) if s.startswith(".debug")}
                    assert not debug, f"release bin/{tool} has debug sections {sorted(debug)}"


def harness_run(tool, *args):
    p = subprocess.run([harness.bin_path(tool), *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def test_installed_processes_run_a_transfer():
    with Installed() as inst:
        doc = inst.path("share", "doc", "commitd")
        work = inst.path("var")
        os.makedirs(work)
        agents = {}
        coord_port = harness.free_port()
        for name, seed in (("bank-a", "seed-a.sql"), ("bank-b", "seed-b.sql")):
            db = os.path.join(work, f"{name}.db")
            with sqlite3.connect(db) as conn:
                conn.executescript(open(os.path.join(doc, "examples", "bank", "schema.sql")).read())
                conn.executescript(open(os.path.join(doc, "examples", "bank", seed)).read())
            port = harness.free_port()
            agents[name] = Process(name, [inst.path("bin", "commit-agent"), "--name", name,
                                          "--listen", f"127.0.0.1:{port}", "--db", db, "--procedures",
                                          os.path.join(doc, "examples", "bank", "procedures.json"),
                                          "--coordinator", f"http://127.0.0.1:{coord_port}"],
                                   os.path.join(work, f"{name}.log"), f"http://127.0.0.1:{port}").start()
        for agent in agents.values():
            agent.wait_healthy()
        port = coord_port
        data_dir = os.path.join(work, "c1")
        os.makedirs(data_dir)
        coord = Process("commitd", [inst.path("bin", "commitd"), "--id", "c1", "--listen", f"127.0.0.1:{port}",
                                    "--data-dir", data_dir,
                                    "--participant", f"bank-a={agents['bank-a'].url}",
                                    "--participant", f"bank-b={agents['bank-b'].url}"],
                        os.path.join(work, "commitd.log"), f"http://127.0.0.1:{port}").start()
        coord.wait_healthy()
        body = expect_status(harness.transfer(coord.url, "bank-a", "alice", "bank-b", "bob", 5), 200, "transfer")
        assert body["outcome"] == "committed", body
        rc, out, err = inst.run("commitctl", "--coordinator", coord.url, "tx", "show", body["txid"])
        assert rc == 0 and "committed" in out, (rc, out, err)
        assert coord.terminate() == 0
        for agent in agents.values():
            assert agent.terminate() == 0


def test_systemd_units_verify():
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("SKIP: systemd-analyze is not installed (scripts/deps.sh installs systemd); units not verified")
        return
    with Installed() as inst:
        units = [inst.path("lib", "systemd", "system", u) for u in UNITS]
        p = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and p.stderr.strip() == "", f"systemd-analyze verify:\n{p.stdout}\n{p.stderr}"
        # A unit naming a binary that does not exist must fail: proof the check can fail.
        broken = inst.path("broken@.service")
        with open(units[0]) as f, open(broken, "w") as out:
            out.write(f.read().replace(inst.path("bin", "commitd"), inst.path("bin", "no-such-binary")))
        p = subprocess.run([analyze, "verify", broken], capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and "no-such-binary" in p.stderr, (p.returncode, p.stderr)


if __name__ == "__main__":
    harness.main(globals())
