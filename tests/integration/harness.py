"""A small harness for commitd's real-process integration tests.

Standard library only. A test file defines functions named test_* and ends with

    if __name__ == "__main__":
        harness.main(globals())

which parses --bin-dir/--source-dir, runs the tests in definition order, prints
the tail of every process log of a failed test, prints "N passed, M failed" as
its last line and exits non-zero on any failure.

Processes: commitd and commit-agent run on loopback on random free ports, each
in a private temp dir, with stdout and stderr going to a log file there (they
log JSON lines to stderr). Every process started is tracked and stopped at the
end of its test, on harness exit (atexit, SIGTERM) and, through
PR_SET_PDEATHSIG, even if the harness itself is SIGKILLed. Every wait has a
deadline.

Typical use:

    def test_something():
        with harness.Cluster() as c:          # two banks, one coordinator
            status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 30)
            assert status == 200, reply
            c.eventually_balance("bank-a", "alice", 70)
"""

import argparse
import atexit
import ctypes
import hashlib
import hmac
import http.client
import json
import os
import random
import shutil
import signal
import socket
import ssl
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

# --------------------------------------------------------------------------
# Arguments and environment

_HERE = os.path.dirname(os.path.abspath(__file__))


class _Options:
    bin_dir = os.path.join(os.path.dirname(os.path.dirname(_HERE)), "build", "release", "bin")
    source_dir = os.path.dirname(os.path.dirname(_HERE))
    keep = False


OPTIONS = _Options()


def bin_path(name):
    path = os.path.join(OPTIONS.bin_dir, name)
    if not os.access(path, os.X_OK):
        raise AssertionError(f"executable not found: {path} (build first: ./scripts/build.sh)")
    return path


def source_path(*parts):
    return os.path.join(OPTIONS.source_dir, *parts)


def soak():
    """True when COMMITD_SOAK asks for longer runs."""
    return os.environ.get("COMMITD_SOAK", "0") not in ("", "0", "false", "no")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------
# Ports

_ports_lock = threading.Lock()
_ports_given = set()
# Test processes that ctest runs side by side claim their ports here, one
# file per port (created exclusively), so that two of them never hand out the
# same port between choosing it and the server binding it. A claim older
# than _PORT_CLAIM_STALE_S was left by a process that died without cleaning up.
_PORT_CLAIMS = os.path.join(tempfile.gettempdir(), f"commitd-it-ports-{os.getuid()}")
_PORT_CLAIM_STALE_S = 3600
_ports_claimed = []


def _claim_port(port):
    os.makedirs(_PORT_CLAIMS, exist_ok=True)
    path = os.path.join(_PORT_CLAIMS, str(port))
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        try:
            if time.time() - os.stat(path).st_mtime < _PORT_CLAIM_STALE_S:
                return False
            os.utime(path)  # stale: taken over
        except OSError:
            return False
    _ports_claimed.append(path)
    return True


def _release_ports():
    for path in _ports_claimed:
        try:
            os.remove(path)
        except OSError:
            pass


atexit.register(_release_ports)


def free_port():
    """A loopback TCP port that is free now.

    Taken from below Linux's ephemeral range (32768-60999) so that it does not
    collide with the local ports of outgoing connections, never handed out
    twice by this process, and claimed against the other test processes
    running at the same time (released when this one exits).
    """
    with _ports_lock:
        for _ in range(1000):
            port = random.randint(20000, 32000)
            if port in _ports_given:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            finally:
                s.close()
            if not _claim_port(port):
                continue
            _ports_given.add(port)
            return port
    raise RuntimeError("no free port found")


# --------------------------------------------------------------------------
# HTTP

# The TLS context https:// requests use (use_tls sets it).
_tls_context = None


def use_tls(ca_file, client_cert=None, client_key=None):
    """Makes https:// requests verify servers against ca_file and, when given,
    present the client certificate. Returns the ssl.SSLContext."""
    global _tls_context
    context = ssl.create_default_context(cafile=ca_file)
    if client_cert:
        context.load_cert_chain(client_cert, client_key)
    _tls_context = context
    return context


def bearer(token):
    """The Authorization header of a bearer token, as a headers dict."""
    return {"Authorization": f"Bearer {token}"}


