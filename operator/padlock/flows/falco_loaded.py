"""Whether Falco loaded what Padlock published, per Falco host, from Falco's own alerts: ``FalcoLoaded``.

``HostTracker.observe(alert, feedback, published, now)`` is called by the tuner's intake
(``padlock.controllers.intake``) for every alert, in memory and in constant time; ``condition(tracker,
published)`` is called by the tuner's background step (``padlock.controllers.tuner``), which writes the
result on every RuleSource whose content is in the published ruleset, at most every few seconds. Pure:
the clock is passed in; no I/O.

What counts as evidence (docs/tuner.md, "Falco feedback"), per host (the alert's ``hostname``):

- **FalcoReloadFailed**: Falco's internal alert ``Falco internal: hot restart failure: <error>``
  (``padlock.policy.tuning.feedback``). Falco dry-runs a reload when its rules files change and, when the
  dry run fails, keeps running its previous rules and says so only through this alert.
- **FalcoRulesetStale**: an alert of a rule the published ruleset knows but does not run, about an
  event at least ``grace`` seconds after that ruleset was published. An event from before that proves
  nothing: the rule ran then, or the kubelet had not yet swapped the mounted files (it takes up to a
  minute or more). A stale alert never replaces a reload failure seen against the same publish (the
  failure is its cause).
- **Recovery** (the host's problem is dropped): an alert from that host of a rule the current ruleset
  runs, when either (a) the current publish started running that rule (it did not run in the publish
  before): an older ruleset would not raise it; or (b) Padlock published again after the problem was
  seen and the alert's event is at least ``grace`` after that publish: Falco reloads on every change of
  its files and reports each failed reload, so a host that keeps alerting after that, with no new
  failure, took the new files. (b) assumes Falco watches its files (``watch_config_files``, the default).

Bounds: at most ``max_hosts`` hosts with a problem (least recently heard of dropped first), a handful
of recovered host names kept for the message, and the message names at most ``SHOWN`` hosts.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from padlock.flows.conditions import Cond
from padlock.policy.tuning.alerts import Alert
from padlock.policy.tuning.feedback import RELOAD_FAILED, STALE, Feedback

TYPE: Final = "FalcoLoaded"
LOADED: Final = "Loaded"
SHOWN: Final = 3
"""Hosts a condition message names; the rest are counted (``and N more``)."""
DETAIL_CHARS: Final = 240
"""Falco's own message is cut to this many characters in the condition."""
_RECOVERED_KEPT = 8


@dataclass(frozen=True)
class Published:
    """The ruleset Padlock published last, as the feedback needs it."""

    content_hash: str
    running: frozenset[str]
    known: frozenset[str]
    started: frozenset[str]
    """Rules that run now and did not run in the publish before (empty when that one is unknown)."""
    at: float
    """Wall-clock seconds at which the operator saw it published."""


@dataclass(frozen=True)
class Problem:
    reason: str
    """``FalcoReloadFailed`` or ``FalcoRulesetStale``."""
    host: str
    detail: str
    """Falco's message (reload failure) or the rule that fired although disabled (stale)."""
    content_hash: str
    """The published content the evidence was seen against."""


def one_line(text: str, limit: int = DETAIL_CHARS) -> str:
    """Falco's multi-line loader report on one line, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _event_time(alert: Alert, now: float) -> float:
    return alert.time.timestamp() if alert.time is not None else now


class HostTracker:
    """Per-host problems and recoveries, bounded (LRU)."""

    def __init__(self, *, max_hosts: int = 256, grace: float = 120.0) -> None:
        self.max_hosts = max_hosts
        self.grace = grace
        self.problems: OrderedDict[str, Problem] = OrderedDict()
        self.recovered: OrderedDict[str, None] = OrderedDict()
        """Hosts that showed the current ruleset again since the last problem (newest last)."""
        self.recovered_count = 0
        self.dropped = 0
        """Hosts with a problem forgotten because ``max_hosts`` were tracked."""

    def observe(self, alert: Alert, feedback: Feedback | None, published: Published | None, now: float) -> bool:
        """Update the host's state from one alert; True when ``feedback`` is evidence (post its Event)."""
        if published is None:
            return False  # nothing published: nothing Falco could have failed to load
        host = alert.hostname
        if feedback is not None:
            if feedback.reason == STALE and _event_time(alert, now) < published.at + self.grace:
                return False
            old = self.problems.get(host)
            if (feedback.reason == STALE and old is not None and old.reason == RELOAD_FAILED
                    and old.content_hash == published.content_hash):
                self.problems.move_to_end(host)
                return True
            detail = feedback.rule if feedback.reason == STALE else _reload_detail(alert)
            self._set(host, Problem(feedback.reason, host, detail, published.content_hash))
            return True
        problem = self.problems.get(host)
        if problem is None or alert.internal or alert.rule not in published.running:
            return False
        decisive = alert.rule in published.started
        republished = (problem.content_hash != published.content_hash
                       and _event_time(alert, now) >= published.at + self.grace)
        if decisive or republished:
            del self.problems[host]
            self.recovered[host] = None
            self.recovered.move_to_end(host)
            self.recovered_count += 1
            while len(self.recovered) > _RECOVERED_KEPT:
                self.recovered.popitem(last=False)
        return False

    def _set(self, host: str, problem: Problem) -> None:
        if not self.problems:  # a new episode: earlier recoveries and forgotten hosts are history
            self.recovered.clear()
            self.recovered_count = 0
            self.dropped = 0
        self.problems[host] = problem
        self.problems.move_to_end(host)
        self.recovered.pop(host, None)
        while len(self.problems) > self.max_hosts:
            self.problems.popitem(last=False)
            self.dropped += 1


