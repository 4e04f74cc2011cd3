"""A Raft-replicated coordinator group with real processes on
loopback: three commitd nodes, two bank agents. Any node serves the API
(followers forward to the leader); the leader is killed -9 again and again
under a transfer load, and no transaction whose outcome a client was told is
lost or changed, and nothing stays in doubt.

Run one test: python3 test_group.py --bin-dir build/release/bin test_any_member_serves_the_api
"""

import json
import os
import random
import signal
import statistics
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import FAST_CONFIG, Cluster, Process, bin_path, ctl, eventually, free_port  # noqa: E402

GROUP_CONFIG = dict(FAST_CONFIG)


class Group:
    """Three commitd nodes in one Raft group (c1..c3) and the two bank agents,
    which know every node (--coordinator with all three URLs)."""

    def __init__(self, size=3, config=None):
        self.c = Cluster(config=config or GROUP_CONFIG, start=False)
        self.urls = {f"c{i + 1}": f"http://127.0.0.1:{free_port()}" for i in range(size)}
        self.c.coord_url = ",".join(self.urls.values())
        self.nodes = {}
        try:
            for name, seed in self.c.bank_seeds.items():
                self.c.add_bank(name, seed)
            for bank in self.c.banks.values():
                bank.process.wait_healthy()
            peers = ",".join(f"{i}={u}" for i, u in self.urls.items())
            for node_id, url in self.urls.items():
                data_dir = os.path.join(self.c.dir, f"{node_id}-data")
                os.makedirs(data_dir, exist_ok=True)
                argv = [bin_path("commitd"), "--id", node_id, "--listen", url[len("http://"):],
                        "--data-dir", data_dir, "--peers", peers]
                for bank in self.c.banks.values():
                    argv += ["--participant", f"{bank.name}={bank.url}"]
                if self.c.config_path:
                    argv += ["--config", self.c.config_path]
                self.nodes[node_id] = Process(f"commitd-{node_id}", argv,
                                              os.path.join(self.c.dir, f"commitd-{node_id}.log"), url).start()
            for p in self.nodes.values():
                p.wait_healthy()
            self.wait_leader()
        except BaseException:
            self.c.failed = True
            self.close()
            raise

    def cluster(self, node_id):
        status, body = harness.get(self.urls[node_id], "/v1/cluster", timeout=2.0)
        assert status == 200, (status, body)
        return body

    def leader(self):
        """The id of the ready leader, as the live nodes see it, or None."""
        for node_id, p in self.nodes.items():
            if not p.alive():
                continue
            try:
                info = self.cluster(node_id)
            except OSError:
                continue
            if info.get("role") == "leader" and info.get("leader_ready"):
                return node_id
        return None

    def wait_leader(self, timeout=20.0):
        return eventually(lambda: self.leader(), timeout, what="a ready leader")

    def close(self):
        harness.stop_all(list(self.nodes.values()))
        self.c.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.c.failed = True
        self.close()
        return False


def test_any_member_serves_the_api():
    with Group() as g:
        leader = g.leader()
        infos = {n: g.cluster(n) for n in g.urls}
        for n, info in infos.items():
            assert info["leader"] == leader, infos
            assert len(info["members"]) == 3, info
        txids = []
        for n in g.urls:  # the leader and both followers (which forward)
            status, body = harness.transfer(g.urls[n], "bank-a", "alice", "bank-b", "bob", 1)
            assert status == 200 and body["outcome"] == "committed", (n, status, body)
            txids.append(body["txid"])
        for n in g.urls:
            for txid in txids:
                status, tx = harness.get(g.urls[n], f"/v1/transactions/{txid}")
                assert status == 200 and tx["outcome"] == "committed", (n, txid, status, tx)
        g.c.eventually_balance("bank-a", "alice", 97)
        g.c.eventually_balance("bank-b", "bob", 53)
        # The decisions are replicated: every node's commit index moves past them.
        commit = g.cluster(leader)["commit_index"]
        eventually(lambda: all(g.cluster(n)["applied_index"] >= commit for n in g.urls), 10,
                   what="every node applied the leader's commit index")
        # An unknown txid is presumed aborted, and the abort is appended first.
        follower = next(n for n in g.urls if n != leader)
        status, body = harness.get(g.urls[follower], "/v1/transactions/never-ran-1")
        assert status == 404 and body["outcome"] == "aborted", (status, body)
        status, body = harness.get(g.urls[leader], "/v1/transactions/never-ran-1")
        assert status == 200 and body["outcome"] == "aborted", (status, body)



