"""The participant registry: DELETE /v1/participants/{name} removes a name
durably (refused for a configured participant and for an unknown one), and
the registry holds at most max_participants names."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import FAST_CONFIG, Cluster, free_port  # noqa: E402


def names(c):
    status, body = harness.get(c.url, "/v1/participants")
    assert status == 200, body
    return sorted(p["name"] for p in body["participants"])


def put(c, name):
    return harness.request("PUT", c.url, f"/v1/participants/{name}",
                           {"url": f"http://127.0.0.1:{free_port()}"})[:2]


def delete(c, name):
    return harness.request("DELETE", c.url, f"/v1/participants/{name}")[:2]


def test_delete_removes_a_participant_durably():
    with Cluster() as c:
        status, body = put(c, "bank-c")
        assert status == 200, body
        assert names(c) == ["bank-a", "bank-b", "bank-c"]
        status, body = delete(c, "bank-c")
        assert status == 200 and body == {"removed": "bank-c"}, body
        assert names(c) == ["bank-a", "bank-b"]
        status, body = delete(c, "bank-c")
        assert status == 404 and body["error"]["code"] == "not_found", body
        status, body = delete(c, "bank-a")
        assert status == 409 and body["error"]["code"] == "participant_in_use", body
        metrics = harness.request("GET", c.url, "/metrics")[2]
        assert 'participant="bank-c"' not in metrics
        c.coordinator.terminate()
        c.start_coordinator()
        assert names(c) == ["bank-a", "bank-b"]
        status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
        assert status == 200, reply


def test_the_registry_holds_at_most_max_participants():
    with Cluster(config=dict(FAST_CONFIG, max_participants=3)) as c:
        status, body = put(c, "bank-c")
        assert status == 200, body
        status, body = put(c, "bank-d")
        assert status == 400 and "max_participants" in body["error"]["message"], body
        status, body = put(c, "bank-c")  # a name already held may move
        assert status == 200, body
        status, body = delete(c, "bank-c")
        assert status == 200, body
        status, body = put(c, "bank-d")
        assert status == 200, body


if __name__ == "__main__":
    harness.main(globals())
