"""Validation of a CustomPolicy, PolicyException or ClusterPolicyException at admission time.

Pure: the admission webhook (``padlock.webhook.handlers``) builds an ``AdmissionView`` of the current
effective inputs (upstream rules files in load order, the rule names of each policy) from the
operator's in-memory state, passes one object body, and gets back ``ObjectDiagnostic`` values (the
policy core's diagnostic type: object, field path, message, id). Errors reject the ``kubectl apply``;
warnings are returned to the user as admission warnings.

What is checked, in this order (a later check is skipped when an earlier one found the object
malformed, so a user sees the first real problem, not a cascade):

1. shape, through the policy core's parser (``padlock.policy.policy_objects``);
2. references: a ``basedOn`` managed policy, ``spec.policies[i]`` and their ``rules``, ``spec.rules``
   of a CustomPolicy must exist in the current state;
3. namespace confinement: a namespaced PolicyException may only match its own namespace;
4. Falco semantics, through the rules loader (``padlock.engine.loader.load``): a CustomPolicy's
   ``falcoRules`` loaded after the upstream files (undefined macros, lists, unknown fields, bad
   conditions), and every exception's fields/comps/values as Falco would compile them.

The upstream files are not re-read per request: ``UpstreamCache`` keeps their prepared load
(``loader.prepare``) for the current upstream digests, engine and plugins, and ``falcoRules`` is
loaded on top of it (``loader.load(..., base=)``, which gives exactly the result of loading all files).
The webhook keeps one ``UpstreamCache`` for its lifetime and hands it to every view it builds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import yaml

from padlock.engine import safe_yaml
from padlock.engine.diagnostics import Diagnostic
from padlock.engine.model import RulesFile
from padlock.policy import policy_objects as po

if TYPE_CHECKING:
    from padlock.engine.loader import LoadState

CUSTOM_RULES_FILE: Final = "spec.falcoRules"
"""Name under which a CustomPolicy's ``falcoRules`` is loaded, so diagnostics point at the field."""

EXCEPTION_PROBE_FILE: Final = "padlock-admission-exception-probe.yaml"
EXCEPTION_PROBE_RULE: Final = "Padlock admission exception probe"

NAMESPACE_FIELDS: Final = frozenset({"k8s.ns.name", "k8smeta.ns.name"})
"""Fields that name the namespace of an event; a tenant exception may only name its own."""

# Comparison operators under which a k8s.ns.name value can only ever equal the listed namespaces.
_CONFINED_COMPS: Final = frozenset({"=", "in"})

UpstreamKey = tuple[str | None, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]
"""(engine version, sorted plugins, (file name, sha256 of its text) in load order)."""


@dataclass
class UpstreamCache:
    """The prepared load of the latest upstream file set (one entry: only the current set is asked for).

    A memo, not state: the same key always gives an equal ``LoadState``, so results never depend on it.
    """

    key: UpstreamKey | None = None
    state: LoadState | None = None

    def prepared(self, view: AdmissionView) -> LoadState:
        """``loader.prepare`` of the view's upstream files, reused while their key is the same."""
        from padlock.engine import loader

        state = self.state
        if state is None or self.key != view.upstream_key:
            state = loader.prepare(view.upstream_files, engine_version=view.engine_version, plugins=view.plugins)
            self.key, self.state = view.upstream_key, state
        return state


