"""``padlock show managedpolicy/NAME``: the policy as a reviewer reads it, rule by rule.

The header says what the policy is (display name, description, catalog entry, RuleSource and version,
enabled or not, when it last changed, rules running/total); then each rule with its badge ("new in
1.1.0, 2 days ago" for a rule an update added, "updated 3 days ago" for one whose text changed, from
the recorded ``status.changes``), priority, whether it runs (and who still runs it when switched off
here), its MITRE ATT&CK tactics and techniques by name (other tactics too), condition and output.
``-o json`` / ``-o yaml`` give the same content as data.

Reads the cluster, or works offline on render inputs with ``--source`` (as ``padlock render``): the
World and the per-rule history are ``padlock.cli.explain``'s. ``show_policy`` and ``to_text`` are pure.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from padlock.api.managedpolicy import DEFAULT_ENABLED
from padlock.cli.explain import EXIT_NOT_FOUND, EXIT_USAGE, World, emit, history, load_world, world_options
from padlock.cli.policies import LOCK, ago
from padlock.policy import mitre, policy_objects

JSON = dict[str, Any]


def badge(added: Mapping[str, Any] | None, changed: Mapping[str, Any] | None, now: dt.datetime) -> str:
    """``new in 1.1.0, 2 days ago`` / ``updated 3 days ago`` / "" (present since the first adoption)."""
    if added is not None and added.get("new") and changed == added:
        return f"new in {added.get('version')}, {ago(added.get('time'), now)}"
    if changed is not None and changed != added:
        return f"updated {ago(changed.get('time'), now)}"
    return ""


def show_policy(world: World, name: str, now: dt.datetime) -> JSON | None:
    """ManagedPolicy ``name`` with each rule's text, badge, MITRE names and effective state."""
    obj = world.managed_by_name().get(name)
    if obj is None:
        return None
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    key = f"managedpolicy/{name}"
    runs = world.runs.get(key, frozenset())
    disabled = set(spec.get("disabledRules") or [])
    rules = []
    for r in spec.get("rules") or []:
        if not isinstance(r, Mapping):
            continue
        rname = str(r.get("name"))
        added, changed = history(obj, rname)
        published = world.published.get(rname)
        tags = [str(t) for t in r.get("tags") or []]
        rules.append({
            "name": rname, "badge": badge(added, changed, now), "priority": r.get("priority"),
            "upstreamEnabled": bool(r.get("enabled", True)), "disabledHere": rname in disabled,
            "runsHere": rname in runs, "runs": published.enabled if published is not None else None,
            "stillRunBy": [] if rname in runs else sorted(k for k, n in world.runs.items() if k != key and rname in n),
            "tags": tags, "mitre": mitre.attack(tags).to_json(),
            "otherTactics": list(r.get("otherTactics") or []),
            "desc": str(r.get("desc", "")).strip(), "condition": str(r.get("condition", "")).strip(),
            "output": str(r.get("output", "")).strip(),
        })
    enabled = policy_objects.effective_enabled(spec.get("enabled"), bool(spec.get("defaultEnabled", DEFAULT_ENABLED)))
    running = sum(1 for r in rules if r["runs"])
    return {
        "name": name, "displayName": spec.get("displayName"), "description": spec.get("description"),
        "catalog": spec.get("catalog"), "source": spec.get("source"), "enabled": enabled,
        "lastUpdated": status.get("lastUpdated"), "updated": ago(status.get("lastUpdated"), now),
        "scope": spec.get("scope"), "disabledRules": sorted(disabled),
        "runningRules": running, "ruleCount": len(rules), "rules": rules, "mitreTable": mitre.provenance(),
        "origin": world.origin,
    }


def to_text(doc: Mapping[str, Any]) -> str:
    source = doc.get("source") or {}
    lines = [f"{LOCK} {doc['name']}: {doc.get('displayName') or ''}", f"  {doc.get('description') or ''}",
             f"  source {source.get('ruleSource', '-')} {source.get('version', '-')}; "
             f"{'enabled' if doc['enabled'] else 'DISABLED'}; updated {doc['updated']}; "
             f"{doc['runningRules']}/{doc['ruleCount']} rules running"]
    if doc.get("scope"):
        lines.append(f"  scope: {doc['scope']}")
    for r in doc["rules"]:
        state = "runs" if r["runs"] else "off"
        if not r["runsHere"] and r["runs"] and r["stillRunBy"]:
            state = f"off here, still run by {', '.join(r['stillRunBy'])}"
        elif r["disabledHere"]:
            state = "disabled here" + ("" if not r["runs"] else " (still runs)")
        head = f"- {r['name']}  [{r['priority']}] {state}"
        lines += ["", head + (f"  ** {r['badge']} **" if r["badge"] else "")]
        tactics = [f"{t['id']} {t['name']}".strip() or t["tag"] for t in r["mitre"]["tactics"]]
        techniques = [f"{t['id']} {t['name']}".strip() for t in r["mitre"]["techniques"]]
        if tactics or techniques:
            lines.append(f"    MITRE: {'; '.join([*tactics, *techniques])}")
        if r["otherTactics"]:
            lines.append(f"    other tactics: {', '.join(r['otherTactics'])}")
        lines.append(f"    tags: {', '.join(r['tags'])}")
        lines.append(f"    condition: {' '.join(r['condition'].split())}")
        lines.append(f"    output: {' '.join(r['output'].split())}")
    return "\n".join(lines)


@click.command(name="show")
@click.argument("target", metavar="managedpolicy/NAME")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@world_options
def command(target: str, paths: tuple[Path, ...], sources: tuple[str, ...], kubeconfig: str | None,
            context_: str | None, namespace: str, configmap: str, engine_version: str | None,
            plugins: tuple[str, ...], object_namespace: str, output: str) -> None:
    """Show managedpolicy/NAME: its rules with new/updated badges, conditions, outputs and MITRE names."""
    kind, _, name = target.partition("/")
    if kind.lower() not in ("managedpolicy", "managedpolicies", "mp") or not name:
        click.echo(f'padlock show: "{target}": expected managedpolicy/NAME', err=True)
        sys.exit(EXIT_USAGE)
    world = load_world(paths, sources, kubeconfig, context_, namespace, configmap, engine_version, plugins,
                       object_namespace, "show")
    now = dt.datetime.now(dt.UTC)
    doc = show_policy(world, name, now)
    if doc is None:
        click.echo(f'padlock show: no ManagedPolicy named "{name}"', err=True)
        sys.exit(EXIT_NOT_FOUND)
    emit(doc, output, to_text(doc))
