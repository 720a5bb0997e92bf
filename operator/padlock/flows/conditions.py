"""Standard conditions (``Ready``, ``UpToDate``, ``Degraded``) with observedGeneration.

Pure helpers used by every flow that builds a status. ``lastTransitionTime`` moves only when a
condition's ``status`` changes, so re-running a reconcile with the same outcome yields an identical
status (and the status writer skips the write).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from padlock.policy import changes

Condition = dict[str, Any]


@dataclass(frozen=True)
class Cond:
    """A condition as a flow decides it; ``merge`` turns it into the stored form."""

    type: str
    status: bool | None  # None is "Unknown"
    reason: str
    message: str = ""


def timestamp(now: dt.datetime) -> str:
    """RFC 3339 in UTC with second precision, the form Kubernetes stores (the policy core's format)."""
    return changes.format_time(now)


def _status_text(value: bool | None) -> str:
    return "Unknown" if value is None else ("True" if value else "False")


def merge(
    existing: Sequence[Condition] | None, decided: Iterable[Cond], *, generation: int | None, now: dt.datetime,
) -> list[Condition]:
    """Stored conditions after applying ``decided``; types not decided are kept as they were."""
    by_type = {c.get("type"): dict(c) for c in existing or () if isinstance(c, dict)}
    for cond in decided:
        old = by_type.get(cond.type)
        status = _status_text(cond.status)
        changed = old is None or old.get("status") != status
        by_type[cond.type] = {
            "type": cond.type,
            "status": status,
            "reason": cond.reason,
            "message": cond.message[:32768],
            "observedGeneration": generation if generation is not None else (old or {}).get("observedGeneration", 0),
            "lastTransitionTime": timestamp(now) if changed else old.get("lastTransitionTime", timestamp(now)),  # type: ignore[union-attr]
        }
    order = {"Ready": 0, "UpToDate": 1, "Degraded": 2}
    return sorted(by_type.values(), key=lambda c: (order.get(str(c.get("type")), 9), str(c.get("type"))))


def first_lines(messages: Iterable[str], limit: int = 5) -> str:
    """``messages`` joined for a condition or Event message: the first ``limit``, then how many more."""
    items = list(messages)
    text = "; ".join(items[:limit])
    if len(items) > limit:
        text += f" (and {len(items) - limit} more)"
    return text


def find(conditions: Sequence[Condition] | None, type_: str) -> Condition | None:
    for cond in conditions or ():
        if cond.get("type") == type_:
            return cond
    return None