@dataclass(frozen=True)
class AdmissionView:
    """The current effective inputs an object is validated against.

    ``upstream_files`` are the adopted RuleSource files in load order, named as published.
    ``policies`` maps ("ManagedPolicy" | "CustomPolicy", name) to the names of the rules the policy
    includes. ``complete`` is False while the operator has not finished its first sync: reference
    checks then only warn, because a missing name may simply not be loaded yet.
    """

    upstream_files: tuple[RulesFile, ...] = ()
    policies: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    complete: bool = True
    upstream_rules: frozenset[str] = frozenset()
    """Rule names the upstream files define; ``build`` fills it once per state change."""
    plugins: Mapping[str, str] = field(default_factory=dict)
    """Plugins the cluster's Falco loads (name -> version): container.* and k8s.* fields need ``container``."""
    engine_version: str | None = None
    upstream_key: UpstreamKey | None = None
    """Identifies the upstream files, engine and plugins (``build`` fills it; None: computed on use)."""
    upstream_cache: UpstreamCache = field(default_factory=UpstreamCache, compare=False, repr=False)
    """Where the prepared upstream load is kept; pass the same one to every view (``build(cache=)``)."""

    @classmethod
    def build(
        cls,
        upstream_files: Sequence[RulesFile],
        policies: Mapping[tuple[str, str], Iterable[str]],
        *,
        complete: bool = True,
        plugins: Mapping[str, str] | None = None,
        engine_version: str | None = None,
        cache: UpstreamCache | None = None,
    ) -> AdmissionView:
        names: set[str] = set()
        for f in upstream_files:
            names.update(defined_rule_names(f.text))
        plugins = dict(plugins or {})
        return cls(
            upstream_files=tuple(upstream_files),
            policies={key: frozenset(rules) for key, rules in policies.items()},
            complete=complete,
            upstream_rules=frozenset(names),
            plugins=plugins,
            engine_version=engine_version,
            upstream_key=upstream_key(upstream_files, engine_version, plugins),
            upstream_cache=cache if cache is not None else UpstreamCache(),
        )


def upstream_key(files: Sequence[RulesFile], engine_version: str | None, plugins: Mapping[str, str]) -> UpstreamKey:
    """The ``UpstreamCache`` key of a set of upstream files (their names and content digests)."""
    digests = tuple((f.name, hashlib.sha256(f.text.encode()).hexdigest()) for f in files)
    return (engine_version, tuple(sorted(plugins.items())), digests)


def validate(body: Mapping[str, Any], view: AdmissionView) -> list[po.ObjectDiagnostic]:
    """Every problem of one padlock object against the current state; errors first, in path order."""
    kind = str(body.get("kind", ""))
    if kind == "CustomPolicy":
        custom, diags = po.parse_custom(body)
        if custom is None:
            return _ordered(diags)
        diags.extend(_custom_references(custom, view))
        diags.extend(_custom_falco_rules(custom, view))
        for own in custom.exceptions:
            diags.extend(_exception_checks(own, view))
        return _ordered(diags)
    if kind in ("PolicyException", "ClusterPolicyException"):
        parsed, diags = po.parse_exception(body)
        if parsed is None:
            return _ordered(diags)
        diags.extend(_exception_references(parsed, view))
        if kind == "PolicyException":
            diags.extend(_namespace_confinement(parsed))
        if not any(d.severity == "error" for d in diags):
            diags.extend(_exception_checks(parsed, view))
        return _ordered(diags)
    return []


def message(diags: Sequence[po.ObjectDiagnostic]) -> str:
    """The rejection text: one line per error, in the policy core's one-line form."""
    return "; ".join(d.one_line() for d in diags if d.severity == "error")


# ---------------------------------------------------------------------------------------------
# References


def _missing(view: AdmissionView, ref: po.ObjectRef, path: str, text: str, id_: str) -> po.ObjectDiagnostic:
    if view.complete:
        return po.ObjectDiagnostic(ref, path, text, id_)
    return po.ObjectDiagnostic(
        ref, path, text + " (the operator is still loading; not enforced yet)", id_, "warning"
    )


def _custom_references(custom: po.CustomPolicyInput, view: AdmissionView) -> list[po.ObjectDiagnostic]:
    diags: list[po.ObjectDiagnostic] = []
    ref = custom.ref
    own_rules: set[str] = set(defined_rule_names(custom.falco_rules))
    if custom.based_on is not None:
        key = ("ManagedPolicy", custom.based_on.managed_policy)
        if key not in view.policies:
            diags.append(
                _missing(
                    view,
                    ref,
                    "spec.basedOn.managedPolicy",
                    f'ManagedPolicy "{custom.based_on.managed_policy}" does not exist',
                    "missing-policy",
                )
            )
        else:
            own_rules |= view.policies[key]
    known = view.upstream_rules | own_rules
    for i, name in enumerate(custom.rules):
        if name not in known:
            diags.append(
                _missing(
                    view,
                    ref,
                    f"spec.rules[{i}]",
                    f'rule "{name}" is not defined by any RuleSource nor in spec.falcoRules',
                    "missing-rule",
                )
            )
    included = own_rules | set(custom.rules)
    for i, name in enumerate(custom.disabled_rules):
        if name not in included:
            diags.append(
                po.ObjectDiagnostic(
                    ref,
                    f"spec.disabledRules[{i}]",
                    f'rule "{name}" is not in this policy; disabling it has no effect',
                    "unknown-disabled-rule",
                    "warning",
                )
            )
    return diags


