"""The OpenAPI documents (docs/openapi.yaml) against the real servers: each
server answers GET /openapi.json with its own document; every route the
servers register is in it, every documented route is registered; real
responses, success and error, validate against the documented schemas
(python3-jsonschema, JSON Schema 2020-12 as OpenAPI 3.1 uses).

The registered routes are read from the route tables in the sources
(kRoutes and every Router::Add of coordinator/service.cc, participant/agent.cc
and the files they delegate to) and each is probed on the running server: a
route the router does not know answers 404 "no route for ..." or 405.

Run one test: python3 test_openapi.py --bin-dir build/release/bin test_every_route_documented
"""

import json
import os
import re
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, bearer, expect_status, request, source_path  # noqa: E402

import jsonschema  # noqa: E402  (Debian python3-jsonschema)
import yaml  # noqa: E402  (Debian python3-yaml)

METHODS = ("get", "put", "post", "delete", "patch")
# Files whose "METHOD", "/path" pairs are the routes each server registers.
ROUTE_SOURCES = {
    "coordinator": ["coordinator/service.cc", "coordinator/dashboard.cc", "common/openapi_document.cc"],
    "agent": ["participant/agent.cc", "common/openapi_document.cc"],
}
# Example values for path parameters when probing.
PATH_EXAMPLES = {"txid": "probe-tx-1", "name": "probe-participant", "id": "c9", "asset": "app.js"}
# Routes a single coordinator does not serve (only members of a group do).
GROUP_ONLY = {("post", "/v1/raft")}


def yaml_documents():
    with open(source_path("docs", "openapi.yaml")) as f:
        coordinator, agent = yaml.safe_load_all(f)
    return {"coordinator": coordinator, "agent": agent}


def served_document(url):
    status, body, raw, headers = request("GET", url, "/openapi.json")
    assert status == 200, (status, raw[:300])
    assert headers.get("content-type", "").startswith("application/json"), headers
    return body


def registered_routes(server):
    """{(method, path template)} from the route tables in the sources."""
    routes = set()
    for rel in ROUTE_SOURCES[server]:
        with open(source_path(rel)) as f:
            text = f.read()
        for method, path in re.findall(r'"(GET|PUT|POST|DELETE|PATCH)",\s*"(/[^"]*)"', text):
            routes.add((method.lower(), path))
        for path in re.findall(r'AddBatchRoute\([^"]*"(/[^"]*)"', text):
            routes.add(("post", path))
    assert len(routes) > 5, f"no route tables found for {server}: {routes}"
    return routes


def documented_routes(doc):
    return {(m, p) for p, item in doc["paths"].items() for m in item if m in METHODS}


def concrete(path):
    return re.sub(r"\{(\w+)\}", lambda m: urllib.parse.quote(PATH_EXAMPLES[m.group(1)]), path)


class Validator:
    """Checks one real response against the operation that documents it."""

    def __init__(self, doc):
        self.doc = doc
        self.checked = []

    def _deref(self, obj):
        while isinstance(obj, dict) and "$ref" in obj and len(obj) == 1:
            node = self.doc
            for part in obj["$ref"].lstrip("#/").split("/"):
                node = node[part]
            obj = node
        return obj

    def _operation(self, method, path):
        for template, item in self.doc["paths"].items():
            pattern = "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$"
            if re.match(pattern, path) and method in item:
                # An exact template beats one with parameters (as the router does).
                if template == path or not any(t == path and method in i for t, i in self.doc["paths"].items()):
                    return template, item[method]
        raise AssertionError(f"{method.upper()} {path} is not documented")

    def check(self, method, path, status, raw, headers):
        template, op = self._operation(method, path.split("?")[0])
        responses = op["responses"]
        spec = responses.get(str(status), responses.get("default"))
        assert spec is not None, f"{method.upper()} {template}: status {status} not documented (body {raw[:200]})"
        spec = self._deref(spec)
        content_type = headers.get("content-type", "").split(";")[0].strip()
        content = spec.get("content", {})
        assert content_type in content, (
            f"{method.upper()} {template} {status}: content type {content_type!r} not among {list(content)}")
        schema = content[content_type].get("schema", {})
        if content_type == "application/json":
            instance = json.loads(raw)
            wrapped = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                       "components": self.doc.get("components", {}), "allOf": [schema]}
            try:
                jsonschema.Draft202012Validator(wrapped).validate(instance)
            except jsonschema.ValidationError as e:
                raise AssertionError(f"{method.upper()} {template} {status}: {e.message} at "
                                     f"{list(e.absolute_path)}\nbody: {raw[:500]}") from None
        self.checked.append((method, template, status))

    def call(self, url, method, path, body=None, headers=None, want=None):
        status, obj, raw, resp_headers = request(method.upper(), url, path, body, headers)
        if want is not None:
            assert status == want, f"{method.upper()} {path}: {status}, want {want}: {raw[:300]}"
        self.check(method, path, status, raw, resp_headers)
        return status, obj


# --------------------------------------------------------------------------


