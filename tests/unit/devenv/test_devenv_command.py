"""``python -m padlock.devenv``: ``versions`` reports every binary's version and path without
fetching or building, ``env`` prints export lines that pin them, and a missing binary ends with exit 1
and the message naming the binary and how to get it. Hermetic: shell scripts stand in for binaries.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from padlock.devenv.__main__ import main


def _exe(path: Path, output: str) -> Path:
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    fakes = {
        "TEST_ASSET_KUBE_APISERVER": _exe(tmp_path / "kube-apiserver", "Kubernetes v9.9.9"),
        "TEST_ASSET_ETCD": _exe(tmp_path / "etcd", "etcd Version: 9.9.9"),
        "PADLOCK_KUBECTL": _exe(tmp_path / "kubectl", "Client Version: v9.9.8"),
        "PADLOCK_HELM": _exe(tmp_path / "helm", "v9.9.7"),
        "PADLOCK_DOCKER_REGISTRY": _exe(tmp_path / "docker-registry", "registry 9.9.6"),
    }
    for name, path in fakes.items():
        monkeypatch.setenv(name, str(path))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setenv("PADLOCK_CACHE", str(tmp_path / "cache"))
    return fakes


def test_versions_lists_each_binary_with_its_version_and_path(fake_env: dict[str, Path]) -> None:
    result = CliRunner().invoke(main, ["versions"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert "Kubernetes v9.9.9" in lines["kube-apiserver"]
    assert str(fake_env["TEST_ASSET_ETCD"]) in lines["etcd"]
    assert "v9.9.8" in lines["kubectl"] and "v9.9.7" in lines["helm"]
    assert "registry 9.9.6" in lines["docker-registry"]


def test_env_prints_export_lines_for_every_binary(fake_env: dict[str, Path]) -> None:
    result = CliRunner().invoke(main, ["env"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"export {name}={path}" for name, path in fake_env.items()]


def test_missing_binary_exits_1_with_the_remedy(
    fake_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_ASSET_ETCD", "/nonexistent/etcd")
    result = CliRunner().invoke(main, ["versions"])
    assert result.exit_code == 1
    assert "error: etcd: TEST_ASSET_ETCD=/nonexistent/etcd is not an executable file" in result.output
