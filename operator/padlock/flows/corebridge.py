"""``CorePort`` over ``padlock.policy``: catalog + bundles -> managed drafts; objects -> effective render.

The one place the operator meets the core's shapes (``padlock.policy.effective.RenderInputs`` /
``RenderOutcome``, ``padlock.policy.managed.ManagedPolicyContent``, ``padlock.policy.policy_objects``), so
the flows keep their own small view (``padlock.flows.rendering``). Loaded upstream rulesets and the
render cache are kept per digest, so a re-render after one object changes re-parses nothing else.
Pure apart from that memo; called from worker threads, one at a time (the publish lock).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from padlock.adapters.kube.publish import ConfigMapContent
from padlock.flows.options import OperatorOptions
from padlock.flows.rendering import ManagedDraft, Rendered, RenderInputs
from padlock.flows.state import USER_CHOICE_FIELDS, ObjectKey
from padlock.policy import lock
from padlock.sources.bundles import Bundle

JSON = dict[str, Any]
MANAGED_LABELS = {lock.MANAGED_BY_LABEL: lock.MANAGED_BY_VALUE}


def _key(ref: Any) -> ObjectKey:
    return (str(ref.kind), str(ref.namespace or ""), str(ref.name))


def _line(d: Any) -> str:
    """``d.one_line()`` without repeating a location or id the wrapped loader message already has."""
    message = str(d.message)
    where = f"{d.path}: " if d.path and not message.startswith(str(d.path)) else ""
    tail = "" if message.endswith(f"[{d.id}]") else f" [{d.id}]"
    return f"{d.ref}: {where}{message}{tail}"


def _is_engine_problem(diag_id: str) -> bool:
    # Loader diagnostics about required_engine_version against the configured engine: the cluster's
    # Falco is too old for the release (reason EngineTooOld). "bad-*" ids are shape errors instead.
    return "engine" in diag_id and not diag_id.startswith("bad-")


def _is_plugin_problem(diag_id: str) -> bool:
    # required_plugin_versions not met by the configured --plugin set (reason PluginRequirementNotMet).
    return "plugin" in diag_id and not diag_id.startswith(("bad-", "duplicate-"))


def _parse_each(bodies: Sequence[JSON]) -> Any:
    """``parse_objects(bodies)``; should reading one body fail outright (not a diagnostic: an
    exception), that body alone is reported and left out, and the others are read."""
    from padlock.policy import policy_objects as po

    try:
        return po.parse_objects(bodies)
    except Exception:  # find the body that fails: one object never stops the others
        good: list[JSON] = []
        failed: list[Any] = []
        for body in bodies:
            try:
                po.parse_objects([body])
                good.append(body)
            except Exception as err:
                failed.append(po.ObjectDiagnostic(po.ref_of(body), "spec", f"cannot be read: {type(err).__name__}: "
                                                                           f"{err}", "read-failed"))
        parsed = po.parse_objects(good)
        return dataclasses.replace(parsed, diagnostics=(*parsed.diagnostics, *failed),
                                   invalid=(*parsed.invalid, *(d.ref for d in failed)))


def _without_bad_choices(body: JSON, diagnostics: dict[ObjectKey, list[str]], reasons: dict[ObjectKey, str]) -> JSON:
    """A ManagedPolicy body whose user choices do not parse, with those choices left out (the
    policy runs as its defaults say, reported on it), rather than the whole policy dropped: a bad
    choice must not switch off every rule of the policy."""
    from padlock.policy import policy_objects as po

    try:
        policy, found = po.parse_managed(body)
    except Exception:  # _parse_each reports it
        return body
    spec = body.get("spec") or {}
    if policy is not None or not any(f in spec for f in USER_CHOICE_FIELDS):
        return body
    key = _key(po.ref_of(body))
    for d in found:
        if d.severity == "error":
            diagnostics.setdefault(key, []).append(_line(d))
    diagnostics.setdefault(key, []).append(
        f"{po.ref_of(body)}: spec: these choices are left out; the policy runs with its defaults until they are fixed "
        "[choices-excluded]")
    reasons[key] = "Invalid"
    return {**body, "spec": {k: v for k, v in spec.items() if k not in USER_CHOICE_FIELDS}}


class Core:
    def __init__(self, options: OperatorOptions) -> None:
        from padlock.policy import catalog, effective

        self.options = options
        self.cache = effective.RenderCache()
        self.base_catalog = catalog.builtin()
        # managed_drafts runs before every render: 94 ms CPU of bundle loads per render without this
        # (re-render target < 100 ms, bench/README.md "Caches and what they buy")
        self._rulesets: dict[tuple[str, str], Any] = {}

    # -- helpers ---------------------------------------------------------------------------------------
    @staticmethod
    def _files(bundle: Any) -> tuple[tuple[str, str], ...]:
        return tuple((f.name, f.text) for f in bundle.files)

    def _ruleset(self, name: str, bundle: Any) -> Any:
        from padlock.engine import loader
        from padlock.engine.model import RulesFile

        key = (name, bundle.digest)
        if key not in self._rulesets:
            files = [RulesFile(f.name, f.text) for f in bundle.files if f.name.endswith((".yaml", ".yml"))
                     and not f.name.endswith("padlock-catalog.yaml")]
            if len(self._rulesets) > 16:
                self._rulesets.clear()
            self._rulesets[key] = loader.load(files).ruleset
        return self._rulesets[key]

    # -- the port --------------------------------------------------------------------------------------
    def managed_drafts(self, bundles: Mapping[str, Bundle], now: dt.datetime,
                       load_orders: Mapping[str, int] | None = None) -> list[ManagedDraft]:
        from padlock.policy import catalog, managed

        if not bundles:
            return []
        orders = load_orders or {}
        names = sorted(bundles, key=lambda n: (orders.get(n, 50), n))
        cat = self.base_catalog
        for name in names:
            cat, _problems = catalog.from_bundle(cat, self._files(bundles[name]), f"{name}/")
        contents = managed.build_managed(
            cat, {n: self._ruleset(n, bundles[n]) for n in names}, {n: bundles[n].version for n in names},
        )
        return [
            ManagedDraft(name=c.name, spec=c.to_spec(), labels=dict(MANAGED_LABELS),
                         annotations={}, source=c.rule_source)
            for c in contents
        ]

    def render(self, inputs: RenderInputs, now: dt.datetime) -> Rendered:
        from padlock.policy import effective, running
        from padlock.policy import policy_objects as po

        diagnostics: dict[ObjectKey, list[str]] = {}
        reasons: dict[ObjectKey, str] = {}
        managed_bodies = [_without_bad_choices(b, diagnostics, reasons) for b in inputs.managed]
        bodies = [*managed_bodies, *inputs.custom, *inputs.exceptions]
        parsed = _parse_each(bodies)
        for d in parsed.diagnostics:
            if d.severity == "error":
                diagnostics.setdefault(_key(d.ref), []).append(_line(d))
                reasons.setdefault(_key(d.ref), "Invalid")
        sources = tuple(
            po.SourceInput(name=name, load_order=int(inputs.load_orders.get(name, 50)), version=b.version,
                           files=self._files(b))
            for name, b in sorted(inputs.bundles.items())
        )
        limits = self.options.limits
        core_inputs = effective.RenderInputs(
            sources=sources, managed=parsed.managed, custom=parsed.custom, exceptions=parsed.exceptions,
            engine_version=inputs.engine_version, plugins=dict(inputs.plugins or {}),
            configmap_name=inputs.configmap,
            namespace=self.options.falco_namespace,
            max_shards=self.options.rules_shards + 1, max_object_bytes=limits.object_bytes,
            max_namespace_bytes=limits.namespace_bytes, created=effective.created_times(bodies),
        )
        outcome = effective.render(core_inputs, now, self.cache)
        warnings: dict[ObjectKey, list[str]] = {}
        engine_errors: list[str] = []
        plugin_errors: list[str] = []
        for d in outcome.diagnostics:
            target = diagnostics if d.severity == "error" else warnings
            target.setdefault(_key(d.ref), []).append(_line(d))
            if d.severity == "error" and _is_engine_problem(d.id):
                engine_errors.append(_line(d))
            if d.severity == "error" and _is_plugin_problem(d.id):
                plugin_errors.append(_line(d))
        for ref, reason in outcome.reasons.items():
            reasons.setdefault(_key(ref), reason)
        configmaps = tuple(
            ConfigMapContent(name=cm.name, data=dict(cm.data), annotations=dict(cm.annotations))
            for cm in outcome.configmaps
        )
        return Rendered(
            publishable=outcome.publishable and bool(configmaps),
            content_hash=outcome.content_hash,
            configmaps=configmaps,
            diagnostics={k: tuple(v) for k, v in diagnostics.items()},
            warnings={k: tuple(v) for k, v in warnings.items()},
            expired=frozenset(_key(r) for r in outcome.expired),
            engine_errors=tuple(engine_errors),
            plugin_errors=tuple(plugin_errors),
            rule_counts={_key(ref): len(names) for ref, names in outcome.policy_rules.items()},
            frozen_capture={_key(ref): names for ref, names in outcome.frozen_capture.items()},
            exclusions={k: v for k, v in reasons.items() if k in diagnostics},
            running={_key(ref): state.to_status() for ref, state in
                     running.effective_state(outcome.policy_included, outcome.policy_rules).items()},
            raw=outcome,
            sources=tuple(sorted(inputs.bundles)),
        )

    def diff_counts(self, old: Bundle | None, new: Bundle) -> tuple[int, int, int]:
        new_rules = self._ruleset("diff-new", new).rules
        if old is None:
            return len(new_rules), 0, 0
        try:
            from padlock.engine import differ

            d = differ.diff(self._ruleset("diff-old", old), self._ruleset("diff-new", new))
            rules = d.rules
            return len(rules.added), len(rules.removed), len(rules.modified)
        except ImportError:  # differ not available: compare rule definitions directly
            old_rules = self._ruleset("diff-old", old).rules
            added = len(set(new_rules) - set(old_rules))
            removed = len(set(old_rules) - set(new_rules))
            modified = sum(1 for n in set(new_rules) & set(old_rules) if new_rules[n] != old_rules[n])
            return added, removed, modified

    def recover_files(self, source: JSON, configmaps: Sequence[JSON]) -> Bundle | None:
        """The source's files as published (keys ``NN-<source>-<file>``), when the ConfigMaps say they
        hold exactly ``status.currentVersion`` of it."""
        from padlock.engine.model import RulesFile
        from padlock.policy import effective

        md, status = source.get("metadata") or {}, source.get("status") or {}
        name, version = str(md.get("name")), status.get("currentVersion")
        order = int((source.get("spec") or {}).get("loadOrder", 50))
        data: dict[str, str] = {}
        for cm in configmaps:
            annotations = (cm.get("metadata") or {}).get("annotations") or {}
            if f"{name}={version}" not in str(annotations.get(effective.SOURCE_VERSIONS, "")).split(","):
                return None
            data.update(cm.get("data") or {})
        prefix = f"{order:02d}-{name}-"
        files = tuple(RulesFile(k[len(prefix):], v) for k, v in sorted(data.items()) if k.startswith(prefix))
        if not files or not version:
            return None
        return Bundle(source=name, version=str(version), digest=str(status.get("currentDigest")), files=files,
                      engine_requirement=None, reference="configmap-recovery")
