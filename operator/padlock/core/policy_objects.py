"""Typed inputs of the policy layer, and their parsing from Kubernetes object bodies.

The renderer (``padlock.core.effective``) works on the frozen dataclasses below, never on raw dicts or
on pydantic models, so the operator (kopf bodies), the CLI (YAML files) and tests all feed it the same
shapes. ``parse_object`` turns one padlock object body (camelCase, as stored by the API server) into
one of these inputs plus ``ObjectDiagnostic`` values naming the object, the field path and the
problem; it never raises for bad input.

Who calls it: ``padlock.cli.render`` and the operator flows. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from padlock.api import kinds
from padlock.api.common import API_VERSION
from padlock.api.managedpolicy import DEFAULT_ENABLED
from padlock.core.model import PRIORITIES

GROUP_VERSION = API_VERSION

Kind = Literal["RuleSource", "ManagedPolicy", "CustomPolicy", "PolicyException", "ClusterPolicyException"]
KINDS: tuple[str, ...] = tuple(k.kind for k in kinds.RENDERED)

# DNS-1123 label: what a namespace name can be. Scope values are emitted bare into Falco conditions,
# so anything else (spaces, commas, quotes) must be refused before it reaches the generated file.
_NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

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

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "desc": self.desc,
            "condition": self.condition,
            "output": self.output,
            "priority": self.priority,
            "tags": list(self.tags),
            "enabled": self.enabled,
            "source": self.source,
        }


@dataclass(frozen=True)
class SourceInput:
    """One RuleSource's current files, verbatim, with where they sit in the load order."""

    name: str
    load_order: int
    version: str
    files: tuple[tuple[str, str], ...]  # (upstream file name, text), in the artifact's order


def effective_enabled(enabled: bool | None, default_enabled: bool) -> bool:
    """Whether a ManagedPolicy runs: the user's ``spec.enabled`` when set, else ``spec.defaultEnabled``.

    The one statement of this rule: the renderer, ``status.enabled`` (``padlock.core.changes``) and
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


class _Problems:
    """Collects diagnostics for one object while parsing it."""

    def __init__(self, ref: ObjectRef) -> None:
        self.ref = ref
        self.items: list[ObjectDiagnostic] = []

    def error(self, path: str, message: str, id_: str = "invalid-field") -> None:
        self.items.append(ObjectDiagnostic(self.ref, path, message, id_))

    @property
    def failed(self) -> bool:
        return any(d.severity == "error" for d in self.items)


def normalize_priority(value: str) -> str | None:
    """Falco's case-insensitive priority name in canonical upper case, or None when unknown."""
    upper = value.strip().upper()
    upper = PRIORITY_ALIASES.get(upper, upper)
    return upper if upper in PRIORITIES else None


def _str_list(value: Any, path: str, p: _Problems) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        p.error(path, "must be a list of strings")
        return ()
    return tuple(value)


def _scope(value: Any, path: str, p: _Problems) -> Scope:
    if value is None:
        return Scope()
    if not isinstance(value, Mapping):
        p.error(path, "must be a map with 'namespaces'")
        return Scope()
    ns = value.get("namespaces") or {}
    if not isinstance(ns, Mapping):
        p.error(f"{path}.namespaces", "must be a map with 'include' and/or 'exclude'")
        return Scope()
    out: dict[str, tuple[str, ...]] = {}
    for key in ("include", "exclude"):
        names = _str_list(ns.get(key), f"{path}.namespaces.{key}", p)
        for i, name in enumerate(names):
            if not _NAMESPACE_RE.match(name):
                p.error(f"{path}.namespaces.{key}[{i}]", f'"{name}" is not a valid namespace name')
        out[key] = tuple(sorted(set(names)))
    return Scope(include=out["include"], exclude=out["exclude"])


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


