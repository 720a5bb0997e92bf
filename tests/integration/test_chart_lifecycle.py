"""The chart's life on the real API server: install with every new value, upgrade from the previous
chart version, uninstall, and what the garbage collector may do when a RuleSource goes.

Covers:
- ``helm install`` with tests/data/chart/every-new-value.yaml (every key added for issue 9 set) creates
  every rendered object, including the ServiceMonitor and the cert-manager Certificate (their CRDs are
  the minimal stand-ins in tests/data/chart/third-party-crds.yaml) and the NetworkPolicy; while it is
  installed, its failurePolicy: Fail webhooks (the operator is not running) refuse a ConfigMap create
  in the Falco namespace; after ``helm uninstall`` no ValidatingWebhookConfiguration or
  ValidatingAdmissionPolicy(Binding) of the release is left and the same create succeeds.
- ``helm upgrade`` from the chart as committed at 6e6ab16 (extracted with ``git archive``, not vendored)
  to this chart, with the same values file: every object of the old release is still there with the
  same uid (none deleted and recreated), the user's value (webhook.certSecret) still reaches the
  Deployment, and a ManagedPolicy's user choices (enabled, disabledRules, scope) are untouched.
- Owner references: the published ConfigMaps are owned (non-blocking) by the RuleSources
  (padlock.flows.publishing.owners). Once the chart's RuleSource is deleted, the garbage collector's
  identity may delete the ConfigMap it owned, which the lock refuses anyone else. There is no
  kube-controller-manager here (padlock.devenv.controlplane), so the collector's requests are made by
  impersonation, as in test_adversarial_lock.py.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from padlock.adapters.kube.publish import owner_reference
from padlock.devenv.tools import Runner
from padlock.flows.publishing import owners
from padlock.flows.state import Snapshot
from support_webhook import managed_policy, wait_until

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "padlock"
DATA = REPO / "tests" / "data" / "chart"
PREVIOUS_CHART_COMMIT = "6e6ab16"
GC = ["--as=system:serviceaccount:kube-system:generic-garbage-collector",
      "--as-group=system:serviceaccounts", "--as-group=system:serviceaccounts:kube-system"]
CHOICES = {"enabled": False, "disabledRules": ["Read sensitive file untrusted"],
           "scope": {"namespaces": {"exclude": ["kube-system"]}}}
ADMISSION_KINDS = ("validatingwebhookconfigurations", "validatingadmissionpolicies",
                   "validatingadmissionpolicybindings")


@pytest.fixture(scope="module")
def third_party_crds(kubectl: Runner, crds_installed: list[str]) -> None:
    kubectl("apply", "--server-side", "-f", str(DATA / "third-party-crds.yaml"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/servicemonitors.monitoring.coreos.com",
            "crd/certificates.cert-manager.io", "crd/issuers.cert-manager.io", "crd/clusterissuers.cert-manager.io")
    kubectl.forget_discovery()


def _as_operator(namespace: str) -> list[str]:
    """kubectl flags acting as the release's operator ServiceAccount (the identity the lock exempts)."""
    return [f"--as=system:serviceaccount:{namespace}:padlock", "--as-group=system:serviceaccounts",
            f"--as-group=system:serviceaccounts:{namespace}"]


def _objects(manifest: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(manifest) if isinstance(d, dict) and d.get("kind")]


def _get(kubectl: Runner, obj: dict[str, Any], namespace: str) -> dict[str, Any] | None:
    """The stored object for a manifest object, or None."""
    kind = f"{obj['kind']}.{obj['apiVersion'].split('/')[0]}" if "/" in obj["apiVersion"] else obj["kind"]
    where = ["-n", obj["metadata"].get("namespace", namespace)]
    result = kubectl("get", kind, obj["metadata"]["name"], *where, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _release_admission(kubectl: Runner, release: str) -> list[str]:
    out = kubectl("get", ",".join(ADMISSION_KINDS), "-l", f"app.kubernetes.io/instance={release}",
                  "-o", "name").stdout
    return out.split()


def _configmap_create(kubectl: Runner, name: str) -> subprocess.CompletedProcess[str]:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "falco"}, "data": {}}
    return kubectl("create", "-f", "-", input=json.dumps(body), check=False)


