"""commitctl's recovery commands against real processes: offline recover after
everything crashed at once, the same crash healed by normal restarts,
heuristic decisions (resolve --force), and the offline commands refusing to
run beside a live service.

Run one test: python3 test_recovery_tool.py --bin-dir build/release/bin test_force_decision
"""

import json
import os
import random
import signal
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, ctl, eventually, expect_status, participant_flags  # noqa: E402

# Accounts the load moves money between; "grace" and "heidi" are kept for
# transactions the tests prepare by hand.
LOAD_ACCOUNTS = {"bank-a": ["alice", "carol", "erin"], "bank-b": ["bob", "dave", "frank"]}




def db_flags(c):
    flags = []
    for bank in c.banks.values():
        flags += ["--participant-db", bank.db]
    return flags


class Load:
    """Client threads sending random transfers both ways until stopped."""

    def __init__(self, c, threads=4):
        self.c = c
        self.stop_flag = threading.Event()
        self.answered = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, i):
        rng = random.Random(i)
        while not self.stop_flag.is_set():
            src_bank, dst_bank = rng.choice([("bank-a", "bank-b"), ("bank-b", "bank-a")])
            src = rng.choice(LOAD_ACCOUNTS[src_bank])
            dst = rng.choice(LOAD_ACCOUNTS[dst_bank])
            try:
                status, _ = self.c.transfer(src_bank, src, dst_bank, dst, rng.randint(1, 5), http_timeout=5.0)
                if status in (200, 409):
                    with self.lock:
                        self.answered += 1
            except OSError:
                time.sleep(0.05)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=15)
        return False


def crash_under_load(c, seconds=2.0):
    """Runs the load, kills every process at once mid-load, stops the load."""
    with Load(c) as load:
        eventually(lambda: load.answered >= 10, 30, what="load under way")
        time.sleep(seconds)
        c.kill9_all()
        harness.log(f"killed everything after {load.answered} answered transfers")


def snapshot(c):
    return {name: (harness.prepared_in_db(b.db), c.balances(name), c.journal(name)) for name, b in c.banks.items()}


def assert_consistent(c):
    """Money conserved, journals agree across banks, balances match journals."""
    seed_total = sum(sum(c.seed(n).values()) for n in c.banks)
    total = sum(sum(c.balances(n).values()) for n in c.banks)
    assert total == seed_total, f"money not conserved: {total} != {seed_total}"
    deltas = {}
    txids = {}
    for name in c.banks:
        txids[name] = {row[0] for row in c.journal(name)}
        expected = dict(c.seed(name))
        for txid, account, delta in c.journal(name):
            deltas[txid] = deltas.get(txid, 0) + delta
            expected[account] += delta
        assert c.balances(name) == expected, f"{name}: balances {c.balances(name)} != seed + journal {expected}"
    assert txids["bank-a"] == txids["bank-b"], (
        f"journals disagree: only in bank-a {sorted(txids['bank-a'] - txids['bank-b'])}, "
        f"only in bank-b {sorted(txids['bank-b'] - txids['bank-a'])}")
    assert all(d == 0 for d in deltas.values()), {t: d for t, d in deltas.items() if d != 0}
    return len(txids["bank-a"])


def assert_nothing_prepared_in_files(c):
    for name, bank in c.banks.items():
        left = harness.prepared_in_db(bank.db)
        assert not left, f"{name} still holds prepared {left}"


def wait_services_agree(c, timeout=60):
    """The restarted coordinator and agents agree: nothing pending or in
    doubt at the coordinator, nothing prepared on any agent."""
    def settled():
        rc, out, err = ctl("--coordinator", c.url, "status")
        assert rc == 0, f"status exit {rc}\n{out}\n{err}"
        rc, out, err = ctl("--coordinator", c.url, "in-doubt", *participant_flags(c))
        assert rc == 0, f"in-doubt exit {rc}\n{out}\n{err}"
        return True
    eventually(settled, timeout, interval=0.5, what="commitctl status and in-doubt exit 0")
    for name in c.banks:
        assert c.prepared(name) == [], c.prepared(name)


