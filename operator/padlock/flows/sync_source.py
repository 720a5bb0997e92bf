"""Sync one RuleSource: cheap check, pull, validate together with every policy, adopt in one step.

Called by the RuleSource controller (reconcile on create/update/resume, and its timer every
``spec.interval``), in a worker thread. The check and the download hold only the source's lock; the
render and publish run under the operator's publish lock (``PublishGate``). Steps:

1. recover the current version's files after a restart (re-fetch by digest, else verbatim from the
   published ConfigMap) so the render is byte-identical and nothing is rewritten;
2. ``resolve`` the candidate (cheap digest check); unchanged digest: only ``lastCheckTime`` moves;
3. Manual update policy: a new version waits in ``status.availableVersion`` until approved;
4. mark the attempt (crash-only: a release the process died on ``POISON_AFTER`` times is refused),
   ``fetch``, then restore any other source that published before (never publish less), render with
   the candidate and all current policies and exceptions, checked against the configured engine and
   plugins;
5. not publishable, or the core crashed on it: refuse, keep the current version, say why
   (conditions, one Event per distinct refusal); publishable: apply ManagedPolicies, publish, record
   history and changes, an Event.

Bad input never raises out of here: every failure becomes conditions and a result label. Only a
failed cluster write propagates (the controller records it and retries).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from padlock.flows import conditions as conds
from padlock.flows import publishing, statuses
from padlock.flows.conditions import Cond
from padlock.flows.options import OperatorOptions
from padlock.flows.ports import ClusterPort, CorePort, SourcePort
from padlock.flows.rendering import ManagedDraft, Rendered, RenderInputs
from padlock.flows.state import Snapshot
from padlock.sources.bundles import Bundle, Candidate
from padlock.sources.errors import ApprovalRequired, SourceError

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
    spec: str = ""
    """Where the release came from (``_spec_key``): a refusal is never reused once the spec points
    elsewhere (a changed URL with the same pinned sha256 is fetched again)."""


def _spec_key(spec: Mapping[str, Any]) -> str:
    """The parts of a RuleSource spec that decide what is fetched and how it is checked."""
    import json

    where = {k: spec.get(k) for k in ("oci", "http", "configMap", "verify") if spec.get(k) is not None}
    return json.dumps(where, sort_keys=True, default=str)


#: Deaths of the operator while validating one release after which that release is refused as
#: poison instead of tried again (``attempts``): a crash loop ends, a single unlucky restart does not
#: refuse a good release.
POISON_AFTER = 3


class _RenderCrashed(Exception):
    """The core raised while rendering a candidate: a verdict on the release, not an outage."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(f"{type(original).__name__}: {original}")
        self.original = original


class _GuardedCore:
    """``CorePort`` whose render-side calls turn any exception into ``_RenderCrashed``, so the sync
    tells a crash of the rules core on hostile input (refuse the release) from a failed cluster
    write (retry later) without looking inside ``publishing``."""

    def __init__(self, core: CorePort) -> None:
        self._core = core

    def managed_drafts(self, bundles: Mapping[str, Bundle], now: dt.datetime,
                       load_orders: Mapping[str, int] | None = None) -> Sequence[ManagedDraft]:
        try:
            return self._core.managed_drafts(bundles, now, load_orders)
        except Exception as exc:
            raise _RenderCrashed(exc) from exc

    def render(self, inputs: RenderInputs, now: dt.datetime) -> Rendered:
        try:
            return self._core.render(inputs, now)
        except Exception as exc:
            raise _RenderCrashed(exc) from exc

    # Not render-side: a failure here is not a verdict on the release, so it passes through unchanged.
    def diff_counts(self, old: Bundle | None, new: Bundle) -> tuple[int, int, int]:
        return self._core.diff_counts(old, new)

    def recover_files(self, source: JSON, configmaps: Sequence[JSON]) -> Bundle | None:
        return self._core.recover_files(source, configmaps)


def _context(snapshot: Snapshot, name: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((n, b.digest) for n, b in snapshot.bundles.items() if n != name))


