"""The ``status`` of each padlock object after a sync or a render, built from the ``padlock.api`` models.

Called by the publishing flow (ManagedPolicy, CustomPolicy, exceptions), the sync flow and the
RuleSource controller (RuleSource). Each function returns the complete status as the models dump it
(camelCase, no unset fields, times in RFC 3339); the single status writer (``ClusterPort.write_status``)
compares it with the stored one and writes only what differs. Pure: ``now`` is passed in.

What a ManagedPolicy status says is decided by the policy core (``padlock.policy.changes.next_status``:
``lastUpdated``, ``changes``, counts, ``missingDisabledRules``, effective ``enabled``); this module only
adds ``observedGeneration`` and the conditions.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from typing import Any

from padlock.api.common import Condition
from padlock.api.custompolicy import CustomPolicyStatus
from padlock.api.exception import PolicyExceptionStatus
from padlock.api.managedpolicy import ManagedPolicyStatus
from padlock.api.rulesource import RuleSourceStatus
from padlock.flows import conditions as conds
from padlock.flows.conditions import Cond
from padlock.policy import changes
from padlock.policy import policy_objects as po

JSON = dict[str, Any]


def managed_policy(
    obj: Mapping[str, Any], *, current: Mapping[str, Any] | None, generation: int | None,
    old_rules: Sequence[Mapping[str, Any]] | None, from_version: str | None, errors: Sequence[str],
    now: dt.datetime, running: Mapping[str, Any] | None = None,
) -> JSON:
    """Status of a ManagedPolicy ``obj`` (operator-owned spec plus the user's choices).

    ``old_rules`` is the stored ``spec.rules`` before an adoption; None when the rules did not change
    (a render triggered by a user edit or a restart), so ``lastUpdated`` and ``changes`` stay.
    ``running``: the effective state the render decided (``Rendered.running``), absent when unknown.
    """
    spec = obj.get("spec") or {}
    policy, _ = po.parse_managed(obj)
    if policy is None:  # the render reports what is wrong with it; count what can be read
        policy = po.ManagedPolicyInput(name=str((obj.get("metadata") or {}).get("name", "")),
                                       rules=po.managed_rules_from_spec(spec))
    rules = policy.rules
    before = rules if old_rules is None else po.managed_rules_from_spec({"rules": list(old_rules)})
    computed = changes.next_status(
        changes.PolicyStatus.from_dict(dict(current or {})), before, rules,
        default_enabled=policy.default_enabled, enabled=policy.enabled, disabled_rules=policy.disabled_rules,
        now=now, from_version=from_version, to_version=(spec.get("source") or {}).get("version"),
    )
    decided = (Cond("Ready", False, "Invalid", "; ".join(errors)) if errors
               else Cond("Ready", True, "Rendered", f"{computed.enabled_rule_count} of {computed.rule_count} rules enabled"))
    # The core's dict form carries its time formatting (second precision, as Kubernetes stores times).
    status = ManagedPolicyStatus.model_validate({
        **computed.to_dict(),
        **(running or {}),
        "observedGeneration": generation,
        "conditions": _conditions(current, [decided], generation, now),
    })
    return status.to_dict()


class Keep(enum.Enum):
    """``frozen_rules=KEEP``: the render decided nothing about the frozen set; the stored one stays."""

    KEEP = "keep"


KEEP = Keep.KEEP


def custom_policy(*, current: Mapping[str, Any] | None, generation: int | None, errors: Sequence[str],
                  now: dt.datetime, rule_count: int, frozen_rules: Sequence[str] | Keep | None = KEEP,
                  reason: str = "Invalid", running: Mapping[str, Any] | None = None) -> JSON:
    """Status of a CustomPolicy: ``Ready``, ``ruleCount`` (rules it runs in the published render) and
    ``frozenRules`` as the core decided it (``padlock.policy.layer``: captured, dropped with None, or
    ``KEEP`` the stored one)."""
    current = current or {}
    frozen = current.get("frozenRules") if isinstance(frozen_rules, Keep) else frozen_rules
    status = CustomPolicyStatus.model_validate({
        **(running or {}),
        "frozenRules": None if frozen is None else list(frozen),
        "ruleCount": rule_count,
        "observedGeneration": generation,
        "conditions": _conditions(current, [_in_force(errors, reason=reason)], generation, now),
    })
    return status.to_dict()


def exception(*, current: Mapping[str, Any] | None, generation: int | None, errors: Sequence[str],
              expired: bool, now: dt.datetime, reason: str = "Invalid") -> JSON:
    """Status of a PolicyException or ClusterPolicyException: ``active`` and ``Ready``."""
    status = PolicyExceptionStatus(
        active=not errors and not expired,
        observed_generation=generation,
        conditions=_conditions(current, [_in_force(errors, expired=expired, reason=reason)], generation, now),
    )
    return status.to_dict()


def rule_source(status: Mapping[str, Any], decided: Sequence[Cond], *, generation: int | None,
                now: dt.datetime) -> JSON:
    """``status`` of a RuleSource (the fields the sync decided) with ``decided`` conditions merged in."""
    model = RuleSourceStatus.model_validate({
        **status,
        "observedGeneration": generation,
        "conditions": _conditions(status, decided, generation, now),
    })
    return model.to_dict()


def falco_loaded(status: Mapping[str, Any], decided: Cond, *, now: dt.datetime) -> JSON:
    """``status`` of a RuleSource with the tuner's ``FalcoLoaded`` condition merged in; every other field
    (``observedGeneration`` included: this says nothing about the spec) stays as stored."""
    model = RuleSourceStatus.model_validate({
        **status,
        "conditions": _conditions(status, [decided], status.get("observedGeneration"), now),
    })
    return model.to_dict()


def _in_force(errors: Sequence[str], *, expired: bool = False, reason: str = "Invalid") -> Cond:
    """``Ready``: False with why the object is left out of the published ruleset (``reason``:
    ``Invalid``, or the limit that left it out: ``TooLarge``, ``NamespaceLimit``, ``NoRoom``)."""
    if errors:
        return Cond("Ready", False, reason, "; ".join(errors))
    if expired:
        return Cond("Ready", True, "Expired", "expiresAt has passed: the exception no longer applies")
    return Cond("Ready", True, "Rendered", "in force in the published ruleset")


def _conditions(current: Mapping[str, Any] | None, decided: Sequence[Cond], generation: int | None,
                now: dt.datetime) -> list[Condition]:
    merged = conds.merge((current or {}).get("conditions"), decided, generation=generation, now=now)
    return [Condition.model_validate(c) for c in merged]
