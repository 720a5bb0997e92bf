"""Suggestions from a Falco JSON log, with no cluster (``padlock tune --from-file``).

Reads Falco's ``json_output`` lines (a file written by Falco's ``file_output``, ``falco -o
json_output=true`` stdout, or falcosidekick's webhook bodies one per line). Lines that are not alerts
(Falco's own log lines, blank lines) are skipped and reported, so a raw log works. Each alert is
counted at its own ``time`` (the file's timeline, not the wall clock). Without a cluster, the
policies running a rule are the catalog policies whose selectors match the alert's tags, unless the
caller names them. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from padlock.policy import catalog as catalog_mod
from padlock.policy.tuning.alerts import AlertError, Limits, parse_line
from padlock.policy.tuning.suggest import PolicyRef, Suggestion, Tuner, TunerConfig

UPSTREAM_SOURCE = "falco-rules"
"""RuleSource name the catalog selectors are matched with (the chart's default RuleSource)."""


@dataclass(frozen=True)
class OfflineResult:
    suggestions: tuple[Suggestion, ...]
    alerts: int
    skipped: tuple[str, ...]
    """One line per skipped line: ``line N: problem``."""


def catalog_policies(tags: Sequence[str], catalog: catalog_mod.Catalog | None = None) -> tuple[PolicyRef, ...]:
    """Catalog policies that include a rule with these tags (from the upstream rules source), by the
    catalog's own assignment (``Catalog.assign``: with ``firstMatch``, the one owner)."""
    cat = catalog or catalog_mod.builtin()
    return tuple(("ManagedPolicy", p.name) for p in cat.assign(tags, UPSTREAM_SOURCE))


def suggest_from_lines(lines: Iterable[str], config: TunerConfig, *,
                       policies: Sequence[PolicyRef] | None = None, limits: Limits | None = None,
                       max_skipped: int = 1000) -> OfflineResult:
    limits = limits or Limits()
    tags: dict[str, tuple[str, ...]] = {}
    fixed = tuple(policies) if policies else None

    def policies_for(rule: str) -> tuple[PolicyRef, ...]:
        return fixed if fixed is not None else catalog_policies(tags.get(rule, ()))

    tuner = Tuner(config, policies_for=policies_for)
    count, latest = 0, 0.0
    skipped: list[str] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            alert = parse_line(line, limits, line_no=n)
        except AlertError as exc:
            if len(skipped) < max_skipped:
                skipped.append(str(exc))
            continue
        if alert.time is None:
            if len(skipped) < max_skipped:
                skipped.append(f"line {n}: alert without \"time\": cannot place it in the window")
            continue
        at = alert.time.timestamp()
        tags.setdefault(alert.rule, alert.tags)
        tuner.observe(alert, at)
        latest = max(latest, at)
        count += 1
    found = tuner.due(latest, all_=True) if count else []
    return OfflineResult(tuple(sorted(found, key=lambda s: (-s.hits, s.name))), count, tuple(skipped))
