"""The PostgreSQL participant's store (participant/postgres_store.h) against
a private PostgreSQL server: runs the C++ cases of tests/pg/store_test.cc."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pg_cluster  # noqa: E402


def server_with_a_database(pg):
    pg.psql('CREATE DATABASE "store"')
    return {"COMMITD_TEST_PG_DSN": pg.dsn("store")}


def test_store_cases():
    pg_cluster.run_cases("COMMITD_PG_STORE_TEST", server_with_a_database)


if __name__ == "__main__":
    pg_cluster.main_for_cases(globals())
