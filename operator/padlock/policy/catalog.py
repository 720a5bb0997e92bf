"""The policy catalog: which managed policies exist and which upstream rules each one selects.

Format (``apiVersion: padlock.dev/catalog/v1``; documented for users in docs/catalog.md)::

    apiVersion: padlock.dev/catalog/v1
    name: padlock-builtin            # catalog name, recorded in each ManagedPolicy's spec.catalog
    version: 1.0.0                   # catalog version, recorded likewise
    assignment: firstMatch           # firstMatch: a rule joins the first policy (in this order) that
                                     # selects it; all: every policy that selects it (default: all)
    policies:
      - name: credential-access      # the ManagedPolicy object name (DNS-1123 subdomain)
        displayName: Credential access
        description: Rules that detect attempts to read or steal credentials.
        defaultEnabled: true         # used while the user has not set spec.enabled (unset: false)
        select:                      # every given criterion must hold (an empty list is no criterion)
          tagsAny: [mitre_credential_access]   # the rule has at least one of these tags
          tagsAll: []                          # the rule has all of these tags
          maturity: [stable]                   # the rule has one of the tags maturity_<m>
          sources: []                          # the rule comes from one of these RuleSources

The built-in catalog ships as ``padlock/policy/data/catalog.yaml``. A rules artifact may carry its own
``padlock-catalog.yaml``; ``merge`` lays it over the built-in one: a policy with a known name replaces
that definition, a new name adds a policy; the built-in catalog's assignment mode stays in force. Parsing never raises: problems come back as diagnostics
naming the catalog file, the field path and the problem.

Who calls it: ``padlock.policy.managed.build_managed`` (selection), the operator flows and
``padlock render`` (loading). Pure apart from ``builtin_text``, which reads package data shipped
with the code (no runtime configuration, no network).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from padlock.api.managedpolicy import DEFAULT_ENABLED
from padlock.engine import safe_yaml

API_VERSION = "padlock.dev/catalog/v1"
ARTIFACT_FILE = "padlock-catalog.yaml"
MATURITIES = ("stable", "incubating", "sandbox", "deprecated")
FIRST_MATCH = "firstMatch"
ALL = "all"
ASSIGNMENTS = (FIRST_MATCH, ALL)
TACTIC_PREFIX = "mitre_"

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_POLICY_KEYS = {"name", "displayName", "description", "defaultEnabled", "select"}
_SELECT_KEYS = {"tagsAny", "tagsAll", "maturity", "sources"}


@dataclass(frozen=True)
class Selector:
    """Which rules a policy selects. All given criteria must hold; an empty tuple is no criterion."""

    tags_any: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    maturity: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def matches(self, tags: Sequence[str], rule_source: str) -> bool:
        tagset = set(tags)
        if self.tags_any and tagset.isdisjoint(self.tags_any):
            return False
        if any(t not in tagset for t in self.tags_all):
            return False
        if self.maturity and tagset.isdisjoint(f"maturity_{m}" for m in self.maturity):
            return False
        return not (self.sources and rule_source not in self.sources)


@dataclass(frozen=True)
class CatalogPolicy:
    """One policy definition, remembering the catalog (name, version) that defined it."""

    name: str
    display_name: str
    description: str
    default_enabled: bool
    select: Selector
    catalog_name: str
    catalog_version: str


@dataclass(frozen=True)
class Catalog:
    name: str
    version: str
    policies: tuple[CatalogPolicy, ...]
    #: ``firstMatch``: each rule belongs to the first policy (in catalog order) that selects it, so no
    #: rule has two owners; ``all``: every selecting policy includes it (policies may overlap)
    assignment: str = ALL

    def assign(self, tags: Sequence[str], rule_source: str) -> tuple[CatalogPolicy, ...]:
        """The policies that include a rule with these tags from this RuleSource, in catalog order."""
        chosen = []
        for policy in self.policies:
            if policy.select.matches(tags, rule_source):
                if self.assignment == FIRST_MATCH:
                    return (policy,)
                chosen.append(policy)
        return tuple(chosen)


def tactics_of(tags: Sequence[str]) -> tuple[str, ...]:
    """The MITRE ATT&CK tactic tags (``mitre_<tactic>``) of a rule, in tag order."""
    return tuple(t for t in tags if t.startswith(TACTIC_PREFIX))


@dataclass(frozen=True)
class CatalogProblem:
    """A problem in a catalog file: ``<origin>: <path>: <message>``."""

    origin: str
    path: str
    message: str

    def one_line(self) -> str:
        return f"{self.origin}: {self.path}: {self.message} [invalid-catalog]"


def builtin_text() -> str:
    """Text of the catalog shipped in the package (``padlock/policy/data/catalog.yaml``)."""
    return resources.files("padlock.policy").joinpath("data/catalog.yaml").read_text(encoding="utf-8")


def builtin() -> Catalog:
    """The shipped catalog; it is tested to parse cleanly, so a problem here is a packaging bug."""
    catalog, problems = parse(builtin_text(), "padlock/policy/data/catalog.yaml")
    if catalog is None or problems:
        raise RuntimeError("; ".join(p.one_line() for p in problems))
    return catalog


def _strings(value: Any, path: str, origin: str, problems: list[CatalogProblem]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.append(CatalogProblem(origin, path, "must be a list of non-empty strings"))
        return ()
    return tuple(value)


def parse(text: str, origin: str) -> tuple[Catalog | None, list[CatalogProblem]]:
    """Parse and validate catalog text. Returns (None, problems) when it cannot be used at all."""
    problems: list[CatalogProblem] = []
    try:
        doc = safe_yaml.load(text)
    except safe_yaml.YamlError as exc:
        where = f"line {exc.line}" if exc.line else "document"
        what = "not valid YAML: " if exc.code == "LOAD_ERR_YAML_PARSE" else ""
        return None, [CatalogProblem(origin, where, f"{what}{exc.message}")]
    if not isinstance(doc, Mapping):
        return None, [
            CatalogProblem(origin, "(root)", "must be a map with apiVersion, name, version, policies")
        ]
    if doc.get("apiVersion") != API_VERSION:
        problems.append(
            CatalogProblem(origin, "apiVersion", f'must be "{API_VERSION}", got {doc.get("apiVersion")!r}')
        )
    name, version = doc.get("name"), doc.get("version")
    for key, value in (("name", name), ("version", version)):
        if not isinstance(value, str) or not value:
            problems.append(CatalogProblem(origin, key, "is required (a non-empty string)"))
    for key in sorted(set(doc) - {"apiVersion", "name", "version", "assignment", "policies"}):
        problems.append(CatalogProblem(origin, str(key), "unknown key"))
    assignment = doc.get("assignment", ALL)
    if assignment not in ASSIGNMENTS:
        problems.append(
            CatalogProblem(origin, "assignment", f'must be one of {", ".join(ASSIGNMENTS)}, got {assignment!r}')
        )
    raw_policies = doc.get("policies")
    if not isinstance(raw_policies, list):
        problems.append(CatalogProblem(origin, "policies", "must be a list"))
        raw_policies = []
    policies: list[CatalogPolicy] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_policies):
        path = f"policies[{i}]"
        if not isinstance(raw, Mapping):
            problems.append(CatalogProblem(origin, path, "must be a map"))
            continue
        before = len(problems)
        for key in sorted(set(raw) - _POLICY_KEYS):
            problems.append(CatalogProblem(origin, f"{path}.{key}", "unknown key"))
        pname = raw.get("name")
        if not isinstance(pname, str) or not _NAME_RE.match(pname):
            problems.append(
                CatalogProblem(origin, f"{path}.name", f"{pname!r} is not a valid Kubernetes object name")
            )
        elif pname in seen:
            problems.append(CatalogProblem(origin, f"{path}.name", f'duplicate policy name "{pname}"'))
        for key in ("displayName", "description"):
            if not isinstance(raw.get(key), str) or not raw.get(key):
                problems.append(CatalogProblem(origin, f"{path}.{key}", "is required (a non-empty string)"))
        default_enabled = raw.get("defaultEnabled", DEFAULT_ENABLED)
        if not isinstance(default_enabled, bool):
            problems.append(CatalogProblem(origin, f"{path}.defaultEnabled", "must be true or false"))
        sel = raw.get("select")
        selector = Selector()
        if not isinstance(sel, Mapping):
            problems.append(CatalogProblem(origin, f"{path}.select", "is required (a map)"))
        else:
            for key in sorted(set(sel) - _SELECT_KEYS):
                problems.append(CatalogProblem(origin, f"{path}.select.{key}", "unknown key"))
            selector = Selector(
                tags_any=_strings(sel.get("tagsAny"), f"{path}.select.tagsAny", origin, problems),
                tags_all=_strings(sel.get("tagsAll"), f"{path}.select.tagsAll", origin, problems),
                maturity=_strings(sel.get("maturity"), f"{path}.select.maturity", origin, problems),
                sources=_strings(sel.get("sources"), f"{path}.select.sources", origin, problems),
            )
            for j, m in enumerate(selector.maturity):
                if m not in MATURITIES:
                    problems.append(
                        CatalogProblem(
                            origin,
                            f"{path}.select.maturity[{j}]",
                            f'unknown maturity "{m}" (expected one of {", ".join(MATURITIES)})',
                        )
                    )
            if not (selector.tags_any or selector.tags_all or selector.maturity):
                # Without a tag or maturity criterion a policy would swallow every rule of a source.
                problems.append(
                    CatalogProblem(
                        origin, f"{path}.select", "must give at least one of tagsAny, tagsAll, maturity"
                    )
                )
        if len(problems) == before and isinstance(pname, str):
            seen.add(pname)
            policies.append(
                CatalogPolicy(
                    name=pname,
                    display_name=raw["displayName"],
                    description=raw["description"],
                    default_enabled=default_enabled,
                    select=selector,
                    catalog_name=str(name),
                    catalog_version=str(version),
                )
            )
    if problems:
        return None, problems
    return Catalog(str(name), str(version), tuple(policies), str(assignment)), []


def merge(base: Catalog, overlay: Catalog) -> Catalog:
    """Lay an artifact's catalog over ``base``: same name replaces, new names are appended in order."""
    by_name = {p.name: p for p in overlay.policies}
    merged = [by_name.pop(p.name, p) for p in base.policies]
    merged.extend(p for p in overlay.policies if p.name in by_name)
    return Catalog(
        base.name, f"{base.version}+{overlay.name}.{overlay.version}", tuple(merged), base.assignment
    )


def from_bundle(
    base: Catalog, files: Sequence[tuple[str, str]], origin_prefix: str = ""
) -> tuple[Catalog, list[CatalogProblem]]:
    """The catalog in force for a rules bundle: ``base`` merged with its ``padlock-catalog.yaml`` if any.

    An invalid artifact catalog is reported and ignored (the built-in catalog still applies), so a bad
    catalog in a release cannot take managed policies away.
    """
    for fname, text in files:
        if fname.rsplit("/", 1)[-1] == ARTIFACT_FILE:
            overlay, problems = parse(text, f"{origin_prefix}{fname}")
            if overlay is None:
                return base, problems
            return merge(base, overlay), []
    return base, []
