"""commitctl against a PostgreSQL participant (bank-b, commit-agent
--backend postgres): `in-doubt` lists what it holds prepared, `resolve`
pushes it to its end, and offline `recover --participant-dsn` settles its
prepared transactions from a stopped coordinator's decision log with
COMMIT PREPARED / ROLLBACK PREPARED."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pg_cluster  # noqa: E402
from harness import ctl, eventually, participant_flags  # noqa: E402
from pg_cluster import PgCluster, PgServer  # noqa: E402

SKIP_DELIVERY = {"COMMITD_FAILPOINTS": "coordinator.skip_commit_delivery"}




def test_in_doubt_and_resolve():
    with PgServer() as pg, PgCluster(pg, coordinator_env=SKIP_DELIVERY) as c:
        status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 30, timeout_ms=60000)
        assert status == 200 and body["outcome"] == "committed", (status, body)
        txid = body["txid"]
        assert pg.prepared_gids("bank-b") == [f"commitd:bank-b:{txid}"]
        rc, out, err = ctl("--coordinator", c.url, "in-doubt", *participant_flags(c), "--json")
        assert rc == 1, (rc, out, err)
        rows = json.loads(out)
        assert txid in json.dumps(rows) and "bank-b" in json.dumps(rows), rows
        # The coordinator, restarted without the failpoint, delivers when asked to.
        c.coordinator.terminate()
        c.coordinator.env = {}
        c.start_coordinator()
        rc, out, err = ctl("--coordinator", c.url, "resolve", txid, "--wait-s", "30")
        assert rc == 0, (rc, out, err)
        eventually(lambda: pg.prepared_gids("bank-b") == [], what="bank-b committed")
        assert c.journal("bank-b", txid) == [(txid, "bob", 30)]
        assert c.balances("bank-b")["bob"] == 80

        def no_doubt():
            rc, out, err = ctl("--coordinator", c.url, "in-doubt", *participant_flags(c))
            assert rc == 0, (rc, out, err)
            return True
        eventually(no_doubt, 30, what="in-doubt reaching zero")


def test_offline_recover_with_participant_dsn():
    with PgServer() as pg, PgCluster(pg, coordinator_env=SKIP_DELIVERY) as c:
        committed = []
        for src, dst in (("alice", "bob"), ("carol", "dave")):
            status, body = c.transfer("bank-a", src, "bank-b", dst, 10, timeout_ms=60000)
            assert status == 200, (status, body)
            committed.append(body["txid"])
        # One the coordinator never heard of: presumed abort.
        vote = harness.agent_prepare(c.agent("bank-b"), "by-hand-pg", harness.debit_ops("frank", 5),
                                     participant="bank-b", coordinator=c.url)[1]
        assert vote["vote"] == "yes", vote
        c.kill9_all()
        dsn = pg.dsn("bank-b")
        db_a = c.bank("bank-a").db

        def recover(*extra):
            rc, out, err = ctl("recover", "--data-dir", c.data_dir, "--participant-db", db_a,
                               "--participant-dsn", dsn, *extra, "--json")
            assert "is connected" not in err, err  # the killed agent's sessions are still closing
            return rc, out, err
        rc, out, err = eventually(lambda: recover(), what="recover plan")
        assert rc == 1, (rc, out, err)
        plan = {(s["txid"], s["database"]): s for s in json.loads(out)["steps"]}
        pg_db = "postgres:bank-b/bank-b"
        assert plan[("by-hand-pg", pg_db)]["action"] == "abort", plan
        for txid in committed:
            assert plan[(txid, pg_db)]["action"] == "commit", plan
            assert plan[(txid, db_a)]["action"] == "commit", plan
        assert len(pg.prepared_gids("bank-b")) == 3, "the plan alone changed PostgreSQL"

        rc, out, err = recover("--apply")
        assert rc == 0, (rc, out, err)
        assert all(s["result"] in ("committed", "aborted") for s in json.loads(out)["steps"]), out
        assert pg.prepared_gids() == []
        assert c.balances("bank-b") == {"bob": 60, "dave": 60, "frank": 50, "heidi": 50}
        assert c.journal("bank-b", "by-hand-pg") == []
        rc, out, err = recover("--apply")
        assert rc == 0 and json.loads(out)["steps"] == [], (rc, out, err)

        # Restarted, the agents agree: the coordinator's redeliveries are acknowledged from the outcomes.
        c.coordinator.env = {}
        c.start_all()
        c.eventually_nothing_prepared()
        status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
        assert status == 200, (status, body)
        # A live agent holds the database: recover refuses, changing nothing.
        c.coordinator.terminate()
        rc, out, err = ctl("recover", "--data-dir", c.data_dir, "--participant-dsn", dsn)
        assert rc == 1 and "is connected" in err, (rc, out, err)


if __name__ == "__main__":
    if not pg_cluster.available():
        print("SKIP: PostgreSQL binaries not found in " + pg_cluster.PG_BIN + " (install postgresql)")
        sys.exit(77)
    harness.main(globals())
