"""One owner per rule in the built-in catalog, and the catalog's assignment mode.

Covers: every rule of every vendored upstream release (stable, incubating, sandbox, deprecated) lands
in exactly one built-in ManagedPolicy; no built-in policy's rules are a superset of another's; a
stable rule with several tactics goes to the earliest tactic in catalog (kill-chain) order and lists
the others in ``otherTactics``; a stable rule without a tactic tag goes to ``stable-other``;
incubating and sandbox start disabled; ``assignment: all`` keeps overlapping policies and
``firstMatch`` makes them exclusive; a bad assignment value is an error naming the field.
"""

from __future__ import annotations

import pytest
from policy_helpers import rule, ruleset

from padlock.devenv.paths import upstream_rules_dir
from padlock.engine import loader
from padlock.engine.model import RulesFile
from padlock.policy import catalog
from padlock.policy.managed import build_managed

UPSTREAM = upstream_rules_dir()
RELEASES = sorted(p for p in UPSTREAM.iterdir() if p.is_dir() and any(p.glob("*.yaml")))


def _ruleset(release):
    files = [RulesFile(f.name, f.read_text()) for f in sorted(release.glob("*.yaml"))]
    return loader.load(files).ruleset


@pytest.mark.parametrize("release", RELEASES, ids=lambda p: p.name)
def test_every_upstream_rule_with_a_maturity_has_exactly_one_builtin_owner(release):
    rs = _ruleset(release)
    built = build_managed(catalog.builtin(), {"upstream": rs}, {"upstream": "x"})
    owners: dict[str, list[str]] = {}
    for policy in built:
        for r in policy.rules:
            owners.setdefault(r.name, []).append(policy.name)
    with_maturity = {n for n, r in rs.rules.items() if any(t.startswith("maturity_") for t in r.tags)}
    assert with_maturity <= set(owners), sorted(with_maturity - set(owners))
    shared = {n: o for n, o in owners.items() if len(o) != 1}
    assert not shared, shared


def test_no_builtin_policy_is_a_superset_of_another_on_the_latest_releases():
    rulesets = {n: _ruleset(UPSTREAM / n) for n in ("falco-rules-5.1.0", "falco-incubating-rules-6.0.1",
                                                   "falco-sandbox-rules-6.1.0")}
    built = [p for p in build_managed(catalog.builtin(), rulesets, dict.fromkeys(rulesets, "x")) if p.rules]
    assert len(built) > 5
    sets = {p.name: {r.name for r in p.rules} for p in built}
    for a in sets:
        for b in sets:
            assert a == b or not sets[a] >= sets[b], f"{a} contains every rule of {b}"


MULTI = rule("Exec and persist", ("maturity_stable", "mitre_persistence", "mitre_execution", "T1059"))
NO_TACTIC = rule("Falco health", ("maturity_stable", "host"))
INCUBATING = rule("Noisy", ("maturity_incubating", "mitre_execution"))


def test_primary_tactic_is_the_first_in_catalog_order_and_the_others_are_listed():
    built = {p.name: p for p in build_managed(catalog.builtin(), {"s": ruleset(MULTI, NO_TACTIC, INCUBATING)},
                                              {"s": "1"})}
    (owned,) = built["execution"].rules  # execution comes before persistence in the kill chain
    assert owned.name == MULTI.name and owned.other_tactics == ("mitre_persistence",)
    assert owned.to_dict()["otherTactics"] == ["mitre_persistence"]
    assert built["persistence"].rules == ()
    assert [r.name for r in built["stable-other"].rules] == [NO_TACTIC.name]
    assert "otherTactics" not in built["stable-other"].rules[0].to_dict()
    assert [r.name for r in built["incubating"].rules] == [INCUBATING.name]
    assert built["incubating"].rules[0].other_tactics == ("mitre_execution",)
    assert not built["incubating"].default_enabled and not built["sandbox"].default_enabled


OVERLAPPING = """\
apiVersion: padlock.dev/catalog/v1
name: team
version: 1.0.0
assignment: {mode}
policies:
  - {{name: exec, displayName: E, description: e, select: {{tagsAny: [mitre_execution]}}}}
  - {{name: stable, displayName: S, description: s, select: {{maturity: [stable]}}}}
"""


@pytest.mark.parametrize(
    ("mode", "stable_rules"), [("all", [MULTI.name, NO_TACTIC.name]), ("firstMatch", [NO_TACTIC.name])]
)
def test_assignment_mode_decides_whether_policies_may_overlap(mode, stable_rules):
    cat, problems = catalog.parse(OVERLAPPING.format(mode=mode), "team.yaml")
    assert problems == [] and cat is not None
    built = {p.name: p for p in build_managed(cat, {"s": ruleset(MULTI, NO_TACTIC)}, {"s": "1"})}
    assert [r.name for r in built["exec"].rules] == [MULTI.name]
    assert [r.name for r in built["stable"].rules] == stable_rules


def test_unknown_assignment_mode_is_an_error_naming_the_field():
    cat, problems = catalog.parse(OVERLAPPING.format(mode="exclusive"), "team.yaml")
    assert cat is None
    assert [p.one_line() for p in problems] == [
        "team.yaml: assignment: must be one of firstMatch, all, got 'exclusive' [invalid-catalog]"
    ]


def test_catalog_without_assignment_keeps_overlapping_policies():
    cat, _ = catalog.parse(OVERLAPPING.replace("assignment: {mode}\n", "").format(), "team.yaml")
    assert cat is not None and cat.assignment == catalog.ALL
