#!/usr/bin/env python3
"""Prints the project sources the fuzz targets need, one per line, relative
to the project root.

Starting from the given sources, it follows every `#include "dir/x.h"` (paths
relative to the root) and adds the implementation of each header reached:
dir/x.cc, and every dir/x_*.cc that includes dir/x.h (an implementation split
over several files, like raft/node_election.cc). The includes of those .cc
files are followed too.

Fails, naming the include chain, when a reached file includes Boost.Asio or
Beast: clang 14 cannot build the project's Asio coroutines, so the fuzz build
must never link the HTTP server or client.

--depends FILE writes every file read (absolute paths), for the build system
to re-run this script when one of them changes.
"""

import argparse
import re
import sys
from collections import deque
from pathlib import Path

PROJECT_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.MULTILINE)
ASIO_INCLUDE = re.compile(r'^\s*#\s*include\s*<(boost/(?:asio|beast)\b[^>]*)>', re.MULTILINE)


class AsioReached(Exception):
    pass


def includes(root, text):
    """The project files a source includes."""
    return [root / name for name in PROJECT_INCLUDE.findall(text) if (root / name).is_file()]


def closure(root, starts):
    """Returns (sources to build, files read). Raises AsioReached."""
    parent = {start: None for start in starts}
    texts = {}
    queue = deque(starts)
    problems = []

    def read(path):
        if path not in texts:
            texts[path] = path.read_text()
        return texts[path]

    while queue:
        path = queue.popleft()
        text = read(path)
        asio = ASIO_INCLUDE.search(text)
        if asio:
            problems.append(f"{chain(root, parent, path)} includes <{asio.group(1)}>")
            continue
        reached = includes(root, text)
        if path.suffix == ".h":
            own = path.with_suffix(".cc")
            if own.is_file():
                reached.append(own)
            reached += [part for part in sorted(path.parent.glob(path.stem + "_*.cc"))
                        if path in includes(root, read(part))]
        for next_path in reached:
            if next_path not in parent:
                parent[next_path] = path
                queue.append(next_path)
    if problems:
        raise AsioReached("\n".join(problems))
    sources = sorted(path for path in parent if path.suffix == ".cc" and path not in starts)
    return sources, set(texts)


def chain(root, parent, path):
    links = []
    while path is not None:
        links.append(path.relative_to(root).as_posix())
        path = parent[path]
    return " -> ".join(reversed(links))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path, help="the project root")
    parser.add_argument("--depends", type=Path, help="where to write the files read")
    parser.add_argument("sources", nargs="+", type=Path, help="the fuzz targets' sources")
    args = parser.parse_args()
    root = args.root.resolve()
    starts = [(root / source).resolve() for source in args.sources]
    try:
        sources, read = closure(root, starts)
    except AsioReached as error:
        sys.exit("parsing_sources.py: the fuzz targets reach code that needs Boost.Asio/Beast, "
                 f"which the fuzz build (clang) cannot compile:\n{error}")
    if args.depends:
        args.depends.write_text("".join(f"{path}\n" for path in sorted(read)))
    for source in sources:
        print(source.relative_to(root).as_posix())


if __name__ == "__main__":
    main()