def test_install_with_every_new_value_then_uninstall_leaves_nothing_that_blocks_the_api(
    helm: Runner, kubectl: Runner, namespace: str, third_party_crds: None,
) -> None:
    release = f"every-{secrets.token_hex(3)}"
    installed = False
    try:
        result = helm("install", release, str(CHART), "--namespace", namespace, "-f",
                      str(DATA / "every-new-value.yaml"), check=False, timeout=180)
        assert result.returncode == 0, result.stderr
        installed = True
        kubectl.forget_discovery()
        manifest = helm("get", "manifest", release, "--namespace", namespace).stdout
        objects = _objects(manifest)
        kinds = {o["kind"] for o in objects}
        assert {"ServiceMonitor", "Certificate", "NetworkPolicy", "RuleSource", "ServiceAccount",
                "ValidatingWebhookConfiguration"} <= kinds
        for obj in objects:
            assert _get(kubectl, obj, namespace) is not None, f"{obj['kind']}/{obj['metadata']['name']} missing"
        deploy = _get(kubectl, {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "padlock-x"}},
                      namespace)
        assert deploy is not None
        pod = deploy["spec"]["template"]["spec"]
        assert pod["priorityClassName"] == "padlock-critical"
        assert pod["serviceAccountName"] == "padlock-x-operator"
        config = _get(kubectl, {"kind": "ValidatingWebhookConfiguration",
                                "apiVersion": "admissionregistration.k8s.io/v1",
                                "metadata": {"name": "padlock-x.padlock.dev"}}, namespace)
        assert config is not None
        assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{namespace}/padlock-x-webhook"
        assert {h["failurePolicy"] for h in config["webhooks"]} == {"Fail"}
        # failurePolicy Fail and no operator answering: the API server refuses what the webhook covers.
        name = f"probe-{secrets.token_hex(3)}"
        refused = wait_until(lambda: _configmap_create(kubectl, name).returncode != 0, timeout=60,
                             what="the Fail webhook to load")
        assert refused
        assert _release_admission(kubectl, release)
    finally:
        if installed:
            helm("uninstall", release, "--namespace", namespace, timeout=180)
    assert _release_admission(kubectl, release) == []
    # Webhook configurations unload asynchronously: the create succeeds once the API server dropped it.
    name = f"after-{secrets.token_hex(3)}"
    wait_until(lambda: _configmap_create(kubectl, name).returncode == 0, timeout=60,
               what="a ConfigMap create in the Falco namespace after uninstall")
    kubectl("delete", "configmap", name, "-n", "falco", "--wait=false")


@pytest.fixture
def previous_chart(tmp_path: Path) -> Path:
    """charts/padlock as committed at 6e6ab16, extracted with git archive."""
    archive = tmp_path / "previous.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", "-o", str(archive), PREVIOUS_CHART_COMMIT,
                    "charts/padlock"], check=True, timeout=60)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "previous", filter="data")
    chart = tmp_path / "previous" / "charts" / "padlock"
    assert yaml.safe_load((chart / "Chart.yaml").read_text())["name"] == "padlock"
    return chart


@pytest.fixture
def upgraded(
    helm: Runner, kubectl: Runner, namespace: str, previous_chart: Path, third_party_crds: None, tmp_path: Path,
) -> Iterator[dict[str, Any]]:
    """A release installed from the previous chart with the user's values, then upgraded to this chart."""
    suffix = secrets.token_hex(3)
    release = f"up-{suffix}"
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({
        "webhook": {"configurationName": f"up-{suffix}.padlock.dev", "certSecret": "my-webhook-tls"},
        "defaultRuleSource": {"name": f"falco-rules-{suffix}", "tag": "5", "interval": "30m"},
        "operator": {"logFormat": "text", "podLabels": {"team": "security"}},
    }))
    # --skip-crds: this session's CRDs (crds/ of this tree, applied by crds_installed) are already newer,
    # as after `kubectl apply -f crds/`, the documented CRD upgrade; Helm never upgrades CRDs itself.
    result = helm("install", release, str(previous_chart), "--namespace", namespace, "-f", str(values),
                  "--skip-crds", check=False, timeout=180)
    assert result.returncode == 0, result.stderr
    kubectl.forget_discovery()
    try:
        before = _objects(helm("get", "manifest", release, "--namespace", namespace).stdout)
        uids = {}
        for obj in before:
            stored = _get(kubectl, obj, namespace)
            assert stored is not None, f"{obj['kind']}/{obj['metadata']['name']}"
            uids[(obj["kind"], obj["metadata"]["name"])] = stored["metadata"]["uid"]
        # A ManagedPolicy as the operator made it, then the user's choices on it.
        kubectl(*_as_operator(namespace), "create", "-f", "-", input=json.dumps(managed_policy(f"up-policy-{suffix}")))
        kubectl("patch", "managedpolicy", f"up-policy-{suffix}", "--type=merge", "-p", json.dumps({"spec": CHOICES}))
        result = helm("upgrade", release, str(CHART), "--namespace", namespace, "-f", str(values),
                      check=False, timeout=180)
        assert result.returncode == 0, result.stderr
        yield {"release": release, "before": before, "uids": uids, "values": values, "suffix": suffix}
    finally:
        kubectl(*_as_operator(namespace), "delete", "managedpolicy", f"up-policy-{suffix}", "--ignore-not-found",
                "--wait=false", check=False)
        helm("uninstall", release, "--namespace", namespace, check=False, timeout=180)


