"""The operator's webhook on 127.0.0.1 for local runs: ``padlock demo``, integration tests, bench.

The harness, acting as admin, installs the chart's webhook configuration in url mode
(``webhook_wiring.url_mode_configuration``: same webhooks, rules and failurePolicy, ``url`` instead of
the Service) under the chart's configuration name; ``padlock operator`` started with ``flags()``
serves the handlers and patches the caBundle exactly as in a cluster, so it runs with nothing but
the chart's RBAC. ``kubectl`` and ``helm`` are ``padlock.devenv.tools.Runner``-like callables
(``(*args, identity=, input=, check=) -> CompletedProcess``).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from padlock.controllers.webhook_wiring import DEFAULT_CONFIGURATION, url_mode_configuration

VWC = "validatingwebhookconfiguration"


class LocalWebhook:
    """One url-mode webhook configuration on a local control plane, and the flags to serve it."""

    def __init__(self, kubectl: Callable[..., Any], helm: Callable[..., Any], chart: Path, *, port: int,
                 cert_dir: Path, name: str = DEFAULT_CONFIGURATION) -> None:
        self.kubectl = kubectl
        self.helm = helm
        self.chart = chart
        self.port = port
        self.cert_dir = cert_dir
        self.name = name

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def flags(self) -> list[str]:
        """``padlock operator`` flags that serve this webhook (add ``--plugin``/``--engine-version``)."""
        return ["--webhook-addr", "127.0.0.1", "--webhook-port", str(self.port), "--webhook-cert-dir",
                str(self.cert_dir), "--webhook-configuration", self.name]

    def install(self) -> dict[str, Any]:
        """Create (or replace) the url-mode configuration as admin; returns what was applied."""
        manifest = self.helm("template", "padlock", str(self.chart), "--namespace", "padlock-system",
                             "--show-only", "templates/webhook.yaml").stdout
        config = url_mode_configuration(manifest, self.base_url, name=self.name)
        self.kubectl("apply", "-f", "-", input=json.dumps(config))
        return config

    def remove(self) -> None:
        self.kubectl("delete", VWC, self.name, "--ignore-not-found", check=False)

    def ca_bundles(self) -> list[bytes | None]:
        """The caBundle of every webhook in the configuration (None where unset)."""
        done = self.kubectl("get", VWC, self.name, "-o", "json", check=False)
        if done.returncode != 0:
            return []
        hooks = json.loads(done.stdout).get("webhooks") or []
        return [base64.b64decode(b) if (b := (h.get("clientConfig") or {}).get("caBundle")) else None
                for h in hooks]

    def ca_published(self) -> bool:
        """True once every webhook carries the CA the operator serves with (``cert_dir/ca.crt``)."""
        ca_file = self.cert_dir / "ca.crt"
        if not ca_file.is_file():
            return False
        bundles = self.ca_bundles()
        return bool(bundles) and all(b == ca_file.read_bytes() for b in bundles)

    def wait_answering(self, policy: str, *, timeout: float = 90.0) -> None:
        """Wait until the API server calls the webhook: a dry-run locked edit of ``policy`` is denied by it.

        Webhook configurations load asynchronously in the API server, and the caBundle arrives after the
        operator starts, so the first requests may skip the webhook (failurePolicy Ignore).
        """
        marker = f'admission webhook "lock-managedpolicy.{self.name}" denied'
        patch = json.dumps({"metadata": {"labels": {"padlock.dev/probe": "x"}}})
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            done = self.kubectl("patch", "managedpolicy", policy, "--type=merge", "-p", patch, "--dry-run=server",
                                check=False)
            last = done.stderr or done.stdout
            if marker in last:
                return
            time.sleep(0.5)
        raise TimeoutError(f"the API server did not call the webhook at {self.base_url} within {timeout:.0f}s "
                           f"(last answer: {last.strip()[:300]})")
