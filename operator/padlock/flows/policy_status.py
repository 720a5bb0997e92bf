"""Status of policies and exceptions after a render: pure functions, called by the publishing and sync
flows, written by the single status writer (``ClusterPort.write_status``).

A ManagedPolicy's ``lastUpdated`` moves and a ``changes`` entry is added only when its rule set or a
rule's text changed; anything else (counts, conditions) is recomputed from the same inputs, so the
same inputs always give the same status and no write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from padlock.flows import conditions as conds
from padlock.flows.conditions import Cond

JSON = dict[str, Any]


def rule_changes(old_rules: Sequence[JSON] | None, new_rules: Sequence[JSON]) -> tuple[list[str], list[str], list[str]]:
    """Rule names (added, removed, modified) between two ``spec.rules`` lists, each sorted."""
    old = {str(r.get("name")): r for r in old_rules or ()}
    new = {str(r.get("name")): r for r in new_rules}
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    modified = sorted(n for n in set(old) & set(new) if old[n] != new[n])
    return added, removed, modified


def managed_status(
    *, current: JSON | None, generation: int | None, spec: JSON, old_rules: Sequence[JSON] | None,
    from_version: str | None, errors: Sequence[str], now: dt.datetime, limit: int = 20,
) -> JSON:
    """``spec`` is the full spec (operator-owned part plus the user's choices)."""
    current = current or {}
    rules: list[JSON] = list(spec.get("rules") or [])
    names = {str(r.get("name")) for r in rules}
    disabled = [str(n) for n in spec.get("disabledRules") or []]
    enabled = spec.get("enabled")
    if enabled is None:
        enabled = spec.get("defaultEnabled", True)
    enabled_count = sum(1 for r in rules if r.get("enabled", True) and r.get("name") not in disabled) if enabled else 0
    to_version = (spec.get("source") or {}).get("version")
    added, removed, modified = rule_changes(old_rules, rules) if old_rules is not None else ([], [], [])
    changes: list[JSON] = list(current.get("changes") or [])
    last_updated = current.get("lastUpdated")
    if added or removed or modified or last_updated is None:
        last_updated = conds.timestamp(now)
    if added or removed or modified:
        entry: JSON = {"time": conds.timestamp(now), "added": added, "removed": removed, "modified": modified}
        if from_version:
            entry["fromVersion"] = from_version
        if to_version:
            entry["toVersion"] = to_version
        changes = [entry, *changes][:limit]
    missing = sorted(set(disabled) - names)
    decided = [
        Cond("Ready", False, "Invalid", "; ".join(errors)) if errors
        else Cond("Ready", True, "Rendered", f"{enabled_count} of {len(rules)} rules enabled"),
    ]
    status: JSON = {
        "enabled": bool(enabled),
        "lastUpdated": last_updated,
        "ruleCount": len(rules),
        "enabledRuleCount": enabled_count,
        "missingDisabledRules": missing,
        "changes": changes,
        "observedGeneration": generation,
        "conditions": conds.merge(current.get("conditions"), decided, generation=generation, now=now),
    }
    if to_version:
        status["sourceVersion"] = to_version
    return status


def object_status(*, current: JSON | None, generation: int | None, errors: Sequence[str], now: dt.datetime,
                  extra: Mapping[str, Any] | None = None, expired: bool = False) -> JSON:
    """CustomPolicy / exception status: Ready, plus ``active`` for exceptions (``extra``)."""
    current = current or {}
    if errors:
        decided = Cond("Ready", False, "Invalid", "; ".join(errors))
    elif expired:
        decided = Cond("Ready", True, "Expired", "expiresAt has passed: the exception no longer applies")
    else:
        decided = Cond("Ready", True, "Rendered", "in force in the published ruleset")
    status: JSON = {
        **(extra or {}),
        "observedGeneration": generation,
        "conditions": conds.merge(current.get("conditions"), [decided], generation=generation, now=now),
    }
    return status


def first_lines(messages: Iterable[str], limit: int = 5) -> str:
    items = list(messages)
    text = "; ".join(items[:limit])
    if len(items) > limit:
        text += f" (and {len(items) - limit} more)"
    return text
