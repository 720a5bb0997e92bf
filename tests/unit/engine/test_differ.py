"""Differ: added, removed and modified rules, macros and lists, and the rules a changed macro/list affects.

Covers small inline rulesets (exact results), reformatting that is not a change, and a real upstream
upgrade (falco-rules 5.0.0 -> 5.1.0) whose changes are read from the files independently of the differ.
"""

from __future__ import annotations

import yaml

from padlock.engine import differ, loader
from padlock.engine.model import Ruleset, RulesFile
from rules_corpus import read_upstream

OLD = """
- list: shells
  items: [bash, sh]
- macro: spawned
  condition: evt.type = execve
- macro: shell_procs
  condition: proc.name in (shells)
- rule: Shell
  desc: a shell
  condition: spawned and shell_procs
  output: shell %proc.name
  priority: NOTICE
  tags: [a, b]
- rule: Gone
  desc: removed later
  condition: evt.type = open
  output: o
  priority: WARNING
"""

NEW = """
- list: shells
  items: [sh, bash, zsh]
- macro: spawned
  condition: >
    evt.type = execve
- macro: shell_procs
  condition: proc.name in (shells)
- rule: Shell
  desc: a shell
  condition: spawned and shell_procs
  output: shell %proc.name
  priority: WARNING
  tags: [b, a]
- rule: Fresh
  desc: new
  condition: evt.type = connect
  output: o
  priority: INFO
"""


def rs(text: str) -> Ruleset:
    res = loader.load([RulesFile("f.yaml", text)])
    assert res.valid, res.errors
    return res.ruleset


def test_small_diff_is_exact() -> None:
    d = differ.diff(rs(OLD), rs(NEW))
    assert d.rules.added == ("Fresh",)
    assert d.rules.removed == ("Gone",)
    assert [(m.name, m.keys) for m in d.rules.modified] == [("Shell", ("priority",))]  # tag order is not a change
    assert d.macros.changed == ()  # re-folding a condition is not a change
    assert [(m.name, m.keys) for m in d.lists.modified] == [("shells", ("items",))]
    assert d.affected_by_list == {"shells": ("Shell",)}


def test_changed_macro_lists_transitive_rule_users() -> None:
    new = NEW.replace("condition: proc.name in (shells)", "condition: proc.name in (shells) and proc.tty != 0")
    d = differ.diff(rs(OLD), rs(new))
    assert [m.name for m in d.macros.modified] == ["shell_procs"]
    assert d.affected_by_macro == {"shell_procs": ("Shell",)}
    doc = d.to_json()
    assert doc["affects"] == {"macros": {"shell_procs": ["Shell"]}, "lists": {"shells": ["Shell"]}}


def test_identical_rulesets_have_no_changes() -> None:
    d = differ.diff(rs(OLD), rs(OLD))
    assert d.empty


def _items(text: str, kind: str) -> dict[str, object]:
    return {i[kind]: i for i in yaml.safe_load(text) if isinstance(i, dict) and kind in i}


def test_upstream_upgrade_reports_what_the_files_show() -> None:
    old_text = read_upstream("falco-rules-5.0.0/falco_rules.yaml")
    new_text = read_upstream("falco-rules-5.1.0/falco_rules.yaml")
    plugins = {"container": "0.4.0"}
    old = loader.load([RulesFile("falco_rules.yaml", old_text)], plugins=plugins).ruleset
    new = loader.load([RulesFile("falco_rules.yaml", new_text)], plugins=plugins).ruleset
    d = differ.diff(old, new)
    for kind, section in (("rule", d.rules), ("macro", d.macros), ("list", d.lists)):
        a, b = _items(old_text, kind), _items(new_text, kind)
        assert set(section.added) == set(b) - set(a)
        assert set(section.removed) == set(a) - set(b)
        for m in section.modified:
            assert a[m.name] != b[m.name], m.name
    lists_a, lists_b = _items(old_text, "list"), _items(new_text, "list")
    changed_lists = {n for n in lists_a.keys() & lists_b.keys()
                     if set(map(str, lists_a[n]["items"])) != set(map(str, lists_b[n]["items"]))}  # type: ignore[index]
    assert {m.name for m in d.lists.modified} == changed_lists
    for name, users in d.affected_by_list.items():
        assert users, name
        for rule in users:
            assert rule in new.rules or rule in old.rules
