"""``padlock tune``: the tuner's suggestions, and accepting or dismissing them.

- ``padlock tune [-n NS] [-o table|json]`` lists TuningSuggestions (every namespace by default).
- ``padlock tune accept NAME [-n NS] [--expires 30d] [--reason TEXT]`` creates the suggestion's exact
  ``spec.exception`` as a PolicyException (or ClusterPolicyException) with the caller's credentials,
  so the API server's admission (Padlock's webhook included) checks it like any other, then sets the
  suggestion's ``spec.state`` to Accepted; the operator then stops counting the alerts it silences.
- ``padlock tune dismiss NAME [-n NS]`` sets ``spec.state`` to Dismissed.
- ``padlock tune --from-file alerts.jsonl`` suggests from a Falco JSON log with no cluster (CI,
  air-gapped sites); ``-o yaml`` prints the exceptions ready to commit.

Exit codes: 0 done, 1 refused or not found, 2 usage, unreadable input or no cluster.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml

from padlock.cli.policies import ago

if TYPE_CHECKING:
    from padlock.adapters.kube.client import KubeClient

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_EXPIRES = re.compile(r"^(\d+)([mhdw])$")
_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def expires_at(text: str, now: dt.datetime) -> dt.datetime:
    """``30d`` / ``12h`` / ``2w`` / ``90m`` from ``now``, or an RFC 3339 time; ValueError otherwise."""
    found = _EXPIRES.match(text.strip())
    if found:
        return now + dt.timedelta(seconds=int(found.group(1)) * _UNIT[found.group(2)])
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--expires {text!r}: expected a duration such as 30d, 12h, 2w or an RFC 3339 time") from None
    if when.tzinfo is None:
        raise ValueError(f"--expires {text!r}: give a time zone (e.g. 2026-01-31T00:00:00Z)")
    if when <= now:
        raise ValueError(f"--expires {text!r} is not in the future")
    return when


def rows(items: list[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
    out = []
    for obj in sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])):
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        out.append({
            "namespace": obj["metadata"].get("namespace", ""), "name": obj["metadata"]["name"],
            "rule": spec.get("rule"), "workload": spec.get("workload"), "hits": status.get("hits"),
            "state": spec.get("state", "Open"), "scope": spec.get("scope"), "lastSeen": status.get("lastSeen"),
            "seen": ago(status.get("lastSeen"), now), "exception": spec.get("exception"),
        })
    return out


def table(items: list[dict[str, Any]]) -> str:
    header = ["NAMESPACE", "NAME", "RULE", "WORKLOAD", "HITS", "STATE", "SCOPE", "LAST SEEN"]
    lines = [header] + [[r["namespace"] or "-", r["name"], r["rule"] or "-", r["workload"] or "-",
                         "-" if r["hits"] is None else str(r["hits"]), r["state"], r["scope"] or "-", r["seen"]]
                        for r in items]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(line)).rstrip() for line in lines)


def exception_body(suggestion: dict[str, Any], *, reason: str | None, expires: dt.datetime | None) -> dict[str, Any]:
    """The exception object accepting ``suggestion`` creates."""
    proposed = suggestion["spec"]["exception"]
    spec = dict(proposed["spec"])
    if reason:
        spec["reason"] = reason
    if expires is not None:
        spec["expiresAt"] = expires.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    metadata: dict[str, Any] = {"name": proposed["name"],
                                "labels": {"padlock.dev/suggestion": suggestion["metadata"]["name"]}}
    if proposed.get("namespace"):
        metadata["namespace"] = proposed["namespace"]
    return {"apiVersion": "padlock.dev/v1alpha1", "kind": proposed["kind"], "metadata": metadata, "spec": spec}


# -- cluster -------------------------------------------------------------------------------------------
def _client(kubeconfig: str | None, context: str | None) -> KubeClient:
    from padlock.adapters.kube.client import KubeClient, load_connection

    try:
        return KubeClient(load_connection(kubeconfig, context))
    except Exception as exc:
        click.echo(f"padlock tune: cannot load credentials: {exc}", err=True)
        sys.exit(EXIT_USAGE)


def _find(client: KubeClient, name: str, namespace: str | None) -> dict[str, Any]:
    from padlock.adapters.kube.resources import KINDS

    kind = KINDS["TuningSuggestion"]
    if namespace:
        found = client.get_or_none(kind.path(name, namespace=namespace))
        if found is None:
            click.echo(f"padlock tune: TuningSuggestion {namespace}/{name} not found", err=True)
            sys.exit(EXIT_FAILED)
        return dict(found)
    matches = client.list(kind.path(), fieldSelector=f"metadata.name={name}")
    if not matches:
        click.echo(f"padlock tune: no TuningSuggestion named {name} in any namespace", err=True)
        sys.exit(EXIT_FAILED)
    if len(matches) > 1:
        where = ", ".join(sorted(m["metadata"]["namespace"] for m in matches))
        click.echo(f"padlock tune: TuningSuggestion {name} exists in {where}; choose one with -n", err=True)
        sys.exit(EXIT_USAGE)
    return dict(matches[0])


def _set_state(client: KubeClient, suggestion: dict[str, Any], state: str) -> None:
    from padlock.adapters.kube.resources import KINDS

    md = suggestion["metadata"]
    client.merge_patch(KINDS["TuningSuggestion"].path(md["name"], namespace=md["namespace"]), {"spec": {"state": state}})


_CLUSTER_OPTIONS = [
    click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False), help="Kubeconfig to use."),
    click.option("--context", "context_", help="Kubeconfig context."),
    click.option("-n", "--namespace", help="Namespace of the suggestion (default: search every namespace)."),
]


def _cluster_options(func: Any) -> Any:
    for option in reversed(_CLUSTER_OPTIONS):
        func = option(func)
    return func


@click.group(name="tune", invoke_without_command=True)
@_cluster_options
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table", show_default=True,
              help="yaml (with --from-file): the exceptions as objects ready to apply.")
@click.option("--from-file", "from_file", type=click.Path(dir_okay=False, allow_dash=True),
              help="Suggest from a Falco JSON log (one alert per line) without a cluster ('-' for stdin).")
@click.option("--min-hits", type=click.IntRange(min=1), default=20, show_default=True, help="With --from-file.")
@click.option("--min-share", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="With --from-file.")
@click.option("--window", "window_", default=None, help="With --from-file: sliding window, e.g. 1h (default: the whole file).")
@click.option("--untunable-priority", default="CRITICAL", show_default=True, help="With --from-file.")
@click.option("--policy", "policies", multiple=True, metavar="KIND/NAME",
              help="With --from-file: policy the exceptions apply to (default: catalog policies matching the alerts' tags).")
@click.pass_context
def command(ctx: click.Context, kubeconfig: str | None, context_: str | None, namespace: str | None, output: str,
            from_file: str | None, min_hits: int, min_share: float, window_: str | None, untunable_priority: str,
            policies: tuple[str, ...]) -> None:
    """List the tuner's suggestions, or (--from-file) suggest from a Falco JSON log offline."""
    if ctx.invoked_subcommand is not None:
        return
    if from_file is not None:
        _offline(from_file, output, min_hits, min_share, window_, untunable_priority, policies)
        return
    from padlock.adapters.kube.resources import KINDS

    if output == "yaml":
        raise click.UsageError("-o yaml is for --from-file; use -o json for the cluster's suggestions")
    client = _client(kubeconfig, context_)
    kind = KINDS["TuningSuggestion"]
    try:
        items = client.list(kind.path(namespace=namespace) if namespace else kind.path())
    except Exception as exc:
        click.echo(f"padlock tune: cannot list suggestions: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    out = rows(items, dt.datetime.now(dt.UTC))
    if output == "json":
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        click.echo(table(out) if out else "No suggestions.")


@command.command(name="accept")
@click.argument("name")
@_cluster_options
@click.option("--expires", help="When the exception stops applying: 30d, 12h, 2w, or an RFC 3339 time.")
@click.option("--reason", help="Why (replaces the tuner's reason; a ticket reference is a good one).")
def accept(name: str, kubeconfig: str | None, context_: str | None, namespace: str | None, expires: str | None,
           reason: str | None) -> None:
    """Create the suggestion's exception (through normal admission) and mark it Accepted."""
    from padlock.adapters.kube.client import ApiError
    from padlock.adapters.kube.resources import KINDS

    now = dt.datetime.now(dt.UTC)
    try:
        until = expires_at(expires, now) if expires else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires") from None
    client = _client(kubeconfig, context_)
    suggestion = _find(client, name, namespace)
    body = exception_body(suggestion, reason=reason, expires=until)
    kind = KINDS[body["kind"]]
    md = body["metadata"]
    path = kind.path(namespace=md.get("namespace"))
    label = f"{body['kind']} {md.get('namespace', '') + '/' if md.get('namespace') else ''}{md['name']}"
    try:
        client.create(path, body)
        click.echo(f"created {label}")
    except ApiError as exc:
        if exc.status != 409:
            click.echo(f"padlock tune: {label} refused: {exc.message}", err=True)
            sys.exit(EXIT_FAILED)
        existing = client.get(kind.path(md["name"], namespace=md.get("namespace")))
        if ((existing.get("metadata") or {}).get("labels") or {}).get("padlock.dev/suggestion") != name:
            click.echo(f"padlock tune: {label} already exists and was not created from this suggestion", err=True)
            sys.exit(EXIT_FAILED)
        click.echo(f"{label} already exists (created from this suggestion)")
    _set_state(client, suggestion, "Accepted")
    click.echo(f"tuningsuggestion {suggestion['metadata']['namespace']}/{name} accepted")


@command.command(name="dismiss")
@click.argument("name")
@_cluster_options
def dismiss(name: str, kubeconfig: str | None, context_: str | None, namespace: str | None) -> None:
    """Mark a suggestion Dismissed: the tuner does not propose it again."""
    client = _client(kubeconfig, context_)
    suggestion = _find(client, name, namespace)
    _set_state(client, suggestion, "Dismissed")
    click.echo(f"tuningsuggestion {suggestion['metadata']['namespace']}/{name} dismissed")


# -- offline -------------------------------------------------------------------------------------------
def _offline(path: str, output: str, min_hits: int, min_share: float, window: str | None,
             untunable_priority: str, policies: tuple[str, ...]) -> None:
    from padlock.api.common import parse_duration
    from padlock.policy.tuning.objects import suggestion_object
    from padlock.policy.tuning.offline import suggest_from_lines
    from padlock.policy.tuning.suggest import TunerConfig

    refs = []
    for text in policies:
        kind, sep, name = text.partition("/")
        if not sep or kind not in ("ManagedPolicy", "CustomPolicy") or not name:
            raise click.BadParameter(f"{text!r}: expected ManagedPolicy/NAME or CustomPolicy/NAME", param_hint="--policy")
        refs.append((kind, name))
    try:
        seconds = parse_duration(window).total_seconds() if window else 100 * 365 * 86400.0
        config = TunerConfig(window=seconds, min_hits=min_hits, min_share=min_share,
                             untunable_priority=untunable_priority)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    try:
        with contextlib.ExitStack() as stack:
            handle = sys.stdin if path == "-" else stack.enter_context(Path(path).open(encoding="utf-8", errors="replace"))
            result = suggest_from_lines(handle, config, policies=refs or None)
    except OSError as exc:
        click.echo(f"padlock tune: {path}: {exc.strerror}", err=True)
        sys.exit(EXIT_USAGE)
    for line in result.skipped[:5]:
        click.echo(f"{path}: skipped {line}", err=True)
    if len(result.skipped) > 5:
        click.echo(f"{path}: skipped {len(result.skipped) - 5} more lines", err=True)
    click.echo(f"{path}: {result.alerts} alerts, {len(result.suggestions)} suggestions", err=True)
    if output == "yaml":
        click.echo(yaml.safe_dump_all([s.exception() for s in result.suggestions], sort_keys=False, width=110), nl=False)
        return
    objects = [suggestion_object(s, cluster_namespace="padlock-system", samples=False) for s in result.suggestions]
    out = rows(objects, dt.datetime.now(dt.UTC))
    if output == "json":
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        click.echo(table(out) if out else "No suggestions.")
