"""The incremental loader gives exactly what a from-scratch load gives.

Covers: ``loader.load(extra, base=loader.prepare(upstream))`` against ``loader.load([*upstream, *extra])``
on the full upstream stable + incubating + sandbox set plus a generated layer (overrides, scopes,
priorities, exceptions, custom rules, macros and lists), cold and warm (the same state reused, parts
seen before), with the layer given whole or split into parts; negative cases (override of a missing
rule, undefined macro in a custom rule, unknown exception field, a condition that does not compile in
a part, a YAML error in a part, parts that cannot be read apart); and a hypothesis test over random
item sequences on one shared state, so stale memo entries would show up as differences.
"""

from __future__ import annotations

import functools

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from padlock.engine import loader
from padlock.engine.model import RulesFile
from rules_corpus import read_upstream

PLUGINS = {"container": "0.4.0"}
UPSTREAM = (
    ("10-falco_rules.yaml", "falco-rules-5.1.0/falco_rules.yaml"),
    ("20-falco-incubating_rules.yaml", "falco-incubating-rules-6.0.1/falco-incubating_rules.yaml"),
    ("30-falco-sandbox_rules.yaml", "falco-sandbox-rules-6.1.0/falco-sandbox_rules.yaml"),
)
HEADER = "# generated\n# two comment lines, as the renderer writes them\n"


@functools.cache
def upstream() -> tuple[RulesFile, ...]:
    return tuple(RulesFile(name, read_upstream(rel)) for name, rel in UPSTREAM)


@functools.cache
def state() -> loader.LoadState:
    return loader.prepare(upstream(), plugins=PLUGINS)


def dump(item: dict[str, object]) -> str:
    text: str = yaml.dump([item], Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True,
                          default_flow_style=None, width=4096)
    return text


def split(name: str, items: list[dict[str, object]]) -> loader.SplitRulesFile:
    parts = (HEADER, *(dump(i) for i in items))
    return loader.SplitRulesFile(name, "".join(parts), parts)


def assert_same(full: loader.LoadResult, inc: loader.LoadResult) -> None:
    assert [d.one_line() for d in inc.errors] == [d.one_line() for d in full.errors]
    assert inc.errors == full.errors
    assert inc.warnings == full.warnings
    assert list(inc.ruleset.rules) == list(full.ruleset.rules)
    assert list(inc.ruleset.macros) == list(full.ruleset.macros)
    assert list(inc.ruleset.lists) == list(full.ruleset.lists)
    assert inc.ruleset == full.ruleset


def check(extra: list[RulesFile]) -> loader.LoadResult:
    """Full load vs incremental (cold-ish and warm, split and whole); returns the full result."""
    full = loader.load([*upstream(), *extra], plugins=PLUGINS)
    assert_same(full, loader.load(extra, base=state()))
    assert_same(full, loader.load(extra, base=state()))  # warm: every part and chain seen before
    whole = [RulesFile(f.name, f.text) for f in extra]
    assert_same(full, loader.load(whole, base=state()))
    fresh = loader.prepare(upstream(), plugins=PLUGINS)  # a cold memo
    assert_same(full, loader.load(extra, base=fresh))
    return full


def exception_item(rule: str, name: str, image: str, ns: str) -> dict[str, object]:
    return {
        "rule": rule,
        "exceptions": [{"name": name, "fields": ["container.image.repository", "k8s.ns.name"],
                        "comps": ["in", "="], "values": [[[image], ns]]}],
        "override": {"exceptions": "append"},
    }


def layer_items() -> list[dict[str, object]]:
    rules = list(state().result.ruleset.rules.values())
    items: list[dict[str, object]] = [
        {"list": "team_images", "items": ["nginx", "redis"]},
        {"macro": "team_container", "condition": "container.image.repository in (team_images)"},
        {"rule": "Team shell", "desc": "d", "condition": "spawned_process and team_container and proc.name = bash",
         "output": "shell (proc=%proc.name)", "priority": "WARNING"},
        {"list": "team_images", "items": ["postgres"], "override": {"items": "append"}},
    ]
    for i, r in enumerate(rules[:40]):
        if r.source != "syscall":
            continue
        if i % 3 == 0:
            items.append({"rule": r.name, "condition": f"({r.condition.strip()}) and (k8s.ns.name in (a, b))",
                          "override": {"condition": "replace"}})
        if i % 4 == 0:
            items.append({"rule": r.name, "priority": "CRITICAL", "override": {"priority": "replace"}})
        if i % 5 == 0:
            items.append({"rule": r.name, "enabled": False, "override": {"enabled": "replace"}})
    for i, r in enumerate(rules[:60]):
        if r.source == "syscall":
            items.append(exception_item(r.name, f"padlock_pe_ns{i}_ex{i}", f"registry.example.com/app-{i}", f"ns{i}"))
            items.append(exception_item(r.name, f"padlock_cpe_c{i}", f"registry.example.com/c-{i}", "kube-system"))
    items.append(exception_item("Team shell", "padlock_cp_team_0", "busybox", "team"))
    return items


