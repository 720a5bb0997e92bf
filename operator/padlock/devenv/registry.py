"""A real OCI registry on 127.0.0.1 for tests and the demo: Debian's ``docker-registry`` (CNCF
Distribution 2.8), with filesystem storage in a temporary directory and deletes enabled.

Called by the ``registry`` fixture, ``padlock demo`` and ``.ci/install``. The binary is
``$PADLOCK_DOCKER_REGISTRY``, else ``/usr/bin/docker-registry`` (``apt-get install docker-registry``),
else the same binary unpacked from the ``.deb`` into the cache (``apt-get download`` + ``dpkg-deb -x``,
no installation or service needed). The registry speaks plain HTTP and has no OCI referrers API, so
clients use ``insecure=True`` / plain-HTTP and tag-based signatures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from padlock.devenv import paths, processes
from padlock.devenv.errors import MissingBinaryError

SYSTEM_BINARY = Path("/usr/bin/docker-registry")
INSTALL_COMMAND = "apt-get update && apt-get install -y docker-registry"
ENV_VAR = "PADLOCK_DOCKER_REGISTRY"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find(
    *, env: Mapping[str, str] | None = None, system_binary: Path = SYSTEM_BINARY, fetch: bool = True
) -> Path:
    """Path of the docker-registry binary (see the module docstring for the order).

    ``system_binary`` exists for tests, which point it at a temporary path.
    """
    env = os.environ if env is None else env
    override = env.get(ENV_VAR)
    if override:
        if not _executable(Path(override)):
            raise MissingBinaryError(
                "docker-registry",
                f"{ENV_VAR}={override} is not an executable file",
                f"unset {ENV_VAR} or fix the path",
            )
        return Path(override)
    if _executable(system_binary):
        return system_binary
    unpacked = paths.cache_dir(env) / "docker-registry" / "usr/bin/docker-registry"
    if _executable(unpacked):
        return unpacked
    if fetch and shutil.which("apt-get") and shutil.which("dpkg-deb"):
        _unpack_deb(unpacked.parents[2])
        if _executable(unpacked):
            return unpacked
    raise MissingBinaryError(
        "docker-registry",
        f"not at {system_binary} nor in the cache {unpacked}",
        f"run `{INSTALL_COMMAND}` (Debian), or set {ENV_VAR}=/path/to/registry-binary",
    )


def _unpack_deb(dest: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="padlock-deb-") as tmp:
        download = subprocess.run(
            ["apt-get", "download", "docker-registry"], cwd=tmp, capture_output=True, text=True, check=False
        )
        debs = list(Path(tmp).glob("docker-registry_*.deb"))
        if download.returncode != 0 or not debs:
            raise MissingBinaryError(
                "docker-registry",
                f"`apt-get download docker-registry` failed: {download.stderr.strip()[-500:]}",
                f"run `{INSTALL_COMMAND}`",
            )
        staging = Path(tmp) / "root"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(staging)], check=True, capture_output=True)
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / "usr/bin"
        target.mkdir(parents=True, exist_ok=True)
        # Rename into place last, so a half-unpacked binary is never found by a concurrent run.
        shutil.copy2(staging / "usr/bin/docker-registry", target / ".docker-registry.tmp")
        (target / ".docker-registry.tmp").replace(target / "docker-registry")


def version(binary: Path) -> str:
    """One-line version, e.g. ``docker-registry github.com/docker/distribution 2.8.2+ds1``."""
    result = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    return (
        (result.stdout or result.stderr).strip().splitlines()[0] if (result.stdout or result.stderr) else "?"
    )


class Registry:
    """A started registry; ``address`` is ``127.0.0.1:<port>`` (what OCI clients call the hostname).

    Use as a context manager, or ``start()`` / ``stop()``. ``workdir`` defaults to a fresh temporary
    directory that ``stop()`` removes; a given ``workdir`` is kept.
    """

    def __init__(
        self, *, binary: Path | None = None, workdir: Path | None = None, start_timeout: float = 30.0
    ) -> None:
        self.binary = binary
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="padlock-registry-")) if workdir is None else workdir
        self.start_timeout = start_timeout
        self.port = 0
        self._server: processes.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def log(self) -> Path:
        return self.workdir / "registry.log"

    def start(self) -> Registry:
        binary = self.binary or find()
        self.binary = binary
        (self.workdir / "storage").mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):
            self.port = processes.free_port()
            config = self.workdir / "config.yml"
            # Written as JSON-compatible YAML by hand to keep this module free of a YAML dependency.
            config.write_text(
                "version: 0.1\n"
                "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
                "storage:\n"
                f"  filesystem:\n    rootdirectory: {self.workdir / 'storage'}\n"
                "  delete:\n    enabled: true\n"
                f"http:\n  addr: {self.address}\n  secret: padlock-devenv-not-a-secret\n"
            )
            server = processes.Server("docker-registry", [str(binary), "serve", str(config)], self.log)
            server.start()
            self._server = server
            try:
                processes.wait_until(server, self._ready, self.start_timeout, f"GET {self.url}/v2/")
                return self
            except Exception:
                retry = processes.port_in_use(server)
                server.stop()
                if not retry:
                    raise
        raise server.failure("could not find a free port in 3 attempts")

    def _ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/v2/", timeout=2) as response:
            return bool(response.status == 200)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        return None if self._server is None or self._server.process is None else self._server.process.pid

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