def _match(value: Any, path: str, p: _Problems) -> ExceptionMatch:
    if not isinstance(value, Mapping):
        p.error(path, "is required: give fields/comps/values or images/containerNames/processNames")
        return ExceptionMatch()
    native = any(k in value for k in ("fields", "comps", "values"))
    convenience = any(k in value for k in ("images", "containerNames", "processNames"))
    if native and convenience:
        p.error(path, "use either fields/comps/values or images/containerNames/processNames, not both")
        return ExceptionMatch()
    if not native and not convenience:
        p.error(path, "is empty: give fields/comps/values or images/containerNames/processNames")
        return ExceptionMatch()
    if convenience:
        return ExceptionMatch(
            images=_str_list(value.get("images"), f"{path}.images", p),
            container_names=_str_list(value.get("containerNames"), f"{path}.containerNames", p),
            process_names=_str_list(value.get("processNames"), f"{path}.processNames", p),
        )
    fields_ = _str_list(value.get("fields"), f"{path}.fields", p)
    if not fields_:
        p.error(f"{path}.fields", "must name at least one field")
    comps = _str_list(value.get("comps"), f"{path}.comps", p) or tuple("=" for _ in fields_)
    if len(comps) != len(fields_):
        p.error(f"{path}.comps", f"has {len(comps)} entries but fields has {len(fields_)}")
    raw_values = value.get("values")
    values: list[tuple[Any, ...]] = []
    if not isinstance(raw_values, list) or not raw_values:
        p.error(f"{path}.values", "must be a non-empty list of value tuples, one value per field")
    else:
        for i, row in enumerate(raw_values):
            if not isinstance(row, list) or len(row) != len(fields_):
                p.error(f"{path}.values[{i}]", f"must be a list of {len(fields_)} values (one per field)")
                continue
            cells: list[Any] = []
            for j, cell in enumerate(row):
                if isinstance(cell, list):
                    cells.append(tuple(str(c) for c in cell))
                elif isinstance(cell, str | int | float) and not isinstance(cell, bool):
                    cells.append(str(cell))
                else:
                    p.error(f"{path}.values[{i}][{j}]", "must be a string or a list of strings")
            values.append(tuple(cells))
    return ExceptionMatch(fields=fields_, comps=tuple(c.strip() for c in comps), values=tuple(values))


def _exception(
    ref: ObjectRef, spec: Mapping[str, Any], path: str, p: _Problems, *, needs_policies: bool
) -> ExceptionInput:
    targets: list[PolicyTarget] = []
    raw = spec.get("policies")
    if needs_policies:
        if not isinstance(raw, list) or not raw:
            p.error(f"{path}.policies", "must name at least one policy")
            raw = []
        for i, t in enumerate(raw):
            if not isinstance(t, Mapping) or not isinstance(t.get("name"), str):
                p.error(f"{path}.policies[{i}]", "must be a map with kind and name")
                continue
            kind = t.get("kind", "ManagedPolicy")
            if kind not in ("ManagedPolicy", "CustomPolicy"):
                p.error(f"{path}.policies[{i}].kind", f'"{kind}" is not ManagedPolicy or CustomPolicy')
                continue
            targets.append(
                PolicyTarget(kind, t["name"], _str_list(t.get("rules"), f"{path}.policies[{i}].rules", p))
            )
    reason = spec.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        p.error(f"{path}.reason", "is required: say why these events are expected")
        reason = ""
    expires = spec.get("expiresAt")
    expires_at = None
    if expires is not None:
        expires_at = parse_time(expires)
        if expires_at is None:
            p.error(f"{path}.expiresAt", f'"{expires}" is not an RFC 3339 time')
    return ExceptionInput(
        ref=ref,
        policies=tuple(targets),
        match=_match(spec.get("match"), f"{path}.match", p),
        reason=reason,
        expires_at=expires_at,
        path=path,
        rules=() if needs_policies else _str_list(spec.get("rules"), f"{path}.rules", p),
    )


def _bool(value: Any, default: bool | None, path: str, p: _Problems) -> bool | None:
    if value is None:
        return default
    if not isinstance(value, bool):
        p.error(path, "must be true or false")
        return default
    return value


def ref_of(body: Mapping[str, Any]) -> ObjectRef:
    meta = body.get("metadata") or {}
    return ObjectRef(
        str(body.get("kind", "")), str(meta.get("name", "")), str(meta.get("namespace", "") or "")
    )


def managed_rules_from_spec(spec: Mapping[str, Any]) -> tuple[PolicyRule, ...]:
    """``spec.rules`` of a ManagedPolicy body as PolicyRule values (entries without a name are skipped)."""
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
            )
        )
    return tuple(out)