@dataclass
class SyncOutcome:
    result: str
    """Metric label: unchanged, adopted, refused, unavailable, waiting_approval, waiting_sources, error."""
    bundle: Bundle | None = None
    """The bundle now current (adopted or recovered); None when there is none."""
    rendered: Rendered | None = None
    """The render that was published by an adoption."""
    refusal: Refusal | None = None
    status: JSON = field(default_factory=dict)
    restored: dict[str, Bundle] = field(default_factory=dict)
    """Other sources' current bundles this sync restored (after a restart) before publishing."""
    attempted: str | None = None
    """The digest this sync marked as attempted (``attempts``); the caller clears the mark."""
    applied: bool = False
    """Already recorded in the operator's state through ``PublishGate.apply``."""


# padlock.sources names the artifact's side ("EngineTooNew"); conditions name the cluster's side, as
# users act on it (upgrade Falco, or pin an older release).
_REASONS = {"EngineTooNew": "EngineTooOld"}


def _error_reason(exc: BaseException, default: str = "SourceUnavailable") -> str:
    """The condition reason of a failed check or pull: a ``SourceError`` names it; anything else
    (a failed cluster read, a bug) counts as an outage."""
    if isinstance(exc, SourceError):
        return _REASONS.get(exc.reason, exc.reason)
    return default


def _retryable(exc: BaseException) -> bool:
    return exc.retryable if isinstance(exc, SourceError) else True


def _text(exc: BaseException) -> str:
    return exc.one_line() if isinstance(exc, SourceError) else str(exc)


def _problem(exc: BaseException, name: str, digest: str = "") -> str:
    """What went wrong, without the source name (the message names it once) and without a reference
    that only repeats the digest."""
    if not isinstance(exc, SourceError):
        return _text(exc).removeprefix(f"RuleSource {name}: ")
    problem, reference = exc.problem, exc.reference
    if reference and not (digest and digest in reference) and reference not in problem:
        return f"{reference}: {problem}"
    return problem


def _not_adopted(name: str, candidate: Candidate, problem: str) -> str:
    digest = candidate.digest
    shown = f" ({digest})" if digest and digest not in problem else ""
    return f"RuleSource {name}: version {candidate.version}{shown} not adopted: {problem}"


def _condition_message(status: Mapping[str, Any], type_: str) -> str | None:
    for c in status.get("conditions") or ():
        if isinstance(c, Mapping) and c.get("type") == type_:
            return str(c.get("message", ""))
    return None


def missing_sources(snapshot: Snapshot, name: str = "") -> list[str]:
    """Sources (other than ``name``) that have published a version but whose bundle is not in the
    snapshot: a render now would publish less than before (right after a restart)."""
    return sorted(
        n for n, obj in snapshot.sources.items()
        if n != name and n not in snapshot.bundles and ((obj.get("status") or {}).get("currentDigest"))
    )


class PublishGate(Protocol):
    """The operator's publish lock, seen from the worker thread that runs a sync."""

    def hold(self) -> AbstractContextManager[tuple[Snapshot, Rendered | None]]:
        """Take the lock; give the current snapshot and last render."""

    def apply(self, outcome: SyncOutcome) -> None:
        """Record ``outcome`` in the operator's state (still under the lock)."""


Attempts = Callable[[str], int]
"""Marks a release digest as being validated, durably, before the attempt; returns how many earlier
attempts on that digest never finished (the process died during them)."""


def sync(
    source: JSON, snapshot: Snapshot, remembered: Mapping[str, JSON], *, sources: SourcePort, core: CorePort,
    cluster: ClusterPort, options: OperatorOptions, now: dt.datetime, previous: Rendered | None,
    refused: Refusal | None = None, frozen: MutableMapping[str, tuple[str, ...]] | None = None,
    attempts: Attempts | None = None, gate: PublishGate | None = None,
) -> SyncOutcome:
    """Check, pull, validate and adopt ``source``; ``frozen`` is the published frozen-set memo
    (``OperatorState.frozen``) the adoption render reads and updates (``publishing.render_and_publish``).

    Never raises for a release, whatever it holds: a crash of the rules core on it is a refusal.
    Only a failed cluster write (status, publish) propagates, to be retried by the caller.

    ``gate`` (the operator passes one): the check and the download run without the publish lock;
    ``gate.hold()`` takes it and gives the state as it is then, for the render and the publish, and
    ``gate.apply`` records the outcome in the operator's state before the lock is released. Without a
    gate the caller holds the lock around the whole call and applies the outcome itself.
    """
    return _sync(source, snapshot, remembered, sources=sources, core=core, cluster=cluster, options=options,
                 now=now, previous=previous, refused=refused, frozen=frozen, attempts=attempts, gate=gate)


