"""The policy layer's items, computed from hand-built rulesets (no loader needed).

Covers: enablement union (a rule runs when one enabled policy includes and does not disable it),
every unselected rule disabled with override enabled: replace; scope wrapping with parentheses and
union of scopes (an unscoped enabling policy wins); priority overrides; CustomPolicy basedOn with
followUpdates true/false; exceptions bound to running rules with namespace pinning; expired
exceptions not applied; vanished rules and override targets dropped and reported.
"""

from __future__ import annotations

from datetime import timedelta

from policy_helpers import NOW, managed, rule, ruleset

from padlock.policy.layer import build_layer, scoped_condition
from padlock.policy.policy_objects import (
    BasedOn,
    CustomPolicyInput,
    ExceptionInput,
    ExceptionMatch,
    ObjectRef,
    PolicyTarget,
    Scope,
)

A = rule("Rule A", condition="evt.type = open or evt.type = openat")
B = rule("Rule B")
C = rule("Rule C")
UP = ruleset(A, B, C)


def _overrides(layer):
    return {s.items[0]["rule"]: s.items[0] for s in layer.sections if s.owner is None}


def _messages(layer):
    return [d.one_line() for d in layer.diagnostics]


def test_rule_runs_when_one_enabled_policy_includes_it_others_are_disabled_with_override():
    layer = build_layer(UP, [managed("p1", A, B, disabled=("Rule B",)), managed("p2", B, enabled=False)], [], [], NOW)
    assert _overrides(layer) == {
        "Rule B": {"rule": "Rule B", "enabled": False, "override": {"enabled": "replace"}},
        "Rule C": {"rule": "Rule C", "enabled": False, "override": {"enabled": "replace"}},
    }
    layer = build_layer(UP, [managed("p1", A, B, disabled=("Rule B",)), managed("p2", B)], [], [], NOW)
    assert set(_overrides(layer)) == {"Rule C"}
    assert layer.running == {"Rule A", "Rule B"}


def test_scoped_rule_condition_is_wrapped_in_parentheses():
    assert scoped_condition("a or b", [Scope(include=("x",))]) == "(a or b) and (k8s.ns.name in (x))"
    layer = build_layer(UP, [managed("p", A, scope=Scope(include=("x", "y"), exclude=("y-canary",)))], [], [], NOW)
    item = _overrides(layer)["Rule A"]
    assert item["condition"] == (
        "(evt.type = open or evt.type = openat) and "
        "(k8s.ns.name in (x, y) and not k8s.ns.name in (y-canary))"
    )
    assert item["override"] == {"condition": "replace"}


def test_rule_in_several_scoped_policies_runs_once_with_the_union_and_unscoped_policy_wins():
    p1 = managed("p1", A, scope=Scope(include=("team-a",)))
    p2 = managed("p2", A, scope=Scope(exclude=("kube-system",)))
    item = _overrides(build_layer(UP, [p1, p2], [], [], NOW))["Rule A"]
    assert item["condition"] == (
        "(evt.type = open or evt.type = openat) and "
        "((k8s.ns.name in (team-a)) or (not k8s.ns.name in (kube-system)))"
    )
    unscoped = managed("p3", A)
    assert "Rule A" not in _overrides(build_layer(UP, [p1, p2, unscoped], [], [], NOW))
    # a disabled unscoped policy does not widen anything
    off = managed("p3", A, enabled=False)
    assert "condition" in _overrides(build_layer(UP, [p1, off], [], [], NOW))["Rule A"]


def test_custom_policy_based_on_follows_updates_or_stays_frozen_and_overrides_priority():
    mp = managed("cred", A, B, enabled=False)
    follow = CustomPolicyInput("follow", based_on=BasedOn("cred"), disabled_rules=("Rule B",),
                               priority_override="CRITICAL")
    frozen = CustomPolicyInput("frozen", based_on=BasedOn("cred", follow_updates=False), frozen_rules=("Rule A",))
    layer = build_layer(UP, [mp], [(follow, None), (frozen, None)], [], NOW)
    assert layer.policies[ObjectRef("CustomPolicy", "follow")].runs == ("Rule A",)
    assert layer.policies[ObjectRef("CustomPolicy", "frozen")].runs == ("Rule A",)
    ov = _overrides(layer)
    assert ov["Rule A"] == {"rule": "Rule A", "priority": "CRITICAL", "override": {"priority": "replace"}}
    # v2: managed gains Rule C; the followed copy gets it, the frozen one does not
    layer2 = build_layer(UP, [managed("cred", A, B, C, enabled=False)], [(follow, None), (frozen, None)], [], NOW)
    assert layer2.policies[ObjectRef("CustomPolicy", "follow")].runs == ("Rule A", "Rule C")
    assert layer2.policies[ObjectRef("CustomPolicy", "frozen")].runs == ("Rule A",)


def test_custom_policy_naming_an_upstream_disabled_rule_enables_it():
    off = rule("Rule Off", enabled=False)
    cp = CustomPolicyInput("mine", rules=("Rule Off",))
    item = _overrides(build_layer(ruleset(off), [], [(cp, None)], [], NOW))["Rule Off"]
    assert item == {"rule": "Rule Off", "enabled": True, "override": {"enabled": "replace"}}