def test_documents_are_valid_openapi_31():
    for server, doc in yaml_documents().items():
        assert doc["openapi"].startswith("3.1"), server
        for name, schema in doc["components"]["schemas"].items():
            jsonschema.Draft202012Validator.check_schema(schema)
        seen = set()
        for path, item in doc["paths"].items():
            for method, op in item.items():
                if method not in METHODS:
                    continue
                assert op.get("operationId") not in seen, f"{server}: duplicate operationId {op.get('operationId')}"
                seen.add(op.get("operationId"))
                assert op.get("responses"), f"{server}: {method} {path} has no responses"
                assert op.get("x-commitd-roles"), f"{server}: {method} {path} names no roles"
                params = set(re.findall(r"\{(\w+)\}", path))
                v = Validator(doc)
                declared = {v._deref(p).get("name") for p in op.get("parameters", []) if v._deref(p).get("in") == "path"}
                assert params <= declared, f"{server}: {method} {path}: path parameters {params - declared} undeclared"


def test_served_documents_are_the_yaml():
    docs = yaml_documents()
    with Cluster() as c:
        for server, url in (("coordinator", c.url), ("agent", c.bank("bank-a").url)):
            served = served_document(url)
            expected = docs[server]
            assert served["info"]["title"] == expected["info"]["title"], server
            # The build stamps the project version; everything else is the YAML as JSON.
            served["info"].pop("version")
            expected["info"].pop("version")
            assert served == expected, f"{server}: /openapi.json differs from docs/openapi.yaml"


def test_every_route_documented_and_every_documented_route_registered():
    docs = yaml_documents()
    with Cluster() as c:
        for server, url in (("coordinator", c.url), ("agent", c.bank("bank-a").url)):
            doc = served_document(url)
            registered = registered_routes(server)
            documented = documented_routes(doc)
            missing = registered - documented
            assert not missing, f"{server} registers routes not in docs/openapi.yaml: {sorted(missing)}"
            extra = documented - registered
            assert not extra, f"{server}: docs/openapi.yaml documents routes the sources do not register: {sorted(extra)}"
            for method, template in sorted(documented):
                if server == "coordinator" and (method, template) in GROUP_ONLY:
                    continue
                # Bodies are malformed on purpose: a registered route refuses
                # them (400) and changes nothing.
                body = "{" if method in ("post", "put") else None
                status, obj, raw, _ = request(method.upper(), url, concrete(template), body)
                unknown = status == 405 or (status == 404 and "no route for" in raw)
                assert not unknown, f"{server}: {method.upper()} {template} is documented but not served: {raw[:200]}"
        assert docs


def test_responses_match_schemas():
    with Cluster() as c:
        v = Validator(served_document(c.url))
        url = c.url
        # Client API: success and each kind of error.
        _, committed = v.call(url, "post", "/v1/transactions",
                              harness.transfer_body("bank-a", "alice", "bank-b", "bob", 10), want=200)
        txid = committed["txid"]
        v.call(url, "post", "/v1/transactions", harness.transfer_body("bank-a", "alice", "bank-b", "bob", 10**6),
               want=409)
        v.call(url, "post", "/v1/transactions", {"branches": "no"}, want=400)
        v.call(url, "post", "/v1/transactions", "{", want=400)
        v.call(url, "post", "/v1/transactions", "x" * (2 << 20), want=413)
        v.call(url, "post", "/v1/transactions", {"branches": [{"participant": "nobody", "ops": []}]}, want=400)
        v.call(url, "get", f"/v1/transactions/{txid}", want=200)
        v.call(url, "get", "/v1/transactions/never-seen-1", want=404)
        v.call(url, "get", "/v1/transactions/bad%20txid", want=400)
        for query in ("", "?state=committed", "?state=pending", "?state=in_doubt", "?state=aborted&limit=5"):
            v.call(url, "get", "/v1/transactions" + query, want=200)
        v.call(url, "get", "/v1/transactions?state=nope", want=400)
        v.call(url, "get", "/v1/transactions?limit=0", want=400)
        # Registry, admin, cluster.
        v.call(url, "get", "/v1/participants", want=200)
        v.call(url, "put", "/v1/participants/bank-a", {"url": c.bank("bank-a").url}, want=200)
        v.call(url, "put", "/v1/participants/bank-z", {"url": 7}, want=400)
        v.call(url, "post", "/v1/admin/retry-now", {}, want=200)
        v.call(url, "post", f"/v1/admin/transactions/{txid}/force", {"outcome": "commit"}, want=200)
        v.call(url, "post", f"/v1/admin/transactions/{txid}/force", {"outcome": "abort"}, want=409)
        v.call(url, "post", "/v1/admin/transactions/never-seen-2/force", {"outcome": "maybe"}, want=400)
        v.call(url, "get", "/v1/cluster", want=200)
        v.call(url, "post", "/v1/cluster/members", {"id": "c2", "url": "http://127.0.0.1:1"}, want=400)
        v.call(url, "delete", "/v1/cluster/members/c2", want=400)
        v.call(url, "post", "/v1/cluster/transfer-leader", {"to": "c2"}, want=400)
        v.call(url, "get", "/metrics", want=200)
        v.call(url, "get", "/healthz", want=200)
        v.call(url, "get", "/readyz", want=200)
        v.call(url, "get", "/openapi.json", want=200)
        v.call(url, "get", "/ui", want=308)
        v.call(url, "get", "/ui/", want=200)
        v.call(url, "get", "/ui/app.js", want=200)
        v.call(url, "get", "/ui/style.css", want=200)
        v.call(url, "get", "/ui/nothing.js", want=404)
        harness.log(f"coordinator: {len(v.checked)} responses validated")

        # The agent's API, as the coordinator and operators call it.
        agent = c.bank("bank-a").url
        a = Validator(served_document(agent))
        ops = harness.debit_ops("carol", 1)
        _, vote = a.call(agent, "post", "/v1/prepare", harness.prepare_body("by-hand-1", "bank-a", ops), want=200)
        assert vote["vote"] == "yes", vote
        a.call(agent, "post", "/v1/prepare", {"txid": "by-hand-2"}, want=400)
        a.call(agent, "get", "/v1/transactions", want=200)
        a.call(agent, "get", "/v1/transactions?state=conflict", want=200)
        a.call(agent, "get", "/v1/transactions?state=nope", want=400)
        a.call(agent, "get", "/v1/transactions/by-hand-1", want=200)
        a.call(agent, "get", "/v1/locks", want=200)
        a.call(agent, "get", "/v1/procedures", want=200)
        a.call(agent, "post", "/v1/commit", {"txid": "by-hand-1"}, want=200)
        a.call(agent, "post", "/v1/commit", {"txid": "never-prepared"}, want=404)
        a.call(agent, "post", "/v1/abort", {"txid": "by-hand-1"}, want=409)
        a.call(agent, "post", "/v1/abort", {"txid": "never-prepared-2"}, want=200)
        a.call(agent, "post", "/v1/precommit", {"txid": "never-prepared-3"}, want=404)
        a.call(agent, "post", "/v1/commit", {"tx": 1}, want=400)
        a.call(agent, "post", "/v1/batch", {"requests": [{"method": "GET", "target": "/v1/procedures"},
                                                         {"method": "POST", "target": "/v1/abort",
                                                          "body": {"txid": "never-prepared-4"}}]}, want=200)
        a.call(agent, "post", "/v1/batch", {"requests": 5}, want=400)
        a.call(agent, "get", "/metrics", want=200)
        a.call(agent, "get", "/healthz", want=200)
        a.call(agent, "get", "/openapi.json", want=200)
        harness.log(f"agent: {len(a.checked)} responses validated")


