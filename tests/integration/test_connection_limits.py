"""Idle connections cannot lock clients out of a coordinator.

An attacker opens 2,000 connections and sends nothing, against a commitd
whose file limit is the common 1024 (soft and hard): /healthz, /readyz and
client transactions are still answered while they are open, and the
coordinator stays up.
"""

import os
import resource
import socket
import time

import harness


def _raise_own_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _open_idle(port, count):
    sockets = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(True)
        s.settimeout(2.0)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        sockets.append(s)
    return sockets


def test_two_thousand_idle_connections_do_not_stop_clients():
    limit = _raise_own_file_limit()
    assert limit >= 2100, f"this test needs 2,100 file descriptors, the hard limit is {limit}"
    with harness.Cluster(start=False) as c:
        for name, seed in c.bank_seeds.items():
            c.add_bank(name, seed)
        for bank in c.banks.values():
            bank.process.wait_healthy()
        # The coordinator runs under the common limit of 1024 descriptors.
        argv = ["prlimit", "--nofile=1024:1024", harness.bin_path("commitd"), "--id", "c1",
                "--listen", f"127.0.0.1:{c.coord_port}", "--data-dir", c.data_dir,
                "--config", c.config_path]
        for bank in c.banks.values():
            argv += ["--participant", f"{bank.name}={bank.url}"]
        c.coordinator = harness.Process("commitd-c1", argv, os.path.join(c.dir, "commitd-c1.log"), c.coord_url)
        c.start_coordinator()
        status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
        assert status == 200, reply

        idle = _open_idle(c.coord_port, 2000)
        try:
            harness.log(f"{len(idle)} idle connections opened")
            assert len(idle) >= 1900, f"only {len(idle)} connections could be opened"
            started = time.monotonic()
            status, body = c.get("/healthz", timeout=5.0)
            assert status == 200, body
            status, body = c.get("/readyz", timeout=5.0)
            assert status == 200, body
            for i in range(5):
                status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
                assert status == 200, reply
            harness.log(f"health and 5 transfers answered in {time.monotonic() - started:.2f} s")
            assert c.coordinator.alive()
            assert "Too many open files" not in c.coordinator.log_text()
        finally:
            for s in idle:
                s.close()
        c.eventually_balance("bank-b", "bob", c.seed("bank-b")["bob"] + 6)


if __name__ == "__main__":
    harness.main(globals())
