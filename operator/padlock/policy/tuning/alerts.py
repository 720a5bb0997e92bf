"""Falco alerts as Falco's ``http_output`` and falcosidekick's ``webhook`` output post them.

Shapes (checked against the upstream sources, not copied from them):

- Falco with ``json_output: true`` posts one JSON object per alert (``userspace/engine/formats.cpp``
  ``format_event``; ``userspace/falco/falco_outputs.cpp`` ``handle_msg`` for internal messages):
  ``output``, ``priority`` (``"Warning"``, ``"Critical"``...), ``rule``, ``time`` (RFC 3339 with
  nanoseconds), ``output_fields`` (field -> value, values may be strings, numbers, booleans or null),
  ``source``, ``tags``, ``hostname`` and, in newer releases, ``uuid``. ``json_include_output_property``
  and ``json_include_tags_property`` may drop ``output`` and ``tags``. Internal messages (source
  ``internal``) have no ``tags`` and may have empty ``output_fields``.
- falcosidekick's ``types.FalcoPayload`` re-marshals the same keys (``uuid``, ``tags`` and
  ``hostname`` omitted when empty) and its webhook output posts that object as the body.

``parse_body`` reads one request body: a single JSON object, or newline-delimited objects (a batch).
It is atomic: one bad line refuses the whole body with ``AlertError`` naming the line and field, so a
client that retries never gets half a batch counted twice. Bounded by ``Limits`` (body size, line
count, fields per alert, nesting). Unknown keys are ignored (Falco adds keys over releases).

Called by the operator's intake (``padlock.controllers.intake``) and ``padlock tune --from-file``.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Falco's priorities from most to least severe (falco_common.cpp priority_names), upper case as the
# api models spell them; "INFO" is Falco's accepted alias of "INFORMATIONAL".
PRIORITIES: tuple[str, ...] = (
    "EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFORMATIONAL", "DEBUG",
)
_PRIORITY_ALIASES = {"INFO": "INFORMATIONAL"}
SEVERITY: Mapping[str, int] = {p: i for i, p in enumerate(PRIORITIES)}
_CANONICAL: Mapping[str, str] = {p: p for p in PRIORITIES}
"""0 is the most severe (EMERGENCY)."""

# The output fields the tuner reads: what a suggestion can match on.
NAMESPACE = "k8s.ns.name"
IMAGE = "container.image.repository"
CONTAINER = "container.name"
PROCESS = "proc.name"
PARENT = "proc.pname"
POD = "k8s.pod.name"
MATCH_FIELDS: tuple[str, ...] = (NAMESPACE, IMAGE, CONTAINER, PROCESS, PARENT)
_KEPT_FIELDS = frozenset((*MATCH_FIELDS, POD))
# Values Falco prints for a field it could not resolve: not a value to match on.
_UNSET_VALUES = frozenset({"", "<NA>", "N/A"})


@dataclass(frozen=True)
class Limits:
    """Bounds of one request body."""

    max_body_bytes: int = 1 << 20
    max_alerts: int = 1000
    max_fields: int = 512
    """Keys in one alert's ``output_fields``."""
    max_depth: int = 8
    """Nesting of JSON objects/arrays inside one alert."""
    max_value_chars: int = 4096
    """Longest kept field value (longer values are not matched on)."""


class AlertError(ValueError):
    """A body that is not Falco alert JSON; the message names the line and field."""


@dataclass(frozen=True, slots=True)
class Alert:
    """One Falco alert, reduced to what the tuner and the feedback use."""

    rule: str
    priority: str
    """Canonical upper case, e.g. ``WARNING``."""
    source: str = "syscall"
    hostname: str = ""
    output: str = ""
    time: datetime | None = None
    tags: tuple[str, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)
    """The match fields present with a usable value (numbers and booleans as text, null dropped)."""
    uuid: str | None = None

    def get(self, name: str) -> str | None:
        return self.fields.get(name)

    @property
    def internal(self) -> bool:
        """A message about Falco itself (``source: internal``), not about an event."""
        return self.source == "internal"


def canonical_priority(value: str) -> str | None:
    """``"Warning"`` / ``"warning"`` / ``"INFO"`` -> ``"WARNING"`` / ``"INFORMATIONAL"``; None if unknown."""
    upper = value.strip().upper()
    # The constant from PRIORITIES, not the new string: workloads keep it, one copy for all.
    return _CANONICAL.get(_PRIORITY_ALIASES.get(upper, upper))


