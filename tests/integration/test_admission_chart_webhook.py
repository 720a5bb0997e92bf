"""The chart's service-based webhook configuration on a real API server, and the operator's caBundle publishing.

Covers: ``helm template --show-only templates/webhook.yaml`` is accepted by the API server with one
webhook per handler id (paths = kopf handler ids); ``publish_ca_bundle`` writes the CA into every
webhook using only get and patch, as the operator's identity with the chart's RBAC, and is a no-op
the second time.
"""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path

from padlock.adapters.kube.client import KubeClient, load_connection
from padlock.devenv.controlplane import ControlPlane
from padlock.devenv.rbac import OperatorRbac
from padlock.devenv.tools import Runner
from padlock.webhook import certs, handlers, publish_ca_bundle
from support_webhook import chart_template

VWC = "validatingwebhookconfiguration"


def test_chart_webhook_configuration_gets_the_operators_ca_bundle(
    control_plane: ControlPlane, kubectl: Runner, helm: Runner, operator_rbac: OperatorRbac, tmp_path: Path
) -> None:
    manifest = chart_template(helm, "webhook.yaml")
    kubectl("apply", "-f", "-", input=manifest)
    name = "padlock.dev"
    try:
        stored = json.loads(kubectl("get", VWC, name, "-o", "json").stdout)
        hooks = stored["webhooks"]
        assert sorted(h["name"] for h in hooks) == sorted(f"{i}.padlock.dev" for i in handlers.HANDLER_IDS)
        for hook in hooks:
            assert hook["clientConfig"]["service"]["path"] == "/" + hook["name"].removesuffix(".padlock.dev")
            assert hook["failurePolicy"] == "Ignore"
            assert "caBundle" not in hook["clientConfig"]
        cm_hook = next(h for h in hooks if h["name"].startswith("lock-configmap."))
        assert cm_hook["objectSelector"] == {"matchLabels": {"app.kubernetes.io/managed-by": "padlock"}}

        tls = certs.ensure(
            tmp_path, certs.service_sans("padlock", "padlock-system"), now=datetime.datetime.now(datetime.UTC)
        )
        operator = KubeClient(load_connection(str(control_plane.kubeconfig("operator"))))
        assert publish_ca_bundle(operator, name, tls.ca_pem()) is True
        stored = json.loads(kubectl("get", VWC, name, "-o", "json").stdout)
        for hook in stored["webhooks"]:
            assert base64.b64decode(hook["clientConfig"]["caBundle"]) == tls.ca_pem()
        assert publish_ca_bundle(operator, name, tls.ca_pem()) is False
    finally:
        kubectl("delete", VWC, name, "--ignore-not-found")