def prepare_by_hand(c, txid, bank, ops, coordinator, timeout_ms=60000):
    """A prepared transaction the coordinator never started (POST /v1/prepare to the agent)."""
    participants = [{"name": n, "url": b.url} for n, b in c.banks.items()]
    vote = expect_status(harness.agent_prepare(c.bank(bank).url, txid, ops, participant=bank,
                                               coordinator=coordinator, timeout_ms=timeout_ms,
                                               participants=participants),
                         200, f"prepare {txid} on {bank}")
    assert vote.get("vote") == "yes", vote


def credit_ops(account, amount):
    return [{"procedure": "credit", "args": {"account": account, "amount": amount}},
            {"procedure": "journal", "args": {"account": account, "delta": amount}}]


# --------------------------------------------------------------------------


def test_offline_recover_after_everything_crashed():
    with Cluster() as c:
        # One record the coordinator never heard of: recover must presume abort.
        prepare_by_hand(c, "by-hand-1", "bank-a", harness.debit_ops("grace", 7), c.url)
        crash_under_load(c)
        before = snapshot(c)
        prepared = {(txid, c.bank(name).db) for name, (p, _, _) in before.items() for txid in p}
        harness.log(f"prepared after the crash: {len(prepared)}")
        assert ("by-hand-1", c.bank("bank-a").db) in prepared

        rc, out, err = ctl("recover", "--data-dir", c.data_dir, *db_flags(c), "--json")
        assert rc == 1, f"plan with records to settle: exit {rc}, want 1\n{out}\n{err}"
        plan = json.loads(out)
        assert plan["applied"] is False, plan
        assert {(s["txid"], s["database"]) for s in plan["steps"]} == prepared, plan
        by_hand = [s for s in plan["steps"] if s["txid"] == "by-hand-1"][0]
        assert by_hand["action"] == "abort" and "presumed abort" in by_hand["why"], by_hand
        assert snapshot(c) == before, "the plan alone changed a database"

        rc, out, err = ctl("recover", "--data-dir", c.data_dir, *db_flags(c))
        assert rc == 1 and "plan only" in out and "by-hand-1" in out, (rc, out, err)

        rc, out, err = ctl("recover", "--data-dir", c.data_dir, *db_flags(c), "--apply", "--json")
        applied = json.loads(out)
        # A 2PC transfer the crash caught between its staging record and a
        # vote is held prepared by some participant only: which database is
        # the other's cannot be told offline, so only the coordinator, which
        # fences every participant, decides it.
        left = [s for s in applied["steps"] if s["action"] == "refuse"]
        assert all("staging record" in s["why"] and s["result"] == "left in place" for s in left), left
        assert rc == (1 if left else 0), f"recover --apply: exit {rc}\n{out}\n{err}"
        assert applied["ok"] is (not left), applied
        settled_offline = [s for s in applied["steps"] if s["action"] != "refuse"]
        for step in settled_offline:
            want = "committed" if step["action"] == "commit" else "aborted"
            assert step["result"] == want, step

        left_prepared = {(s["txid"], s["database"]) for s in left}
        for name, bank in c.banks.items():
            held = {(txid, bank.db) for txid in harness.prepared_in_db(bank.db)}
            assert held == {p for p in left_prepared if p[1] == bank.db}, (name, held, left_prepared)
        transfers = assert_consistent(c)
        harness.log(f"{transfers} transfers committed; {len(settled_offline)} records settled offline, "
                    f"{len(left)} left for the coordinator")
        for step in settled_offline:
            bank = [n for n, b in c.banks.items() if b.db == step["database"]][0]
            in_journal = bool(c.journal(bank, step["txid"]))
            assert in_journal == (step["action"] == "commit"), (step, c.journal(bank, step["txid"]))

        rc, out, err = ctl("recover", "--data-dir", c.data_dir, *db_flags(c), "--apply")
        assert (rc, "nothing to recover" in out) == ((1, False) if left else (0, True)), (rc, out, err)
        rc, out, err = ctl("log", "dump", "--data-dir", c.data_dir)
        assert rc == 0, (rc, out, err)
        lines = [json.loads(line) for line in out.splitlines()]
        assert {line["type"] for line in lines} <= {"decision", "participant"}, lines[:3]
        assert {line["name"] for line in lines if line["type"] == "participant"} == set(c.banks), lines
        committed = {line["txid"] for line in lines if line["type"] == "decision" and line["outcome"] == "committed"}
        # A 2PC commit answered on its staging record may have died before its
        # commit record: the restarted coordinator records it (fencing).
        staged = {line["txid"] for line in lines if line["type"] == "decision" and line["outcome"] == "pending"}
        assert {row[0] for row in c.journal("bank-a")} <= committed | staged

        settled = snapshot(c)
        c.start_all()
        wait_services_agree(c)
        if not left:
            assert snapshot(c) == settled, "restarting changed a settled database"
        assert_consistent(c)
        for txid in staged & {row[0] for row in c.journal("bank-a")}:
            eventually(lambda txid=txid: c.tx_status(txid)[1].get("outcome") == "committed", timeout=30,
                       what=f"the staged commit {txid} recorded")
        # Between accounts the random load never touched: a load account may be empty by now.
        body = expect_status(c.transfer("bank-a", "grace", "bank-b", "heidi", 1), 200, "transfer after recovery")
        assert body["outcome"] == "committed", body


