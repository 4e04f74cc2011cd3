"""The PostgreSQL participant's connection pool and non-blocking statements
(participant/pg_pool.h, participant/pg_connection.h) against a private
PostgreSQL server that also serves TLS: runs the C++ cases of
tests/pg/pool_test.cc with two DSNs, one on plain TCP and one over TLS."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pg_cluster  # noqa: E402


def server_with_a_database(pg):
    pg.psql('CREATE DATABASE "store"')
    return {"COMMITD_TEST_PG_DSN": pg.dsn("store"), "COMMITD_TEST_PG_TLS_DSN": pg.tls_dsn("store")}


def test_pool_cases():
    pg_cluster.run_cases("COMMITD_PG_POOL_TEST", server_with_a_database, tls=True)


if __name__ == "__main__":
    pg_cluster.main_for_cases(globals())
