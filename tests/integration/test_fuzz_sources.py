"""tests/fuzz/parsing_sources.py, which derives the sources the fuzz targets
link (the commitd_fuzz_parsing library) from their includes: on the real tree
it finds every file they need and no Asio code; on a small tree it follows a
newly added include and refuses code that reaches Boost.Asio, naming the chain.

Run: python3 test_fuzz_sources.py --source-dir .
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def parsing_sources(root, *sources, depends=None):
    script = os.path.join(harness.OPTIONS.source_dir, "tests", "fuzz", "parsing_sources.py")
    command = [sys.executable, script, "--root", root, *sources]
    if depends:
        command += ["--depends", depends]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout.split(), done.stderr


def write(root, path, text):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", encoding="utf-8") as f:
        f.write(text)


def test_real_tree_has_what_the_targets_need_and_no_asio():
    root = harness.OPTIONS.source_dir
    targets = sorted(glob.glob(os.path.join(root, "tests", "fuzz", "*_fuzz.cc")))
    assert targets
    rc, sources, err = parsing_sources(root, *targets)
    assert rc == 0, err
    for needed in ("common/json_text.cc", "common/wire.cc", "common/sqlite_wal_vfs.cc", "raft/wire.cc",
                   "raft/node.cc", "raft/node_election.cc", "raft/node_replication.cc",
                   "coordinator/raft_codec.cc", "participant/resource_manager.cc"):
        assert needed in sources, (needed, sources)
    for excluded in ("common/http_server.cc", "common/http_client.cc", "common/http_batch.cc",
                     "common/batch_writer.cc", "raft/http_transport.cc", "raft/driver.cc"):
        assert excluded not in sources, (excluded, sources)
    for source in sources:
        assert os.path.isfile(os.path.join(root, source)), source
        assert not source.startswith("tests/fuzz/"), source
        with open(os.path.join(root, source), encoding="utf-8") as f:
            assert not re.search(r"#\s*include\s*<boost/(asio|beast)", f.read()), source


def test_a_new_include_and_split_implementations_are_followed():
    with tempfile.TemporaryDirectory() as root:
        write(root, "t/x_fuzz.cc", '#include "a/x.h"\n')
        write(root, "a/x.h", "int X();\n")
        write(root, "a/x.cc", '#include "a/x.h"\n')
        write(root, "a/x_part.cc", '#include "a/x.h"\n')   # a split implementation
        write(root, "a/x_other.cc", '#include "a/z.h"\n')  # a prefix only
        write(root, "a/z.h", "")
        write(root, "b/y.h", "int Y();\n")
        write(root, "b/y.cc", '#include "b/y.h"\n')
        rc, sources, err = parsing_sources(root, "t/x_fuzz.cc")
        assert rc == 0, err
        assert sources == ["a/x.cc", "a/x_part.cc"], sources

        write(root, "a/x_part.cc", '#include "a/x.h"\n#include "b/y.h"\n')
        depends = os.path.join(root, "depends")
        rc, sources, err = parsing_sources(root, "t/x_fuzz.cc", depends=depends)
        assert rc == 0, err
        assert sources == ["a/x.cc", "a/x_part.cc", "b/y.cc"], sources
        with open(depends, encoding="utf-8") as f:
            read = {os.path.relpath(line, root) for line in f.read().split()}
        assert {"t/x_fuzz.cc", "a/x.h", "a/x_part.cc", "a/x_other.cc", "b/y.h", "b/y.cc"} <= read, read


def test_code_that_reaches_asio_fails_naming_the_chain():
    with tempfile.TemporaryDirectory() as root:
        write(root, "t/x_fuzz.cc", '#include "a/x.h"\n')
        write(root, "a/x.h", "int X();\n")
        write(root, "a/x.cc", '#include "a/x.h"\n#include "net/server.h"\n')
        write(root, "net/server.h", "#include <boost/asio/io_context.hpp>\n")
        rc, sources, err = parsing_sources(root, "t/x_fuzz.cc")
        assert rc != 0 and sources == [], (rc, sources)
        assert "Boost.Asio" in err, err
        assert "t/x_fuzz.cc -> a/x.h -> a/x.cc -> net/server.h includes <boost/asio/io_context.hpp>" in err, err


if __name__ == "__main__":
    harness.main(globals())
