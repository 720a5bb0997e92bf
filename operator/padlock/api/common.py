"""Shapes shared by every Padlock kind: the model base class, conditions, scope, object metadata.

Every kind module (``rulesource``, ``managedpolicy``, ``custompolicy``, ``exception``) builds on
``PadlockModel``. Its configuration makes Python attributes snake_case and YAML/JSON names camelCase,
and turns attribute docstrings into the CRD descriptions that ``kubectl explain`` shows.

Rules that span several fields are declared once, as ``CelRule``: the schema generator attaches the
CEL expression to the CRD (``x-kubernetes-validations``, enforced by the API server) and the model
runs the Python mirror of the same rule with the same message, so ``padlock validate`` and the API
server reject the same objects. Pure data: no I/O, no clock (callers pass ``now``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

GROUP: Final = "padlock.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = "padlock.dev/v1alpha1"

# Patterns Kubernetes itself uses for names (k8s.io/apimachinery validation), so an object the model
# accepts is one the API server can store.
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
CONFIGMAP_KEY = r"^[-._a-zA-Z0-9]+$"
SHA256_DIGEST = r"^sha256:[a-f0-9]{64}$"
SHA256_HEX = r"^[a-f0-9]{64}$"
# Go duration syntax (time.ParseDuration) without the sign: what CEL's duration() accepts too.
DURATION = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"
# A release version as found in an OCI tag: semver with optional "v", pre-release and build parts.
SEMVER = r"^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"

DnsLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS1123_LABEL)]
"""A namespace name."""
ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)]
"""A Kubernetes object name."""
RuleName = Annotated[str, Field(min_length=1, max_length=1024)]
"""A Falco rule name, exactly as written after `rule:` (names may contain spaces)."""
Version = Annotated[str, Field(min_length=1, max_length=128, pattern=SEMVER)]
"""A release version such as `5.0.1`."""

FalcoPriority = Literal[
    "EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFORMATIONAL", "INFO", "DEBUG"
]
"""Falco priorities in upper case; `INFO` is Falco's alias of `INFORMATIONAL`."""


@dataclass(frozen=True)
class CelRule:
    """A validation rule that spans several fields.

    ``rule`` is the CEL expression the API server evaluates with ``self`` bound to the object the
    rule is attached to; ``check`` is the same rule in Python over the model instance. Both report
    ``message``, so a user sees the same words from ``kubectl apply`` and ``padlock validate``.
    """

    rule: str
    message: str
    check: Callable[[Any], bool]
    field_path: str | None = None
    """JSON path (e.g. `.interval`) the API server reports the error against."""

    def to_schema(self) -> dict[str, str]:
        out = {"rule": self.rule, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        return out


def list_type(kind: Literal["atomic", "set", "map"], *map_keys: str) -> dict[str, Any]:
    """Extra schema for a list field: how server-side apply merges it (and, for set/map, uniqueness)."""
    out: dict[str, Any] = {"x-kubernetes-list-type": kind}
    if kind == "map":
        out["x-kubernetes-list-map-keys"] = list(map_keys)
    return out


class PadlockModel(BaseModel):
    """Base of every Padlock model: camelCase aliases, docstring descriptions, no unknown fields.

    Unknown fields are refused, as the API server refuses them under strict field validation, so a
    misspelt key in a Git repository fails ``padlock validate`` instead of being silently dropped.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="forbid",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = ()
    """Cross-field rules of this model; see ``CelRule``."""

    @model_validator(mode="after")
    def _check_cel_rules(self) -> PadlockModel:
        for rule in type(self).cel_rules:
            if not rule.check(self):
                raise ValueError(rule.message)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The camelCase form the API server stores, without unset optional fields."""
        data: dict[str, Any] = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        return data


class NamespaceSelection(PadlockModel):
    """Namespaces to include or exclude."""

    include: list[DnsLabel] | None = Field(default=None, max_length=256, json_schema_extra=list_type("set"))
    """Namespaces where the rules apply. Empty or unset means every namespace."""
    exclude: list[DnsLabel] | None = Field(default=None, max_length=256, json_schema_extra=list_type("set"))
    """Namespaces where the rules never apply, even when listed in include."""

    cel_rules = (
        CelRule(
            rule="!has(self.include) || !has(self.exclude) || !self.include.exists(n, n in self.exclude)",
            message="a namespace cannot be both included and excluded",
            check=lambda s: not (set(s.include or ()) & set(s.exclude or ())),
        ),
    )


class Scope(PadlockModel):
    """Where the rules of a policy apply. The operator turns it into a condition appended to each
    rule as `(<original>) and (<scope>)`; events outside the scope are not reported."""

    namespaces: NamespaceSelection | None = None
    """Kubernetes namespaces (field `k8s.ns.name`) to include or exclude."""


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(PadlockModel):
    """One aspect of an object's state, in the shape of Kubernetes' metav1.Condition."""

    type: str = Field(min_length=1, max_length=316, pattern=r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
    """Condition type in CamelCase: `Ready` (summary), `UpToDate`, `Degraded`."""
    status: ConditionStatus
    """`True`, `False` or `Unknown`."""
    reason: str = Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    """One CamelCase word a program can match on, e.g. `Synced`, `ValidationFailed`."""
    message: str = Field(default="", max_length=32768)
    """Human-readable details, e.g. the first diagnostic in one-line form."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this condition was computed for."""
    last_transition_time: AwareDatetime
    """When status last changed (not when the condition was last written)."""


def set_condition(conditions: Sequence[Condition], new: Condition) -> list[Condition]:
    """Return ``conditions`` with ``new`` replacing the condition of the same type.

    ``lastTransitionTime`` is kept from the old condition when the status did not change, as the
    Kubernetes conventions require; order is kept, a new type is appended.
    """
    out: list[Condition] = []
    replaced = False
    for old in conditions:
        if old.type != new.type:
            out.append(old)
            continue
        replaced = True
        if old.status == new.status:
            out.append(new.model_copy(update={"last_transition_time": old.last_transition_time}))
        else:
            out.append(new)
    if not replaced:
        out.append(new)
    return out


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    """The condition of the given type, or None."""
    return next((c for c in conditions if c.type == type_), None)


class StatusBase(PadlockModel):
    """Fields every status has."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation the operator last acted on."""
    conditions: list[Condition] | None = Field(
        default=None, max_length=16, json_schema_extra=list_type("map", "type")
    )
    """`Ready` summarises the others; each carries observedGeneration, reason and message."""


class ObjectMeta(BaseModel):
    """The parts of Kubernetes object metadata Padlock reads. Other metadata fields are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    generation: int | None = None
    resource_version: str | None = None
    uid: str | None = None
    creation_timestamp: AwareDatetime | None = None
    deletion_timestamp: AwareDatetime | None = None
    finalizers: list[str] | None = None


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)")
_DURATION_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration (`1h`, `30m`, `1h30m`, `90s`) as the CRD pattern allows it.

    Raises ValueError naming the text when it is not one.
    """
    if not re.fullmatch(DURATION, text):
        raise ValueError(f"invalid duration {text!r}: expected a number and unit, e.g. 1h, 30m, 90s")
    seconds = sum(float(num) * _DURATION_UNIT_SECONDS[unit] for num, unit in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


def name_list(max_items: int = 1024) -> Any:
    """A field holding a set of rule names (unique; merged by value under server-side apply)."""
    return Field(default=None, max_length=max_items, json_schema_extra=list_type("set"))
