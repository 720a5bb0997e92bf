"""One object's failure or size leaves only that object out of the render; limits and precedence.

Runs the real rules core (``padlock.policy.effective.render`` over ``padlock.engine.loader``). Covers:
attribution (a CustomPolicy whose ``falcoRules`` nest 1,000 deep, one with a bad condition, an
exception whose items the loader rejects, an exception whose rendering or whose check raises: each is
left out with a diagnostic naming it, the rest publishes); a ManagedPolicy's choices that break an
item are left out (it runs with its defaults), a CustomPolicy's likewise leave it out; what cannot be traced to an object
publishes nothing; the per-object limit (a ~1 MB PolicyException, reason TooLarge); the per-namespace
limit (the newest over it left out, other namespaces untouched); the ConfigMap count (never more
shards than the mount declares; tenants' PolicyExceptions go first, newest first; admins' objects
and the ManagedPolicy choices are never pushed out; a smaller object after a left-out one still
fits); ``sharding.Packer.room`` really is a guarantee for next-fit placement; determinism (same
inputs in any order, byte-identical output, warm or cold cache).
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest
from policy_helpers import NOW
from test_effective_render import DISABLE_KEYS, PLUGINS, V1, _inputs, _reload

from padlock.engine import loader
from padlock.policy import effective, layer, sharding
from padlock.policy.policy_objects import (
    CustomPolicyInput,
    ExceptionInput,
    ExceptionMatch,
    ObjectRef,
    PolicyTarget,
    Scope,
    SourceInput,
)

SHELL = "Terminal shell in container"
GOOD_RULE = ("- rule: Good rule\n  desc: d\n  condition: spawned_process and proc.name = good\n"
             "  output: o %proc.name\n  priority: WARNING\n")


def pe(name: str, namespace: str = "team-a", *, images: tuple[str, ...] = ("nginx",),
       policy: str = "execution") -> ExceptionInput:
    return ExceptionInput(ObjectRef("PolicyException", name, namespace), (PolicyTarget("ManagedPolicy", policy),),
                          ExceptionMatch(images=images), "r")


def cpe(name: str, *, images: tuple[str, ...] = ("backup",)) -> ExceptionInput:
    return ExceptionInput(ObjectRef("ClusterPolicyException", name), (PolicyTarget("ManagedPolicy", "execution"),),
                          ExceptionMatch(images=images), "r")


def big_images(n: int, width: int = 4000) -> tuple[str, ...]:
    return tuple(f"registry.example.com/{i}-" + "x" * width for i in range(n))


def published_layer(outcome: effective.RenderOutcome) -> str:
    return "".join(v for k, v in sorted(outcome.files.items()) if k.startswith("padlock-policies"))


def errors_of(outcome: effective.RenderOutcome, ref: ObjectRef) -> list[str]:
    return [d.id for d in outcome.by_object().get(ref, []) if d.severity == "error"]


# --- attribution ------------------------------------------------------------------------------------

def test_custom_policy_nesting_a_thousand_deep_is_left_out_and_everything_else_publishes():
    deep = CustomPolicyInput("deep", falco_rules="- rule: x\n  desc: " + "[" * 1000 + "]" * 1000 + "\n")
    good = CustomPolicyInput("good", falco_rules=GOOD_RULE)
    outcome = effective.render(_inputs(V1, "1.0.0", custom=[deep, good], exceptions=[pe("nginx")]), NOW)
    assert outcome.publishable
    assert outcome.excluded == (deep.ref,)
    assert outcome.reasons == {deep.ref: "Invalid"}
    (diag,) = outcome.by_object()[deep.ref]
    assert diag.path.startswith("spec.falcoRules") and diag.severity == "error"  # with line:col
    rules = _reload(outcome).ruleset.rules
    assert rules["Good rule"].enabled and "padlock_pe_team-a_nginx" in published_layer(outcome)


def test_custom_policy_with_a_bad_condition_is_left_out_with_the_loader_message():
    bad = CustomPolicyInput("bad", falco_rules=GOOD_RULE.replace("Good rule", "Bad").replace("proc.name = good", "y"))
    outcome = effective.render(_inputs(V1, "1.0.0", custom=[bad, CustomPolicyInput("good", falco_rules=GOOD_RULE)]),
                               NOW)
    assert outcome.publishable and outcome.excluded == (bad.ref,)
    assert errors_of(outcome, bad.ref) == ["undefined-macro"]
    assert "Good rule" in _reload(outcome).ruleset.rules


def test_exception_whose_rendering_raises_is_left_out_alone(monkeypatch):
    real = layer.render_exception

    def fragile(exc, now, index=0, lists=None):
        if exc.ref.name == "poison":
            raise RecursionError("maximum recursion depth exceeded")
        return real(exc, now, index, lists)

    monkeypatch.setattr(layer, "render_exception", fragile)
    outcome = effective.render(_inputs(V1, "1.0.0", exceptions=[pe("poison"), pe("fine")]), NOW)
    assert outcome.publishable and outcome.excluded == (pe("poison").ref,)
    assert errors_of(outcome, pe("poison").ref) == ["render-failed"]
    assert "padlock_pe_team-a_fine" in published_layer(outcome)


def test_items_that_make_the_check_itself_raise_are_traced_by_checking_each_object_alone(monkeypatch):
    real = loader.load

    def fragile(files, **kw):
        if any("poison-image" in f.text for f in files):
            raise RecursionError("maximum recursion depth exceeded")
        return real(files, **kw)

    monkeypatch.setattr(effective.loader, "load", fragile)
    outcome = effective.render(_inputs(V1, "1.0.0", exceptions=[pe("poison", images=("poison-image",)),
                                                                 pe("fine")]), NOW)
    assert outcome.publishable and outcome.excluded == (pe("poison").ref,)
    assert errors_of(outcome, pe("poison").ref) == ["check-failed"]
    assert "padlock_pe_team-a_fine" in published_layer(outcome)


def test_a_failure_no_object_explains_publishes_nothing(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(effective, "build_layer", broken)
    outcome = effective.render(_inputs(V1, "1.0.0", exceptions=[pe("fine")]), NOW)
    assert not outcome.publishable and outcome.configmaps == () and outcome.files == {}
    assert [d.ref for d in outcome.errors] == [effective.RENDER_REF]


def _break_scope(monkeypatch, namespace: str) -> None:
    """A scope naming ``namespace`` yields a condition the loader refuses (a stand-in for any way a
    choice could make an item fail)."""
    real = layer.scoped_condition

    def scoped(condition, scopes, lists=()):
        text = real(condition, scopes, lists)
        return text + " and no_such_macro" if any(namespace in s.include for s in scopes) else text

    monkeypatch.setattr(layer, "scoped_condition", scoped)


def test_a_managed_policys_choices_that_break_an_item_are_left_out_and_it_runs_with_its_defaults(monkeypatch):
    _break_scope(monkeypatch, "broken")
    choices = {"execution": (None, ())}
    inputs = _inputs(V1, "1.0.0", choices=choices, exceptions=[pe("fine")])
    managed = tuple(replace(m, scope=Scope(include=("broken",))) if m.name == "execution" else m
                    for m in inputs.managed)
    outcome = effective.render(replace(inputs, managed=managed), NOW)
    assert outcome.publishable and outcome.excluded == ()
    (diag,) = [d for d in outcome.errors]
    assert diag.ref == ObjectRef("ManagedPolicy", "execution") and diag.id == "undefined-macro"
    assert "its choices (enabled, disabledRules, scope) are left out" in diag.message
    rules = _reload(outcome).ruleset.rules
    assert rules[SHELL].enabled and "k8s.ns.name in (broken)" not in rules[SHELL].condition
    assert rules["Search Private Keys or Passwords"].enabled  # credential-access still runs it
    assert "padlock_pe_team-a_fine" in published_layer(outcome)


def test_a_custom_policys_scope_that_breaks_an_item_leaves_that_policy_out(monkeypatch):
    _break_scope(monkeypatch, "broken")
    off = {"execution": (False, ())}
    scoped = CustomPolicyInput("scoped", rules=(SHELL,), scope=Scope(include=("broken",)))
    outcome = effective.render(_inputs(V1, "1.0.0", choices=off, custom=[scoped]), NOW)
    assert outcome.publishable and outcome.excluded == (scoped.ref,)
    assert errors_of(outcome, scoped.ref) == ["undefined-macro"]
    assert _reload(outcome).ruleset.rules[SHELL].enabled is False  # nobody else runs it


# --- per-object and per-namespace limits --------------------------------------------------------------

def test_a_one_megabyte_policy_exception_is_left_out_as_too_large_and_the_rest_publishes():
    huge = pe("huge", images=big_images(250))
    outcome = effective.render(_inputs(V1, "1.0.0", exceptions=[huge, pe("small", "team-b")]), NOW)
    assert outcome.publishable and outcome.excluded == (huge.ref,)
    assert outcome.reasons[huge.ref] == "TooLarge"
    (diag,) = [d for d in outcome.by_object()[huge.ref] if d.severity == "error"]
    # its exception condition is over what Padlock proves confined in one condition (256 Ki characters)
    assert diag.id == "object-too-large" and "per-object limit of 262144" in diag.message
    assert "padlock_pe_team-b_small" in published_layer(outcome)
    assert "padlock_pe_team-a_huge" not in published_layer(outcome)


def test_the_per_object_limit_is_a_setting():
    medium = pe("medium", images=big_images(3, 1000))
    assert effective.render(_inputs(V1, "1.0.0", exceptions=[medium]), NOW).excluded == ()
    tight = effective.render(_inputs(V1, "1.0.0", exceptions=[medium], max_object_bytes=2000), NOW)
    assert tight.reasons == {medium.ref: "TooLarge"}


def test_namespace_total_keeps_the_oldest_exceptions_and_leaves_out_the_newest():
    excs = [pe(f"e{i}", images=big_images(4, 900)) for i in range(4)]
    other = pe("other", "team-b", images=big_images(4, 900))
    created = {e.ref: NOW - timedelta(days=10 - i) for i, e in enumerate(excs)}
    created[excs[0].ref] = NOW  # e0 is the newest although its name sorts first
    one = len(published_layer(effective.render(_inputs(V1, "1.0.0", exceptions=[excs[1]]), NOW)))
    outcome = effective.render(_inputs(V1, "1.0.0", exceptions=[*excs, other], created=created,
                                       max_namespace_bytes=int(one * 2.5)), NOW)
    assert outcome.publishable
    assert outcome.reasons == {excs[0].ref: "NamespaceLimit", excs[3].ref: "NamespaceLimit"}
    assert errors_of(outcome, excs[3].ref) == ["namespace-limit"]
    text = published_layer(outcome)
    assert all(f"padlock_pe_team-a_e{i}" in text for i in (1, 2)) and "padlock_pe_team-b_other" in text


# --- the ConfigMaps the Falco mount declares ----------------------------------------------------------

def many(n: int, namespace_of=lambda i: f"ns-{i:03d}") -> list[ExceptionInput]:
    return [pe(f"e{i:03d}", namespace_of(i), images=(f"registry.example.com/team/app-{i}",)) for i in range(n)]


def test_never_more_configmaps_than_the_mount_declares_and_what_does_not_fit_is_reported():
    excs = many(200)
    unlimited = effective.render(_inputs(V1, "1.0.0", exceptions=excs, limit=8000, max_shards=100), NOW)
    assert len(unlimited.configmaps) > 3  # the case the limit is about: more would be produced
    outcome = effective.render(_inputs(V1, "1.0.0", exceptions=excs, limit=8000, max_shards=3), NOW)
    assert outcome.publishable and len(outcome.configmaps) == 3
    assert [c.name for c in outcome.configmaps] == ["padlock-rules", "padlock-rules-1", "padlock-rules-2"]
    left_out = set(outcome.excluded)
    assert left_out and set(outcome.reasons.values()) == {"NoRoom"}
    text = published_layer(outcome)
    for e in excs:  # every exception is either published or reported, never silently dropped
        assert (f"padlock_pe_{e.ref.namespace}_{e.ref.name}" in text) != (e.ref in left_out)
    assert _reload(outcome).valid


def test_admin_objects_and_managed_choices_are_never_pushed_out_by_tenants():
    tenants = many(200)
    created = {e.ref: NOW - timedelta(days=400 - i) for i, e in enumerate(tenants)}  # all older than admins
    admins = [cpe(f"admin-{i}") for i in range(10)]
    custom = CustomPolicyInput("good", falco_rules=GOOD_RULE)
    outcome = effective.render(_inputs(V1, "1.0.0", exceptions=[*tenants, *admins], custom=[custom], choices=DISABLE_KEYS,
                                       created=created, limit=8000, max_shards=3), NOW)
    assert outcome.publishable and len(outcome.configmaps) <= 3
    assert outcome.excluded and all(r.kind == "PolicyException" for r in outcome.excluded)
    rules = _reload(outcome).ruleset.rules
    assert rules["Search Private Keys or Passwords"].enabled is False and rules["Good rule"].enabled
    assert all(f"padlock_cpe_admin-{i}" in published_layer(outcome) for i in range(10))


def test_tenants_are_pushed_out_newest_first_then_by_namespace_and_name():
    tenants = many(200)
    created = {e.ref: NOW - timedelta(minutes=i) for i, e in enumerate(tenants)}  # e199 is the oldest
    outcome = effective.render(_inputs(V1, "1.0.0", exceptions=tenants, created=created, limit=8000, max_shards=3),
                               NOW)
    kept = [e for e in tenants if e.ref not in outcome.excluded]
    left = [e for e in tenants if e.ref in outcome.excluded]
    assert kept and left
    assert min(created[e.ref] for e in kept) < max(created[e.ref] for e in kept) <= min(created[e.ref] for e in left)
    # without creation times: namespace, then name
    plain = effective.render(_inputs(V1, "1.0.0", exceptions=tenants, limit=8000, max_shards=3), NOW)
    kept_names = [e.ref.namespace for e in tenants if e.ref not in plain.excluded]
    assert kept_names == sorted(kept_names) and kept_names[0] == "ns-000"
    assert max(kept_names) < min(r.namespace for r in plain.excluded)


def test_a_smaller_object_after_one_that_does_not_fit_is_still_published():
    tenants = many(45)
    created = {e.ref: NOW - timedelta(minutes=100 - i) for i, e in enumerate(tenants)}
    bulky = pe("bulky", "ns-bulky", images=big_images(3, 1500))
    tiny = pe("tiny", "ns-tiny")
    created[bulky.ref], created[tiny.ref] = NOW, NOW + timedelta(seconds=1)
    base = effective.render(_inputs(V1, "1.0.0", exceptions=tenants, created=created, limit=8000, max_shards=2), NOW)
    assert base.excluded == ()  # the tenants fit; bulky does not fit beside them (alone it would), tiny does
    assert effective.render(_inputs(V1, "1.0.0", exceptions=[bulky], limit=8000, max_shards=2), NOW).excluded == ()
    outcome = effective.render(_inputs(V1, "1.0.0", exceptions=[*tenants, bulky, tiny], created=created, limit=8000,
                                       max_shards=2), NOW)
    assert outcome.reasons == {bulky.ref: "NoRoom"}
    assert "padlock_pe_ns-tiny_tiny" in published_layer(outcome)


def test_a_late_source_still_loads_before_the_layer_and_keeps_its_place_within_the_count():
    late = SourceInput("zeta", 99, "1", (("late.yaml", "- list: late_list\n  items: [a]\n" + "# pad\n" * 900),))
    inputs = _inputs(V1, "1.0.0", exceptions=many(200), limit=8000, max_shards=3)
    outcome = effective.render(replace(inputs, sources=(*inputs.sources, late)), NOW)
    assert outcome.publishable and len(outcome.configmaps) == 3
    keys = list(outcome.files)
    assert "99-zeta-late.yaml" in keys and keys[-1].startswith("padlock-policies")
    assert set(outcome.reasons.values()) == {"NoRoom"}


def test_upstream_rules_that_need_more_configmaps_than_the_mount_publish_nothing():
    outcome = effective.render(_inputs(V1, "1.0.0", limit=1000, max_shards=1), NOW)
    assert not outcome.publishable and outcome.configmaps == ()
    assert outcome.errors[0].ref == ObjectRef("RuleSource", "falco-rules") and outcome.errors[0].id == "no-room"


def test_sharding_refuses_to_produce_more_configmaps_than_declared():
    files = {f"{i:02d}-x.yaml": "x" * 600 for i in range(5)}
    assert len(sharding.shard(files, limit=1000)) == 5
    with pytest.raises(sharding.TooManyShards, match="more than the 4 the Falco mount declares"):
        sharding.shard(files, limit=1000, max_shards=4)


@pytest.mark.parametrize("seed", range(20))
def test_packer_room_is_a_guarantee_for_next_fit_placement_in_any_order(seed):
    rng = random.Random(seed)
    limit, shards, overhead = 1000, rng.randint(1, 5), 30
    packer = sharding.Packer(limit, shards)
    packer.place(rng.randint(1, limit))  # what the upstream files took
    items = [rng.randint(1, 200) for _ in range(rng.randint(1, 60))]
    admitted, largest = [], 0
    for size in items:
        if sum(admitted) + size <= packer.room(overhead, max(largest, size)):
            admitted.append(size)
            largest = max(largest, size)
    rng.shuffle(admitted)
    open_part = False
    for size in admitted:
        if open_part and packer.grow(size):
            continue
        assert packer.place(overhead + size), (admitted, size)
        open_part = True


# --- determinism --------------------------------------------------------------------------------------

def test_limits_decide_the_same_way_for_the_same_inputs_in_any_order_warm_or_cold():
    tenants = many(120, lambda i: f"ns-{i % 7}")
    huge = pe("huge", images=big_images(100))
    created = {e.ref: NOW - timedelta(minutes=i % 13) for i, e in enumerate(tenants)}
    shuffled = list(tenants)
    random.Random(7).shuffle(shuffled)
    cache = effective.RenderCache()
    outcomes = [
        effective.render(_inputs(V1, "1.0.0", exceptions=[*order, huge], created=created, limit=8000, max_shards=2,
                                 max_namespace_bytes=6000), NOW, c)
        for order, c in ((tenants, None), (shuffled, None), (tenants, cache), (shuffled, cache))
    ]
    first = outcomes[0]
    assert first.publishable and {"TooLarge", "NoRoom"} <= set(first.reasons.values())
    for other in outcomes[1:]:
        assert other.files == first.files and other.content_hash == first.content_hash
        assert other.reasons == first.reasons
        assert [c.to_manifest() for c in other.configmaps] == [c.to_manifest() for c in first.configmaps]
    assert _reload(first).valid and PLUGINS
