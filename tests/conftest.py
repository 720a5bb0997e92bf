"""Session fixtures giving integration tests real parts: kube-apiserver + etcd, kubectl, helm, an OCI
registry, the CRDs and the chart's operator RBAC (all from ``padlock.devenv``).

Everything under ``tests/integration/`` is marked ``integration`` automatically. The control plane is
started lazily, once per session, by the first test that needs it, so unit-only runs never start it.
Fixtures (see docs/design.md, "Test harness"):

- ``control_plane``: a started :class:`padlock.devenv.controlplane.ControlPlane` (identities
  ``admin``, ``tenant``, ``operator``); its versions are printed in the terminal summary.
- ``kubectl`` / ``helm``: ``kubectl(*args, identity="admin", input=None, check=True) -> CompletedProcess``.
- ``registry``: ``"127.0.0.1:<port>"`` of a started plain-HTTP OCI registry.
- ``api``: the admin ``kubernetes.client.ApiClient``.
- ``namespace``: a fresh namespace per test.
- ``crds_installed``: crds/*.yaml applied and Established (names returned).
- ``operator_rbac``: the chart's RBAC applied, binding the ``operator`` identity.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from padlock.devenv import binaries, rbac, tools
from padlock.devenv import registry as oci_registry
from padlock.devenv.controlplane import ControlPlane
from padlock.devenv.errors import DevenvError

REPO = Path(__file__).resolve().parents[1]
INTEGRATION_DIR = REPO / "tests" / "integration"
CRDS_DIR = REPO / "crds"

# Lines describing the real parts this session used; printed in the terminal summary so CI logs
# show what actually ran, whatever the capture mode.
_ENVIRONMENT_REPORT = pytest.StashKey[list[str]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(_ENVIRONMENT_REPORT, [])
    if lines:
        terminalreporter.section("padlock test environment")
        for line in lines:
            terminalreporter.write_line(line)


def _announce(config: pytest.Config, line: str) -> None:
    """Record a line for the summary and show it at once, bypassing output capture."""
    config.stash.setdefault(_ENVIRONMENT_REPORT, []).append(line)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"[padlock] {line}")
    else:
        reporter.write_line(f"[padlock] {line}")


def _fail_on_devenv_error(action: Callable[[], Any]) -> Any:
    # A missing binary or chart file is a failure with the message saying how to get it, never a skip.
    try:
        return action()
    except DevenvError as error:
        failure = str(error)
    # Outside the except block, so the report shows only the message, not a chained traceback.
    pytest.fail(failure, pytrace=False)


@pytest.fixture(scope="session")
def control_plane(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    found = _fail_on_devenv_error(binaries.find)
    versions = found.versions()
    # A pytest temp dir (kept for the last few runs) so the logs survive a failed session.
    workdir = tmp_path_factory.mktemp("control-plane")
    with ControlPlane(binaries=found, workdir=workdir) as cp:
        server = cp.server_version()
        _announce(
            request.config,
            f"control plane: server {server.get('gitVersion')} at {cp.url}; kube-apiserver "
            f"{versions['kube-apiserver']!r}, {versions['etcd']!r} ({found.origin}: {found.kube_apiserver.parent}); "
            f"ready in {cp.started_in:.1f}s; logs in {cp.workdir}",
        )
        yield cp


def _runner(name: str, config: pytest.Config, cp: ControlPlane, home: Path) -> tools.Runner:
    path = _fail_on_devenv_error(lambda: tools.find(name))
    _announce(config, f"{name}: {tools.version(path)} ({path})")
    return tools.Runner(path, cp.kubeconfig, home)


@pytest.fixture(scope="session")
def kubectl(
    request: pytest.FixtureRequest, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> tools.Runner:
    return _runner("kubectl", request.config, control_plane, tmp_path_factory.mktemp("kubectl-home"))


@pytest.fixture(scope="session")
def helm(
    request: pytest.FixtureRequest, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> tools.Runner:
    return _runner("helm", request.config, control_plane, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def registry_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[oci_registry.Registry]:
    """The started registry object (address, url, log); most tests want ``registry`` instead."""
    binary = _fail_on_devenv_error(oci_registry.find)
    with oci_registry.Registry(binary=binary, workdir=tmp_path_factory.mktemp("registry")) as server:
        _announce(request.config, f"registry: {oci_registry.version(binary)} at {server.url}")
        yield server


@pytest.fixture(scope="session")
def registry(registry_server: oci_registry.Registry) -> str:
    return registry_server.address


@pytest.fixture(scope="session")
def api(control_plane: ControlPlane) -> Iterator[Any]:
    client = control_plane.api_client("admin")
    yield client
    client.close()


@pytest.fixture
def namespace(request: pytest.FixtureRequest, control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace named after the test. Deleted afterwards; with no namespace controller it
    stays Terminating, which is why names are unique."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-") or "t"
    name = f"{stem}-{secrets.token_hex(3)}"
    control_plane.create_namespace(name)
    yield name
    control_plane.request("DELETE", f"/api/v1/namespaces/{name}")


@pytest.fixture(scope="session")
def crds_installed(kubectl: tools.Runner) -> list[str]:
    """Apply every CRD in crds/ as admin and wait until each is Established; returns the CRD names."""
    files = sorted(CRDS_DIR.glob("*.yaml"))
    names = [
        doc["metadata"]["name"]
        for path in files
        for doc in yaml.load_all(path.read_text(), Loader=yaml.SafeLoader)
        if doc and doc.get("kind") == "CustomResourceDefinition"
    ]
    if not names:
        pytest.fail(
            f"{CRDS_DIR} holds no CustomResourceDefinition: generate them with `make crds` "
            "(python -m padlock.api.schema --write)",
            pytrace=False,
        )
    # Server-side apply: generated CRDs can exceed the 256 KiB last-applied annotation of client-side apply.
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS_DIR))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in names))
    kubectl.forget_discovery()
    return names


@pytest.fixture(scope="session")
def operator_rbac(control_plane: ControlPlane) -> rbac.OperatorRbac:
    """The chart's RBAC for the operator, applied; fails (never fakes RBAC) when the chart lacks it."""
    applied: rbac.OperatorRbac = _fail_on_devenv_error(lambda: rbac.install_operator_rbac(control_plane))
    return applied