def test_offline_recover_of_a_staging_record_commits_what_every_participant_holds_prepared():
    # Answered on its staging record and the votes, the commit never reaches
    # the log or the participants: offline, both hold it prepared, which
    # proves every yes vote.
    env = {"COMMITD_FAILPOINTS": "coordinator.skip_early_commit_record,coordinator.skip_commit_delivery"}
    with Cluster(coordinator_env=env) as c:
        body = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, timeout_ms=60000), 200, "transfer")
        txid = body["txid"]
        c.kill9_all()
        rc, out, err = ctl("recover", "--data-dir", c.data_dir, *db_flags(c), "--apply", "--json")
        assert rc == 0, f"recover --apply: exit {rc}\n{out}\n{err}"
        steps = json.loads(out)["steps"]
        assert len(steps) == 2 and all(s["txid"] == txid and s["action"] == "commit" for s in steps), steps
        assert all("staging record" in s["why"] and "all 2" in s["why"] for s in steps), steps
        assert all(s["result"] == "committed" for s in steps), steps
        assert c.balances("bank-a")["alice"] == 70 and c.balances("bank-b")["bob"] == 80
        c.coordinator.start(env={})  # without the failpoints
        c.start_all()
        wait_services_agree(c)
        eventually(lambda: c.tx_status(txid)[1].get("outcome") == "committed", timeout=30, what="the commit recorded")
        assert_consistent(c)


def test_offline_recover_leaves_a_staging_record_some_participant_never_prepared_to_the_coordinator():
    # The coordinator dies once the staging record is durable; bank-b, frozen,
    # never read its prepare. Offline, bank-a's record cannot be settled (the
    # other database shows nothing, and which participant it is cannot be
    # told); the restarted coordinator fences both and aborts.
    with Cluster(coordinator_env={"COMMITD_FAILPOINTS": "coordinator.crash_after_precommit_durable"}) as c:
        c.agent("bank-b").popen.send_signal(signal.SIGSTOP)
        try:
            c.transfer("bank-a", "alice", "bank-b", "bob", 30, timeout_ms=60000, http_timeout=10)
        except OSError:
            pass
        c.coordinator.wait_exit(timeout=10)
        c.kill9_all()
        a_db = c.bank("bank-a").db
        if not harness.prepared_in_db(a_db):
            return  # bank-a's prepare did not leave before the crash: nothing prepared anywhere
        (txid,) = harness.prepared_in_db(a_db)
        rc, out, err = ctl("recover", "--data-dir", c.data_dir, *db_flags(c), "--apply", "--json")
        assert rc == 1, f"recover --apply: exit {rc}\n{out}\n{err}"
        (step,) = json.loads(out)["steps"]
        assert step["txid"] == txid and step["action"] == "refuse" and "1 of its 2" in step["why"], step
        assert harness.prepared_in_db(a_db) == {txid: "prepared"}
        c.start_all()
        wait_services_agree(c)
        status, tx = c.tx_status(txid)
        assert status == 200 and tx["outcome"] == "aborted", (status, tx)
        assert c.balances("bank-a") == c.seed("bank-a") and c.balances("bank-b") == c.seed("bank-b")