def test_custom_policy_on_unknown_managed_policy_is_invalid():
    cp = CustomPolicyInput("mine", based_on=BasedOn("nope"))
    layer = build_layer(UP, [], [(cp, None)], [], NOW)
    assert ObjectRef("CustomPolicy", "mine") in layer.invalid
    assert _messages(layer) == ['CustomPolicy mine: spec.basedOn.managedPolicy: no ManagedPolicy named "nope" [unknown-policy]']


def test_vanished_rules_are_dropped_and_reported_never_emitted():
    stale = managed("p", A, rule("Gone rule"), disabled=("Also gone",))
    cp = CustomPolicyInput("mine", rules=("Vanished",))
    layer = build_layer(ruleset(A), [stale], [(cp, None)], [], NOW)
    names = {s.items[0]["rule"] for s in layer.sections}
    assert names.isdisjoint({"Gone rule", "Also gone", "Vanished"})
    assert _messages(layer) == [
        'ManagedPolicy p: spec.rules: rule "Gone rule" no longer exists upstream; ignored [vanished-rule]',
        'ManagedPolicy p: spec.disabledRules[0]: no rule named "Also gone" in this policy (it may have been '
        "removed upstream); kept in your choices [missing-disabled-rule]",
        'CustomPolicy mine: spec.rules: rule "Vanished" does not exist in any source; ignored [vanished-rule]',
    ]


ON_A = (PolicyTarget("ManagedPolicy", "p", ("Rule A",)),)


def _pe(ns, name, match, policies=ON_A, expires=None):
    kind = "PolicyException" if ns else "ClusterPolicyException"
    return ExceptionInput(ObjectRef(kind, name, ns), tuple(policies), match, "why", expires)


def _exception_items(layer, ref):
    return [dict(i) for s in layer.sections if s.owner == ref for i in s.items]


def test_namespaced_exception_is_pinned_to_its_own_namespace():
    exc = _pe("team-a", "nginx", ExceptionMatch(images=("nginx",)))
    layer = build_layer(UP, [managed("p", A)], [], [exc], NOW)
    assert _exception_items(layer, exc.ref) == [{
        "rule": "Rule A",
        "exceptions": [{"name": "padlock_pe_team-a_nginx", "fields": ["container.image.repository", "k8s.ns.name"],
                        "comps": ["in", "="], "values": [[["nginx"], "team-a"]]}],
        "override": {"exceptions": "append"},
    }]


def test_namespaced_exception_naming_another_namespace_is_refused():
    match = ExceptionMatch(fields=("proc.name", "k8s.ns.name"), comps=("=", "="), values=(("bash", "team-b"),))
    exc = _pe("team-a", "sneaky", match)
    layer = build_layer(UP, [managed("p", A)], [], [exc], NOW)
    assert _exception_items(layer, exc.ref) == []
    assert exc.ref in layer.invalid
    assert _messages(layer) == [
        'PolicyException team-a/sneaky: spec.match.values[0][1]: names namespace team-b; a PolicyException in '
        'namespace "team-a" can only silence events from its own namespace [exception-namespace-escape]'
    ]


def test_cluster_exception_in_native_form_is_not_pinned():
    match = ExceptionMatch(fields=("proc.name", "fd.name"), comps=("=", "startswith"),
                           values=(("restic", "/etc/shadow"), ("velero", "/etc/")))
    exc = _pe("", "backup", match)
    (item,) = _exception_items(build_layer(UP, [managed("p", A)], [], [exc], NOW), exc.ref)
    assert item["exceptions"] == [{"name": "padlock_cpe_backup", "fields": ["proc.name", "fd.name"],
                                   "comps": ["=", "startswith"],
                                   "values": [["restic", "/etc/shadow"], ["velero", "/etc/"]]}]


def test_expired_exception_is_not_applied_and_reported():
    exc = _pe("team-a", "old", ExceptionMatch(images=("nginx",)), expires=NOW - timedelta(seconds=1))
    layer = build_layer(UP, [managed("p", A)], [], [exc], NOW)
    assert _exception_items(layer, exc.ref) == []
    assert layer.expired == (exc.ref,)
    assert exc.ref not in layer.invalid
    still = _pe("team-a", "old", ExceptionMatch(images=("nginx",)), expires=NOW + timedelta(days=1))
    assert _exception_items(build_layer(UP, [managed("p", A)], [], [still], NOW), still.ref)


def test_exception_on_unknown_policy_is_invalid_and_on_disabled_rule_is_not_emitted():
    exc = _pe("", "x", ExceptionMatch(images=("nginx",)), policies=(PolicyTarget("ManagedPolicy", "nope"),))
    layer = build_layer(UP, [managed("p", A)], [], [exc], NOW)
    assert exc.ref in layer.invalid
    off = _pe("", "y", ExceptionMatch(images=("nginx",)))
    layer = build_layer(UP, [managed("p", A, disabled=("Rule A",))], [], [off], NOW)
    assert _exception_items(layer, off.ref) == []


def test_layer_is_deterministic_whatever_the_input_order():
    pols = [managed("p1", A, scope=Scope(include=("a",))), managed("p2", A, B, scope=Scope(include=("b",)))]
    excs = [_pe("n1", "e1", ExceptionMatch(images=("i1",))), _pe("n2", "e2", ExceptionMatch(images=("i2",)))]
    one = build_layer(UP, pols, [], excs, NOW)
    two = build_layer(UP, pols[::-1], [], excs[::-1], NOW)
    assert one.sections == two.sections
