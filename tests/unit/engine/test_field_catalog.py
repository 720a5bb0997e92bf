"""Field catalog: provenance, plugin gating, types, and coverage of every field upstream uses.

Covers: the data file names the Falco/libs/plugin versions it describes; ``container.*`` exists only with
the container plugin (or before engine 0.50.0); field types drive operator checks; every field used in a
condition, exception or output of any upstream file resolves in the catalog.
"""

from __future__ import annotations

import re

import yaml

from padlock.engine import condition, fields
from rules_corpus import manifest, read_upstream


def test_catalog_records_its_provenance() -> None:
    prov = fields.provenance()
    assert prov["falco"].startswith("0.44")
    assert prov["engine_version"] == "0.62.0"
    assert set(prov["plugins"]) == {"container", "k8saudit", "json"}
    assert prov["sources_read"]


def test_container_fields_need_the_plugin_on_current_engines() -> None:
    assert fields.catalog().lookup("syscall", "container.id") is None
    assert fields.catalog(["container"]).lookup("syscall", "container.id") is not None
    assert fields.catalog(engine=(0, 46, 0)).lookup("syscall", "container.id") is not None
    assert "k8s_audit" not in fields.catalog().sources
    assert fields.catalog(["k8saudit"]).lookup("k8s_audit", "ka.verb") is not None


def test_field_types() -> None:
    cat = fields.catalog(["container"])
    kinds = {name: cat.lookup("syscall", name).kind for name in  # type: ignore[union-attr]
             ("proc.pid", "fd.sip", "fd.cnet", "evt.buffer", "container.privileged", "proc.name", "fd.sport")}
    assert kinds == {"proc.pid": "numeric", "fd.sip": "ip", "fd.cnet": "ip", "evt.buffer": "buffer",
                     "container.privileged": "bool", "proc.name": "string", "fd.sport": "numeric"}
    arg = cat.lookup("syscall", "evt.arg.flags")
    assert arg is not None and arg.name == "evt.arg"  # dotted argument form


_OUTPUT_FIELD = re.compile(r"%([a-zA-Z][a-zA-Z0-9_]*(?:\.[a-zA-Z0-9_]+)+)")


def test_every_field_used_upstream_is_in_the_catalog() -> None:
    cat = fields.catalog(["container"])
    used: set[str] = set()
    for entry in manifest()["files"]:
        for item in yaml.load(read_upstream(entry["file"]), Loader=yaml.CSafeLoader) or []:
            if not isinstance(item, dict):
                continue
            if item.get("condition"):
                used.update(condition.fields(condition.parse(str(item["condition"]))))
            if item.get("output"):
                # Falco rewrites %container.info before reading the format: it is not a field.
                used.update(_OUTPUT_FIELD.findall(str(item["output"]).replace("%container.info", "")))
    assert len(used) > 70
    missing = sorted(f for f in used if cat.lookup("syscall", f) is None)
    assert missing == []


def test_container_plugin_catalog_covers_the_charts_plugin_0_7_1() -> None:
    # The official chart 9.1.0 runs Falco 0.44.1 with container plugin 0.7.1: its 61 fields, including
    # the deprecated k8s.* metadata fields kept for compatibility; container.info is not one of them.
    cat = fields.catalog(["container"])
    for name in ("container.id", "container.label", "container.mount.dest", "k8s.ns.name", "k8s.pod.uid",
                 "k8s.deployment.name", "k8s.rs.label", "proc.is_container_healthcheck"):
        assert cat.lookup("syscall", name) is not None, name
    assert cat.lookup("syscall", "container.info") is None
    assert fields.provenance()["plugins"]["container"] == "0.7.1"


def test_engine_version_selects_the_catalog_of_that_falco() -> None:
    # Falco 0.40 (engine 0.46.0) has the container fields built in; from 0.41 they need the plugin.
    assert fields.catalog([], (0, 46, 0)).lookup("syscall", "container.id") is not None
    assert fields.catalog([], (0, 50, 0)).lookup("syscall", "container.id") is None
    assert fields.catalog(["container"], (0, 50, 0)).lookup("syscall", "container.id") is not None
