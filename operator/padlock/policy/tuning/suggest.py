"""Which workload keeps triggering which rule, and the narrowest exception that silences exactly it.

``Tuner.observe(alert, now)`` counts an alert over a sliding window per rule and per (rule, workload).
A workload is the container image repository (else the container name, else the process name); for
each workload the tuner also remembers the few distinct namespaces, container names, process names
and parent process names its alerts carried. When a workload's alerts for a rule reach
``min_hits`` and ``min_share`` of that rule's alerts, ``due(now)`` returns a ``Suggestion``: the
exception whose match is every remembered value (one value: ``=``; a few: one row per combination),
so it covers exactly the alerts seen and nothing else. It is a PolicyException in the workload's
namespace; only when the alerts span namespaces is it a ClusterPolicyException (``cluster=True``),
and then the namespaces are part of the match.

Rules at or above ``untunable_priority`` (CRITICAL by default) and rules named in
``untunable_rules`` are never tuned. Once a suggestion is accepted (``accept``), alerts its match
covers are no longer counted (``observe`` returns ``SILENCED``); a dismissed one is never proposed
again while the tuner runs (``dismiss``). Memory is bounded by ``max_keys`` (LRU of workloads) and
``max_rules``. Pure: the caller passes ``now`` in seconds.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from padlock.policy.tuning.alerts import (
    CONTAINER,
    IMAGE,
    NAMESPACE,
    PARENT,
    PROCESS,
    SEVERITY,
    Alert,
    canonical_priority,
)
from padlock.policy.tuning.window import Lru, WindowCounter

# Outcomes of observe(), also the label values of the intake's counter.
COUNTED: Final = "counted"
SILENCED: Final = "silenced"
UNTUNABLE: Final = "untunable"
INTERNAL: Final = "internal"
UNMATCHABLE: Final = "unmatchable"
"""No image, container or process name: nothing an exception could match on."""

# The fields a workload remembers values of, in the order they appear in a suggested match.
_TRACKED: tuple[str, ...] = (NAMESPACE, IMAGE, CONTAINER, PROCESS, PARENT)
_IDENTITIES: tuple[str, ...] = (IMAGE, CONTAINER, PROCESS)
MAX_ROWS = 64
"""Most value rows in one suggested match; beyond it the most varied field is left out."""

PolicyRef = tuple[str, str]
"""(kind, name) of a ManagedPolicy or CustomPolicy that runs a rule."""


@dataclass(frozen=True)
class TunerConfig:
    window: float = 3600.0
    """Seconds of the sliding window."""
    min_hits: int = 20
    """Alerts of one workload for one rule in the window before a suggestion."""
    min_share: float = 0.5
    """Share (0..1) of the rule's alerts in the window that the workload must account for."""
    untunable_priority: str = "CRITICAL"
    """This priority and more severe ones are never tuned ("" : every priority is tunable)."""
    untunable_rules: frozenset[str] = frozenset()
    max_keys: int = 100_000
    """Workloads tracked at once (LRU)."""
    max_rules: int = 10_000
    max_values: int = 4
    """Distinct values remembered per field and workload; more and the field is left out of the match."""
    max_namespaces: int = 8
    samples: int = 3
    """Sample outputs kept per suggestion (0: none; outputs can hold command lines)."""
    sample_chars: int = 256

    def __post_init__(self) -> None:
        if self.window <= 0:
            raise ValueError("tuner window must be positive")
        if self.min_hits < 1:
            raise ValueError("tuner min_hits must be at least 1")
        if not 0.0 <= self.min_share <= 1.0:
            raise ValueError("tuner min_share must be between 0 and 1")
        if self.untunable_priority and canonical_priority(self.untunable_priority) is None:
            raise ValueError(f"tuner untunable_priority {self.untunable_priority!r} is not a Falco priority")

    def tunable(self, rule: str, priority: str) -> bool:
        if rule in self.untunable_rules:
            return False
        if not self.untunable_priority:
            return True
        limit = canonical_priority(self.untunable_priority)
        assert limit is not None
        return SEVERITY[priority] > SEVERITY[limit]


