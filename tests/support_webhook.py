"""Helpers for the admission integration tests: run Padlock's webhook as a real process, wait for it.

``WebhookProcess`` starts ``python -m kopf run --standalone -A -m padlock.webhook.standalone`` (the same
handlers ``padlock operator`` serves) against the test control plane; kopf registers a
ValidatingWebhookConfiguration with ``url: https://127.0.0.1:<port>/<handler id>`` and the caBundle
of a certificate generated for 127.0.0.1. ``wait_for_lock`` then probes with a server-side dry run
until the API server actually calls the webhook, because webhook configurations load asynchronously.
Used by tests/integration/test_lock*.py, test_admission*.py and bench/webhook.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from padlock.devenv.controlplane import ControlPlane

REPO = Path(__file__).resolve().parents[1]
OPERATOR_IDENTITY = "operator"
VAP_NAMES = ("padlock-lock-managedpolicies", "padlock-lock-configmaps", "padlock-reserve-rules-configmaps")


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], *, timeout: float = 60, interval: float = 0.3, what: str) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


class WebhookProcess:
    """The webhook as a separate process, registered under a unique configuration name."""

    def __init__(
        self, control_plane: ControlPlane, workdir: Path, *, plugins: str = "container=0.4.0",
        falco_namespace: str = "falco",
    ) -> None:
        self.control_plane = control_plane
        self.workdir = workdir
        self.port = free_port()
        self.config_name = f"padlock-test-{secrets.token_hex(3)}.padlock.dev"
        self.cert_dir = workdir / "tls"
        self.log_path = workdir / "webhook.log"
        self.plugins = plugins
        self.falco_namespace = falco_namespace
        """Where the webhook reserves the rules ConfigMap names (``padlock.policy.lock.PublishTarget``)."""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WebhookProcess:
        env = dict(os.environ)
        env.update(
            {
                "KUBECONFIG": str(self.control_plane.kubeconfig("admin")),
                "PADLOCK_WEBHOOK_ADDR": "127.0.0.1",
                "PADLOCK_WEBHOOK_PORT": str(self.port),
                "PADLOCK_WEBHOOK_CERT_DIR": str(self.cert_dir),
                "PADLOCK_WEBHOOK_CONFIG": self.config_name,
                "PADLOCK_PLUGINS": self.plugins,
                "PADLOCK_FALCO_NAMESPACE": self.falco_namespace,
            }
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kopf", "run", "--standalone", "-A", "-m", "padlock.webhook.standalone"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def registered(self) -> bool:
        status, body = self.control_plane.request(
            "GET", f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{self.config_name}"
        )
        if not self.alive():
            raise AssertionError(f"webhook process exited early:\n{self.log_tail()}")
        return status == 200 and bool(json.loads(body).get("webhooks"))

    def kill(self) -> None:
        """SIGKILL: the process cannot clean up, so its webhook configuration stays, as after a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.control_plane.request(
            "DELETE",
            f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{self.config_name}",
        )


def managed_policy(name: str, *, description: str = "Rules tagged mitre_credential_access") -> dict[str, Any]:
    return {
        "apiVersion": "padlock.dev/v1alpha1",
        "kind": "ManagedPolicy",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": "padlock", "padlock.dev/catalog": "default"},
        },
        "spec": {
            "displayName": "Credential access",
            "description": description,
            "catalog": {"name": "default", "version": "1", "policy": "credential-access"},
            "source": {"ruleSource": "falco-rules", "version": "1.0.0"},
            "defaultEnabled": True,
            "rules": [
                {
                    "name": "Read sensitive file untrusted",
                    "desc": "an attempt to read a sensitive file",
                    "condition": "open_read and sensitive_files",
                    "output": "Sensitive file opened (file=%fd.name)",
                    "priority": "WARNING",
                    "tags": ["mitre_credential_access"],
                    "enabled": True,
                    "source": "syscall",
                }
            ],
        },
    }


def generated_configmap(name: str, namespace: str = "falco") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "padlock"},
            "annotations": {"padlock.dev/content-hash": "sha256:0"},
        },
        "data": {"padlock-policies.yaml": "[]\n"},
    }


def grant_lock_test_rbac(kubectl: Callable[..., Any], suffix: str) -> None:
    """Let tenant and operator write ManagedPolicies and the Falco namespace's ConfigMaps, so RBAC is
    never what denies a request in these tests: only the lock may."""
    rbac = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"padlock-lock-test-{suffix}"},
            "rules": [
                {
                    "apiGroups": ["padlock.dev"],
                    "resources": ["managedpolicies", "managedpolicies/status"],
                    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "verbs": ["get", "list", "create", "update", "patch", "delete"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"padlock-lock-test-{suffix}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"padlock-lock-test-{suffix}",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "tenant"},
                {"kind": "ServiceAccount", "name": "padlock", "namespace": "padlock-system"},
            ],
        },
    ]
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac}))


def revoke_lock_test_rbac(kubectl: Callable[..., Any], suffix: str) -> None:
    kubectl("delete", "clusterrolebinding,clusterrole", f"padlock-lock-test-{suffix}", "--ignore-not-found")


@contextlib.contextmanager
def registered_webhook(
    control_plane: ControlPlane, kubectl: Callable[..., Any], workdir: Path, **options: Any
) -> Iterator[tuple[WebhookProcess, str]]:
    """A started webhook that kopf has registered, with the lock tests' RBAC granted; yields the
    process and the random suffix of this run's names. Stops it and revokes the RBAC afterwards."""
    suffix = secrets.token_hex(3)
    grant_lock_test_rbac(kubectl, suffix)
    process = WebhookProcess(control_plane, workdir, **options).start()
    try:
        wait_until(process.registered, timeout=90, what=f"kopf to register {process.config_name}")
        yield process, suffix
    finally:
        process.stop()
        revoke_lock_test_rbac(kubectl, suffix)


@contextlib.contextmanager
def operator_managed_policy(kubectl: Callable[..., Any], prefix: str) -> Iterator[str]:
    """A ManagedPolicy ``<prefix>-<random>`` created by the operator identity, deleted by it afterwards."""
    name = f"{prefix}-{secrets.token_hex(4)}"
    kubectl("create", "-f", "-", input=json.dumps(managed_policy(name)), identity=OPERATOR_IDENTITY)
    try:
        yield name
    finally:
        kubectl("delete", "managedpolicy", name, "--ignore-not-found", "--wait=false", identity=OPERATOR_IDENTITY)


def patch(
    kubectl: Callable[..., Any], kind: str, name: str, body: Any, *extra: str, type: str = "merge",
    namespace: str | None = None, **kwargs: Any,
) -> Any:
    """``kubectl patch <kind> <name> --type=<type> -p <body as JSON> [extra...]``; ``kwargs`` go to kubectl
    (``identity``, ``check``)."""
    where = ["-n", namespace] if namespace else []
    return kubectl("patch", kind, name, *where, *extra, f"--type={type}", "-p", json.dumps(body), **kwargs)


def chart_template(helm: Callable[..., Any], template: str, *sets: str) -> str:
    """``templates/<template>`` of charts/padlock as the chart renders it in padlock-system, with
    ``--set`` for each of ``sets``."""
    values = [arg for s in sets for arg in ("--set", s)]
    return str(helm(
        "template", "padlock", str(REPO / "charts" / "padlock"), "--namespace", "padlock-system",
        "--show-only", f"templates/{template}", *values,
    ).stdout)
