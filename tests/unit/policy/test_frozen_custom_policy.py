"""A CustomPolicy with ``basedOn.followUpdates: false`` freezes its rule set, decided by the policy core.

Covers: the first render of a frozen policy without ``status.frozenRules`` captures the managed
policy's included rules (``Layer.frozen_capture`` / ``RenderOutcome.frozen_capture``) and already
runs exactly that set; once recorded, the set is used and a rule a later release adds to the managed
policy does not enter it; a frozen rule removed upstream is reported at ``status.frozenRules`` and not
emitted; switching to ``followUpdates: true`` drops the stored set and follows, switching back
captures anew; ``padlock copy --freeze`` policies (explicit ``spec.rules``) capture nothing; the
render (cold or warm cache) is byte-identical and reports the same capture; ``policy_rules`` gives
the rules each CustomPolicy runs (its ``status.ruleCount``).
"""

from __future__ import annotations

import dataclasses

from policy_helpers import NOW, managed, rule, ruleset
from test_effective_render import V1, V2, _inputs, _rules

from padlock.policy import effective
from padlock.policy.layer import build_layer
from padlock.policy.policy_objects import BasedOn, CustomPolicyInput, ObjectRef

A = rule("Rule A")
B = rule("Rule B")
C = rule("Rule C")
OFF_UPSTREAM = rule("Rule Off", enabled=False)
FROZEN = CustomPolicyInput("frozen", based_on=BasedOn("cred", follow_updates=False))
REF = ObjectRef("CustomPolicy", "frozen")
GPG = "Search GPG Private Keys"
CRED_V1 = ("Read sensitive file untrusted", "Search Private Keys or Passwords")


def _overrides(layer):
    return {s.items[0]["rule"]: s.items[0] for s in layer.sections if s.owner is None}


def test_first_render_captures_the_managed_policys_included_rules_and_runs_them():
    # B is listed first and Rule Off is off upstream: the capture is the included set, sorted.
    mp = managed("cred", B, A, OFF_UPSTREAM, enabled=False)
    layer = build_layer(ruleset(A, B, C, OFF_UPSTREAM), [mp], [(FROZEN, None)], [], NOW)
    assert layer.frozen_capture == {REF: ("Rule A", "Rule B")}
    assert layer.policies[REF].runs == ("Rule A", "Rule B")
    assert layer.running == {"Rule A", "Rule B"}
    assert not [d for d in layer.diagnostics if d.ref == REF]


def test_recorded_frozen_set_is_used_and_a_new_managed_rule_does_not_enter_it():
    recorded = dataclasses.replace(FROZEN, frozen_rules=("Rule A", "Rule B"))
    # the next release adds Rule C to the managed policy (which is off, so only the copy runs rules)
    layer = build_layer(ruleset(A, B, C), [managed("cred", A, B, C, enabled=False)], [(recorded, None)], [], NOW)
    assert layer.frozen_capture == {}  # nothing new to record
    assert layer.policies[REF].runs == ("Rule A", "Rule B")
    assert _overrides(layer)["Rule C"]["enabled"] is False


def test_frozen_rule_removed_upstream_is_reported_not_emitted():
    recorded = dataclasses.replace(FROZEN, frozen_rules=("Rule A", "Rule B"))
    layer = build_layer(ruleset(A, C), [managed("cred", A, C, enabled=False)], [(recorded, None)], [], NOW)
    assert layer.policies[REF].runs == ("Rule A",)
    assert "Rule B" not in _overrides(layer)
    assert [d.one_line() for d in layer.diagnostics if d.ref == REF] == [
        'CustomPolicy frozen: status.frozenRules: rule "Rule B" does not exist in any source; ignored [vanished-rule]'
    ]
    assert layer.frozen_capture == {}  # the recorded set stays as it was


