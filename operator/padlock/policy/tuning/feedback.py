"""What Falco's own alerts say about the ruleset Padlock published.

Two signals, from the same feed as the tuner's alerts:

- ``RELOAD_FAILED``: Falco's internal alert ``Falco internal: hot restart failure`` (source
  ``internal``, priority Critical; ``app/actions/create_signal_handlers.cpp``): Falco dry-ran a reload
  of the changed files, refused it and keeps running the previous rules.
- ``STALE``: an alert from a rule that the published ruleset knows but does not run (disabled, or its
  policy is off): that Falco host still runs an older ruleset.

``assess(alert, view)`` returns at most one ``Feedback`` per alert. Called by the intake; the operator
turns feedback into a condition, an Event and a metric. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from padlock.policy.tuning.alerts import Alert

RELOAD_FAILURE_RULE: Final = "Falco internal: hot restart failure"
RELOAD_FAILED: Final = "FalcoReloadFailed"
STALE: Final = "FalcoRulesetStale"


@dataclass(frozen=True)
class RulesetView:
    """What the published ruleset runs: rules that run, and every rule it knows (running or not)."""

    running: frozenset[str] = frozenset()
    known: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Feedback:
    reason: str
    """``FalcoReloadFailed`` or ``FalcoRulesetStale`` (also the Event reason)."""
    hostname: str
    message: str
    rule: str = ""


def assess(alert: Alert, view: RulesetView | None) -> Feedback | None:
    host = alert.hostname or "an unnamed Falco host"
    if alert.internal:
        if alert.rule.startswith(RELOAD_FAILURE_RULE):
            detail = alert.output.partition(f"{RELOAD_FAILURE_RULE}:")[2].strip() or alert.output.strip()
            return Feedback(RELOAD_FAILED, alert.hostname,
                            f"Falco on {host} refused to reload the published rules and keeps running its "
                            f"previous ruleset: {detail or 'no detail given'}")
        return None
    if view is not None and alert.rule in view.known and alert.rule not in view.running:
        return Feedback(STALE, alert.hostname,
                        f"Falco on {host} raised an alert of rule {alert.rule!r}, which the published ruleset "
                        f"does not run: that Falco runs an older ruleset", rule=alert.rule)
    return None