def parse_body(body: bytes, limits: Limits = Limits()) -> list[Alert]:
    """All alerts of one request body (one object or newline-delimited objects), or ``AlertError``."""
    if len(body) > limits.max_body_bytes:
        raise AlertError(f"body of {len(body)} bytes exceeds the limit of {limits.max_body_bytes} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AlertError(f"body is not UTF-8 (byte {exc.start})") from None
    lines = [(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
    if not lines:
        raise AlertError("empty body: expected a Falco alert (JSON object) or newline-delimited alerts")
    if len(lines) > limits.max_alerts:
        raise AlertError(f"{len(lines)} alerts in one request exceed the limit of {limits.max_alerts}")
    return [parse_line(line, limits, line_no=n) for n, line in lines]


def parse_line(line: str, limits: Limits = Limits(), *, line_no: int = 1) -> Alert:
    """One alert from one JSON text."""
    where = f"line {line_no}"
    try:
        doc = json.loads(line)
    except RecursionError:
        raise AlertError(f"{where}: JSON nested deeper than {limits.max_depth} levels") from None
    except ValueError as exc:
        raise AlertError(f"{where}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise AlertError(f"{where}: expected a JSON object (a Falco alert), got {_type(doc)}")
    return from_json(doc, limits, where=where)


def from_json(doc: Mapping[str, Any], limits: Limits = Limits(), *, where: str = "alert") -> Alert:
    """An ``Alert`` from a decoded Falco/falcosidekick alert object."""
    if _depth(doc, limits.max_depth + 1) > limits.max_depth:
        raise AlertError(f"{where}: JSON nested deeper than {limits.max_depth} levels")
    rule = _required_str(doc, "rule", where)
    raw_priority = _required_str(doc, "priority", where)
    priority = canonical_priority(raw_priority)
    if priority is None:
        raise AlertError(
            f"{where}: field \"priority\": {raw_priority!r} is not a Falco priority "
            f"(one of {', '.join(p.title() for p in PRIORITIES)})"
        )
    source = _optional_str(doc, "source", where) or "syscall"
    hostname = _optional_str(doc, "hostname", where) or ""
    output = _optional_str(doc, "output", where) or ""
    uuid = _optional_str(doc, "uuid", where)
    time = _time(doc.get("time"), where)
    tags_raw = doc.get("tags")
    if tags_raw is None:
        tags: tuple[str, ...] = ()
    elif isinstance(tags_raw, list) and all(isinstance(t, str) for t in tags_raw):
        tags = tuple(tags_raw)
    else:
        raise AlertError(f"{where}: field \"tags\": expected a list of strings, got {_type(tags_raw)}")
    fields_raw = doc.get("output_fields")
    if fields_raw is None:
        fields_raw = {}
    if not isinstance(fields_raw, dict):
        raise AlertError(f"{where}: field \"output_fields\": expected an object, got {_type(fields_raw)}")
    if len(fields_raw) > limits.max_fields:
        raise AlertError(
            f"{where}: field \"output_fields\": {len(fields_raw)} keys exceed the limit of {limits.max_fields}"
        )
    fields: dict[str, str] = {}
    for name in _KEPT_FIELDS:
        value = _scalar_text(fields_raw.get(name))
        if value is not None and value not in _UNSET_VALUES and len(value) <= limits.max_value_chars:
            fields[name] = value
    return Alert(rule=rule, priority=priority, source=source, hostname=hostname, output=output, time=time,
                 tags=tags, fields=fields, uuid=uuid)


def _scalar_text(value: Any) -> str | None:
    # Falco prints numeric fields (proc.pid, evt.time) as JSON numbers and unresolved ones as null;
    # objects and lists (none in Falco today) are not something an exception can match.
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def _required_str(doc: Mapping[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if value is None:
        raise AlertError(f"{where}: field \"{key}\" is missing; a Falco alert always has it")
    if not isinstance(value, str) or not value.strip():
        raise AlertError(f"{where}: field \"{key}\": expected a non-empty string, got {_type(value)}")
    return value


def _optional_str(doc: Mapping[str, Any], key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise AlertError(f"{where}: field \"{key}\": expected a string, got {_type(value)}")
    return value


def _time(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise AlertError(f"{where}: field \"time\": expected an RFC 3339 string, got {_type(value)}")
    text = value.strip()
    # Falco writes nanoseconds; Python keeps microseconds, so cut the extra digits first.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise AlertError(f"{where}: field \"time\": {value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise AlertError(f"{where}: field \"time\": {value!r} has no time zone")
    return parsed


def _depth(value: Any, cap: int) -> int:
    """Nesting depth of containers in ``value``, counting stops at ``cap`` (iterative: no recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if level > deepest:
            deepest = level
            if deepest >= cap:
                return deepest
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, level + 1))
    return deepest


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else f"string {value[:40]!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
