"""A private PostgreSQL server for the integration tests, and a Cluster whose
banks may live in it.

PgServer runs initdb into a temp dir and postgres on a free 127.0.0.1 port
with max_prepared_transactions set, as the current user, or as `nobody` when
the tests run as root (postgres refuses root). It is stopped, and its
directory removed, by close(). kill9() is a crash of the server: every
process of the cluster gets SIGKILL at once.

Tests that need it call pg_cluster.require() first: it raises Skip (and the
test prints why) when the PostgreSQL binaries are absent.

    with PgServer() as pg, PgCluster(pg, pg_banks=["bank-b"]) as c:
        status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 30)
"""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import harness
from harness import UNANSWERED_COORDINATOR, Bank, Cluster, Process, bin_path, free_port, source_path

PG_BIN = os.environ.get("COMMITD_PG_BIN", "/usr/lib/postgresql/15/bin")
_PR_SET_PDEATHSIG = 1
_NOBODY = 65534


class Skip(Exception):
    """The PostgreSQL binaries are not installed."""


def available():
    return all(os.access(os.path.join(PG_BIN, b), os.X_OK) for b in ("initdb", "postgres", "psql", "pg_isready"))


def require():
    if not available():
        raise Skip(f"PostgreSQL binaries not found in {PG_BIN} (install postgresql: scripts/deps.sh); "
                   "set COMMITD_PG_BIN to their directory")


def _as_server_user():
    # Runs in the child: drop to nobody when root, then die with the test.
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(_NOBODY)
        os.setuid(_NOBODY)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