def test_commitctl_cluster_status_and_transfer_leader():
    with Group() as g:
        leader = g.leader()
        follower = next(n for n in g.urls if n != leader)
        rc, out, err = ctl("--coordinator", g.urls[follower], "cluster", "status")
        assert rc == 0, (rc, out, err)
        assert f"leader: {leader}" in out and out.count(" leader ") >= 1, out
        rc, out, err = ctl("--coordinator", g.urls[follower], "cluster", "transfer-leader", "--to", follower)
        assert rc == 0 and f"leader is now {follower}" in out, (rc, out, err)
        assert g.wait_leader() == follower
        status, body = harness.transfer(g.urls[leader], "bank-a", "alice", "bank-b", "bob", 1)
        assert status == 200 and body["outcome"] == "committed", (status, body)
        rc, out, err = ctl("--coordinator", g.urls[leader], "cluster", "transfer-leader", "--to", "c9")
        assert rc == 2 and "not a voting member" in err, (rc, out, err)
        rc, out, err = ctl("--coordinator", g.urls[leader], "cluster", "transfer-leader")
        assert rc == 2 and "--to" in err, (rc, out, err)
        # A member down: status says so and exits 1.
        down = next(n for n in g.urls if n != follower)
        g.nodes[down].kill9()
        rc, out, err = ctl("--coordinator", g.urls[follower], "cluster", "status")
        assert rc == 1 and "UNREACHABLE" in out, (rc, out, err)


def test_a_transaction_of_a_dead_member_is_presumed_aborted_by_the_group():
    # The agent's record names a member that is gone for good; the group (any
    # live member, through the leader) appends the abort and says it answers
    # for that member, so the agent accepts the presumed abort.
    with Group() as g:
        leader = g.leader()
        gone = next(n for n in g.urls if n != leader)
        agent = g.c.bank("bank-a").url
        status, vote = harness.agent_prepare(agent, "dead-member-1", harness.debit_ops("alice", 5),
                                             participant="bank-a", coordinator=g.urls[gone], timeout_ms=100)
        assert status == 200 and vote["vote"] == "yes", (status, vote)
        g.nodes[gone].kill9()
        g.c.eventually_nothing_prepared(["bank-a"], timeout=30)
        assert g.c.balances("bank-a")["alice"] == 100
        status, body = harness.get(g.urls[leader], "/v1/transactions/dead-member-1")
        assert status == 200 and body["outcome"] == "aborted", (status, body)


def test_a_member_far_behind_catches_up_from_a_snapshot():
    # The leader keeps at most 40 entries behind for it, so it compacts past them.
    with Group(config=dict(GROUP_CONFIG, raft_snapshot_entries=40, raft_log_keep_entries=40)) as g:
        leader = g.leader()
        behind = next(n for n in g.urls if n != leader)
        g.nodes[behind].kill9()
        txids = []
        for i in range(60):  # a decision and a finished mark each: well past several snapshots
            route = ("bank-a", "alice", "bank-b", "bob") if i % 2 == 0 else ("bank-b", "bob", "bank-a", "alice")
            status, body = harness.transfer(g.urls[leader], *route, 1)
            assert status in (200, 409), (status, body)
            txids.append(body["txid"])
        assert "snapshot_taken" in open(g.nodes[leader].log_path).read()
        g.nodes[behind].start().wait_healthy()
        commit = g.cluster(leader)["commit_index"]
        eventually(lambda: g.cluster(behind)["applied_index"] >= commit, 30, what=f"{behind} catching up")
        assert "snapshot_installed" in open(g.nodes[behind].log_path).read()
        rc, out, err = ctl("--coordinator", g.urls[leader], "cluster", "transfer-leader", "--to", behind)
        assert rc == 0, (rc, out, err)
        for txid in (txids[0], txids[-1]):
            status, tx = harness.get(g.urls[behind], f"/v1/transactions/{txid}")
            assert status == 200 and tx["outcome"] == "committed", (txid, status, tx)
        # And it restarts from its own snapshot.
        g.nodes[behind].kill9()
        g.nodes[behind].start().wait_healthy()
        g.wait_leader()
        status, body = harness.transfer(g.urls[behind], "bank-a", "alice", "bank-b", "bob", 1)
        assert status == 200, (status, body)


