"""Render the effective ruleset from the current objects and publish it; write every object's status.

Called by the controllers' render loop (debounced: one call per burst of changes) and, with a
candidate bundle, by ``sync_source.adopt``. Runs in a worker thread with a ``Snapshot``.

Order matters: managed policies that disappeared are recreated first (with the user's remembered
choices), then the render, then the ConfigMap write (only when publishable: the last good ruleset
stays otherwise), then statuses and Events for objects whose diagnostics changed.

Frozen CustomPolicies (``basedOn.followUpdates: false``): the core captures the frozen set in the
render that first sees one (``Rendered.frozen_capture``), and that render is the one published. The
set is recorded in the caller's ``frozen`` memo (``OperatorState.frozen``) as soon as the ConfigMaps
are written, then in ``status.frozenRules``; until the watch brings the written status back, every
render takes the set from the memo, so no later render (an adoption of a new release, say) can
capture again and let the frozen policy follow an update.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from padlock.adapters.kube.publish import owner_reference
from padlock.flows import conditions, statuses
from padlock.flows.options import OperatorOptions
from padlock.flows.ports import ClusterPort, CorePort
from padlock.flows.rendering import ManagedDraft, Rendered, RenderInputs
from padlock.flows.state import ObjectKey, Snapshot, frozen_key, key_of, user_choices
from padlock.sources.bundles import Bundle

JSON = dict[str, Any]


@dataclass(frozen=True)
class PublishOutcome:
    rendered: Rendered
    published: bool
    recreated: tuple[str, ...]
    written: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


def choices_of(obj: JSON | None, remembered: Mapping[str, Any] | None = None) -> JSON:
    """The user's choices on a ManagedPolicy object (or the remembered ones when it is gone)."""
    if obj is None:
        return copy.deepcopy(dict(remembered or {}))
    return user_choices(obj.get("spec") or {})


def managed_objects(drafts: Sequence[ManagedDraft], snapshot: Snapshot, remembered: Mapping[str, JSON]) -> list[JSON]:
    """ManagedPolicy objects as the render sees them: the drafts' spec plus the user's choices."""
    out = []
    for draft in drafts:
        current = snapshot.managed.get(draft.name)
        spec = {**copy.deepcopy(draft.spec), **choices_of(current, remembered.get(draft.name))}
        metadata = copy.deepcopy((current or {}).get("metadata") or {"name": draft.name})
        out.append({"apiVersion": "padlock.dev/v1alpha1", "kind": "ManagedPolicy", "metadata": metadata, "spec": spec})
    return out


def with_frozen_set(obj: JSON, frozen: Mapping[str, Sequence[str]]) -> JSON:
    """The CustomPolicy ``obj`` as the render sees it: a frozen policy whose stored status has no
    ``frozenRules`` yet gets the set this operator captured and published (``frozen``, by ``frozen_key``)."""
    key = frozen_key(obj)
    based = (obj.get("spec") or {}).get("basedOn")
    status = obj.get("status") or {}
    if (key not in frozen or not isinstance(based, Mapping) or based.get("followUpdates", True) is not False
            or status.get("frozenRules") is not None):
        return obj
    return {**obj, "status": {**status, "frozenRules": list(frozen[key])}}


def render_inputs(snapshot: Snapshot, bundles: Mapping[str, Bundle], managed: Sequence[JSON], options: OperatorOptions,
                  frozen: Mapping[str, Sequence[str]] | None = None) -> RenderInputs:
    load_orders = {
        name: int(((snapshot.sources.get(name) or {}).get("spec") or {}).get("loadOrder", 50)) for name in bundles
    }
    return RenderInputs(
        bundles=dict(bundles),
        load_orders=load_orders,
        managed=tuple(managed),
        custom=tuple(with_frozen_set(snapshot.custom[k], frozen or {}) for k in sorted(snapshot.custom)),
        exceptions=tuple(snapshot.exceptions[k] for k in sorted(snapshot.exceptions)),
        engine_version=options.engine_version,
        plugins=None if options.plugins is None else dict(options.plugins),
        configmap=options.configmap,
    )


