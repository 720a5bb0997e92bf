"""``padlock explain rule NAME``: one rule as a security engineer reads it, and why it runs or not.

Shows the rule's description, condition, output, priority and tags (MITRE ATT&CK tactics and
techniques by name, ``padlock.policy.mitre``), the RuleSource and version it comes from, when it was
added and last changed (from the ManagedPolicies' recorded ``status.changes``), the policies that
include it and whether each runs it (or switched it off, and how), whether it runs in the published
ruleset and who runs it, the scope and exceptions attached to it, and the final condition exactly as
published (``compiled_condition`` of the published files loaded in Falco's read order).

Two ways to get the inputs (a ``World``), one explanation:

* against the cluster (default): ManagedPolicies, CustomPolicies, exceptions and the published
  ConfigMaps, read with the operator's REST client (``--kubeconfig``/``--context``);
* offline (``--source``, as ``padlock render``): the objects in PATHS and the rules sources, rendered
  with ``padlock.policy.effective.render`` exactly as the operator would.

``World``, ``from_cluster`` and ``offline`` are shared with ``padlock show``; ``explain_rule`` and
``to_text`` are pure (the unit tests call them). Wiring and presentation only: what runs is decided
by the core (``padlock.policy.layer`` via the render, ``padlock.policy.running``).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

from padlock.api.managedpolicy import DEFAULT_ENABLED
from padlock.engine import loader, readorder
from padlock.engine.model import Rule, RulesFile
from padlock.policy import mitre, policy_objects
from padlock.policy.running import ref_text

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE = 0, 1, 2
JSON = dict[str, Any]


@dataclass(frozen=True)
class World:
    """What an explanation reads: policy and exception bodies, the published files, who runs what."""

    managed: tuple[JSON, ...]
    custom: tuple[JSON, ...] = ()
    exceptions: tuple[JSON, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)
    #: ``kind/name`` -> the rules the policy runs itself (empty for a disabled policy)
    runs: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: ``kind/name`` -> the rules the policy includes (runs or switched off)
    includes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    plugins: Mapping[str, str] = field(default_factory=dict)
    engine_version: str | None = None
    origin: str = "cluster"

    @functools.cached_property
    def published(self) -> dict[str, Rule]:
        """The rules of the published files, loaded in the order Falco reads them."""
        if not self.files:
            return {}
        ordered = [RulesFile(k, self.files[k]) for k in readorder.read_order(self.files)]
        result = loader.load(ordered, engine_version=self.engine_version, plugins=dict(self.plugins))
        return dict(result.ruleset.rules)

    def managed_by_name(self) -> dict[str, JSON]:
        return {str(m["metadata"]["name"]): m for m in self.managed}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("status") or {}


def managed_runs(obj: Mapping[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
    """(included, run) rules of a ManagedPolicy body, by the same rule the renderer applies."""
    spec = _spec(obj)
    included = frozenset(str(r["name"]) for r in spec.get("rules") or []
                         if isinstance(r, Mapping) and r.get("enabled", True))
    on = policy_objects.effective_enabled(spec.get("enabled"), bool(spec.get("defaultEnabled", DEFAULT_ENABLED)))
    return included, (included - set(spec.get("disabledRules") or []) if on else frozenset())


def custom_runs(obj: Mapping[str, Any], managed: Mapping[str, frozenset[str]] | None = None,
                ) -> tuple[frozenset[str], frozenset[str]]:
    """(included, run) rules of a CustomPolicy body, from the status the operator wrote (and, for a
    policy following a managed one, that policy's rules: ``managed`` maps names to included rules)."""
    status = _status(obj)
    running = set(status.get("runningRules") or [])
    by_others = {str(s.get("rule")) for s in status.get("stillRunning") or [] if isinstance(s, Mapping)}
    spec = _spec(obj)
    included = running | by_others | set(spec.get("rules") or []) | set(status.get("frozenRules") or [])
    based = spec.get("basedOn") or {}
    if isinstance(based, Mapping) and based.get("followUpdates", True) and managed is not None:
        included |= managed.get(str(based.get("managedPolicy")), frozenset())
    runs = running - by_others if spec.get("enabled", True) else set()
    return frozenset(included), frozenset(runs)


def from_cluster(kubeconfig: str | None, context: str | None, namespace: str, configmap: str,
                 plugins: Mapping[str, str]) -> World:
    """The World as the cluster has it (raises on an API error)."""
    from padlock.adapters.kube.client import KubeClient, load_connection
    from padlock.adapters.kube.publish import RULESET_LABEL
    from padlock.adapters.kube.resources import (
        CLUSTER_POLICY_EXCEPTION,
        CUSTOM_POLICY,
        MANAGED_POLICY,
        POLICY_EXCEPTION,
        configmap_path,
    )

    client = KubeClient(load_connection(kubeconfig, context))
    managed = [{"kind": "ManagedPolicy", **o} for o in client.list(MANAGED_POLICY.path())]
    custom = [{"kind": "CustomPolicy", **o} for o in client.list(CUSTOM_POLICY.path())]
    exceptions = [{"kind": "ClusterPolicyException", **o} for o in client.list(CLUSTER_POLICY_EXCEPTION.path())]
    exceptions += [{"kind": "PolicyException", **o} for o in client.list(POLICY_EXCEPTION.path())]
    files: dict[str, str] = {}
    for cm in client.list(configmap_path(namespace), labelSelector=f"{RULESET_LABEL}={configmap}"):
        files.update(cm.get("data") or {})
    runs: dict[str, frozenset[str]] = {}
    includes: dict[str, frozenset[str]] = {}
    by_name: dict[str, frozenset[str]] = {}
    for obj in managed:
        name = str(obj["metadata"]["name"])
        includes[f"managedpolicy/{name}"], runs[f"managedpolicy/{name}"] = managed_runs(obj)
        by_name[name] = includes[f"managedpolicy/{name}"]
    for obj in custom:
        name = str(obj["metadata"]["name"])
        includes[f"custompolicy/{name}"], runs[f"custompolicy/{name}"] = custom_runs(obj, by_name)
    return World(tuple(managed), tuple(custom), tuple(exceptions), files, runs, includes, dict(plugins))


def offline(paths: Sequence[Path], sources: Sequence[str], engine_version: str | None, plugins: Mapping[str, str],
            object_namespace: str, now: dt.datetime) -> World:
    """The World ``padlock render`` would publish from these objects and sources (raises InputError)."""
    from padlock.cli.objects import build_managed, check_unique_names, read_objects, read_source
    from padlock.policy import effective

    bodies = read_objects(paths, object_namespace)
    parsed = policy_objects.parse_objects(bodies)
    source_inputs = [read_source(s, dict(parsed.rule_sources)) for s in sources]
    check_unique_names(source_inputs)
    contents, _ = build_managed(source_inputs, engine_version, dict(plugins))
    choices = {m.name: m for m in parsed.managed}
    given = parsed.managed_bodies
    managed_bodies = []
    managed_inputs = []
    for c in contents:
        user = choices.get(c.name)
        mine: Mapping[str, Any] = given.get(c.name) or {}
        user_spec = {k: v for k, v in _spec(mine).items() if k in ("enabled", "disabledRules", "scope")}
        managed_bodies.append({"apiVersion": policy_objects.GROUP_VERSION, "kind": "ManagedPolicy",
                               "metadata": {"name": c.name}, "spec": {**c.to_spec(), **user_spec},
                               "status": dict(_status(mine))})
        managed_inputs.append(c.as_input(user.enabled, user.disabled_rules, user.scope) if user else c.as_input())
    outcome = effective.render(effective.RenderInputs(
        sources=tuple(source_inputs), managed=tuple(managed_inputs), custom=parsed.custom,
        exceptions=parsed.exceptions, engine_version=engine_version, plugins=dict(plugins)), now)
    runs = {ref_text(ref): frozenset(names) for ref, names in outcome.policy_rules.items()}
    includes = {ref_text(ref): frozenset(names) for ref, names in outcome.policy_included.items()}
    custom = tuple(b for b in bodies if b.get("kind") == "CustomPolicy")
    exceptions = tuple(b for b in bodies if b.get("kind") in ("PolicyException", "ClusterPolicyException"))
    return World(tuple(managed_bodies), custom, exceptions, dict(outcome.files), runs, includes, dict(plugins),
                 engine_version, origin="offline")


# -- the explanation ------------------------------------------------------------------------------------
def history(obj: Mapping[str, Any], rule: str) -> tuple[JSON | None, JSON | None]:
    """(added, last changed) of ``rule`` from a ManagedPolicy's ``status.changes`` (newest first):
    each ``{"version", "time", "new"}``; ``new`` is false for the policy's first adoption."""
    added = changed = None
    for change in _status(obj).get("changes") or []:
        if not isinstance(change, Mapping):
            continue
        entry = {"version": change.get("toVersion"), "from": change.get("fromVersion"), "time": change.get("time"),
                 "new": change.get("fromVersion") is not None}
        if rule in (change.get("added") or []):
            added = added or entry
            changed = changed or entry
        elif rule in (change.get("modified") or []):
            changed = changed or entry
    return added, changed


def _scope_text(scope: Any) -> str:
    ns = (scope or {}).get("namespaces") or {}
    parts = []
    if ns.get("include"):
        parts.append(f"namespaces {', '.join(ns['include'])}")
    if ns.get("exclude"):
        parts.append(f"not namespaces {', '.join(ns['exclude'])}")
    return "; ".join(parts)


def _exceptions_for(world: World, rule: str) -> list[JSON]:
    """Exceptions that name a policy including ``rule`` (all its rules or this one), with where they apply."""
    out = []
    for exc in world.exceptions:
        spec, meta = _spec(exc), exc.get("metadata") or {}
        for target in spec.get("policies") or []:
            if not isinstance(target, Mapping):
                continue
            key = ref_text(policy_objects.ObjectRef(str(target.get("kind", "")), str(target.get("name", ""))))
            names = target.get("rules") or []
            if rule in world.includes.get(key, ()) and (not names or rule in names):
                out.append({"object": f"{str(exc.get('kind')).lower()}/"
                                      + (f"{meta.get('namespace')}/" if meta.get("namespace") else "") + str(meta.get("name")),
                            "policy": key, "namespace": meta.get("namespace") or "(all)",
                            "match": spec.get("match"), "reason": spec.get("reason"),
                            "expiresAt": spec.get("expiresAt"),
                            "active": _status(exc).get("active")})
                break
    for cp in world.custom:
        for i, inline in enumerate(_spec(cp).get("exceptions") or []):
            key = f"custompolicy/{cp['metadata']['name']}"
            names = inline.get("rules") or []
            if rule in world.includes.get(key, ()) and (not names or rule in names):
                out.append({"object": f"{key} spec.exceptions[{i}]", "policy": key, "namespace": "(all)",
                            "match": inline.get("match"), "reason": inline.get("reason"),
                            "expiresAt": inline.get("expiresAt"), "active": None})
    return out


def explain_rule(world: World, name: str) -> JSON | None:
    """Everything about rule ``name`` as JSON data, or None when no policy or published file has it."""
    owner = None
    text: Mapping[str, Any] | None = None
    for obj in world.managed:
        for r in _spec(obj).get("rules") or []:
            if isinstance(r, Mapping) and r.get("name") == name:
                owner, text = obj, r
                break
        if owner is not None:
            break
    published = world.published.get(name)
    if text is None and published is None:
        return None
    if text is None:
        assert published is not None
        text = {"desc": published.desc, "condition": published.condition, "output": published.output,
                "priority": published.priority, "tags": list(published.tags), "source": published.source}
    tags = [str(t) for t in text.get("tags") or []]
    policies = []
    for key in sorted(world.includes):
        if name not in world.includes[key]:
            continue
        kind, _, pname = key.partition("/")
        body = next((o for o in (*world.managed, *world.custom) if str(o["metadata"]["name"]) == pname
                     and str(o.get("kind", "")).lower() == kind), {})
        spec = _spec(body)
        enabled = (policy_objects.effective_enabled(spec.get("enabled"), bool(spec.get("defaultEnabled", DEFAULT_ENABLED)))
                   if kind == "managedpolicy" else bool(spec.get("enabled", True)))
        runs = name in world.runs.get(key, ())
        why = ("runs it" + (f" (scope: {_scope_text(spec.get('scope'))})" if spec.get("scope") else "")) if runs else (
            "policy disabled (spec.enabled)" if not enabled else
            "disabled in spec.disabledRules" if name in (spec.get("disabledRules") or []) else "does not run it")
        policies.append({"policy": key, "enabled": enabled, "runs": runs, "why": why,
                         "scope": spec.get("scope")})
    runners = [str(p["policy"]) for p in policies if p["runs"]]
    added = changed = None
    source = None
    if owner is not None:
        added, changed = history(owner, name)
        source = _spec(owner).get("source")
    runs_now = published.enabled if published is not None else None
    if runs_now:
        why = f"run by {', '.join(runners)}" if runners else "enabled upstream"
    elif policies:
        offs = [f"{p['policy']} ({p['why']})" for p in policies]
        why = f"switched off: {'; '.join(offs)}"
    else:
        why = "no enabled policy includes it"
    return {
        "rule": name,
        "desc": str(text.get("desc", "")).strip(),
        "condition": str(text.get("condition", "")).strip(),
        "output": str(text.get("output", "")).strip(),
        "priority": text.get("priority"),
        "eventSource": text.get("source", "syscall"),
        "tags": tags,
        "mitre": mitre.attack(tags).to_json(),
        "mitreTable": mitre.provenance(),
        "otherTactics": list(text.get("otherTactics") or []),
        "ruleSource": (source or {}).get("ruleSource"),
        "version": (source or {}).get("version"),
        "added": added,
        "lastChanged": changed,
        "policies": policies,
        "runs": runs_now,
        "why": why,
        "exceptions": _exceptions_for(world, name),
        "publishedCondition": (published.compiled_condition or published.condition) if published else None,
        "origin": world.origin,
    }


def _when(entry: Mapping[str, Any] | None, now: dt.datetime) -> str:
    from padlock.cli.policies import ago

    if entry is None:
        return "unknown (no recorded change names it)"
    since = ago(entry.get("time"), now) if entry.get("time") else "-"
    what = f"new in {entry['version']}" if entry.get("new") else f"present since {entry['version']} (first adopted)"
    return f"{what}, {since}"


def to_text(doc: Mapping[str, Any], now: dt.datetime) -> str:
    """The explanation for the terminal."""
    lines = [f"Rule: {doc['rule']}", f"Priority: {doc['priority']}   Event source: {doc['eventSource']}"]
    if doc.get("ruleSource"):
        lines.append(f"From: RuleSource {doc['ruleSource']} version {doc['version']}")
    lines.append(f"Added: {_when(doc['added'], now)}")
    if doc.get("lastChanged") and doc["lastChanged"] != doc["added"]:
        lines.append(f"Last changed: {_when(doc['lastChanged'], now)}")
    lines += ["", "Description:", _indent(doc["desc"]), "", "Condition:", _indent(doc["condition"]), "",
              "Output:", _indent(doc["output"]), "", f"Tags: {', '.join(doc['tags'])}"]
    for t in doc["mitre"]["tactics"]:
        lines.append(f"  MITRE tactic {t['id'] or '?'} {t['name'] or t['tag']}")
    for t in doc["mitre"]["techniques"]:
        lines.append(f"  MITRE technique {t['id']} {t['name'] or '(not in the table)'}")
    lines.append(f"  ({doc['mitreTable']})")
    lines += ["", f"Runs: {'yes' if doc['runs'] else 'no' if doc['runs'] is not None else 'not published'}"
                  f" ({doc['why']})", "Policies including it:"]
    for p in doc["policies"] or [{"policy": "(none)", "why": ""}]:
        lines.append(f"  {p['policy']}: {p['why']}")
    lines.append("Exceptions attached:" if doc["exceptions"] else "Exceptions attached: none")
    for e in doc["exceptions"]:
        lines.append(f"  {e['object']} via {e['policy']} in namespace {e['namespace']}: "
                     f"{json.dumps(e['match'], sort_keys=True)} ({e['reason']})"
                     + (f", expires {e['expiresAt']}" if e.get("expiresAt") else ""))
    lines += ["", "Condition as published:",
              _indent(doc["publishedCondition"] or "(not in the published ruleset)")]
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in str(text).splitlines() or [""])


