"""The dashboard at /ui/ in headless Chromium (DevTools protocol over a pipe,
headless_chromium.py) against a coordinator and two agents with --auth-file:
the page asks for a token, shows the participants and a transaction left in
doubt, hides the resolve action from a read-only token, and resolves the
in-doubt transaction for an admin token (click, confirm) until the
coordinator reports it settled; a 3PC transaction left undecided in doubt is
forced the same way, heuristically; a force dialog whose transaction is
settled meanwhile stops offering the force, and a force the coordinator
refuses (decided meanwhile), does not answer (stopped) or cannot record (its
log fails) is reported as an error, never as done; a transaction a
participant contradicted is offered a close, not a resolve. Screenshots go to the test's output
directory (build/release/test-output/test_dashboard, or $COMMITD_TEST_OUTPUT).

Skipped (exit 77) only when chromium is not installed.

Run one test: python3 test_dashboard.py --bin-dir build/release/bin test_resolve_in_doubt_through_the_page
"""

import json
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, bearer, eventually, expect_status  # noqa: E402
import headless_chromium  # noqa: E402

SKIP = 77

TOKENS = {"client": "client-token-0123456789", "reader": "reader-token-0123456789",
          "admin": "admin-token-0123456789", "bank-a": "bank-a-peer-token-0123456789",
          "bank-b": "bank-b-peer-token-0123456789", "c1": "c1-peer-token-0123456789"}
ROLES = {"client": ["client"], "reader": ["reader"], "admin": ["admin"],
         "bank-a": ["peer"], "bank-b": ["peer"], "c1": ["peer"]}

# Redelivery waits two minutes after a failed one: within the test, only the
# page's resolve action brings the decision to the coordinator's attention again.
CONFIG = dict(harness.FAST_CONFIG, retry_initial_ms=120000, retry_max_ms=120000)


def output_dir():
    out = os.environ.get("COMMITD_TEST_OUTPUT") or os.path.join(
        os.path.dirname(harness.OPTIONS.bin_dir), "test-output", "test_dashboard")
    os.makedirs(out, exist_ok=True)
    return out


def secure_cluster(config=CONFIG, agent_env=None, coordinator_env=None, balance=None):
    """bank-a, bank-b and c1 with --auth-file and their peer tokens; every
    account starts with `balance` if given (else the example's seeds). The
    cluster's shorthands call the coordinator as the client, the agents as c1."""
    c = Cluster(config=config, agent_env=agent_env, coordinator_env=coordinator_env, start=False)
    c.client_headers = bearer(TOKENS["client"])
    c.peer_headers = bearer(TOKENS["c1"])
    if balance is not None:
        for name, accounts in (("bank-a", ("alice", "carol", "erin", "grace")), ("bank-b", ("bob", "dave", "frank", "heidi"))):
            seed = os.path.join(c.dir, f"seed-{name}.sql")
            with open(seed, "w") as f:
                f.writelines(f"INSERT INTO accounts VALUES('{a}', {balance});\n" for a in accounts)
            c.bank_seeds[name] = seed
    auth = os.path.join(c.dir, "auth.json")
    with open(auth, "w") as f:
        json.dump({"tokens": [{"name": n, "token": t, "roles": ROLES[n]} for n, t in TOKENS.items()]}, f)
    token_files = {}
    for name in ("bank-a", "bank-b", "c1"):
        token_files[name] = os.path.join(c.dir, f"{name}.token")
        with open(token_files[name], "w") as f:
            f.write(TOKENS[name] + "\n")
        os.chmod(token_files[name], 0o600)
    c.agent_args = {n: ["--auth-file", auth, "--peer-token-file", token_files[n]] for n in ("bank-a", "bank-b")}
    c.coordinator_args = ["--auth-file", auth, "--peer-token-file", token_files["c1"]]
    try:
        c.start()
    except BaseException:
        c.failed = True
        c.close()
        raise
    return c


def transfer(c, src, dst, amount, **kw):
    return harness.post(c.url, "/v1/transactions", harness.transfer_body("bank-a", src, "bank-b", dst, amount, **kw),
                        headers=bearer(TOKENS["client"]))


def api_get(c, path):
    return harness.request("GET", c.url, path, headers=bearer(TOKENS["reader"]))[:2]


def listed_at_coordinator(c, state):
    status, body = api_get(c, f"/v1/transactions?state={state}")
    assert status == 200, (status, body)
    return [t["txid"] for t in body["transactions"]]


def use_token(page, token):
    page.evaluate(f"document.getElementById('token').value = {json.dumps(token)}")
    page.click("#token-form button[type=submit]")


def sign_in(page, who):
    """Uses the token of `who` ("reader" or "admin") and waits until the page knows what it may do."""
    use_token(page, TOKENS[who])
    access = {"reader": "read-only", "admin": "admin"}[who]
    page.wait_for(f"document.getElementById('access').textContent.includes({json.dumps(access)})",
                  what=f"{access} access")


def signed_in_page(c, browser, who):
    """A new page on the coordinator's dashboard, drawn once, then signed in as `who`."""
    page = browser.new_page(1400, 1100)
    page.navigate(c.url + "/ui/")
    page.wait_for("document.body.dataset.loaded === 'true'", what="first refresh")
    sign_in(page, who)
    return page


