"""The tuner's writes: TuningSuggestion objects from the tuner's suggestions, decisions read back, and
Events for Falco's feedback.

``SuggestionWriter.write(suggestions)`` creates a suggestion the first time (in the workload's
namespace; a cluster-wide one in the operator's namespace) and afterwards patches only its status
(hits, first and last seen, samples). It never touches ``spec.state``: that is the user's decision,
which ``observe(body)`` (from the operator's watch) hands to the tuner (Accepted: silence what the
exception covers; Dismissed: do not propose it again). ``report(feedback)`` posts a Warning Event on
the published rules ConfigMap, at most once per reason, host and ``event_interval``.

``write_falco_loaded(client, sources, cond, now)`` merges the ``FalcoLoaded`` condition
(``padlock.flows.falco_loaded``) into the status of each published RuleSource through the one status
writer (a read, then a patch only when it differs).

``ruleset_view(published, managed)`` derives, from the last published render, which policies run each
rule (for the exceptions' ``policies``) and which rules the ruleset knows but does not run (stale
Falco). Called by ``padlock.controllers.tuner`` in worker threads; it blocks on the API server, which
is why the intake never calls it directly.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from padlock.adapters.kube.client import ApiError, KubeClient
from padlock.adapters.kube.events import ObjectRef, post_event
from padlock.adapters.kube.resources import KINDS
from padlock.adapters.kube.status import write_status
from padlock.flows import statuses
from padlock.flows.conditions import Cond
from padlock.policy.tuning.feedback import Feedback, RulesetView
from padlock.policy.tuning.objects import decision_of, status_of, suggestion_object
from padlock.policy.tuning.suggest import PolicyRef, Suggestion, Tuner

log = logging.getLogger("padlock.tuner")
JSON = dict[str, Any]
SUGGESTION = KINDS["TuningSuggestion"]
RULE_SOURCE = KINDS["RuleSource"]


@dataclass
class SuggestionWriter:
    client: KubeClient
    tuner: Tuner
    cluster_namespace: str
    """Where suggestions for ClusterPolicyExceptions live (the operator's namespace)."""
    samples: bool = True
    falco_namespace: str = "falco"
    configmap: str = "padlock-rules"
    event_interval: float = 300.0
    clock: Callable[[], float] = time.monotonic
    states: dict[tuple[str, str], str] = field(default_factory=dict)
    """(namespace, name) -> spec.state of every suggestion that exists."""
    _reported: dict[tuple[str, str], float] = field(default_factory=dict)

    # -- suggestions -------------------------------------------------------------------------------
    def write(self, suggestions: Sequence[Suggestion]) -> int:
        """Create or refresh each suggestion; returns how many writes succeeded. One failure affects
        only its own suggestion."""
        done = 0
        for s in suggestions:
            namespace = s.namespace or self.cluster_namespace
            key = (namespace, s.name)
            try:
                if key not in self.states:
                    body = suggestion_object(s, cluster_namespace=self.cluster_namespace, samples=self.samples)
                    status = body.pop("status")
                    try:
                        self.client.create(SUGGESTION.path(namespace=namespace), body)
                    except ApiError as exc:
                        if exc.status != 409:
                            raise
                    self.states[key] = "Open"
                    self.client.merge_patch(SUGGESTION.path(s.name, namespace=namespace, sub="status"),
                                            {"status": status})
                    log.info("tuning suggestion %s/%s: %s", namespace, s.name, s.default_reason())
                elif self.states[key] == "Open":
                    self.client.merge_patch(SUGGESTION.path(s.name, namespace=namespace, sub="status"),
                                            {"status": status_of(s, samples=self.samples)})
                done += 1
            except ApiError as exc:
                log.warning("tuning suggestion %s/%s not written: %s", namespace, s.name, exc)
        return done

    def observe(self, body: Mapping[str, Any], *, deleted: bool = False) -> None:
        """A TuningSuggestion seen by the watch: pass the user's decision to the tuner."""
        md = body.get("metadata") or {}
        key = (str(md.get("namespace") or ""), str(md.get("name") or ""))
        if deleted:
            self.states.pop(key, None)
            self.tuner.forget(key[1])
            return
        try:
            decision = decision_of(body)
        except ValueError as exc:
            log.warning("tuning suggestion %s/%s ignored: %s", key[0], key[1], exc)
            return
        self.states[key] = decision.state
        self.tuner.forget(decision.name)  # a decision replaces the previous one
        if decision.state == "Accepted":
            self.tuner.accept(decision.name, decision.rule, decision.match)
        elif decision.state == "Dismissed":
            self.tuner.dismiss(decision.name)

    def open_count(self) -> int:
        return sum(1 for state in self.states.values() if state == "Open")

    def load(self) -> None:
        """Read every existing suggestion once (at startup, before alerts arrive)."""
        for body in self.client.list(SUGGESTION.path()):
            self.observe(body)

    # -- Falco feedback ----------------------------------------------------------------------------
    def report(self, feedback: Iterable[Feedback]) -> int:
        """Post a Warning Event on the published ConfigMap per new (reason, host); returns Events posted."""
        posted = 0
        now = self.clock()
        for fb in feedback:
            key = (fb.reason, fb.hostname)
            last = self._reported.get(key)
            if last is not None and now - last < self.event_interval:
                continue
            self._reported[key] = now
            if len(self._reported) > 4096:
                self._reported.pop(next(iter(self._reported)))
            try:
                post_event(self.client, ObjectRef("v1", "ConfigMap", self.configmap, namespace=self.falco_namespace),
                           reason=fb.reason, message=fb.message, warning=True)
                posted += 1
            except ApiError as exc:
                log.warning("Falco feedback Event not posted: %s", exc)
            log.warning("%s: %s", fb.reason, fb.message)
        return posted


def write_falco_loaded(client: KubeClient, sources: Iterable[str], cond: Cond, now: dt.datetime) -> int:
    """Merge ``cond`` into each RuleSource's status; returns how many were written. A vanished source or
    a refused write affects only that source."""
    written = 0
    for name in sources:
        try:
            obj = client.get_or_none(RULE_SOURCE.path(name))
            if obj is None:
                continue
            current = obj.get("status") or {}
            desired = statuses.falco_loaded(current, cond, now=now)
            written += write_status(client, RULE_SOURCE, name, desired, current=current)
        except ApiError as exc:
            log.warning("RuleSource %s: FalcoLoaded not written: %s", name, exc)
    return written


def ruleset_view(published: Any, managed: Mapping[str, JSON],
                 custom: Mapping[str, JSON] | None = None) -> tuple[dict[str, tuple[PolicyRef, ...]], RulesetView]:
    """Rule -> policies running it, and the running/known rule sets, from the last published render
    (``padlock.flows.rendering.Rendered``; None before the first publish)."""
    raw = getattr(published, "raw", None)
    policy_rules: Mapping[Any, Sequence[str]] = getattr(raw, "policy_rules", None) or {}
    running: dict[str, list[PolicyRef]] = {}
    for ref, rules in policy_rules.items():
        for rule in rules:
            running.setdefault(rule, []).append((ref.kind, ref.name))
    known = {r.get("name") for obj in managed.values() for r in (obj.get("spec") or {}).get("rules") or []}
    known |= set(running)
    view = RulesetView(running=frozenset(running), known=frozenset(str(r) for r in known if r))
    return {rule: tuple(sorted(refs)) for rule, refs in running.items()}, view