def test_following_again_drops_the_frozen_set_and_freezing_again_captures_anew():
    up = ruleset(A, B, C)
    mp = managed("cred", A, B, C, enabled=False)
    recorded = dataclasses.replace(FROZEN, frozen_rules=("Rule A",))
    follows = dataclasses.replace(recorded, based_on=BasedOn("cred", follow_updates=True))
    layer = build_layer(up, [mp], [(follows, None)], [], NOW)
    assert layer.frozen_capture == {REF: None}
    assert layer.policies[REF].runs == ("Rule A", "Rule B", "Rule C")
    # the status writer cleared the set; frozen again, the policy captures what the managed one has now
    refrozen = dataclasses.replace(FROZEN, frozen_rules=None)
    layer = build_layer(up, [mp], [(refrozen, None)], [], NOW)
    assert layer.frozen_capture == {REF: ("Rule A", "Rule B", "Rule C")}
    # a policy that dropped basedOn altogether drops its stored set too
    plain = CustomPolicyInput("frozen", rules=("Rule A",), frozen_rules=("Rule A",))
    assert build_layer(up, [mp], [(plain, None)], [], NOW).frozen_capture == {REF: None}


def test_copy_freeze_policy_with_explicit_rules_captures_nothing():
    copied = dataclasses.replace(FROZEN, rules=("Rule A",))
    layer = build_layer(ruleset(A, B, C), [managed("cred", A, B, C, enabled=False)], [(copied, None)], [], NOW)
    assert layer.frozen_capture == {}
    assert layer.policies[REF].runs == ("Rule A",)


def test_frozen_policy_naming_an_unknown_managed_policy_captures_nothing():
    lost = CustomPolicyInput("frozen", based_on=BasedOn("nope", follow_updates=False))
    layer = build_layer(ruleset(A), [], [(lost, None)], [], NOW)
    assert layer.frozen_capture == {} and REF in layer.invalid


def test_render_reports_the_capture_and_a_later_release_keeps_the_frozen_policy_as_captured():
    # The managed originals are switched off, so only the custom policies decide what runs.
    off = {"credential-access": (False, ()), "stable-threat-detection": (False, ())}
    frozen = CustomPolicyInput("frozen", based_on=BasedOn("credential-access", follow_updates=False))
    follow = CustomPolicyInput("follow", based_on=BasedOn("credential-access"), enabled=False)
    v1 = effective.render(_inputs(V1, "1.0.0", choices=off, custom=(frozen, follow)), NOW)
    assert v1.publishable
    assert v1.frozen_capture == {REF: CRED_V1}
    assert v1.policy_rules[REF] == CRED_V1
    assert v1.policy_rules[ObjectRef("CustomPolicy", "follow")] == ()  # disabled: runs nothing
    # v2 adds the GPG rule to credential-access; the recorded set keeps the frozen policy where it was
    recorded = dataclasses.replace(frozen, frozen_rules=v1.frozen_capture[REF])
    v2 = effective.render(_inputs(V2, "2.0.0", choices=off, custom=(recorded, follow)), NOW)
    assert v2.frozen_capture == {}
    assert v2.policy_rules[REF] == CRED_V1
    assert _rules(v2)[GPG].enabled is False
    # the followed copy, switched on, brings it
    on = dataclasses.replace(follow, enabled=True)
    v2f = effective.render(_inputs(V2, "2.0.0", choices=off, custom=(recorded, on)), NOW)
    assert _rules(v2f)[GPG].enabled is True
    assert set(v2f.policy_rules[ObjectRef("CustomPolicy", "follow")]) == {*CRED_V1, GPG}


def test_capture_and_files_are_the_same_with_a_warm_cache_and_cold():
    frozen = CustomPolicyInput("frozen", based_on=BasedOn("credential-access", follow_updates=False))
    inputs = _inputs(V2, "2.0.0", custom=(frozen,))
    cache = effective.RenderCache()
    first = effective.render(inputs, NOW, cache)
    warm = effective.render(inputs, NOW, cache)
    cold = effective.render(inputs, NOW)
    assert first.frozen_capture == warm.frozen_capture == cold.frozen_capture == {REF: tuple(sorted({*CRED_V1, GPG}))}
    assert first.files == warm.files == cold.files
