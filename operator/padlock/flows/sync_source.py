"""Sync one RuleSource: cheap check, pull, validate together with every policy, adopt in one step.

Called by the RuleSource controller (reconcile on create/update/resume, and its timer every
``spec.interval``), in a worker thread, holding the operator's publish lock so no other render
publishes in between. Steps:

1. recover the current version's files after a restart (re-fetch by digest, else verbatim from the
   published ConfigMap) so the render is byte-identical and nothing is rewritten;
2. ``resolve`` the candidate (cheap digest check); unchanged digest: only ``lastCheckTime`` moves;
3. Manual update policy: a new version waits in ``status.availableVersion`` until approved;
4. ``fetch``, then render with the candidate and all current policies and exceptions, checked against
   the configured engine and plugins;
5. not publishable: refuse, keep the current version, say why (conditions, an Event);
   publishable: apply ManagedPolicies, publish, record history and changes, an Event.

Bad input never raises out of here: every failure becomes conditions and a result label.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from padlock.flows import conditions as conds
from padlock.flows import publishing, statuses
from padlock.flows.conditions import Cond
from padlock.flows.options import OperatorOptions
from padlock.flows.ports import ClusterPort, CorePort, SourcePort
from padlock.flows.rendering import Rendered
from padlock.flows.state import Snapshot

JSON = dict[str, Any]


@dataclass(frozen=True)
class Refusal:
    """A candidate that failed validation: remembered so the next check does not pull it again."""

    digest: str
    version: str
    reason: str
    message: str
    context: tuple[tuple[str, str], ...] = ()
    """Digests of the other sources' bundles when refused: a release that failed against other
    sources' rules (e.g. incubating before stable was adopted) is retried once those change."""


def _context(snapshot: Snapshot, name: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((n, str(getattr(b, "digest", ""))) for n, b in snapshot.bundles.items() if n != name))


@dataclass
class SyncOutcome:
    result: str
    """Metric label: unchanged, adopted, refused, unavailable, waiting_approval, error."""
    bundle: Any = None
    """The bundle now current (adopted or recovered); None when there is none."""
    rendered: Rendered | None = None
    """The render that was published by an adoption."""
    refusal: Refusal | None = None
    status: JSON = field(default_factory=dict)


# padlock.sources names the artifact's side ("EngineTooNew"); conditions name the cluster's side, as
# users act on it (upgrade Falco, or pin an older release).
_REASONS = {"EngineTooNew": "EngineTooOld"}


def _error_reason(exc: BaseException, default: str = "SourceUnavailable") -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason and reason[0].isupper() and " " not in reason:
        return _REASONS.get(reason, reason)
    return default


def _text(exc: BaseException) -> str:
    one_line = getattr(exc, "one_line", None)
    return str(one_line()) if callable(one_line) else str(exc)


