"""Typed inputs of the policy layer, and their parsing from Kubernetes object bodies.

The renderer (``padlock.policy.effective``) works on the frozen dataclasses below, never on raw dicts or
on pydantic models, so the operator (kopf bodies), the CLI (YAML files) and tests all feed it the same
shapes. One parse, one validator: every body is validated by its ``padlock.api`` model (the models
that generate the CRDs, with their CEL rules mirrored; ``validate_model``), exactly as ``padlock
validate`` and the API server judge it, and only a valid model is mapped to the core's input, in one
place (``managed_input``, ``custom_input``, ``exception_input``): no defaults of its own. Problems come
back as ``ObjectDiagnostic`` values naming the object, the field path and the problem (worded by
``padlock.api.errors``); it never raises for bad input.

Who calls it: the operator (``padlock.flows.corebridge``), the webhook (``padlock.policy.admission``),
``padlock render`` and ``padlock validate``. Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import pydantic

from padlock.api import common as api_common
from padlock.api import custompolicy as api_custom
from padlock.api import errors as api_errors
from padlock.api import exception as api_exception
from padlock.api import kinds
from padlock.api import managedpolicy as api_managed
from padlock.api.common import API_VERSION
from padlock.api.managedpolicy import DEFAULT_ENABLED
from padlock.engine.model import PRIORITIES

GROUP_VERSION = API_VERSION

Kind = Literal["RuleSource", "ManagedPolicy", "CustomPolicy", "PolicyException", "ClusterPolicyException"]
KINDS: tuple[str, ...] = tuple(k.kind for k in kinds.RENDERED)


PRIORITY_ALIASES = {"INFO": "INFORMATIONAL"}


@dataclass(frozen=True, order=True)
class ObjectRef:
    """Which padlock object a diagnostic or an exclusion is about."""

    kind: str
    name: str
    namespace: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True)
class ObjectDiagnostic:
    """A problem with one padlock object: where (field path) and what, in the one-line style.

    ``one_line()`` gives ``CustomPolicy web: spec.falcoRules:3:5: rule "X": undefined macro "y"
    [undefined-macro]``, the form used in conditions, Events, logs and ``padlock render``'s stderr.
    """

    ref: ObjectRef
    path: str
    message: str
    id: str
    severity: Literal["error", "warning"] = "error"

    def one_line(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.ref}: {where}{self.message} [{self.id}]"

    def to_json(self) -> dict[str, object]:
        return {
            "object": {"kind": self.ref.kind, "namespace": self.ref.namespace, "name": self.ref.name},
            "path": self.path,
            "message": self.message,
            "id": self.id,
            "severity": self.severity,
        }


@dataclass(frozen=True)
class Scope:
    """Namespaces a policy applies to: ``include`` empty means all, ``exclude`` removes some."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.include and not self.exclude


@dataclass(frozen=True)
class PolicyRule:
    """Full text of one rule as a ManagedPolicy carries it in ``spec.rules``."""

    name: str
    desc: str
    condition: str
    output: str
    priority: str
    tags: tuple[str, ...] = ()
    enabled: bool = True
    source: str = "syscall"
    #: MITRE tactic tags of the rule other than the one its policy selects it by (``otherTactics``)
    other_tactics: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "desc": self.desc,
            "condition": self.condition,
            "output": self.output,
            "priority": self.priority,
            "tags": list(self.tags),
            "enabled": self.enabled,
            "source": self.source,
        }
        if self.other_tactics:
            out["otherTactics"] = list(self.other_tactics)
        return out


@dataclass(frozen=True)
class SourceInput:
    """One RuleSource's current files, verbatim, with where they sit in the load order."""

    name: str
    load_order: int
    version: str
    files: tuple[tuple[str, str], ...]  # (upstream file name, text), in the artifact's order


def effective_enabled(enabled: bool | None, default_enabled: bool) -> bool:
    """Whether a ManagedPolicy runs: the user's ``spec.enabled`` when set, else ``spec.defaultEnabled``.

    The one statement of this rule: the renderer, ``status.enabled`` (``padlock.policy.changes``) and
    ``padlock policies`` all use it.
    """
    return default_enabled if enabled is None else enabled


@dataclass(frozen=True)
class ManagedPolicyInput:
    """A ManagedPolicy as the renderer needs it: its rules plus the user's own choices."""

    name: str
    rules: tuple[PolicyRule, ...]
    default_enabled: bool = DEFAULT_ENABLED
    enabled: bool | None = None
    disabled_rules: tuple[str, ...] = ()
    scope: Scope = Scope()

    @property
    def effective_enabled(self) -> bool:
        return effective_enabled(self.enabled, self.default_enabled)