def test_offline_recover_commits_undelivered_decisions():
    # The coordinator makes commit decisions durable but never delivers them,
    # so both banks hold every committed transfer prepared when all crash.
    env = {"COMMITD_FAILPOINTS": "coordinator.skip_commit_delivery"}
    with Cluster(coordinator_env=env) as c:
        first = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 30, timeout_ms=60000), 200, "transfer")
        second = expect_status(c.transfer("bank-a", "carol", "bank-b", "dave", 20, timeout_ms=60000), 200, "transfer")
        c.kill9_all()
        # Someone changes dave behind bank-b's back: that changeset no longer applies.
        conn = sqlite3.connect(c.bank("bank-b").db)
        conn.execute("UPDATE accounts SET balance = 999 WHERE id = 'dave'")
        conn.commit()
        conn.close()

        rc, out, err = ctl("recover", "--data-dir", c.data_dir, *db_flags(c), "--apply", "--json")
        assert rc == 1, f"a conflict is left in doubt: exit {rc}, want 1\n{out}\n{err}"
        results = {(s["txid"], s["database"]): s for s in json.loads(out)["steps"]}
        a_db, b_db = c.bank("bank-a").db, c.bank("bank-b").db
        assert all(s["action"] == "commit" for s in results.values()), results
        assert results[(first["txid"], a_db)]["result"] == "committed"
        assert results[(first["txid"], b_db)]["result"] == "committed"
        assert results[(second["txid"], a_db)]["result"] == "committed"
        assert results[(second["txid"], b_db)]["result"].startswith("conflict"), results
        assert c.balances("bank-a")["alice"] == 70 and c.balances("bank-b")["bob"] == 80
        assert harness.prepared_in_db(a_db) == {}
        assert harness.prepared_in_db(b_db) == {second["txid"]: "conflict"}

        rc, out, err = ctl("inspect", "--participant-db", b_db)
        assert rc == 1 and "conflict" in out and second["txid"] in out, (rc, out, err)

        # Restarted without the failpoint, commitd redelivers both decisions:
        # the first is acknowledged from the remembered outcomes, the second
        # stays in doubt on bank-b with the conflict as its reason.
        c.coordinator.env = {}
        c.start_all()

        def first_finished():
            status, tx = c.tx_status(first["txid"])
            assert status == 200 and tx["state"] == "finished", tx
            return True
        eventually(first_finished, 30, what="the first transfer finished")
        rc, out, err = ctl("--coordinator", c.url, "in-doubt", *participant_flags(c))
        assert rc == 1 and second["txid"] in out and "conflict" in out, (rc, out, err)
        assert c.balances("bank-b")["bob"] == 80, "a redelivered commit was applied twice"


def test_recover_refuses_3pc_records_without_a_decision():
    with Cluster() as c:
        c.stop()
        # A precommitted 3PC record whose coordinator log knows nothing of it.
        conn = sqlite3.connect(c.bank("bank-a").db)
        conn.execute("INSERT INTO _commitd_prepared(txid, protocol, state, changeset, lock_keys, coordinator, "
                     "participants, created_ms, deadline_ms) VALUES ('three-1', '3pc', 'precommitted', x'', '[]', "
                     "?, '[]', 1, 2)", (c.url,))
        conn.commit()
        conn.close()
        rc, out, err = ctl("recover", "--data-dir", c.data_dir, *db_flags(c), "--apply")
        assert rc == 1 and "three-1" in out and "3PC: precommitted here" in out, (rc, out, err)
        assert harness.prepared_in_db(c.bank("bank-a").db) == {"three-1": "precommitted"}


