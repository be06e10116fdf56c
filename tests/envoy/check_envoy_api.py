#!/usr/bin/env python3
"""Checks Envoy configuration files against Envoy's own v3 API.

Uses the PyPI package `envoy-data-plane` (Envoy's data-plane API as Python dataclasses,
betterproto2), pinned in .ci/run. For each file:

- `envoy/envoy.yaml` (a bootstrap: it has `static_resources`) is parsed as a typed
  `envoy.config.bootstrap.v3.Bootstrap`;
- in any other file (Kubernetes manifests), every EnvoyPatchPolicy JSON patch that adds a whole
  Envoy resource (`op: add`, `path: ""`) is parsed as that resource's type (`Cluster`, ...).

Unknown fields are refused at every level, wrong types and enum values are refused, and every
`typed_config` / `Any` must name one of the extension types registered below (anything else is
refused) and is unpacked into its message, recursively. The wasm filter's `configuration` must
be a `google.protobuf.StringValue` holding a JSON object.

`--self-test FILE` also checks that misspelled fields and wrong types in FILE are refused.

Exit status: 0 all accepted, 1 something refused, 3 envoy-data-plane (or PyYAML) is missing.
"""

import copy
import dataclasses
import importlib
import json
import sys

try:
    import yaml
    import betterproto2
    from envoy_data_plane.envoy.config.bootstrap.v3 import Bootstrap
    from envoy_data_plane.google.protobuf import Any as PbAny, StringValue
except ImportError as e:  # pragma: no cover
    print(f"check_envoy_api: a package it needs is not installed ({e}); "
          "pip install envoy-data-plane==2.2.0 betterproto2==0.9.1 pydantic==2.13.4 pyyaml==6.0.3",
          file=sys.stderr)
    sys.exit(3)

# The extension types the shipped files use: type URL -> module defining it. Importing a module
# registers its messages in the package's message pool, which `Any` uses to unpack.
EXTENSIONS = {
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager":
        "envoy_data_plane.envoy.extensions.filters.network.http_connection_manager.v3",
    "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm":
        "envoy_data_plane.envoy.extensions.filters.http.wasm.v3",
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router":
        "envoy_data_plane.envoy.extensions.filters.http.router.v3",
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext":
        "envoy_data_plane.envoy.extensions.transport_sockets.tls.v3",
    "type.googleapis.com/google.protobuf.StringValue": "envoy_data_plane.google.protobuf",
}
# Whole resources an EnvoyPatchPolicy may add: type -> (module, message).
RESOURCES = {
    "type.googleapis.com/envoy.config.cluster.v3.Cluster":
        ("envoy_data_plane.envoy.config.cluster.v3", "Cluster"),
    "type.googleapis.com/envoy.config.listener.v3.Listener":
        ("envoy_data_plane.envoy.config.listener.v3", "Listener"),
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration":
        ("envoy_data_plane.envoy.config.route.v3", "RouteConfiguration"),
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment":
        ("envoy_data_plane.envoy.config.endpoint.v3", "ClusterLoadAssignment"),
}
WASM = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"

for _module in EXTENSIONS.values():
    importlib.import_module(_module)


class Refused(Exception):
    pass