def owners(snapshot: Snapshot) -> list[JSON]:
    """Owner references of the published ConfigMaps: every RuleSource, by name (a stable order)."""
    refs = []
    for name in sorted(snapshot.sources):
        obj = snapshot.sources[name]
        if (obj.get("metadata") or {}).get("uid"):
            refs.append(owner_reference({"apiVersion": "padlock.dev/v1alpha1", "kind": "RuleSource", **obj}))
    return refs


def render_and_publish(
    snapshot: Snapshot, remembered: Mapping[str, JSON], *, core: CorePort, cluster: ClusterPort,
    options: OperatorOptions, now: dt.datetime, previous: Rendered | None,
    bundles: Mapping[str, Bundle] | None = None, old_rules: Mapping[str, list[JSON]] | None = None,
    from_versions: Mapping[str, str | None] | None = None, publish_invalid: bool = False,
    frozen: MutableMapping[str, tuple[str, ...]] | None = None,
) -> PublishOutcome:
    """Render with ``bundles`` (default: the adopted ones) and publish when publishable.

    ``old_rules``/``from_versions`` are passed by an adoption so ManagedPolicy status records the
    change; otherwise rules did not change and ``changes`` stays as it is. ``frozen``: the memo of
    published frozen sets (``OperatorState.frozen``), read and updated here.
    """
    bundles = snapshot.bundles if bundles is None else bundles
    load_orders = {n: int(((snapshot.sources.get(n) or {}).get("spec") or {}).get("loadOrder", 50)) for n in bundles}
    drafts = list(core.managed_drafts(bundles, now, load_orders))
    managed = managed_objects(drafts, snapshot, remembered)
    rendered = core.render(render_inputs(snapshot, bundles, managed, options, frozen), now)
    if not rendered.publishable and not publish_invalid:
        return PublishOutcome(rendered, False, ())  # nothing captured by it is recorded
    recreated = []
    for draft in drafts:
        if draft.name in snapshot.managed:
            cluster.apply_managed(draft)
        else:
            # Either new, or deleted by someone although the lock forbids it: restore the user's choices.
            choices = choices_of(None, remembered.get(draft.name))
            cluster.recreate_managed(draft, choices)
            if draft.name in remembered:
                recreated.append(draft.name)
    result = cluster.publish(rendered, owners(snapshot))
    removed = remove_dropped_policies(snapshot, drafts, cluster)
    if frozen is not None:
        remember_frozen_sets(frozen, rendered, snapshot)
    write_statuses(snapshot, managed, rendered, previous, cluster=cluster, now=now,
                   old_rules=old_rules or {}, from_versions=from_versions or {}, frozen=frozen)
    written = result.written if result is not None else ()
    return PublishOutcome(rendered, True, tuple(recreated), written, removed)


def remove_dropped_policies(snapshot: Snapshot, drafts: Sequence[ManagedDraft], cluster: ClusterPort) -> tuple[str, ...]:
    """Delete the operator's ManagedPolicies whose catalog entry is gone, each with a ``PolicyRemoved``
    Event recording the user's choices it carried (so they can be carried to the policies that now own
    its rules). Only after a publish built from a catalog (``drafts`` not empty), so a render without
    any source never takes policies away."""
    if not drafts:
        return ()
    wanted = {d.name for d in drafts}
    removed = []
    for name in sorted(set(snapshot.managed) - wanted):
        obj = snapshot.managed[name]
        if not (obj.get("spec") or {}).get("catalog"):
            continue  # not generated from a catalog: not the operator's to remove
        choices = user_choices(obj.get("spec") or {})
        cluster.delete_managed(name)
        said = json.dumps(choices, sort_keys=True, separators=(",", ":")) if choices else "none"
        cluster.event(obj, "PolicyRemoved", f"the policy catalog no longer has {name}: deleted; "
                      f"your choices on it were {said}", warning=bool(choices))
        removed.append(name)
    return tuple(removed)


