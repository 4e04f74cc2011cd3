"""W3C trace context end to end: a client's traceparent reaches every agent
call of its transaction (each call a span of its own), generated when absent
or malformed, returned in the response, and written as trace_id in the
coordinator's and the agents' log lines about the transaction
(docs/operations.md, docs/protocol.md).

Run one test: python3 test_trace_context.py --bin-dir build/release/bin test_client_trace_reaches_both_agents
"""

import json
import os
import re
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, eventually, expect_status, request, transfer_body  # noqa: E402

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
T_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
T_SPAN = "00f067aa0ba902b7"
T = f"00-{T_TRACE}-{T_SPAN}-01"

DEBUG = ["--log-level", "debug"]


def traced_cluster():
    return Cluster(agent_args={"bank-a": DEBUG, "bank-b": DEBUG}, coordinator_args=DEBUG)


def submit(c, body, traceparent=None, outcomes=("committed",)):
    headers = {"traceparent": traceparent} if traceparent is not None else None
    status, obj, raw, resp_headers = request("POST", c.url, "/v1/transactions", body, headers)
    assert status in (200, 409), f"HTTP {status}: {raw[:300]}"
    assert obj["outcome"] in outcomes, obj
    returned = resp_headers.get("traceparent")
    assert returned is not None, f"no traceparent in the response headers {resp_headers}"
    m = TRACEPARENT.match(returned)
    assert m, f"returned traceparent is malformed: {returned!r}"
    return obj["txid"], m.group(1), m.group(2)


def log_lines(process, txid):
    lines = []
    for line in process.log_text().splitlines():
        if not line.startswith("{"):
            continue
        obj = json.loads(line)
        if obj.get("txid") == txid:
            lines.append(obj)
    return lines


def agent_lines(c, name, txid, calls):
    """The agent's protocol_request lines for txid, once every call in `calls` is there."""
    def check():
        lines = [l for l in log_lines(c.agent(name), txid) if l.get("event") == "protocol_request"]
        got = {l.get("call") for l in lines}
        assert set(calls) <= got, f"{name}: calls {got} for {txid}, want {calls}: {lines}"
        return lines
    return eventually(check, 15, what=f"{name} logs {calls} of {txid}")


def check_traced(c, txid, trace_id, calls=("prepare", "commit")):
    """Every agent line of txid carries trace_id; spans differ per call and agent."""
    spans = []
    for name in ("bank-a", "bank-b"):
        for line in agent_lines(c, name, txid, calls):
            assert line.get("trace_id") == trace_id, f"{name}: {line}"
            assert re.fullmatch(r"[0-9a-f]{16}", line.get("span_id", "")), line
            spans.append(line["span_id"])
    assert len(set(spans)) == len(spans), f"span ids repeat across calls: {spans}"
    coordinator = log_lines(c.coordinator, txid)
    started = [l for l in coordinator if l.get("event") == "transaction_started"]
    assert started and started[0].get("trace_id") == trace_id, coordinator
    sent = {l["span_id"] for l in coordinator if l.get("event") == "agent_call"}
    assert set(spans) <= sent, f"agent spans {spans} not among the coordinator's calls {sent}"
    return spans


def test_client_trace_reaches_both_agents():
    with traced_cluster() as c:
        txid, trace_id, span = submit(c, transfer_body("bank-a", "alice", "bank-b", "bob", 5), T)
        assert trace_id == T_TRACE
        assert span != T_SPAN, "the coordinator answers with its own span, not the client's"
        spans = check_traced(c, txid, T_TRACE)
        assert T_SPAN not in spans and span not in spans


def test_three_phase_calls_are_traced():
    with traced_cluster() as c:
        body = transfer_body("bank-a", "alice", "bank-b", "bob", 5, protocol="3pc")
        txid, trace_id, _ = submit(c, body, T)
        assert trace_id == T_TRACE
        check_traced(c, txid, T_TRACE, calls=("prepare", "precommit", "commit"))


def test_missing_trace_is_generated_and_logged():
    with traced_cluster() as c:
        txid, trace_id, _ = submit(c, transfer_body("bank-a", "alice", "bank-b", "bob", 5))
        assert trace_id != "0" * 32
        check_traced(c, txid, trace_id)
        _, other, _ = submit(c, transfer_body("bank-a", "alice", "bank-b", "bob", 5))
        assert other != trace_id, "every transaction without a trace gets a new one"