@dataclass(frozen=True)
class ExceptionMatch:
    """What an exception silences: Falco's native form or Padlock's convenience keys."""

    fields: tuple[str, ...] = ()
    comps: tuple[str, ...] = ()
    values: tuple[tuple[Any, ...], ...] = ()
    images: tuple[str, ...] = ()
    container_names: tuple[str, ...] = ()
    process_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyTarget:
    """One entry of an exception's ``spec.policies``: a policy and optionally some of its rules."""

    kind: str
    name: str
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExceptionInput:
    """A PolicyException (namespaced) or ClusterPolicyException, or one of a CustomPolicy's own."""

    ref: ObjectRef
    policies: tuple[PolicyTarget, ...]
    match: ExceptionMatch
    reason: str
    expires_at: datetime | None = None
    path: str = "spec"  # field path of this exception inside its object (for diagnostics)
    rules: tuple[str, ...] = ()  # CustomPolicy inline exceptions only: rules of that policy (empty: all)


@dataclass(frozen=True)
class BasedOn:
    managed_policy: str
    follow_updates: bool = True


@dataclass(frozen=True)
class CustomPolicyInput:
    """A CustomPolicy. ``frozen_rules`` is ``status.frozenRules`` (set when ``followUpdates: false``)."""

    name: str
    enabled: bool = True
    description: str = ""
    based_on: BasedOn | None = None
    rules: tuple[str, ...] = ()
    falco_rules: str = ""
    disabled_rules: tuple[str, ...] = ()
    scope: Scope = Scope()
    priority_override: str | None = None
    exceptions: tuple[ExceptionInput, ...] = ()
    frozen_rules: tuple[str, ...] | None = None

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("CustomPolicy", self.name)


@dataclass(frozen=True)
class ParsedObjects:
    """Everything ``parse_objects`` found in a set of bodies, plus what was wrong with them."""

    managed: tuple[ManagedPolicyInput, ...] = ()
    custom: tuple[CustomPolicyInput, ...] = ()
    exceptions: tuple[ExceptionInput, ...] = ()
    rule_sources: tuple[tuple[str, int], ...] = ()  # (name, loadOrder)
    diagnostics: tuple[ObjectDiagnostic, ...] = ()
    invalid: tuple[ObjectRef, ...] = ()
    managed_bodies: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def normalize_priority(value: str) -> str | None:
    """Falco's case-insensitive priority name in canonical upper case, or None when unknown."""
    upper = value.strip().upper()
    upper = PRIORITY_ALIASES.get(upper, upper)
    return upper if upper in PRIORITIES else None


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (``2026-05-01T00:00:00Z``) as an aware datetime, or None if unparsable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def ref_of(body: Mapping[str, Any]) -> ObjectRef:
    meta = body.get("metadata") or {}
    if not isinstance(meta, Mapping):
        meta = {}
    return ObjectRef(
        str(body.get("kind", "")), str(meta.get("name", "") or ""), str(meta.get("namespace", "") or "")
    )


# -- the one parse: a body through its padlock.api model, then mapped to the core's inputs -------------
def validate_model(body: Mapping[str, Any]) -> tuple[Any, list[ObjectDiagnostic]]:
    """``body`` validated by its ``padlock.api`` model (the CRD's schema and CEL rules, the same
    validator ``padlock validate`` and the API server apply): (model, []) or (None, one diagnostic
    per problem, naming the field path)."""
    ref = ref_of(body)
    try:
        return api_errors.validate(body), []
    except KeyError as exc:
        return None, [ObjectDiagnostic(ref, "kind", str(exc.args[0]), "invalid-field")]
    except pydantic.ValidationError as exc:
        return None, [ObjectDiagnostic(ref, path, message, "invalid-field")
                      for path, message in api_errors.field_errors(exc)]


def _scope(model: api_common.Scope | None) -> Scope:
    ns = model.namespaces if model is not None else None
    if ns is None:
        return Scope()
    return Scope(include=tuple(sorted(set(ns.include or ()))), exclude=tuple(sorted(set(ns.exclude or ()))))


def _match(m: api_exception.ExceptionMatch) -> ExceptionMatch:
    if m.fields is None:
        return ExceptionMatch(images=tuple(m.images or ()), container_names=tuple(m.container_names or ()),
                              process_names=tuple(m.process_names or ()))
    comps = tuple(c.strip() for c in m.comps) if m.comps else tuple("=" for _ in m.fields)
    return ExceptionMatch(fields=tuple(m.fields), comps=comps, values=tuple(tuple(row) for row in m.values or ()))


