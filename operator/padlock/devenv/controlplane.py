"""A real Kubernetes control plane on 127.0.0.1: etcd plus kube-apiserver as child processes, the
way controller-runtime's envtest runs them, with RBAC on and three token identities.

Called by the ``control_plane`` fixture in ``tests/conftest.py``, ``padlock demo`` and
``bench/controlplane_start.py``.

Identities (static tokens, ``--token-auth-file``):

- ``admin``: user ``admin`` in ``system:masters``, which bypasses RBAC; used for setup.
- ``tenant``: user ``tenant`` with no groups beyond ``system:authenticated``: an ordinary user who
  must be refused by Padlock's locks and by RBAC.
- ``operator``: user ``system:serviceaccount:padlock-system:padlock`` in the service-account groups.
  RBAC matches a ``ServiceAccount`` subject by this user name, so the chart's own bindings apply to
  it (see ``padlock.devenv.rbac``), and admission code sees exactly the operator's name.

There is no kube-controller-manager: deleted namespaces stay Terminating, owner references are never
acted on and no default ServiceAccounts appear (hence ``--disable-admission-plugins=ServiceAccount``).
Tests therefore use fresh namespaces and never assert on garbage collection.
"""

from __future__ import annotations

import json
import secrets
import shutil
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from padlock.devenv import binaries as binaries_mod
from padlock.devenv import processes
from padlock.devenv.errors import StartupError

if TYPE_CHECKING:
    import kubernetes.client

OPERATOR_USER = "system:serviceaccount:padlock-system:padlock"

#: identity -> (user name, uid, groups). Order is the order of the token file.
IDENTITIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "admin": ("admin", "admin-uid", ("system:masters",)),
    "tenant": ("tenant", "tenant-uid", ()),
    "operator": (
        OPERATOR_USER,
        "padlock-operator-uid",
        ("system:serviceaccounts", "system:serviceaccounts:padlock-system"),
    ),
}

#: Namespaces every control plane starts with: the operator's and Falco's.
DEFAULT_NAMESPACES = ("padlock-system", "falco")