def _reload_detail(alert: Alert) -> str:
    """Falco's error, its loader's error lines first: the dry run returns the loader's verbose report
    (``<file>: Invalid``, contexts, a snippet, then ``LOAD_ERR_<CODE> (<text>): <message>`` lines)."""
    text = alert.output.partition(f"{alert.rule}:")[2] or alert.output
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    codes = [line for line in lines if line.startswith("LOAD_ERR")]
    if codes:
        lines = [lines[0], *codes]
    return one_line(" ".join(lines)) or "no detail given"


def _host(name: str) -> str:
    return name or "an unnamed host"


def _more(n: int) -> str:
    return f"; and {n} more host{'s' if n != 1 else ''}" if n > 0 else ""


def condition(tracker: HostTracker, published: Published | None) -> Cond | None:
    """``FalcoLoaded`` as the evidence says now; None while there is none either way."""
    if published is None:
        return None
    failed = sorted((p for p in tracker.problems.values() if p.reason == RELOAD_FAILED), key=lambda p: p.host)
    stale = sorted((p for p in tracker.problems.values() if p.reason == STALE), key=lambda p: p.host)
    problems = [*failed, *stale]
    if problems:
        parts = []
        for p in problems[:SHOWN]:
            if p.reason == RELOAD_FAILED:
                parts.append(f"Falco on {_host(p.host)} refused to reload the published rules ({p.content_hash}) "
                             f"and keeps its previous ones: {p.detail}")
            else:
                parts.append(f"Falco on {_host(p.host)} raised rule {p.detail!r}, which the published ruleset "
                             f"{p.content_hash} does not run: it runs an older ruleset")
        untracked = f" (and {tracker.dropped} more no longer tracked)" if tracker.dropped else ""
        return Cond(TYPE, False, RELOAD_FAILED if failed else STALE,
                    "; ".join(parts) + _more(len(problems) - SHOWN) + untracked)
    if tracker.recovered_count:
        names = list(reversed(tracker.recovered))[:SHOWN]
        verb = "shows" if tracker.recovered_count == 1 else "show"
        return Cond(TYPE, True, LOADED,
                    f"Falco on {', '.join(_host(h) for h in names)}{_more(tracker.recovered_count - len(names))} "
                    f"{verb} the published ruleset {published.content_hash} again")
    return None


@dataclass
class WriteGate:
    """When the tuner's step writes ``FalcoLoaded``: never more often than every ``interval`` seconds,
    only when the condition or the published sources changed, and every ``resync`` seconds again (one
    read, no write when equal) to repair a status a concurrent RuleSource sync replaced."""

    interval: float = 5.0
    resync: float = 60.0
    last: tuple[Cond, tuple[str, ...]] | None = None
    at: float = float("-inf")

    def due(self, cond: Cond | None, sources: tuple[str, ...], now: float) -> bool:
        if cond is None or not sources or now - self.at < self.interval:
            return False
        return (cond, sources) != self.last or now - self.at >= self.resync

    def written(self, cond: Cond, sources: tuple[str, ...], now: float) -> None:
        self.last, self.at = (cond, sources), now


def after_restart(stored: object) -> Cond | None:
    """What to write on a RuleSource whose stored ``FalcoLoaded`` (in its ``conditions``) this process has
    no evidence for: the evidence lives in memory, so a False left by the previous process could never
    clear. It becomes Unknown until Falco's next alerts decide again; None when nothing needs saying."""
    for c in stored if isinstance(stored, list) else ():
        if isinstance(c, dict) and c.get("type") == TYPE and c.get("status") == "False":
            return Cond(TYPE, None, "EvidenceLost", "the operator restarted and no longer has the alerts behind "
                        f"its last word ({c.get('reason')}); Falco's next alerts decide again")
    return None