def test_upgrade_from_the_previous_chart_keeps_every_object_and_choice(
    kubectl: Runner, namespace: str, upgraded: dict[str, Any],
) -> None:
    policy = f"up-policy-{upgraded['suffix']}"
    for obj in upgraded["before"]:
        stored = _get(kubectl, obj, namespace)
        key = (obj["kind"], obj["metadata"]["name"])
        assert stored is not None, f"{key} deleted by the upgrade"
        assert stored["metadata"]["uid"] == upgraded["uids"][key], f"{key} recreated by the upgrade"
    deploy = next(o for o in upgraded["before"] if o["kind"] == "Deployment")
    stored = _get(kubectl, deploy, namespace)
    assert stored is not None
    volumes = {v["name"]: v for v in stored["spec"]["template"]["spec"]["volumes"]}
    assert volumes["webhook-tls"]["secret"]["secretName"] == "my-webhook-tls"
    assert stored["spec"]["template"]["metadata"]["labels"]["team"] == "security"
    assert "--log-format=text" in stored["spec"]["template"]["spec"]["containers"][0]["args"]
    spec = json.loads(kubectl("get", "managedpolicy", policy, "-o", "json").stdout)["spec"]
    assert {k: spec.get(k) for k in CHOICES} == CHOICES


def test_deleting_a_rule_source_lets_the_garbage_collector_remove_the_configmaps_it_owned(
    kubectl: Runner, namespace: str, upgraded: dict[str, Any],
) -> None:
    rulesource = json.loads(kubectl("get", "rulesource", f"falco-rules-{upgraded['suffix']}", "-o", "json").stdout)
    # What the operator writes: one non-blocking, non-controller reference per RuleSource.
    snapshot = Snapshot(sources={rulesource["metadata"]["name"]: rulesource}, bundles={}, managed={}, custom={},
                        exceptions={})
    refs = owners(snapshot)
    assert refs == [owner_reference(rulesource)]
    assert refs[0]["blockOwnerDeletion"] is False and refs[0]["controller"] is False
    as_operator = _as_operator(namespace)
    name = "padlock-rules-3"
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "falco", "labels": {"app.kubernetes.io/managed-by": "padlock"},
                         "ownerReferences": refs},
            "data": {"padlock-policies.yaml": "[]\n"}}
    kubectl(*as_operator, "create", "-f", "-", input=json.dumps(body))
    try:
        # The lock: nobody else deletes a published ConfigMap (the chart's ValidatingAdmissionPolicy).
        refused = kubectl("delete", "configmap", name, "-n", "falco", "--wait=false", check=False)
        assert refused.returncode != 0 and "padlock" in refused.stderr.lower()
        kubectl("delete", "rulesource", rulesource["metadata"]["name"], "--wait=false")
        wait_until(lambda: kubectl("get", "rulesource", rulesource["metadata"]["name"], check=False).returncode != 0,
                   timeout=60, what="the RuleSource to be gone (no finalizer without a running operator)")
        # Every owner gone: the collector deletes the dependent (the upgraded lock policy lets it; the
        # previous chart's refused it, and policy updates reach the API server's admission asynchronously).
        wait_until(lambda: kubectl(*GC, "delete", "configmap", name, "-n", "falco", "--wait=false",
                                   check=False).returncode == 0,
                   timeout=60, interval=1, what="the garbage collector's delete to be admitted")
        assert kubectl("get", "configmap", name, "-n", "falco", check=False).returncode != 0
    finally:
        kubectl(*as_operator, "delete", "configmap", name, "-n", "falco", "--ignore-not-found", "--wait=false",
                check=False)
