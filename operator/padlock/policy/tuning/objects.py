"""``Suggestion`` <-> ``TuningSuggestion`` object bodies.

``suggestion_object`` builds the object the operator creates (and ``padlock tune --from-file``
prints); ``decision_of`` reads back what the tuner needs from a stored object (its state, rule and
match) so an accepted suggestion silences its alerts after a restart too. Pure; validated by the
``padlock.api.tuningsuggestion`` model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from padlock.api.tuningsuggestion import TuningSuggestion
from padlock.policy.tuning.alerts import CONTAINER, IMAGE, NAMESPACE, PARENT, PROCESS
from padlock.policy.tuning.suggest import Suggestion, WorkloadMatch

LABEL = "padlock.dev/suggestion"
"""Label on an exception created from a suggestion (value: the suggestion's name)."""

_MATCH_KEYS = ((NAMESPACE, "namespaces"), (IMAGE, "images"), (CONTAINER, "containerNames"),
               (PROCESS, "processNames"), (PARENT, "parentProcessNames"))


def suggestion_object(s: Suggestion, *, cluster_namespace: str, samples: bool = True) -> dict[str, Any]:
    """The TuningSuggestion body for ``s``; a cluster-wide one lives in ``cluster_namespace``."""
    exception = s.exception()
    body: dict[str, Any] = {
        "apiVersion": "padlock.dev/v1alpha1",
        "kind": "TuningSuggestion",
        "metadata": {"name": s.name, "namespace": s.namespace or cluster_namespace,
                     "labels": {"app.kubernetes.io/managed-by": "padlock"}},
        "spec": {
            "rule": s.rule,
            "priority": s.priority,
            "policies": exception["spec"]["policies"],
            "scope": "Cluster" if s.cluster else "Namespace",
            "workload": s.match.describe(namespace=s.cluster)[:1024],
            "match": {key: list(values) for field, key in _MATCH_KEYS if (values := s.match.get(field))},
            "exception": {
                "kind": exception["kind"],
                "name": exception["metadata"]["name"],
                **({"namespace": s.namespace} if s.namespace else {}),
                "spec": exception["spec"],
            },
            "state": "Open",
        },
        "status": status_of(s, samples=samples),
    }
    return TuningSuggestion.model_validate(body).to_dict()


def status_of(s: Suggestion, *, samples: bool = True) -> dict[str, Any]:
    status: dict[str, Any] = {"hits": s.hits, "ruleHits": s.rule_hits, "firstSeen": _time(s.first_seen),
                              "lastSeen": _time(s.last_seen)}
    if samples and s.samples:
        status["samples"] = [x[:512] for x in s.samples[:5]]
    return status


@dataclass(frozen=True)
class Decision:
    name: str
    state: str
    rule: str
    match: WorkloadMatch


def decision_of(body: Mapping[str, Any]) -> Decision:
    """State, rule and match of a stored TuningSuggestion (ValueError naming it when malformed)."""
    obj = TuningSuggestion.model_validate(body)
    m = obj.spec.match
    values = {NAMESPACE: m.namespaces, IMAGE: m.images, CONTAINER: m.container_names, PROCESS: m.process_names,
              PARENT: m.parent_process_names}
    match = WorkloadMatch.from_json({f: v for f, v in values.items() if v})
    return Decision(obj.metadata.name or "", obj.spec.state, obj.spec.rule, match)


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