def _sync(
    source: JSON, snapshot: Snapshot, remembered: Mapping[str, JSON], *, sources: SourcePort, core: CorePort,
    cluster: ClusterPort, options: OperatorOptions, now: dt.datetime, previous: Rendered | None,
    refused: Refusal | None, frozen: MutableMapping[str, tuple[str, ...]] | None, attempts: Attempts | None,
    gate: PublishGate | None,
) -> SyncOutcome:
    md = source.get("metadata") or {}
    name = str(md.get("name"))
    generation = md.get("generation")
    spec = source.get("spec") or {}
    status: JSON = dict(source.get("status") or {})
    current = snapshot.bundles.get(name)
    spec_key = _spec_key(spec)
    before = _condition_message(status, "Ready")
    attempted: str | None = None

    def finish(result: str, decided: list[Cond], **kw: Any) -> SyncOutcome:
        status["lastCheckTime"] = conds.timestamp(now)
        written = statuses.rule_source(status, decided, generation=generation, now=now)
        cluster.write_status("RuleSource", name, written)
        return SyncOutcome(result=result, bundle=kw.pop("bundle", current), status=written, attempted=attempted,
                           **kw)

    def refuse(refusal: Refusal, **kw: Any) -> SyncOutcome:
        """Refused: conditions, and one Event per distinct refusal (not one per poll)."""
        decided = _refused_conditions(name, refusal, current)
        if decided[0].message != before:
            cluster.event(source, "ReleaseRefused", refusal.message, warning=True)
        return finish("refused", decided, refusal=refusal, **kw)

    # 1. After a restart: the current version's exact files.
    if current is None and status.get("currentDigest"):
        current = _recover(source, sources, core, cluster)

    # 2. Cheap check.
    try:
        candidate = sources.resolve(source)
    except Exception as exc:  # every failure keeps what runs and says why
        if isinstance(exc, ApprovalRequired):  # Manual policy, nothing approved or installed yet: not a failure
            status["availableVersion"] = exc.available_version
            msg = f"RuleSource {name}: {exc.problem}"
            return finish("waiting_approval", [
                Cond("Ready", current is not None, "AwaitingApproval", msg),
                Cond("UpToDate", False, "AwaitingApproval", msg),
                Cond("Degraded", False, "Healthy", ""),
            ])
        reason = _error_reason(exc)
        if _retryable(exc) or reason == "SourceUnavailable":
            msg = f"RuleSource {name}: cannot check for new versions: {_text(exc)}"
            return finish("unavailable", [
                Cond("Ready", current is not None, "SourceUnavailable", msg),
                Cond("UpToDate", None, "SourceUnavailable", msg),
                Cond("Degraded", True, "SourceUnavailable", msg),
            ])
        refusal = Refusal("", "", reason, f"RuleSource {name}: {_problem(exc, name)}", spec=spec_key)
        return refuse(refusal)
    available = candidate.available_version
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
    if (refused is not None and refused.digest == candidate.digest and refused.spec == spec_key
            and refused.context == _context(snapshot, name)):
        return finish("refused", _refused_conditions(name, refused, current), refusal=refused)

    # Crash-only: the attempt is recorded before it starts; a release the process died on
    # POISON_AFTER times is refused without being tried again.
    if attempts is not None:
        died = attempts(candidate.digest)
        attempted = candidate.digest
        if died >= POISON_AFTER:
            return refuse(Refusal(
                candidate.digest, candidate.version, "ReleaseCrashedOperator",
                _not_adopted(name, candidate, f"the operator stopped {died} times while validating it "
                                              "(a crash or the memory limit); refused without trying again"),
                _context(snapshot, name), spec_key))

    # 4. Pull and validate with everything else.
    try:
        bundle = sources.fetch(source, candidate)
    except Exception as exc:
        reason = _error_reason(exc)
        msg = _not_adopted(name, candidate, _problem(exc, name, candidate.digest))
        if reason != "SourceUnavailable":  # verification failures are decisions, not outages
            return refuse(Refusal(candidate.digest, candidate.version, reason, msg, _context(snapshot, name),
                                  spec_key))
        return finish("unavailable", [
            Cond("Ready", current is not None, reason, msg), Cond("UpToDate", False, reason, msg),
            Cond("Degraded", True, reason, msg),
        ])

    def adopt(snapshot: Snapshot, previous: Rendered | None) -> SyncOutcome:
        # Never publish less than before: every other source that published a version must be in the
        # render (right after a restart its bundle may not be restored yet).
        restored: dict[str, Bundle] = {}
        for other in missing_sources(snapshot, name):
            got = _recover(snapshot.sources[other], sources, core, cluster)
            if got is None:
                msg = (f"RuleSource {name}: version {candidate.version} waits: RuleSource {other}'s current version "
                       "is not restored yet, and publishing without it would drop its rules")
                return finish("waiting_sources", [
                    Cond("Ready", current is not None, "WaitingForSources", msg),
                    Cond("UpToDate", False, "WaitingForSources", msg),
                    Cond("Degraded", False, "Healthy", ""),
                ], restored=restored)
            restored[other] = got

        bundles = {**snapshot.bundles, **restored, name: bundle}
        old_rules = {n: list((obj.get("spec") or {}).get("rules") or []) for n, obj in snapshot.managed.items()}
        from_versions = {name: status.get("currentVersion")}
        try:
            outcome = publishing.render_and_publish(
                snapshot, remembered, core=_GuardedCore(core), cluster=cluster, options=options, now=now,
                previous=previous, bundles=bundles, old_rules=old_rules, from_versions=from_versions, frozen=frozen,
            )
        except _RenderCrashed as crash:
            return refuse(Refusal(
                candidate.digest, candidate.version, "ValidationFailed",
                _not_adopted(name, candidate, f"validating it failed ({limits_text(crash.original)})"),
                _context(snapshot, name), spec_key), restored=restored)
        rendered = outcome.rendered
        if not outcome.published:
            refusal = _refusal_from_render(name, candidate, rendered, _context(snapshot, name), spec_key)
            return refuse(refusal, rendered=None, restored=restored)

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
        ], bundle=bundle, rendered=rendered, restored=restored)

    if gate is None:
        return adopt(snapshot, previous)
    # The download is done: only now wait for the publish lock, and render on the state as it is now.
    with gate.hold() as (fresh, fresh_previous):
        outcome = adopt(fresh, fresh_previous)
        gate.apply(outcome)
        outcome.applied = True
    return outcome