def remember_frozen_sets(frozen: MutableMapping[str, tuple[str, ...]], rendered: Rendered, snapshot: Snapshot) -> None:
    """Record in ``frozen`` what the published render captured or dropped."""
    for (kind, _, name), names in rendered.frozen_capture.items():
        obj = snapshot.custom.get(name)
        if kind != "CustomPolicy" or obj is None:
            continue
        if names is None:
            frozen.pop(frozen_key(obj), None)
        else:
            frozen[frozen_key(obj)] = tuple(names)


def write_statuses(
    snapshot: Snapshot, managed: Sequence[JSON], rendered: Rendered, previous: Rendered | None, *,
    cluster: ClusterPort, now: dt.datetime, old_rules: Mapping[str, list[JSON]],
    from_versions: Mapping[str, str | None], frozen: Mapping[str, Sequence[str]] | None = None,
) -> None:
    for obj in managed:
        name = obj["metadata"]["name"]
        current = snapshot.managed.get(name) or {}
        key: ObjectKey = ("ManagedPolicy", "", name)
        status = statuses.managed_policy(
            obj, current=current.get("status"), generation=(current.get("metadata") or {}).get("generation"),
            # Only an adoption records changes: a render triggered by a user edit never changes rule text,
            # and comparing with a possibly stale watched copy could record a change twice.
            old_rules=old_rules.get(name),
            from_version=from_versions.get(obj["spec"].get("source", {}).get("ruleSource", "")),
            errors=rendered.errors_for(key), now=now, running=rendered.running.get(key),
        )
        cluster.write_status("ManagedPolicy", name, status)
        _event_on_change(cluster, obj, key, rendered, previous)
    for name in sorted(snapshot.custom):
        # As the render saw it: a frozen set kept (not decided anew) is the one the render used.
        obj = with_frozen_set(snapshot.custom[name], frozen or {})
        key = ("CustomPolicy", "", name)
        frozen_rules: Sequence[str] | statuses.Keep | None = statuses.KEEP
        if key in rendered.frozen_capture:
            frozen_rules = rendered.frozen_capture[key]
        status = statuses.custom_policy(current=obj.get("status"), generation=obj["metadata"].get("generation"),
                                        errors=rendered.errors_for(key), now=now,
                                        rule_count=rendered.rule_counts.get(key, 0), frozen_rules=frozen_rules,
                                        reason=rendered.reason_for(key), running=rendered.running.get(key))
        cluster.write_status("CustomPolicy", name, status)
        _event_on_change(cluster, obj, key, rendered, previous)
    for key in sorted(snapshot.exceptions):
        obj = snapshot.exceptions[key]
        status = statuses.exception(current=obj.get("status"), generation=obj["metadata"].get("generation"),
                                    errors=rendered.errors_for(key), expired=key in rendered.expired, now=now,
                                    reason=rendered.reason_for(key))
        cluster.write_status(key[0], key[2], status, namespace=key[1] or None)
        _event_on_change(cluster, obj, key, rendered, previous)


def _event_on_change(cluster: ClusterPort, obj: JSON, key: ObjectKey, rendered: Rendered, previous: Rendered | None) -> None:
    """One Event when an object is left out of the published ruleset (or why changes), not one per
    render; its reason is the condition's (``Invalid``, ``TooLarge``, ``NamespaceLimit``, ``NoRoom``)."""
    errors = rendered.errors_for(key)
    before = previous.errors_for(key) if previous is not None else ()
    if errors and errors != before:
        cluster.event(obj, rendered.reason_for(key), f"left out of the published ruleset: {conditions.first_lines(errors)}",
                      warning=True)
    elif key in rendered.expired and (previous is None or key not in previous.expired):
        cluster.event(obj, "Expired", "expiresAt has passed: the exception no longer applies")


def key(obj: JSON) -> ObjectKey:
    return key_of(obj)