def test_crash_then_normal_restarts_clear_in_doubt():
    with Cluster() as c:
        prepare_by_hand(c, "by-hand-2", "bank-b", credit_ops("heidi", 3), c.url)
        crash_under_load(c)
        held = {name: harness.prepared_in_db(b.db) for name, b in c.banks.items()}
        harness.log(f"prepared after the crash: {held}")
        assert "by-hand-2" in held["bank-b"], held
        c.start_all()

        def no_doubt():
            rc, out, err = ctl("--coordinator", c.url, "in-doubt", *participant_flags(c))
            assert rc == 0, f"in-doubt exit {rc}\n{out}\n{err}"
            return True
        eventually(no_doubt, 60, interval=0.5, what="commitctl in-doubt reaching zero")
        wait_services_agree(c)
        assert_consistent(c)
        assert not c.journal("bank-b", "by-hand-2"), "a transaction without a decision committed"


def test_force_decision():
    with Cluster() as c:
        known = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 10), 200, "transfer")["txid"]
        coordinator = ["--coordinator", c.url]

        # Contradicting a known decision is refused; repeating it is a no-op.
        rc, out, err = ctl(*coordinator, "resolve", known, "--force", "abort", "--yes")
        assert rc == 1 and "committed" in err and "refusing" in err, (rc, out, err)
        rc, out, err = ctl(*coordinator, "resolve", known, "--force", "commit", "--yes")
        assert rc == 0 and "nothing to force" in out, (rc, out, err)
        rc, out, err = ctl(*coordinator, "resolve", known, "--force", "maybe")
        assert rc == 2, (rc, out, err)

        # A transaction the coordinator does not know (its log was lost):
        # both banks hold it prepared, the coordinator answers 404.
        txid = "lost-log-1"
        prepare_by_hand(c, txid, "bank-a", harness.debit_ops("grace", 5), c.url)
        prepare_by_hand(c, txid, "bank-b", credit_ops("heidi", 5), c.url)
        status, _ = c.tx_status(txid)
        assert status == 404, status

        rc, out, err = ctl(*coordinator, "resolve", txid, "--force", "commit")
        assert rc == 2, f"without --yes: exit {rc}, want 2\n{out}\n{err}"
        assert "plan" in out and "bank-a" in out and "bank-b" in out and "--yes" in out, out
        assert "presumed abort" in out, out
        assert set(harness.held(c.bank("bank-a").url)) == {txid}
        assert set(harness.held(c.bank("bank-b").url)) == {txid}
        assert c.tx_status(txid)[0] == 404, "the plan alone recorded a decision"

        rc, out, err = ctl(*coordinator, "resolve", txid, "--force", "commit", "--yes", "--json")
        assert rc == 0, f"--force commit --yes: exit {rc}\n{out}\n{err}"
        result = json.loads(out)
        assert result["forced"] is True and result["finished"] is True, result
        assert c.balances("bank-a")["grace"] == 95 and c.balances("bank-b")["heidi"] == 55
        assert c.journal("bank-a", txid) == [(txid, "grace", -5)]
        assert c.journal("bank-b", txid) == [(txid, "heidi", 5)]
        c.eventually_nothing_prepared()

        rc, out, err = ctl(*coordinator, "tx", "show", txid, "--json")
        shown = json.loads(out)
        assert shown["heuristic"] is True and shown["outcome"] == "committed", shown
        assert harness.metrics(c.url)["commitd_transactions_heuristic_total"] == 1

        # The heuristic decision now stands like any other.
        rc, out, err = ctl(*coordinator, "resolve", txid, "--force", "abort", "--yes")
        assert rc == 1 and "refusing" in err, (rc, out, err)

        # And survives a restart, still marked.
        c.coordinator.terminate()
        c.start_coordinator()
        rc, out, err = ctl(*coordinator, "tx", "show", txid)
        assert rc == 0 and "committed" in out and "HEURISTIC" in out, (rc, out, err)
        assert json.loads(ctl(*coordinator, "tx", "show", txid, "--json")[1])["heuristic"] is True
        assert harness.metrics(c.url)["commitd_transactions_heuristic_total"] == 1


