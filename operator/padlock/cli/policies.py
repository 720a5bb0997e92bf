"""``padlock policies``: a table of managed (🔒) and custom policies in the cluster.

Columns: the padlock mark for managed policies, NAME, ENABLED, RUNNING (rules of the policy that
actually run in the published ruleset / its rules), SOURCE VERSION, UPDATED ("14 days ago"), and
STILL RUN: how many rules the policy switches off (disabled there, or the whole policy is off) that
another policy still runs; each such rule is then named under the table with who runs it
(``status.stillRunning``, ``padlock.policy.running``). ``-o json`` prints the same rows as a JSON list. Reads with the
operator's REST client (``--kubeconfig``/``--context``, else in-cluster or the default kubeconfig);
the rows and the age text are built by pure functions (``rows``, ``ago``) that the unit tests call.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from padlock.api.managedpolicy import DEFAULT_ENABLED
from padlock.policy import policy_objects

LOCK = "\N{LOCK}"
EXIT_OK, EXIT_CLUSTER_ERROR = 0, 2


def ago(stamp: str | None, now: dt.datetime) -> str:
    """``"14 days ago"`` for an RFC 3339 time; ``"-"`` when unknown."""
    then = policy_objects.parse_time(stamp)
    if then is None:
        return "-"
    seconds = int((now - then).total_seconds())
    if seconds < 5:
        return "just now"
    for size, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"), (3600, "hour"),
                       (60, "minute"), (1, "second")):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def rows(managed: Sequence[dict[str, Any]], custom: Sequence[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for obj in sorted(managed, key=lambda o: o["metadata"]["name"]):
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        # Before the operator's first status, the same rule the renderer applies.
        enabled = status.get("enabled", policy_objects.effective_enabled(
            spec.get("enabled"), spec.get("defaultEnabled", DEFAULT_ENABLED)))
        total = status.get("ruleCount", len(spec.get("rules") or []))
        out.append({
            "kind": "ManagedPolicy", "managed": True, "name": obj["metadata"]["name"], "enabled": bool(enabled),
            "enabledRules": status.get("enabledRuleCount", 0), "rules": total,
            "runningRules": status.get("runningRuleCount", status.get("enabledRuleCount", 0)),
            "stillRunning": _still_running(status),
            "sourceVersion": status.get("sourceVersion") or (spec.get("source") or {}).get("version"),
            "lastUpdated": status.get("lastUpdated"), "updated": ago(status.get("lastUpdated"), now),
        })
    for obj in sorted(custom, key=lambda o: o["metadata"]["name"]):
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        total = status.get("ruleCount")
        stamp = obj["metadata"].get("creationTimestamp")
        out.append({
            "kind": "CustomPolicy", "managed": False, "name": obj["metadata"]["name"],
            "enabled": bool(spec.get("enabled", True)),
            "enabledRules": total if spec.get("enabled", True) else 0, "rules": total,
            "runningRules": status.get("runningRuleCount", total if spec.get("enabled", True) else 0),
            "stillRunning": _still_running(status),
            "sourceVersion": None, "lastUpdated": stamp, "updated": ago(stamp, now),
        })
    return out


def _still_running(status: dict[str, Any]) -> list[dict[str, Any]]:
    """``status.stillRunning`` entries (rule, runBy) that are well formed."""
    out = []
    for entry in status.get("stillRunning") or []:
        if isinstance(entry, dict) and isinstance(entry.get("rule"), str):
            out.append({"rule": entry["rule"], "runBy": [str(b) for b in entry.get("runBy") or []]})
    return out


def table(items: Sequence[dict[str, Any]]) -> str:
    header = ["", "NAME", "ENABLED", "RUNNING", "SOURCE VERSION", "UPDATED", "STILL RUN"]
    lines = [header]
    notes = []
    for r in items:
        count = "-" if r["rules"] is None else f"{r.get('runningRules', r['enabledRules'])}/{r['rules']}"
        still = r.get("stillRunning") or []
        lines.append([LOCK if r["managed"] else "", r["name"], "true" if r["enabled"] else "false", count,
                      r["sourceVersion"] or "-", r["updated"], f"{len(still)} !" if still else ""])
        kind = "managedpolicy" if r["managed"] else "custompolicy"
        for entry in still:
            notes.append(f'! {kind}/{r["name"]}: "{entry["rule"]}" is switched off here but still runs, '
                         f'run by {", ".join(entry["runBy"])}')
    # The lock is one character wide but two columns on a terminal; pad by display width.
    def width(text: str) -> int:
        return len(text) + text.count(LOCK)

    widths = [max(width(line[i]) for line in lines) for i in range(len(header))]
    text = "\n".join(
        "  ".join(cell + " " * (widths[i] - width(cell)) for i, cell in enumerate(line)).rstrip() for line in lines
    )
    return "\n".join([text, "", *notes]) if notes else text


@click.command(name="policies")
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False), help="Kubeconfig to use.")
@click.option("--context", "context_", help="Kubeconfig context.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def command(kubeconfig: str | None, context_: str | None, output: str) -> None:
    """List managed (padlock mark) and custom policies: rules running/total, when they last changed, and
    rules switched off in a policy that another policy still runs."""
    from padlock.adapters.kube.client import KubeClient, load_connection
    from padlock.adapters.kube.resources import CUSTOM_POLICY, MANAGED_POLICY

    try:
        client = KubeClient(load_connection(kubeconfig, context_))
        managed = client.list(MANAGED_POLICY.path())
        custom = client.list(CUSTOM_POLICY.path())
    except Exception as exc:
        click.echo(f"padlock policies: cannot list policies: {exc}", err=True)
        sys.exit(EXIT_CLUSTER_ERROR)
    items = rows(managed, custom, dt.datetime.now(dt.UTC))
    if output == "json":
        click.echo(json.dumps(items, indent=2, ensure_ascii=False))
    else:
        click.echo(table(items) if items else "No policies found.")