@dataclass(frozen=True)
class WorkloadMatch:
    """What a suggestion silences: per field, the values seen (None: any value)."""

    values: tuple[tuple[str, tuple[str, ...]], ...]
    """(field, sorted distinct values) for each constrained field, in ``_TRACKED`` order."""

    def get(self, name: str) -> tuple[str, ...] | None:
        return next((v for f, v in self.values if f == name), None)

    def covers(self, alert: Alert) -> bool:
        return all(alert.get(name) in allowed for name, allowed in self.values)

    def rows(self) -> list[list[str]]:
        return [list(row) for row in itertools.product(*(v for _, v in self.values))]

    def describe(self, *, namespace: bool = True) -> str:
        parts = []
        for name, allowed in self.values:
            if name == NAMESPACE and not namespace:
                continue
            label = _LABELS[name]
            parts.append(f"{label} {allowed[0]}" if len(allowed) == 1 else f"{label} in ({', '.join(allowed)})")
        return ", ".join(parts)

    def to_json(self) -> dict[str, list[str]]:
        return {name: list(allowed) for name, allowed in self.values}

    @classmethod
    def from_json(cls, data: Mapping[str, Sequence[str]]) -> WorkloadMatch:
        return cls(tuple((f, tuple(sorted(data[f]))) for f in _TRACKED if data.get(f)))


_LABELS = {NAMESPACE: "namespace", IMAGE: "image", CONTAINER: "container", PROCESS: "process",
           PARENT: "parent process"}


