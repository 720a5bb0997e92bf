"""``python -m padlock.devenv``: prepare or inspect the development environment from a shell.

Called by ``.ci/install`` (``install``) and by developers. Subcommands:

- ``install``: find or build kube-apiserver and etcd, fetch kubectl and helm, find or unpack
  docker-registry, then print every binary's path and version;
- ``versions``: the same report without building or fetching anything;
- ``env``: shell ``export`` lines (TEST_ASSET_*, PADLOCK_KUBECTL, PADLOCK_HELM) for the found binaries.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable

import click

from padlock.devenv import binaries, registry, tools
from padlock.devenv.errors import DevenvError


def _report(fetch: bool) -> dict[str, tuple[str, str]]:
    """name -> (path, version) for every binary; fetches/builds only when ``fetch``."""
    found = binaries.find(build=fetch)
    server_versions = found.versions()
    report = {
        "kube-apiserver": (str(found.kube_apiserver), server_versions["kube-apiserver"]),
        "etcd": (str(found.etcd), server_versions["etcd"]),
    }
    for name in ("kubectl", "helm"):
        path = tools.find(name, fetch=fetch)
        report[name] = (str(path), tools.version(path))
    reg = registry.find(fetch=fetch)
    report["docker-registry"] = (str(reg), registry.version(reg))
    return report


@click.group()
def main() -> None:
    """Padlock development environment: control-plane binaries, kubectl, helm, registry."""


@main.command()
def install() -> None:
    """Get every binary the tests and the demo need (building the control plane if necessary)."""
    _print(_guarded(lambda: _report(fetch=True)))


@main.command()
def versions() -> None:
    """Print paths and versions of the binaries found, without building or fetching."""
    _print(_guarded(lambda: _report(fetch=False)))


@main.command()
def env() -> None:
    """Print export lines that pin the found binaries for other tools (envtest-style variables)."""
    report = _guarded(lambda: _report(fetch=False))
    names = {
        "kube-apiserver": "TEST_ASSET_KUBE_APISERVER",
        "etcd": "TEST_ASSET_ETCD",
        "kubectl": "PADLOCK_KUBECTL",
        "helm": "PADLOCK_HELM",
        "docker-registry": "PADLOCK_DOCKER_REGISTRY",
    }
    for name, variable in names.items():
        click.echo(f"export {variable}={shlex.quote(report[name][0])}")


def _guarded(action: Callable[[], dict[str, tuple[str, str]]]) -> dict[str, tuple[str, str]]:
    try:
        return action()
    except DevenvError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)


def _print(report: dict[str, tuple[str, str]]) -> None:
    width = max(map(len, report))
    for name, (path, version) in report.items():
        click.echo(f"{name:<{width}}  {version:<45}  {path}")


if __name__ == "__main__":
    main()
