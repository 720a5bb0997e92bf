"""The policy layer: policies and exceptions -> the Falco items of the generated rules file.

Everything is expressed with Falco's own mechanisms, as items loaded after the upstream files:

* enablement: a rule runs when at least one enabled policy includes it and that policy does not
  disable it; every other rule is switched off with ``override: {enabled: replace}`` (and a rule
  upstream ships disabled is switched on when a policy names it explicitly);
* scope: a running rule whose every enabling policy is scoped gets ``override: {condition:
  replace}`` carrying ``(<original>) and (<scope>)``: never a textual append, which would bind to the
  last ``or`` branch only (falco-rules-format.md section 5.2). Several scoped policies give the union
  ``(s1) or (s2)``; one unscoped enabling policy means no scope at all;
* priority: ``override: {priority: replace}`` from CustomPolicy ``priorityOverride`` (the most severe
  wins when several policies set one);
* inline ``falcoRules`` of CustomPolicies, re-emitted as items;
* exceptions: one ``override: {exceptions: append}`` item per (exception object, rule), so each item
  belongs to exactly one object and a failure can be traced back to it.

Resolution rules (also in docs/catalog.md): a ManagedPolicy includes its rules that upstream enables;
a CustomPolicy includes its ``basedOn`` rules (current managed rules when following updates, else the
frozen set), its ``rules`` by name, and the rules its ``falcoRules`` define. Names that no longer
exist are dropped and reported as warnings, never emitted (Falco errors on missing override targets).

Freezing (``basedOn.followUpdates: false``): the frozen set is ``status.frozenRules``. A frozen policy
without one (and without a ``spec.rules`` list, which ``padlock copy --freeze`` writes as the frozen
set) is resolved with the managed policy's current rules, and ``Layer.frozen_capture`` tells the
caller to record exactly that set; a policy that follows updates again (or lost its ``basedOn``)
gets ``None`` there: its stored set is dropped. The layer decides; the operator's status writer records.

Who calls it: ``padlock.policy.effective.render``. Pure: ``now`` is passed in.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from padlock.engine.exception_text import expand_lists
from padlock.engine.model import PRIORITIES, Rule, Ruleset
from padlock.policy.custom_rules import CustomRules
from padlock.policy.exceptions_render import NAMESPACE_FIELD, RenderedException, is_expired, render_exception
from padlock.policy.policy_objects import (
    CustomPolicyInput,
    ExceptionInput,
    ManagedPolicyInput,
    ObjectDiagnostic,
    ObjectRef,
    Scope,
)


@dataclass(frozen=True)
class Section:
    """Consecutive items of the generated file and the object they come from (None: the layer itself)."""

    owner: ObjectRef | None
    items: tuple[Mapping[str, Any], ...]
    #: True for a CustomPolicy's ``falcoRules`` items (definitions other items may refer to)
    defines: bool = False
    #: for the layer's own items (owner None): the policies whose choices shaped them (a scope, a
    #: priority), so a failure of such an item is traced to those choices
    shaped_by: tuple[ObjectRef, ...] = ()


@dataclass(frozen=True)
class ResolvedPolicy:
    ref: ObjectRef
    enabled: bool
    included: tuple[str, ...]  # every rule the policy covers (exceptions target these)
    runs: tuple[str, ...]  # the included rules it wants running
    scope: Scope
    priority: str | None = None


@dataclass(frozen=True)
class Layer:
    sections: tuple[Section, ...]
    diagnostics: tuple[ObjectDiagnostic, ...]
    invalid: frozenset[ObjectRef]
    expired: tuple[ObjectRef, ...]
    policies: Mapping[ObjectRef, ResolvedPolicy] = field(default_factory=dict)
    running: frozenset[str] = frozenset()
    #: CustomPolicy ref -> the frozen set to record in ``status.frozenRules`` (captured by this call), or
    #: None: drop the stored one (it follows updates again). Absent: keep what is stored.
    frozen_capture: Mapping[ObjectRef, tuple[str, ...] | None] = field(default_factory=dict)


@dataclass
class LayerMemo:
    """Memo for repeated ``build_layer`` calls (the renderer keeps one in its ``RenderCache``).

    Keeps each exception object's outcome (its rendered entry, the items appending it, diagnostics),
    keyed by its ref and checked against the object (the same or an equal one, so a changed object is
    never taken for the old one): an unchanged object yields the very same item objects, which the
    renderer's dump cache then recognises without looking inside. An outcome is reused unless a policy
    it names resolves differently from the previous call, or a rule it may bind to started or stopped
    running (``context`` holds what the previous call resolved); otherwise its rendered entry and items
    still are (they depend on the object alone). CustomPolicy resolutions are reused (by name, checked
    likewise) while the managed policies and rule names are unchanged (``policy_context``). Results are
    the same with or without the memo; only what the latest call used is kept.
    """

    context: tuple[Any, ...] | None = None
    outcomes: dict[tuple[str, str, str], _Outcome] = field(default_factory=dict)
    policy_context: tuple[Any, ...] | None = None
    policies: dict[str, _PolicyOutcome] = field(default_factory=dict)


@dataclass(frozen=True)
class _PolicyOutcome:
    """How one CustomPolicy resolved (``resolved`` None: its basedOn names no ManagedPolicy)."""

    policy: CustomPolicyInput
    parsed: CustomRules | None
    diagnostics: tuple[ObjectDiagnostic, ...]
    resolved: ResolvedPolicy | None
    captured: tuple[str, ...] | None = None  # the frozen set this resolution captured


def drops_frozen_set(policy: CustomPolicyInput) -> bool:
    """``policy`` has a stored frozen set but no longer freezes (``followUpdates: true`` or no ``basedOn``)."""
    freezes = policy.based_on is not None and not policy.based_on.follow_updates
    return policy.frozen_rules is not None and not freezes


def _needs_capture(policy: CustomPolicyInput) -> bool:
    """A frozen policy with no recorded frozen set and no explicit ``spec.rules`` list."""
    based = policy.based_on
    return based is not None and not based.follow_updates and policy.frozen_rules is None and not policy.rules


@dataclass(frozen=True)
class _Outcome:
    """What step 4 of ``build_layer`` did for one PolicyException / ClusterPolicyException object."""

    exc: ExceptionInput
    expired_now: bool
    targeting: tuple[ObjectDiagnostic, ...]  # diagnostics about the policies and rules it names
    unknown_policy: bool  # it names a policy that does not resolve: the object is invalid
    binding: tuple[ObjectDiagnostic, ...]  # diagnostics from rendering and binding it to rules
    expired: bool
    bad_entry: bool
    section: Section | None
    rendered: RenderedException | None  # None: not rendered (it names a missing policy)
    candidates: frozenset[str]  # the rules it may bind to (whether each runs decides)


def _same(a: object, b: object) -> bool:
    return a is b or a == b


def _append_item(name: str, entry: Mapping[str, Any], old: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any]:
    item = old.get(name)
    if item is None:
        item = {"rule": name, "exceptions": [entry], "override": {"exceptions": "append"}}
    return item


def _render_guarded(
    exc: ExceptionInput, now: datetime, index: int, lists: Mapping[str, Sequence[str]]
) -> RenderedException:
    """``render_exception``, with any failure on this object's values turned into its own diagnostic:
    one object's input must never abort the render of everyone else's (docs/limits.md)."""
    try:
        return render_exception(exc, now, index, lists)
    except Exception as err:  # the object is excluded, with what went wrong
        diag = ObjectDiagnostic(exc.ref, f"{exc.path}.match", f"cannot be rendered: {type(err).__name__}: {err}",
                                "render-failed")
        return RenderedException(None, (diag,))


def scope_expression(scope: Scope, lists: Container[str] = ()) -> str:
    """``k8s.ns.name in (a, b) and not k8s.ns.name in (c)``; namespace names are DNS labels, quoted only
    when one is also the name of a list in ``lists`` (Falco would replace it by the list's items)."""

    def names(ns: Sequence[str]) -> str:
        return ", ".join(f'"{n}"' if n in lists else n for n in ns)

    parts = []
    if scope.include:
        parts.append(f"{NAMESPACE_FIELD} in ({names(scope.include)})")
    if scope.exclude:
        parts.append(f"not {NAMESPACE_FIELD} in ({names(scope.exclude)})")
    return " and ".join(parts)


def scoped_condition(condition: str, scopes: Sequence[Scope], lists: Container[str] = ()) -> str:
    """``(<condition>) and (<union of scopes>)``, the only safe way to narrow a Falco condition."""
    exprs = sorted({scope_expression(s, lists) for s in scopes})
    union = exprs[0] if len(exprs) == 1 else " or ".join(f"({e})" for e in exprs)
    return f"({condition.strip()}) and ({union})"


def _unique(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _inline_items(
    upstream: Ruleset, custom: Sequence[tuple[CustomPolicyInput, CustomRules | None]], fail: Callable[[ObjectRef, str, str, str], None]
) -> tuple[dict[str, Rule], list[tuple[CustomPolicyInput, CustomRules | None]]]:
    """Step 1: the rules as they stand after upstream and every CustomPolicy's inline items, and the
    policies whose items do not clash with another policy's."""
    rules: dict[str, Rule] = dict(upstream.rules)
    claimed: dict[tuple[str, str], str] = {}
    custom_ok: list[tuple[CustomPolicyInput, CustomRules | None]] = []
    for policy, parsed in sorted(custom, key=lambda pc: pc[0].name):
        if parsed is not None:
            clash = sorted(k for k in parsed.defined | parsed.touched if k in claimed)
            if clash:
                kind, name = clash[0]
                fail(
                    policy.ref,
                    "spec.falcoRules",
                    f'{kind} "{name}" is already defined or overridden by CustomPolicy {claimed[clash[0]]}; '
                    "only one policy may own an item",
                    "item-owned-elsewhere",
                )
                continue
            for key in parsed.defined | parsed.touched:
                claimed[key] = policy.name
            rules.update(parsed.rules)
        custom_ok.append((policy, parsed))
    return rules, custom_ok


def _resolve_managed(
    managed: Sequence[ManagedPolicyInput], rules: Mapping[str, Rule], warn: Callable[[ObjectRef, str, str, str], None]
) -> tuple[dict[ObjectRef, ResolvedPolicy], dict[str, ResolvedPolicy]]:
    """Step 2a: what each ManagedPolicy covers and runs (by ref, and by name)."""
    resolved: dict[ObjectRef, ResolvedPolicy] = {}
    managed_by_name: dict[str, ResolvedPolicy] = {}
    for mp in sorted(managed, key=lambda m: m.name):
        ref = ObjectRef("ManagedPolicy", mp.name)
        names = {r.name for r in mp.rules}
        gone = [r.name for r in mp.rules if r.name not in rules]
        for name in gone:
            warn(ref, "spec.rules", f'rule "{name}" no longer exists upstream; ignored', "vanished-rule")
        included = _unique([r.name for r in mp.rules if r.enabled and r.name in rules])
        for i, name in enumerate(mp.disabled_rules):
            if name not in names:
                warn(
                    ref,
                    f"spec.disabledRules[{i}]",
                    f'no rule named "{name}" in this policy (it may have '
                    "been removed upstream); kept in your choices",
                    "missing-disabled-rule",
                )
        disabled = set(mp.disabled_rules)
        rp = ResolvedPolicy(
            ref, mp.effective_enabled, included, tuple(n for n in included if n not in disabled), mp.scope
        )
        resolved[ref] = rp
        managed_by_name[mp.name] = rp
    return resolved, managed_by_name


def _resolve_custom(
    policy: CustomPolicyInput, parsed: CustomRules | None, managed_by_name: Mapping[str, ResolvedPolicy],
    rules: Mapping[str, Rule],
) -> _PolicyOutcome:
    """Step 2b: what one CustomPolicy covers and runs, with its warnings."""
    found: list[ObjectDiagnostic] = []

    def note(path: str, msg: str, id_: str) -> None:
        found.append(ObjectDiagnostic(policy.ref, path, msg, id_, "warning"))

    ref = policy.ref
    base: list[str] = []
    captured: tuple[str, ...] | None = None
    if policy.based_on is not None:
        target = managed_by_name.get(policy.based_on.managed_policy)
        if target is None:
            found.append(ObjectDiagnostic(
                ref,
                "spec.basedOn.managedPolicy",
                f'no ManagedPolicy named "{policy.based_on.managed_policy}"',
                "unknown-policy",
            ))
            return _PolicyOutcome(policy, parsed, tuple(found), None)
        if policy.based_on.follow_updates:
            base = list(target.included)
        elif policy.frozen_rules is not None:
            base = list(policy.frozen_rules)
        elif _needs_capture(policy):
            # First render of a frozen policy: its frozen set is what the managed policy includes
            # now, sorted (a set, shown in status), and this very render already uses it.
            captured = tuple(sorted(target.included))
            base = list(captured)
    candidates = _unique([*base, *policy.rules])
    for name in candidates:
        if name not in rules:
            if name in policy.rules:
                where = "spec.rules"
            elif policy.frozen_rules is not None:
                where = "status.frozenRules"
            else:
                where = "spec.basedOn"
            note(where, f'rule "{name}" does not exist in any source; ignored', "vanished-rule")
    defined = parsed.defined_rules if parsed is not None else ()
    included = _unique([n for n in candidates if n in rules] + [n for n in defined if n in rules])
    for i, name in enumerate(policy.disabled_rules):
        if name not in included:
            note(f"spec.disabledRules[{i}]", f'no rule named "{name}" in this policy', "missing-disabled-rule")
    # A rule the policy itself defines with enabled: false stays off, as its author wrote it.
    off = set(policy.disabled_rules) | {n for n in defined if n in rules and not rules[n].enabled}
    rp = ResolvedPolicy(
        ref,
        policy.enabled,
        included,
        tuple(n for n in included if n not in off),
        policy.scope,
        policy.priority_override,
    )
    return _PolicyOutcome(policy, parsed, tuple(found), rp, captured)


def _desired_rules(
    rules: Mapping[str, Rule], resolved: Mapping[ObjectRef, ResolvedPolicy], lists: Container[str], warn: Callable[[ObjectRef, str, str, str], None]
) -> tuple[list[Mapping[str, Any]], list[tuple[ObjectRef, ...]], frozenset[str]]:
    """Step 3: the override item of every rule whose desired state differs from upstream's, who shaped
    each, and the names of the rules that run."""
    runners: dict[str, list[ResolvedPolicy]] = {}
    for rp in resolved.values():
        if rp.enabled:
            for name in rp.runs:
                runners.setdefault(name, []).append(rp)
    override_items: list[Mapping[str, Any]] = []
    shapers: list[tuple[ObjectRef, ...]] = []
    for name in sorted(rules):
        rule = rules[name]
        by = runners.get(name, [])
        item: dict[str, Any] = {"rule": name}
        ov: dict[str, str] = {}
        if by:
            scopes = [rp.scope for rp in by]
            if all(not s.is_empty for s in scopes):
                if rule.source == "syscall":
                    item["condition"] = scoped_condition(rule.condition, scopes, lists)
                    ov["condition"] = "replace"
                else:
                    for rp in by:
                        warn(
                            rp.ref,
                            "spec.scope",
                            f'rule "{name}" has source {rule.source}, which has no '
                            f"{NAMESPACE_FIELD} field; it runs unscoped",
                            "scope-not-applicable",
                        )
            wanted = [rp.priority for rp in by if rp.priority]
            if wanted:
                priority = min(wanted, key=PRIORITIES.index)
                if priority != rule.priority:
                    item["priority"] = priority
                    ov["priority"] = "replace"
        if bool(by) != rule.enabled:
            item["enabled"] = bool(by)
            ov["enabled"] = "replace"
        if ov:
            item["override"] = ov
            override_items.append(item)
            shaped = [rp.ref for rp in by if "condition" in ov or (rp.priority and "priority" in ov)]
            shapers.append(tuple(sorted(set(shaped))))
    running = frozenset(runners)
    return override_items, shapers, running


@dataclass
class _Binder:
    """Step 4's context: binds one exception object to the running rules of the policies it names."""

    rules: Mapping[str, Rule]
    running: frozenset[str]
    resolved: Mapping[ObjectRef, ResolvedPolicy]
    all_custom: set[str]
    list_items: Mapping[str, tuple[str, ...]]
    now: datetime
    included_sets: dict[ObjectRef, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Policies are cluster-scoped (namespace ""); sets make the membership tests below cheap.
        self.by_name = {(ref.kind, ref.name): rp for ref, rp in self.resolved.items() if not ref.namespace}

    def included_set(self, rp: ResolvedPolicy) -> frozenset[str]:
        got = self.included_sets.get(rp.ref)
        if got is None:
            got = self.included_sets[rp.ref] = frozenset(rp.included)
        return got

    def targets_of(self, exc: ExceptionInput, out: list[ObjectDiagnostic]) -> tuple[list[str], bool]:
        targets: list[str] = []
        unknown = False
        for i, t in enumerate(exc.policies):
            target = self.by_name.get((t.kind, t.name))
            if target is None:
                known = t.kind == "CustomPolicy" and t.name in self.all_custom
                out.append(ObjectDiagnostic(
                    exc.ref,
                    f"spec.policies[{i}]",
                    f'{t.kind} "{t.name}" is invalid and left out' if known else f'no {t.kind} named "{t.name}"',
                    "unknown-policy",
                ))
                unknown = True
                continue
            covered = self.included_set(target)
            for j, r in enumerate(t.rules):
                if r not in covered:
                    out.append(ObjectDiagnostic(
                        exc.ref,
                        f"spec.policies[{i}].rules[{j}]",
                        f'{t.kind} {t.name} has no rule "{r}"; ignored',
                        "unknown-rule",
                        "warning",
                    ))
            targets.extend(r for r in (t.rules or target.included) if r in covered)
        return targets, unknown

    def bind(
        self, exc: ExceptionInput, index: int, targets: list[str], out: list[ObjectDiagnostic], old: _Outcome | None = None
    ) -> tuple[RenderedException, Section | None]:
        """The exception rendered and bound to its target rules; ``old``: its previous outcome, whose
        rendered entry and items are taken again when it was not expired (they depend on it alone)."""
        if old is not None and old.rendered is not None and not old.rendered.expired and not is_expired(exc, self.now):
            rendered = old.rendered
            previous = {str(i["rule"]): i for i in old.section.items} if old.section is not None else {}
        else:
            rendered = _render_guarded(exc, self.now, index, self.list_items)
            previous = {}
        out.extend(rendered.diagnostics)
        if rendered.expired or rendered.entry is None:
            return rendered, None
        items: list[Mapping[str, Any]] = []
        for name in sorted(set(targets)):
            if name not in self.running:
                continue  # a rule that does not run needs no exception
            if exc.ref.kind == "PolicyException" and self.rules[name].source != "syscall":
                out.append(ObjectDiagnostic(
                    exc.ref,
                    exc.path,
                    f'rule "{name}" has source {self.rules[name].source}, which has no '
                    f"{NAMESPACE_FIELD} field; not applied to it",
                    "exception-not-applicable",
                    "warning",
                ))
                continue
            items.append(_append_item(name, rendered.entry, previous))
        return rendered, (Section(exc.ref, tuple(items)) if items else None)


def build_layer(
    upstream: Ruleset,
    managed: Sequence[ManagedPolicyInput],
    custom: Sequence[tuple[CustomPolicyInput, CustomRules | None]],
    exceptions: Sequence[ExceptionInput],
    now: datetime,
    memo: LayerMemo | None = None,
) -> Layer:
    """Resolve every policy and exception against the loaded rules and produce the layer's items.

    ``memo`` (optional) makes a repeated call cheap; it is updated to what this call used.
    """
    used = LayerMemo()
    diags: list[ObjectDiagnostic] = []
    invalid: set[ObjectRef] = set()

    def warn(ref: ObjectRef, path: str, msg: str, id_: str) -> None:
        diags.append(ObjectDiagnostic(ref, path, msg, id_, "warning"))

    def fail(ref: ObjectRef, path: str, msg: str, id_: str) -> None:
        diags.append(ObjectDiagnostic(ref, path, msg, id_))
        invalid.add(ref)

    # 1. The rules as they stand after upstream and every CustomPolicy's inline items.
    rules, custom_ok = _inline_items(upstream, custom, fail)

    # 2. What each policy covers and runs.
    resolved, managed_by_name = _resolve_managed(managed, rules, warn)
    custom_valid: list[tuple[CustomPolicyInput, CustomRules | None]] = []

    # A CustomPolicy resolves from itself, its parsed falcoRules, the managed policies and which rules
    # exist (and whether the ones it defines are enabled): while those are the same, reuse its outcome.
    defined_state = {
        n: rules[n].enabled for _, parsed in custom_ok if parsed is not None for n in parsed.defined_rules if n in rules
    }
    policy_context = (managed_by_name, frozenset(rules), defined_state)
    reuse_policies = memo is not None and memo.policy_context == policy_context
    used.policy_context = policy_context
    frozen_capture: dict[ObjectRef, tuple[str, ...] | None] = {}
    for policy, parsed in custom_ok:
        got = memo.policies.get(policy.name) if reuse_policies and memo is not None else None
        if got is None or got.parsed is not parsed or not (got.policy is policy or got.policy == policy):
            got = _resolve_custom(policy, parsed, managed_by_name, rules)
        used.policies[policy.name] = got
        diags.extend(got.diagnostics)
        if drops_frozen_set(policy):
            frozen_capture[policy.ref] = None
        if got.resolved is None:
            invalid.add(policy.ref)
            continue
        if got.captured is not None:
            frozen_capture[policy.ref] = got.captured
        resolved[policy.ref] = got.resolved
        custom_valid.append((policy, parsed))

    # 3. Desired state of every rule.
    override_items, shapers, running = _desired_rules(rules, resolved, upstream.lists, warn)

    # 4. Exceptions, each bound to the running rules of the policies it names.
    all_custom = {p.name for p, _ in custom}
    exception_sections: list[Section] = []
    expired: list[ObjectRef] = []
    # Falco substitutes lists textually into exceptions: their rendering is proven against them.
    list_items = expand_lists((n, li.items) for n, li in upstream.lists.items())
    binder = _Binder(rules, running, resolved, all_custom, list_items, now)
    # (kind, name, namespace) is ObjectRef's own order, without its slow generated comparisons
    keys = [(e.ref.kind, e.ref.name, e.ref.namespace) for e in exceptions]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    # With one object per ref and none of them already invalid, an object's outcome depends only on
    # itself, whether it has expired and the context: it can be computed (or reused) on its own.
    invalid_keys = {(r.kind, r.name, r.namespace) for r in invalid}
    alone = all(keys[a] != keys[b] for a, b in itertools.pairwise(order)) and not any(
        k in invalid_keys for k in keys
    )
    sources = {n: rules[n].source for n in running}
    context = (resolved, running, sources, frozenset(all_custom), upstream.lists)
    # What changed since the previous call: policies that resolve differently (or appeared, vanished)
    # and rules that started or stopped running or changed source. An outcome that names none of
    # those policies and binds to none of those rules is still right. None: reuse nothing.
    changed_policies: set[tuple[str, str]] | None = None
    changed_rules: set[str] = set()
    # An exception's rendering depends on the upstream lists too (exceptions_render), so none is
    # reused across a change of them.
    lists_same = memo is not None and memo.context is not None and _same(memo.context[4], upstream.lists)
    if memo is not None and alone and memo.context is not None and lists_same:
        old_resolved, old_running, old_sources, old_custom, _ = memo.context
        changed_policies = {
            (ref.kind, ref.name)
            for ref in resolved.keys() | old_resolved.keys()
            if not _same(resolved.get(ref), old_resolved.get(ref))
        }
        changed_policies |= {("CustomPolicy", n) for n in all_custom ^ old_custom}
        changed_rules = set(running ^ old_running)
        changed_rules |= {n for n in running & old_running if sources[n] != old_sources[n]}
    outcomes: list[_Outcome] = []
    work: list[tuple[ExceptionInput, int, list[str]]] = []
    for position in order:
        exc = exceptions[position]
        if not alone:
            found: list[ObjectDiagnostic] = []
            targets, unknown = binder.targets_of(exc, found)
            diags.extend(found)
            if unknown:
                invalid.add(exc.ref)
            work.append((exc, 0, targets))
            continue
        expired_now = is_expired(exc, now)
        # By ref, then the same object or an equal one (the operator parses objects anew each time).
        hit = memo.outcomes.get(keys[position]) if memo is not None and lists_same else None
        if hit is not None and not (hit.exc is exc or hit.exc == exc):
            hit = None
        if (
            hit is None
            or changed_policies is None
            or hit.expired_now != expired_now
            or any((t.kind, t.name) in changed_policies for t in exc.policies)
            or not hit.candidates.isdisjoint(changed_rules)
        ):
            first: list[ObjectDiagnostic] = []
            targets, unknown = binder.targets_of(exc, first)
            later: list[ObjectDiagnostic] = []
            if unknown:
                hit = _Outcome(exc, expired_now, tuple(first), True, (), False, False, None, None, frozenset())
            else:
                rendered, section = binder.bind(exc, 0, targets, later, hit)
                hit = _Outcome(exc, expired_now, tuple(first), False, tuple(later), rendered.expired,
                               rendered.entry is None and not rendered.expired, section, rendered,
                               frozenset(targets))
        used.outcomes[keys[position]] = hit
        diags.extend(hit.targeting)
        if hit.unknown_policy:
            invalid.add(exc.ref)
        outcomes.append(hit)
    used.context = context if alone else None
    for policy, _ in custom_valid:
        rp = resolved[policy.ref]
        covered = binder.included_set(rp)
        for i, exc in enumerate(policy.exceptions):
            for j, r in enumerate(exc.rules):
                if r not in covered:
                    warn(
                        exc.ref,
                        f"{exc.path}.rules[{j}]",
                        f'this policy has no rule "{r}"; ignored',
                        "unknown-rule",
                    )
            work.append((exc, i, [r for r in (exc.rules or rp.included) if r in covered]))
    for o in outcomes:
        if o.unknown_policy:
            continue
        diags.extend(o.binding)
        if o.expired:
            expired.append(o.exc.ref)
        elif o.bad_entry:
            invalid.add(o.exc.ref)
        elif o.section is not None:
            exception_sections.append(o.section)
    for exc, index, targets in work:
        if exc.ref in invalid:
            continue
        found = []
        rendered, section = binder.bind(exc, index, targets, found)
        diags.extend(found)
        if rendered.expired:
            expired.append(exc.ref)
        elif rendered.entry is None:
            invalid.add(exc.ref)
        elif section is not None:
            exception_sections.append(section)

    sections: list[Section] = [
        Section(p.ref, parsed.items, defines=True)
        for p, parsed in custom_valid
        if parsed is not None and parsed.items
    ]
    sections.extend(Section(None, (item,), shaped_by=by) for item, by in zip(override_items, shapers, strict=True))
    sections.extend(exception_sections)
    if memo is not None:
        memo.context, memo.outcomes = used.context, used.outcomes
        memo.policy_context, memo.policies = used.policy_context, used.policies
    return Layer(
        sections=tuple(sections),
        diagnostics=tuple(diags),
        invalid=frozenset(invalid),
        expired=tuple(expired),
        policies=resolved,
        running=running,
        frozen_capture={ref: frozen_capture[ref] for ref in sorted(frozen_capture)},
    )