def make_pki(directory, server_names=("127.0.0.1",), clients=()):
    """A CA (ca.crt/ca.key), a server certificate (server.crt/.key) for the
    given IP addresses and client certificates (NAME.crt/.key), made with the
    openssl command in directory. Returns {name: (crt, key)} plus "ca"."""
    def run(*argv):
        subprocess.run(argv, cwd=directory, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=commitd-test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")
    made = {"ca": (os.path.join(directory, "ca.crt"), os.path.join(directory, "ca.key"))}
    alt = ",".join(f"IP:{n}" for n in server_names)
    server_ext = f"subjectAltName={alt}\nextendedKeyUsage=serverAuth,clientAuth"
    for name, ext in [("server", server_ext)] + [(c, "extendedKeyUsage=clientAuth") for c in clients]:
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr")
        with open(os.path.join(directory, f"{name}.ext"), "w") as f:
            f.write(ext + "\n")
        run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-out", f"{name}.crt", "-extfile", f"{name}.ext")
        made[name] = (os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key"))
    return made


def _split(url):
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port or (443 if u.scheme == "https" else 80), u.path.rstrip("/")


def request(method, url, path, body=None, headers=None, timeout=30.0):
    """One HTTP request. Returns (status, json_or_None, raw_text, headers_dict).

    body: a dict/list (sent as JSON), a str or bytes (sent as is), or None.
    Connection errors raise OSError.
    """
    host, port, prefix = _split(url)
    hdrs = {"Connection": "close"}
    data = None
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        hdrs["Content-Type"] = "application/json"
    if headers:
        hdrs.update(headers)
    if url.startswith("https://"):
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=_tls_context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, prefix + path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read().decode("utf-8", "replace")
        resp_headers = {k.lower(): v for k, v in resp.getheaders()}
        status = resp.status
    finally:
        conn.close()
    try:
        obj = json.loads(raw) if raw else None
    except ValueError:
        obj = None
    return status, obj, raw, resp_headers


def post(url, path, body, headers=None, timeout=30.0):
    """POST; returns (status, json). A non-JSON reply gives {"_raw": text}."""
    status, obj, raw, _ = request("POST", url, path, body, headers, timeout)
    return status, (obj if obj is not None else {"_raw": raw})


def get(url, path, timeout=10.0, headers=None):
    """GET; returns (status, json). A non-JSON reply gives {"_raw": text}."""
    status, obj, raw, _ = request("GET", url, path, None, headers, timeout)
    return status, (obj if obj is not None else {"_raw": raw})


def _url_of(x):
    return x.url if hasattr(x, "url") else x


def transfer_body(src_bank, src, dst_bank, dst, amount, timeout_ms=None, protocol=None):
    body = {"branches": [
        {"participant": src_bank, "ops": [
            {"procedure": "debit", "args": {"account": src, "amount": amount}},
            {"procedure": "journal", "args": {"account": src, "delta": -amount}}]},
        {"participant": dst_bank, "ops": [
            {"procedure": "credit", "args": {"account": dst, "amount": amount}},
            {"procedure": "journal", "args": {"account": dst, "delta": amount}}]}]}
    if timeout_ms is not None:
        body["timeout_ms"] = timeout_ms
    if protocol is not None:
        body["protocol"] = protocol
    return body


def transfer(coordinator, src_bank, src, dst_bank, dst, amount, idem_key=None,
             timeout_ms=None, protocol=None, http_timeout=30.0, headers=None):
    """Moves `amount` from src (in src_bank) to dst (in dst_bank) in one
    distributed transaction. Returns (status, json)."""
    headers = dict(headers or {})
    if idem_key:
        headers["Idempotency-Key"] = idem_key
    return post(_url_of(coordinator), "/v1/transactions",
                transfer_body(src_bank, src, dst_bank, dst, amount, timeout_ms, protocol),
                headers=headers, timeout=http_timeout)


def prepared(agent, headers=None):
    """The txids an agent holds prepared (in doubt)."""
    status, body = get(_url_of(agent), "/v1/transactions?state=prepared", headers=headers)
    assert status == 200, f"GET prepared on {_url_of(agent)}: {status} {body}"
    return [t["txid"] for t in body.get("transactions", [])]


# --------------------------------------------------------------------------
# Polling

def eventually(fn, timeout=30.0, interval=0.05, what=None):
    """Calls fn until it returns a truthy value without raising (AssertionError
    and OSError count as "not yet"); returns that value. Fails after timeout
    seconds with the last value or exception."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = f"returned {value!r}"
        except (AssertionError, OSError, sqlite3.Error, KeyError, ValueError) as e:
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {timeout}s: {what or getattr(fn, '__name__', fn)}; last: {last}")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


# --------------------------------------------------------------------------
# Bank databases

def make_bank_db(path, seed_file):
    """Creates a bank database from examples/bank/schema.sql and a seed file
    (a path, or "seed-a.sql"/"seed-b.sql" relative to examples/bank)."""
    if not os.path.isabs(seed_file):
        seed_file = source_path("examples", "bank", seed_file)
    with open(source_path("examples", "bank", "schema.sql")) as f:
        schema = f.read()
    with open(seed_file) as f:
        seed = f.read()
    conn = sqlite3.connect(path)
    try:
        conn.executescript(schema)
        conn.executescript(seed)
        conn.commit()
    finally:
        conn.close()


def _read(db_path, sql, params=()):
    # Read-only when possible; a WAL database whose -shm cannot be used
    # read-only falls back to a query_only connection. Either way a reader
    # sees committed data only.
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        conn = sqlite3.connect(db_path, timeout=10)
        try:
            conn.execute("PRAGMA query_only = 1")
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


def balances(db_path):
    """{account: balance} of a bank database."""
    return dict(_read(db_path, "SELECT id, balance FROM accounts ORDER BY id"))


def journal(db_path, txid=None):
    """[(txid, account, delta)] of a bank database, optionally for one txid."""
    if txid is None:
        return _read(db_path, "SELECT txid, account, delta FROM journal ORDER BY txid, account")
    return _read(db_path, "SELECT txid, account, delta FROM journal WHERE txid = ? ORDER BY account", (txid,))


def prepared_in_db(db_path):
    """{txid: state} of the agent's _commitd_prepared table, read from the file."""
    return dict(_read(db_path, "SELECT txid, state FROM _commitd_prepared"))


def seed_balances(seed_file):
    """The balances a seed file creates, computed with an in-memory database."""
    if not os.path.isabs(seed_file):
        seed_file = source_path("examples", "bank", seed_file)
    conn = sqlite3.connect(":memory:")
    try:
        with open(source_path("examples", "bank", "schema.sql")) as f:
            conn.executescript(f.read())
        with open(seed_file) as f:
            conn.executescript(f.read())
        return dict(conn.execute("SELECT id, balance FROM accounts"))
    finally:
        conn.close()


# --------------------------------------------------------------------------
# Processes

_live = []            # every Process that may be running
_started_in_test = []  # processes started during the current test (for log tails)
_live_lock = threading.Lock()

_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = None


def _child_setup():
    # Dies with the harness even if the harness is SIGKILLed (e.g. by a ctest
    # timeout). Processes are started from the main thread only: the death
    # signal fires when the thread that forked the child exits.
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Process:
    """One commitd or commit-agent process; can be stopped and restarted with
    the same arguments (same port, same files)."""

    def __init__(self, name, argv, log_path, url, env=None):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.url = url
        self.env = dict(env or {})
        self.popen = None
        self.starts = 0

    def start(self, env=None):
        """Starts the process. env (if given) replaces the extra environment
        of this start and later restarts, e.g. {"COMMITD_FAILPOINTS": "..."}."""
        assert not self.alive(), f"{self.name} is already running"
        if env is not None:
            self.env = dict(env)
        full_env = dict(os.environ)
        full_env.pop("COMMITD_FAILPOINTS", None)
        full_env.update(self.env)
        self.starts += 1
        with open(self.log_path, "ab") as logf:
            logf.write((f"=== harness: start #{self.starts} of {self.name}: {' '.join(self.argv)}"
                        f" env={self.env}\n").encode())
            logf.flush()
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                          env=full_env, start_new_session=True,
                                          preexec_fn=_child_setup)
        with _live_lock:
            if self not in _live:
                _live.append(self)
            if self not in _started_in_test:
                _started_in_test.append(self)
        return self

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def returncode(self):
        return None if self.popen is None else self.popen.poll()

    def wait_exit(self, timeout=10.0):
        """Waits for the process to exit; returns its exit code (negative:
        killed by that signal) or raises AssertionError."""
        if self.popen is None:
            return None
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not exit within {timeout}s")

    def terminate(self, timeout=15.0):
        """SIGTERM and wait; SIGKILL if it does not exit in time. Returns the
        exit code (None if it had to be killed)."""
        if not self.alive():
            return self.returncode()
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{self.name} ignored SIGTERM for {timeout}s; killing it")
            self.popen.kill()
            self.popen.wait(timeout=10)
            return None

    def kill9(self):
        """SIGKILL (a crash) and wait until it is gone."""
        if self.alive():
            self.popen.kill()
            self.popen.wait(timeout=10)
        return self.returncode()

    def restart(self, env=None):
        if self.alive():
            self.terminate()
        return self.start(env=env)

    def wait_healthy(self, timeout=20.0, path="/healthz"):
        """Waits until GET path answers 200; fails early if the process exits."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"{self.name} exited with {self.returncode()} while starting; "
                                     f"log:\n{tail(self.log_path)}")
            try:
                status, body = get(self.url, path, timeout=2.0)
                if status == 200:
                    return self
                last = f"{status} {body}"
            except OSError as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(0.05)
        raise AssertionError(f"{self.name} not healthy at {self.url}{path} within {timeout}s (last: {last}); "
                             f"log:\n{tail(self.log_path)}")

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def kill9_all(processes):
    """SIGKILL to every running process first, then waits for each."""
    procs = [p for p in processes if p.alive()]
    for p in procs:
        p.popen.kill()
    for p in procs:
        p.popen.wait(timeout=10)


def tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(no log: {e})"
    return "\n".join(text.splitlines()[-lines:])


def stop_all(processes=None):
    """Stops processes (default: every one still running). Returns {name: rc}."""
    with _live_lock:
        procs = list(processes if processes is not None else _live)
    codes = {}
    for p in procs:
        if p.alive():
            try:
                codes[p.name] = p.terminate(timeout=10.0)
            except Exception as e:  # keep stopping the others
                log(f"stopping {p.name}: {e}")
                try:
                    p.popen.kill()
                except Exception:
                    pass
        else:
            codes[p.name] = p.returncode()
    return codes


def _kill_all_now():
    with _live_lock:
        procs = list(_live)
    for p in procs:
        try:
            if p.alive():
                p.popen.kill()
                p.popen.wait(timeout=5)
        except Exception:
            pass


atexit.register(_kill_all_now)


# --------------------------------------------------------------------------
# Configs

# Short timeouts so that crashes and timeouts resolve within seconds, yet not
# so short that a loaded 2-core machine (ctest -j2) times out healthy peers.
FAST_CONFIG = {
    "request_timeout_ms": 2000,
    "retry_initial_ms": 20,
    "retry_max_ms": 200,
    "resolve_initial_ms": 50,
    "resolve_max_ms": 300,
    "default_tx_timeout_ms": 3000,
}


def write_config(path, config):
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    return path


# --------------------------------------------------------------------------
# A cluster: bank agents and one coordinator

class Bank:
    def __init__(self, name, db, process):
        self.name = name
        self.db = db
        self.process = process

    @property
    def url(self):
        return self.process.url


class Cluster:
    """Bank agents (bank-a and bank-b by default, each with its own SQLite
    database created from examples/bank) and one coordinator, in a private
    temp dir. Use as a context manager; processes are stopped on exit and the
    temp dir is removed unless the block failed (its logs are printed then).

    banks: {name: seed file}; config: the --config JSON for every process
    (None: no --config); agent_args/agent_env: {name: [...]/{...}} extra
    flags/environment per agent; coordinator_env: environment of commitd.
    """

    def __init__(self, banks=None, config=None, agent_args=None, agent_env=None,
                 coordinator_env=None, coordinator_args=None, start=True):
        self.dir = tempfile.mkdtemp(prefix="commitd-it-")
        self.banks = {}
        self.bank_seeds = dict(banks or {"bank-a": "seed-a.sql", "bank-b": "seed-b.sql"})
        self.config = FAST_CONFIG if config is None else config
        self.config_path = write_config(os.path.join(self.dir, "config.json"), self.config) if self.config else None
        self.agent_args = agent_args or {}
        self.agent_env = agent_env or {}
        self.coordinator_env = coordinator_env or {}
        self.coordinator_args = list(coordinator_args or [])
        self.coord_port = free_port()
        self.coord_url = f"http://127.0.0.1:{self.coord_port}"
        self.data_dir = os.path.join(self.dir, "c1-data")
        os.makedirs(self.data_dir)
        self.coordinator = None
        self.failed = False
        # Sent by the shorthands below to the coordinator and to the agents:
        # bearer tokens when they run with --auth-file.
        self.client_headers = None
        self.peer_headers = None
        if start:
            try:
                self.start()
            except BaseException:
                self.failed = True
                self.close()
                raise

    # -- setup
    def start(self):
        for name, seed in self.bank_seeds.items():
            self.add_bank(name, seed)
        for bank in self.banks.values():
            bank.process.wait_healthy()
        self.start_coordinator()
        return self

    def add_bank(self, name, seed, start=True):
        db = os.path.join(self.dir, f"{name}.db")
        make_bank_db(db, seed)
        port = free_port()
        argv = [bin_path("commit-agent"), "--name", name, "--listen", f"127.0.0.1:{port}",
                "--db", db, "--procedures", source_path("examples", "bank", "procedures.json"),
                "--coordinator", f"{self.coord_url},{UNANSWERED_COORDINATOR}"]
        if self.config_path:
            argv += ["--config", self.config_path]
        argv += list(self.agent_args.get(name, []))
        proc = Process(name, argv, os.path.join(self.dir, f"{name}.log"), f"http://127.0.0.1:{port}",
                       env=self.agent_env.get(name))
        bank = Bank(name, db, proc)
        self.banks[name] = bank
        if start:
            proc.start()
        return bank

    def start_coordinator(self, wait=True):
        if self.coordinator is None:
            argv = [bin_path("commitd"), "--id", "c1", "--listen", f"127.0.0.1:{self.coord_port}",
                    "--data-dir", self.data_dir]
            for bank in self.banks.values():
                argv += ["--participant", f"{bank.name}={bank.url}"]
            if self.config_path:
                argv += ["--config", self.config_path]
            argv += self.coordinator_args
            self.coordinator = Process("commitd-c1", argv, os.path.join(self.dir, "commitd-c1.log"),
                                       self.coord_url, env=self.coordinator_env)
        self.coordinator.start()
        if wait:
            self.wait_coordinator()
        return self.coordinator

    def wait_coordinator(self, timeout=20.0):
        self.coordinator.wait_healthy(timeout)
        # /readyz: a single node is ready once it leads itself. Tolerate a
        # build that does not serve it yet (404).
        def ready():
            status, _ = get(self.coord_url, "/readyz", timeout=2.0)
            return status in (200, 404)
        eventually(ready, timeout, what="coordinator /readyz")

    # -- shorthands
    @property
    def url(self):
        return self.coord_url

    def bank(self, name):
        return self.banks[name]

    def agent(self, name):
        return self.banks[name].process

    def transfer(self, src_bank, src, dst_bank, dst, amount, **kw):
        return transfer(self.coord_url, src_bank, src, dst_bank, dst, amount, headers=self.client_headers, **kw)

    def post(self, path, body, headers=None, timeout=30.0):
        return post(self.coord_url, path, body, dict(self.client_headers or {}, **(headers or {})), timeout)

    def get(self, path, timeout=10.0):
        return get(self.coord_url, path, timeout, headers=self.client_headers)

    def agent_tx(self, name, txid):
        """(status, json) of GET /v1/transactions/{txid} on agent `name`."""
        return get(self.banks[name].url, f"/v1/transactions/{urllib.parse.quote(txid, safe='')}",
                   headers=self.peer_headers)

    def balances(self, name):
        return balances(self.banks[name].db)

    def journal(self, name, txid=None):
        return journal(self.banks[name].db, txid)

    def journal_txids(self, name):
        return sorted({row[0] for row in self.journal(name)})

    def seed(self, name):
        return seed_balances(self.bank_seeds[name])

    def prepared(self, name):
        return prepared(self.banks[name].url, headers=self.peer_headers)

    def eventually_balance(self, name, account, expected, timeout=30.0):
        def check():
            got = self.balances(name).get(account)
            assert got == expected, f"{name}.{account} = {got}, want {expected}"
            return True
        eventually(check, timeout, what=f"{name}.{account} == {expected}")

    def eventually_nothing_prepared(self, names=None, timeout=30.0):
        for name in names or list(self.banks):
            def check(name=name):
                txids = self.prepared(name)
                assert not txids, f"{name} still holds prepared {txids}"
                return True
            eventually(check, timeout, what=f"nothing prepared on {name}")

    def tx_status(self, txid):
        return self.get(f"/v1/transactions/{urllib.parse.quote(txid, safe='')}")

    def kill9_all(self):
        """SIGKILL to the coordinator and every agent at once (a power cut),
        then waits until all are gone."""
        kill9_all(self.processes())

    def start_all(self):
        """Starts every stopped agent, then the coordinator, and waits for them."""
        for bank in self.banks.values():
            if not bank.process.alive():
                bank.process.start()
        for bank in self.banks.values():
            bank.process.wait_healthy()
        if not self.coordinator.alive():
            self.start_coordinator()

    # -- teardown
    def processes(self):
        procs = [b.process for b in self.banks.values()]
        if self.coordinator:
            procs.insert(0, self.coordinator)
        return procs

    def stop(self):
        """SIGTERM to the coordinator, then the agents. Returns {name: rc}."""
        return stop_all(self.processes())

    def close(self):
        self.stop()
        if self.failed or OPTIONS.keep:
            log(f"kept test dir {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.failed = True
        self.close()
        return False


# --------------------------------------------------------------------------
# A 3PC transaction left in doubt (docs/operations.md, "A 3PC transaction in doubt")

# Short deadlines, so that the agents' termination protocol starts within a few seconds.
QUICK_3PC_CONFIG = dict(FAST_CONFIG, default_tx_timeout_ms=1500, termination_grace_ms=500, request_timeout_ms=500,
                        connect_timeout_ms=300)
# The same, with agents that forget a finished transaction within two seconds.
FORGETFUL_3PC_CONFIG = dict(QUICK_3PC_CONFIG, outcome_retention_ms=1500, outcome_memory_ms=1000)
# The coordinator's environment: killed -9 once every precommit is acknowledged, before its commit record.
CRASH_BEFORE_3PC_COMMIT = {"COMMITD_FAILPOINTS": "coordinator.crash_before_3pc_commit_record"}


def crash_coordinator_in_3pc_transfer(c):
    """Sends a 3PC transfer of 30 from bank-a's alice to bank-b's bob to a
    coordinator whose failpoint kills it midway; waits until it died of it."""
    try:
        status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 30, protocol="3pc", http_timeout=10)
        raise AssertionError(f"the coordinator answered instead of crashing: {status} {body}")
    except OSError:
        pass
    rc = c.coordinator.wait_exit(10)
    assert rc == -signal.SIGKILL, f"commitd did not die at {c.coordinator_env}: rc={rc}"


def leave_3pc_transfer_in_doubt(c, restart_env=None):
    """With a cluster started with FORGETFUL_3PC_CONFIG and CRASH_BEFORE_3PC_COMMIT:
    the coordinator dies during a 3PC transfer, the agents commit it by
    termination and forget it, and the coordinator, started again without its
    failpoint (with restart_env if given), finds the transfer's outcome in
    doubt. Returns its txid."""
    crash_coordinator_in_3pc_transfer(c)
    c.eventually_balance("bank-a", "alice", c.seed("bank-a")["alice"] - 30, timeout=30)
    c.eventually_balance("bank-b", "bob", c.seed("bank-b")["bob"] + 30, timeout=30)
    c.eventually_nothing_prepared(timeout=30)
    txids = c.journal_txids("bank-a")
    assert len(txids) == 1, txids
    txid = txids[0]
    wait_agents_forgot(c, txid)
    restart_coordinator_in_doubt(c, txid, env=restart_env)
    return txid


def wait_agents_forgot(c, txid):
    """Waits until every agent of the cluster answers txid "unknown": it no
    longer remembers the transaction's outcome (FORGETFUL_3PC_CONFIG)."""
    for name in c.banks:
        def forgotten(name=name):
            status, body = c.agent_tx(name, txid)
            return status == 200 and body["state"] == "unknown"
        eventually(forgotten, timeout=30, what=f"{name} forgot {txid}")


def restart_coordinator_in_doubt(c, txid, env=None):
    """Starts the stopped coordinator without failpoints (with env if given)
    and waits until it reports the 3PC transaction txid in doubt. Returns the
    transaction."""
    c.coordinator.start(env=env or {})
    c.wait_coordinator()

    def in_doubt():
        status, tx = c.tx_status(txid)
        assert status == 200, (status, tx)
        errors = [b.get("last_error", "") for b in tx.get("branches", [])]
        return tx["outcome"] == "pending" and all("in doubt" in e for e in errors) and tx
    return eventually(in_doubt, timeout=20, what=f"{txid} reported in doubt")


# --------------------------------------------------------------------------
# Talking to one agent directly (as a coordinator would)

# A coordinator every Cluster agent knows (--coordinator) and that never
# answers: tests that play the coordinator name it in their prepares.
UNANSWERED_COORDINATOR = "http://127.0.0.1:1"


def test_abort_key(txid):
    """The abort key a test playing the coordinator gives txid (a real
    coordinator derives it from its log's secret)."""
    return hashlib.sha256(f"test coordinator:{txid}".encode()).hexdigest()


def recorded_outcome(cluster, txid, db_path=None):
    """The outcome a single coordinator's decision log (or the group member's
    raft.db at db_path) holds for txid (None: no record)."""
    db = sqlite3.connect(db_path or os.path.join(cluster.data_dir, "decisions.db"))
    try:
        row = db.execute("SELECT outcome FROM decisions WHERE txid = ?", (txid,)).fetchone()
    finally:
        db.close()
    return row[0] if row else None


def decision_log_keys(data_dir, txid, file_name="decisions.db"):
    """(log_id, abort key, commit key) the coordinator's decisions.db in
    data_dir (a group member's raft.db with file_name) gives txid
    (common/abort_key.h)."""
    db = sqlite3.connect(os.path.join(data_dir, file_name))
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    finally:
        db.close()
    secret = meta["abort_secret"].encode()
    abort_key = hmac.new(secret, txid.encode(), hashlib.sha256).hexdigest()
    commit_key = hmac.new(secret, b"commit\0" + txid.encode(), hashlib.sha256).hexdigest()
    return meta["log_id"], abort_key, commit_key


def prepare_body(txid, participant, ops, coordinator=UNANSWERED_COORDINATOR, timeout_ms=60000,
                 participants=None):
    """The body of POST /v1/prepare. The default coordinator URL is never
    answered; with the long default timeout the agent does not ask it before
    the test is done. It carries test_abort_key(txid), which agent_abort sends."""
    return {"txid": txid, "protocol": "2pc", "participant": participant, "coordinator": coordinator,
            "timeout_ms": timeout_ms, "ops": ops, "participants": participants or [],
            "abort_key": test_abort_key(txid)}


def debit_ops(account, amount):
    """The bank-side ops of a debit: the procedure and its journal row."""
    return [{"procedure": "debit", "args": {"account": account, "amount": amount}},
            {"procedure": "journal", "args": {"account": account, "delta": -amount}}]


def agent_prepare(agent, txid, ops, **kw):
    """POST /v1/prepare to an agent (name from kw["participant"] or ""). Returns (status, json)."""
    participant = kw.pop("participant", "")
    return post(_url_of(agent), "/v1/prepare", prepare_body(txid, participant, ops, **kw))


def agent_commit(agent, txid):
    return post(_url_of(agent), "/v1/commit", {"txid": txid})


def agent_abort(agent, txid, abort_key=None):
    """POST /v1/abort with test_abort_key(txid), or with abort_key ("" sends none)."""
    key = test_abort_key(txid) if abort_key is None else abort_key
    body = {"txid": txid, "abort_key": key} if key else {"txid": txid}
    return post(_url_of(agent), "/v1/abort", body)


def agent_locks(agent):
    """{lock key: holder txid} from GET /v1/locks."""
    status, body = get(_url_of(agent), "/v1/locks")
    assert status == 200, f"GET /v1/locks on {_url_of(agent)}: {status} {body}"
    return {entry["key"]: entry["txid"] for entry in body["locks"]}


def held(agent, state="prepared"):
    """{txid: entry} from GET /v1/transactions?state=..."""
    status, body = get(_url_of(agent), f"/v1/transactions?state={state}")
    assert status == 200, f"GET held on {_url_of(agent)}: {status} {body}"
    return {t["txid"]: t for t in body["transactions"]}


def ctl(*args, timeout=60):
    """(exit code, stdout, stderr) of one commitctl run."""
    p = subprocess.run([bin_path("commitctl"), *args], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def participant_flags(cluster):
    """commitctl's --participant NAME=URL flags for every bank of a Cluster."""
    flags = []
    for name, bank in cluster.banks.items():
        flags += ["--participant", f"{name}={bank.url}"]
    return flags


def metrics(url):
    """{name: value} of a Prometheus text page (GET /metrics), unlabeled samples only."""
    status, _, raw, _ = request("GET", _url_of(url), "/metrics")
    assert status == 200, f"GET /metrics on {_url_of(url)}: {status}"
    values = {}
    for line in raw.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            values[name] = float(value)
    return values


def write_seed(path, table_rows):
    """Writes an SQL seed file: table_rows is {table: [(v1, v2, ...), ...]}."""
    def literal(v):
        return str(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'"
    with open(path, "w") as f:
        for table, rows in table_rows.items():
            for row in rows:
                f.write(f"INSERT INTO {table} VALUES({', '.join(literal(v) for v in row)});\n")
    return path


# --------------------------------------------------------------------------
# Assertions

def expect_status(result, status, what=""):
    got, body = result
    assert got == status, f"{what}: HTTP {got}, want {status}; body: {json.dumps(body)}"
    return body


def reason_of(body):
    return str(body.get("reason", "")) if isinstance(body, dict) else ""


# --------------------------------------------------------------------------
# Runner

def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def main(namespace):
    parser = argparse.ArgumentParser(description="commitd integration tests")
    parser.add_argument("--bin-dir", default=OPTIONS.bin_dir)
    parser.add_argument("--source-dir", default=OPTIONS.source_dir)
    parser.add_argument("--keep", action="store_true", help="keep every test dir")
    parser.add_argument("-k", dest="pattern", default=None, help="run only tests whose name contains this")
    parser.add_argument("tests", nargs="*", help="names of tests to run (default: all)")
    args = parser.parse_args()
    OPTIONS.bin_dir = os.path.abspath(args.bin_dir)
    OPTIONS.source_dir = os.path.abspath(args.source_dir)
    OPTIONS.keep = args.keep
    signal.signal(signal.SIGTERM, _on_sigterm)

    tests = [(name, fn) for name, fn in namespace.items() if name.startswith("test_") and callable(fn)]
    if args.tests:
        tests = [(n, f) for n, f in tests if n in args.tests]
    if args.pattern:
        tests = [(n, f) for n, f in tests if args.pattern in n]

    passed, failed = 0, []
    for name, fn in tests:
        with _live_lock:
            _started_in_test.clear()
        log(f"RUN  {name}")
        t0 = time.monotonic()
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - report everything, incl. SystemExit from SIGTERM
            failed.append(name)
            log(f"FAIL {name} ({time.monotonic() - t0:.1f}s)")
            traceback.print_exc(file=sys.stdout)
            with _live_lock:
                procs = list(_started_in_test)
            for p in procs:
                print(f"--- last lines of {p.name} log ({p.log_path}) ---")
                print(tail(p.log_path, 60))
            sys.stdout.flush()
            stop_all()
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                break
        else:
            passed += 1
            log(f"PASS {name} ({time.monotonic() - t0:.1f}s)")
            stop_all()
    _kill_all_now()
    if failed:
        print("failed: " + ", ".join(failed))
    if not tests:
        print("no tests selected")
    print(f"{passed} passed, {len(failed)} failed", flush=True)
    sys.exit(1 if failed or not tests else 0)
