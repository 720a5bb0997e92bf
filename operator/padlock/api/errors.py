"""A model's validation errors as ``(field path, message)`` pairs, worded once for every entry point.

The ``padlock.api`` models are the one validator of padlock objects (they generate the CRDs and mirror
their CEL rules), so a refusal reads the same from ``padlock validate``, ``padlock render``, the
webhook and the operator: ``spec.policies[0].kind: is required``, ``spec.match: comps must have one
operator per field`` (a CEL rule's message, placed at the field the API server reports it against),
``spec.interval: must be a duration such as 1h, 30m or 90s (got "soon")``.

``validate`` is the one validation of a body: its kind's model over the body's JSON form with strict
types, as the API server's structural schema judges JSON.

Who calls it: ``padlock.policy.policy_objects`` (the one parse of objects into the core's inputs) and
``padlock.cli.object_validation``. Pure.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import pydantic

from padlock.api import kinds
from padlock.api.common import DNS1123_LABEL, DNS1123_SUBDOMAIN, DURATION, SEMVER, PadlockModel

#: What the CRD patterns mean, so an error says "a duration such as 1h" instead of a regex.
PATTERN_TEXT: Final = {
    DURATION: "must be a duration such as 1h, 30m or 90s",
    DNS1123_SUBDOMAIN: "must be a lowercase Kubernetes name (letters, digits, '-' and '.')",
    DNS1123_LABEL: "must be a namespace name (lowercase letters, digits and '-', at most 63)",
    SEMVER: "must be a release version such as 5.0.1",
    r"^sha256:[a-f0-9]{64}$": "must be a digest sha256:<64 lowercase hex digits>",
    r"^[a-f0-9]{64}$": "must be 64 lowercase hex digits (a sha256)",
}

#: Field (last path segment) -> what to say when it is missing or empty.
REQUIRED_TEXT: Final = {"reason": "is required: say why these events are expected"}


def _json_value(value: Any) -> Any:
    # YAML reads unquoted timestamps as datetimes; kubectl sends them as the text they were.
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def validate(body: Mapping[str, Any]) -> PadlockModel:
    """``body`` validated by its kind's model as the API server judges it: from its JSON form, with
    strict types (``"yes"`` is not a boolean, ``1`` is not a string). Raises KeyError for a kind that
    is not Padlock's, ``pydantic.ValidationError`` for an invalid object."""
    model = kinds.model_for(str(body.get("kind", "")))
    return model.model_validate_json(json.dumps(body, default=_json_value), strict=True)


@functools.cache
def cel_field_paths() -> dict[str, str]:
    """CEL rule message -> the field it is reported against (``.comps``), over every model."""
    out: dict[str, str] = {}
    todo: list[type[PadlockModel]] = [PadlockModel]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        for rule in cls.cel_rules:
            if rule.field_path:
                out[rule.message] = rule.field_path
    return out


def path_of(loc: Sequence[int | str]) -> str:
    """``spec.policies[0].kind`` for pydantic's ``("spec", "policies", 0, "kind")``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" not in part and "(" not in part:  # skip pydantic's union/validator tags
            out += f".{part}" if out else part
    return out


def field_errors(exc: pydantic.ValidationError) -> list[tuple[str, str]]:
    """Each error of ``exc`` as (field path, message)."""
    cel_paths = cel_field_paths()
    out: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        path, kind, message, value = path_of(err["loc"]), err["type"], err["msg"], err.get("input")
        last = path.rsplit(".", 1)[-1]
        if kind == "value_error":
            message = message.removeprefix("Value error, ")
            path += cel_paths.get(message, "")
        elif kind == "missing" or (kind == "string_too_short" and value == "" and last in REQUIRED_TEXT):
            message = REQUIRED_TEXT.get(last, "is required")
            kind = "missing"
        elif kind == "extra_forbidden":
            message = "is not a field of this kind (misspelt, or from another version?)"
        elif kind == "string_pattern_mismatch":
            pattern = str((err.get("ctx") or {}).get("pattern", ""))
            message = PATTERN_TEXT.get(pattern, message)
        if kind not in ("missing", "extra_forbidden", "value_error") and isinstance(value, str | int | float | bool):
            shown = json.dumps(value)
            message += f" (got {shown if len(shown) <= 80 else shown[:77] + '...'})"
        out.append((path, message))
    return out


def messages(exc: pydantic.ValidationError) -> list[str]:
    """Each error of ``exc`` as ``<path>: <message>`` (or the message alone when at the root)."""
    return [f"{path}: {message}" if path else message for path, message in field_errors(exc)]
