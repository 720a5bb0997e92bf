"""Build the ``AdmissionView`` (``padlock.policy.admission``) from the operator's in-memory state.

Called by the validating handlers (``padlock.webhook.handlers``) on every CustomPolicy or exception
admission. ``padlock.flows.state.OperatorState`` is read, never written. The view is cached per
``state.changes`` counter, so a burst of admissions between two state changes parses the upstream
files once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from padlock.engine import readorder
from padlock.engine.model import RulesFile
from padlock.flows.state import OperatorState
from padlock.policy import admission
from padlock.policy import policy_objects as po


class ViewCache:
    """The last view built, and the state revision it was built from.

    Building a view costs 22 ms CPU on the full upstream sets (bench/README.md "Caches and what they
    buy"): without this, every admission would pay it, over the webhook's p99 target of 20 ms.
    """

    def __init__(self, plugins: Mapping[str, str] | None = None, engine_version: str | None = None) -> None:
        self.plugins = dict(plugins or {})
        self.engine_version = engine_version
        self._revision: tuple[int, int] | None = None
        # The prepared upstream load outlives the views: most state changes leave the upstream as it is.
        # Per admission: 0.36 ms with, about 390 ms without (admission_bench; webhook p99 target < 20 ms)
        self.upstream = admission.UpstreamCache()
        self._stateless = self._empty()
        self._view = self._stateless

    def _empty(self) -> admission.AdmissionView:
        # Webhook running without an operator (tests, a webhook-only process): no references known.
        return admission.AdmissionView.build(
            [], {}, complete=False, plugins=self.plugins, engine_version=self.engine_version
        )

    def view(self, state: OperatorState | None) -> admission.AdmissionView:
        if state is None:
            return self._stateless
        revision = (id(state), state.changes)
        if revision != self._revision:
            self._view = build_view(state, plugins=self.plugins, engine_version=self.engine_version,
                                    cache=self.upstream)
            self._revision = revision
        return self._view


def build_view(
    state: OperatorState, *, plugins: Mapping[str, str] | None = None, engine_version: str | None = None,
    cache: admission.UpstreamCache | None = None,
) -> admission.AdmissionView:
    """The current effective inputs held by an ``OperatorState``."""
    sources, bundles = state.sources, state.bundles
    ordered = sorted(bundles, key=lambda name: (_load_order(sources.get(name)), name))
    by_key: dict[str, RulesFile] = {}
    for name in ordered:
        order = _load_order(sources.get(name))
        for f in bundles[name].files:
            # Same names as the published ConfigMap keys (design.md, "Published ruleset").
            key = readorder.upstream_key(order, name, f.name)
            by_key[key] = RulesFile(key, f.text)
    # In the order Falco reads the mounted directory, as the renderer validates them.
    files = [by_key[k] for k in readorder.read_order(by_key)]
    policies: dict[tuple[str, str], set[str]] = {}
    for name, body in state.managed.items():
        spec = body.get("spec") or {}
        policies[("ManagedPolicy", name)] = {r.name for r in po.managed_rules_from_spec(spec)}
    for name, body in state.custom.items():
        spec = body.get("spec") or {}
        rules = {r for r in spec.get("rules") or () if isinstance(r, str)}
        rules.update(admission.defined_rule_names(spec.get("falcoRules") or ""))
        based = (spec.get("basedOn") or {}).get("managedPolicy")
        frozen = (body.get("status") or {}).get("frozenRules")
        if isinstance(frozen, list):
            rules.update(r for r in frozen if isinstance(r, str))
        elif isinstance(based, str):
            rules.update(policies.get(("ManagedPolicy", based), ()))
        policies[("CustomPolicy", name)] = rules
    complete = state.ready
    return admission.AdmissionView.build(
        files, policies, complete=complete, plugins=plugins, engine_version=engine_version, cache=cache
    )


def _load_order(source: Mapping[str, Any] | None) -> int:
    order = ((source or {}).get("spec") or {}).get("loadOrder", 50)
    return order if isinstance(order, int) and not isinstance(order, bool) else 50
