"""Find (or build) the kube-apiserver and etcd binaries that the local control plane runs.

Called by ``padlock.devenv.controlplane``, ``.ci/install`` and ``python -m padlock.devenv``. Lookup
order, the one controller-runtime's envtest uses plus the project's own build:

1. per-binary variables ``TEST_ASSET_KUBE_APISERVER`` / ``TEST_ASSET_ETCD``;
2. ``KUBEBUILDER_ASSETS``, a directory holding both binaries;
3. the cache ``<cache>/k8s-bin/<version>-<sha256(go.sum)[:12]>/`` that ``tests/controlplane/build.sh``
   fills (keyed by go.sum so a version bump never picks up stale binaries);
4. building them with ``tests/controlplane/build.sh`` when ``go`` is on PATH and the source checkout is
   present (the script is not part of the installed package);
5. otherwise :class:`MissingBinaryError` naming the binary and the command that provides it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from padlock.devenv import paths
from padlock.devenv.errors import MissingBinaryError

#: Must match K8S_VERSION in tests/controlplane/build.sh (a unit test checks it).
KUBERNETES_VERSION = "v1.35.4"

#: binary name -> its per-binary environment variable (envtest's names).
ENV_VARS: dict[str, str] = {
    "kube-apiserver": "TEST_ASSET_KUBE_APISERVER",
    "etcd": "TEST_ASSET_ETCD",
}

BUILD_SCRIPT = Path("tests/controlplane/build.sh")


@dataclass(frozen=True)
class ControlPlaneBinaries:
    """Absolute paths of the two server binaries, and where each was found (for the test report)."""

    kube_apiserver: Path
    etcd: Path
    origin: str

    def versions(self) -> dict[str, str]:
        """First line of each binary's ``--version`` output, e.g. ``Kubernetes v1.35.4``."""
        return {
            "kube-apiserver": _first_line([str(self.kube_apiserver), "--version"]),
            "etcd": _first_line([str(self.etcd), "--version"]),
        }


def _first_line(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else f"(no output, exit {out.returncode})"


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def cache_bin_dir(repo: Path | None, env: Mapping[str, str]) -> Path | None:
    """The cache directory build.sh writes for this checkout's go.sum, or None without a checkout."""
    if repo is None:
        return None
    go_sum = repo / "tests/controlplane/go.sum"
    if not go_sum.is_file():
        return None
    digest = hashlib.sha256(go_sum.read_bytes()).hexdigest()[:12]
    return paths.cache_dir(env) / "k8s-bin" / f"{KUBERNETES_VERSION}-{digest}"


def build_command(repo: Path | None) -> str:
    """The exact shell command that builds both binaries (shown in error messages)."""
    script = (repo / BUILD_SCRIPT) if repo is not None else Path("<padlock checkout>") / BUILD_SCRIPT
    return f"bash {script}"


def remedy(repo: Path | None, name: str) -> str:
    env_var = ENV_VARS[name]
    how = (
        f"run `{build_command(repo)}` (needs Go >= 1.25 and the Go module proxy; about 20 minutes cold, "
        f"then cached), or set {env_var}=/path/to/{name} or KUBEBUILDER_ASSETS=<dir with kube-apiserver and etcd>"
    )
    if repo is None:
        how += " (the build script is in a source checkout of padlock; set PADLOCK_REPO to it)"
    return how


def _from_env(name: str, env: Mapping[str, str], repo: Path | None) -> Path | None:
    env_var = ENV_VARS[name]
    value = env.get(env_var)
    if value:
        path = Path(value)
        if not _is_executable(path):
            raise MissingBinaryError(name, f"{env_var}={value} is not an executable file", remedy(repo, name))
        return path.resolve()
    assets = env.get("KUBEBUILDER_ASSETS")
    if assets:
        path = Path(assets) / name
        if not _is_executable(path):
            raise MissingBinaryError(
                name, f"KUBEBUILDER_ASSETS={assets} has no executable {name}", remedy(repo, name)
            )
        return path.resolve()
    return None


def find(
    *, env: Mapping[str, str] | None = None, repo: Path | None = None, build: bool = True
) -> ControlPlaneBinaries:
    """Locate kube-apiserver and etcd, building them if allowed and possible.

    ``env`` and ``repo`` exist for tests; by default the process environment and the detected
    checkout are used. ``build=False`` never starts the (long) Go build.
    """
    env = os.environ if env is None else env
    repo = paths.repo_root(env) if repo is None else repo
    apiserver = _from_env("kube-apiserver", env, repo)
    etcd = _from_env("etcd", env, repo)
    if apiserver is not None and etcd is not None:
        return ControlPlaneBinaries(apiserver, etcd, origin="environment")

    cached = cache_bin_dir(repo, env)
    origin = "cache"
    have_go = shutil.which("go", path=env.get("PATH")) is not None
    if cached is not None and not _complete(cached) and build and have_go and repo is not None:
        cached = _build(repo, cached, env)
        origin = "built"
    for name, found in (("kube-apiserver", apiserver), ("etcd", etcd)):
        if found is None and (cached is None or not _is_executable(cached / name)):
            problem = "not found in TEST_ASSET_*/KUBEBUILDER_ASSETS"
            if cached is not None:
                problem += f" nor in the cache {cached}"
            if shutil.which("go", path=env.get("PATH")) is None:
                problem += " and `go` is not on PATH to build it"
            raise MissingBinaryError(name, problem, remedy(repo, name))
    assert cached is not None  # both missing-from-env cases above raise when cached is None
    return ControlPlaneBinaries(
        apiserver or (cached / "kube-apiserver"),
        etcd or (cached / "etcd"),
        origin=origin if apiserver is None and etcd is None else "environment+" + origin,
    )


def _complete(directory: Path) -> bool:
    return _is_executable(directory / "kube-apiserver") and _is_executable(directory / "etcd")


@contextlib.contextmanager
def _build_lock(directory: Path) -> Iterator[None]:
    # Several pytest processes (or a demo and a test run) may need the binaries at once; one build is
    # 10-25 minutes of both CPUs, so the others wait for it instead of starting their own.
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build(repo: Path, out: Path, env: Mapping[str, str]) -> Path:
    with _build_lock(out):
        if _complete(out):
            return out
        log = out.parent / f"{out.name}.build.log"
        with open(log, "w") as log_file:
            result = subprocess.run(
                ["bash", str(repo / BUILD_SCRIPT), str(out)],
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
                env=dict(env),
                check=False,
            )
        if result.returncode != 0 or not _complete(out):
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise MissingBinaryError(
                "kube-apiserver/etcd",
                f"`{build_command(repo)}` failed with exit {result.returncode} (full log: {log}):\n{tail}",
                "fix the build error above, then re-run the same command",
            )
    return out
