"""/metrics of the coordinator and of an agent: Prometheus text that promtool
accepts, with the build each runs (commitd_build_info / commitd_agent_build_info
{version,commit}), process metrics, and the series an operator alerts on:
latency histograms, aborts by reason, per-participant round trips, errors and
health, in-doubt gauges, storage batch and fsync histograms, Raft state."""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, agent_abort, agent_prepare, debit_ops, eventually  # noqa: E402

PROMTOOL = "/usr/bin/promtool"


def scrape(url):
    status, _, text, headers = harness.request("GET", url, "/metrics")
    assert status == 200, text
    assert headers.get("content-type", "").startswith("text/plain"), headers
    return text


def samples(text):
    """{'name{labels}': value} of every sample."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def promtool_check(text):
    assert os.path.exists(PROMTOOL), "promtool is missing: scripts/deps.sh installs the prometheus package"
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def check_build_and_process(text, binary, prefix):
    m = re.search(rf'^{prefix}_build_info\{{version="([^"]+)",commit="([^"]+)"\}} 1$', text, re.M)
    assert m, f"{prefix}_build_info missing"
    out = subprocess.run([harness.bin_path(binary), "--version"], capture_output=True, text=True)
    assert m.group(1) in out.stdout and m.group(2) in out.stdout, (m.groups(), out.stdout)
    for name in ("process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total"):
        value = re.search(rf"^{name} (\S+)$", text, re.M)
        assert value and float(value.group(1)) > 0, name


def test_metrics_pass_promtool_and_name_the_build():
    with Cluster() as c:
        status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
        assert status == 200, reply
        text = scrape(c.url)
        check_build_and_process(text, "commitd", "commitd")
        assert samples(text)['commitd_transactions_total{outcome="committed"}'] == 1
        promtool_check(text)
        agent_text = scrape(c.bank("bank-a").url)
        check_build_and_process(agent_text, "commit-agent", "commitd_agent")
        assert samples(agent_text)["commitd_agent_prepares_total"] >= 1
        promtool_check(agent_text)


def test_coordinator_series_count_what_happened():
    with Cluster() as c:
        for _ in range(3):
            status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
            assert status == 200, reply
        # A no vote: more than alice has.
        status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 10**9)
        assert status == 409, reply
        # A lock conflict: another transaction holds alice's row at bank-a.
        status, vote = agent_prepare(c.bank("bank-a"), "holder-1", debit_ops("alice", 1), participant="bank-a")
        assert status == 200 and vote["vote"] == "yes", vote
        status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
        assert status == 409, reply
        agent_abort(c.bank("bank-a"), "holder-1")
        c.eventually_nothing_prepared()

        def settled():
            s = samples(scrape(c.url))
            return s['commitd_transactions_in_flight'] == 0 and s
        s = eventually(settled, what="nothing in flight")
        assert s['commitd_transactions_total{outcome="committed"}'] == 3, s
        assert s['commitd_transactions_total{outcome="aborted"}'] == 2, s
        assert s['commitd_transaction_aborts_total{reason="vote_no"}'] == 1, s
        assert s['commitd_transaction_aborts_total{reason="lock_conflict"}'] == 1, s
        assert s['commitd_transaction_aborts_total{reason="timeout"}'] == 0, s
        assert s['commitd_transaction_duration_seconds_count{protocol="2pc",outcome="committed"}'] == 3, s
        assert s['commitd_transaction_duration_seconds_count{protocol="2pc",outcome="aborted"}'] == 2, s
        assert s['commitd_transaction_duration_seconds_bucket{protocol="2pc",outcome="committed",le="10"}'] == 3
        assert s['commitd_transaction_duration_seconds_sum{protocol="2pc",outcome="committed"}'] > 0
        for bank in ("bank-a", "bank-b"):
            assert s[f'commitd_participant_round_trip_seconds_count{{participant="{bank}",phase="prepare"}}'] == 5, s
            assert s[f'commitd_participant_round_trip_seconds_count{{participant="{bank}",phase="commit"}}'] == 3, s
            assert s[f'commitd_participant_healthy{{participant="{bank}"}}'] == 1, s
            assert s[f'commitd_participant_errors_total{{participant="{bank}",kind="timeout"}}'] == 0, s
        for kind in ("undelivered", "held", "foreign_log"):
            assert s[f'commitd_transactions_in_doubt{{kind="{kind}"}}'] == 0, s
        assert s["commitd_transactions_undecided"] == 0, s
        assert s["commitd_decision_log_batch_size_count"] >= 1, s
        assert s["commitd_decision_log_fsync_seconds_count"] >= 1, s
        assert not any(k.startswith("commitd_raft_") for k in s), "a single coordinator has no Raft series"

        a = samples(scrape(c.bank("bank-a").url))
        assert a['commitd_agent_votes_total{result="yes"}'] >= 4, a
        assert a['commitd_agent_votes_total{result="no"}'] >= 2, a
        assert a['commitd_agent_apply_seconds_count{outcome="commit"}'] == 3, a
        assert a['commitd_agent_apply_seconds_count{outcome="abort"}'] >= 1, a
        assert a["commitd_agent_fsync_seconds_count"] >= 1, a
        assert a["commitd_agent_storage_batch_size_count"] >= 1, a
        assert a["commitd_agent_prepared_records"] == 0, a
        assert a["commitd_agent_locks_held"] == 0, a
        assert a["commitd_agent_storage_queue_depth"] == 0, a
        promtool_check(scrape(c.url))
        promtool_check(scrape(c.bank("bank-a").url))


def test_an_unreachable_participant_counts_errors_and_turns_unhealthy():
    with Cluster() as c:
        c.bank("bank-b").process.terminate()

        def unhealthy():
            s = samples(scrape(c.url))
            return s['commitd_participant_healthy{participant="bank-b"}'] == 0 and s
        s = eventually(unhealthy, timeout=20, what="bank-b unhealthy")
        assert s['commitd_participant_healthy{participant="bank-a"}'] == 1, s
        assert s['commitd_participant_errors_total{participant="bank-b",kind="unreachable"}'] >= 1, s
        status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
        assert status != 200, reply
        s = samples(scrape(c.url))
        assert s['commitd_transaction_aborts_total{reason="unreachable"}'] == 1, s


def test_a_group_member_shows_its_raft_state():
    import test_group
    g = test_group.Group()
    try:
        leaders = 0
        for node_id, p in g.nodes.items():
            text = scrape(p.url)
            promtool_check(text)
            s = samples(text)
            assert s["commitd_raft_term"] >= 1, s
            assert s["commitd_raft_commit_index"] >= 1, s
            roles = [s[f'commitd_raft_role{{role="{r}"}}'] for r in ("leader", "follower", "candidate")]
            assert sum(roles) == 1, (node_id, roles)
            leaders += roles[0]
            assert s["commitd_raft_leader_changes_total"] >= 1, s
            assert s['commitd_raft_snapshots_total{kind="taken"}'] == 0, s
        assert leaders == 1
    finally:
        g.close()


if __name__ == "__main__":
    harness.main(globals())