def compactions(node):
    """The log indexes a node's log was compacted to, from its log file."""
    with open(node.log_path) as f:
        return [json.loads(line)["index"] for line in f if '"event":"snapshot_taken"' in line]


def test_a_member_that_paused_catches_up_from_the_log_not_a_snapshot():
    """The leader keeps the entries a member behind still needs (up to
    raft_log_keep_entries): a member stopped while the log moved on by many
    compactions takes them from the log when it resumes, and nobody copies
    the whole state for it."""
    with Group(config=dict(GROUP_CONFIG, raft_snapshot_entries=40)) as g:
        leader = g.leader()
        paused, running = [n for n in g.urls if n != leader]
        g.nodes[paused].popen.send_signal(signal.SIGSTOP)
        try:
            time.sleep(0.2)  # whatever it was acknowledging is in
            stopped_at = g.cluster(leader)["last_index"]
            for i in range(60):  # a decision and a finished mark each: several compactions' worth
                route = ("bank-a", "alice", "bank-b", "bob") if i % 2 == 0 else ("bank-b", "bob", "bank-a", "alice")
                status, body = harness.transfer(g.urls[leader], *route, 1)
                assert status in (200, 409), (status, body)
            eventually(lambda: max(compactions(g.nodes[running]), default=0) > stopped_at + 40, 10,
                       what=f"{running} compacting its log past where {paused} stopped")
            assert max(compactions(g.nodes[leader]), default=0) <= stopped_at, "the leader kept what it needs"
        finally:
            g.nodes[paused].popen.send_signal(signal.SIGCONT)
        commit = g.cluster(leader)["commit_index"]
        eventually(lambda: g.cluster(paused)["applied_index"] >= commit, 30, what=f"{paused} catching up")
        assert "snapshot_installed" not in open(g.nodes[paused].log_path).read()
        assert "snapshot_serialized" not in open(g.nodes[leader].log_path).read()
        # Caught up, it holds nothing back: the leader compacts past where it stopped.
        for i in range(40):
            route = ("bank-a", "alice", "bank-b", "bob") if i % 2 == 0 else ("bank-b", "bob", "bank-a", "alice")
            status, body = harness.transfer(g.urls[leader], *route, 1)
            assert status in (200, 409), (status, body)
        eventually(lambda: max(compactions(g.nodes[leader]), default=0) > stopped_at, 10,
                   what="the leader compacting again")


def transfer_through_elections(url, route, key):
    """A transfer retried with its Idempotency-Key while the group answers 503
    (an election on a loaded machine); the first answer that is not 503. A
    transfer aborted on a lock conflict runs again under a new key: the
    previous transfer's commit, sent after its client was answered, may not
    have released the same rows yet (a no vote, not a failure)."""
    keys = (f"{key}-{n}" for n in range(1000))
    current = [next(keys)]

    def answered():
        status, body = harness.transfer(url, *route, 1, idem_key=current[0])
        if status == 503:
            return None  # the same key again: its outcome may still be settling
        if status == 409 and "lock conflict" in body.get("reason", ""):
            current[0] = next(keys)  # aborted, nothing done: again under a new key
            return None
        return status, body
    return harness.eventually(answered, timeout=20.0, what=f"transfer {key} answered")


