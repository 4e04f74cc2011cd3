"""The PostgreSQL agent refuses to run behind a connection pooler.

A prepare whose answer is lost (the connection broke during PREPARE
TRANSACTION) is settled by looking for the server process that ran it: only
once that process is gone is "no such prepared transaction" final. Through a
pooler such as PgBouncer the connection names a process of the pooler's own,
and each transaction may run on another server process, so that search would
look for the wrong process and could let a prepared transaction be forgotten
while it still holds its locks. The agent checks at start (and for every
session it opens) that the process serving it is the one the connection
names, and refuses a pooler with a clear error.

Run: python3 test_postgres_pooler.py --bin-dir build/release/bin --source-dir .
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pg_cluster  # noqa: E402
from harness import free_port  # noqa: E402
from pg_cluster import PgServer  # noqa: E402

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


class PgBouncer:
    """PgBouncer in transaction pooling mode in front of one database of pg."""

    def __init__(self, pg, db):
        self.dir = os.path.join(pg.dir, "pgbouncer")
        os.makedirs(self.dir)
        self.port = free_port()
        with open(os.path.join(self.dir, "pgbouncer.ini"), "w") as f:
            f.write(f"""[databases]
{db} = host=127.0.0.1 port={pg.port} dbname={db} user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
logfile = {self.dir}/pgbouncer.log
pidfile = {self.dir}/pgbouncer.pid
""")
        if os.getuid() == 0:  # PgBouncer refuses root, as postgres does: it runs as the server's user
            for path in (self.dir, os.path.join(self.dir, "pgbouncer.ini")):
                os.chown(path, pg_cluster._NOBODY, pg_cluster._NOBODY)
        self.proc = subprocess.Popen([PGBOUNCER, os.path.join(self.dir, "pgbouncer.ini")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=pg_cluster._as_server_user, cwd=self.dir)
        harness.eventually(lambda: self.psql("SELECT 1") == "1", timeout=20, what="PgBouncer answering")

    def dsn(self, db):
        return f"host=127.0.0.1 port={self.port} dbname={db} user=postgres"

    def psql(self, sql):
        r = subprocess.run(["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-d", "bank", "-c", sql], capture_output=True, text=True, timeout=30)
        return r.stdout.strip() if r.returncode == 0 else None

    def close(self):
        self.proc.kill()
        self.proc.wait()


def test_refuses_a_connection_pooler():
    with PgServer() as pg:
        pg.make_bank("bank", "seed-b.sql")
        bouncer = PgBouncer(pg, "bank")
        try:
            # The pooler works: statements go through it to the bank's database.
            assert bouncer.psql("SELECT count(*) > 0 FROM accounts") == "t"
            try:
                r = subprocess.run(pg_cluster.agent_argv("bank", free_port(), bouncer.dsn("bank")),
                                   stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
            except subprocess.TimeoutExpired as e:
                raise AssertionError(f"the agent ran behind the pooler instead of refusing it: {e.stderr}") from e
            assert r.returncode == 1 and "connection pooler" in r.stderr, (r.returncode, r.stderr)
            assert "Connect the agent to PostgreSQL itself" in r.stderr, r.stderr
            assert pg.prepared_gids("bank") == []
        finally:
            bouncer.close()
        # The same agent connected to PostgreSQL itself starts and answers.
        port = free_port()
        agent = harness.Process("bank", pg_cluster.agent_argv("bank", port, pg.dsn("bank")),
                                os.path.join(pg.dir, "agent.log"), f"http://127.0.0.1:{port}")
        try:
            agent.start().wait_healthy()
        finally:
            agent.terminate()


if __name__ == "__main__":
    if not pg_cluster.available():
        print("SKIP: PostgreSQL binaries not found in " + pg_cluster.PG_BIN + " (install postgresql)")
        sys.exit(77)
    if not os.access(PGBOUNCER, os.X_OK):
        print("SKIP: pgbouncer not found (install pgbouncer: scripts/deps.sh)")
        sys.exit(77)
    harness.main(globals())
