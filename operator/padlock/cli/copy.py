"""``padlock copy managedpolicy/NAME NEW``: copy a managed (locked) policy into an editable CustomPolicy.

The copy follows the managed policy's updates (``basedOn.followUpdates: true``) or, with
``--freeze``, lists its rules explicitly in ``spec.rules`` so the frozen set is visible in Git. The
managed policy is read from ``--from-file`` or from the cluster (kubeconfig / ``--context``); the
CustomPolicy is printed as YAML, or created in the cluster with ``--apply``. The copy itself is the
pure ``padlock.policy.managed.copy_to_custom``; the cluster calls stay in this module and go through
the operator's own client (``padlock.adapters.kube.client``: same credentials loading, same errors).

Exit codes: 0 done, 1 not found / rejected by the cluster, 2 usage or unreadable input.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml

from padlock.api import kinds
from padlock.cli import objects
from padlock.engine import safe_yaml
from padlock.policy.managed import copy_to_custom

if TYPE_CHECKING:
    from padlock.adapters.kube.client import KubeClient

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_KINDS = (kinds.MANAGED_POLICY.singular, kinds.MANAGED_POLICY.plural, *kinds.MANAGED_POLICY.short_names)


def _from_file(path: Path, name: str) -> dict[str, Any] | None:
    try:
        docs = safe_yaml.load_all(objects.read_text(path))
    except (objects.InputError, safe_yaml.YamlError) as exc:
        click.echo(f"error: {path}: cannot read: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    for doc in docs:
        items = doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
        for item in items or []:
            if (
                isinstance(item, dict)
                and item.get("kind") == "ManagedPolicy"
                and (item.get("metadata") or {}).get("name") == name
            ):
                return item
    return None


def _client(kubeconfig: str | None, context: str | None) -> KubeClient:
    """The operator's client, with the kubeconfig (and context), else in-cluster credentials."""
    from padlock.adapters.kube.client import KubeClient, load_connection

    try:
        return KubeClient(load_connection(kubeconfig, context))
    except Exception as exc:
        click.echo(f"error: cannot load cluster credentials: {exc}", err=True)
        sys.exit(EXIT_USAGE)


@click.command(name="copy")
@click.argument("source")
@click.argument("new_name")
@click.option(
    "--freeze",
    is_flag=True,
    help="Freeze the rule set now (listed in spec.rules) instead of following updates.",
)
@click.option(
    "--from-file",
    "from_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the ManagedPolicy from this YAML file instead of the cluster.",
)
@click.option("--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster).")
@click.option("--context", "context_", help="Kubeconfig context.")
@click.option(
    "--apply", "apply_", is_flag=True, help="Create the CustomPolicy in the cluster instead of printing it."
)
def command(
    source: str,
    new_name: str,
    freeze: bool,
    from_file: Path | None,
    kubeconfig: str | None,
    context_: str | None,
    apply_: bool,
) -> None:
    """Copy managedpolicy/NAME into a new CustomPolicy NEW_NAME (printed as YAML, or created with --apply)."""
    kind, sep, name = source.partition("/")
    if not sep or kind.lower() not in _KINDS or not name:
        raise click.BadParameter(f'"{source}": expected managedpolicy/NAME', param_hint="SOURCE")
    if not _NAME.match(new_name):
        raise click.BadParameter(f'"{new_name}" is not a valid Kubernetes object name', param_hint="NEW_NAME")
    from padlock.adapters.kube.client import ApiError
    from padlock.adapters.kube.resources import CUSTOM_POLICY, MANAGED_POLICY

    client = None
    if from_file is not None:
        body = _from_file(from_file, name)
    else:
        client = _client(kubeconfig, context_)
        try:
            body = client.get_or_none(MANAGED_POLICY.path(name))
        except ApiError as exc:
            click.echo(f"error: reading managedpolicy/{name}: {exc.status} {exc.reason}", err=True)
            sys.exit(EXIT_FAILED)
        except Exception as exc:  # unreachable server, TLS: say so instead of a traceback
            click.echo(f"error: reading managedpolicy/{name}: {exc}", err=True)
            sys.exit(EXIT_FAILED)
    if body is None:
        where = str(from_file) if from_file is not None else "the cluster"
        click.echo(f'error: no ManagedPolicy named "{name}" in {where}', err=True)
        sys.exit(EXIT_FAILED)
    copy = copy_to_custom(body, new_name, freeze=freeze)
    if not apply_:
        click.echo(
            yaml.dump(copy, Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True, width=4096),
            nl=False,
        )
        return
    if client is None:
        client = _client(kubeconfig, context_)
    try:
        client.create(CUSTOM_POLICY.path(), copy)
    except ApiError as exc:
        click.echo(
            f"error: creating custompolicy/{new_name}: {exc.status} {exc.reason}: {exc.message}", err=True
        )
        sys.exit(EXIT_FAILED)
    except Exception as exc:
        click.echo(f"error: creating custompolicy/{new_name}: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"custompolicy.padlock.dev/{new_name} created")