def sync(
    source: JSON, snapshot: Snapshot, remembered: Mapping[str, JSON], *, sources: SourcePort, core: CorePort,
    cluster: ClusterPort, options: OperatorOptions, now: dt.datetime, previous: Rendered | None,
    refused: Refusal | None = None, frozen: MutableMapping[str, tuple[str, ...]] | None = None,
) -> SyncOutcome:
    """Check, pull, validate and adopt ``source``; ``frozen`` is the published frozen-set memo
    (``OperatorState.frozen``) the adoption render reads and updates (``publishing.render_and_publish``)."""
    md = source.get("metadata") or {}
    name = str(md.get("name"))
    generation = md.get("generation")
    spec = source.get("spec") or {}
    status: JSON = dict(source.get("status") or {})
    current = snapshot.bundles.get(name)

    def finish(result: str, decided: list[Cond], **kw: Any) -> SyncOutcome:
        status["lastCheckTime"] = conds.timestamp(now)
        written = statuses.rule_source(status, decided, generation=generation, now=now)
        cluster.write_status("RuleSource", name, written)
        return SyncOutcome(result=result, bundle=kw.pop("bundle", current), status=written, **kw)

    # 1. After a restart: the current version's exact files.
    if current is None and status.get("currentDigest"):
        current = _recover(source, sources, core, cluster)

    # 2. Cheap check.
    try:
        candidate = sources.resolve(source)
    except Exception as exc:  # every failure keeps what runs and says why
        available = getattr(exc, "available_version", None)
        if available:  # Manual policy, nothing approved or installed yet: not a failure
            status["availableVersion"] = available
            msg = f"RuleSource {name}: {getattr(exc, 'problem', exc)}"
            return finish("waiting_approval", [
                Cond("Ready", current is not None, "AwaitingApproval", msg),
                Cond("UpToDate", False, "AwaitingApproval", msg),
                Cond("Degraded", False, "Healthy", ""),
            ])
        reason = _error_reason(exc)
        if getattr(exc, "retryable", True) or reason == "SourceUnavailable":
            msg = f"RuleSource {name}: cannot check for new versions: {_text(exc)}"
            return finish("unavailable", [
                Cond("Ready", current is not None, "SourceUnavailable", msg),
                Cond("UpToDate", None, "SourceUnavailable", msg),
                Cond("Degraded", True, "SourceUnavailable", msg),
            ])
        msg = f"{_text(exc)}"
        if not msg.startswith("RuleSource "):
            msg = f"RuleSource {name}: {msg}"
        refusal = Refusal("", "", reason, msg)
        return finish("refused", _refused_conditions(name, refusal, current))
    available = getattr(candidate, "available_version", None)
    if available and available != status.get("currentVersion"):
        status["availableVersion"] = available
    elif candidate.digest != status.get("currentDigest"):
        status["availableVersion"] = candidate.version
    else:
        status.pop("availableVersion", None)

    if candidate.digest == status.get("currentDigest") and current is not None:
        waiting = bool(available) and spec.get("updatePolicy") == "Manual"
        up = Cond("UpToDate", False, "AwaitingApproval",
                  f"version {available} is available; set spec.approvedVersion to {available} to adopt it") if waiting \
            else Cond("UpToDate", True, "Current", f"version {candidate.version} is the newest to follow")
        return finish("waiting_approval" if waiting else "unchanged", [
            Cond("Ready", True, "Adopted", f"running version {status.get('currentVersion')}"), up,
            Cond("Degraded", False, "Healthy", ""),
        ], bundle=current)

    # 3. A release refused before is not pulled again until the source moves.
    if refused is not None and refused.digest == candidate.digest and refused.context == _context(snapshot, name):
        return finish("refused", _refused_conditions(name, refused, current), refusal=refused)

    # 4. Pull and validate with everything else.
    try:
        bundle = sources.fetch(source, candidate)
    except Exception as exc:
        reason = _error_reason(exc)
        msg = f"RuleSource {name}: version {candidate.version} ({candidate.digest}) not adopted: {_text(exc)}"
        if reason != "SourceUnavailable":  # verification failures are decisions, not outages
            refusal = Refusal(candidate.digest, candidate.version, reason, msg, _context(snapshot, name))
            cluster.event(source, "ReleaseRefused", msg, warning=True)
            return finish("refused", _refused_conditions(name, refusal, current), refusal=refusal)
        return finish("unavailable", [
            Cond("Ready", current is not None, reason, msg), Cond("UpToDate", False, reason, msg),
            Cond("Degraded", True, reason, msg),
        ])

    bundles = {**snapshot.bundles, name: bundle}
    old_rules = {n: list((obj.get("spec") or {}).get("rules") or []) for n, obj in snapshot.managed.items()}
    from_versions = {name: status.get("currentVersion")}
    outcome = publishing.render_and_publish(
        snapshot, remembered, core=core, cluster=cluster, options=options, now=now, previous=previous,
        bundles=bundles, old_rules=old_rules, from_versions=from_versions, frozen=frozen,
    )
    rendered = outcome.rendered
    if not outcome.published:
        refusal = _refusal_from_render(name, candidate, rendered, _context(snapshot, name))
        cluster.event(source, "ReleaseRefused", refusal.message, warning=True)
        return finish("refused", _refused_conditions(name, refusal, current), refusal=refusal, rendered=None)

    # 5. Adopted.
    added, removed, modified = core.diff_counts(current, bundle)
    entry = {"version": bundle.version, "digest": bundle.digest, "time": conds.timestamp(now),
             "added": added, "removed": removed, "modified": modified}
    status["history"] = [entry, *(status.get("history") or [])][: options.history_limit]
    status["currentVersion"] = bundle.version
    status["currentDigest"] = bundle.digest
    status["lastUpdateTime"] = conds.timestamp(now)
    status.pop("availableVersion", None)
    previous_version = from_versions[name]
    what = f"from {previous_version}" if previous_version else "first version"
    msg = (f"RuleSource {name}: adopted version {bundle.version} ({bundle.digest}, {what}): "
           f"{added} rules added, {removed} removed, {modified} modified")
    cluster.event(source, "ReleaseAdopted", msg)
    return finish("adopted", [
        Cond("Ready", True, "Adopted", f"running version {bundle.version}"),
        Cond("UpToDate", True, "Current", f"version {bundle.version} is the newest to follow"),
        Cond("Degraded", False, "Healthy", ""),
    ], bundle=bundle, rendered=rendered)


def _recover(source: JSON, sources: SourcePort, core: CorePort, cluster: ClusterPort) -> Any | None:
    try:
        bundle = sources.fetch_current(source)
        if bundle is not None:
            return bundle
    except Exception:  # the registry may be down after a restart: the ConfigMap still has the files
        pass
    try:
        return core.recover_files(source, cluster.published())
    except Exception:
        return None


def _refusal_from_render(name: str, candidate: Any, rendered: Rendered,
                         context: tuple[tuple[str, str], ...]) -> Refusal:
    if rendered.engine_errors:
        reason, errors = "EngineTooOld", list(rendered.engine_errors)
    elif rendered.plugin_errors:
        reason, errors = "PluginRequirementNotMet", list(rendered.plugin_errors)
    else:
        reason = "ValidationFailed"
        errors = list(rendered.errors_for(("RuleSource", "", name))) or rendered.all_errors()
    own = f"RuleSource {name}: "
    errors = [e[len(own):] if e.startswith(own) else e for e in errors]
    msg = (f"RuleSource {name}: version {candidate.version} not adopted: "
           f"{conds.first_lines(errors) or 'the effective ruleset does not validate'}")
    return Refusal(candidate.digest, candidate.version, reason, msg, context)


def _refused_conditions(name: str, refusal: Refusal, current: Any | None) -> list[Cond]:
    keep = f"; keeping version {current.version}" if current is not None else ""
    return [
        Cond("Ready", False, refusal.reason, refusal.message + keep),
        Cond("UpToDate", False, refusal.reason, refusal.message),
        Cond("Degraded", True, refusal.reason, refusal.message + keep),
    ]
