"""Many concurrent transfers in both directions between two banks, with some
overdrafts: afterwards every transaction is all-or-nothing on both sides and
money is conserved.

Default 400 transfers from 16 threads; COMMITD_SOAK=1 raises that to 4000
(and stops issuing new ones after 150 s, so the test stays within its ctest
timeout).
"""

import collections
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, eventually  # noqa: E402

THREADS = 16
TOTAL = 4000 if harness.soak() else 400
ISSUE_FOR_S = 150 if harness.soak() else 120
OVERDRAFT = 1_000_000  # more than all the money there is

CONFIG = {
    "request_timeout_ms": 5000,
    "default_tx_timeout_ms": 5000,
    "retry_initial_ms": 20,
    "retry_max_ms": 200,
    "resolve_initial_ms": 50,
    "resolve_max_ms": 300,
}


def run_transfers(c, total, threads, seed):
    accounts = {name: sorted(c.seed(name)) for name in c.banks}
    banks = sorted(c.banks)
    results = []            # (status, body, transfer)
    errors = []
    lock = threading.Lock()
    next_index = [0]
    stop_at = time.monotonic() + ISSUE_FOR_S

    def worker(wid):
        rng = random.Random(seed * 1000 + wid)
        while True:
            with lock:
                if next_index[0] >= total or time.monotonic() > stop_at:
                    return
                next_index[0] += 1
            src_bank, dst_bank = rng.sample(banks, 2)
            src = rng.choice(accounts[src_bank])
            dst = rng.choice(accounts[dst_bank])
            amount = OVERDRAFT if rng.random() < 0.1 else rng.randint(1, 40)
            t = {"src_bank": src_bank, "src": src, "dst_bank": dst_bank, "dst": dst, "amount": amount}
            try:
                status, body = c.transfer(src_bank, src, dst_bank, dst, amount, http_timeout=60.0)
            except Exception as e:  # noqa: BLE001 - recorded and failed below
                with lock:
                    errors.append(f"{t}: {type(e).__name__}: {e}")
                continue
            with lock:
                results.append((status, body, t))

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=ISSUE_FOR_S + 120)
    assert not any(w.is_alive() for w in workers), "client threads did not finish"
    return results, errors


def test_concurrent_transfers_are_atomic_and_conserve_money():
    seed = int(os.environ.get("COMMITD_TEST_SEED", "0")) or random.randrange(1, 1 << 30)
    harness.log(f"seed {seed} (rerun with COMMITD_TEST_SEED={seed}); {TOTAL} transfers, {THREADS} threads")
    with Cluster(config=CONFIG) as c:
        t0 = time.monotonic()
        results, errors = run_transfers(c, TOTAL, THREADS, seed)
        elapsed = time.monotonic() - t0
        assert not errors, f"{len(errors)} requests failed, e.g.:\n  " + "\n  ".join(errors[:10])

        by_status = collections.Counter(status for status, _, _ in results)
        harness.log(f"{len(results)} answers in {elapsed:.1f}s: {dict(by_status)}")
        unexpected = [(s, b) for s, b, _ in results if s not in (200, 409, 429)]
        assert not unexpected, f"unexpected answers: {unexpected[:10]}"

        committed, aborted = {}, {}
        for status, body, t in results:
            if status == 200:
                assert body.get("outcome") == "committed" and body.get("txid"), body
                committed[body["txid"]] = t
            elif status == 409:
                assert body.get("outcome") == "aborted" and body.get("txid"), body
                aborted[body["txid"]] = t
        assert committed, "no transfer committed"
        assert len(committed) + len(aborted) == by_status[200] + by_status[409], "a txid was reused"
        assert not set(committed) & set(aborted)
        overdrafts_committed = [t for t in committed.values() if t["amount"] == OVERDRAFT]
        assert not overdrafts_committed, f"overdrafts committed: {overdrafts_committed}"
        reasons = collections.Counter(
            ("overdraft" if t["amount"] == OVERDRAFT else "other") for t in aborted.values())
        harness.log(f"committed {len(committed)}, aborted {len(aborted)} ({dict(reasons)})")

        # Let every decision reach every agent.
        c.eventually_nothing_prepared(timeout=90)

        journals = {name: c.journal(name) for name in c.banks}
        rows = {name: collections.defaultdict(list) for name in c.banks}
        for name, entries in journals.items():
            for txid, account, delta in entries:
                rows[name][txid].append((account, delta))

        # Every committed transfer: exactly its two rows, one on each side.
        problems = []
        for txid, t in committed.items():
            src_rows = rows[t["src_bank"]].get(txid, [])
            dst_rows = rows[t["dst_bank"]].get(txid, [])
            if src_rows != [(t["src"], -t["amount"])] or dst_rows != [(t["dst"], t["amount"])]:
                problems.append(f"committed {txid} {t}: {t['src_bank']} rows {src_rows}, "
                                f"{t['dst_bank']} rows {dst_rows}")
        # Every aborted transfer: no row anywhere.
        for txid, t in aborted.items():
            for name in c.banks:
                if txid in rows[name]:
                    problems.append(f"aborted {txid} {t} has rows on {name}: {rows[name][txid]}")
        # No row of a transaction the clients did not see commit.
        for name in c.banks:
            stray = set(rows[name]) - set(committed)
            if stray:
                problems.append(f"{name} has journal rows of unknown transactions: {sorted(stray)[:10]}")
        assert not problems, f"{len(problems)} atomicity problems:\n  " + "\n  ".join(problems[:20])

        # Balances agree with the journal, and money is conserved.
        total_before = total_after = 0
        for name in c.banks:
            seed_bal = c.seed(name)
            final = c.balances(name)
            assert set(final) == set(seed_bal), (name, final)
            sums = collections.Counter()
            for _, account, delta in journals[name]:
                sums[account] += delta
            for account, start in seed_bal.items():
                assert final[account] == start + sums[account], \
                    f"{name}.{account}: {final[account]} != seed {start} + journal {sums[account]}"
                assert final[account] >= 0
            total_before += sum(seed_bal.values())
            total_after += sum(final.values())
        assert total_after == total_before, f"money not conserved: {total_before} -> {total_after}"

        # The coordinator agrees about a sample of outcomes.
        rng = random.Random(seed)
        sample = rng.sample(sorted(committed), min(10, len(committed))) + \
            rng.sample(sorted(aborted), min(10, len(aborted)))
        for txid in sample:
            want = "committed" if txid in committed else "aborted"
            status, tx = c.tx_status(txid)
            assert status == 200 and tx.get("outcome") == want, (txid, want, status, tx)

        # Still healthy afterwards.
        for p in c.processes():
            assert p.alive(), f"{p.name} died"
        eventually(lambda: c.get("/healthz")[0] == 200, 10, what="coordinator healthy")


if __name__ == "__main__":
    harness.main(globals())
