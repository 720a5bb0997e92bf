"""``padlock operator`` as a child process, for the demo, bench/operator and integration tests.

Starts the real command (same code path as in a pod) with the given kubeconfig, waits for
``/readyz``, and stops it with SIGTERM (kopf shuts down cleanly), then SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    def __init__(self, kubeconfig: Path | str, log: Path | str, *, extra: list[str] | None = None,
                 falco_namespace: str = "falco", configmap: str = "padlock-rules") -> None:
        self.kubeconfig = str(kubeconfig)
        self.log_path = Path(log)
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.args = [
            sys.executable, "-m", "padlock", "operator", "--kubeconfig", self.kubeconfig,
            "--falco-namespace", falco_namespace, "--configmap", configmap,
            "--health-addr", f"127.0.0.1:{self.health_port}", "--metrics-addr", f"127.0.0.1:{self.metrics_port}",
            *(extra or []),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
        log.close()
        return self

    def _get(self, path: str, port: int | None = None) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port or self.health_port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError as exc:
            return 0, str(exc)

    def ready(self) -> bool:
        return self._get("/readyz")[0] == 200

    def metrics(self) -> str:
        return self._get("/metrics", self.metrics_port)[1]

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"padlock operator exited with {self.proc.returncode}:\n{self.tail()}")
            if self.ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"padlock operator not ready after {timeout:.0f}s:\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