def _targets(policies: Sequence[api_exception.PolicyRef]) -> tuple[PolicyTarget, ...]:
    return tuple(PolicyTarget(t.kind, t.name, tuple(t.rules or ())) for t in policies)


def policy_rule(r: api_managed.ManagedRule) -> PolicyRule:
    return PolicyRule(name=r.name, desc=r.desc, condition=r.condition, output=r.output, priority=r.priority,
                      tags=tuple(r.tags or ()), enabled=r.enabled, source=r.source,
                      other_tactics=tuple(r.other_tactics or ()))


def managed_input(name: str, spec: api_managed.ManagedPolicySpec) -> ManagedPolicyInput:
    """A validated ManagedPolicy spec as the renderer takes it."""
    return ManagedPolicyInput(
        name=name,
        rules=tuple(policy_rule(r) for r in spec.rules or ()),
        default_enabled=spec.default_enabled,
        enabled=spec.enabled,
        disabled_rules=tuple(spec.disabled_rules or ()),
        scope=_scope(spec.scope),
    )


def custom_input(name: str, model: api_custom.CustomPolicy) -> CustomPolicyInput:
    """A validated CustomPolicy (``status.frozenRules`` included) as the renderer takes it."""
    spec = model.spec
    ref = ObjectRef("CustomPolicy", name)
    exceptions = tuple(
        ExceptionInput(ref=ref, policies=(), match=_match(e.match), reason=e.reason, expires_at=e.expires_at,
                       path=f"spec.exceptions[{i}]", rules=tuple(e.rules or ()))
        for i, e in enumerate(spec.exceptions or ())
    )
    frozen = model.status.frozen_rules if model.status is not None else None
    return CustomPolicyInput(
        name=name,
        enabled=spec.enabled,
        description=spec.description or "",
        based_on=BasedOn(spec.based_on.managed_policy, spec.based_on.follow_updates) if spec.based_on else None,
        rules=tuple(spec.rules or ()),
        falco_rules=spec.falco_rules or "",
        disabled_rules=tuple(spec.disabled_rules or ()),
        scope=_scope(spec.scope),
        priority_override=normalize_priority(spec.priority_override) if spec.priority_override else None,
        exceptions=exceptions,
        frozen_rules=None if frozen is None else tuple(frozen),
    )


def exception_input(ref: ObjectRef, spec: api_exception.PolicyExceptionSpec) -> ExceptionInput:
    """A validated PolicyException / ClusterPolicyException spec as the renderer takes it."""
    return ExceptionInput(ref=ref, policies=_targets(spec.policies), match=_match(spec.match), reason=spec.reason,
                          expires_at=spec.expires_at, path="spec")


def managed_rules_from_spec(spec: Mapping[str, Any]) -> tuple[PolicyRule, ...]:
    """``spec.rules`` of a stored ManagedPolicy body as PolicyRule values, read leniently (entries
    without a name are skipped): for counting and listing what a policy holds, never for rendering,
    which takes only objects its model accepts (``parse_managed``)."""
    out = []
    for r in spec.get("rules") or []:
        if not isinstance(r, Mapping) or not isinstance(r.get("name"), str):
            continue
        out.append(
            PolicyRule(
                name=r["name"],
                desc=str(r.get("desc", "")),
                condition=str(r.get("condition", "")),
                output=str(r.get("output", "")),
                priority=str(r.get("priority", "")),
                tags=tuple(str(t) for t in r.get("tags") or ()),
                enabled=bool(r.get("enabled", True)),
                source=str(r.get("source", "syscall")),
                other_tactics=tuple(str(t) for t in r.get("otherTactics") or ()),
            )
        )
    return tuple(out)


#: (parser, body as JSON) -> its outcome: an unchanged body is not validated again on the next render
#: (inputs are frozen, so sharing them is safe; the diagnostics list is copied for each caller).
# The operator parses every body on each render: 6,000 objects 37 ms with, 266 ms without (parse_bench,
# CPU, medians of 3), which alone would miss the re-render target of 100 ms (bench/README.md).
_MEMO: dict[tuple[str, str], tuple[Any, tuple[ObjectDiagnostic, ...]]] = {}
#: bound on the memo's keys, in characters: a stored body changes with every write (resourceVersion),
#: so old keys pile up; past the bound the memo starts again (as cold as the first render)
_MEMO_LIMIT = 64 * 1024 * 1024
_memo_size = 0


