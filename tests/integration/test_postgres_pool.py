"""The PostgreSQL participant's connection pool and non-blocking statements
(participant/pg_pool.h, participant/pg_connection.h) against a private
PostgreSQL server: runs the C++ cases of tests/pg/pool_test.cc with its DSN."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pg_cluster  # noqa: E402
from pg_cluster import PgServer  # noqa: E402

CASES = os.environ.get("COMMITD_PG_POOL_TEST", "")


def test_pool_cases():
    assert os.path.exists(CASES), f"COMMITD_PG_POOL_TEST={CASES!r}: run this test through ctest"
    with PgServer() as pg:
        pg.psql('CREATE DATABASE "store"')
        env = dict(os.environ, COMMITD_TEST_PG_DSN=pg.dsn("store"))
        r = subprocess.run([CASES], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=180)
        print(r.stdout.decode(errors="replace"))
        assert r.returncode == 0, f"{CASES} exited {r.returncode}"


if __name__ == "__main__":
    if not pg_cluster.available():
        print("SKIP: PostgreSQL binaries not found in " + pg_cluster.PG_BIN + " (install postgresql)")
        sys.exit(77)
    harness.main(globals())