def test_force_asks_every_participant_the_records_name_unless_skipped():
    with Cluster() as c:
        coordinator = ["--coordinator", c.url]
        # Prepared by hand at both banks, whose records name a third
        # participant that is gone for good (nothing listens at its URL).
        txid = "lost-log-2"
        dead = {"name": "bank-z", "url": f"http://127.0.0.1:{harness.free_port()}"}
        participants = [{"name": n, "url": b.url} for n, b in c.banks.items()] + [dead]
        for bank, ops in (("bank-a", harness.debit_ops("grace", 5)), ("bank-b", credit_ops("heidi", 5))):
            status, vote = harness.agent_prepare(c.bank(bank).url, txid, ops, participant=bank, coordinator=c.url,
                                                 participants=participants)
            assert status == 200 and vote["vote"] == "yes", (status, vote)

        # bank-z cannot adopt it: nothing is recorded.
        rc, out, err = ctl(*coordinator, "resolve", txid, "--force", "abort", "--yes")
        assert rc == 1 and "bank-z did not answer" in err and "skip_participants" in err, (rc, out, err)
        assert c.tx_status(txid)[0] == 404, "a force that a participant did not adopt was recorded"
        assert set(harness.held(c.bank("bank-a").url)) == {txid}

        rc, out, err = ctl(*coordinator, "resolve", txid, "--force", "abort", "--skip-participants", "bank-z")
        assert rc == 2 and "bank-z" in out and "gone for good" in out, (rc, out, err)
        rc, out, err = ctl(*coordinator, "resolve", txid, "--force", "abort", "--skip-participants", "bank-z,",
                           "--yes")
        assert rc == 2 and "--skip-participants" in err, (rc, out, err)
        rc, out, err = ctl(*coordinator, "resolve", txid, "--force", "abort", "--skip-participants", "bank-z",
                           "--yes", "--json")
        assert rc == 0, f"exit {rc}\n{out}\n{err}"
        result = json.loads(out)
        assert result["forced"] is True and result["finished"] is True, result
        c.eventually_nothing_prepared()
        assert c.balances("bank-a")["grace"] == 100 and c.balances("bank-b")["heidi"] == 50
        shown = json.loads(ctl(*coordinator, "tx", "show", txid, "--json")[1])
        assert shown["outcome"] == "aborted" and shown["heuristic"] is True, shown
        assert sorted(b["participant"] for b in shown["branches"]) == ["bank-a", "bank-b"], shown


def test_offline_commands_refuse_beside_live_services():
    with Cluster() as c:
        expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 10), 200, "transfer")
        prepare_by_hand(c, "held-1", "bank-a", harness.debit_ops("grace", 1), c.url)
        a_db = c.bank("bank-a").db
        for args in (["inspect", "--participant-db", a_db],
                     ["inspect", "--data-dir", c.data_dir],
                     ["log", "dump", "--data-dir", c.data_dir],
                     ["recover", "--data-dir", c.data_dir, *db_flags(c), "--apply"]):
            rc, out, err = ctl(*args)
            assert rc == 1, f"{args}: exit {rc}, want 1\n{out}\n{err}"
            assert "in use" in err and "stop it first" in err, (args, err)
        assert harness.prepared_in_db(a_db) == {"held-1": "prepared"}, "recover changed a live agent's file"

        # Stopped, the same files can be read.
        c.agent("bank-a").terminate()
        rc, out, err = ctl("inspect", "--participant-db", a_db)
        assert rc == 1 and "held-1" in out and "1 prepared" in out, (rc, out, err)
        rc, out, err = ctl("inspect", "--data-dir", c.data_dir)
        assert rc == 1 and "in use" in err, "the coordinator still runs"
        c.coordinator.terminate()
        rc, out, err = ctl("inspect", "--data-dir", c.data_dir, "--json")
        assert rc == 0, (rc, out, err)
        log = json.loads(out)["decision_log"]
        assert log["committed"] == 1 and log["unfinished"] == [] and len(log["registry"]) == 2, log



