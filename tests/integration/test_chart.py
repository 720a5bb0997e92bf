"""The Helm chart against the real API server, with the real helm binary.

Covers: `helm lint charts/padlock` is clean; `helm install` into a fresh namespace creates the
chart's objects (Deployment, ServiceAccount, Service, ClusterRole/Binding, Roles/Bindings in the
release and Falco namespaces, the default RuleSource, the CRDs from crds/); the installed RBAC
grants the chart's ServiceAccount what the operator needs and nothing of the tenant's; `helm
uninstall` removes the release's objects. No pods run (there is no kubelet), so nothing waits for
the Deployment to become available.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from padlock.api import RuleSource
from padlock.devenv.tools import Runner

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "padlock"


def test_helm_lint_is_clean(helm: Runner) -> None:
    result = helm("lint", str(CHART), "--strict", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


@pytest.fixture
def release(helm: Runner, kubectl: Runner, namespace: str) -> Iterator[dict[str, Any]]:
    """The chart installed as a uniquely named release in a fresh namespace; uninstalled afterwards.

    Unique release, webhook configuration and RuleSource names keep it from colliding with the
    operator RBAC other integration tests apply from the same chart.
    """
    suffix = secrets.token_hex(3)
    info = {
        "name": f"it-{suffix}",
        "namespace": namespace,
        "fullname": f"it-{suffix}-padlock",
        "webhook": f"it-{suffix}.padlock.dev",
        "rulesource": f"falco-rules-{suffix}",
    }
    result = helm(
        "install",
        info["name"],
        str(CHART),
        "--namespace",
        namespace,
        "--set",
        f"webhook.configurationName={info['webhook']}",
        "--set",
        f"defaultRuleSource.name={info['rulesource']}",
        check=False,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    kubectl.forget_discovery()
    try:
        yield info
    finally:
        helm("uninstall", info["name"], "--namespace", namespace, check=False, timeout=180)


def _get(kubectl: Runner, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(kubectl("get", *args, "-o", "json").stdout)
    return data


def test_helm_install_creates_the_charts_objects(kubectl: Runner, release: dict[str, Any]) -> None:
    ns, full = release["namespace"], release["fullname"]
    deploy = _get(kubectl, "deployment", full, "-n", ns)
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "padlock"
    assert pod["containers"][0]["args"][0] == "operator"
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert _get(kubectl, "serviceaccount", "padlock", "-n", ns)["metadata"]["name"] == "padlock"
    ports = {p["name"]: p["port"] for p in _get(kubectl, "service", full, "-n", ns)["spec"]["ports"]}
    assert ports == {"webhook": 443, "metrics": 9090}
    role = _get(kubectl, "clusterrole", f"{full}-operator")
    assert any("managedpolicies" in r["resources"] and "create" in r["verbs"] for r in role["rules"])
    crb = _get(kubectl, "clusterrolebinding", f"{full}-operator")
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": "padlock", "namespace": ns}]
    assert _get(kubectl, "role", f"{full}-operator-rules", "-n", "falco")["rules"][0]["resources"] == [
        "configmaps"
    ]
    assert _get(kubectl, "rolebinding", f"{full}-operator", "-n", ns)["roleRef"]["name"] == f"{full}-operator"
    rs = RuleSource.model_validate(_get(kubectl, "rulesource", release["rulesource"]))
    assert rs.spec.oci is not None and rs.spec.oci.tag == "5"
    crds = kubectl("get", "crd", "-o", "name").stdout
    assert "customresourcedefinition.apiextensions.k8s.io/managedpolicies.padlock.dev" in crds


def test_installed_rbac_grants_the_chart_service_account_exactly_its_job(
    kubectl: Runner, release: dict[str, Any]
) -> None:
    ns = release["namespace"]
    sa = f"system:serviceaccount:{ns}:padlock"

    def can(*args: str) -> bool:
        result = kubectl("auth", "can-i", *args, "--as", sa, check=False)
        return result.stdout.strip() == "yes"

    assert can("patch", "managedpolicies.padlock.dev")
    assert can("create", "managedpolicies.padlock.dev")
    assert can("patch", "rulesources.padlock.dev", "--subresource=status")
    assert can("create", "configmaps", "-n", "falco")
    assert can("update", "configmaps/padlock-rules-3", "-n", "falco")
    assert can("patch", f"validatingwebhookconfigurations/{release['webhook']}")
    # and nothing beyond it
    assert not can("create", "rulesources.padlock.dev")
    assert not can("delete", "custompolicies.padlock.dev")
    assert not can("create", "configmaps", "-n", "default")
    assert not can("get", "secrets", "-n", "falco")
    # Secrets only by name (rbac.pullSecretNames, none by default); ConfigMaps only the declared shards.
    assert not can("get", "secrets", "-n", ns)
    assert not can("update", "configmaps/falco-config", "-n", "falco")
    assert not can("list", "configmaps", "-n", "falco")
    assert not can("list", "secrets", "-n", ns)
    assert not can("patch", "validatingwebhookconfigurations/some-other-webhook")
    assert not can("create", "pods", "-n", ns)


def test_helm_uninstall_removes_the_release_objects(
    helm: Runner, kubectl: Runner, release: dict[str, Any]
) -> None:
    ns, full = release["namespace"], release["fullname"]
    helm("uninstall", release["name"], "--namespace", ns, timeout=180)
    assert kubectl("get", "deployment", full, "-n", ns, check=False).returncode != 0
    assert kubectl("get", "clusterrole", f"{full}-operator", check=False).returncode != 0
    # CRDs from crds/ are never deleted by Helm: other releases' objects depend on them.
    assert kubectl("get", "crd", "rulesources.padlock.dev", check=False).returncode == 0
