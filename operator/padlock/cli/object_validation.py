"""Offline validation of padlock objects for ``padlock validate``: the admission webhook's twin.

Called by ``padlock.cli.validate`` for files holding ``apiVersion: padlock.dev/...`` documents. Two
stages, the same two a ``kubectl apply`` meets in a cluster:

1. schema: every document (multi-document files, ``kind: List`` items too) is parsed with its
   ``padlock.api`` model (``<Kind>.model_validate``), which also runs the Python mirror of the CRD's
   CEL rules; an unknown kind or apiVersion, or a missing ``metadata.name``, is an error;
2. semantics, only when rules are given (``--source`` and/or Falco rules files among FILES): the
   objects are checked by ``padlock.policy.admission.validate`` against the view the webhook would build
   (``padlock.webhook.views.build_view``) from an ``OperatorState`` holding those sources as adopted
   bundles, the managed policies built from the catalog over them (``padlock.cli.objects``), and the
   CustomPolicies found among the objects. ManagedPolicy user choices get the warnings the operator
   would put in status (``padlock.policy.changes``: disabled rules not in the policy). Without rules
   the semantic stage is skipped and one warning says so.

Every finding is a ``padlock.engine.diagnostics.Diagnostic`` (an ``ObjectFinding``) so the text and
JSON output of ``padlock validate`` stay one shape: ``file``/``line``/``column`` locate the object's
``kind:`` key, ``item`` is ``{"type": <Kind>, "name": <namespace/name or name>}``, and ``message``
starts with the field path. Codes (``OBJECT_CODES``) are padlock's own, beside Falco's for rules files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pydantic

from padlock.api import errors as api_errors
from padlock.api import kinds
from padlock.api.common import (
    API_VERSION,
    DNS1123_LABEL,
    DNS1123_SUBDOMAIN,
    GROUP,
)
from padlock.cli import objects
from padlock.engine.diagnostics import CODES, Diagnostic, Severity
from padlock.engine.model import RulesFile
from padlock.flows import state as operator_state
from padlock.policy import admission, catalog, changes, managed
from padlock.policy import policy_objects as po
from padlock.sources import bundles
from padlock.webhook import views

#: code -> (severity, title), for findings about padlock objects.
OBJECT_CODES: Final[dict[str, tuple[Severity, str]]] = {
    "OBJECT_ERR_KIND": ("error", "Not a padlock object of a known kind and apiVersion"),
    "OBJECT_ERR_SCHEMA": ("error", "Object does not match its CRD schema"),
    "OBJECT_ERR_VALIDATE": ("error", "Object refused by the admission checks"),
    "OBJECT_WARNING": ("warning", "Admission warning"),
    "OBJECT_NOT_CHECKED": ("warning", "Not checked"),
}

FILES_SOURCE: Final = "files"
"""Name of the source made of the Falco rules files given as FILES; it loads after every --source."""
FILES_LOAD_ORDER: Final = 99

NAMESPACED: Final = frozenset(k.kind for k in kinds.ALL if k.namespaced)

# The semantic stage never reads the clock: ``changes.next_status`` wants a time for the change list,
# but the only field used here (missing_disabled_rules) does not depend on it.
_UNUSED_NOW: Final = datetime(1970, 1, 1, tzinfo=UTC)

_NAME = re.compile(DNS1123_SUBDOMAIN)
_NAMESPACE = re.compile(DNS1123_LABEL)


@dataclass(frozen=True)
class ObjectFinding(Diagnostic):
    """A ``Diagnostic`` about a padlock object: its code comes from ``OBJECT_CODES``.

    ``one_line()`` reads ``file:line:col: CustomPolicy web-shells: spec.rules[0]: ... [id]``, the
    webhook's wording with the file position in front.
    """

    @property
    def severity(self) -> Severity:
        return OBJECT_CODES[self.code][0] if self.code in OBJECT_CODES else CODES[self.code][0]

    @property
    def title(self) -> str:
        return OBJECT_CODES[self.code][1] if self.code in OBJECT_CODES else CODES[self.code][1]

    def one_line(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}: " if self.file else ""
        what = f"{self.item_type} {self.item_name}: " if self.item_type else ""
        return f"{where}{what}{self.message} [{self.id}]"


@dataclass(frozen=True)
class _Object:
    """A document that passed the kind checks: its location, kind, shown name and body."""

    doc: objects.Document
    kind: str
    name: str
    namespace: str
    body: dict[str, Any]

    @property
    def shown(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def finding(self, code: str, id_: str, message: str) -> ObjectFinding:
        d = self.doc
        return ObjectFinding(code, id_, message, d.file, d.line, d.column, self.kind, self.shown)


def check(
    files: Sequence[RulesFile],
    *,
    source_specs: Sequence[str] = (),
    rules_files: Sequence[RulesFile] = (),
    engine_version: str | None = None,
    plugins: Mapping[str, str] | None = None,
    object_namespace: str = "default",
) -> list[Diagnostic]:
    """Every finding about the padlock objects in ``files``, in file and document order.

    Raises ``objects.InputError`` when a ``--source`` cannot be read (a usage error, exit 2).
    """
    plugin_map = dict(plugins or {})
    found: list[Diagnostic] = []
    good: list[_Object] = []
    seen: dict[tuple[str, str, str], objects.Document] = {}
    for f in files:
        docs, problem = objects.read_documents(f.name, f.text)
        for doc in docs:
            obj, diags = _schema(doc, object_namespace)
            found.extend(diags)
            if obj is None:
                continue
            key = (obj.kind, obj.namespace, obj.name)
            first = seen.setdefault(key, doc)
            if first is not doc:
                found.append(obj.finding("OBJECT_ERR_VALIDATE", "duplicate-object",
                                         f"metadata.name: also defined at {first.file}:{first.line}"))
            elif not any(d.severity == "error" for d in diags):
                good.append(obj)
        if problem is not None:
            found.append(Diagnostic("LOAD_ERR_YAML_PARSE", "yaml-parse", problem.message, problem.file,
                                    problem.line, problem.column))
    if not source_specs and not rules_files:
        if good or found:
            found.append(ObjectFinding(
                "OBJECT_NOT_CHECKED", "semantic-checks-skipped",
                "semantic checks skipped: no --source given, so only the schema of padlock objects was checked "
                "(give the rules sources to check rules, fields, references and namespaces as the webhook does)",
            ))
        return found
    load_orders = {o.name: o.body.get("spec", {}).get("loadOrder", objects.DEFAULT_LOAD_ORDER)
                   for o in good if o.kind == "RuleSource"}
    sources = [objects.read_source(spec, load_orders) for spec in source_specs]
    if rules_files:
        sources.append(po.SourceInput(FILES_SOURCE, FILES_LOAD_ORDER, "local",
                                      tuple((Path(f.name).name, f.text) for f in rules_files)))
    objects.check_unique_names(sources)
    found.extend(_semantics(good, sources, engine_version, plugin_map))
    # Per object in file order: schema findings, then semantic ones (a stable sort keeps that order);
    # findings about no file (a broken source) last.
    order = {f.name: i for i, f in enumerate(files)}
    return sorted(found, key=lambda d: (order.get(d.file, len(order)), d.line, d.column))


# ---------------------------------------------------------------------------------------------
# Schema


def _schema(doc: objects.Document, object_namespace: str) -> tuple[_Object | None, list[Diagnostic]]:
    body = doc.body
    if not isinstance(body, dict):
        return None, [ObjectFinding("OBJECT_ERR_KIND", "not-an-object",
                                    f"this YAML document is a {type(body).__name__}, not a Kubernetes object "
                                    "(a map with apiVersion, kind and metadata)", doc.file, doc.line, doc.column)]
    api, kind = body.get("apiVersion"), body.get("kind")
    kind_text = kind if isinstance(kind, str) else ""
    meta = body.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    name_text = name if isinstance(name, str) else ""
    namespace = ""
    if kind_text in NAMESPACED:
        raw_ns = meta.get("namespace") if isinstance(meta, dict) else None
        # As kubectl apply without -n would: the object lands in the default (or given) namespace.
        namespace = raw_ns if isinstance(raw_ns, str) and raw_ns else object_namespace
    obj = _Object(doc, kind_text, name_text, namespace, body)

    def kind_error(id_: str, message: str) -> tuple[None, list[Diagnostic]]:
        return None, [obj.finding("OBJECT_ERR_KIND", id_, message)]

    if not isinstance(api, str) or not api:
        return kind_error("missing-api-version", f"apiVersion: is required (padlock objects use {API_VERSION})")
    group, _, _version = api.rpartition("/")
    if group != GROUP:
        what = f"{api} {kind_text}".strip()
        return None, [obj.finding("OBJECT_NOT_CHECKED", "not-a-padlock-object",
                                  f"{what} is not a padlock object; not checked")]
    if api != API_VERSION:
        return kind_error("unknown-api-version",
                          f'apiVersion: "{api}" is not served by this build; padlock objects use {API_VERSION}')
    if kind_text not in kinds.BY_KIND:
        shown = kind_text or (json.dumps(kind) if kind is not None else "")
        text = f'"{shown}" is not a padlock kind' if shown else "is required"
        return kind_error("unknown-kind", f"kind: {text} (one of {', '.join(kinds.BY_KIND)})")
    problems: list[Diagnostic] = []
    if not name_text:
        problems.append(obj.finding("OBJECT_ERR_SCHEMA", "invalid-field", "metadata.name: is required"))
    elif len(name_text) > 253 or not _NAME.match(name_text):
        problems.append(obj.finding("OBJECT_ERR_SCHEMA", "invalid-field",
                                    f'metadata.name: "{name_text}" {api_errors.PATTERN_TEXT[DNS1123_SUBDOMAIN]}'))
    if namespace and (len(namespace) > 63 or not _NAMESPACE.match(namespace)):
        problems.append(obj.finding("OBJECT_ERR_SCHEMA", "invalid-field",
                                    f'metadata.namespace: "{namespace}" {api_errors.PATTERN_TEXT[DNS1123_LABEL]}'))
    try:
        api_errors.validate(body)
    except pydantic.ValidationError as exc:
        problems.extend(obj.finding("OBJECT_ERR_SCHEMA", "schema", text) for text in _schema_messages(exc))
    return obj, problems


def _schema_messages(exc: pydantic.ValidationError) -> list[str]:
    # One wording for every entry point: the API models' own error text (``padlock.api.errors``).
    return api_errors.messages(exc)


# ---------------------------------------------------------------------------------------------
# Semantics


def _semantics(
    good: Sequence[_Object], sources: Sequence[po.SourceInput], engine_version: str | None, plugins: dict[str, str]
) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    contents, notes = objects.build_managed(sources, engine_version, plugins)
    for note in notes:
        found.append(ObjectFinding("OBJECT_WARNING", "catalog", note))
    by_name = {c.name: c for c in contents}
    view = views.build_view(_state(good, sources, contents), plugins=plugins, engine_version=engine_version)
    found.extend(_broken_sources(view, sources))
    for obj in good:
        if obj.kind == "ManagedPolicy":
            found.extend(_managed_choices(obj, by_name.get(obj.name)))
        elif obj.kind in ("CustomPolicy", "PolicyException", "ClusterPolicyException"):
            body = obj.body
            if obj.namespace:
                body = {**body, "metadata": {**(body.get("metadata") or {}), "namespace": obj.namespace}}
            for d in admission.validate(body, view):
                code = "OBJECT_ERR_VALIDATE" if d.severity == "error" else "OBJECT_WARNING"
                found.append(obj.finding(code, d.id, f"{d.path}: {d.message}" if d.path else d.message))
    return found


def _broken_sources(view: admission.AdmissionView, sources: Sequence[po.SourceInput]) -> list[Diagnostic]:
    """One error per --source whose rules do not load: the objects could never be published on them.

    The rules files among FILES are left out: their own validation already lists their problems.
    """
    errors = view.upstream_cache.prepared(view).result.errors
    out: list[Diagnostic] = []
    for src in sources:
        if src.name == FILES_SOURCE:
            continue
        # File names in the view are the published ConfigMap keys: <loadOrder>-<source>-<file>.
        prefix = f"{src.load_order:02d}-{src.name}-"
        mine = [d for d in errors if d.file.startswith(prefix)]
        if mine:
            out.append(ObjectFinding(
                "OBJECT_ERR_VALIDATE", "source-invalid",
                f"the rules do not validate ({len(mine)} error(s); padlock validate on its files lists them), "
                f"so no object could be published on them; first: {mine[0].one_line()}",
                item_type="RuleSource", item_name=src.name,
            ))
    return out


def _state(
    good: Sequence[_Object], sources: Sequence[po.SourceInput], contents: Sequence[managed.ManagedPolicyContent]
) -> operator_state.OperatorState:
    """What the operator would hold after adopting ``sources``: the webhook builds its view from this."""
    state = operator_state.OperatorState()
    for src in sources:
        state.upsert({"apiVersion": API_VERSION, "kind": "RuleSource", "metadata": {"name": src.name},
                      "spec": {"loadOrder": src.load_order}})
        files = tuple(RulesFile(n, t) for n, t in src.files if n != catalog.ARTIFACT_FILE)
        state.bundles[src.name] = bundles.Bundle(src.name, src.version, "", files, None, "")
        state.synced.add(src.name)
    for content in contents:
        state.upsert({"apiVersion": API_VERSION, "kind": "ManagedPolicy", "metadata": {"name": content.name},
                      "spec": content.to_spec()})
    for obj in good:
        if obj.kind == "CustomPolicy":
            state.upsert(obj.body)
    return state


def _managed_choices(obj: _Object, content: managed.ManagedPolicyContent | None) -> list[Diagnostic]:
    """A ManagedPolicy in a Git repository holds the user's choices for a policy the operator builds."""
    if content is None:
        return [obj.finding("OBJECT_WARNING", "unknown-policy",
                            f'metadata.name: no managed policy "{obj.name}" in the catalog for these sources; '
                            "its choices are ignored")]
    disabled = obj.body.get("spec", {}).get("disabledRules") or []
    status = changes.next_status(None, (), content.rules, default_enabled=content.default_enabled, enabled=None,
                                 disabled_rules=disabled, now=_UNUSED_NOW, from_version=None, to_version=None)
    missing = set(status.missing_disabled_rules)
    return [
        obj.finding("OBJECT_WARNING", "unknown-disabled-rule",
                    f'spec.disabledRules[{i}]: rule "{rule}" is not in ManagedPolicy "{obj.name}"; '
                    "disabling it has no effect")
        for i, rule in enumerate(disabled) if rule in missing
    ]