def test_force_commit_refused_once_a_participant_was_told_presumed_abort():
    # Regression (review): bank-a asks about a txid the coordinator never knew
    # and aborts on "presumed abort"; bank-b ignores decisions and still holds
    # it. A forced commit must not commit bank-b alone: the coordinator now
    # records the abort it answered, and the force is refused.
    with Cluster(agent_env={"bank-b": {"COMMITD_FAILPOINTS": "agent.ignore_decisions"}}) as c:
        coordinator = ["--coordinator", c.url]
        txid = "lost-log-2"
        prepare_by_hand(c, txid, "bank-a", harness.debit_ops("grace", 5), c.url, timeout_ms=300)
        prepare_by_hand(c, txid, "bank-b", credit_ops("heidi", 5), c.url, timeout_ms=300)
        eventually(lambda: txid not in harness.held(c.bank("bank-a").url) or None, 20,
                   what="bank-a resolved the in-doubt record by asking the coordinator")
        status, tx = c.tx_status(txid)
        assert status == 200 and tx["outcome"] == "aborted" and "presumed abort" in tx.get("reason", ""), (status, tx)
        rc, out, err = ctl(*coordinator, "resolve", txid, "--force", "commit", "--yes")
        assert rc == 1, (rc, out, err)
        assert c.balances("bank-a")["grace"] == 100 and c.balances("bank-b")["heidi"] == 50
        assert c.journal("bank-b", txid) == []


def test_recover_refuses_presumed_abort_against_evidence_of_commit():
    # Regression (review): a record in state conflict (a commit was delivered)
    # with no decision in the given log must be left in place, not discarded.
    with Cluster(coordinator_env={"COMMITD_FAILPOINTS": "coordinator.skip_commit_delivery"}) as c:
        txid = expect_status(c.transfer("bank-a", "alice", "bank-b", "bob", 10, timeout_ms=60000), 200,
                             "transfer")["txid"]
        c.kill9_all()
        b_db = c.bank("bank-b").db
        conn = sqlite3.connect(b_db)
        conn.execute("UPDATE accounts SET balance = balance + 1 WHERE id = 'bob'")  # behind the agent's back
        conn.commit()
        conn.close()
        rc, out, err = ctl("recover", "--data-dir", c.data_dir, *db_flags(c), "--apply")
        assert rc == 1, (rc, out, err)  # bank-b: conflict
        # Now the log "loses" the decision (a stale backup, say).
        conn = sqlite3.connect(os.path.join(c.data_dir, "decisions.db"))
        conn.execute("DELETE FROM decisions WHERE txid = ?", (txid,))
        conn.commit()
        conn.close()
        rc, out, err = ctl("recover", "--data-dir", c.data_dir, *db_flags(c), "--apply", "--json")
        assert rc == 1, (rc, out, err)
        assert out.strip(), (rc, out, err)
        steps = json.loads(out)["steps"]
        assert [s["action"] for s in steps] == ["refuse"], steps
        assert txid in harness.prepared_in_db(b_db), "the conflicting record was discarded"


def test_recover_presumes_abort_only_for_its_own_coordinator():
    # Regression (review): a record naming another coordinator must not be
    # discarded on this log's silence; this coordinator records its own URL.
    with Cluster() as c:
        prepare_by_hand(c, "mine-1", "bank-a", harness.debit_ops("grace", 1), c.url)
        prepare_by_hand(c, "theirs-1", "bank-b", credit_ops("heidi", 1), "http://127.0.0.1:1")
        c.kill9_all()
        rc, out, err = ctl("recover", "--data-dir", c.data_dir, *db_flags(c), "--apply", "--json")
        assert rc == 1 and out.strip(), (rc, out, err)
        actions = {s["txid"]: s["action"] for s in json.loads(out)["steps"]}
        assert actions == {"mine-1": "abort", "theirs-1": "refuse"}, actions
        assert "theirs-1" in harness.prepared_in_db(c.bank("bank-b").db)
        assert "mine-1" not in harness.prepared_in_db(c.bank("bank-a").db)