@dataclass(frozen=True)
class Suggestion:
    """One proposed exception, with the evidence for it."""

    name: str
    """Stable object name (same rule and workload and scope: same name)."""
    rule: str
    priority: str
    namespace: str | None
    """Namespace of the PolicyException (and of the suggestion); None for a ClusterPolicyException."""
    match: WorkloadMatch
    policies: tuple[PolicyRef, ...]
    hits: int
    rule_hits: int
    first_seen: datetime
    last_seen: datetime
    samples: tuple[str, ...] = ()

    @property
    def cluster(self) -> bool:
        return self.namespace is None

    @property
    def exception_kind(self) -> str:
        return "ClusterPolicyException" if self.cluster else "PolicyException"

    def exception(self, *, reason: str | None = None, expires_at: datetime | None = None) -> dict[str, Any]:
        """The PolicyException (or ClusterPolicyException) object that accepting creates."""
        values = self.match.values
        if not self.cluster:
            # The renderer pins a PolicyException to its own namespace; repeating it adds nothing.
            values = tuple((f, v) for f, v in values if f != NAMESPACE)
        fields = [f for f, _ in values]
        spec: dict[str, Any] = {
            "policies": [{"kind": kind, "name": name, "rules": [self.rule]} for kind, name in self.policies],
            "match": {
                "fields": fields,
                "comps": ["="] * len(fields),
                "values": [list(row) for row in itertools.product(*(v for _, v in values))],
            },
            "reason": reason or self.default_reason(),
        }
        if expires_at is not None:
            spec["expiresAt"] = expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        metadata: dict[str, Any] = {"name": self.name, "labels": {"padlock.dev/suggestion": self.name}}
        if self.namespace is not None:
            metadata["namespace"] = self.namespace
        return {"apiVersion": "padlock.dev/v1alpha1", "kind": self.exception_kind, "metadata": metadata,
                "spec": spec}

    def default_reason(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        what = self.match.describe(namespace=self.cluster)
        return (f"Padlock tuner: {self.hits} alerts of rule {self.rule!r} from {what}{where} "
                f"({self.share:.0%} of the rule's alerts)")

    @property
    def share(self) -> float:
        return self.hits / self.rule_hits if self.rule_hits else 0.0


_Values = str | tuple[str, ...] | None


class _Workload:
    __slots__ = ("counter", "dirty", "first", "last", "priority", "samples", "values")
    # samples starts as a shared empty tuple and becomes a list only when samples are kept.

    def __init__(self, now: float, window: float, priority: str) -> None:
        self.counter = WindowCounter(now, window)
        self.first = now
        self.last = now
        self.priority = priority
        # Per field: () none seen yet, a str for exactly one value (most workloads: no tuple to allocate),
        # a tuple for a few, None for too many. Not sets: a handful of values is searched as fast.
        self.values: list[_Values] = [() for _ in _TRACKED]
        self.samples: list[str] | tuple[()] = ()
        self.dirty = False


WorkloadKey = tuple[str, str, str]
"""(rule, identity field, identity value)."""


@dataclass
class Tuner:
    """Counts alerts and proposes exceptions; see the module docstring."""

    config: TunerConfig = field(default_factory=TunerConfig)
    policies_for: Callable[[str], tuple[PolicyRef, ...]] = lambda _rule: ()
    """Policies running a rule (from the published ruleset); a rule no policy runs is not suggested."""

    def __post_init__(self) -> None:
        self._workloads: Lru[WorkloadKey, _Workload] = Lru(self.config.max_keys)
        self._rules: Lru[str, WindowCounter] = Lru(self.config.max_rules)
        self._accepted: dict[str, tuple[str, WorkloadMatch]] = {}
        self._dismissed: set[str] = set()

    # -- decisions from the cluster ----------------------------------------------------------------
    def accept(self, name: str, rule: str, match: WorkloadMatch) -> None:
        """From now on alerts of ``rule`` covered by ``match`` are silenced (not counted)."""
        self._accepted[name] = (rule, match)
        for key, _ in self._workloads.items():
            if key[0] == rule and _name_of(key, match) == name:
                self._workloads.pop(key)

    def dismiss(self, name: str) -> None:
        self._dismissed.add(name)

    def forget(self, name: str) -> None:
        """The suggestion object is gone: its decision no longer applies."""
        self._accepted.pop(name, None)
        self._dismissed.discard(name)

    @property
    def tracked(self) -> int:
        return len(self._workloads)

    # -- counting ----------------------------------------------------------------------------------
    def observe(self, alert: Alert, now: float) -> str:
        """Count one alert; returns what happened to it (``COUNTED``, ``SILENCED``, ...)."""
        if alert.internal:
            return INTERNAL
        cfg = self.config
        if not cfg.tunable(alert.rule, alert.priority):
            return UNTUNABLE
        for rule, match in self._accepted.values():
            if rule == alert.rule and match.covers(alert):
                return SILENCED
        identity = next((f for f in _IDENTITIES if alert.get(f)), None)
        if identity is None:
            return UNMATCHABLE
        self._rules.get_or_add(alert.rule, lambda: WindowCounter(now, cfg.window)).add(now, cfg.window)
        key = (sys.intern(alert.rule), identity, alert.fields[identity])
        work = self._workloads.get_or_add(key, lambda: _Workload(now, cfg.window, alert.priority))
        work.counter.add(now, cfg.window)
        work.last = max(work.last, now)
        work.first = min(work.first, now)
        for i, name in enumerate(_TRACKED):
            seen = work.values[i]
            if seen is None:
                continue
            value = alert.get(name)
            if value is None:
                value = ""  # a workload whose alerts sometimes lack the field: the field cannot be matched
            if isinstance(seen, str):
                if value == seen:
                    continue
                seen = (seen,)
            if value in seen:
                continue
            limit = cfg.max_namespaces if name == NAMESPACE else cfg.max_values
            if len(seen) >= limit or value == "":
                work.values[i] = None
            elif not seen:
                # Namespaces, process names and the like repeat across workloads: one copy each.
                work.values[i] = value if name == identity else sys.intern(value)
            else:
                work.values[i] = (*seen, sys.intern(value))
        # Samples only once a suggestion is near: a million one-off workloads keep none (memory bound).
        if (cfg.samples and len(work.samples) < cfg.samples and alert.output
                and work.counter.current + work.counter.previous + cfg.samples >= cfg.min_hits):
            work.samples = [*work.samples, _truncate(alert.output, cfg.sample_chars)]
        work.dirty = True
        return COUNTED

    # -- suggesting --------------------------------------------------------------------------------
    def due(self, now: float, *, all_: bool = False, limit: int | None = None) -> list[Suggestion]:
        """Suggestions over the thresholds whose workload saw alerts since the last call (every one
        over the thresholds with ``all_``); at most ``limit``, the rest stay due for the next call."""
        out: list[Suggestion] = []
        for key, work in self._workloads.items():
            if not (work.dirty or all_):
                continue
            if limit is not None and len(out) >= limit:
                break
            work.dirty = False
            suggestion = self._suggest(key, work, now)
            if suggestion is not None:
                out.append(suggestion)
        return out

    def _suggest(self, key: WorkloadKey, work: _Workload, now: float) -> Suggestion | None:
        cfg = self.config
        rule, identity, value = key
        hits = work.counter.value(now, cfg.window)
        rule_counter = self._rules.get(rule)
        rule_hits = rule_counter.value(now, cfg.window) if rule_counter else hits
        if hits < cfg.min_hits or hits < cfg.min_share * rule_hits:
            return None
        policies = self.policies_for(rule)
        if not policies:
            # No policy runs the rule (yet: the operator may not have published): look again next time.
            work.dirty = True
            return None
        match = _match(work, identity, value)
        if match is None:
            return None
        name = _name_of(key, match)
        if name in self._dismissed or name in self._accepted:
            return None
        namespaces = match.get(NAMESPACE)
        namespace = namespaces[0] if namespaces and len(namespaces) == 1 else None
        return Suggestion(
            name=name, rule=rule, priority=work.priority, namespace=namespace, match=match, policies=policies,
            hits=round(hits), rule_hits=round(max(rule_hits, hits)), first_seen=_utc(work.first),
            last_seen=_utc(work.last), samples=tuple(work.samples),
        )


def _match(work: _Workload, identity: str, value: str) -> WorkloadMatch | None:
    constrained: list[tuple[str, tuple[str, ...]]] = []
    for i, name in enumerate(_TRACKED):
        seen = work.values[i]
        if name == identity:
            constrained.append((name, (value,)))
        elif isinstance(seen, str):
            constrained.append((name, (seen,)))
        elif seen:
            constrained.append((name, tuple(sorted(seen))))
    # Too many combinations: leave out the most varied field other than the identity and namespace.
    while _rows(constrained) > MAX_ROWS:
        widest = max((c for c in constrained if c[0] not in (identity, NAMESPACE)), key=lambda c: len(c[1]),
                     default=None)
        if widest is None:
            return None
        constrained.remove(widest)
    return WorkloadMatch(tuple(constrained))


def _rows(constrained: Sequence[tuple[str, tuple[str, ...]]]) -> int:
    total = 1
    for _, values in constrained:
        total *= len(values)
    return total


_SLUG = re.compile(r"[^a-z0-9]+")


def suggestion_name(rule: str, identity: str, value: str, namespaces: Sequence[str] | None) -> str:
    """``<rule slug>-<workload slug>-<hash>``: a DNS-1123 name, stable for the same rule, workload and
    namespace scope (a workload whose alerts later span namespaces gets a new, cluster-wide name)."""
    scope = ",".join(namespaces) if namespaces and len(namespaces) == 1 else "*"
    digest = hashlib.sha256("\x00".join((rule, identity, value, scope)).encode()).hexdigest()[:8]
    rule_slug = _SLUG.sub("-", rule.lower()).strip("-")[:40].strip("-") or "rule"
    work_slug = _SLUG.sub("-", value.lower().rsplit("/", 1)[-1]).strip("-")[:20].strip("-") or "workload"
    return f"{rule_slug}-{work_slug}-{digest}"


def _name_of(key: WorkloadKey, match: WorkloadMatch) -> str:
    return suggestion_name(key[0], key[1], key[2], match.get(NAMESPACE))


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=0)
