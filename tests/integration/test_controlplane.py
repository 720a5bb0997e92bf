"""The real test environment behaves as the other integration tests assume.

Covers: the three identities (admin may do anything; tenant is refused cluster-wide reads and
cluster-scoped writes; the operator identity has exactly the permissions the Helm chart grants the
ServiceAccount, no more and no less), the kubeconfigs working with kubectl, helm and the python
client, the server reporting the pinned version, fresh namespaces, the CRDs becoming Established,
the OCI registry accepting a push, and the control plane's start/stop leaving no process behind and
reporting log tails when a component fails to start.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes.client
import oras.client
import pytest
from kubernetes.client.exceptions import ApiException

from padlock.devenv import binaries, processes
from padlock.devenv.controlplane import OPERATOR_USER, ControlPlane
from padlock.devenv.errors import StartupError
from padlock.devenv.rbac import NAMESPACE as OPERATOR_NAMESPACE
from padlock.devenv.rbac import OperatorRbac
from padlock.devenv.tools import Runner

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")

# Permissions every authenticated user has from the default bootstrap roles (system:basic-user,
# system:discovery, ...); they say nothing about the chart, so the comparison ignores them.
BOOTSTRAP_GRANTED = {
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectrulesreviews"),
    ("authentication.k8s.io", "selfsubjectreviews"),
}

# Resources the operator must not be able to touch unless the chart explicitly grants them; checked
# in addition to everything the chart mentions, so "equal" is tested in both directions.
PROBES = (
    ("", "secrets"),
    ("", "namespaces"),
    ("", "pods"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("apps", "daemonsets"),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
)


def test_admin_lists_namespaces_including_operator_and_falco_namespaces(kubectl: Runner, api: Any) -> None:
    names = kubectl("get", "namespaces", "-o", "name").stdout.split()
    assert {"namespace/padlock-system", "namespace/falco", "namespace/default"} <= set(names)
    listed = {ns.metadata.name for ns in kubernetes.client.CoreV1Api(api).list_namespace().items}
    assert {"padlock-system", "falco"} <= listed


def test_tenant_is_forbidden_to_list_namespaces(kubectl: Runner, control_plane: ControlPlane) -> None:
    result = kubectl("get", "namespaces", identity="tenant", check=False)
    assert result.returncode != 0
    assert 'User "tenant" cannot list resource "namespaces"' in result.stderr
    with pytest.raises(ApiException) as raised:
        kubernetes.client.CoreV1Api(control_plane.api_client("tenant")).list_namespace()
    assert raised.value.status == 403


def test_tenant_is_forbidden_to_create_a_cluster_role(kubectl: Runner, control_plane: ControlPlane) -> None:
    result = kubectl(
        "create",
        "clusterrole",
        "tenant-escalation",
        "--verb=get",
        "--resource=secrets",
        identity="tenant",
        check=False,
    )
    assert result.returncode != 0
    assert "forbidden" in result.stderr.lower()
    body = kubernetes.client.V1ClusterRole(metadata=kubernetes.client.V1ObjectMeta(name="tenant-escalation"))
    with pytest.raises(ApiException) as raised:
        kubernetes.client.RbacAuthorizationV1Api(control_plane.api_client("tenant")).create_cluster_role(body)
    assert raised.value.status == 403
    # And nothing was created behind the refusal.
    assert kubectl("get", "clusterrole", "tenant-escalation", check=False).returncode != 0


def test_identities_authenticate_with_documented_names_and_groups(kubectl: Runner) -> None:
    def whoami(identity: str) -> dict[str, Any]:
        review = json.loads(kubectl("auth", "whoami", "-o", "json", identity=identity).stdout)
        user: dict[str, Any] = review["status"]["userInfo"]
        return user

    admin, tenant, operator = whoami("admin"), whoami("tenant"), whoami("operator")
    assert admin["username"] == "admin" and "system:masters" in admin["groups"]
    assert tenant["username"] == "tenant"
    assert set(tenant["groups"]) == {"system:authenticated"}
    assert operator["username"] == OPERATOR_USER == "system:serviceaccount:padlock-system:padlock"
    assert {"system:serviceaccounts", "system:serviceaccounts:padlock-system"} <= set(operator["groups"])


def test_server_reports_the_pinned_kubernetes_version(control_plane: ControlPlane) -> None:
    # Proves build.sh's version ldflags took effect (an unstamped build reports v0.0.0).
    assert control_plane.server_version()["gitVersion"] == binaries.KUBERNETES_VERSION


def test_helm_uses_the_identity_kubeconfig(helm: Runner) -> None:
    assert helm("list", "--all-namespaces", "-o", "json").stdout.strip() == "[]"
    refused = helm("list", "--namespace", "falco", identity="tenant", check=False)
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower()


def test_namespace_fixture_gives_a_fresh_active_namespace(namespace: str, api: Any) -> None:
    core = kubernetes.client.CoreV1Api(api)
    assert core.read_namespace(namespace).status.phase == "Active"
    assert core.list_namespaced_config_map(namespace).items == []


def test_crds_are_established_and_listed_under_the_padlock_category(
    crds_installed: list[str], kubectl: Runner
) -> None:
    established = kubectl("get", "crd", "-o", "jsonpath={.items[*].metadata.name}").stdout.split()
    assert set(crds_installed) <= set(established)
    assert all(name.endswith(".padlock.dev") for name in crds_installed)
    # The shared category lets `kubectl get padlock` list every kind.
    assert kubectl("get", "padlock", "--all-namespaces").returncode == 0


# --- operator RBAC equals the chart's RBAC --------------------------------------------------------


def _split(resource: str) -> tuple[str, str]:
    name, _, sub = resource.partition("/")
    return name, sub


class _Grants:
    """Which (verb, group, resource, namespace) the chart's rendered RBAC grants the operator."""

    def __init__(self, applied: OperatorRbac) -> None:
        roles = {
            (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in applied.documents
        }
        self.cluster_rules: list[dict[str, Any]] = []
        self.namespaced_rules: dict[str, list[dict[str, Any]]] = {}
        for doc in applied.documents:
            if doc["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
                continue
            subjects = doc.get("subjects") or []
            if not any(
                s.get("kind") == "ServiceAccount"
                and s.get("name") == "padlock"
                and s.get("namespace", doc["metadata"].get("namespace")) == OPERATOR_NAMESPACE
                for s in subjects
            ):
                continue
            ref = doc["roleRef"]
            ns = (
                doc["metadata"].get("namespace", OPERATOR_NAMESPACE) if doc["kind"] == "RoleBinding" else None
            )
            role = roles.get((ref["kind"], None if ref["kind"] == "ClusterRole" else ns, ref["name"]))
            assert role is not None, (
                f"{doc['kind']} {doc['metadata']['name']} refers to {ref} not in rbac.yaml"
            )
            if ns is None:
                self.cluster_rules.extend(role.get("rules") or [])
            else:
                self.namespaced_rules.setdefault(ns, []).extend(role.get("rules") or [])

    @staticmethod
    def _matches(rule: dict[str, Any], verb: str, group: str, resource: str) -> bool:
        if rule.get("resourceNames"):
            return False  # name-restricted: a request without a name is not covered
        return (
            (verb in rule.get("verbs", []) or "*" in rule.get("verbs", []))
            and (group in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", []))
            and (resource in rule.get("resources", []) or "*" in rule.get("resources", []))
        )

    def allows(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        rules = list(self.cluster_rules)
        if namespace is not None:
            rules += self.namespaced_rules.get(namespace, [])
        return any(self._matches(rule, verb, group, resource) for rule in rules)

    def resources(self) -> set[tuple[str, str]]:
        out = set(PROBES)
        for rule in [*self.cluster_rules, *(r for rs in self.namespaced_rules.values() for r in rs)]:
            for group in rule.get("apiGroups", []):
                for resource in rule.get("resources", []):
                    if "*" not in (group, resource):
                        out.add((group, resource))
        return out


def _can(
    api: Any, verb: str, group: str, resource: str, namespace: str | None, name: str | None = None
) -> bool:
    plural, sub = _split(resource)
    review = kubernetes.client.V1SelfSubjectAccessReview(
        spec=kubernetes.client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=kubernetes.client.V1ResourceAttributes(
                verb=verb,
                group=group,
                resource=plural,
                subresource=sub or None,
                namespace=namespace,
                name=name,
            )
        )
    )
    result = kubernetes.client.AuthorizationV1Api(api).create_self_subject_access_review(review)
    return bool(result.status.allowed)


def test_operator_permissions_equal_the_chart_rbac(
    operator_rbac: OperatorRbac, control_plane: ControlPlane, kubectl: Runner, namespace: str
) -> None:
    grants = _Grants(operator_rbac)
    assert grants.cluster_rules or grants.namespaced_rules, (
        "the chart's RBAC binds nothing to ServiceAccount padlock"
    )
    operator = control_plane.api_client("operator")
    mismatches = []
    # Cluster scope, every namespace the chart binds a Role in, and an unrelated fresh namespace.
    scopes: list[str | None] = [None, namespace, *sorted(set(grants.namespaced_rules) | {OPERATOR_NAMESPACE})]
    for group, resource in sorted(grants.resources() - BOOTSTRAP_GRANTED):
        for ns in scopes:
            for verb in VERBS:
                expected = grants.allows(verb, group, resource, ns)
                if _can(operator, verb, group, resource, ns) != expected:
                    mismatches.append(
                        f"{verb} {resource}.{group or 'core'} in {ns or 'cluster'}: chart says {expected}"
                    )
    # Name-restricted grants hold for exactly the named objects.
    for rule in grants.cluster_rules:
        for name in rule.get("resourceNames") or []:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        if not _can(operator, verb, group, resource, None, name=name):
                            mismatches.append(f"{verb} {resource}.{group} named {name}: chart grants it")
                        if _can(operator, verb, group, resource, None, name=f"not-{name}"):
                            mismatches.append(
                                f"{verb} {resource}.{group} named not-{name}: chart does not grant it"
                            )
    assert mismatches == []
    # The same through kubectl, as an operator of the cluster would check it.
    escalate = kubectl(
        "auth", "can-i", "create", "clusterroles.rbac.authorization.k8s.io", identity="operator", check=False
    )
    expected_escalate = grants.allows("create", "rbac.authorization.k8s.io", "clusterroles", None)
    assert escalate.stdout.strip() == ("yes" if expected_escalate else "no")


def test_operator_can_do_what_the_chart_grants_via_kubectl(
    operator_rbac: OperatorRbac, kubectl: Runner
) -> None:
    grants = _Grants(operator_rbac)
    granted = [
        (verb, group, resource)
        for group, resource in sorted(grants.resources() - BOOTSTRAP_GRANTED)
        for verb in VERBS
        if grants.allows(verb, group, resource, None)
    ]
    assert granted, "the chart grants the operator no cluster-wide permission at all"
    verb, group, resource = granted[0]
    target = f"{resource}.{group}" if group else resource
    answer = kubectl("auth", "can-i", verb, target, "--all-namespaces", identity="operator", check=False)
    assert answer.stdout.strip() == "yes", answer.stderr


# --- registry -------------------------------------------------------------------------------------


def test_registry_accepts_a_falco_rules_push_and_lists_its_tag(registry: str, tmp_path: Path) -> None:
    layer = tmp_path / "falco_rules.yaml.tar.gz"
    layer.write_bytes(b"not really a tarball, the registry does not care")
    config = tmp_path / "config.json"
    config.write_text('{"dependencies": []}')
    client = oras.client.OrasClient(hostname=registry, insecure=True)
    target = f"{registry}/falcosecurity/rules/falco-rules"
    client.push(
        target=f"{target}:5.0.0",
        files=[f"{layer}:application/vnd.cncf.falco.rulesfile.layer.v1+tar.gz"],
        manifest_config=f"{config}:application/vnd.cncf.falco.rulesfile.config.v1+json",
        disable_path_validation=True,
    )
    assert client.get_tags(target) == ["5.0.0"]
    manifest = client.get_manifest(f"{target}:5.0.0")
    assert manifest["layers"][0]["mediaType"] == "application/vnd.cncf.falco.rulesfile.layer.v1+tar.gz"


def test_registry_allows_deleting_a_release(registry: str, tmp_path: Path) -> None:
    # Tests simulate a withdrawn upstream release this way; needs storage.delete.enabled.
    layer = tmp_path / "falco_rules.yaml.tar.gz"
    layer.write_bytes(b"withdrawn")
    client = oras.client.OrasClient(hostname=registry, insecure=True)
    repo = "falcosecurity/rules/withdrawn"
    client.push(target=f"{registry}/{repo}:1.0.0", files=[str(layer)], disable_path_validation=True)
    accept = "application/vnd.oci.image.manifest.v1+json"
    head = urllib.request.Request(
        f"http://{registry}/v2/{repo}/manifests/1.0.0", method="HEAD", headers={"Accept": accept}
    )
    with urllib.request.urlopen(head) as response:
        digest = response.headers["Docker-Content-Digest"]
    delete = urllib.request.Request(f"http://{registry}/v2/{repo}/manifests/{digest}", method="DELETE")
    with urllib.request.urlopen(delete) as response:
        assert response.status == 202
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(urllib.request.Request(head.full_url, headers={"Accept": accept}))
    assert gone.value.code == 404


# --- lifecycle --------------------------------------------------------------------------------------


def test_stop_leaves_no_process_and_no_temp_dir_behind(control_plane: ControlPlane) -> None:
    assert control_plane.binaries is not None
    second = ControlPlane(binaries=control_plane.binaries, namespaces=())
    with second:
        pids = second.pids
        assert len(pids) == 2 and all(processes.pid_alive(pid) for pid in pids)
        workdir = second.workdir
        assert second.request("GET", "/api/v1/namespaces/default")[0] == 200
    assert not any(processes.pid_alive(pid) for pid in pids)
    assert not workdir.exists()


def test_failed_start_reports_the_log_tail_and_cleans_up(control_plane: ControlPlane, tmp_path: Path) -> None:
    assert control_plane.binaries is not None
    broken = tmp_path / "kube-apiserver"
    broken.write_text("#!/bin/sh\necho 'simulated apiserver crash: bad flag' >&2\nexit 3\n")
    broken.chmod(0o755)
    bins = binaries.ControlPlaneBinaries(broken, control_plane.binaries.etcd, origin="test")
    cp = ControlPlane(binaries=bins, workdir=tmp_path / "run")
    with pytest.raises(StartupError) as raised:
        cp.start()
    message = str(raised.value)
    assert "kube-apiserver (exited 3)" in message
    assert "simulated apiserver crash: bad flag" in message
    assert len(cp.started_pids) == 2  # etcd started, then the broken apiserver
    assert not any(processes.pid_alive(pid) for pid in cp.started_pids)


_CHILD = """
import signal, sys, time
from padlock.devenv import binaries
from padlock.devenv.controlplane import ControlPlane
# A background shell may start us with SIGINT ignored; a user's Ctrl-C must still reach us.
signal.signal(signal.SIGINT, signal.default_int_handler)
found = binaries.ControlPlaneBinaries(__import__("pathlib").Path(sys.argv[1]), __import__("pathlib").Path(sys.argv[2]), "test")
with ControlPlane(binaries=found, namespaces=()) as cp:
    print(" ".join(map(str, cp.pids)), flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_no_process_survives_its_owner_being_interrupted_or_killed(
    control_plane: ControlPlane, how: signal.Signals
) -> None:
    assert control_plane.binaries is not None
    bins = control_plane.binaries
    owner = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(bins.kube_apiserver), str(bins.etcd)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    line = owner.stdout.readline()
    pids = [int(p) for p in line.split()]
    assert len(pids) == 2, owner.stderr.read() if owner.stderr else line
    owner.send_signal(how)
    owner.wait(timeout=60)
    # Ctrl-C runs stop(); SIGKILL leaves it to the kernel (PR_SET_PDEATHSIG). Either way they go.
    deadline = time.monotonic() + 30
    while any(processes.pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in pids if processes.pid_alive(pid)] == []
