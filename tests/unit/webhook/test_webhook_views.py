"""padlock.webhook.views: the admission view built from the operator's real OperatorState."""

from __future__ import annotations

from dataclasses import dataclass

from padlock.engine.model import RulesFile
from padlock.flows.state import OperatorState
from padlock.webhook.views import ViewCache, build_view


@dataclass(frozen=True)
class FakeBundle:
    files: tuple[RulesFile, ...]


def _state() -> OperatorState:
    state = OperatorState()
    state.upsert({"kind": "RuleSource", "metadata": {"name": "late"}, "spec": {"loadOrder": 60}})
    state.upsert({"kind": "RuleSource", "metadata": {"name": "early"}, "spec": {"loadOrder": 5}})
    state.bundles["late"] = FakeBundle((RulesFile("b.yaml", "- rule: B\n  condition: x\n"),))
    state.bundles["early"] = FakeBundle((RulesFile("a.yaml", "- rule: A\n  condition: x\n"),))
    state.synced.update({"late", "early"})
    state.upsert({"kind": "ManagedPolicy", "metadata": {"name": "mp"}, "spec": {"rules": [{"name": "A"}]}})
    state.upsert(
        {
            "kind": "CustomPolicy",
            "metadata": {"name": "cp"},
            "spec": {
                "basedOn": {"managedPolicy": "mp"},
                "rules": ["B"],
                "falcoRules": "- rule: C\n  condition: y\n",
            },
        }
    )
    return state


def test_view_orders_upstream_files_by_load_order_with_published_names_and_lists_policy_rules() -> None:
    view = build_view(_state())
    assert [f.name for f in view.upstream_files] == ["05-early-a.yaml", "60-late-b.yaml"]
    assert view.upstream_rules == {"A", "B"}
    assert view.policies[("ManagedPolicy", "mp")] == {"A"}
    assert view.policies[("CustomPolicy", "cp")] == {"A", "B", "C"}
    assert view.complete


def test_view_is_incomplete_until_every_source_synced() -> None:
    state = _state()
    state.synced.discard("late")
    assert not build_view(state).complete


def test_cache_rebuilds_only_when_the_state_changes() -> None:
    state = _state()
    cache = ViewCache(plugins={"container": "0.4.0"})
    first = cache.view(state)
    assert cache.view(state) is first
    state.upsert({"kind": "ManagedPolicy", "metadata": {"name": "other"}, "spec": {"rules": [{"name": "B"}]}})
    second = cache.view(state)
    assert second is not first
    assert ("ManagedPolicy", "other") in second.policies
    assert second.plugins == {"container": "0.4.0"}
    assert not cache.view(None).complete
