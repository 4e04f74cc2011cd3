"""The roll-back of gids whose PREPARE TRANSACTION outcome was uncertain
(participant/pg_uncertain_gids.h) against a private PostgreSQL server: runs
the C++ cases of tests/pg/uncertain_gids_test.cc with the server's DSNs."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pg_cluster  # noqa: E402


def server_with_two_roles(pg):
    pg.psql('CREATE DATABASE "store"')
    pg.psql("CREATE ROLE clerk LOGIN")
    return {"COMMITD_TEST_PG_DSN": pg.dsn("store"), "COMMITD_TEST_PG_DSN_UNPRIVILEGED": pg.dsn("store", user="clerk")}


def test_uncertain_gids_cases():
    pg_cluster.run_cases("COMMITD_PG_UNCERTAIN_GIDS_TEST", server_with_two_roles, timeout=120)


if __name__ == "__main__":
    pg_cluster.main_for_cases(globals())
