"""commitctl's offline commands on a coordinator group's files: a 3-member
group and its two agents killed at once (kill -9) under load, then
`inspect`, `log dump` and `recover` on the members' directories. recover
carries out what any member's state machine holds (committed), refuses to
presume abort from fewer than a majority of the members' directories, and
from a majority only when no member outside them could still get a decision
committed; whatever it settles, the restarted group agrees with.

Run one test: python3 test_group_recovery_tool.py --bin-dir build/release/bin
"""

import json
import os
import random
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import eventually, expect_status  # noqa: E402
from test_group import Group  # noqa: E402
from test_recovery_tool import (LOAD_ACCOUNTS, assert_consistent, assert_nothing_prepared_in_files,  # noqa: E402
                                ctl, db_flags, prepare_by_hand)


def load_until_killed(g, url, stop):
    rng = random.Random(7)
    while not stop.is_set():
        src_bank, dst_bank = rng.choice([("bank-a", "bank-b"), ("bank-b", "bank-a")])
        try:
            harness.transfer(url, src_bank, rng.choice(LOAD_ACCOUNTS[src_bank]), dst_bank,
                             rng.choice(LOAD_ACCOUNTS[dst_bank]), rng.randint(1, 5), http_timeout=5.0)
        except OSError:
            time.sleep(0.05)


def dirs(g, ids):
    flags = []
    for node_id in ids:
        flags += ["--data-dir", os.path.join(g.c.dir, f"{node_id}-data")]
    return flags


def plan(g, ids, *extra):
    rc, out, err = ctl("recover", *dirs(g, ids), *db_flags(g.c), "--json", *extra)
    assert rc in (0, 1), f"recover exit {rc}\n{out}\n{err}"
    return rc, {(s["txid"], s["database"]): s for s in json.loads(out)["steps"]}


def test_recover_a_group_killed_at_once():
    with Group() as g:
        # Decisions are made and replicated, but never delivered: the agents
        # keep those transactions prepared for recover to settle.
        for p in g.nodes.values():
            p.restart(env={"COMMITD_FAILPOINTS": "coordinator.skip_commit_delivery"})
        for p in g.nodes.values():
            p.wait_healthy()
        leader = g.wait_leader(30)
        leader_url = g.urls[leader]
        undelivered = []
        for src, dst in zip(LOAD_ACCOUNTS["bank-a"], LOAD_ACCOUNTS["bank-b"]):  # rows of their own: no lock conflict
            body = expect_status(harness.transfer(leader_url, "bank-a", src, "bank-b", dst, 1, timeout_ms=60000),
                                 200, "transfer")
            undelivered.append(body["txid"])
        term = g.cluster(leader)["term"]
        # A record shaped like one the leader issued in this term, which no
        # member ever decided: only the whole group's files may presume abort.
        orphan = f"{leader}-{term}-999999-0123456789abcdef"
        prepare_by_hand(g.c, orphan, "bank-a", harness.debit_ops("grace", 7), leader_url)
        stop = threading.Event()
        workers = [threading.Thread(target=load_until_killed, args=(g, leader_url, stop), daemon=True)
                   for _ in range(4)]
        for w in workers:
            w.start()
        time.sleep(2.0)
        harness.kill9_all(list(g.nodes.values()) + [b.process for b in g.c.banks.values()])
        stop.set()
        for w in workers:
            w.join(15)

        # inspect and log dump read a member's raft.db.
        rc, out, err = ctl("inspect", *dirs(g, ["c1"]), "--json")
        assert rc in (0, 1), (rc, out, err)
        report = json.loads(out)["decision_log"]
        assert report["group"]["applied"] > 0, report["group"]
        rc, out, err = ctl("log", "dump", *dirs(g, ["c2"]))
        assert rc == 0, (rc, out, err)
        lines = [json.loads(line) for line in out.splitlines()]
        assert lines[0]["type"] == "member", lines[0]
        assert {line["type"] for line in lines} <= {"member", "decision", "participant", "entry"}, lines[:3]
        assert any(line["type"] == "decision" for line in lines), "no decision in the member's state machine"
        assert all(line["committed"] == "unknown" for line in lines if line["type"] == "entry")

        # One member: what its state machine holds is carried out, nothing is presumed.
        rc, one = plan(g, ["c1"])
        assert rc == 1
        assert one[(orphan, g.c.bank("bank-a").db)]["action"] == "refuse"
        assert "majority" in one[(orphan, g.c.bank("bank-a").db)]["why"], one
        assert not [s for s in one.values() if s["action"] == "abort" and "presumed" in s["why"]], one
        # A majority: no presumption for a txid of the last committed term
        # (unless an election under load committed a later one meanwhile).
        groups = []
        for node_id in ("c1", "c2"):
            rc, out, err = ctl("inspect", *dirs(g, [node_id]), "--json")
            groups.append(json.loads(out)["decision_log"]["group"])
        committed_term = max(groups, key=lambda x: x["applied"])["applied_term"]
        rc, two = plan(g, ["c1", "c2"])
        step = two[(orphan, g.c.bank("bank-a").db)]
        if committed_term > term:
            assert step["action"] == "abort", (committed_term, term, step)
        else:
            assert step["action"] == "refuse" and "term" in step["why"], step
        # Distinct members only.
        rc, out, err = ctl("recover", *dirs(g, ["c1", "c1"]), *db_flags(g.c))
        assert rc == 2 and "twice" in err, (rc, out, err)

        # Committed decisions in a member's state machine are carried out, never aborted.
        for txid in undelivered:
            for name in ("bank-a", "bank-b"):
                step = one.get((txid, g.c.bank(name).db))
                assert step is not None and step["action"] in ("commit", "refuse"), (txid, step)
                assert two[(txid, g.c.bank(name).db)]["action"] in ("commit", "refuse"), two

        # Every member: the orphan is presumed aborted; apply the plan.
        rc, out, err = ctl("recover", *dirs(g, ["c1", "c2", "c3"]), *db_flags(g.c), "--apply", "--json")
        assert rc in (0, 1), f"recover --apply: exit {rc}\n{out}\n{err}"
        applied = json.loads(out)["steps"]
        by_txid = {}
        for s in applied:
            by_txid.setdefault(s["txid"], set()).add(s["action"])
        assert by_txid[orphan] == {"abort"}, applied
        for txid in undelivered:
            assert by_txid[txid] == {"commit"}, (txid, applied)
        settled = {s["txid"]: s["action"] for s in applied if s["action"] in ("commit", "abort")}
        harness.log(f"recover settled {len(settled)} record(s), refused "
                    f"{sum(1 for s in applied if s['action'] == 'refuse')}")

        # The group, restarted, agrees with every record recover settled.
        for b in g.c.banks.values():
            b.process.start()
        for p in g.nodes.values():
            p.start()
        leader = g.wait_leader(30)
        for txid, action in settled.items():
            if txid == orphan:
                continue
            status, tx = harness.get(g.urls[leader], f"/v1/transactions/{urllib.parse.quote(txid, safe='')}")
            outcome = tx.get("outcome")
            if action == "commit":
                assert status == 200 and outcome == "committed", (txid, status, tx)
            else:
                assert outcome != "committed", (txid, status, tx)

        def nothing_prepared():
            for name in g.c.banks:
                assert g.c.prepared(name) == [], g.c.prepared(name)
            return True
        eventually(nothing_prepared, 60, interval=0.5, what="nothing prepared after the restart")
        g.c.kill9_all()
        harness.kill9_all(list(g.nodes.values()))
        assert_nothing_prepared_in_files(g.c)
        assert_consistent(g.c)


if __name__ == "__main__":
    harness.main(globals())
