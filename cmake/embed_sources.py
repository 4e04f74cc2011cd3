#!/usr/bin/env python3
"""Build-time generator of C++ sources that embed files in the binaries.

  embed_sources.py openapi  --yaml docs/openapi.yaml --version 0.1.0 --out FILE.cc
      The two OpenAPI documents of docs/openapi.yaml (coordinator, then agent)
      as JSON, defining commitd::openapi::CoordinatorDocument() and
      AgentDocument() (common/openapi_document.h).

  embed_sources.py assets --out FILE.cc NAME=PATH...
      Static files of the dashboard, defining commitd::coordinator::DashboardAssets()
      (coordinator/dashboard.h); the content type comes from the extension.

Standard library and python3-yaml only. Fails (exit 1, one line naming the
file) on anything it cannot embed faithfully.
"""

import argparse
import json
import os
import sys

DELIMITER = "commitd_embed"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def fail(message):
    print(f"embed_sources.py: {message}", file=sys.stderr)
    sys.exit(1)


def raw_literal(text, what):
    if ")" + DELIMITER + '"' in text:
        fail(f"{what} contains the raw string delimiter {DELIMITER}")
    # A raw string literal is one token: split it so that no single piece is
    # too long for any compiler, and concatenate.
    pieces = [text[i:i + 60000] for i in range(0, len(text), 60000)] or [""]
    return "\n".join(f'R"{DELIMITER}({p}){DELIMITER}"' for p in pieces)


def write_if_changed(path, text):
    old = None
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = f.read()
    if old != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def openapi(args):
    try:
        import yaml  # python3-yaml
    except ImportError:
        fail("python3-yaml is needed to read docs/openapi.yaml (apt-get install python3-yaml, or ./scripts/deps.sh)")
    try:
        with open(args.yaml, encoding="utf-8") as f:
            documents = list(yaml.safe_load_all(f))
    except (OSError, yaml.YAMLError) as e:
        fail(f"{args.yaml}: {e}")
    if len(documents) != 2:
        fail(f"{args.yaml}: expected two documents (coordinator, agent), found {len(documents)}")
    texts = []
    for i, doc in enumerate(documents):
        if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3.1"):
            fail(f"{args.yaml}: document {i + 1} is not an OpenAPI 3.1 document")
        if not isinstance(doc.get("paths"), dict) or not doc["paths"]:
            fail(f"{args.yaml}: document {i + 1} has no paths")
        doc["info"]["version"] = args.version
        texts.append(json.dumps(doc, ensure_ascii=True, separators=(",", ":")))
    source = (
        "// Generated from docs/openapi.yaml by cmake/embed_sources.py at build time.\n"
        '#include "common/openapi_document.h"\n\n'
        "namespace commitd::openapi {\n\n"
        "std::string_view CoordinatorDocument() {\n"
        f"  static constexpr char kText[] =\n{raw_literal(texts[0], 'the coordinator document')};\n"
        "  return {kText, sizeof kText - 1};\n}\n\n"
        "std::string_view AgentDocument() {\n"
        f"  static constexpr char kText[] =\n{raw_literal(texts[1], 'the agent document')};\n"
        "  return {kText, sizeof kText - 1};\n}\n\n"
        "}  // namespace commitd::openapi\n")
    write_if_changed(args.out, source)


def assets(args):
    entries = []
    for spec in args.files:
        name, sep, path = spec.partition("=")
        if not sep or not name or "/" in name:
            fail(f"expected NAME=PATH with a plain NAME, got {spec!r}")
        content_type = CONTENT_TYPES.get(os.path.splitext(path)[1])
        if content_type is None:
            fail(f"{path}: no content type known for its extension")
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            fail(f"{path}: {e}")
        entries.append(f'    {{"{name}", "{content_type}",\n{raw_literal(text, path)}}},\n')
    source = (
        "// Generated from coordinator/ui/ by cmake/embed_sources.py at build time.\n"
        '#include "coordinator/dashboard.h"\n\n'
        "namespace commitd::coordinator {\n\n"
        "std::span<const DashboardAsset> DashboardAssets() {\n"
        "  static constexpr DashboardAsset kAssets[] = {\n" + "".join(entries) + "  };\n"
        "  return kAssets;\n}\n\n"
        "}  // namespace commitd::coordinator\n")
    write_if_changed(args.out, source)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("openapi")
    p.add_argument("--yaml", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--out", required=True)
    a = sub.add_parser("assets")
    a.add_argument("--out", required=True)
    a.add_argument("files", nargs="+")
    args = parser.parse_args()
    openapi(args) if args.mode == "openapi" else assets(args)


if __name__ == "__main__":
    main()