def text_of(page, selector):
    return page.evaluate(f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''")


def shown(page, selector):
    return page.evaluate(f"!!document.querySelector({json.dumps(selector)})")


def wait_for_next_refresh(page):
    """Waits until the page has drawn every table once more."""
    drawn = text_of(page, "#updated")
    page.wait_for(f"document.getElementById('updated').textContent !== {json.dumps(drawn)}", what="the next refresh")


def assert_no_script_errors(page):
    errors = page.console_errors()
    assert not errors, f"the page logged errors: {json.dumps(errors)[:2000]}"


def assert_banks_hold_the_commit(c, txid):
    """Both banks applied txid, the 3PC transfer of 30 from alice to bob, and no other transaction."""
    a, b = c.balances("bank-a"), c.balances("bank-b")
    assert (a["alice"], b["bob"]) == (c.seed("bank-a")["alice"] - 30, c.seed("bank-b")["bob"] + 30), (a, b)
    assert sum(a.values()) + sum(b.values()) == sum(c.seed("bank-a").values()) + sum(c.seed("bank-b").values())
    assert c.journal_txids("bank-a") == c.journal_txids("bank-b") == [txid]


# --------------------------------------------------------------------------


def test_resolve_in_doubt_through_the_page():
    out = output_dir()
    # bank-b votes but refuses decisions: the committed transfer stays in doubt there.
    c = secure_cluster(agent_env={"bank-b": {"COMMITD_FAILPOINTS": "agent.ignore_decisions"}})
    with c, headless_chromium.HeadlessChromium(c.dir) as browser:
        # Transactions on bank-a alone (bank-b would keep every one in doubt): one commits, one aborts.
        for ops, status in ((harness.debit_ops("carol", 5), 200), (harness.debit_ops("carol", 1000), 409)):
            expect_status(harness.post(c.url, "/v1/transactions", {"branches": [{"participant": "bank-a", "ops": ops}]},
                                       headers=bearer(TOKENS["client"])), status, "a bank-a transaction")
        body = expect_status(transfer(c, "alice", "bob", 10, timeout_ms=600000), 200, "transfer left in doubt")
        txid = body["txid"]
        eventually(lambda: txid in listed_at_coordinator(c, "in_doubt"), 20, what="the coordinator lists it in doubt")
        assert txid in harness.prepared_in_db(c.bank("bank-b").db)

        page = browser.new_page(1400, 1100)
        page.navigate(c.url + "/ui/")
        # Auth is on and the page has no token yet: it says so.
        page.wait_for("document.body.dataset.loaded === 'true'", what="first refresh")
        page.wait_for("!document.getElementById('banner').hidden", what="the token banner")
        assert "token" in text_of(page, "#banner"), text_of(page, "#banner")

        # A read-only token sees everything but cannot resolve.
        use_token(page, TOKENS["reader"])
        page.wait_for(f"document.querySelector('#in-doubt tr[data-txid=\"{txid}\"]')", what="the in-doubt row")
        page.wait_for("document.getElementById('access').textContent.includes('read-only')", what="read-only access")
        assert not page.evaluate("!!document.querySelector('[data-resolve]')"), "a reader was offered resolve"

        # The admin token, kept in sessionStorage across a reload.
        sign_in(page, "admin")
        assert page.evaluate("sessionStorage.getItem('commitd.token')") == TOKENS["admin"]
        page.navigate(c.url + "/ui/")
        page.wait_for("document.getElementById('access').textContent.includes('admin')", what="admin after reload")
        assert page.evaluate("document.getElementById('banner').hidden"), text_of(page, "#banner")

        # What the page shows: the group, both participants healthy, the in-doubt
        # transaction with each participant's state.
        page.wait_for("document.querySelectorAll('#participants tr[data-participant] .healthy').length === 2",
                      what="two healthy participants")
        assert "c1" in text_of(page, "#members") and "leader" in text_of(page, "#group-summary")
        row = f"#in-doubt tr[data-txid=\"{txid}\"]"
        page.wait_for(f"document.querySelector('{row} [data-branch=\"bank-b\"]')", what="bank-b's state in the row")
        assert "committed" in text_of(page, row), text_of(page, row)
        assert "bank-a: committed" in text_of(page, row), text_of(page, row)
        assert "bank-b: voted_yes" in text_of(page, row), text_of(page, row)  # not acknowledged
        page.wait_for("document.querySelector('[data-stat=\"in_doubt\"]').textContent === '1'",
                      what="the in-doubt count")
        page.wait_for("/^[0-9.]+$/.test(document.querySelector('[data-stat=\"committed_per_s\"]').textContent)",
                      what="a throughput figure")

        # Search by txid: found, and an unknown one is presumed aborted.
        page.evaluate(f"document.getElementById('search-txid').value = {json.dumps(txid)}")
        page.click("#search-form button")
        page.wait_for("document.querySelector('#search-result [data-search=\"found\"]')", what="the search result")
        assert "bank-b" in text_of(page, "#search-result") and "committed" in text_of(page, "#search-result")
        page.screenshot(os.path.join(out, "dashboard-in-doubt.png"))

        # bank-b comes back without the failpoint and settles its own record by
        # asking the coordinator; the coordinator has not heard back from it and
        # would redeliver only after two minutes.
        c.agent("bank-b").restart(env={})
        c.agent("bank-b").wait_healthy()
        eventually(lambda: txid not in harness.prepared_in_db(c.bank("bank-b").db), 30,
                   what="bank-b applied the commit")
        assert txid in listed_at_coordinator(c, "in_doubt"), "settled without the page"

        # Resolve through the page: click, then confirm.
        page.click(f"[data-resolve=\"{txid}\"]")
        page.wait_for("!document.getElementById('confirm').hidden", what="the confirmation")
        assert txid in text_of(page, "#confirm-text")
        page.click("#confirm-yes")
        status = page.wait_for("(t => t.includes('settled') ? t : '')(document.getElementById('resolve-status').textContent)",
                               timeout=30, what="the page reporting the transaction settled")
        assert txid in status and "committed" in status, status
        page.wait_for(f"!document.querySelector('{row}')", what="the row leaving the in-doubt table")

        code, tx = api_get(c, f"/v1/transactions/{txid}")
        assert code == 200 and tx["state"] == "finished" and tx["outcome"] == "committed", tx
        assert txid not in listed_at_coordinator(c, "in_doubt")
        assert c.balances("bank-b")["bob"] == c.seed("bank-b")["bob"] + 10
        page.screenshot(os.path.join(out, "dashboard-resolved.png"))
        assert_no_script_errors(page)
        harness.log(f"screenshots in {out}")


def test_close_a_contradicted_transaction_through_the_page():
    """A commit bank-b answers it had aborted (aborted behind the coordinator's
    back, with its abort key) is shown contradicted: the page offers to close
    it, not to resolve it, and closes it once the admin confirms."""
    out = output_dir()
    # The commit record, held for the acks that never come, is written after retry_initial_ms.
    c = secure_cluster(config=harness.FAST_CONFIG,
                       coordinator_env={"COMMITD_FAILPOINTS": "coordinator.skip_commit_delivery"})
    with c, headless_chromium.HeadlessChromium(c.dir) as browser:
        body = expect_status(transfer(c, "alice", "bob", 10, timeout_ms=600000), 200, "a commit not delivered")
        txid = body["txid"]
        eventually(lambda: harness.recorded_outcome(c, txid) == "committed", 10, what="the commit record")
        _, abort_key, _ = harness.decision_log_keys(c.data_dir, txid)
        expect_status(harness.post(c.bank("bank-b").url, "/v1/abort", {"txid": txid, "abort_key": abort_key},
                                   headers=bearer(TOKENS["c1"])), 200, "bank-b aborted behind the coordinator")
        c.coordinator.kill9()
        c.coordinator.start(env={})
        c.wait_coordinator()

        def contradicted():
            code, tx = api_get(c, f"/v1/transactions/{txid}")
            return code == 200 and tx["state"] == "contradicted"
        eventually(contradicted, 20, what="the commit contradicted by bank-b")

        page = signed_in_page(c, browser, "reader")
        row = f'#in-doubt tr[data-txid="{txid}"]'
        page.wait_for(f"document.querySelector({json.dumps(row + ' [data-branch=bank-b]')})", what="the in-doubt row")
        assert "bank-b: aborted" in text_of(page, row) and "bank-a: committed" in text_of(page, row), text_of(page, row)
        assert not shown(page, "[data-close]"), "a reader was offered close"

        sign_in(page, "admin")
        page.wait_for(f"document.querySelector({json.dumps(row + ' [data-close]')})", what="the close action")
        assert not shown(page, row + " [data-resolve]"), text_of(page, row)
        page.click(f'{row} [data-close]')
        page.wait_for("!document.getElementById('confirm').hidden", what="the confirmation")
        assert txid in text_of(page, "#confirm-text") and "Reconcile" in text_of(page, "#confirm-text")
        page.screenshot(os.path.join(out, "dashboard-close.png"))
        page.click("#confirm-no")
        wait_for_next_refresh(page)
        assert api_get(c, f"/v1/transactions/{txid}")[1]["state"] == "contradicted", "cancel closed it"

        page.click(f'{row} [data-close]')
        page.wait_for("!document.getElementById('confirm').hidden", what="the confirmation again")
        page.click("#confirm-yes")
        status = page.wait_for("(t => t.includes('closed') ? t : '')(document.getElementById('resolve-status').textContent)",
                               timeout=30, what="the page reporting the transaction closed")
        assert txid in status, status
        page.wait_for(f"!document.querySelector({json.dumps(row)})", what="the row leaving the in-doubt table")
        code, tx = api_get(c, f"/v1/transactions/{txid}")
        assert code == 200 and tx["state"] == "finished" and tx["outcome"] == "committed", tx
        assert_no_script_errors(page)


def test_force_a_3pc_transaction_in_doubt_through_the_page():
    """A 3PC transfer whose agents committed it by termination and forgot it
    while the coordinator was down is undecided and in doubt: the page lists
    it as in doubt only, offers a reader no force, changes nothing when the
    admin cancels, and forces commit when the admin confirms; the heuristic
    commit is delivered and the banks keep the transfer."""
    out = output_dir()
    c = secure_cluster(config=harness.FORGETFUL_3PC_CONFIG, coordinator_env=harness.CRASH_BEFORE_3PC_COMMIT)
    with c, headless_chromium.HeadlessChromium(c.dir) as browser:
        txid = harness.leave_3pc_transfer_in_doubt(c)
        # Undecided, so the coordinator lists it under both states.
        assert txid in listed_at_coordinator(c, "in_doubt") and txid in listed_at_coordinator(c, "pending")

        page = signed_in_page(c, browser, "reader")
        row = f'#in-doubt tr[data-txid="{txid}"]'
        page.wait_for(f"document.querySelector({json.dumps(row + ' [data-branch=bank-b]')})", what="the in-doubt row")
        wait_for_next_refresh(page)
        assert shown(page, row), "the in-doubt row went away"
        assert not shown(page, f'#in-flight tr[data-txid="{txid}"]'), text_of(page, "#in-flight")
        # The figures agree with the tables: counted in doubt, not in flight.
        stats = page.evaluate("Object.fromEntries([...document.querySelectorAll('#stats [data-stat]')]"
                              ".map((e) => [e.dataset.stat, e.textContent]))")
        assert (stats.get("in_doubt"), stats.get("in_flight")) == ("1", "0"), stats
        assert "bank-a: unknown" in text_of(page, row) and "bank-b: unknown" in text_of(page, row), text_of(page, row)
        assert not shown(page, "[data-force]"), "a reader was offered force"

        sign_in(page, "admin")
        page.wait_for(f"document.querySelector({json.dumps(row + ' [data-force=commit]')})", what="the force actions")
        assert shown(page, row + " [data-force=abort]") and not shown(page, row + " [data-resolve]"), text_of(page, row)
        page.screenshot(os.path.join(out, "dashboard-3pc-in-doubt.png"))

        for outcome in ("abort", "commit"):
            page.click(f"{row} [data-force={outcome}]")
            page.wait_for("!document.getElementById('confirm').hidden", what=f"the confirmation of force {outcome}")
            text = text_of(page, "#confirm-text")
            assert txid in text and "heuristic" in text and "every participant's database" in text, text
            assert text_of(page, "#confirm-yes") == f"Force {outcome}", text_of(page, "#confirm-yes")
            page.click("#confirm-no")
            page.wait_for("document.getElementById('confirm').hidden", what="the dialog closed")
        time.sleep(1)
        _, tx = api_get(c, f"/v1/transactions/{txid}")
        assert tx["outcome"] == "pending" and tx.get("in_doubt") is True, tx
        assert page.evaluate("document.getElementById('resolve-status').hidden"), text_of(page, "#resolve-status")
        assert "heuristic_decision" not in c.coordinator.log_text()

        # The operator checked both banks (each applied the transfer) and forces commit.
        page.click(f"{row} [data-force=commit]")
        page.wait_for("!document.getElementById('confirm').hidden", what="the confirmation")
        page.screenshot(os.path.join(out, "dashboard-3pc-force-confirmation.png"))
        page.click("#confirm-yes")
        status = page.wait_for("(t => t.includes('settled') ? t : '')(document.getElementById('resolve-status').textContent)",
                               timeout=30, what="the page reporting the transaction settled")
        assert txid in status and "committed (heuristic)" in status, status
        assert not page.evaluate("document.getElementById('resolve-status').classList.contains('bad')"), status
        page.wait_for(f"!document.querySelector({json.dumps(row)})", what="the row leaving the in-doubt table")

        code, tx = api_get(c, f"/v1/transactions/{txid}")
        assert code == 200 and (tx["state"], tx["outcome"], tx.get("heuristic")) == ("finished", "committed", True), tx
        assert txid not in listed_at_coordinator(c, "in_doubt") and txid not in listed_at_coordinator(c, "pending")
        assert_banks_hold_the_commit(c, txid)
        page.screenshot(os.path.join(out, "dashboard-3pc-forced.png"))
        assert_no_script_errors(page)


def admin_page_on_force_actions(c, browser, txid):
    """A page signed in with the admin token that shows txid's row in the
    in-doubt table with its force actions. Returns the page and the row's
    selector."""
    page = signed_in_page(c, browser, "admin")
    row = f'#in-doubt tr[data-txid="{txid}"]'
    page.wait_for(f"document.querySelector({json.dumps(row + ' [data-force=abort]')})", what="the force actions")
    return page, row


def open_force_dialog(page, row, outcome):
    page.click(f"{row} [data-force={outcome}]")
    page.wait_for("!document.getElementById('confirm').hidden", what=f"the confirmation of force {outcome}")
    assert text_of(page, "#confirm-yes") == f"Force {outcome}", text_of(page, "#confirm-yes")


def force_not_standing(page, txid, outcome):
    """The page's word on a force of txid that did not stand, once it has one:
    shown as an error (red), never as forced or settled, and not replaced by
    a success at the next refresh. Returns it."""
    status = page.wait_for("(t => t && !t.startsWith('forcing') ? t : '')(document.getElementById('resolve-status').textContent)",
                           timeout=30, what=f"the page's answer to the force {outcome} of {txid}")
    assert f"force {outcome} of {txid}" in status, status
    for claim in ("settled", "recorded as heuristic", "delivering it", "nothing forced"):
        assert claim not in status, status
    wait_for_next_refresh(page)
    shown_as = page.evaluate("(p => ({hidden: p.hidden, text: p.textContent, bad: p.classList.contains('bad'),"
                             " edge: getComputedStyle(p).borderLeftColor}))(document.getElementById('resolve-status'))")
    # Red: the page's --bad colour, #c62828.
    assert shown_as == {"hidden": False, "text": status, "bad": True, "edge": "rgb(198, 40, 40)"}, shown_as
    return status


def force_with_commitctl(c, txid, outcome):
    """Another operator's force of txid, as commitctl records it."""
    rc, stdout, stderr = harness.ctl("--coordinator", c.url, "--token", TOKENS["admin"],
                                     "resolve", txid, "--force", outcome, "--yes")
    assert rc == 0, f"commitctl resolve --force {outcome} --yes: exit {rc}\n{stdout}\n{stderr}"


def confirmation_dialog(page):
    """What the confirmation dialog shows and offers."""
    return page.evaluate("""(() => {
        const $ = (id) => document.getElementById(id);
        return {open: !$('confirm').hidden, confirm: $('confirm-yes').textContent, confirm_enabled: !$('confirm-yes').disabled,
                text: $('confirm-text').textContent, close: $('confirm-no').textContent, note: $('confirm-note') && !$('confirm-note').hidden ? $('confirm-note').textContent : '',
                focused: document.activeElement && document.activeElement.id};
    })()""")


def watch_requests(page):
    """From now on the browser reports every request the page sends (see requests_sent)."""
    page.send("Network.enable")


def requests_sent(page):
    """(method, path) of each request the page sent since watch_requests."""
    return [(e["params"]["request"]["method"], urllib.parse.unquote(urllib.parse.urlsplit(e["params"]["request"]["url"]).path))
            for e in page.browser.events
            if e.get("sessionId") == page.session and e.get("method") == "Network.requestWillBeSent"]


def block_transaction_reads(page):
    """The page's reads of /v1/transactions fail from now on, as behind a proxy
    that refuses them; its admin requests still pass."""
    page.send("Network.enable")
    page.send("Network.setBlockedURLs", {"urls": ["*/v1/transactions*"]})


def test_force_of_a_transaction_decided_meanwhile_is_refused_on_the_page():
    """An admin opens "Force abort…" on a 3PC transaction in doubt; before
    they confirm, another operator forces commit with commitctl, and the page
    cannot read the transactions any more, so nothing tells it: the dialog
    still offers the force. Confirming it is refused by the coordinator (409
    decision_conflict): the page says so in red with the recorded outcome,
    claims nothing, and the transaction stays committed."""
    out = output_dir()
    c = secure_cluster(config=harness.FORGETFUL_3PC_CONFIG, coordinator_env=harness.CRASH_BEFORE_3PC_COMMIT)
    with c, headless_chromium.HeadlessChromium(c.dir) as browser:
        txid = harness.leave_3pc_transfer_in_doubt(c)
        page, row = admin_page_on_force_actions(c, browser, txid)
        open_force_dialog(page, row, "abort")

        block_transaction_reads(page)
        force_with_commitctl(c, txid, "commit")
        page.wait_for("!document.querySelector('[data-error=\"in_doubt\"]').hidden", what="the page failing to read")
        wait_for_next_refresh(page)
        dialog = confirmation_dialog(page)
        assert (dialog["open"], dialog["confirm_enabled"], dialog["note"]) == (True, True, ""), dialog

        page.click("#confirm-yes")
        status = force_not_standing(page, txid, "abort")
        assert "refused: decision_conflict" in status and f"{txid} is already decided committed" in status, status
        page.screenshot(os.path.join(out, "dashboard-3pc-force-refused.png"))

        code, tx = api_get(c, f"/v1/transactions/{txid}")
        assert code == 200 and (tx["state"], tx["outcome"], tx.get("heuristic")) == ("finished", "committed", True), tx
        assert c.coordinator.log_text().count('"heuristic_decision"') == 1, "more than commitctl's force was recorded"
        assert_banks_hold_the_commit(c, txid)
        assert_no_script_errors(page)


def test_force_dialog_withdraws_a_force_settled_meanwhile():
    """An admin opens "Force abort…" on a 3PC transaction in doubt; before
    they confirm, another operator forces commit with commitctl. The page's
    next refresh takes the row away, and the dialog stops offering the force:
    its confirm button is disabled, the dialog says the transaction was
    settled meanwhile and how, Cancel becomes Close and has the focus.
    Nothing is posted: the recorded outcome is commitctl's."""
    out = output_dir()
    c = secure_cluster(config=harness.FORGETFUL_3PC_CONFIG, coordinator_env=harness.CRASH_BEFORE_3PC_COMMIT)
    with c, headless_chromium.HeadlessChromium(c.dir) as browser:
        txid = harness.leave_3pc_transfer_in_doubt(c)
        page, row = admin_page_on_force_actions(c, browser, txid)
        watch_requests(page)
        open_force_dialog(page, row, "abort")
        wait_for_next_refresh(page)
        dialog = confirmation_dialog(page)
        assert (dialog["confirm_enabled"], dialog["close"], dialog["note"]) == (True, "Cancel", ""), dialog

        force_with_commitctl(c, txid, "commit")
        page.wait_for(f"!document.querySelector({json.dumps(row)})", what="the row leaving the in-doubt table")
        page.wait_for("document.getElementById('confirm-yes').disabled", what="the dialog withdrawing the force")
        dialog = confirmation_dialog(page)
        assert dialog["open"] and dialog["confirm"] == "Force abort", dialog
        assert (dialog["close"], dialog["focused"]) == ("Close", "confirm-no"), dialog
        assert f"{txid} was settled meanwhile: committed (heuristic)" in dialog["note"], dialog
        assert dialog["text"] == f"This dialog offered to force abort of {txid} while it was in doubt.", dialog
        page.screenshot(os.path.join(out, "dashboard-3pc-force-withdrawn.png"))

        page.click("#confirm-yes")  # disabled: nothing happens (but the focus leaves Close, as on any click outside it)
        wait_for_next_refresh(page)
        after = confirmation_dialog(page)
        assert dict(after, focused=None) == dict(dialog, focused=None), after
        page.click("#confirm-no")
        page.wait_for("document.getElementById('confirm').hidden", what="the dialog closed")
        assert page.evaluate("document.getElementById('resolve-status').hidden"), text_of(page, "#resolve-status")
        sent = requests_sent(page)
        assert ("GET", f"/v1/transactions/{txid}") in sent, sent  # what the watch sees
        assert ("POST", f"/v1/admin/transactions/{txid}/force") not in sent, sent

        code, tx = api_get(c, f"/v1/transactions/{txid}")
        assert code == 200 and (tx["state"], tx["outcome"], tx.get("heuristic")) == ("finished", "committed", True), tx
        assert c.coordinator.log_text().count('"heuristic_decision"') == 1, "more than commitctl's force was recorded"
        assert_banks_hold_the_commit(c, txid)
        assert_no_script_errors(page)


def test_force_without_an_answer_is_not_reported_as_done():
    """The coordinator stops after the page drew the in-doubt row; the admin
    forces commit anyway. The page reports that no answer came (recorded or
    not), in red; started again, the coordinator still holds the transaction
    in doubt, nothing forced, and the page offers the force again."""
    c = secure_cluster(config=harness.FORGETFUL_3PC_CONFIG, coordinator_env=harness.CRASH_BEFORE_3PC_COMMIT)
    with c, headless_chromium.HeadlessChromium(c.dir) as browser:
        txid = harness.leave_3pc_transfer_in_doubt(c)
        page, row = admin_page_on_force_actions(c, browser, txid)

        assert c.coordinator.terminate() == 0, "commitd did not stop cleanly on SIGTERM"
        page.wait_for("document.getElementById('banner').textContent.includes('cannot reach the coordinator')",
                      what="the page noticing the coordinator is gone")
        open_force_dialog(page, row, "commit")
        page.click("#confirm-yes")
        status = force_not_standing(page, txid, "commit")
        assert "no answer, recorded or not" in status and "look the transaction up" in status, status

        tx = harness.restart_coordinator_in_doubt(c, txid)
        assert tx.get("in_doubt") is True and "heuristic" not in tx, tx
        assert "heuristic_decision" not in c.coordinator.log_text()
        page.wait_for("document.getElementById('banner').hidden", what="the page reaching the coordinator again")
        page.wait_for(f"document.querySelector({json.dumps(row + ' [data-force=commit]')})", what="the force actions again")
        assert_banks_hold_the_commit(c, txid)
        assert_no_script_errors(page)


# Every write of a decision to the coordinator's log fails as an I/O error would.
FAIL_DECISION_WRITES = {"COMMITD_FAILPOINTS": "decision_log.fail_append"}


def test_force_that_cannot_be_recorded_is_not_reported_as_done():
    """The coordinator's log refuses every decision: a forced abort is
    answered 503 storage_error (a forced commit would stop the coordinator,
    as the protocol's own does). The page reports it not recorded, in red,
    with the coordinator's word that the abort is sent once recorded. The
    coordinator keeps the transaction, deciding, and writes the abort again
    (in vain here), so the staging record stays the log's only word: the
    coordinator, started again with a working log, finds the transaction in
    doubt, and the page forces commit this time."""
    c = secure_cluster(config=harness.FORGETFUL_3PC_CONFIG, coordinator_env=harness.CRASH_BEFORE_3PC_COMMIT)
    with c, headless_chromium.HeadlessChromium(c.dir) as browser:
        txid = harness.leave_3pc_transfer_in_doubt(c, restart_env=FAIL_DECISION_WRITES)
        page, row = admin_page_on_force_actions(c, browser, txid)
        open_force_dialog(page, row, "abort")
        page.click("#confirm-yes")
        status = force_not_standing(page, txid, "abort")
        assert "not recorded: storage_error" in status and "look the transaction up" in status, status
        assert "sent to the participants then" in status, status
        assert c.coordinator.alive()

        # The abort waits for its record, unsent: deciding, not finished.
        def deciding():
            code, tx = api_get(c, f"/v1/transactions/{txid}")
            return code == 200 and tx["state"] == "deciding" and "in_doubt" not in tx and tx
        tx = eventually(deciding, 20, what=f"the coordinator writing the abort of {txid} again")
        assert tx["outcome"] == "pending" and "finished_ms" not in tx["timeline"], tx
        assert "heuristic" not in tx, tx
        assert_banks_hold_the_commit(c, txid)

        # The abort never left (the agents know nothing of the transfer, not
        # even a tombstone); a start with a working log resumes the record: in doubt.
        harness.wait_agents_forgot(c, txid)
        assert c.coordinator.terminate() == 0, "commitd did not stop cleanly on SIGTERM"
        harness.restart_coordinator_in_doubt(c, txid)
        page.wait_for(f"document.querySelector({json.dumps(row + ' [data-force=commit]')})", what="the force actions again")
        open_force_dialog(page, row, "commit")
        page.click("#confirm-yes")
        status = page.wait_for("(t => t.includes('settled') ? t : '')(document.getElementById('resolve-status').textContent)",
                               timeout=30, what="the page reporting the transaction settled")
        assert txid in status and "committed (heuristic)" in status, status
        code, tx = api_get(c, f"/v1/transactions/{txid}")
        assert code == 200 and (tx["state"], tx["outcome"], tx.get("heuristic")) == ("finished", "committed", True), tx
        assert_banks_hold_the_commit(c, txid)
        assert_no_script_errors(page)


def readings(page, reading, answers):
    """What the page's function `reading` (JavaScript, given an answer as api()
    returns it) makes of each of answers {name: (HTTP status, JSON body)}
    (status 0: no answer)."""
    return page.evaluate(f"""(() => {{
        const reading = {reading};
        const out = {{}};
        for (const [name, [status, json]] of Object.entries({json.dumps(answers)})) {{
          const ok = status >= 200 && status < 300;
          const message = ok ? "" : status ? `${{json.error.code}}: ${{json.error.message}}` : "cannot reach the coordinator";
          out[name] = reading({{status, ok, json, text: "", message}});
        }}
        return out;
    }})()""")


def test_force_answers_fail_closed():
    """The page's reading of a force's answer: only a well-formed 200 for
    this txid and outcome stands; anything else is reported as refused, not
    recorded, or not understood."""
    with Cluster() as c, headless_chromium.HeadlessChromium(c.dir) as browser:
        page = browser.new_page()
        page.navigate(c.url + "/ui/")
        page.wait_for("document.body.dataset.loaded === 'true'", what="first refresh")
        answers = {
            "forced": (200, {"txid": "t1", "outcome": "committed", "forced": True, "heuristic": True}),
            "already": (200, {"txid": "t1", "outcome": "committed", "forced": False}),
            "other_outcome": (200, {"txid": "t1", "outcome": "aborted", "forced": True, "heuristic": True}),
            "other_txid": (200, {"txid": "t2", "outcome": "committed", "forced": True, "heuristic": True}),
            "not_heuristic": (200, {"txid": "t1", "outcome": "committed", "forced": True}),
            "not_json": (200, None),
            "created": (201, {"txid": "t1", "outcome": "committed", "forced": True, "heuristic": True}),
            "conflict": (409, {"error": {"code": "decision_conflict", "message": "t1 is already decided aborted"}}),
            "storage": (503, {"error": {"code": "storage_error", "message": "disk full"}}),
            "unreachable": (0, None),
        }
        got = readings(page, '(r) => forceAnswer("t1", "commit", r)', answers)
        stands = {name for name, answer in got.items() if answer["stands"]}
        assert stands == {"forced", "already"}, got
        assert "recorded as heuristic" in got["forced"]["text"], got
        assert "nothing forced" in got["already"]["text"], got
        for name in ("other_outcome", "other_txid", "not_heuristic", "not_json", "created"):
            assert "not understood" in got[name]["text"], (name, got[name])
        assert "refused: decision_conflict" in got["conflict"]["text"], got
        assert "not recorded: storage_error" in got["storage"]["text"], got
        assert "no answer" in got["unreachable"]["text"], got
        assert_no_script_errors(page)


def test_force_dialog_reading_of_the_transaction():
    """The page's reading of the transaction an open force dialog was opened
    for (GET /v1/transactions/TXID): the force is withdrawn, with the reason,
    once the transaction is decided, no longer in doubt or no longer held;
    while it is undecided in doubt, or while the answer says nothing sure,
    the force stays offered."""
    with Cluster() as c, headless_chromium.HeadlessChromium(c.dir) as browser:
        page = browser.new_page()
        page.navigate(c.url + "/ui/")
        page.wait_for("document.body.dataset.loaded === 'true'", what="first refresh")
        tx = {"txid": "t1", "protocol": "3pc", "age_ms": 9000}
        answers = {
            "in_doubt": (200, dict(tx, state="precommitting", outcome="pending", in_doubt=True)),
            "forced_commit": (200, dict(tx, state="delivering", outcome="committed", heuristic=True)),
            "aborted": (200, dict(tx, state="finished", outcome="aborted")),
            "let_go": (200, dict(tx, state="precommitting", outcome="pending")),
            "forgotten": (404, {"error": {"code": "forgotten", "message": "t1 is no longer known"}}),
            "presumed_aborted": (404, {"error": {"code": "not_found", "message": "no record of t1"}, "outcome": "aborted"}),
            "other_outcome": (200, dict(tx, state="finished", outcome="mystery")),
            "not_json": (200, None),
            "refused": (403, {"error": {"code": "forbidden", "message": "not allowed"}}),
            "storage": (503, {"error": {"code": "storage_error", "message": "disk full"}}),
            "unreachable": (0, None),
        }
        got = readings(page, '(r) => forceWithdrawal("t1", r)', answers)
        offered = {name for name, reason in got.items() if reason is None}
        assert offered == {"in_doubt", "other_outcome", "not_json", "refused", "storage", "unreachable"}, got
        assert "t1 was settled meanwhile: committed (heuristic)" in got["forced_commit"], got
        assert "t1 was settled meanwhile: aborted." in got["aborted"], got
        assert "t1 is no longer in doubt (now precommitting)" in got["let_go"], got
        for name in ("forgotten", "presumed_aborted"):
            assert "t1 is no longer in doubt: this coordinator no longer holds it" in got[name], (name, got[name])
        assert "no record of t1" in got["presumed_aborted"], got
        assert_no_script_errors(page)


# Two scrapes of the metrics the page reads: between them 60 commits and 10
# aborts, 60 latencies (2pc and a new 3pc series), and 100 prepare round trips
# of bank-a taking 1 s in all.
METRICS_BEFORE = """# TYPE commitd_transactions_total counter
commitd_transactions_total{outcome="committed"} 100
commitd_transactions_total{outcome="aborted"} 10
# TYPE commitd_transaction_duration_seconds histogram
commitd_transaction_duration_seconds_bucket{protocol="2pc",outcome="committed",le="0.005"} 0
commitd_transaction_duration_seconds_bucket{protocol="2pc",outcome="committed",le="0.01"} 50
commitd_transaction_duration_seconds_bucket{protocol="2pc",outcome="committed",le="0.1"} 100
commitd_transaction_duration_seconds_bucket{protocol="2pc",outcome="committed",le="+Inf"} 100
commitd_transaction_duration_seconds_sum{protocol="2pc",outcome="committed"} 2
commitd_transaction_duration_seconds_count{protocol="2pc",outcome="committed"} 100
commitd_participant_round_trip_seconds_sum{participant="bank-a",phase="prepare"} 1
commitd_participant_round_trip_seconds_count{participant="bank-a",phase="prepare"} 100
commitd_transactions_in_doubt{kind="undelivered"} 2
commitd_transactions_in_doubt{kind="held"} 1
commitd_transactions_in_flight 7
"""
METRICS_AFTER = """commitd_transactions_total{outcome="committed"} 160
commitd_transactions_total{outcome="aborted"} 20
commitd_transaction_duration_seconds_bucket{protocol="2pc",outcome="committed",le="0.005"} 0
commitd_transaction_duration_seconds_bucket{protocol="2pc",outcome="committed",le="0.01"} 60
commitd_transaction_duration_seconds_bucket{protocol="2pc",outcome="committed",le="0.1"} 120
commitd_transaction_duration_seconds_bucket{protocol="2pc",outcome="committed",le="+Inf"} 120
commitd_transaction_duration_seconds_bucket{protocol="3pc",outcome="committed",le="0.005"} 0
commitd_transaction_duration_seconds_bucket{protocol="3pc",outcome="committed",le="0.01"} 20
commitd_transaction_duration_seconds_bucket{protocol="3pc",outcome="committed",le="0.1"} 40
commitd_transaction_duration_seconds_bucket{protocol="3pc",outcome="committed",le="+Inf"} 40
commitd_transaction_duration_seconds_sum{protocol="2pc",outcome="committed"} 2.6
commitd_transaction_duration_seconds_count{protocol="2pc",outcome="committed"} 120
commitd_transaction_duration_seconds_sum{protocol="3pc",outcome="committed"} 0.6
commitd_transaction_duration_seconds_count{protocol="3pc",outcome="committed"} 40
commitd_participant_round_trip_seconds_sum{participant="bank-a",phase="prepare"} 2
commitd_participant_round_trip_seconds_count{participant="bank-a",phase="prepare"} 200
commitd_transactions_in_doubt{kind="undelivered"} 2
commitd_transactions_in_doubt{kind="held"} 1
commitd_transactions_in_doubt{kind="precommit_unknown"} 1
commitd_transactions_in_flight 7
commitd_transactions_undecided 4
"""
# Only the counters that predate the histograms.
METRICS_OLD_NAMES = """commitd_transactions_committed_total 5
commitd_transactions_aborted_total 3
commitd_transactions_undecided 4
"""


def test_metrics_arithmetic_of_the_page():
    """The page's reading of /metrics: rates, histogram quantiles and means,
    per-participant round trips, the in-doubt and in-flight gauges, counter
    resets, and the fallback to the older counters when the new series are
    missing."""
    with Cluster() as c, headless_chromium.HeadlessChromium(c.dir) as browser:
        page = browser.new_page()
        page.navigate(c.url + "/ui/")
        page.wait_for("document.body.dataset.loaded === 'true'", what="first refresh")
        got = page.evaluate(f"""(() => {{
            const a = parseMetrics({json.dumps(METRICS_BEFORE)}), b = parseMetrics({json.dumps(METRICS_AFTER)});
            const old = parseMetrics({json.dumps(METRICS_OLD_NAMES)});
            const ca = outcomeCounters(a), cb = outcomeCounters(b);
            const rtt = (l) => l.participant === "bank-a" && l.phase === "prepare";
            const ba = buckets(a, DURATION), bb = buckets(b, DURATION);
            // The participant table from these two scrapes.
            renderParticipants({{ok: true, json: {{participants: [
                {{name: "bank-a", url: "http://a", healthy: true, last_seen_ms: Date.now()}},
                {{name: "bank-b", url: "http://b", healthy: false, last_seen_ms: 0, last_error: "refused"}}]}}}}, b, a);
            const row = (n) => [...document.querySelectorAll(`#participants tr[data-participant="${{n}}"] td`)].map((td) => td.textContent);
            return {{
              committed: cb.committed - ca.committed, aborted: cb.aborted - ca.aborted, source: cb.source,
              p50: quantile(0.5, ba, bb), p99: quantile(0.99, ba, bb), mean: mean(a, b, DURATION),
              rtt: mean(a, b, "commitd_participant_round_trip_seconds", rtt),
              in_doubt: total(b, "commitd_transactions_in_doubt"), in_flight: inFlightCount(b),
              in_flight_before: inFlightCount(a),
              reset: increase(100, 5), missing: total(b, "commitd_no_such_metric"),
              old: outcomeCounters(old), old_histogram: buckets(old, DURATION),
              bank_a: row("bank-a"), bank_b: row("bank-b"),
            }};
        }})()""")
        assert (got["committed"], got["aborted"], got["source"]) == (60, 10, "commitd_transactions_total"), got
        # Both protocols' buckets summed by bound (3pc's series are new, from 0):
        # 30 in (5, 10] ms, 30 in (10, 100] ms; 1.2 s over 60 transactions.
        assert abs(got["p50"] - 0.01) < 1e-9, got
        assert abs(got["p99"] - (0.01 + 0.09 * (59.4 - 30) / 30)) < 1e-9, got
        assert abs(got["mean"] - 1.2 / 60) < 1e-9, got
        assert abs(got["rtt"] - 0.01) < 1e-9, got
        # In flight: undecided, less the 3PC one in doubt (listed under in doubt); without the
        # undecided gauge, everything the coordinator holds.
        assert (got["in_doubt"], got["in_flight"], got["in_flight_before"]) == (4, 3, 7), got
        assert (got["reset"], got["missing"]) == (5, None), got
        assert got["old"] == {"committed": 5, "aborted": 3, "source": "commitd_transactions_committed_total"}, got
        assert got["old_histogram"] is None, got
        assert got["bank_a"][1] == "healthy" and got["bank_a"][3] == "10.0 ms" and got["bank_a"][4] == "—", got
        assert got["bank_b"][1] == "unhealthy" and got["bank_b"][2] == "never", got
        assert_no_script_errors(page)


def test_page_on_a_group_follower():
    """Against a member of a three-node group that is not the leader: the
    group's members, leader and term; participants; a search answered by
    the leader (the member forwards it)."""
    import test_group  # the group of test_group.py: c1..c3 and the two banks
    with test_group.Group() as g, headless_chromium.HeadlessChromium(g.c.dir) as browser:
        leader = g.wait_leader()
        follower = next(n for n in g.urls if n != leader)
        body = expect_status(harness.transfer(g.urls[follower], "bank-a", "alice", "bank-b", "bob", 5), 200, "transfer")
        page = browser.new_page()
        page.navigate(g.urls[follower] + "/ui/")
        page.wait_for("document.querySelectorAll('#members tr[data-member]').length === 3", what="three members")
        # On a loaded machine the leadership may move while the page loads: what
        # the page shows must agree with the group's view at that moment.
        deadline = time.monotonic() + 30
        while True:
            summary = page.evaluate("Object.fromEntries([...document.querySelectorAll('#group-summary [data-stat]')]"
                                    ".map((d) => [d.dataset.stat, d.textContent]))")
            leader = g.wait_leader()
            role = "leader" if leader == follower else "follower"
            if (summary.get("id"), summary.get("role"), summary.get("leader")) == (follower, role, leader):
                break
            assert time.monotonic() < deadline, (summary, leader)
            time.sleep(0.5)
        assert int(summary["term"]) >= 1 and int(summary["commit_index"]) >= 1, summary
        assert f"leader {leader}" in text_of(page, "#node"), text_of(page, "#node")
        page.wait_for("document.querySelectorAll('#participants tr[data-participant] .healthy').length === 2",
                      what="two healthy participants")
        page.evaluate(f"document.getElementById('search-txid').value = {json.dumps(body['txid'])}")
        page.click("#search-form button")
        page.wait_for("document.querySelector('#search-result [data-search=\"found\"]')", what="the search result")
        assert "committed" in text_of(page, "#search-result"), text_of(page, "#search-result")
        assert_no_script_errors(page)


def test_dashboard_under_load():
    """The page while clients keep transferring: throughput and latency figures
    appear; the screenshot is the one in docs/images/dashboard.png."""
    out = output_dir()
    c = secure_cluster(config=harness.FAST_CONFIG, balance=10**9)
    stop = threading.Event()
    answered = [0]

    def client(i):
        pairs = [("alice", "bob"), ("carol", "dave"), ("erin", "frank")]
        while not stop.is_set():
            src, dst = pairs[i % 3]
            try:
                status, _ = transfer(c, src, dst, 1)
                if status in (200, 409):
                    answered[0] += 1
            except OSError:
                time.sleep(0.05)

    with c, headless_chromium.HeadlessChromium(c.dir) as browser:
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(4)]
        for t in threads:
            t.start()
        try:
            page = signed_in_page(c, browser, "admin")
            rate = page.wait_for(
                "(t => parseFloat(t) > 0 ? t : '')(document.querySelector('[data-stat=\"committed_per_s\"]').textContent)",
                timeout=60, what="a committed rate above 0")
            time.sleep(12)  # a stretch of the charts
            page.screenshot(os.path.join(out, "dashboard-under-load.png"))
            assert_no_script_errors(page)
            harness.log(f"{answered[0]} transfers answered; the page showed {rate} committed/s")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=15)


if __name__ == "__main__":
    if headless_chromium.find_chromium() is None:
        print("chromium is not installed: skipped (apt-get install chromium)")
        sys.exit(SKIP)
    harness.main(globals())