def type_urls(node, path="", out=None):
    """Every `@type` in a YAML tree, with its path."""
    out = [] if out is None else out
    if isinstance(node, dict):
        if "@type" in node:
            out.append((path, node["@type"]))
        for k, v in node.items():
            type_urls(v, f"{path}.{k}" if path else k, out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            type_urls(v, f"{path}[{i}]", out)
    return out


def unpack_all(msg, path, seen):
    """Unpacks every Any in a parsed message, recursively; returns the unpacked messages."""
    if isinstance(msg, PbAny):
        if msg.type_url not in EXTENSIONS:
            raise Refused(f"{path}: unregistered extension type {msg.type_url}")
        inner = msg.unpack()
        seen.append((path, msg.type_url, inner))
        unpack_all(inner, f"{path}<{msg.type_url.rsplit('.', 1)[-1]}>", seen)
        return seen
    if isinstance(msg, betterproto2.Message):
        for f in dataclasses.fields(msg):
            unpack_all(getattr(msg, f.name), f"{path}.{f.name}" if path else f.name, seen)
    elif isinstance(msg, (list, tuple)):
        for i, v in enumerate(msg):
            unpack_all(v, f"{path}[{i}]", seen)
    elif isinstance(msg, dict):
        for k, v in msg.items():
            unpack_all(v, f"{path}[{k}]", seen)
    return seen


def parse(cls, doc, where):
    for path, url in type_urls(doc):
        if url not in EXTENSIONS:
            raise Refused(f"{where}: {path}: unregistered extension type {url}")
    try:
        msg = cls.from_dict(doc)  # unknown fields are refused (ignore_unknown_fields=False)
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise Refused(f"{where}: not a valid {cls.__name__}: {type(e).__name__}: {e}") from None
    unpacked = unpack_all(msg, "", [])
    for path, url, inner in unpacked:
        if url == WASM:
            conf = inner.config.configuration
            if conf.type_url != "type.googleapis.com/google.protobuf.StringValue":
                raise Refused(f"{where}: {path}: wasm configuration is {conf.type_url}")
            value = conf.unpack().value
            try:
                if not isinstance(json.loads(value), dict):
                    raise ValueError("not an object")
            except ValueError as e:
                raise Refused(f"{where}: {path}: wasm configuration is not a JSON object: {e}")
    return msg, unpacked


def check_bootstrap(doc, where):
    msg, unpacked = parse(Bootstrap, doc, where)
    wasm = [u for u in unpacked if u[1] == WASM]
    if not wasm:
        raise Refused(f"{where}: no envoy.filters.http.wasm filter")
    return f"{where}: a valid v3 Bootstrap ({len(msg.static_resources.clusters)} clusters, " \
        f"{len(unpacked)} typed configs unpacked, {len(wasm)} wasm filter)"


def check_manifests(docs, where):
    n = 0
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict) or doc.get("kind") != "EnvoyPatchPolicy":
            continue
        for j, p in enumerate(doc.get("spec", {}).get("jsonPatches", [])):
            op = p.get("operation", {})
            if op.get("op") != "add" or op.get("path") != "":
                continue
            if p.get("type") not in RESOURCES:
                raise Refused(f"{where}: document {i} jsonPatches[{j}]: unknown type {p.get('type')}")
            module, name = RESOURCES[p["type"]]
            cls = getattr(importlib.import_module(module), name)
            msg, _ = parse(cls, op.get("value"), f"{where}: document {i} jsonPatches[{j}]")
            if getattr(msg, "name", None) != p.get("name"):
                raise Refused(f"{where}: document {i} jsonPatches[{j}]: name {p.get('name')} "
                              f"is not the resource's name {msg.name}")
            n += 1
    if n == 0:
        raise Refused(f"{where}: no EnvoyPatchPolicy resource to check")
    return f"{where}: {n} EnvoyPatchPolicy resources are valid v3 messages"


def check_file(path):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    if len(docs) == 1 and "static_resources" in docs[0]:
        return check_bootstrap(docs[0], path)
    return check_manifests(docs, path)


def self_test(path):
    """Damaged copies of a bootstrap must be refused."""
    with open(path) as f:
        good = yaml.safe_load(f)
    hcm = ("static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config")

    def at(doc, keys):
        for k in keys:
            doc = doc[k]
        return doc

    def misspelled_top(d):
        d["static_resources"]["clusters"][0]["conect_timeout"] = \
            d["static_resources"]["clusters"][0].pop("connect_timeout")

    def misspelled_in_typed_config(d):
        t = at(d, hcm)
        t["stat_prefx"] = t.pop("stat_prefix")

    def misspelled_in_wasm(d):
        w = at(d, hcm)["http_filters"][0]["typed_config"]["config"]
        w["vm_confg"] = w.pop("vm_config")

    def wrong_type_port(d):
        d["admin"]["address"]["socket_address"]["port_value"] = "eighty"

    def wrong_type_duration(d):
        d["static_resources"]["clusters"][0]["connect_timeout"] = "soon"

    def wrong_enum(d):
        d["static_resources"]["clusters"][0]["type"] = "STATICK"

    def unknown_type_url(d):
        at(d, hcm)["http_filters"][-1]["typed_config"]["@type"] = \
            "type.googleapis.com/envoy.extensions.filters.http.router.v3.Routr"

    def configuration_not_json(d):
        w = at(d, hcm)["http_filters"][0]["typed_config"]["config"]
        w["configuration"]["value"] = "{not json"

    cases = [misspelled_top, misspelled_in_typed_config, misspelled_in_wasm, wrong_type_port,
             wrong_type_duration, wrong_enum, unknown_type_url, configuration_not_json]
    for case in cases:
        bad = copy.deepcopy(good)
        case(bad)
        try:
            check_bootstrap(bad, f"{path} ({case.__name__})")
        except Refused as e:
            print(f"refused as it must be: {e}")
            continue
        raise Refused(f"{path}: the damaged copy {case.__name__} was accepted")
    return f"{path}: {len(cases)} damaged copies refused"


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    failed = False
    selftest = False
    for arg in argv:
        if arg == "--self-test":
            selftest = True
            continue
        try:
            print(self_test(arg) if selftest else check_file(arg))
        except Refused as e:
            print(f"REFUSED: {e}")
            failed = True
        selftest = False
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
