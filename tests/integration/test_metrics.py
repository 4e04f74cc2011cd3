"""/metrics of the coordinator and of an agent: Prometheus text that promtool
accepts, with the build each runs (commitd_build_info / commitd_agent_build_info
{version,commit}) and process metrics."""

import os
import re
import subprocess

import harness
from harness import Cluster

PROMTOOL = "/usr/bin/promtool"


def check_metrics(url, binary, prefix, counter):
    status, _, text, headers = harness.request("GET", url, "/metrics")
    assert status == 200, text
    assert headers.get("content-type", "").startswith("text/plain"), headers
    m = re.search(rf'^{prefix}_build_info\{{version="([^"]+)",commit="([^"]+)"\}} 1$', text, re.M)
    assert m, f"{prefix}_build_info missing"
    out = subprocess.run([harness.bin_path(binary), "--version"], capture_output=True, text=True)
    assert m.group(1) in out.stdout and m.group(2) in out.stdout, (m.groups(), out.stdout)
    for name in ("process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total", counter):
        value = re.search(rf"^{name} (\S+)$", text, re.M)
        assert value and float(value.group(1)) > 0, name
    assert os.path.exists(PROMTOOL), "promtool is missing: scripts/deps.sh installs the prometheus package"
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_metrics_pass_promtool_and_name_the_build():
    with Cluster() as c:
        status, reply = c.transfer("bank-a", "alice", "bank-b", "bob", 1)
        assert status == 200, reply
        check_metrics(c.url, "commitd", "commitd", "commitd_transactions_committed_total")
        check_metrics(c.bank("bank-a").url, "commit-agent", "commitd_agent", "commitd_agent_prepares_total")


if __name__ == "__main__":
    harness.main(globals())
