"""Chaos: the registry a RuleSource follows hangs (SIGSTOP), then comes back (SIGCONT); the API server
(etcd and kube-apiserver) freezes for a few seconds during an adoption.

The test starts its own registry (the session one is shared), lets the operator adopt v1 from it,
then freezes the registry process: every request to it hangs. Checked while it is frozen: the
RuleSource turns ``Degraded=True`` with reason ``SourceUnavailable`` and keeps ``Ready=True`` on v1,
the operator stays alive and ``/healthz`` answers every poll, and the published ConfigMap is
unchanged. Once the registry resumes, the next release pushed is adopted: the system converges.
With the API server frozen right after a release is pushed, the release is still adopted and
published once it resumes, and the operator stays up.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from padlock.devenv import artifacts
from padlock.devenv import registry as oci_registry
from support_operator import RULES, running_operator, wait_for

SOURCE = "outage"


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[oci_registry.Registry]:
    with oci_registry.Registry(binary=oci_registry.find(), workdir=tmp_path / "registry") as server:
        yield server


@pytest.mark.timeout(600)
def test_a_hung_registry_degrades_the_source_and_the_operator_recovers_when_it_returns(
        control_plane: Any, kubectl: Any, crds_installed: list[str], operator_rbac: Any,
        own_registry: oci_registry.Registry, tmp_path: Path) -> None:
    pid = own_registry.pid
    assert pid is not None
    with running_operator(control_plane, kubectl, own_registry.address, tmp_path / "op", source=SOURCE) as running:
        user, op = running.user, running.op
        wait_for("v1 adopted", lambda: user.status("rulesource", SOURCE).get("currentVersion") == "1.0.0"
                 and user.configmap(), timeout=180)
        before = user.configmap()
        assert before is not None
        health: list[int] = []
        os.kill(pid, signal.SIGSTOP)
        try:
            def degraded() -> dict[str, Any] | None:
                health.append(op._get("/healthz")[0])
                c = user.condition("Degraded", "rulesource", SOURCE)
                return c if c and c["status"] == "True" and c["reason"] == "SourceUnavailable" else None

            cond = wait_for("RuleSource degraded by the hung registry", degraded, timeout=240)
            assert "cannot check for new versions" in cond["message"]
            ready = user.condition("Ready", "rulesource", SOURCE)
            assert ready is not None and ready["status"] == "True"
            assert op.proc is not None and op.proc.poll() is None
            assert health and set(health) == {200}, health
            after = user.configmap()
            assert after is not None and after["data"] == before["data"]
            assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        finally:
            os.kill(pid, signal.SIGCONT)
        files = {p.name: p.read_text() for p in sorted((RULES / "v2").glob("*.yaml"))}
        artifacts.push_rules_artifact(own_registry.address, running.repository, "1.1.0", files)
        wait_for("1.1.0 adopted after the registry returned",
                 lambda: user.status("rulesource", SOURCE).get("currentVersion") == "1.1.0", timeout=240)
        healthy = user.condition("Degraded", "rulesource", SOURCE)
        assert healthy is not None and healthy["status"] == "False"


@pytest.mark.timeout(600)
def test_an_api_server_outage_during_an_adoption_converges_without_losing_the_release(
        control_plane: Any, kubectl: Any, registry: str, crds_installed: list[str], operator_rbac: Any,
        tmp_path: Path) -> None:
    """etcd and kube-apiserver frozen (SIGSTOP) for a few seconds right after a release is pushed: the
    adoption's writes fail or wait; once they resume the release is adopted and published."""
    with running_operator(control_plane, kubectl, registry, tmp_path / "op", source="apiserver-outage") as running:
        user = running.user
        wait_for("v1 adopted", lambda: user.status("rulesource", "apiserver-outage").get("currentVersion")
                 == "1.0.0" and user.configmap(), timeout=180)
        files = {p.name: p.read_text() for p in sorted((RULES / "v2").glob("*.yaml"))}
        artifacts.push_rules_artifact(registry, running.repository, "1.1.0", files)
        pids = control_plane.pids
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(6.0)
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        wait_for("1.1.0 adopted after the API server returned",
                 lambda: user.status("rulesource", "apiserver-outage").get("currentVersion") == "1.1.0",
                 timeout=240)
        cm = user.configmap()
        assert cm is not None
        assert any(text == files[name] for name in files for text in (cm.get("data") or {}).values())
        assert running.op.proc is not None and running.op.proc.poll() is None