def limits_text(exc: BaseException) -> str:
    """A crash of the rules core, in words a user can act on."""
    if isinstance(exc, RecursionError):
        return "the release nests too deeply for Padlock to check"
    if isinstance(exc, MemoryError):
        return "checking the release needs more memory than the operator may use"
    detail = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"internal error {type(exc).__name__}{': ' + detail if detail else ''}; please report it"


def _recover(source: JSON, sources: SourcePort, core: CorePort, cluster: ClusterPort) -> Bundle | None:
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


def _refusal_from_render(name: str, candidate: Candidate, rendered: Rendered,
                         context: tuple[tuple[str, str], ...], spec: str = "") -> Refusal:
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
    return Refusal(candidate.digest, candidate.version, reason, msg, context, spec)


def _refused_conditions(name: str, refusal: Refusal, current: Bundle | None) -> list[Cond]:
    keep = f"; keeping version {current.version}" if current is not None else ""
    return [
        Cond("Ready", False, refusal.reason, refusal.message + keep),
        Cond("UpToDate", False, refusal.reason, refusal.message),
        Cond("Degraded", True, refusal.reason, refusal.message + keep),
    ]


def recover_current(source: JSON, sources: SourcePort, core: CorePort, cluster: ClusterPort) -> Any | None:
    """The bundle of ``source``'s current version (``status.currentDigest``), read only: re-fetched by
    digest, else recovered from the published ConfigMaps; None when neither works. Used by followers
    (``padlock.controllers.follower``) to judge admission with the rules the leader adopted."""
    return _recover(source, sources, core, cluster)