def test_replace_a_member_add_then_remove():
    with Group() as g:
        peers = ",".join(f"{i}={u}" for i, u in g.urls.items())
        c4_url = f"http://127.0.0.1:{free_port()}"
        data_dir = os.path.join(g.c.dir, "c4-data")
        os.makedirs(data_dir)
        argv = [bin_path("commitd"), "--id", "c4", "--listen", c4_url[len("http://"):], "--data-dir", data_dir,
                "--peers", peers + f",c4={c4_url}", "--join"]
        for bank in g.c.banks.values():
            argv += ["--participant", f"{bank.name}={bank.url}"]
        if g.c.config_path:
            argv += ["--config", g.c.config_path]
        g.nodes["c4"] = Process("commitd-c4", argv, os.path.join(g.c.dir, "commitd-c4.log"), c4_url).start()
        g.nodes["c4"].wait_healthy()
        g.urls["c4"] = c4_url
        for i in range(10):
            route = ("bank-a", "alice", "bank-b", "bob") if i % 2 == 0 else ("bank-b", "bob", "bank-a", "alice")
            status, body = transfer_through_elections(g.urls["c1"], route, f"replace-{i}")
            assert status == 200, (status, body)
        leader = g.leader()
        rc, out, err = ctl("--coordinator", g.urls[leader], "cluster", "add", f"c4={c4_url}")
        assert rc == 0 and "c4 caught up and is a voter" in out, (rc, out, err)
        rc, out, err = ctl("--coordinator", g.urls[leader], "cluster", "add", f"c4={c4_url}")
        assert rc == 1 and "already a member" in err, (rc, out, err)
        rc, out, err = ctl("--coordinator", g.urls[leader], "cluster", "remove", leader)
        assert rc == 1 and "transfer leadership first" in err, (rc, out, err)
        old = next(n for n in ("c1", "c2", "c3") if n != leader)
        rc, out, err = ctl("--coordinator", g.urls[leader], "cluster", "remove", old)
        assert rc == 0, (rc, out, err)
        g.nodes[old].terminate()
        del g.urls[old]
        info = g.cluster(leader)
        assert sorted(m["id"] for m in info["members"]) == sorted(g.urls), info
        # With c4 a voter, the group survives losing another original member.
        other = next(n for n in ("c1", "c2", "c3") if n not in (leader, old))
        g.nodes[other].kill9()
        del g.urls[other]
        status, body = harness.transfer(g.urls["c4"], "bank-a", "alice", "bank-b", "bob", 1)
        assert status == 200 and body["outcome"] == "committed", (status, body)
        rc, out, err = ctl("--coordinator", g.urls["c4"], "cluster", "transfer-leader", "--to", "c4")
        assert rc == 0, (rc, out, err)
        status, body = harness.transfer(g.urls[leader], "bank-b", "bob", "bank-a", "alice", 1)
        assert status == 200 and body["outcome"] == "committed", (status, body)


def lead_with_failpoint(g, failpoint):
    """Restarts a follower with `failpoint`, lets it catch up and hands it the
    leadership; returns its id."""
    leader = g.leader()
    target = next(n for n in g.urls if n != leader)
    g.nodes[target].kill9()
    g.nodes[target].start(env={"COMMITD_FAILPOINTS": failpoint})
    g.nodes[target].wait_healthy()
    eventually(lambda: g.cluster(target)["applied_index"] >= g.cluster(leader)["commit_index"], 10,
               what="the restarted member catching up")
    rc, out, err = ctl("--coordinator", g.urls[leader], "cluster", "transfer-leader", "--to", target)
    assert rc == 0, (rc, out, err)
    return target


