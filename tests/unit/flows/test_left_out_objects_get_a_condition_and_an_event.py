"""What a left-out object looks like after ``render_and_publish`` with the real policy core.

Runs ``padlock.flows.corebridge.Core`` over the example release (examples/rules/v1) with a recording
cluster. Covers: an oversized PolicyException gets ``Ready=False`` reason ``TooLarge`` with the
limit in the message, ``active: false``, one Event of that reason (not repeated by the next render
with the same outcome), while the rest is published and an admin's ``disabledRules`` reaches the
ConfigMap; the operator's limits (``OperatorOptions.limits``) decide; a CustomPolicy whose
``falcoRules`` nest 1,000 deep gets ``Ready=False`` reason ``Invalid``; a ManagedPolicy whose
choices do not parse keeps running with its defaults instead of dropping out, and says so; the
oldest tenant keeps its place (creation times reach the core); an object whose reading raises is
reported invalid alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from flow_fakes import NOW, Bundle, FakeCluster, File, rule_source

from padlock.flows import publishing
from padlock.flows.corebridge import Core
from padlock.flows.options import Limits, OperatorOptions
from padlock.flows.state import OperatorState
from padlock.policy.policy_objects import ObjectRef

RULES = Path(__file__).resolve().parents[3] / "examples" / "rules"
V1 = Bundle("1.0.0", "sha256:v1", (File("rules.yaml", (RULES / "v1" / "padlock_example_rules.yaml").read_text()),))
OPTIONS = OperatorOptions(plugins={"container": "0.4.0"})
API = "padlock.dev/v1alpha1"
SHELL = "Terminal shell in container"


def exception(name: str, namespace: str, images: list[str], created: str = "2026-01-01T00:00:00Z",
              policies: tuple[str, ...] = ("execution",)) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "PolicyException",
            "metadata": {"name": name, "namespace": namespace, "generation": 1, "creationTimestamp": created},
            "spec": {"policies": [{"kind": "ManagedPolicy", "name": p} for p in policies],
                     "match": {"images": images}, "reason": "noise"}}


def state_with(*objs: dict[str, Any], choices: dict[str, Any] | None = None) -> OperatorState:
    state = OperatorState()
    state.upsert(rule_source({"currentVersion": "1.0.0"}))
    state.bundles["src"] = V1
    for obj in objs:
        state.upsert(obj)
    return state


def publish(state: OperatorState, remembered: dict[str, Any] | None = None, options: OperatorOptions = OPTIONS,
            previous: Any = None) -> tuple[publishing.PublishOutcome, FakeCluster]:
    cluster = FakeCluster()
    out = publishing.render_and_publish(state.snapshot(), remembered or {}, core=Core(options), cluster=cluster,
                                        options=options, now=NOW, previous=previous)
    return out, cluster


def layer(out: publishing.PublishOutcome) -> list[dict[str, Any]]:
    data: dict[str, str] = {}
    for cm in out.rendered.configmaps:
        data.update(cm.data)
    return [i for k in sorted(data) if k.startswith("padlock-policies") for i in yaml.safe_load(data[k]) or []]


def ready(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "Ready")


def test_oversized_exception_is_left_out_with_reason_too_large_and_one_event_while_choices_publish():
    huge = exception("huge", "team-a", [f"registry.example.com/{i}-" + "x" * 4000 for i in range(60)],
                     policies=("execution", "credential-access"))  # 4 rules of 240 KB each
    small = exception("small", "team-b", ["nginx"])
    state = state_with(huge, small)
    remembered = {"execution": {"disabledRules": [SHELL]}}
    for name in remembered:  # the admin's choice, on the one policy that holds the rule
        state.managed[name] = {"apiVersion": API, "kind": "ManagedPolicy", "metadata": {"name": name},
                               "spec": {"disabledRules": [SHELL]}}
    out, cluster = publish(state, remembered)
    assert out.published
    status = cluster.statuses[("PolicyException", "huge")]
    assert status["active"] is False
    cond = ready(status)
    assert cond["status"] == "False" and cond["reason"] == "TooLarge", cond
    assert "per-object limit of 262144 bytes" in cond["message"]
    assert [(e[0], e[2]) for e in cluster.events] == [("TooLarge", True)]
    assert ready(cluster.statuses[("PolicyException", "small")])["reason"] == "Rendered"
    items = layer(out)
    assert {"rule": SHELL, "enabled": False, "override": {"enabled": "replace"}} in items
    names = {e["name"] for i in items for e in i.get("exceptions", [])}
    assert "padlock_pe_team-b_small" in names and "padlock_pe_team-a_huge" not in names
    _, again = publish(state, remembered, previous=out.rendered)
    assert again.events == []  # the same outcome: no second Event


def test_the_operator_limits_decide():
    medium = exception("medium", "team-a", [f"registry.example.com/{i}-" + "x" * 500 for i in range(4)])
    _, cluster = publish(state_with(medium))
    assert ready(cluster.statuses[("PolicyException", "medium")])["reason"] == "Rendered"
    tight = OperatorOptions(plugins={"container": "0.4.0"}, limits=Limits(object_bytes=1000))
    _, cluster = publish(state_with(medium), options=tight)
    assert ready(cluster.statuses[("PolicyException", "medium")])["reason"] == "TooLarge"


def test_older_tenant_keeps_its_place_when_the_namespace_is_full():
    images = [f"registry.example.com/{i}-" + "x" * 500 for i in range(4)]
    old = exception("zz-old", "team-a", images, created="2026-01-01T00:00:00Z")
    new = exception("aa-new", "team-a", images, created="2026-03-01T00:00:00Z")
    one = publish(state_with(old))[0].rendered.raw.files["padlock-policies.yaml"]
    options = OperatorOptions(plugins={"container": "0.4.0"}, limits=Limits(namespace_bytes=len(one)))
    _, cluster = publish(state_with(old, new), options=options)
    assert ready(cluster.statuses[("PolicyException", "zz-old")])["reason"] == "Rendered"
    assert ready(cluster.statuses[("PolicyException", "aa-new")])["reason"] == "NamespaceLimit"


def test_custom_policy_nesting_a_thousand_deep_is_invalid_and_the_rest_publishes():
    deep = {"apiVersion": API, "kind": "CustomPolicy", "metadata": {"name": "deep", "generation": 2},
            "spec": {"falcoRules": "- rule: x\n  desc: " + "[" * 1000 + "]" * 1000 + "\n"}}
    out, cluster = publish(state_with(deep, exception("small", "team-b", ["nginx"])))
    assert out.published
    cond = ready(cluster.statuses[("CustomPolicy", "deep")])
    assert cond["status"] == "False" and cond["reason"] == "Invalid" and "spec.falcoRules" in cond["message"]
    assert [e[0] for e in cluster.events] == ["Invalid"]


def test_managed_policy_with_unreadable_choices_runs_with_its_defaults_and_says_so():
    state = state_with()
    state.managed["execution"] = {
        "apiVersion": API, "kind": "ManagedPolicy", "metadata": {"name": "execution"},
        "spec": {"scope": {"namespaces": {"include": ["Not A Namespace"]}}}}
    remembered = {"execution": {"scope": {"namespaces": {"include": ["Not A Namespace"]}}}}
    out, cluster = publish(state, remembered)
    assert out.published
    cond = ready(cluster.statuses[("ManagedPolicy", "execution")])
    assert cond["status"] == "False" and "choices-excluded" in cond["message"]
    runs = out.rendered.raw.policy_rules[ObjectRef("ManagedPolicy", "execution")]
    assert len(runs) == 2 and SHELL in runs  # the policy still runs both its rules, unscoped


def test_an_object_whose_reading_raises_is_invalid_alone(monkeypatch):
    from padlock.policy import policy_objects as po

    real = po.parse_exception

    def fragile(body):
        if body["metadata"]["name"] == "poison":
            raise RecursionError("maximum recursion depth exceeded")
        return real(body)

    monkeypatch.setattr(po, "parse_exception", fragile)
    out, cluster = publish(state_with(exception("poison", "team-a", ["x"]), exception("small", "team-b", ["nginx"])))
    assert out.published
    cond = ready(cluster.statuses[("PolicyException", "poison")])
    assert cond["status"] == "False" and "cannot be read: RecursionError" in cond["message"]
    assert ready(cluster.statuses[("PolicyException", "small")])["reason"] == "Rendered"
