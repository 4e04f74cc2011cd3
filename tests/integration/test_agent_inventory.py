"""examples/inventory end to end: a C++ service that embeds the agent (its
routes mounted in the service's own server, a C++ "reserve" procedure) takes
part in transactions with the bank example through commitd, and its own read
API (GET /stock/{sku}, a separate read-only connection) shows committed data
only.
"""

import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, eventually, expect_status, get, held, reason_of  # noqa: E402

FAILPOINTS = "COMMITD_FAILPOINTS"


def start_inventory(c):
    """Starts inventory-service over a seeded database, registered with c's coordinator."""
    db = os.path.join(c.dir, "inventory.db")
    conn = sqlite3.connect(db)
    for name in ("schema.sql", "seed.sql"):
        with open(harness.source_path("examples", "inventory", name)) as f:
            conn.executescript(f.read())
    conn.commit()
    conn.close()
    port = harness.free_port()
    argv = [harness.bin_path("inventory-service"), "--listen", f"127.0.0.1:{port}", "--db", db,
            "--coordinator", c.coord_url, "--config", c.config_path]
    proc = harness.Process("inventory", argv, os.path.join(c.dir, "inventory.log"), f"http://127.0.0.1:{port}")
    c.inventory = proc
    c.inventory_db = db
    proc.start().wait_healthy()

    def registered():
        status, body = c.get("/v1/participants")
        assert status == 200, body
        return any(p.get("name") == "inventory" for p in body.get("participants", []))
    eventually(registered, what="inventory registered with the coordinator")
    return proc


def stock(c, sku):
    status, body = get(c.inventory.url, f"/stock/{sku}")
    assert status == 200, (status, body)
    return body["quantity"]


def order(c, account, amount, sku, quantity, **kw):
    """bank-a debit + inventory reserve, one transaction."""
    body = {"branches": [
        {"participant": "bank-a", "ops": harness.debit_ops(account, amount)},
        {"participant": "inventory", "ops": [{"procedure": "reserve", "args": {"sku": sku, "quantity": quantity}}]}]}
    body.update(kw)
    return c.post("/v1/transactions", body)


def test_inventory_service_takes_part_in_transactions():
    with Cluster(banks={"bank-a": "seed-a.sql"}) as c:
        inv = start_inventory(c)
        try:
            status, catalog = get(inv.url, "/v1/procedures")
            assert status == 200 and catalog["procedures"] == ["reserve", "restock"], catalog
            assert stock(c, "widget") == 10

            # Commit: both sides apply.
            ok = expect_status(order(c, "alice", 30, "widget", 3), 200, "order")
            assert ok["outcome"] == "committed", ok
            inv_branch = [b for b in ok["branches"] if b["participant"] == "inventory"][0]
            assert inv_branch["results"] == [[{"sku": "widget", "reserved": 3, "remaining": 7}]], inv_branch
            eventually(lambda: stock(c, "widget") == 7, what="widget == 7")
            c.eventually_balance("bank-a", "alice", 70)
            rows = harness._read(c.inventory_db, "SELECT txid, sku, delta FROM stock_journal")
            assert rows == [(ok["txid"], "widget", -3)], rows

            # The procedure votes no: nothing changes anywhere.
            no = expect_status(order(c, "alice", 10, "widget", 100), 409, "too many")
            assert "inventory" in reason_of(no) and "insufficient stock of 'widget': 7 left" in reason_of(no), no
            no = expect_status(order(c, "alice", 10, "nothing", 1), 409, "unknown sku")
            assert "unknown sku 'nothing'" in reason_of(no), no
            # The bank votes no: the reservation is undone.
            no = expect_status(order(c, "alice", 1000, "widget", 1), 409, "overdraft")
            assert "bank-a" in reason_of(no), no
            c.eventually_nothing_prepared()
            eventually(lambda: held(inv) == {}, what="nothing prepared on inventory")
            assert stock(c, "widget") == 7 and c.balances("bank-a")["alice"] == 70

            # An unknown procedure is refused before anything is prepared.
            status, body = c.post("/v1/transactions", {"branches": [
                {"participant": "inventory", "ops": [{"procedure": "steal", "args": {}}]}]})
            assert status == 400, (status, body)

            # Committed data only: decided but not delivered, the read API shows the old value.
            c.coordinator.kill9()
            c.coordinator.start(env={FAILPOINTS: "coordinator.skip_commit_delivery"})
            c.wait_coordinator()
            held_back = expect_status(order(c, "carol", 5, "gadget", 2, timeout_ms=15000), 200, "held back")
            txid = held_back["txid"]
            assert txid in held(inv), held(inv)
            assert stock(c, "gadget") == 5
            status, listing = get(inv.url, "/stock")
            assert {"sku": "gadget", "quantity": 5} in listing["stock"], listing
            c.coordinator.kill9()
            c.coordinator.start(env={})
            c.wait_coordinator()
            eventually(lambda: stock(c, "gadget") == 3, what="gadget == 3 after delivery")
            c.eventually_balance("bank-a", "carol", 95)
            eventually(lambda: held(inv) == {}, what="nothing prepared on inventory")

            metrics = harness.metrics(inv.url)
            assert metrics["commitd_agent_commits_total"] >= 2, metrics
            assert inv.terminate() == 0, "inventory-service did not exit cleanly on SIGTERM"
        except BaseException:
            print(harness.tail(inv.log_path, 60))
            raise
        finally:
            harness.stop_all([inv])


if __name__ == "__main__":
    harness.main(globals())