def test_3pc_leader_killed_after_precommit_the_group_commits_it():
    # With a group, the agents ask the group first: a new leader resumes the
    # staging record (its fences find every agent prepared, and it precommits
    # them again) and commits; termination is only the fallback.
    with Group() as g:
        target = lead_with_failpoint(g, "coordinator.crash_before_3pc_commit_record")
        try:
            status, body = harness.transfer(g.urls[target], "bank-a", "alice", "bank-b", "bob", 30, protocol="3pc",
                                            http_timeout=10)
            raise AssertionError(f"the leader answered instead of crashing: {status} {body}")
        except OSError:
            pass
        g.nodes[target].wait_exit(10)
        g.c.eventually_balance("bank-a", "alice", 70)
        g.c.eventually_balance("bank-b", "bob", 80)
        g.c.eventually_nothing_prepared()
        txid = g.c.journal("bank-a")[0][0]
        survivor = g.wait_leader()
        status, tx = harness.get(g.urls[survivor], f"/v1/transactions/{txid}")
        assert status == 200 and tx["outcome"] == "committed" and tx["protocol"] == "3pc", (status, tx)
        for name in g.c.banks:  # the group decided it, not the agents' termination protocol
            assert "termination_call" not in g.c.agent(name).log_text(), name


def test_a_contradicted_decision_is_shown_by_every_member_and_closed_through_a_follower():
    # The commit is decided by a leader that never delivers it; bank-b is
    # then aborted with the group's real abort key, behind its back. The next
    # leader delivers the commit: bank-b contradicts it, and an operator
    # closes it through a follower.
    with Group() as g:
        target = lead_with_failpoint(g, "coordinator.skip_commit_delivery")
        status, body = harness.transfer(g.urls[target], "bank-a", "alice", "bank-b", "bob", 30, timeout_ms=15000)
        assert status == 200 and body["outcome"] == "committed", (status, body)
        txid = body["txid"]
        data_dir = os.path.join(g.c.dir, f"{target}-data")
        eventually(lambda: harness.recorded_outcome(g.c, txid, os.path.join(data_dir, "raft.db")) == "committed",
                   10, what="the commit record")
        _, abort_key, _ = harness.decision_log_keys(data_dir, txid, "raft.db")
        status, body = harness.agent_abort(g.c.bank("bank-b").url, txid, abort_key=abort_key)
        assert status == 200 and body["state"] == "aborted", (status, body)
        g.nodes[target].kill9()
        new_leader = g.wait_leader()
        follower = next(n for n in g.urls if n not in (new_leader, target))

        def contradicted():
            status, tx = harness.get(g.urls[follower], f"/v1/transactions/{txid}")
            assert status == 200 and tx["state"] == "contradicted", (status, tx)
            return tx
        tx = eventually(contradicted, 20, what="the commit contradicted, seen through a follower")
        assert {b["participant"]: b["state"] for b in tx["branches"]} == {"bank-a": "committed", "bank-b": "aborted"}
        rc, out, err = ctl("--coordinator", g.urls[follower], "close", txid, "--yes")
        assert rc == 0 and "closed" in out, (rc, out, err)
        for node_id in (new_leader, follower):
            eventually(lambda: harness.get(g.urls[node_id], f"/v1/transactions/{txid}")[1]["state"] == "finished",
                       10, what=f"{txid} finished on {node_id}")
        g.nodes[target].start(env={})  # the old leader learns the finished mark too
        g.nodes[target].wait_healthy()
        eventually(lambda: harness.recorded_outcome(g.c, txid, os.path.join(data_dir, "raft.db")) == "committed" and
                   harness.get(g.urls[target], f"/v1/transactions/{txid}")[1]["state"] == "finished",
                   20, what=f"{txid} finished on {target}")


