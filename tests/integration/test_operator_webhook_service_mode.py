"""Service mode, as the chart runs it: the real ``padlock operator`` patches the caBundle of the chart's
service-based webhook configuration, with the chart's RBAC and the chart Deployment's own env vars.

The configuration comes from ``helm template --show-only templates/webhook.yaml``; the API server here
cannot reach a Service (no kube-proxy, no endpoints), so only the patch and the certificate are
checked, not admission through the Service.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from padlock.controllers.local_webhook import LocalWebhook
from padlock.controllers.process import OperatorProcess, free_port
from padlock.webhook.handlers import HANDLER_IDS

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "padlock"
CONFIG = "padlock.dev"


def _chart_env(helm: Any) -> dict[str, str]:
    """The operator container's literal env vars from the chart's Deployment (the downward API aside)."""
    manifest = helm("template", "padlock", str(CHART), "--namespace", "padlock-system",
                    "--show-only", "templates/deployment.yaml").stdout
    (deploy,) = [d for d in yaml.safe_load_all(manifest) if d]
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


@pytest.fixture
def chart_configuration(kubectl: Any, helm: Any, crds_installed: list[str]) -> Iterator[str]:
    manifest = helm("template", "padlock", str(CHART), "--namespace", "padlock-system",
                    "--show-only", "templates/webhook.yaml").stdout
    kubectl("apply", "-f", "-", input=manifest)
    try:
        yield CONFIG
    finally:
        kubectl("delete", "validatingwebhookconfiguration", CONFIG, "--ignore-not-found")


def test_operator_in_service_mode_patches_the_charts_configuration(
    control_plane: Any, kubectl: Any, helm: Any, operator_rbac: Any, chart_configuration: str,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = _chart_env(helm)
    assert env["PADLOCK_WEBHOOK_CA_BUNDLE_CONFIG"] == chart_configuration
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POD_NAMESPACE", "padlock-system")  # the chart sets it from the downward API
    cert_dir = tmp_path / "tls"
    op = OperatorProcess(control_plane.kubeconfig("operator"), tmp_path / "operator.log",
                         extra=["--webhook-addr", "127.0.0.1", "--webhook-port", str(free_port()),
                                "--webhook-cert-dir", str(cert_dir), "--plugin", "container=0.4.0"])
    hook = LocalWebhook(kubectl, helm, CHART, port=0, cert_dir=cert_dir, name=chart_configuration)
    assert hook.ca_bundles() == [None] * len(HANDLER_IDS), "the chart's configuration starts without a caBundle"
    op.start()
    try:
        op.wait_ready(120)
        deadline = time.monotonic() + 60
        while not hook.ca_published() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert hook.ca_published(), op.tail()
        stored = json.loads(kubectl("get", "validatingwebhookconfiguration", chart_configuration, "-o", "json").stdout)
        # Only the caBundle moved: every webhook still points at the chart's Service.
        for hook_cfg in stored["webhooks"]:
            service = hook_cfg["clientConfig"]["service"]
            assert (service["name"], service["namespace"]) == ("padlock", "padlock-system")
        cert = x509.load_pem_x509_certificate((cert_dir / "tls.crt").read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
        assert "padlock.padlock-system.svc" in sans
    finally:
        op.stop()
    log = (tmp_path / "operator.log").read_text(errors="replace")
    assert "cannot publish the webhook caBundle" not in log, log[-3000:]
