"""``padlock render``: padlock objects + rules sources -> the exact files and ConfigMaps the operator publishes.

For CI: it reads padlock objects (YAML, ``apiVersion: padlock.dev/v1alpha1``: ManagedPolicy user
choices, CustomPolicy, PolicyException, ClusterPolicyException, RuleSource for name and loadOrder)
from files and directories, and rules sources from files or directories (``--source
[NAME[@VERSION]=]PATH``). Managed policies come from the built-in catalog (plus any
``padlock-catalog.yaml`` in a source) and the given sources, merged with the user's ManagedPolicy
choices found among the objects. It then calls ``padlock.policy.effective.render``, the same function
the operator calls, so the bytes are the same.

Output: ``-o DIR`` writes the files (``--format files``) or one YAML per ConfigMap (``--format
configmaps``); ``-o json|yaml|text`` prints a summary; with no ``-o`` the ConfigMaps are printed as
YAML. Without ``--plugin`` the plugins the Falco chart's defaults load are assumed (``cli.defaults``).
Diagnostics go to stderr, one line each. Exit codes: 0 published (warnings allowed), 1 nothing
publishable or objects excluded, 2 usage or unreadable input.

Wiring only: output here, file reading shared with ``padlock validate`` in ``padlock.cli.objects``,
all logic in ``padlock.policy``.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml

from padlock.cli import defaults
from padlock.cli.objects import InputError, check_unique_names, managed_inputs, read_objects, read_source
from padlock.policy import effective, lock, policy_objects

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


@click.command(name="render")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--source",
    "sources",
    multiple=True,
    required=True,
    metavar="[NAME[@VERSION]=]PATH",
    help="A rules source: a rules file or a directory of them (repeatable).",
)
@click.option("--engine-version", help="Falco engine version to check requirements against (X.Y.Z).")
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="NAME=VER",
    help="A plugin Falco loads (e.g. container=0.4.0).",
)
@click.option("-o", "--output", "output",
              help="DIR to write into, or json|yaml|text for a summary on stdout.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["files", "configmaps"]),
    default="configmaps",
    show_default=True,
    help="With -o DIR: write rules files, or ConfigMap manifests.",
)
@click.option("--namespace", default="falco", show_default=True, help="Namespace of the ConfigMaps.")
@click.option(
    "--configmap", default="padlock-rules", show_default=True, help="Name of the (first) ConfigMap."
)
@click.option(
    "--object-namespace",
    default="default",
    show_default=True,
    help="Namespace for PolicyExceptions that name none (as kubectl apply would use).",
)
@click.option("--max-object-bytes", type=click.IntRange(min=1), default=effective.DEFAULT_MAX_OBJECT_BYTES,
              show_default=True, help="Bytes one object may add to the generated layer (as the operator's flag).")
@click.option("--max-namespace-bytes", type=click.IntRange(min=1), default=effective.DEFAULT_MAX_NAMESPACE_BYTES,
              show_default=True, help="Bytes the PolicyExceptions of one namespace may add (as the operator's flag).")
@click.option("--rules-shards", type=click.IntRange(0, 63), default=lock.DEFAULT_RULES_SHARDS, show_default=True,
              help="Shards <configmap>-1..N the Falco mount declares besides <configmap> (as the operator's flag).")
@click.option(
    "--now", "now_text", hidden=True, help="Evaluate exception expiry at this RFC 3339 time (tests, CI)."
)
def command(
    paths: tuple[Path, ...],
    sources: tuple[str, ...],
    engine_version: str | None,
    plugins: tuple[str, ...],
    output: str | None,
    fmt: str,
    namespace: str,
    configmap: str,
    object_namespace: str,
    now_text: str | None,
    max_object_bytes: int = effective.DEFAULT_MAX_OBJECT_BYTES,
    max_namespace_bytes: int = effective.DEFAULT_MAX_NAMESPACE_BYTES,
    rules_shards: int = lock.DEFAULT_RULES_SHARDS,
) -> None:
    """Render padlock objects in PATHS and rules sources to the files and ConfigMaps the operator publishes."""
    defaults.engine_version(engine_version)
    # No --plugin: the plugins the Falco chart's defaults load, as validate and diff use (cli.defaults).
    plugin_map = defaults.plugins(plugins)
    now = datetime.now(UTC)
    if now_text:
        parsed_now = policy_objects.parse_time(now_text)
        if parsed_now is None:
            raise click.BadParameter(f'"{now_text}": expected an RFC 3339 time', param_hint="--now")
        now = parsed_now
    try:
        bodies = read_objects(paths, object_namespace)
        parsed = policy_objects.parse_objects(bodies)
        load_orders = dict(parsed.rule_sources)
        source_inputs = [read_source(s, load_orders) for s in sources]
        check_unique_names(source_inputs)
    except InputError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    managed_list, notes = managed_inputs(source_inputs, parsed, engine_version, plugin_map)
    inputs = effective.RenderInputs(
        sources=tuple(source_inputs),
        managed=tuple(managed_list),
        custom=parsed.custom,
        exceptions=parsed.exceptions,
        engine_version=engine_version,
        plugins=plugin_map,
        configmap_name=configmap,
        namespace=namespace,
        # The operator's limits and precedence (docs/limits.md): the same decisions, the same bytes.
        max_shards=rules_shards + 1,
        max_object_bytes=max_object_bytes,
        max_namespace_bytes=max_namespace_bytes,
        created=effective.created_times(bodies),
    )
    outcome = effective.render(inputs, now)
    diagnostics = [*parsed.diagnostics, *outcome.diagnostics]
    for note in notes:
        click.echo(f"warning: {note}", err=True)
    for d in diagnostics:
        click.echo(f"{d.severity}: {d.one_line()}", err=True)
    excluded = sorted({*parsed.invalid, *outcome.excluded})
    code = EXIT_OK if outcome.publishable and not excluded else EXIT_INVALID
    if output == "json":
        click.echo(json.dumps(_summary(outcome, diagnostics, excluded), indent=2, sort_keys=True))
    elif output == "yaml":
        click.echo(defaults.dump(_summary(outcome, diagnostics, excluded), "yaml"))
    elif output == "text":
        summary = _summary(outcome, diagnostics, excluded)
        click.echo(f"publishable: {str(summary['publishable']).lower()}; content hash {summary['contentHash'] or '-'}")
        for key, info in summary["files"].items():
            click.echo(f"  {key} ({info['bytes']} bytes)")
        for ref in summary["excluded"]:
            click.echo(f"  excluded: {ref['kind']} {'/'.join(p for p in (ref['namespace'], ref['name']) if p)}")
    elif not outcome.publishable:
        click.echo("error: the effective ruleset does not validate; nothing to publish", err=True)
    elif output:
        _write(Path(output), outcome, fmt)
    else:
        click.echo(
            yaml.dump_all(
                [cm.to_manifest() for cm in outcome.configmaps],
                Dumper=yaml.CSafeDumper,
                sort_keys=False,
                allow_unicode=True,
                width=4096,
            ),
            nl=False,
        )
    sys.exit(code)


def _summary(
    outcome: effective.RenderOutcome,
    diagnostics: list[policy_objects.ObjectDiagnostic],
    excluded: list[policy_objects.ObjectRef],
) -> dict[str, Any]:
    return {
        "publishable": outcome.publishable,
        "contentHash": outcome.content_hash,
        "sourceVersions": outcome.source_versions,
        "files": {k: {"bytes": len(v.encode())} for k, v in outcome.files.items()},
        "configMaps": [{"name": c.name, "keys": list(c.data)} for c in outcome.configmaps],
        "excluded": [{"kind": r.kind, "namespace": r.namespace, "name": r.name,
                      "reason": outcome.reasons.get(r, "Invalid")} for r in excluded],
        "expired": [{"kind": r.kind, "namespace": r.namespace, "name": r.name} for r in outcome.expired],
        "diagnostics": [d.to_json() for d in diagnostics],
    }


def _write(directory: Path, outcome: effective.RenderOutcome, fmt: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if fmt == "files":
        for key, text in outcome.files.items():
            (directory / key).write_text(text, encoding="utf-8")
        return
    for cm in outcome.configmaps:
        text = yaml.dump(
            cm.to_manifest(), Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True, width=4096
        )
        (directory / f"{cm.name}.yaml").write_text(text, encoding="utf-8")
