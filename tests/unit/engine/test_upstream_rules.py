"""Every released upstream rules file loads, alone and stacked, and matches the manifest inventory.

Covers: each of the 33 files in ``tests/data/upstream-rules`` is valid on its own (with the container plugin,
which the newest Falco needs for ``container.*`` fields); stable 5.1.0 + incubating 6.0.1 + sandbox 6.1.0
stacked in that order is valid; item counts, rule names, priorities, tags and enabled flags equal
``manifest.json``; files older than the container plugin are valid without it for the engine they were
written for; the same inputs give the same ruleset and diagnostics.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from padlock.engine import loader, reader
from padlock.engine.model import RulesFile
from rules_corpus import manifest, read_upstream

CONTAINER = {"container": "0.4.0"}
STACK = (
    "falco-rules-5.1.0/falco_rules.yaml",
    "falco-incubating-rules-6.0.1/falco-incubating_rules.yaml",
    "falco-sandbox-rules-6.1.0/falco-sandbox_rules.yaml",
)


def _entries() -> list[Any]:
    return [pytest.param(e, id=e["tag"]) for e in manifest()["files"]]


def _file(rel: str) -> RulesFile:
    return RulesFile(rel.split("/")[-1], read_upstream(rel))


@pytest.mark.parametrize("entry", _entries())
def test_upstream_file_is_valid_and_matches_manifest(entry: dict[str, Any]) -> None:
    res = loader.load([_file(entry["file"])], plugins=CONTAINER)
    assert res.valid, [d.one_line() for d in res.errors]
    rs = res.ruleset
    # The manifest counts items as written; a name defined twice (falco-rules 0.1.0 redefines a list)
    # is one entry in the ruleset, at its first position.
    items = reader.read(entry["file"], read_upstream(entry["file"])).items
    written = {k: sum(1 for i in items if i.kind == k[:-1]) for k in ("rules", "macros", "lists")}
    assert written == entry["counts"]
    assert len(rs.lists) == len({i.name for i in items if i.kind == "list"})
    assert len(rs.macros) == len({i.name for i in items if i.kind == "macro"})
    assert list(rs.rules) == [r["name"] for r in entry["rules"]]
    for expected in entry["rules"]:
        rule = rs.rules[expected["name"]]
        written_priority = expected["priority"].upper()
        assert rule.priority == ("INFORMATIONAL" if written_priority == "INFO" else written_priority)
        assert list(rule.tags) == expected["tags"]
        assert rule.enabled == expected["enabled"]
    assert sum(not r.enabled for r in rs.rules.values()) == entry["rules_disabled"]
    req = entry["required_engine_version"]
    expected_engine = f"0.{req}.0" if isinstance(req, int) else req
    assert rs.required_engine_version == expected_engine
    expected_plugins = [(p["name"], p["version"]) for p in entry["required_plugin_versions"] or []]
    assert [(p.name, p.version) for p in rs.required_plugins] == expected_plugins


def test_stable_incubating_sandbox_stack_is_valid() -> None:
    res = loader.load([_file(p) for p in STACK], plugins=CONTAINER)
    assert res.valid, [d.one_line() for d in res.errors]
    by_file = {e["file"]: e for e in manifest()["files"]}
    names = [r["name"] for p in STACK for r in by_file[p]["rules"]]
    assert list(res.ruleset.rules) == list(dict.fromkeys(names))


def test_stack_redefinitions_keep_first_position_and_take_last_value() -> None:
    res = loader.load([_file(p) for p in STACK], plugins=CONTAINER)
    texts = [yaml.safe_load(read_upstream(p)) for p in STACK]
    # python_package_managers differs: stable has uv, incubating and sandbox do not (notes quirk 4).
    stable_lists = [i["list"] for i in texts[0] if "list" in i]
    first = stable_lists.index("python_package_managers")
    assert list(res.ruleset.lists).index("python_package_managers") == first
    sandbox_def = next(i for i in texts[2] if i.get("list") == "python_package_managers")
    assert res.ruleset.lists["python_package_managers"].items == tuple(str(x) for x in sandbox_def["items"])
    assert res.ruleset.lists["python_package_managers"].file == "falco_rules.yaml"


def test_newest_files_fail_without_the_container_plugin() -> None:
    res = loader.load([_file(STACK[0])])
    ids = {d.id for d in res.errors}
    assert {"plugin-requirement", "unknown-field"} <= ids


def test_pre_plugin_files_are_valid_for_their_engine_without_plugins() -> None:
    res = loader.load([_file("falco-rules-3.2.0/falco_rules.yaml")], engine_version="0.40.0")
    assert res.valid, [d.one_line() for d in res.errors]


def test_loading_is_deterministic() -> None:
    files = [_file(p) for p in STACK]
    a = loader.load(files, plugins=CONTAINER)
    b = loader.load(list(files), plugins=dict(CONTAINER))
    assert a.ruleset == b.ruleset
    assert [d.to_json() for d in a.warnings] == [d.to_json() for d in b.warnings]
    assert [r.compiled_condition for r in a.ruleset.rules.values()] == [
        r.compiled_condition for r in b.ruleset.rules.values()
    ]
