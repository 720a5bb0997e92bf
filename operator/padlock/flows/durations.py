"""RuleSource ``interval`` as seconds, for the RuleSource controller's next-check schedule.

The syntax (Go durations: ``1h``, ``90s``, ``1h30m``) is the CRD's, parsed by
``padlock.api.common.parse_duration``; this module adds what scheduling needs: the field name in the
error and a refusal of zero (a check every 0 s would spin).
"""

from __future__ import annotations

from padlock.api.common import parse_duration as parse_go_duration


class DurationError(ValueError):
    pass


def parse_duration(text: str, *, field: str = "spec.interval") -> float:
    """Seconds in ``text``; raises DurationError naming ``field`` for anything else, or for zero."""
    try:
        seconds = parse_go_duration(text.strip()).total_seconds()
    except ValueError:
        raise DurationError(f'{field}: "{text}" is not a duration (use e.g. "30s", "5m", "1h", "1h30m")') from None
    if seconds <= 0:
        raise DurationError(f'{field}: "{text}" must be longer than zero')
    return seconds