def test_generated_layer_on_upstream_loads_as_from_scratch() -> None:
    items = layer_items()
    full = check([split("padlock-policies.yaml", items[: len(items) // 2]),
                  split("padlock-policies_002.yaml", items[len(items) // 2 :])])
    assert full.valid, [d.one_line() for d in full.errors]
    assert "Team shell" in full.ruleset.rules


def test_one_changed_item_reloads_as_from_scratch() -> None:
    items = layer_items()
    check([split("padlock-policies.yaml", items)])
    changed = list(items)
    index = next(i for i, it in enumerate(changed) if "exceptions" in it)
    changed[index] = exception_item(str(changed[index]["rule"]), "padlock_pe_x_y", "changed/image", "x")
    full = check([split("padlock-policies.yaml", changed)])
    rule = full.ruleset.rules[str(changed[index]["rule"])]
    assert any(e.name == "padlock_pe_x_y" for e in rule.exceptions)


@pytest.mark.parametrize(
    ("label", "item", "problem"),
    [
        ("override of a missing rule",
         {"rule": "No such rule", "priority": "ERROR", "override": {"priority": "replace"}}, "override-target-missing"),
        ("undefined macro in a custom rule",
         {"rule": "Custom", "desc": "d", "condition": "spawned_process and no_such_macro", "output": "o",
          "priority": "INFO"}, "undefined-macro"),
        ("unknown exception field",
         {"rule": "Terminal shell in container", "exceptions": [{"name": "bad", "fields": ["proc.nope"],
                                                                  "values": [["x"]]}],
          "override": {"exceptions": "append"}}, "exception-unknown-field"),
        ("condition that does not compile",
         {"rule": "Terminal shell in container", "condition": "(spawned_process and) or",
          "override": {"condition": "replace"}}, "condition-syntax"),
        ("unknown field in a replaced condition",
         {"rule": "Terminal shell in container", "condition": "spawned_process and proc.nope = x",
          "override": {"condition": "replace"}}, "unknown-field"),
        ("append to a missing list", {"list": "no_list", "items": ["a"], "override": {"items": "append"}},
         "append-target-missing"),
        ("macro redefined with an undefined reference",
         {"macro": "spawned_process", "condition": "evt.type = execve and later_macro",
          "override": {"condition": "replace"}}, "undefined-macro"),
    ],
)
def test_bad_items_give_the_same_diagnostics(label: str, item: dict[str, object], problem: str) -> None:
    items = layer_items()
    items.insert(len(items) // 2, item)
    full = check([split("padlock-policies.yaml", items)])
    assert problem in {d.id for d in full.errors}, label
    bad = next(d for d in full.errors if d.id == problem)
    assert bad.file == "padlock-policies.yaml" and bad.line > 2


def test_yaml_error_in_a_part_reads_the_file_whole() -> None:
    parts = (HEADER, dump(layer_items()[-1]), "- rule: [unclosed\n")
    full = check([loader.SplitRulesFile("padlock-policies.yaml", "".join(parts), parts)])
    assert [d.id for d in full.errors] == ["yaml-parse"]
    assert full.errors[0].line > "".join(parts[:2]).count("\n")  # in the third part, on the real line


@pytest.mark.parametrize(
    "parts",
    [
        # an alias to an anchor of an earlier part: only readable whole
        (HEADER, "- list: a\n  items: &x [one]\n", "- list: b\n  items: *x\n"),
        # a flow sequence and a document marker: not concatenable item lists
        ("[]\n", "- list: a\n  items: [one]\n"),
        ("- list: a\n  items: [one]\n", "---\n- list: b\n  items: [two]\n"),
        # a part without a final newline
        ("- list: a\n  items: [one]", "\n- list: b\n  items: [two]\n"),
    ],
)
def test_parts_that_cannot_be_read_apart_give_the_whole_file_result(parts: tuple[str, ...]) -> None:
    check([loader.SplitRulesFile("99-x.yaml", "".join(parts), parts)])


def test_parts_that_do_not_make_the_text_are_ignored() -> None:
    f = loader.SplitRulesFile("99-x.yaml", "- list: a\n  items: [one]\n", ("- list: zzz\n  items: [two]\n",))
    full = check([f])
    assert "a" in full.ruleset.lists and "zzz" not in full.ruleset.lists


def test_changed_custom_lists_and_macros_reach_the_rules_using_them() -> None:
    # The rule items stay the same text (so the same rule state is reused between loads) while the
    # list and macro they use change: each load must still equal its from-scratch load.
    rule = {"rule": "Team open", "desc": "d", "condition": "team_open and proc.name = a", "output": "o %proc.name",
            "priority": "NOTICE"}
    exc = {"rule": "Team open", "exceptions": [{"name": "e", "fields": "proc.name", "comps": "in",
                                                "values": ["team_procs"]}], "override": {"exceptions": "append"}}
    other = {"rule": "Team other", "desc": "d", "condition": "open_read and proc.name = b", "output": "o",
             "priority": "NOTICE"}
    # each step changes one thing from the one before
    variants = [
        ("open", "evt.type in (team_events)", ["x"]),
        ("open", "evt.type in (team_events) and proc.nme = 1", ["x"]),  # unknown field in the macro
        ("open", "evt.type in (team_events)", ["x"]),
        ("opne", "evt.type in (team_events)", ["x"]),  # unknown event type through the list
        ("open", "evt.type in (team_events)", ["x"]),
        ("open", "evt.type in (team_events)", ["y", "z"]),  # list named by an exception value
    ]
    state_ = loader.prepare(upstream(), plugins=PLUGINS)
    seen: set[str] = set()
    for event, macro, procs in variants * 2:
        items = [{"list": "team_events", "items": [event]}, {"list": "team_procs", "items": procs},
                 {"macro": "team_open", "condition": macro}, rule, exc, other]
        files = [split("padlock-policies.yaml", items)]
        full = loader.load([*upstream(), *files], plugins=PLUGINS)
        assert_same(full, loader.load(files, base=state_))
        seen |= {d.id for d in full.errors}
    assert {"unknown-event-type", "unknown-field"} <= seen


def test_base_engine_and_plugins_cannot_be_changed() -> None:
    with pytest.raises(ValueError, match="base"):
        loader.load([], base=state(), plugins={})


# Random layers on one shared state: a stale memo entry (part, rule chain, compiled rule) would make
# a later example differ from its from-scratch load.
_RULES = ("Terminal shell in container", "Read sensitive file untrusted", "Team shell", "No such rule")
_item = st.one_of(
    st.builds(exception_item, st.sampled_from(_RULES), st.sampled_from(["e1", "e2", "e3"]),
              st.sampled_from(["nginx", "redis", "team_images"]), st.sampled_from(["a", "b"])),
    st.builds(lambda r, p: {"rule": r, "priority": p, "override": {"priority": "replace"}},
              st.sampled_from(_RULES), st.sampled_from(["ERROR", "INFO", "BAD"])),
    st.builds(lambda r, c: {"rule": r, "condition": c, "override": {"condition": "replace"}},
              st.sampled_from(_RULES),
              st.sampled_from(["spawned_process and proc.name = sh", "open_read and team_container",
                               "evt.type = open and", "spawned_process and proc.nope = 1"])),
    st.builds(lambda c: {"rule": "Team shell", "desc": "d", "condition": c, "output": "o %proc.name",
                         "priority": "NOTICE"},
              st.sampled_from(["spawned_process and team_container", "spawned_process and missing_macro"])),
    st.builds(lambda items: {"list": "team_images", "items": items}, st.lists(st.sampled_from(["a", "b"]), max_size=2)),
    st.just({"macro": "team_container", "condition": "container.image.repository in (team_images)"}),
    st.builds(lambda e: {"rule": "Terminal shell in container", "enabled": e}, st.booleans()),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_item, max_size=12), st.integers(min_value=0, max_value=12))
def test_random_layers_load_as_from_scratch(items: list[dict[str, object]], cut: int) -> None:
    files: list[RulesFile] = [split("99-a.yaml", items[:cut])]
    if cut < len(items):
        files.append(split("99-b.yaml", items[cut:]))
    full = loader.load([*upstream(), *files], plugins=PLUGINS)
    assert_same(full, loader.load(files, base=state()))
