"""A CustomPolicy's inline ``falcoRules``: parsed with the rules core in the context of upstream.

The inline text is loaded after the upstream files (as it will be in the published set), so it may
use upstream macros and lists and may ``override`` upstream items explicitly. A full definition of
a rule, macro or list whose name upstream already defines is refused: it would silently replace the
upstream item for everyone, which must be asked for with ``override`` instead. Every loader
diagnostic is turned into an ``ObjectDiagnostic`` naming the object, ``spec.falcoRules``, the line and
column inside the inline text, the item and the problem.

Who calls it: ``padlock.policy.layer``. Pure (the loader is pure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import padlock.engine.loader as loader
from padlock.engine import safe_yaml
from padlock.engine.model import Rule, Ruleset, RulesFile
from padlock.policy.policy_objects import ObjectDiagnostic, ObjectRef

KINDS = ("rule", "macro", "list")


@dataclass(frozen=True)
class CustomRules:
    """What one CustomPolicy's falcoRules define and touch, and what was wrong with them."""

    items: tuple[Mapping[str, Any], ...] = ()  # the parsed items, re-emitted verbatim into the layer
    defined_rules: tuple[str, ...] = ()  # full rule definitions (new rules this policy brings)
    defined: frozenset[tuple[str, str]] = frozenset()  # (kind, name) of full definitions
    touched: frozenset[tuple[str, str]] = frozenset()  # (kind, name) of upstream items it overrides
    rules: Mapping[str, Rule] = field(default_factory=dict)  # final text of defined and touched rules
    diagnostics: tuple[ObjectDiagnostic, ...] = ()

    @property
    def valid(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def _kind_of(item: Mapping[str, Any]) -> tuple[str, str] | None:
    for kind in KINDS:
        if kind in item and isinstance(item[kind], str):
            return kind, item[kind]
    return None


def _upstream_has(upstream: Ruleset, kind: str, name: str) -> bool:
    if kind == "rule":
        return name in upstream.rules
    if kind == "macro":
        return name in upstream.macros
    return name in upstream.lists


def parse_custom_rules(
    ref: ObjectRef,
    text: str,
    upstream_files: Sequence[RulesFile],
    upstream: Ruleset,
    *,
    engine_version: str | None = None,
    plugins: Mapping[str, str] | None = None,
    base: loader.LoadState | None = None,
) -> CustomRules:
    """Load ``text`` after ``upstream_files`` and report its problems against ``ref``.

    ``base``: ``loader.prepare(upstream_files, ...)`` when the caller has it (same result, only faster).
    """
    path = "spec.falcoRules"
    fname = f"{ref.name}.falcoRules.yaml"
    diags: list[ObjectDiagnostic] = []
    try:
        doc = safe_yaml.load(text)
    except safe_yaml.YamlError as exc:
        where = f"{path}:{exc.line}:{exc.column}" if exc.line else path
        what = "not valid YAML: " if exc.code == "LOAD_ERR_YAML_PARSE" else ""
        return CustomRules(
            diagnostics=(ObjectDiagnostic(ref, where, f"{what}{exc.message}", exc.id),)
        )
    if doc is None:
        doc = []
    if not isinstance(doc, list) or not all(isinstance(i, Mapping) for i in doc):
        return CustomRules(
            diagnostics=(
                ObjectDiagnostic(
                    ref, path, "must be a YAML list of Falco items (lists, macros, rules)", "yaml-validate"
                ),
            )
        )
    defined: set[tuple[str, str]] = set()
    touched: set[tuple[str, str]] = set()
    defined_rules: list[str] = []
    for i, item in enumerate(doc):
        key = _kind_of(item)
        if key is None:
            continue
        kind, name = key
        is_override = "override" in item or item.get("append") is True
        if (
            not is_override
            and "enabled" in item
            and not {"condition", "output", "desc", "priority"} & set(item)
        ):
            is_override = True  # Falco's deprecated enable-only form acts on an existing rule
        if is_override:
            if _upstream_has(upstream, kind, name):
                touched.add(key)
            continue
        if _upstream_has(upstream, kind, name):
            diags.append(
                ObjectDiagnostic(
                    ref,
                    f"{path}[{i}]",
                    f'{kind} "{name}" is already defined upstream; a redefinition would replace it for every '
                    f"policy: use override: to change it explicitly, or pick another name",
                    "redefines-upstream",
                )
            )
            continue
        defined.add(key)
        if kind == "rule" and name not in defined_rules:
            defined_rules.append(name)
    if base is not None:
        result = loader.load([RulesFile(fname, text)], base=base)
    else:
        result = loader.load(
            [*upstream_files, RulesFile(fname, text)], engine_version=engine_version, plugins=plugins
        )
    for d in [*result.errors, *result.warnings]:
        if d.file == fname:
            where = f"{path}:{d.line}:{d.column}" if d.line else path
            what = f'{d.item_type} "{d.item_name}": ' if d.item_type and d.item_name else ""
            diags.append(ObjectDiagnostic(ref, where, f"{what}{d.message}", d.id, d.severity))
        elif d.severity == "error":
            # Upstream alone is valid, so an upstream error here is caused by this inline text.
            diags.append(ObjectDiagnostic(ref, path, f"breaks upstream: {d.one_line()}", d.id))
    rules = {
        name: rule
        for name, rule in result.ruleset.rules.items()
        if ("rule", name) in defined or ("rule", name) in touched
    }
    return CustomRules(
        items=tuple(doc),
        defined_rules=tuple(defined_rules),
        defined=frozenset(defined),
        touched=frozenset(touched),
        rules=rules,
        diagnostics=tuple(diags),
    )