def test_invalid_trace_is_replaced_not_refused():
    bad = [
        "",
        "garbage",
        T.upper(),
        f"00-{T_TRACE.upper()}-{T_SPAN}-01",
        f"ff-{T_TRACE}-{T_SPAN}-01",
        f"00-{'0' * 32}-{T_SPAN}-01",
        f"00-{T_TRACE}-{'0' * 16}-01",
        T + "-extra",
        T[:-1],
        f"00-{T_TRACE}-{T_SPAN}-0x",
        "00-" + "é" * 16 + f"-{T_SPAN}-01",
    ]
    with traced_cluster() as c:
        for header in bad:
            txid, trace_id, _ = submit(c, transfer_body("bank-a", "alice", "bank-b", "bob", 1), header)
            assert trace_id != T_TRACE, f"{header!r} was taken as a trace context"
        # The last one is in the logs under its new trace.
        check_traced(c, txid, trace_id)


def test_concurrent_transactions_keep_their_own_traces():
    # Enough at once that the coordinator batches calls to each agent: each
    # batch item must carry its own transaction's trace.
    n = 48
    results = {}
    errors = []

    def one(i):
        trace = f"{i + 1:032x}"
        try:
            # Transfers from one account conflict: some abort, which is traced as well.
            txid, trace_id, _ = submit(c, transfer_body("bank-a", "alice", "bank-b", "bob", 1),
                                       f"00-{trace}-{T_SPAN}-01", outcomes=("committed", "aborted"))
            results[txid] = (trace, trace_id)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    with traced_cluster() as c:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert len(results) == n
        for txid, (sent, returned) in results.items():
            assert sent == returned, (txid, sent, returned)

        def all_logged():
            seen = 0
            for name in ("bank-a", "bank-b"):
                by_txid = {}
                for line in c.agent(name).log_text().splitlines():
                    if line.startswith("{") and '"protocol_request"' in line:
                        obj = json.loads(line)
                        by_txid.setdefault(obj["txid"], []).append(obj)
                for txid, (sent, _) in results.items():
                    for line in by_txid.get(txid, []):
                        assert line.get("trace_id") == sent, f"{name}: {txid} sent {sent}, logged {line}"
                        seen += 1
            # Every transaction reached at least one agent (the first to vote no may end it).
            assert seen >= n, seen
            return True
        eventually(all_logged, 15, what="every agent line under its own transaction's trace")
        status, _, metrics, _ = request("GET", c.url, "/metrics")
        harness.log("peer messages vs exchanges: " + " ".join(
            l for l in metrics.splitlines() if l.startswith("commitd_peer_")))


def test_force_route_returns_a_trace():
    with traced_cluster() as c:
        txid, _, _ = submit(c, transfer_body("bank-a", "alice", "bank-b", "bob", 1))
        status, obj, raw, headers = request("POST", c.url, f"/v1/admin/transactions/{txid}/force",
                                            {"outcome": "commit"}, {"traceparent": T})
        assert status in (200, 409), raw
        assert TRACEPARENT.match(headers.get("traceparent", "")).group(1) == T_TRACE, headers
        status, _, raw, headers = request("POST", c.url, f"/v1/admin/transactions/{txid}/force",
                                          {"outcome": "sideways"})
        assert status == 400, raw
        assert TRACEPARENT.match(headers.get("traceparent", "")), headers


def test_group_follower_forwards_the_trace_and_the_leader_delivers_in_it():
    from test_group import GROUP_CONFIG, Group
    with Group(config=dict(GROUP_CONFIG, log_level="debug")) as g:
        leader = g.leader()
        follower = next(n for n in g.urls if n != leader)
        status, obj, raw, headers = request("POST", g.urls[follower], "/v1/transactions",
                                            transfer_body("bank-a", "alice", "bank-b", "bob", 1), {"traceparent": T})
        assert status == 200 and obj["outcome"] == "committed", raw
        assert TRACEPARENT.match(headers.get("traceparent", "")).group(1) == T_TRACE, headers
        txid = obj["txid"]
        for name in ("bank-a", "bank-b"):
            for line in agent_lines(g.c, name, txid, ("prepare", "commit")):
                assert line.get("trace_id") == T_TRACE, f"{name}: {line}"
        started = [l for l in log_lines(g.nodes[leader], txid) if l.get("event") == "transaction_started"]
        assert started and started[0]["trace_id"] == T_TRACE, started


if __name__ == "__main__":
    harness.main(globals())
