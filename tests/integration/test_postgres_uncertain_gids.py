"""The roll-back of gids whose PREPARE TRANSACTION outcome was uncertain
(participant/pg_uncertain_gids.h) against a private PostgreSQL server: runs
the C++ cases of tests/pg/uncertain_gids_test.cc with the server's DSNs."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pg_cluster  # noqa: E402
from pg_cluster import PgServer  # noqa: E402

CASES = os.environ.get("COMMITD_PG_UNCERTAIN_GIDS_TEST", "")


def test_uncertain_gids_cases():
    assert os.path.exists(CASES), f"COMMITD_PG_UNCERTAIN_GIDS_TEST={CASES!r}: run this test through ctest"
    with PgServer() as pg:
        pg.psql('CREATE DATABASE "store"')
        pg.psql("CREATE ROLE clerk LOGIN")
        env = dict(os.environ, COMMITD_TEST_PG_DSN=pg.dsn("store"),
                   COMMITD_TEST_PG_DSN_UNPRIVILEGED=pg.dsn("store", user="clerk"))
        r = subprocess.run([CASES], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        print(r.stdout.decode(errors="replace"))
        assert r.returncode == 0, f"{CASES} exited {r.returncode}"


if __name__ == "__main__":
    if not pg_cluster.available():
        print("SKIP: PostgreSQL binaries not found in " + pg_cluster.PG_BIN + " (install postgresql)")
        sys.exit(77)
    harness.main(globals())