def test_a_participant_that_aborted_a_committed_transaction_is_closed_by_an_operator():
    # The commit is decided and not delivered; bank-b is then aborted with the
    # coordinator's real abort key (as a buggy or compromised holder of the
    # key would). The restarted coordinator delivers the commit: bank-a
    # applies it, bank-b answers it had aborted. That contradiction is not
    # sent again; it waits for an operator, who reconciles and closes it.
    with Cluster(coordinator_env={"COMMITD_FAILPOINTS": "coordinator.skip_commit_delivery"}) as c:
        status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 30, timeout_ms=15000)
        assert status == 200 and reply["outcome"] == "committed", reply
        txid = reply["txid"]
        eventually(lambda: harness.recorded_outcome(c, txid) == "committed", timeout=10, what="the commit record")
        _, abort_key, _ = harness.decision_log_keys(c.data_dir, txid)
        status, body = harness.agent_abort(c.bank("bank-b").url, txid, abort_key=abort_key)
        assert status == 200 and body["state"] == "aborted", (status, body)
        c.coordinator.kill9()
        c.coordinator.start(env={})
        c.wait_coordinator()

        def contradicted():
            status, tx = c.tx_status(txid)
            assert status == 200 and tx["state"] == "contradicted", (status, tx)
            return tx
        tx = eventually(contradicted, timeout=20, what="the commit contradicted by bank-b")
        branches = {b["participant"]: b for b in tx["branches"]}
        assert tx["outcome"] == "committed", tx
        assert branches["bank-a"]["state"] == "committed", tx
        assert branches["bank-b"]["state"] == "aborted" and "reconcile" in branches["bank-b"]["last_error"], tx
        c.eventually_balance("bank-a", "alice", c.seed("bank-a")["alice"] - 30)
        assert c.balances("bank-b") == c.seed("bank-b")
        values = harness.metrics(c.url)
        assert values['commitd_transactions_in_doubt{kind="contradicted"}'] == 1, values
        assert values["commitd_decisions_contradicted_total"] == 1, values

        # Never sent again, retry-now included.
        attempts = branches["bank-b"]["attempts"]
        rc, out, err = ctl("--coordinator", c.url, "retry-now")
        assert rc == 0, (out, err)
        time.sleep(1.0)
        status, tx = c.tx_status(txid)
        assert {b["participant"]: b for b in tx["branches"]}["bank-b"]["attempts"] == attempts, tx

        rc, out, err = ctl("--coordinator", c.url, "status")
        assert rc == 1 and "commitctl close TXID --yes" in out, (rc, out, err)
        rc, out, err = ctl("--coordinator", c.url, "status", "--json")
        assert rc == 1 and json.loads(out)["contradicted"] == 1, (rc, out, err)
        for command in (["tx", "show", txid], ["resolve", txid, "--wait-s", "30"]):
            started = time.monotonic()
            rc, out, err = ctl("--coordinator", c.url, *command)
            assert f"commitctl close {txid} --yes" in out, (command, rc, out, err)
            assert time.monotonic() - started < 10, "resolve waited for a transaction no retry ends"
        assert rc == 1, (rc, out, err)
        rc, out, err = ctl("--coordinator", c.url, "close", txid)
        assert rc == 2 and "nothing changed" in out and "the data disagrees" in out, (rc, out, err)
        assert c.tx_status(txid)[1]["state"] == "contradicted"

        # The operator reconciled bank-b by hand (here: bob is credited directly).
        conn = sqlite3.connect(c.bank("bank-b").db, timeout=10)
        conn.execute("UPDATE accounts SET balance = balance + 30 WHERE id = 'bob'")
        conn.commit()
        conn.close()
        rc, out, err = ctl("--coordinator", c.url, "close", txid, "--yes")
        assert rc == 0 and "closed" in out, (rc, out, err)
        status, tx = c.tx_status(txid)
        assert status == 200 and tx["state"] == "finished" and tx["outcome"] == "committed", tx
        assert harness.metrics(c.url)['commitd_transactions_in_doubt{kind="contradicted"}'] == 0
        rc, out, err = ctl("--coordinator", c.url, "close", txid, "--yes")
        assert rc == 1 and "finished" in err, (rc, out, err)

        # Closed for good: a restart does not deliver it again.
        c.coordinator.kill9()
        c.coordinator.start(env={})
        c.wait_coordinator()
        status, tx = c.tx_status(txid)
        assert status == 200 and tx["state"] == "finished", tx
        rc, out, err = ctl("--coordinator", c.url, "status")
        assert rc == 0, (rc, out, err)


if __name__ == "__main__":
    harness.main(globals())