# -- the command ----------------------------------------------------------------------------------------
def world_options(f: Any) -> Any:
    """Options shared by ``explain`` and ``show``: where the World comes from."""
    for option in reversed([
        click.option("--source", "sources", multiple=True, metavar="[NAME[@VERSION]=]PATH",
                     help="Work offline on render inputs: a rules source (repeatable), objects in PATHS."),
        click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False), help="Kubeconfig to use."),
        click.option("--context", "context_", help="Kubeconfig context."),
        click.option("--namespace", default="falco", show_default=True, help="Namespace of the published ConfigMaps."),
        click.option("--configmap", default="padlock-rules", show_default=True, help="Name of the published ruleset."),
        click.option("--engine-version", help="Falco engine version (X.Y.Z) for loading the published files."),
        click.option("--plugin", "plugins", multiple=True, metavar="NAME=VER",
                     help="Plugins Falco loads (default: those the Falco chart's defaults load)."),
        click.option("--object-namespace", default="default", show_default=True,
                     help="Offline: namespace of PolicyExceptions that name none."),
        click.option("-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text",
                     show_default=True),
    ]):
        f = option(f)
    return f


def load_world(paths: Sequence[Path], sources: Sequence[str], kubeconfig: str | None, context: str | None,
               namespace: str, configmap: str, engine_version: str | None, plugins: Sequence[str],
               object_namespace: str, command: str) -> World:
    """The World from the cluster, or offline when ``--source`` is given; exits 2 on bad input."""
    from padlock.cli import defaults
    from padlock.cli.objects import InputError

    plugin_map = defaults.plugins(plugins)
    try:
        if sources:
            return offline(paths, sources, engine_version, plugin_map, object_namespace, dt.datetime.now(dt.UTC))
        if paths:
            raise InputError("PATHS are render inputs: give --source too (or neither, to read the cluster)")
        return from_cluster(kubeconfig, context, namespace, configmap, plugin_map)
    except InputError as exc:
        click.echo(f"padlock {command}: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # the cluster: connection, RBAC, missing CRDs
        click.echo(f"padlock {command}: cannot read the cluster: {exc}", err=True)
        sys.exit(EXIT_USAGE)


def emit(doc: Any, output: str, text: str) -> None:
    if output == "json":
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    elif output == "yaml":
        click.echo(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=4096), nl=False)
    else:
        click.echo(text)


@click.command(name="explain")
@click.argument("what", type=click.Choice(["rule"]))
@click.argument("name")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@world_options
def command(what: str, name: str, paths: tuple[Path, ...], sources: tuple[str, ...], kubeconfig: str | None,
            context_: str | None, namespace: str, configmap: str, engine_version: str | None,
            plugins: tuple[str, ...], object_namespace: str, output: str) -> None:
    """Explain rule NAME: its text, MITRE ATT&CK names, history, policies, whether and why it runs.

    Reads the cluster, or with --source works offline on render inputs (objects in PATHS).
    """
    world = load_world(paths, sources, kubeconfig, context_, namespace, configmap, engine_version, plugins,
                       object_namespace, "explain")
    doc = explain_rule(world, name)
    if doc is None:
        click.echo(f'padlock explain: no rule named "{name}" in any policy or in the published ruleset', err=True)
        sys.exit(EXIT_NOT_FOUND)
    now = dt.datetime.now(dt.UTC)
    emit(doc, output, to_text(doc, now))
