#!/usr/bin/env python3
"""Takes docs/images/dashboard.png: the coordinator's dashboard (/ui/) while
transfers run, with one transaction left in doubt.

  scripts/dashboard_screenshot.py [--bin-dir build/release/bin] [--out docs/images/dashboard.png]
                                  [--clients 4] [--chart-s 90]

Starts bank-a and bank-b (64 accounts each), bank-c (which votes but refuses
every decision, failpoint agent.ignore_decisions) and one commitd, all on
127.0.0.1 through tests/integration/harness.py; commits one transfer between
bank-c and bank-a (it stays in doubt: bank-c never acknowledges the commit);
runs `commitd-bench transfers` between bank-a and bank-b in the background;
once the page shows a committed rate and --chart-s seconds of charts (they
span 5 minutes), screenshots it in headless Chromium, then stops the load.
Needs chromium.
"""

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402
import headless_chromium  # noqa: E402

ACCOUNTS = 64


def seed_file(directory, name):
    path = os.path.join(directory, f"seed-{name}.sql")
    with open(path, "w") as f:
        f.writelines(f"INSERT INTO accounts VALUES('acct{i}', 1000000000);\n" for i in range(ACCOUNTS))
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "release", "bin"))
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "images", "dashboard.png"))
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--chart-s", type=int, default=90)
    args = parser.parse_args()
    harness.OPTIONS.bin_dir = os.path.abspath(args.bin_dir)
    harness.OPTIONS.source_dir = ROOT
    if headless_chromium.find_chromium() is None:
        sys.exit("chromium is not installed (apt-get install chromium)")

    c = harness.Cluster(start=False, agent_env={"bank-c": {"COMMITD_FAILPOINTS": "agent.ignore_decisions"}})
    c.bank_seeds = {"bank-a": seed_file(c.dir, "bank-a"), "bank-b": seed_file(c.dir, "bank-b"),
                    "bank-c": "seed-a.sql"}
    c.start()
    with c, headless_chromium.HeadlessChromium(c.dir) as browser:
        in_doubt = harness.post(c.url, "/v1/transactions", harness.transfer_body(
            "bank-c", "alice", "bank-a", "acct0", 10, timeout_ms=600000))
        assert in_doubt[0] == 200, in_doubt
        txid = in_doubt[1]["txid"]
        harness.log(f"left in doubt: {txid}")

        bench = subprocess.Popen(
            [harness.bin_path("commitd-bench"), "transfers", "--coordinator", c.url,
             "--clients", str(args.clients), "--duration-s", str(args.chart_s + 20), "--warmup-s", "1",
             "--accounts", str(ACCOUNTS)],
            stdout=subprocess.PIPE, stderr=open(os.path.join(c.dir, "bench.log"), "w"), text=True)
        try:
            page = browser.new_page(1400, 1100)
            page.navigate(c.url + "/ui/")
            page.wait_for("document.body.dataset.loaded === 'true'", what="first refresh")
            rate = page.wait_for(
                "(t => parseFloat(t) > 0 ? t : '')(document.querySelector('[data-stat=\"committed_per_s\"]').textContent)",
                timeout=60, what="a committed rate above 0")
            page.wait_for(f"document.querySelector('#in-doubt tr[data-txid=\"{txid}\"]')", what="the in-doubt row")
            time.sleep(args.chart_s)
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            page.screenshot(args.out)
            harness.log(f"{args.out}: the page showed {rate} committed/s, {txid} in doubt")
        finally:
            out, _ = bench.communicate(timeout=args.chart_s + 90)
            harness.log("commitd-bench: " + out.strip().replace("\n", " | ")[:500])


if __name__ == "__main__":
    main()
