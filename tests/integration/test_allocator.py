"""The server binaries run on the allocator the build chose
(cmake/allocator.cmake; ctest passes it as COMMITD_ALLOCATOR).

Run: COMMITD_ALLOCATOR=jemalloc python3 test_allocator.py --bin-dir build/release/bin
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster  # noqa: E402


def _mapped_files(process):
    with open(f"/proc/{process.popen.pid}/maps") as f:
        return {os.path.basename(line.split()[5]) for line in f if len(line.split()) >= 6}


def test_servers_run_on_the_configured_allocator():
    """commitd and commit-agent run on the allocator the build chose
    (cmake/allocator.cmake; ctest passes it as COMMITD_ALLOCATOR): with jemalloc
    its library is mapped into both processes, and they serve a transfer."""
    allocator = os.environ.get("COMMITD_ALLOCATOR", "")
    assert allocator in ("jemalloc", "system"), f"COMMITD_ALLOCATOR={allocator!r}: run this test through ctest"
    with Cluster(banks={"bank-a": "seed-a.sql", "bank-b": "seed-b.sql"}) as c:
        for process in (c.coordinator, c.agent("bank-a"), c.agent("bank-b")):
            jemalloc = any(name.startswith("libjemalloc.so") for name in _mapped_files(process))
            assert jemalloc == (allocator == "jemalloc"), (process.name, allocator, sorted(_mapped_files(process)))
        status, body = c.transfer("bank-a", "alice", "bank-b", "bob", 5)
        assert status == 200 and body["outcome"] == "committed", (status, body)


if __name__ == "__main__":
    harness.main(globals())
