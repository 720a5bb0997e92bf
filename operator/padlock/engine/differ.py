"""Differ: what changed between two loaded rulesets, and which rules a changed macro or list affects.

Called by ``padlock diff`` and by the operator when a RuleSource moves to a new release (status history,
ManagedPolicy changes). Conditions are compared as parsed trees, so re-wrapping a folded condition is
not a change; list items are compared as sets, as Falco matches them. Output order follows the rulesets'
positions, so the same inputs always give the same diff.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from padlock.engine import condition as cond
from padlock.engine.model import Rule, Ruleset

RULE_KEYS = (
    "condition", "output", "desc", "priority", "tags", "enabled", "source", "exceptions", "warn_evttypes",
    "skip_if_unknown_filter", "capture", "capture_duration",
)


@dataclass(frozen=True)
class Modified:
    name: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class SectionDiff:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    modified: tuple[Modified, ...] = ()

    @property
    def changed(self) -> tuple[str, ...]:
        return self.added + self.removed + tuple(m.name for m in self.modified)

    def to_json(self) -> dict[str, object]:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "modified": [{"name": m.name, "keys": list(m.keys)} for m in self.modified],
        }


@dataclass(frozen=True)
class RulesetDiff:
    rules: SectionDiff
    macros: SectionDiff
    lists: SectionDiff
    #: changed macro/list name -> rules (new positions first, then rules only in the old set) using it.
    affected_by_macro: dict[str, tuple[str, ...]] = field(default_factory=dict)
    affected_by_list: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.rules.changed or self.macros.changed or self.lists.changed)

    def to_json(self) -> dict[str, object]:
        return {
            "rules": self.rules.to_json(),
            "macros": self.macros.to_json(),
            "lists": self.lists.to_json(),
            "affects": {
                "macros": {k: list(v) for k, v in self.affected_by_macro.items()},
                "lists": {k: list(v) for k, v in self.affected_by_list.items()},
            },
        }


def _same_condition(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return cond.parse(a) == cond.parse(b)
    except cond.ConditionError:
        return " ".join(a.split()) == " ".join(b.split())


def _rule_keys(old: Rule, new: Rule) -> tuple[str, ...]:
    keys: list[str] = []
    for k in RULE_KEYS:
        a, b = getattr(old, k), getattr(new, k)
        if k == "condition":
            if not _same_condition(a, b):
                keys.append(k)
        elif k == "tags":
            if set(a) != set(b):  # Falco keeps tags as a set
                keys.append(k)
        elif k in ("output", "desc"):
            if " ".join(a.split()) != " ".join(b.split()):
                keys.append(k)
        elif a != b:
            keys.append(k)
    return tuple(keys)


def diff(old: Ruleset, new: Ruleset) -> RulesetDiff:
    """Compare two rulesets: added, removed and modified rules, macros and lists, and what they affect."""
    rules = SectionDiff(
        tuple(n for n in new.rules if n not in old.rules),
        tuple(n for n in old.rules if n not in new.rules),
        tuple(
            Modified(n, keys)
            for n, r in new.rules.items()
            if n in old.rules and (keys := _rule_keys(old.rules[n], r))
        ),
    )
    macros = SectionDiff(
        tuple(n for n in new.macros if n not in old.macros),
        tuple(n for n in old.macros if n not in new.macros),
        tuple(
            Modified(n, ("condition",))
            for n, m in new.macros.items()
            if n in old.macros and not _same_condition(old.macros[n].condition, m.condition)
        ),
    )
    lists = SectionDiff(
        tuple(n for n in new.lists if n not in old.lists),
        tuple(n for n in old.lists if n not in new.lists),
        tuple(
            Modified(n, ("items",))
            for n, li in new.lists.items()
            if n in old.lists and set(old.lists[n].items) != set(li.items)
        ),
    )
    new_deps = _Dependencies(new)
    old_deps = _Dependencies(old)
    by_macro = {m: _users(m, "macro", new, old, new_deps, old_deps) for m in macros.changed}
    by_list = {li: _users(li, "list", new, old, new_deps, old_deps) for li in lists.changed}
    return RulesetDiff(rules, macros, lists, by_macro, by_list)


def _users(name: str, kind: str, new: Ruleset, old: Ruleset, nd: _Dependencies, od: _Dependencies) -> tuple[str, ...]:
    out = [r for r in new.rules if name in nd.of_rule(r, kind)]
    out += [r for r in old.rules if r not in new.rules and name in od.of_rule(r, kind)]
    return tuple(out)


class _Dependencies:
    """Transitive macro and list use of each rule in one ruleset (parsed lazily, memoised)."""

    def __init__(self, rs: Ruleset) -> None:
        self.rs = rs
        self.memo: dict[tuple[str, str], tuple[frozenset[str], frozenset[str]]] = {}
        self.list_memo: dict[str, frozenset[str]] = {}

    def _direct(self, text: str) -> tuple[set[str], set[str]]:
        try:
            node = cond.parse(text)
        except cond.ConditionError:
            return set(), set()
        macros = {r.name for r in cond.macro_refs(node)}
        lists: set[str] = set()
        for n in cond.iter_nodes(node):
            if isinstance(n, cond.Check):
                if isinstance(n.value, cond.ListValue):
                    lists.update(i.value for i in n.value.items if not i.quoted and i.value in self.rs.lists)
                elif isinstance(n.value, cond.ListRef) and n.value.name in self.rs.lists:
                    lists.add(n.value.name)
        return macros, lists

    def _list_closure(self, name: str, stack: frozenset[str] = frozenset()) -> frozenset[str]:
        if name in self.list_memo:
            return self.list_memo[name]
        out = {name}
        li = self.rs.lists.get(name)
        if li is not None:
            for item in li.items:
                if item in self.rs.lists and item not in stack and item != name:
                    out |= self._list_closure(item, stack | {name})
        self.list_memo[name] = frozenset(out)
        return self.list_memo[name]

    def _closure(self, kind: str, name: str, stack: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
        key = (kind, name)
        if key in self.memo:
            return self.memo[key]
        text = self.rs.rules[name].condition if kind == "rule" else self.rs.macros[name].condition
        macros, lists = self._direct(text)
        all_m: set[str] = set()
        all_l: set[str] = set()
        for li in lists:
            all_l |= self._list_closure(li)
        for m in macros:
            if m in self.rs.macros and m not in stack:
                all_m.add(m)
                sub_m, sub_l = self._closure("macro", m, stack | {m})
                all_m |= sub_m
                all_l |= sub_l
        result = (frozenset(all_m), frozenset(all_l))
        self.memo[key] = result
        return result

    def of_rule(self, rule: str, kind: str) -> frozenset[str]:
        macros, lists = self._closure("rule", rule, frozenset())
        return macros if kind == "macro" else lists