class Load:
    """Client threads doing transfers with Idempotency-Keys against random
    live nodes, retrying a request (same key) until it gets an answer."""

    def __init__(self, g, pairs):
        self.g = g
        self.pairs = pairs
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.outcomes = {}  # txid -> "committed" | "aborted", as clients were told
        self.commit_times = []  # monotonic time of every committed answer
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(a, b), daemon=True) for a, b in pairs]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def run(self, src, dst):
        rng = random.Random(hash((src, dst)))
        forward = True
        while not self.stop.is_set():
            # Back and forth, so that the balances never run out.
            route = ("bank-a", src, "bank-b", dst) if forward else ("bank-b", dst, "bank-a", src)
            forward = not forward
            key = uuid.uuid4().hex
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                url = rng.choice(list(self.g.urls.values()))
                try:
                    status, body = harness.transfer(url, *route, 1, idem_key=key, http_timeout=10)
                except OSError:
                    time.sleep(0.02)
                    continue
                if status in (200, 409) and body.get("txid"):
                    with self.lock:
                        outcome = body["outcome"]
                        previous = self.outcomes.setdefault(body["txid"], outcome)
                        if previous != outcome:
                            self.errors.append(f"{body['txid']}: told {previous}, then {outcome}")
                        if outcome == "committed":
                            self.commit_times.append(time.monotonic())
                    break
                if status not in (429, 503):
                    with self.lock:
                        self.errors.append(f"unexpected answer {status}: {body}")
                    break
                time.sleep(0.02)
            else:
                with self.lock:
                    self.errors.append(f"no answer for key {key} within 60 s")

    def first_commit_after(self, t):
        with self.lock:
            later = [x for x in self.commit_times if x > t]
        return min(later) if later else None

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=90)


def kills():
    return int(os.environ.get("COMMITD_GROUP_KILLS", "40" if harness.soak() else "20"))


def test_leader_killed_again_and_again_loses_nothing():
    with Group() as g:
        load = Load(g, [("alice", "bob"), ("carol", "dave"), ("erin", "frank"), ("grace", "heidi")]).start()
        failovers = []
        try:
            time.sleep(1.0)
            for i in range(kills()):
                leader = g.wait_leader()
                killed_at = time.monotonic()
                g.nodes[leader].kill9()
                eventually(lambda: load.first_commit_after(killed_at), 30, interval=0.01,
                           what=f"a commit after kill #{i + 1} of {leader}")
                failovers.append(load.first_commit_after(killed_at) - killed_at)
                g.nodes[leader].start()
                g.nodes[leader].wait_healthy()
                # Let the restarted node catch up before the next kill, so that
                # a majority always has the whole log.
                eventually(lambda: g.leader() and all(
                    g.cluster(n)["applied_index"] >= g.cluster(g.leader())["commit_index"] - 50 for n in g.urls),
                    30, what="the restarted node catching up")
                time.sleep(0.3)
        finally:
            load.finish()
        assert not load.errors, load.errors[:5]
        failovers.sort()
        harness.log(f"{len(failovers)} leader kills: failover (kill -> next committed transfer) "
                    f"p50 {statistics.median(failovers) * 1000:.0f} ms, max {failovers[-1] * 1000:.0f} ms; "
                    f"{sum(1 for o in load.outcomes.values() if o == 'committed')} committed, "
                    f"{sum(1 for o in load.outcomes.values() if o == 'aborted')} aborted")
        # Nothing stays in doubt, and every answer a client got holds on both banks.
        g.c.eventually_nothing_prepared(timeout=60)
        journal_a = {row[0] for row in g.c.journal("bank-a")}
        journal_b = {row[0] for row in g.c.journal("bank-b")}
        assert journal_a == journal_b, (journal_a ^ journal_b)
        for txid, outcome in load.outcomes.items():
            if outcome == "committed":
                assert txid in journal_a, f"{txid} was acknowledged committed but is not in the journals"
            else:
                assert txid not in journal_a, f"{txid} was acknowledged aborted but committed"
        for name in g.c.banks:
            bal, seed = g.c.balances(name), g.c.seed(name)
            deltas = {}
            for _, account, delta in g.c.journal(name):
                deltas[account] = deltas.get(account, 0) + delta
            for account, start in seed.items():
                assert bal[account] == start + deltas.get(account, 0), (name, account, bal[account], start)


if __name__ == "__main__":
    harness.main(globals())