def parse_managed(body: Mapping[str, Any]) -> tuple[ManagedPolicyInput | None, list[ObjectDiagnostic]]:
    """A ManagedPolicy body (operator-owned spec plus user choices) as a ManagedPolicyInput."""
    ref = ref_of(body)
    p = _Problems(ref)
    spec = body.get("spec") or {}
    enabled = _bool(spec.get("enabled"), None, "spec.enabled", p)
    default_enabled = _bool(spec.get("defaultEnabled"), DEFAULT_ENABLED, "spec.defaultEnabled", p)
    policy = ManagedPolicyInput(
        name=ref.name,
        rules=managed_rules_from_spec(spec),
        default_enabled=bool(default_enabled),
        enabled=enabled,
        disabled_rules=_str_list(spec.get("disabledRules"), "spec.disabledRules", p),
        scope=_scope(spec.get("scope"), "spec.scope", p),
    )
    return (None if p.failed else policy), p.items


def parse_custom(body: Mapping[str, Any]) -> tuple[CustomPolicyInput | None, list[ObjectDiagnostic]]:
    """A CustomPolicy body as a CustomPolicyInput (``status.frozenRules`` included when present)."""
    ref = ref_of(body)
    p = _Problems(ref)
    spec = body.get("spec") or {}
    based_on = None
    raw_based = spec.get("basedOn")
    if raw_based is not None:
        if not isinstance(raw_based, Mapping) or not isinstance(raw_based.get("managedPolicy"), str):
            p.error("spec.basedOn.managedPolicy", "is required when basedOn is given")
        else:
            follow = _bool(raw_based.get("followUpdates"), True, "spec.basedOn.followUpdates", p)
            based_on = BasedOn(raw_based["managedPolicy"], bool(follow))
    priority = spec.get("priorityOverride")
    if priority is not None:
        canonical = normalize_priority(str(priority))
        if canonical is None:
            p.error(
                "spec.priorityOverride", f'"{priority}" is not a Falco priority ({", ".join(PRIORITIES)})'
            )
        priority = canonical
    falco_rules = spec.get("falcoRules") or ""
    if not isinstance(falco_rules, str):
        p.error("spec.falcoRules", "must be a string holding Falco rules YAML")
        falco_rules = ""
    exceptions = []
    for i, raw in enumerate(spec.get("exceptions") or []):
        if not isinstance(raw, Mapping):
            p.error(f"spec.exceptions[{i}]", "must be a map with match and reason")
            continue
        exceptions.append(_exception(ref, raw, f"spec.exceptions[{i}]", p, needs_policies=False))
    status = body.get("status") or {}
    frozen = status.get("frozenRules")
    policy = CustomPolicyInput(
        name=ref.name,
        enabled=bool(_bool(spec.get("enabled"), True, "spec.enabled", p)),
        description=str(spec.get("description", "")),
        based_on=based_on,
        rules=_str_list(spec.get("rules"), "spec.rules", p),
        falco_rules=falco_rules,
        disabled_rules=_str_list(spec.get("disabledRules"), "spec.disabledRules", p),
        scope=_scope(spec.get("scope"), "spec.scope", p),
        priority_override=priority,
        exceptions=tuple(exceptions),
        frozen_rules=tuple(frozen) if isinstance(frozen, list) else None,
    )
    return (None if p.failed else policy), p.items


def parse_exception(body: Mapping[str, Any]) -> tuple[ExceptionInput | None, list[ObjectDiagnostic]]:
    """A PolicyException or ClusterPolicyException body as an ExceptionInput."""
    ref = ref_of(body)
    p = _Problems(ref)
    if ref.kind == "PolicyException" and not ref.namespace:
        p.error("metadata.namespace", "a PolicyException is namespaced: set metadata.namespace")
    exc = _exception(ref, body.get("spec") or {}, "spec", p, needs_policies=True)
    return (None if p.failed else exc), p.items


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
            order = (body.get("spec") or {}).get("loadOrder", 50)
            if not isinstance(order, int) or isinstance(order, bool) or not 0 <= order <= 99:
                diags.append(
                    ObjectDiagnostic(ref, "spec.loadOrder", "must be an integer 0-99", "invalid-field")
                )
                invalid.append(ref)
                continue
            sources.append((ref.name, order))
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
