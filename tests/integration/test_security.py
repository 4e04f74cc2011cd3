"""Access control on real processes: a coordinator and two bank agents with
--auth-file, --peer-token-file and mutual TLS (certificates made at test time
with openssl) run transfers; every route answers 401/403 as the role matrix of
docs/security.md says; the known attacks fail.

Run one test: python3 test_security.py --bin-dir build/release/bin test_role_matrix
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import bearer, bin_path, eventually, free_port, request, source_path  # noqa: E402

TOKENS = {
    "client": "client-token-0123456789",
    "reader": "reader-token-0123456789",
    "admin": "admin-token-0123456789",
    "bank-a": "bank-a-peer-token-0123456789",
    "bank-b": "bank-b-peer-token-0123456789",
    "c1": "c1-peer-token-0123456789",
}
ROLES = {"client": ["client"], "reader": ["reader"], "admin": ["admin"],
         "bank-a": ["peer"], "bank-b": ["peer"], "c1": ["peer"]}

# The matrix of docs/security.md: (server, method, path, body, callers allowed).
# Bodies are wrong on purpose where a right one would change something: an
# allowed caller gets past the access check (anything but 401/403).
PEERS = {"bank-a", "bank-b", "c1"}
READERS = {"reader", "admin"}
MATRIX = [
    ("coordinator", "POST", "/v1/transactions", {}, {"client"}),
    ("coordinator", "GET", "/v1/transactions", None, {"client"} | READERS),
    ("coordinator", "GET", "/v1/transactions/tx-none", None, {"client"} | READERS),
    ("coordinator", "GET", "/v1/transactions/tx-none?participant=bank-a", None, {"client", "bank-a"} | READERS),
    ("coordinator", "GET", "/v1/participants", None, READERS),
    ("coordinator", "PUT", "/v1/participants/bank-z", {}, {"admin"}),
    ("coordinator", "PUT", "/v1/participants/bank-a", {}, {"admin", "bank-a"}),
    ("coordinator", "POST", "/v1/admin/retry-now", {}, {"admin"}),
    ("coordinator", "POST", "/v1/admin/transactions/tx-none/force", {}, {"admin"}),
    ("coordinator", "GET", "/v1/cluster", None, READERS | PEERS),
    ("coordinator", "POST", "/v1/cluster/members", {}, {"admin"}),
    ("coordinator", "DELETE", "/v1/cluster/members/c9", None, {"admin"}),
    ("coordinator", "POST", "/v1/cluster/transfer-leader", {}, {"admin"}),
    ("coordinator", "GET", "/metrics", None, READERS),
    ("agent", "POST", "/v1/prepare", {}, PEERS),
    ("agent", "POST", "/v1/precommit", {}, PEERS),
    ("agent", "POST", "/v1/commit", {}, PEERS),
    ("agent", "POST", "/v1/abort", {}, PEERS),
    ("agent", "POST", "/v1/batch", {}, PEERS),
    ("agent", "GET", "/v1/transactions", None, PEERS),
    ("agent", "GET", "/v1/transactions/tx-none", None, PEERS),
    ("agent", "GET", "/v1/procedures", None, PEERS),
    ("agent", "GET", "/v1/locks", None, READERS),
    ("agent", "GET", "/metrics", None, READERS),
]


class SecureCluster:
    """bank-a, bank-b and c1 over HTTPS with client certificates and tokens."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="commitd-sec-")
        self.pki = harness.make_pki(self.dir, clients=("operator",))
        harness.use_tls(self.pki["ca"][0], *self.pki["operator"])
        self.auth_file = os.path.join(self.dir, "auth.json")
        with open(self.auth_file, "w") as f:
            json.dump({"tokens": [{"name": n, "token": t, "roles": ROLES[n]} for n, t in TOKENS.items()]}, f)
        self.token_files = {}
        for name in ("bank-a", "bank-b", "c1"):
            path = os.path.join(self.dir, f"{name}.token")
            with open(path, "w") as f:
                f.write(TOKENS[name] + "\n")
            os.chmod(path, 0o600)
            self.token_files[name] = path
        self.config = harness.write_config(os.path.join(self.dir, "config.json"), harness.FAST_CONFIG)
        self.coord_url = f"https://127.0.0.1:{free_port()}"
        self.processes = []
        self.agents = {}
        self.failed = False

    def tls_flags(self):
        crt, key = self.pki["server"]
        return ["--tls-cert", crt, "--tls-key", key, "--tls-ca", self.pki["ca"][0], "--tls-require-client-cert",
                "--tls-client-cert", crt, "--tls-client-key", key]

    def start(self):
        for name, seed in (("bank-a", "seed-a.sql"), ("bank-b", "seed-b.sql")):
            db = os.path.join(self.dir, f"{name}.db")
            harness.make_bank_db(db, seed)
            port = free_port()
            url = f"https://127.0.0.1:{port}"
            argv = [bin_path("commit-agent"), "--name", name, "--listen", f"127.0.0.1:{port}", "--db", db,
                    "--procedures", source_path("examples", "bank", "procedures.json"),
                    "--coordinator", self.coord_url, "--config", self.config, "--auth-file", self.auth_file,
                    "--peer-token-file", self.token_files[name]] + self.tls_flags()
            p = harness.Process(name, argv, os.path.join(self.dir, f"{name}.log"), url)
            p.start()
            self.processes.append(p)
            self.agents[name] = (p, db)
        for p, _ in self.agents.values():
            p.wait_healthy()
        port = int(self.coord_url.rsplit(":", 1)[1])
        argv = [bin_path("commitd"), "--id", "c1", "--listen", f"127.0.0.1:{port}",
                "--data-dir", os.path.join(self.dir, "c1-data"), "--config", self.config,
                "--auth-file", self.auth_file, "--peer-token-file", self.token_files["c1"]] + self.tls_flags()
        for name, (p, _) in self.agents.items():
            argv += ["--participant", f"{name}={p.url}"]
        self.coordinator = harness.Process("commitd-c1", argv, os.path.join(self.dir, "c1.log"), self.coord_url)
        self.coordinator.start()
        self.processes.append(self.coordinator)
        self.coordinator.wait_healthy()
        return self

    def url(self, server):
        return self.coord_url if server == "coordinator" else self.agents["bank-a"][0].url

    def call(self, server, method, path, body=None, who=None, timeout=30.0):
        headers = bearer(TOKENS[who]) if who else None
        status, obj, raw, _ = request(method, self.url(server), path, body, headers, timeout)
        return status, (obj if obj is not None else {"_raw": raw})

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.failed = True
            self.__exit__(None, None, None)
            raise

    def __exit__(self, exc_type, exc, tb):
        harness.stop_all(self.processes)
        if exc_type is not None or self.failed:
            for p in self.processes:
                print(f"--- {p.name} log:\n{harness.tail(p.log_path)}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False


def error_code(body):
    return (body.get("error") or {}).get("code")


def test_transfers_run_over_tls_with_tokens():
    with SecureCluster() as c:
        status, body = c.call("coordinator", "POST", "/v1/transactions",
                              harness.transfer_body("bank-a", "alice", "bank-b", "bob", 30), who="client")
        assert status == 200 and body["outcome"] == "committed", (status, body)
        # The answer comes once the decision is durable; commits reach the agents after it.
        eventually(lambda: harness.balances(c.agents["bank-b"][1])["bob"] == 80, what="bob credited")
        eventually(lambda: harness.balances(c.agents["bank-a"][1])["alice"] == 70, what="alice debited")
        # The agents registered themselves with their peer tokens, over HTTPS.
        status, body = c.call("coordinator", "GET", "/v1/participants", who="reader")
        assert status == 200, body
        urls = {p["name"]: p["url"] for p in body["participants"]}
        assert all(u.startswith("https://") for u in urls.values()), urls
        # Plain HTTP to an HTTPS port gets no answer.
        plain = "http://" + c.coord_url[len("https://"):]
        try:
            status, _, _, _ = request("GET", plain, "/healthz", timeout=5.0)
        except OSError:
            status = None
        assert status != 200


def test_role_matrix():
    with SecureCluster() as c:
        for server, method, path, body, allowed in MATRIX:
            status, reply = c.call(server, method, path, body)
            assert status == 401 and error_code(reply) == "unauthorized", (server, method, path, status, reply)
            for who in TOKENS:
                status, reply = c.call(server, method, path, body, who=who)
                if who in allowed:
                    assert status not in (401, 403), (server, method, path, who, status, reply)
                else:
                    assert status == 403 and error_code(reply) == "forbidden", (server, method, path, who, status,
                                                                                 reply)
        # A wrong token is as good as none.
        status, reply = request("GET", c.coord_url, "/v1/participants", headers=bearer("not-a-token-0123456789"))[:2]
        assert status == 401, reply
        for server in ("coordinator", "agent"):
            status, _ = c.call(server, "GET", "/healthz")
            assert status == 200
        status, _ = c.call("coordinator", "GET", "/readyz")
        assert status == 200


def test_attacks_fail():
    with SecureCluster() as c:
        agent = c.agents["bank-a"][0].url
        # Re-pointing a participant needs admin (or being that participant).
        for who in (None, "client", "reader", "bank-b", "c1"):
            status, _ = c.call("coordinator", "PUT", "/v1/participants/bank-a", {"url": "https://127.0.0.1:1"}, who)
            assert status in (401, 403), (who, status)
        status, body = c.call("coordinator", "GET", "/v1/participants", who="admin")
        assert {p["name"]: p["url"] for p in body["participants"]}["bank-a"] == agent, body
        # Registering a URL with a path and query.
        status, body = c.call("coordinator", "PUT", "/v1/participants/bank-z", {"url": "http://host:1/path?x"}, "admin")
        assert status == 400, body
        for url in ("http://user@127.0.0.1:1", "http://127.0.0.1:1#x", "ftp://127.0.0.1:1", "http://127.0.0.1"):
            status, body = c.call("coordinator", "PUT", "/v1/participants/bank-z", {"url": url}, "admin")
            assert status == 400, (url, body)
        # Preparing or committing straight at an agent without a peer token.
        prepare = {"txid": "evil-1", "coordinator": c.coord_url,
                   "ops": [{"procedure": "debit", "args": {"account": "alice", "amount": 100}}]}
        for who in (None, "client", "admin", "reader"):
            for path, body in (("/v1/prepare", prepare), ("/v1/commit", {"txid": "evil-1"})):
                status, _ = c.call("agent", "POST", path, body, who)
                assert status in (401, 403), (who, path, status)
        # A batch without a token, or with a token that is not a peer's.
        batch = {"requests": [{"target": "/v1/prepare", "body": prepare}]}
        status, body = c.call("agent", "POST", "/v1/batch", batch)
        assert status == 401, body
        status, body = c.call("agent", "POST", "/v1/batch", batch, "admin")
        assert status == 403, body
        # A peer's batch: each sub-request meets its own route's rule; escaped
        # paths and nested batches go nowhere.
        sub = {"requests": [{"method": "GET", "target": "/v1/locks"},
                            {"target": "/v1/%62atch", "body": batch},
                            {"target": "/v1/%70repare", "body": prepare},
                            {"target": "/v1/batch", "body": batch},
                            {"target": "//v1/prepare", "body": prepare}]}
        status, body = c.call("agent", "POST", "/v1/batch", sub, "bank-b")
        assert status == 200, body
        statuses = [r["status"] for r in body["responses"]]
        assert statuses == [403, 400, 400, 400, 400], body
        # A batch nested 20,000 deep: refused quickly; the agent lives on.
        deep = json.dumps(batch)
        text = ""
        for _ in range(20000):
            text += '{"requests":[{"target":"/v1/batch","body":'
        text += deep + "}]}" * 20000
        started = time.monotonic()
        status, body = c.call("agent", "POST", "/v1/batch", text, "bank-b")
        assert time.monotonic() - started < 5.0
        assert status == 200 and body["responses"][0]["status"] == 400, (status, str(body)[:200])
        status, _ = c.call("agent", "GET", "/healthz")
        assert status == 200
        # Nothing was prepared or moved by any of it.
        status, body = c.call("agent", "GET", "/v1/transactions?state=prepared", who="c1")
        assert status == 200 and not body.get("transactions"), body
        assert harness.balances(c.agents["bank-a"][1])["alice"] == 100


def test_no_auth_file_needs_loopback_or_insecure():
    d = tempfile.mkdtemp(prefix="commitd-sec-")
    try:
        port = free_port()
        argv = [bin_path("commitd"), "--id", "c1", "--listen", f"0.0.0.0:{port}", "--data-dir", d]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        assert r.returncode == 2 and "--insecure" in r.stderr, (r.returncode, r.stderr)
        p = harness.Process("commitd-insecure", argv + ["--insecure"], os.path.join(d, "c.log"),
                            f"http://127.0.0.1:{port}")
        p.start()
        try:
            p.wait_healthy()
            assert "no_auth_file" in p.log_text()
        finally:
            harness.stop_all([p])
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    harness.main(globals())