def _exception_references(exc: po.ExceptionInput, view: AdmissionView) -> list[po.ObjectDiagnostic]:
    diags: list[po.ObjectDiagnostic] = []
    for i, target in enumerate(exc.policies):
        rules = view.policies.get((target.kind, target.name))
        if rules is None:
            diags.append(
                _missing(
                    view,
                    exc.ref,
                    f"{exc.path}.policies[{i}].name",
                    f'{target.kind} "{target.name}" does not exist',
                    "missing-policy",
                )
            )
            continue
        for j, rule in enumerate(target.rules):
            if rule not in rules:
                diags.append(
                    _missing(
                        view,
                        exc.ref,
                        f"{exc.path}.policies[{i}].rules[{j}]",
                        f'rule "{rule}" is not in {target.kind} "{target.name}"',
                        "missing-rule",
                    )
                )
    return diags


# ---------------------------------------------------------------------------------------------
# Namespace confinement


def _namespace_confinement(exc: po.ExceptionInput) -> list[po.ObjectDiagnostic]:
    """A namespaced exception may only name its own namespace in a namespace field.

    The renderer adds ``k8s.ns.name = <namespace>`` to every match anyway, so such an exception could
    never silence another namespace; rejecting it tells the author at apply time instead of leaving a
    dead exception that looks like it works.
    """
    namespace = exc.ref.namespace
    diags: list[po.ObjectDiagnostic] = []
    match = exc.match
    path = f"{exc.path}.match"
    for j, field_name in enumerate(match.fields):
        if field_name not in NAMESPACE_FIELDS:
            continue
        comp = match.comps[j] if j < len(match.comps) else "="
        if comp not in _CONFINED_COMPS:
            diags.append(
                po.ObjectDiagnostic(
                    exc.ref,
                    f"{path}.comps[{j}]",
                    f'"{field_name} {comp} ..." can match namespaces other than "{namespace}"; a PolicyException '
                    f'may only silence events from its own namespace (use "=" or "in", or a ClusterPolicyException)',
                    "namespace-escape",
                )
            )
            continue
        for i, row in enumerate(match.values):
            cell = row[j] if j < len(row) else None
            names = cell if isinstance(cell, tuple) else (cell,)
            others = [n for n in names if n is not None and n != namespace]
            if others:
                diags.append(
                    po.ObjectDiagnostic(
                        exc.ref,
                        f"{path}.values[{i}][{j}]",
                        f'{field_name} "{others[0]}" is another namespace; a PolicyException in namespace '
                        f'"{namespace}" may only silence events from "{namespace}" (a ClusterPolicyException '
                        f"can cover other namespaces)",
                        "namespace-escape",
                    )
                )
    return diags


# ---------------------------------------------------------------------------------------------
# Values stay values


def _exception_checks(exc: po.ExceptionInput, view: AdmissionView) -> list[po.ObjectDiagnostic]:
    """Falco's reader rules, the proof that every value stays one literal, then Falco's compile.

    The first two are the very checks the render runs (``exceptions_render.check_exception``),
    against the lists of the current upstream files (Falco substitutes lists textually, inside
    exception values too); the entry they produce, exactly what the render would publish, is then
    compiled by the rules loader on top of the upstream files (``_exception_fields``).
    """
    from padlock.engine import exception_text
    from padlock.policy import exceptions_render

    if view.upstream_key is None:
        view = dataclasses.replace(
            view, upstream_key=upstream_key(view.upstream_files, view.engine_version, view.plugins)
        )
    ruleset = view.upstream_cache.prepared(view).result.ruleset
    lists = exception_text.expand_lists((n, li.items) for n, li in ruleset.lists.items())
    rendered = exceptions_render.check_exception(exc, lists)
    if rendered.entry is None:
        return list(rendered.diagnostics)
    return [*rendered.diagnostics, *_exception_fields(exc, rendered.entry, view)]


