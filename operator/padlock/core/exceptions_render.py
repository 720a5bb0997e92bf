"""Padlock exceptions -> Falco ``exceptions`` entries, with namespace pinning and expiry.

A PolicyException or ClusterPolicyException (or an entry of a CustomPolicy's ``spec.exceptions``)
becomes one Falco exception entry, later appended to each targeted rule with
``override: {exceptions: append}``. Convenience keys map to fields (``images`` ->
``container.image.repository``, ``containerNames`` -> ``container.name``, ``processNames`` ->
``proc.name``, each with ``in``). A namespaced PolicyException always gets ``k8s.ns.name = <its
namespace>`` in every value tuple: added when absent, accepted when it already names the same
namespace, refused when it names another one, so a namespace owner can never blind the rest of the
cluster. An exception whose ``expiresAt`` is not after ``now`` is not applied and is reported.

Who calls it: ``padlock.core.layer``. Pure: ``now`` is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from padlock.core import collector
from padlock.core.policy_objects import ExceptionInput, ObjectDiagnostic

NAMESPACE_FIELD = "k8s.ns.name"
CONVENIENCE_FIELDS = (
    ("images", "container.image.repository"),
    ("container_names", "container.name"),
    ("process_names", "proc.name"),
)
# Falco's comparison operators for exceptions, and those taking a list: the rules loader's own tables,
# so an exception Padlock renders is one the loader accepts. A modifier form such as
# "startswith oneof" is checked by its first word.
COMPS = collector.EXCEPTION_COMPS
_LIST_COMPS = collector.LIST_COMPS


@dataclass(frozen=True)
class RenderedException:
    """One Falco exception entry ready to append, or why there is none."""

    entry: dict[str, Any] | None
    diagnostics: tuple[ObjectDiagnostic, ...] = ()
    expired: bool = False


def exception_name(exc: ExceptionInput, index: int = 0) -> str:
    """A unique, stable Falco exception name per object (and per entry within a CustomPolicy).

    Kubernetes names never contain ``_``, so ``_`` separates the parts without ambiguity.
    """
    ref = exc.ref
    if ref.kind == "PolicyException":
        return f"padlock_pe_{ref.namespace}_{ref.name}"
    if ref.kind == "ClusterPolicyException":
        return f"padlock_cpe_{ref.name}"
    return f"padlock_cp_{ref.name}_{index}"


def is_expired(exc: ExceptionInput, now: datetime) -> bool:
    return exc.expires_at is not None and exc.expires_at <= now


def render_exception(exc: ExceptionInput, now: datetime, index: int = 0) -> RenderedException:
    """The Falco exception entry for ``exc`` (not yet bound to a rule)."""
    path = f"{exc.path}.match"
    if is_expired(exc, now):
        assert exc.expires_at is not None
        diag = ObjectDiagnostic(
            exc.ref,
            f"{exc.path}.expiresAt",
            f"expired at {exc.expires_at.isoformat()}; no longer applied",
            "exception-expired",
            "warning",
        )
        return RenderedException(None, (diag,), expired=True)
    m = exc.match
    problems: list[ObjectDiagnostic] = []
    if m.fields:
        fields = list(m.fields)
        comps = list(m.comps)
        rows = [list(r) for r in m.values]
        for i, comp in enumerate(comps):
            if comp.split()[0] not in COMPS:
                problems.append(
                    ObjectDiagnostic(
                        exc.ref,
                        f"{path}.comps[{i}]",
                        f"'{comp}' is not a supported comparison operator",
                        "invalid-exception",
                    )
                )
    else:
        fields, comps, row = [], [], []
        for attr, field_name in CONVENIENCE_FIELDS:
            values = getattr(m, attr)
            if values:
                fields.append(field_name)
                comps.append("in")
                row.append(list(values))
        rows = [row]
        if not fields:
            problems.append(
                ObjectDiagnostic(
                    exc.ref, path, "names no images, containerNames or processNames", "invalid-exception"
                )
            )
    if exc.ref.kind == "PolicyException":
        problems.extend(_pin_namespace(exc, fields, comps, rows))
    if problems:
        return RenderedException(None, tuple(problems))
    entry: dict[str, Any] = {
        "name": exception_name(exc, index),
        "fields": fields,
        "comps": comps,
        "values": [[_cell(v, c) for v, c in zip(r, comps, strict=True)] for r in rows],
    }
    return RenderedException(entry)


def _cell(value: Any, comp: str) -> Any:
    if isinstance(value, tuple | list):
        return list(value)
    # Falco wraps a scalar for a list operator in "( … )" itself; a plain string stays a string.
    return value if comp not in _LIST_COMPS else [value]


def _pin_namespace(
    exc: ExceptionInput, fields: list[str], comps: list[str], rows: list[list[Any]]
) -> list[ObjectDiagnostic]:
    """Force every tuple of a namespaced exception to match only the exception's own namespace."""
    ns = exc.ref.namespace
    path = f"{exc.path}.match"
    if NAMESPACE_FIELD not in fields:
        fields.append(NAMESPACE_FIELD)
        comps.append("=")
        for r in rows:
            r.append(ns)
        return []
    idx = fields.index(NAMESPACE_FIELD)
    problems = []
    if comps[idx] not in ("=", "==", "in"):
        problems.append(
            ObjectDiagnostic(
                exc.ref,
                f"{path}.comps[{idx}]",
                f"'{comps[idx]}' on {NAMESPACE_FIELD} could match other namespaces; a PolicyException in "
                f'namespace "{ns}" may only use = {ns}',
                "exception-namespace-escape",
            )
        )
        return problems
    comps[idx] = "="
    for i, r in enumerate(rows):
        value = r[idx]
        values = list(value) if isinstance(value, tuple | list) else [value]
        if values != [ns]:
            problems.append(
                ObjectDiagnostic(
                    exc.ref,
                    f"{path}.values[{i}][{idx}]",
                    f'names namespace {", ".join(map(str, values))!s}; a PolicyException in namespace "{ns}" '
                    f"can only silence events from its own namespace",
                    "exception-namespace-escape",
                )
            )
        r[idx] = ns
    return problems
