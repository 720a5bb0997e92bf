"""Parse RuleSource ``interval`` strings (Go/Kubernetes duration syntax: ``1h``, ``90s``, ``1h30m``).

Called by the RuleSource controller to decide when the next cheap digest check is due.
"""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


class DurationError(ValueError):
    pass


def parse_duration(text: str, *, field: str = "spec.interval") -> float:
    """Seconds in ``text``; raises DurationError naming ``field`` for anything else, or for zero."""
    value = text.strip()
    pos, total = 0, 0.0
    for match in _PART.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not value or pos != len(value):
        raise DurationError(f'{field}: "{text}" is not a duration (use e.g. "30s", "5m", "1h", "1h30m")')
    if total <= 0:
        raise DurationError(f'{field}: "{text}" must be longer than zero')
    return total