class ControlPlane:
    """etcd + kube-apiserver for one run. ``with ControlPlane() as cp: ...`` or ``start()``/``stop()``.

    ``workdir`` defaults to a fresh temporary directory removed by ``stop()`` (a given one is kept,
    e.g. to read logs after a run). ``binaries`` defaults to :func:`padlock.devenv.binaries.find`.
    """

    def __init__(
        self,
        *,
        binaries: binaries_mod.ControlPlaneBinaries | None = None,
        workdir: Path | None = None,
        namespaces: tuple[str, ...] = DEFAULT_NAMESPACES,
        start_timeout: float = 90.0,
    ) -> None:
        self.binaries = binaries
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="padlock-cp-")) if workdir is None else workdir
        self.namespaces = namespaces
        self.start_timeout = start_timeout
        self.etcd_port = 0
        self.port = 0
        self._tokens = {name: secrets.token_hex(24) for name in IDENTITIES}
        self._etcd: processes.Server | None = None
        self._apiserver: processes.Server | None = None
        self.started_in: float | None = None
        #: Every process id this instance ever started (tests prove none survives ``stop()``).
        self.started_pids: list[int] = []

    # --- addresses and credentials -------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_port}"

    @property
    def ca_file(self) -> Path:
        # With --cert-dir the apiserver writes a self-signed serving certificate followed by its CA;
        # clients can trust this file directly (the upstream integration framework does).
        return self.workdir / "certs" / "apiserver.crt"

    @property
    def etcd_log(self) -> Path:
        return self.workdir / "etcd.log"

    @property
    def apiserver_log(self) -> Path:
        return self.workdir / "kube-apiserver.log"

    def token(self, identity: str) -> str:
        return self._tokens[self._check(identity)]

    def username(self, identity: str) -> str:
        return IDENTITIES[self._check(identity)][0]

    def kubeconfig(self, identity: str = "admin") -> Path:
        """A kubeconfig for one identity, usable by kubectl, helm and the kubernetes client."""
        return self.workdir / "kubeconfigs" / f"{self._check(identity)}.kubeconfig"

    def api_client(self, identity: str = "admin") -> kubernetes.client.ApiClient:
        """A synchronous kubernetes ``ApiClient`` authenticated as ``identity``."""
        import kubernetes.client  # imported here so the module loads without the client installed

        config = kubernetes.client.Configuration()
        config.host = self.url
        config.ssl_ca_cert = str(self.ca_file)
        config.api_key = {"authorization": f"Bearer {self.token(identity)}"}
        return kubernetes.client.ApiClient(config)

    def server_version(self) -> dict[str, Any]:
        """The apiserver's ``/version`` document (``gitVersion`` etc.)."""
        status, body = self.request("GET", "/version")
        if status != 200:
            raise StartupError(f"kube-apiserver: GET /version returned {status}: {body!r}")
        result: dict[str, Any] = json.loads(body)
        return result

    def request(
        self, method: str, path: str, body: Any = None, *, identity: str = "admin", timeout: float = 10
    ) -> tuple[int, bytes]:
        """One raw HTTPS request to the apiserver; returns (status, body) and never raises on HTTP errors."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token(identity)}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as error:
            return int(error.code), bytes(error.read())

    @property
    def pids(self) -> list[int]:
        """Process ids of etcd and kube-apiserver while they run (tests prove stop() reaps them)."""
        return [
            s.process.pid for s in (self._etcd, self._apiserver) if s is not None and s.process is not None
        ]

    def _record(self, server: processes.Server) -> None:
        if server.process is not None:
            self.started_pids.append(server.process.pid)

    @staticmethod
    def _check(identity: str) -> str:
        if identity not in IDENTITIES:
            raise ValueError(f"unknown identity {identity!r}; known: {', '.join(IDENTITIES)}")
        return identity

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> ControlPlane:
        """Start etcd, then kube-apiserver; return once the API serves requests as admin.

        On any failure everything started so far is stopped and the error carries the log tails.
        """
        began = time.monotonic()
        if self.binaries is None:
            self.binaries = binaries_mod.find()
        try:
            self._write_credentials()
            self._start_etcd(self.binaries.etcd)
            self._start_apiserver(self.binaries.kube_apiserver)
            self._write_kubeconfigs()
            for namespace in self.namespaces:
                self.create_namespace(namespace)
        except BaseException:
            self._stop_servers()
            raise
        self.started_in = time.monotonic() - began
        return self

    def stop(self) -> None:
        """SIGTERM kube-apiserver, then etcd (each waited for, then killed); remove an owned workdir."""
        self._stop_servers()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _stop_servers(self) -> None:
        # The apiserver first: stopping etcd under a running apiserver makes it log errors and retry.
        for server in (self._apiserver, self._etcd):
            if server is not None:
                server.stop()
        self._apiserver = self._etcd = None

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def create_namespace(self, name: str) -> None:
        """Create a namespace as admin (idempotent)."""
        status, body = self.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )
        if status not in (201, 409):
            raise StartupError(f"namespace {name}: create returned {status}: {body.decode(errors='replace')}")

    # --- steps ----------------------------------------------------------------------------------

    def _write_credentials(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = []
        for identity, (user, uid, groups) in IDENTITIES.items():
            line = f"{self._tokens[identity]},{user},{uid}"
            if groups:
                line += ',"' + ",".join(groups) + '"'
            lines.append(line)
        tokens = self.workdir / "tokens.csv"
        tokens.write_text("\n".join(lines) + "\n")
        tokens.chmod(0o600)
        # The apiserver needs a service-account signing key even though no controller mints tokens
        # (TokenRequest uses it). The verification flag only reads public keys, hence sa.pub.
        key = ec.generate_private_key(ec.SECP256R1())
        sa_key = self.workdir / "sa.key"
        sa_key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        sa_key.chmod(0o600)
        (self.workdir / "sa.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def _start_etcd(self, binary: Path) -> None:
        for _attempt in range(3):
            self.etcd_port, peer_port = processes.free_port(), processes.free_port()
            data = self.workdir / "etcd"
            shutil.rmtree(data, ignore_errors=True)
            peer = f"http://127.0.0.1:{peer_port}"
            server = processes.Server(
                "etcd",
                [
                    str(binary),
                    "--name=padlock",
                    f"--data-dir={data}",
                    f"--listen-client-urls={self.etcd_url}",
                    f"--advertise-client-urls={self.etcd_url}",
                    f"--listen-peer-urls={peer}",
                    f"--initial-advertise-peer-urls={peer}",
                    f"--initial-cluster=padlock={peer}",
                    # Test data is throwaway; skipping fsync is what makes start and writes fast.
                    "--unsafe-no-fsync",
                    "--log-level=warn",
                ],
                self.etcd_log,
            )
            server.start()
            self._etcd = server
            self._record(server)
            try:
                processes.wait_until(
                    server, self._etcd_healthy, self.start_timeout, f"GET {self.etcd_url}/health"
                )
                return
            except StartupError:
                if not processes.port_in_use(server):
                    raise
                server.stop()
        raise StartupError(f"etcd: no free port after 3 attempts; log:\n{processes.tail(self.etcd_log)}")

    def _etcd_healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as response:
            return bool(json.loads(response.read()).get("health") == "true")

    def _start_apiserver(self, binary: Path) -> None:
        for _attempt in range(3):
            self.port = processes.free_port()
            server = processes.Server(
                "kube-apiserver", [str(binary), *self._apiserver_args()], self.apiserver_log
            )
            server.start()
            self._apiserver = server
            self._record(server)
            try:
                processes.wait_until(server, self._readyz, self.start_timeout, f"GET {self.url}/readyz")
                processes.wait_until(
                    server, self._default_namespace, self.start_timeout, "GET /api/v1/namespaces/default"
                )
                return
            except StartupError as error:
                if not processes.port_in_use(server):
                    raise StartupError(
                        f"{error}\n--- etcd log tail:\n{processes.tail(self.etcd_log, 15)}"
                    ) from None
                server.stop()
        raise StartupError(
            f"kube-apiserver: no free port after 3 attempts; log:\n{processes.tail(self.apiserver_log)}"
        )

    def _apiserver_args(self) -> list[str]:
        sa_key = self.workdir / "sa.key"
        return [
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--cert-dir={self.workdir / 'certs'}",
            "--service-cluster-ip-range=10.0.0.0/24",
            f"--service-account-issuer=https://127.0.0.1:{self.port}",
            f"--service-account-key-file={self.workdir / 'sa.pub'}",
            f"--service-account-signing-key-file={sa_key}",
            # The default is AlwaysAllow, under which every permission test would pass vacuously.
            "--authorization-mode=RBAC",
            f"--token-auth-file={self.workdir / 'tokens.csv'}",
            # No controller creates default ServiceAccounts, so this plugin would reject every pod.
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            "--v=1",
        ]

    def _readyz(self) -> bool:
        if not self.ca_file.is_file():
            return False
        status, _body = self.request("GET", "/readyz", timeout=5)
        return status == 200

    def _default_namespace(self) -> bool:
        status, _body = self.request("GET", "/api/v1/namespaces/default", timeout=5)
        return status == 200

    def _write_kubeconfigs(self) -> None:
        directory = self.workdir / "kubeconfigs"
        directory.mkdir(parents=True, exist_ok=True)
        for identity in IDENTITIES:
            # JSON is valid YAML; kubectl, helm and the python client all read it.
            document = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "padlock-test",
                        "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)},
                    }
                ],
                "users": [{"name": identity, "user": {"token": self._tokens[identity]}}],
                "contexts": [{"name": identity, "context": {"cluster": "padlock-test", "user": identity}}],
                "current-context": identity,
            }
            path = self.kubeconfig(identity)
            path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
            path.chmod(0o600)