class PgServer:
    """tls=True: the server also takes TLS sessions, with a certificate for
    127.0.0.1 from a CA of its own (tls_dsn() verifies it); dsn() stays on
    plain TCP."""

    def __init__(self, fsync=False, settings=None, start=True, tls=False):
        require()
        self.dir = tempfile.mkdtemp(prefix="commitd-pg-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "postgres.log")
        self.port = free_port()
        self.popen = None
        self.tls = tls
        if os.getuid() == 0:
            os.chown(self.dir, _NOBODY, _NOBODY)
        self._run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", "postgres", "--auth=trust",
                   "--no-sync", "-E", "UTF8", "--locale=C"])
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.dir}'",
            "max_prepared_transactions": "100",
            "max_connections": "200",
            "fsync": "on" if fsync else "off",
            "shared_buffers": "64MB",
        }
        if tls:
            conf.update(self._install_certificate())
        conf.update(settings or {})
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            for k, v in conf.items():
                f.write(f"{k} = {v}\n")
        if start:
            try:
                self.start()
            except BaseException:
                self.close()
                raise

    def _install_certificate(self):
        """The server's certificate and key in its data directory; the CA's
        stays outside, for tls_dsn(). Returns the settings that use them."""
        pki_dir = os.path.join(self.dir, "pki")
        os.mkdir(pki_dir)
        made = harness.make_pki(pki_dir)
        self.ca_file = made["ca"][0]
        for name, source in (("server.crt", made["server"][0]), ("server.key", made["server"][1])):
            target = os.path.join(self.data, name)
            shutil.copyfile(source, target)
            os.chmod(target, 0o600)  # postgres refuses a key others may read
            if os.getuid() == 0:
                os.chown(target, _NOBODY, _NOBODY)
        return {"ssl": "on", "ssl_cert_file": "'server.crt'", "ssl_key_file": "'server.key'"}

    def _run(self, argv):
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           preexec_fn=_as_server_user, cwd=self.dir, timeout=120)
        if r.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout.decode(errors='replace')}")

    def start(self):
        assert not self.alive(), "postgres is already running"
        with open(self.log_path, "ab") as logf:
            self.popen = subprocess.Popen([os.path.join(PG_BIN, "postgres"), "-D", self.data],
                                          stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                          start_new_session=True, preexec_fn=_as_server_user, cwd=self.dir)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"postgres exited with {self.popen.returncode}:\n{harness.tail(self.log_path)}")
            r = subprocess.run([os.path.join(PG_BIN, "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                return self
            time.sleep(0.1)
        raise AssertionError(f"postgres not ready within 60s:\n{harness.tail(self.log_path)}")

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def kill9(self):
        """A crash: SIGKILL to the postmaster and every backend at once."""
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(timeout=30)
        # Backends outlive a killed postmaster only briefly; wait until none holds the data dir.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = subprocess.run(["pgrep", "-f", f"postgres -D {self.data}"], stdout=subprocess.DEVNULL)
            if r.returncode != 0:
                break
            time.sleep(0.1)

    def stop(self):
        if not self.alive():
            return
        self.popen.send_signal(signal.SIGINT)  # fast shutdown
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill9()

    def close(self):
        self.stop()
        if self.popen is not None and self.alive():
            self.kill9()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            harness.log(f"postgres log:\n{harness.tail(self.log_path)}")
        self.close()
        return False

    # -- SQL through psql
    def dsn(self, db, user="postgres"):
        plain = f"host=127.0.0.1 port={self.port} dbname={db} user={user}"
        # libpq's default (sslmode=prefer) would take TLS wherever the server offers it.
        return plain + " sslmode=disable" if self.tls else plain

    def tls_dsn(self, db, user="postgres"):
        """A session over TLS that checks the server's certificate and name."""
        assert self.tls, "PgServer(tls=True) serves TLS"
        return (f"host=127.0.0.1 port={self.port} dbname={db} user={user} "
                f"sslmode=verify-full sslrootcert={self.ca_file}")

    def psql(self, sql, db="postgres", user="postgres", check=True):
        """Runs sql; returns [[column text...]] of its rows (unaligned, '|' separated)."""
        r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                            "-p", str(self.port), "-U", user, "-d", db, "-c", sql],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"psql {sql!r} failed: {r.stderr.decode(errors='replace')}")
        out = r.stdout.decode()
        return [line.split("|") for line in out.splitlines() if line != ""]

    def psql_file(self, path, db):
        r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", "postgres", "-d", db, "-f", path],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"psql -f {path} failed: {r.stderr.decode(errors='replace')}")

    def make_bank(self, db, seed_file):
        """A database holding examples/bank's schema and a seed."""
        if not os.path.isabs(seed_file):
            seed_file = source_path("examples", "bank", seed_file)
        self.psql(f'CREATE DATABASE "{db}"')
        self.psql_file(source_path("examples", "bank", "schema.sql"), db)
        self.psql_file(seed_file, db)

    def balances(self, db):
        return {a: int(b) for a, b in self.psql("SELECT id, balance FROM accounts ORDER BY id", db)}

    def journal(self, db, txid=None):
        sql = "SELECT txid, account, delta FROM journal"
        if txid is not None:
            sql += " WHERE txid = '" + txid.replace("'", "''") + "'"
        sql += " ORDER BY txid, account"
        return [(t, a, int(d)) for t, a, d in self.psql(sql, db)]

    def prepared_gids(self, db=None):
        sql = "SELECT gid FROM pg_prepared_xacts"
        if db:
            sql += f" WHERE database = '{db}'"
        return [row[0] for row in self.psql(sql + " ORDER BY gid")]


class PgCluster(Cluster):
    """harness.Cluster whose banks named in pg_banks are PostgreSQL databases
    of `pg` (database = bank name) served by commit-agent --backend postgres;
    the others are SQLite as usual."""

    def __init__(self, pg, pg_banks=("bank-b",), **kw):
        self.pg = pg
        self.pg_banks = set(pg_banks)
        super().__init__(**kw)

    def add_bank(self, name, seed, start=True):
        if name not in self.pg_banks:
            return super().add_bank(name, seed, start)
        self.pg.make_bank(name, seed)
        port = free_port()
        argv = [bin_path("commit-agent"), "--name", name, "--listen", f"127.0.0.1:{port}",
                "--backend", "postgres", "--dsn", self.pg.dsn(name),
                "--procedures", source_path("examples", "bank", "procedures.json"),
                "--coordinator", f"{self.coord_url},{UNANSWERED_COORDINATOR}"]
        if self.config_path:
            argv += ["--config", self.config_path]
        argv += list(self.agent_args.get(name, []))
        proc = Process(name, argv, os.path.join(self.dir, f"{name}.log"), f"http://127.0.0.1:{port}",
                       env=self.agent_env.get(name))
        bank = Bank(name, None, proc)
        self.banks[name] = bank
        if start:
            proc.start()
        return bank

    def balances(self, name):
        if name in self.pg_banks:
            return self.pg.balances(name)
        return super().balances(name)

    def journal(self, name, txid=None):
        if name in self.pg_banks:
            return self.pg.journal(name, txid)
        return super().journal(name, txid)

    def pg_prepared(self, name):
        """The gids PostgreSQL holds prepared in bank `name`'s database."""
        return self.pg.prepared_gids(name)


class DroppingProxy:
    """Forwards TCP connections from a port of its own to PostgreSQL's, and
    drop() cuts every connection it carries at once: the client sees its
    connection lost, while the server process goes on with the statement it
    runs until it next reads or writes its socket (what a broken network
    does). New connections are forwarded as before."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.sockets = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def dsn(self, db, user="postgres"):
        return f"host=127.0.0.1 port={self.port} dbname={db} user={user}"

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def drop(self):
        with self.lock:
            cut, self.sockets = self.sockets, []
        for s in cut:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.listener.close()
        self.drop()


def agent_argv(name, port, dsn, extra=()):
    return [bin_path("commit-agent"), "--name", name, "--listen", f"127.0.0.1:{port}", "--backend", "postgres",
            "--dsn", dsn, "--procedures", source_path("examples", "bank", "procedures.json"), *extra]


def run_cases(env_var, dsns, timeout=180, tls=False):
    """Runs a doctest executable of tests/pg (its path in the environment
    variable `env_var`, which ctest sets) against a private server (tls: one
    that also serves TLS): `dsns(pg)` prepares the server and returns the
    DSNs to hand it, as environment variables. The executable's output is
    printed; it must exit 0."""
    cases = os.environ.get(env_var, "")
    assert os.path.exists(cases), f"{env_var}={cases!r}: run this test through ctest"
    with PgServer(tls=tls) as pg:
        env = dict(os.environ, **dsns(pg))
        r = subprocess.run([cases], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        print(r.stdout.decode(errors="replace"))
        assert r.returncode == 0, f"{cases} exited {r.returncode}"


def main_for_cases(module_globals):
    """The __main__ of a test that runs C++ cases: skips without PostgreSQL."""
    if not available():
        print("SKIP: PostgreSQL binaries not found in " + PG_BIN + " (install postgresql)")
        raise SystemExit(77)
    harness.main(module_globals)
