"""The chart's high-availability values against the real API server, with the real helm binary.

Covers: `helm install` with replicaCount=2 and leaderElection.enabled creates the Deployment with two
replicas, the PodDisruptionBudget (minAvailable 1) and the empty Secret for the shared webhook
certificate; the chart's ServiceAccount may get and update that Secret, may not create Secrets nor
read another one; after the operator filled the Secret, `helm upgrade` keeps its data (the chart
never renders data, so helm's three-way merge leaves it alone). No pods run (no kubelet).
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

from padlock.devenv.tools import Runner

CHART = Path(__file__).resolve().parents[2] / "charts" / "padlock"
HA = ("replicaCount=2", "leaderElection.enabled=true")


def _get(kubectl: Runner, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(kubectl("get", *args, "-o", "json").stdout)
    return data


def test_an_ha_install_keeps_the_filled_certificate_secret_across_upgrades_with_least_privilege(
        helm: Runner, kubectl: Runner, namespace: str) -> None:
    suffix = secrets.token_hex(3)
    name, full = f"ha-{suffix}", f"ha-{suffix}-padlock"
    sets = [*HA, f"webhook.configurationName=ha-{suffix}.padlock.dev", f"defaultRuleSource.name=ha-rules-{suffix}"]
    args = [arg for s in sets for arg in ("--set", s)]
    result = helm("install", name, str(CHART), "--namespace", namespace, *args, check=False, timeout=180)
    assert result.returncode == 0, result.stderr
    kubectl.forget_discovery()
    try:
        assert _get(kubectl, "deployment", full, "-n", namespace)["spec"]["replicas"] == 2
        pdb = _get(kubectl, "poddisruptionbudget", full, "-n", namespace)
        assert pdb["spec"]["minAvailable"] == 1
        secret_name = f"{full}-webhook-tls"
        assert "data" not in _get(kubectl, "secret", secret_name, "-n", namespace)

        sa = [f"--as=system:serviceaccount:{namespace}:padlock", "--as-group=system:serviceaccounts",
              f"--as-group=system:serviceaccounts:{namespace}"]

        def can(*what: str) -> bool:
            done = kubectl("auth", "can-i", *what, "-n", namespace, *sa, check=False)
            return done.stdout.strip() == "yes"

        assert can("get", f"secrets/{secret_name}") and can("update", f"secrets/{secret_name}")
        assert not can("create", "secrets") and not can("get", "secrets/other") and not can("list", "secrets")
        assert can("update", "leases/padlock-operator")

        # The first replica fills the Secret (as the operator does, through update); an upgrade keeps it.
        filled = {"ca.crt": base64.b64encode(b"ca").decode(), "tls.crt": base64.b64encode(b"crt").decode(),
                  "tls.key": base64.b64encode(b"key").decode()}
        obj = _get(kubectl, "secret", secret_name, "-n", namespace)
        kubectl("replace", "-f", "-", *sa, input=json.dumps({**obj, "data": filled}))
        result = helm("upgrade", name, str(CHART), "--namespace", namespace, *args,
                      "--set", "podDisruptionBudget.enabled=true", check=False, timeout=180)
        assert result.returncode == 0, result.stderr
        assert _get(kubectl, "secret", secret_name, "-n", namespace).get("data") == filled
    finally:
        helm("uninstall", name, "--namespace", namespace, check=False, timeout=180)
