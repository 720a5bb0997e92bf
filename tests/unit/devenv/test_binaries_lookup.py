"""How kube-apiserver and etcd are found: per-binary variables, then KUBEBUILDER_ASSETS, then the
cache keyed by go.sum, then a build with tests/controlplane/build.sh, else an error naming the binary
and the command that provides it. Hermetic: fake binaries, a fake checkout and a fake `go`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from padlock.devenv import binaries, paths
from padlock.devenv.errors import MissingBinaryError

REPO = Path(__file__).resolve().parents[3]


def _exe(path: Path, body: str = "#!/bin/sh\necho fake\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(0o755)
    return path


def _checkout(root: Path, build_body: str = "exit 1\n") -> Path:
    """A fake source checkout: go.sum and a build script."""
    _exe(root / "tests/controlplane/build.sh", "#!/usr/bin/env bash\n" + build_body)
    (root / "tests/controlplane/go.sum").write_text("k8s.io/kubernetes v1.35.4 h1:fake\n")
    return root


def _no_go_path(tmp_path: Path) -> str:
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    return str(empty)


def test_per_binary_variables_win_over_kubebuilder_assets_and_cache(tmp_path: Path) -> None:
    repo = _checkout(tmp_path / "repo")
    apiserver = _exe(tmp_path / "mine/kube-apiserver")
    etcd = _exe(tmp_path / "mine/etcd")
    assets = tmp_path / "assets"
    _exe(assets / "kube-apiserver")
    _exe(assets / "etcd")
    env = {
        "TEST_ASSET_KUBE_APISERVER": str(apiserver),
        "TEST_ASSET_ETCD": str(etcd),
        "KUBEBUILDER_ASSETS": str(assets),
        "PADLOCK_CACHE": str(tmp_path / "cache"),
        "PATH": _no_go_path(tmp_path),
    }
    found = binaries.find(env=env, repo=repo)
    assert (found.kube_apiserver, found.etcd) == (apiserver.resolve(), etcd.resolve())
    assert found.origin == "environment"


def test_kubebuilder_assets_is_used_when_no_per_binary_variable_is_set(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    _exe(assets / "kube-apiserver")
    _exe(assets / "etcd")
    env = {
        "KUBEBUILDER_ASSETS": str(assets),
        "PADLOCK_CACHE": str(tmp_path / "cache"),
        "PATH": _no_go_path(tmp_path),
    }
    found = binaries.find(env=env, repo=_checkout(tmp_path / "repo"))
    assert found.kube_apiserver == (assets / "kube-apiserver").resolve()
    assert found.etcd == (assets / "etcd").resolve()


def test_cache_directory_is_keyed_by_version_and_go_sum_hash(tmp_path: Path) -> None:
    repo = _checkout(tmp_path / "repo")
    env = {"PADLOCK_CACHE": str(tmp_path / "cache"), "PATH": _no_go_path(tmp_path)}
    digest = hashlib.sha256((repo / "tests/controlplane/go.sum").read_bytes()).hexdigest()[:12]
    cached = tmp_path / "cache/k8s-bin" / f"{binaries.KUBERNETES_VERSION}-{digest}"
    _exe(cached / "kube-apiserver")
    _exe(cached / "etcd")
    found = binaries.find(env=env, repo=repo)
    assert (found.kube_apiserver, found.etcd, found.origin) == (
        cached / "kube-apiserver",
        cached / "etcd",
        "cache",
    )


def test_binaries_cached_for_another_go_sum_are_not_used(tmp_path: Path) -> None:
    repo = _checkout(tmp_path / "repo")
    stale = tmp_path / "cache/k8s-bin" / f"{binaries.KUBERNETES_VERSION}-000000000000"
    _exe(stale / "kube-apiserver")
    _exe(stale / "etcd")
    env = {"PADLOCK_CACHE": str(tmp_path / "cache"), "PATH": _no_go_path(tmp_path)}
    with pytest.raises(MissingBinaryError):
        binaries.find(env=env, repo=repo)


def test_variable_pointing_at_a_missing_file_names_the_variable(tmp_path: Path) -> None:
    env = {"TEST_ASSET_ETCD": str(tmp_path / "nope/etcd"), "PATH": _no_go_path(tmp_path)}
    with pytest.raises(MissingBinaryError) as raised:
        binaries.find(env=env, repo=_checkout(tmp_path / "repo"))
    assert raised.value.name == "etcd"
    assert f"TEST_ASSET_ETCD={tmp_path / 'nope/etcd'} is not an executable file" in str(raised.value)


def test_kubebuilder_assets_without_the_binary_names_the_directory(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    _exe(assets / "etcd")
    env = {"KUBEBUILDER_ASSETS": str(assets), "PATH": _no_go_path(tmp_path)}
    with pytest.raises(MissingBinaryError) as raised:
        binaries.find(env=env, repo=_checkout(tmp_path / "repo"))
    assert raised.value.name == "kube-apiserver"
    assert f"KUBEBUILDER_ASSETS={assets} has no executable kube-apiserver" in str(raised.value)


def test_missing_binaries_without_go_name_the_binary_and_the_build_command(tmp_path: Path) -> None:
    repo = _checkout(tmp_path / "repo")
    env = {"PADLOCK_CACHE": str(tmp_path / "cache"), "PATH": _no_go_path(tmp_path)}
    with pytest.raises(MissingBinaryError) as raised:
        binaries.find(env=env, repo=repo)
    message = str(raised.value)
    assert message.startswith("kube-apiserver: ")
    assert "`go` is not on PATH" in message
    assert f"bash {repo / 'tests/controlplane/build.sh'}" in message
    assert "TEST_ASSET_KUBE_APISERVER" in message and "KUBEBUILDER_ASSETS" in message


def test_remedy_without_a_checkout_tells_to_set_padlock_repo() -> None:
    remedy = binaries.remedy(None, "etcd")
    assert "bash <padlock checkout>/tests/controlplane/build.sh" in remedy
    assert "PADLOCK_REPO" in remedy and "TEST_ASSET_ETCD" in remedy


def test_build_runs_the_checkout_script_when_go_is_on_path(tmp_path: Path) -> None:
    # The fake build script writes both binaries into the directory it is given, as build.sh does.
    repo = _checkout(
        tmp_path / "repo",
        'mkdir -p "$1"; for b in kube-apiserver etcd; do printf "#!/bin/sh\\necho built\\n" > "$1/$b"; '
        'chmod +x "$1/$b"; done; echo "$1"\n',
    )
    gobin = tmp_path / "gobin"
    _exe(gobin / "go")
    env = {"PADLOCK_CACHE": str(tmp_path / "cache"), "PATH": f"{gobin}:/usr/bin:/bin"}
    found = binaries.find(env=env, repo=repo)
    assert found.origin == "built"
    assert found.kube_apiserver.parent == binaries.cache_bin_dir(repo, env)
    assert found.versions() == {"kube-apiserver": "built", "etcd": "built"}


def test_failed_build_reports_its_log_tail_and_the_command(tmp_path: Path) -> None:
    repo = _checkout(tmp_path / "repo", 'echo "go: k8s.io/api@v0.0.0: unknown revision" >&2; exit 7\n')
    gobin = tmp_path / "gobin"
    _exe(gobin / "go")
    env = {"PADLOCK_CACHE": str(tmp_path / "cache"), "PATH": f"{gobin}:/usr/bin:/bin"}
    with pytest.raises(MissingBinaryError) as raised:
        binaries.find(env=env, repo=repo)
    message = str(raised.value)
    assert "failed with exit 7" in message
    assert "unknown revision" in message
    assert f"bash {repo / 'tests/controlplane/build.sh'}" in message


def test_build_false_never_builds(tmp_path: Path) -> None:
    repo = _checkout(tmp_path / "repo", 'touch "$1.ran"; exit 1\n')
    gobin = tmp_path / "gobin"
    _exe(gobin / "go")
    env = {"PADLOCK_CACHE": str(tmp_path / "cache"), "PATH": f"{gobin}:/usr/bin:/bin"}
    with pytest.raises(MissingBinaryError):
        binaries.find(env=env, repo=repo, build=False)
    assert not list((tmp_path / "cache").rglob("*.ran"))


def test_pinned_version_matches_the_build_script() -> None:
    script = (REPO / "tests/controlplane/build.sh").read_text()
    assert re.search(r'^K8S_VERSION="(v[0-9.]+)"', script, re.M).group(1) == binaries.KUBERNETES_VERSION  # type: ignore[union-attr]


def test_cache_dir_prefers_padlock_cache_then_xdg_cache_home() -> None:
    assert paths.cache_dir({"PADLOCK_CACHE": "/a", "XDG_CACHE_HOME": "/b"}) == Path("/a")
    assert paths.cache_dir({"XDG_CACHE_HOME": "/b"}) == Path("/b/padlock")
    assert paths.cache_dir({}) == Path.home() / ".cache/padlock"


def test_repo_root_is_found_from_this_checkout() -> None:
    assert paths.repo_root({}) == REPO