def _memo(parser: str, body: Mapping[str, Any], parse: Any) -> tuple[Any, list[ObjectDiagnostic]]:
    try:
        key = (parser, json.dumps(body, default=repr))  # key order as given: a different order only misses
    except (TypeError, ValueError):  # not JSON-shaped: parse without the memo
        got, diags = parse(body)
        return got, list(diags)
    hit = _MEMO.get(key)
    if hit is None:
        global _memo_size
        got, diags = parse(body)
        if _memo_size + len(key[1]) > _MEMO_LIMIT:
            _MEMO.clear()
            _memo_size = 0
        hit = _MEMO[key] = (got, tuple(diags))
        _memo_size += len(key[1])
    return hit[0], list(hit[1])


def _parse_managed(body: Mapping[str, Any]) -> tuple[ManagedPolicyInput | None, list[ObjectDiagnostic]]:
    model, diags = validate_model(body)
    if model is None:
        return None, diags
    return managed_input(ref_of(body).name, model.spec), []


def _parse_custom(body: Mapping[str, Any]) -> tuple[CustomPolicyInput | None, list[ObjectDiagnostic]]:
    model, diags = validate_model(body)
    if model is None:
        return None, diags
    return custom_input(ref_of(body).name, model), []


def _parse_exception(body: Mapping[str, Any]) -> tuple[ExceptionInput | None, list[ObjectDiagnostic]]:
    ref = ref_of(body)
    model, diags = validate_model(body)
    if ref.kind == "PolicyException" and not ref.namespace:
        diags.append(ObjectDiagnostic(ref, "metadata.namespace",
                                      "a PolicyException is namespaced: set metadata.namespace", "invalid-field"))
    if model is None or diags:
        return None, diags
    return exception_input(ref, model.spec), []


def parse_managed(body: Mapping[str, Any]) -> tuple[ManagedPolicyInput | None, list[ObjectDiagnostic]]:
    """A ManagedPolicy body (operator-owned spec plus user choices) as a ManagedPolicyInput."""
    return _memo("managed", body, _parse_managed)


def parse_custom(body: Mapping[str, Any]) -> tuple[CustomPolicyInput | None, list[ObjectDiagnostic]]:
    """A CustomPolicy body as a CustomPolicyInput (``status.frozenRules`` included when present)."""
    return _memo("custom", body, _parse_custom)


def parse_exception(body: Mapping[str, Any]) -> tuple[ExceptionInput | None, list[ObjectDiagnostic]]:
    """A PolicyException or ClusterPolicyException body as an ExceptionInput."""
    return _memo("exception", body, _parse_exception)


def parse_objects(bodies: Sequence[Mapping[str, Any]]) -> ParsedObjects:
    """Sort padlock object bodies by kind into renderer inputs; unknown or invalid ones are reported."""
    managed: list[ManagedPolicyInput] = []
    custom: list[CustomPolicyInput] = []
    exceptions: list[ExceptionInput] = []
    sources: list[tuple[str, int]] = []
    diags: list[ObjectDiagnostic] = []
    invalid: list[ObjectRef] = []
    managed_bodies: dict[str, Mapping[str, Any]] = {}
    for body in bodies:
        ref = ref_of(body)
        if body.get("apiVersion") != GROUP_VERSION or ref.kind not in KINDS:
            continue
        if not ref.name:
            diags.append(ObjectDiagnostic(ref, "metadata.name", "is required", "invalid-field"))
            invalid.append(ref)
            continue
        if ref.kind == "RuleSource":
            model, found = validate_model(body)
            diags.extend(found)
            if model is None:
                invalid.append(ref)
                continue
            sources.append((ref.name, model.spec.load_order))
            continue
        parsed: Any
        if ref.kind == "ManagedPolicy":
            parsed, found = parse_managed(body)
            if parsed is not None:
                managed.append(parsed)
                managed_bodies[ref.name] = body
        elif ref.kind == "CustomPolicy":
            parsed, found = parse_custom(body)
            if parsed is not None:
                custom.append(parsed)
        else:
            parsed, found = parse_exception(body)
            if parsed is not None:
                exceptions.append(parsed)
        diags.extend(found)
        if parsed is None:
            invalid.append(ref)
    return ParsedObjects(
        managed=tuple(managed),
        custom=tuple(custom),
        exceptions=tuple(exceptions),
        rule_sources=tuple(sources),
        diagnostics=tuple(diags),
        invalid=tuple(invalid),
        managed_bodies=managed_bodies,
    )