# ---------------------------------------------------------------------------------------------
# Falco semantics through the rules loader


def _custom_falco_rules(custom: po.CustomPolicyInput, view: AdmissionView) -> list[po.ObjectDiagnostic]:
    if not custom.falco_rules.strip():
        return []
    from padlock.engine import loader  # the rules core; imported here so the lock works without it

    if view.upstream_key is None:  # a view made without build(): key it now
        view = dataclasses.replace(
            view, upstream_key=upstream_key(view.upstream_files, view.engine_version, view.plugins)
        )
    # Same result as loading every upstream file and then falcoRules, without re-reading the upstream.
    result = loader.load([RulesFile(CUSTOM_RULES_FILE, custom.falco_rules)], base=view.upstream_cache.prepared(view))
    return [
        _from_loader(custom.ref, d, "spec.falcoRules")
        for d in [*result.errors, *result.warnings]
        if d.file == CUSTOM_RULES_FILE
    ]


def _exception_fields(
    exc: po.ExceptionInput, entry: Mapping[str, Any], view: AdmissionView
) -> list[po.ObjectDiagnostic]:
    """Compile the rendered ``entry`` the way Falco would, on a probe rule after the upstream files,
    and map errors to match fields."""
    match = exc.match
    if not match.fields:
        return []  # convenience keys map to fields Falco always knows
    from padlock.engine import loader

    probe = [
        {
            "rule": EXCEPTION_PROBE_RULE,
            "desc": "probe",
            "condition": "evt.type = open",
            "output": "probe %proc.name",
            "priority": "DEBUG",
            "exceptions": [
                {**entry, "name": "admission_probe"}
            ],
        }
    ]
    text = yaml.safe_dump(probe, sort_keys=False)
    # On the upstream files: a value that names one of their lists means that list, as in Falco.
    result = loader.load([RulesFile(EXCEPTION_PROBE_FILE, text)], base=view.upstream_cache.prepared(view))
    out: list[po.ObjectDiagnostic] = []
    for d in [*result.errors, *result.warnings]:
        if d.file != EXCEPTION_PROBE_FILE or d.code == "LOAD_NO_EVTTYPE":
            continue
        path = f"{exc.path}.match"
        for j, name in enumerate(match.fields):
            if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w.])", d.message):
                path = f"{exc.path}.match.fields[{j}]"
                break
        else:
            for j, comp in enumerate(match.comps):
                if f'"{comp}"' in d.message or f"'{comp}'" in d.message:
                    path = f"{exc.path}.match.comps[{j}]"
                    break
        # The probe's exception name is ours, not the user's: drop "Exception 'admission_probe': ".
        text = _PROBE_PREFIX.sub("", d.message)
        out.append(po.ObjectDiagnostic(exc.ref, path, text, d.id, d.severity))
    return out


_PROBE_PREFIX: Final = re.compile(r"^Exception '[^']*': ")


def _from_loader(ref: po.ObjectRef, d: Diagnostic, path: str) -> po.ObjectDiagnostic:
    where = f"{path}:{d.line}:{d.column}" if d.line else path
    what = f'{d.item_type} "{d.item_name}": ' if d.item_type else ""
    return po.ObjectDiagnostic(ref, where, f"{what}{d.message}", d.id, d.severity)


def defined_rule_names(text: str) -> Iterable[str]:
    """Names of rules a rules file defines (not appends or overrides); tolerant of bad YAML."""
    try:
        items = safe_yaml.load(text)
    except safe_yaml.YamlError:
        return []
    if not isinstance(items, list):
        return []
    return [
        item["rule"]
        for item in items
        if isinstance(item, dict)
        and isinstance(item.get("rule"), str)
        and "override" not in item
        and not item.get("append")
    ]


def _ordered(diags: list[po.ObjectDiagnostic]) -> list[po.ObjectDiagnostic]:
    # Errors before warnings, otherwise keep the order checks ran in (which follows the spec).
    return sorted(diags, key=lambda d: 0 if d.severity == "error" else 1)