def test_group_member_routes():
    """A group member serves the group-only routes, and its /v1/cluster
    (leader and follower views) matches the schema."""
    import test_group  # the group of test_group.py: c1..c3 and the two banks
    with test_group.Group() as g:
        leader = g.wait_leader()
        for node_id, url in g.urls.items():
            v = Validator(served_document(url))
            v.call(url, "get", "/v1/cluster", want=200)
            for method, template in sorted(GROUP_ONLY):
                status, _, raw, _ = request(method.upper(), url, concrete(template), "{")
                assert status not in (404, 405), f"{node_id}: {method.upper()} {template}: {status} {raw[:200]}"
            if node_id == leader:
                v.call(url, "post", "/v1/cluster/transfer-leader", {"to": "c9"}, want=400)
                v.call(url, "post", "/v1/cluster/members", {"id": leader, "url": url}, want=409)


def test_access_errors_match_schemas_and_documents_are_open():
    """With --auth-file: 401 and 403 bodies validate; /openapi.json and /ui/
    need no token (docs/security.md)."""
    with tempfile.TemporaryDirectory(prefix="commitd-openapi-") as d:
        auth = os.path.join(d, "auth.json")
        with open(auth, "w") as f:
            json.dump({"tokens": [{"name": "reader", "token": "reader-token-0123", "roles": ["reader"]},
                                  {"name": "client", "token": "client-token-0123", "roles": ["client"]}]}, f)
        port = harness.free_port()
        url = f"http://127.0.0.1:{port}"
        proc = harness.Process("commitd-auth", [harness.bin_path("commitd"), "--id", "c1", "--listen",
                                                f"127.0.0.1:{port}", "--data-dir", os.path.join(d, "data"),
                                                "--auth-file", auth],
                               os.path.join(d, "commitd.log"), url)
        proc.start().wait_healthy()
        try:
            v = Validator(served_document(url))
            v.call(url, "get", "/v1/transactions", want=401)
            v.call(url, "get", "/v1/cluster", headers=bearer("client-token-0123"), want=403)
            v.call(url, "post", "/v1/admin/retry-now", {}, headers=bearer("reader-token-0123"), want=403)
            v.call(url, "get", "/v1/cluster", headers=bearer("reader-token-0123"), want=200)
            v.call(url, "get", "/metrics", headers=bearer("nonsense"), want=401)
            v.call(url, "get", "/ui/", want=200)
            v.call(url, "get", "/ui/app.js", want=200)
            status, _, raw, headers = request("GET", url, "/ui")
            assert status == 308 and headers.get("location") == "/ui/", (status, headers)
        finally:
            proc.terminate()


if __name__ == "__main__":
    harness.main(globals())
