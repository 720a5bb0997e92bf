"""Adversarial tests of the lock on the real control plane: every attempt on a published ConfigMap or a
ManagedPolicy is refused, with the webhook up and again with only the ValidatingAdmissionPolicies.

Attackers, each holding the RBAC to do what it tries (so only the lock can refuse):
- ``admin`` (system:masters);
- ``root``, a second cluster-admin: a ServiceAccount bound to ``cluster-admin``, used by impersonation;
- ``tenant``, a user with edit rights on PolicyExceptions in its own namespace who also edits
  ConfigMaps in the Falco namespace and may patch ManagedPolicies (their user choices).

Covers, in both modes (``webhook``: Padlock's webhook registered, no policy; ``policy``: the webhook
killed, its configuration left behind with failurePolicy Ignore, the chart's policies applied):
``immutable: true`` (merge and JSON patch), ``binaryData`` added, data edited by server-side apply,
a foreign finalizer, owner references dropped or replaced, ``generateName`` set, the managed-by label
removed, a ``padlock.dev/`` annotation added, delete; creating the reserved shard names unlabelled
(``padlock-rules-1``, ``-01``, ``-17``, ``padlock-rules``), a labelled ConfigMap under any name and a
labelled one by ``generateName: padlock-rules-``; ManagedPolicy finalizers, owner references and
``padlock.dev/`` labels; the operator confined to its own names in the Falco namespace.

The garbage collector: this control plane runs no kube-controller-manager (see
``padlock.devenv.controlplane``), so garbage collection itself cannot run here. What Padlock decides is
tested instead: requests made as the garbage collector's identity
(``system:serviceaccount:kube-system:generic-garbage-collector``, impersonated, with its bootstrap RBAC)
may delete a published ConfigMap and a ManagedPolicy and drop owner references, and may not edit data.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from padlock.devenv.controlplane import ControlPlane
from padlock.devenv.tools import Runner
from support_webhook import (
    OPERATOR_IDENTITY,
    VAP_NAMES,
    chart_template,
    generated_configmap,
    managed_policy,
    operator_managed_policy,
    registered_webhook,
    wait_until,
)

SUFFIX = secrets.token_hex(3)
FALCO = f"falco-adv-{SUFFIX}"
TEAM = f"team-adv-{SUFFIX}"
OPS = f"ops-adv-{SUFFIX}"
GC_USER = "system:serviceaccount:kube-system:generic-garbage-collector"
AS = {
    "root": [f"--as=system:serviceaccount:{OPS}:root", "--as-group=system:serviceaccounts",
             f"--as-group=system:serviceaccounts:{OPS}"],
    "gc": [f"--as={GC_USER}", "--as-group=system:serviceaccounts", "--as-group=system:serviceaccounts:kube-system"],
}
ATTACKERS = ("admin", "root", "tenant")


def run(kubectl: Runner, who: str, *args: str, **kwargs: Any) -> Any:
    """kubectl as ``who``: a token identity, or admin impersonating ``root`` / ``gc``."""
    if who in AS:
        return kubectl(*AS[who], *args, identity="admin", **kwargs)
    return kubectl(*args, identity=who, **kwargs)


def _rbac() -> list[dict[str, Any]]:
    def binding(kind: str, name: str, role_kind: str, role: str, subjects: list[dict[str, Any]],
                namespace: str | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if namespace:
            meta["namespace"] = namespace
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
                "subjects": subjects}

    tenant = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "tenant"}]
    operator = [{"kind": "ServiceAccount", "name": "padlock", "namespace": "padlock-system"}]
    every = ["get", "list", "watch", "create", "update", "patch", "delete"]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "root", "namespace": OPS}},
        binding("ClusterRoleBinding", f"adv-root-{SUFFIX}", "ClusterRole", "cluster-admin",
                [{"kind": "ServiceAccount", "name": "root", "namespace": OPS}]),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "exceptions-editor", "namespace": TEAM},
         "rules": [{"apiGroups": ["padlock.dev"], "resources": ["policyexceptions"], "verbs": every}]},
        binding("RoleBinding", "tenant-exceptions", "Role", "exceptions-editor", tenant, TEAM),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "configmap-editor", "namespace": FALCO},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": every}]},
        binding("RoleBinding", "tenant-configmaps", "Role", "configmap-editor", tenant, FALCO),
        binding("RoleBinding", "operator-configmaps", "Role", "configmap-editor", operator, FALCO),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": f"adv-policies-{SUFFIX}"},
         "rules": [{"apiGroups": ["padlock.dev"], "resources": ["managedpolicies", "managedpolicies/status"],
                    "verbs": every}]},
        binding("ClusterRoleBinding", f"adv-policies-{SUFFIX}", "ClusterRole", f"adv-policies-{SUFFIX}",
                [*tenant, *operator]),
    ]


@pytest.fixture(scope="module")
def attackers(control_plane: ControlPlane, kubectl: Runner, crds_installed: list[str]) -> Iterator[None]:
    for ns in (FALCO, TEAM, OPS):
        control_plane.create_namespace(ns)
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": _rbac()})
    kubectl("apply", "-f", "-", input=manifest)
    wait_until(lambda: run(kubectl, "tenant", "auth", "can-i", "create", "configmaps", "-n", FALCO,
                           check=False).returncode == 0, timeout=60, what="the tenant's RBAC")
    yield
    kubectl("delete", "-f", "-", "--ignore-not-found", input=manifest, check=False)


@pytest.fixture(scope="module", params=["webhook", "policy"])
def mode(
    request: pytest.FixtureRequest, control_plane: ControlPlane, kubectl: Runner, helm: Runner,
    attackers: None, tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """``webhook``: the webhook guards alone. ``policy``: the webhook killed, the chart's policies alone."""
    workdir = tmp_path_factory.mktemp(f"adversarial-{request.param}")
    with registered_webhook(control_plane, kubectl, workdir, falco_namespace=FALCO) as (webhook, _suffix):
        probe = json.dumps(_plain("padlock-rules-1"))
        if request.param == "webhook":
            marker = f'admission webhook "reserve-configmap-name.{webhook.config_name}" denied'
        else:
            webhook.kill()
            kubectl("apply", "-f", "-", input=chart_template(helm, "lock-policy.yaml", f"falco.namespace={FALCO}"))
            marker = "ValidatingAdmissionPolicy 'padlock-reserve-rules-configmaps'"

        def guarded() -> bool:
            result = run(kubectl, "admin", "create", "--dry-run=server", "-f", "-", input=probe, check=False)
            return marker in result.stderr

        try:
            wait_until(guarded, timeout=90, what=f"the lock ({request.param}) to answer")
            if request.param == "policy":
                labelled = json.dumps(generated_configmap(f"probe-{secrets.token_hex(3)}", TEAM))
                wait_until(lambda: "padlock-lock-configmaps" in run(
                    kubectl, "admin", "create", "--dry-run=server", "-f", "-", input=labelled, check=False).stderr,
                    timeout=90, what="the ConfigMap lock policy")
            yield request.param
        finally:
            if request.param == "policy":
                kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", *VAP_NAMES,
                        "--ignore-not-found")


def refused(result: Any, mode: str) -> None:
    """Refused by the lock (not by RBAC), in the mode's own words."""
    assert result.returncode != 0, f"expected a refusal, got success: {result.stdout}"
    if mode == "webhook":
        assert "admission webhook" in result.stderr and "denied the request" in result.stderr, result.stderr
    else:
        assert "ValidatingAdmissionPolicy 'padlock-" in result.stderr, result.stderr


def _plain(name: str, namespace: str = FALCO) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {"zz-evil.yaml": "- macro: spawned_process\n  condition: (evt.num < 0)\n  override:\n"
                                     "    condition: replace\n"}}


OWNER = {"apiVersion": "padlock.dev/v1alpha1", "kind": "RuleSource", "name": "falco-rules",
         "uid": "6f1c2b9e-0000-4000-8000-000000000001", "controller": False, "blockOwnerDeletion": False}


@pytest.fixture
def published(kubectl: Runner, mode: str) -> Iterator[dict[str, Any]]:
    """``padlock-rules`` in the Falco namespace as the operator publishes it (label, hash, owner)."""
    body = generated_configmap("padlock-rules", FALCO)
    body["metadata"]["labels"]["padlock.dev/ruleset"] = "padlock-rules"
    body["metadata"]["ownerReferences"] = [OWNER]
    created = json.loads(run(kubectl, OPERATOR_IDENTITY, "create", "-o", "json", "-f", "-",
                             input=json.dumps(body)).stdout)
    try:
        yield created
    finally:
        run(kubectl, OPERATOR_IDENTITY, "patch", "configmap", "padlock-rules", "-n", FALCO, "--type=merge",
            "-p", '{"metadata":{"finalizers":null}}', check=False)
        run(kubectl, OPERATOR_IDENTITY, "delete", "configmap", "padlock-rules", "-n", FALCO, "--ignore-not-found")


def _locked_state(kubectl: Runner) -> dict[str, Any]:
    obj = json.loads(kubectl("get", "configmap", "padlock-rules", "-n", FALCO, "-o", "json").stdout)
    md = obj["metadata"]
    return {"data": obj.get("data"), "binaryData": obj.get("binaryData"), "immutable": obj.get("immutable"),
            "labels": md.get("labels"), "annotations": md.get("annotations"), "finalizers": md.get("finalizers"),
            "ownerReferences": md.get("ownerReferences"), "generateName": md.get("generateName")}


CONFIGMAP_ATTACKS: dict[str, tuple[str, ...]] = {
    "immutable by merge patch": ("patch", "configmap", "padlock-rules", "--type=merge", "-p", '{"immutable":true}'),
    "immutable by JSON patch": ("patch", "configmap", "padlock-rules", "--type=json",
                                "-p", '[{"op":"add","path":"/immutable","value":true}]'),
    "binaryData added": ("patch", "configmap", "padlock-rules", "--type=merge",
                         "-p", '{"binaryData":{"zz-evil.yaml":"LSBtYWNybzogeAo="}}'),
    "a foreign finalizer": ("patch", "configmap", "padlock-rules", "--type=merge",
                            "-p", '{"metadata":{"finalizers":["example.com/hold"]}}'),
    "owner references dropped": ("patch", "configmap", "padlock-rules", "--type=json",
                                 "-p", '[{"op":"remove","path":"/metadata/ownerReferences"}]'),
    "owner references replaced": ("patch", "configmap", "padlock-rules", "--type=merge", "-p", json.dumps(
        {"metadata": {"ownerReferences": [{**OWNER, "uid": "6f1c2b9e-0000-4000-8000-000000000002"}]}})),
    "generateName set": ("patch", "configmap", "padlock-rules", "--type=merge",
                         "-p", '{"metadata":{"generateName":"padlock-rules-"}}'),
    "managed-by label removed": ("label", "configmap", "padlock-rules", "app.kubernetes.io/managed-by-"),
    "padlock.dev annotation added": ("annotate", "configmap", "padlock-rules", "padlock.dev/content-hash=sha256:f",
                                     "--overwrite"),
    "data edited": ("patch", "configmap", "padlock-rules", "--type=strategic",
                    "-p", '{"data":{"padlock-policies.yaml":"- rule: x\\n"}}'),
    "deleted": ("delete", "configmap", "padlock-rules", "--wait=false"),
}


@pytest.mark.parametrize("attack", sorted(CONFIGMAP_ATTACKS))
@pytest.mark.parametrize("who", ATTACKERS)
def test_every_attack_on_a_published_configmap_is_refused(
    kubectl: Runner, mode: str, published: dict[str, Any], who: str, attack: str
) -> None:
    before = _locked_state(kubectl)
    refused(run(kubectl, who, *CONFIGMAP_ATTACKS[attack], "-n", FALCO, check=False), mode)
    assert _locked_state(kubectl) == before


@pytest.mark.parametrize("who", ATTACKERS)
def test_server_side_apply_with_force_cannot_take_the_data_over(
    kubectl: Runner, mode: str, published: dict[str, Any], who: str
) -> None:
    body = generated_configmap("padlock-rules", FALCO)
    body["data"] = {"padlock-policies.yaml": "- macro: x\n  condition: never_true\n"}
    result = run(kubectl, who, "apply", "--server-side", "--force-conflicts", f"--field-manager=attacker-{who}",
                 "-f", "-", input=json.dumps(body), check=False)
    refused(result, mode)


@pytest.mark.parametrize("who", ATTACKERS)
def test_creating_the_names_the_falco_mount_loads_is_refused(kubectl: Runner, mode: str, who: str) -> None:
    for name in ("padlock-rules", "padlock-rules-1", "padlock-rules-01", "padlock-rules-17"):
        refused(run(kubectl, who, "create", "-f", "-", input=json.dumps(_plain(name)), check=False), mode)
    # Labelled as Padlock's, under any name or a generated one: refused as well.
    refused(run(kubectl, who, "create", "-f", "-", input=json.dumps(generated_configmap("mine", FALCO)),
                check=False), mode)
    sneaky = generated_configmap("x", FALCO)
    del sneaky["metadata"]["name"]
    sneaky["metadata"]["generateName"] = "padlock-rules-"
    refused(run(kubectl, who, "create", "-f", "-", input=json.dumps(sneaky), check=False), mode)
    # An immutable ConfigMap under the published name, made before the operator: refused too.
    frozen = {**_plain("padlock-rules"), "immutable": True}
    refused(run(kubectl, who, "create", "-f", "-", input=json.dumps(frozen), check=False), mode)
    names = run(kubectl, "admin", "get", "configmaps", "-n", FALCO, "-o", "name").stdout.split()
    assert not [n for n in names if n.startswith("configmap/padlock-rules")], names


def test_the_operator_creates_only_its_declared_names(kubectl: Runner, mode: str) -> None:
    for name in ("padlock-rules-1", "padlock-rules-3"):
        run(kubectl, OPERATOR_IDENTITY, "create", "-f", "-", input=json.dumps(generated_configmap(name, FALCO)))
        run(kubectl, OPERATOR_IDENTITY, "delete", "configmap", name, "-n", FALCO)
    for name in ("padlock-rules-4", "falco", "kube-root-ca.crt-x"):
        result = run(kubectl, OPERATOR_IDENTITY, "create", "-f", "-",
                     input=json.dumps(generated_configmap(name, FALCO)), check=False)
        refused(result, mode)
        assert "the Padlock operator may create only the ConfigMaps it publishes" in result.stderr


@pytest.mark.parametrize("who", ATTACKERS)
def test_managed_policy_metadata_attacks_are_refused(kubectl: Runner, mode: str, who: str) -> None:
    with operator_managed_policy(kubectl, "adv") as name:
        for body in (
            {"metadata": {"finalizers": ["example.com/hold"]}},
            {"metadata": {"ownerReferences": [OWNER]}},
            {"metadata": {"labels": {"padlock.dev/catalog": "mine"}}},
            {"metadata": {"generateName": "adv-"}},
            {"spec": {"rules": [{**managed_policy(name)["spec"]["rules"][0], "condition": "never_true"}]}},
        ):
            refused(run(kubectl, who, "patch", "managedpolicy", name, "--type=merge", "-p", json.dumps(body),
                        check=False), mode)
        refused(run(kubectl, who, "delete", "managedpolicy", name, "--wait=false", check=False), mode)
        # The user's own choices stay theirs.
        run(kubectl, who, "patch", "managedpolicy", name, "--type=merge", "-p", '{"spec":{"enabled":false}}')
        run(kubectl, who, "label", "managedpolicy", name, "team=web")


def test_the_garbage_collector_may_delete_and_drop_owner_references_but_not_edit(
    kubectl: Runner, mode: str, published: dict[str, Any]
) -> None:
    refused(run(kubectl, "gc", "patch", "configmap", "padlock-rules", "-n", FALCO, "--type=merge",
                "-p", '{"data":{"x.yaml":"[]"}}', check=False), mode)
    refused(run(kubectl, "gc", "patch", "configmap", "padlock-rules", "-n", FALCO, "--type=merge",
                "-p", '{"immutable":true}', check=False), mode)
    # What the garbage collector does when one of several owners is gone: drop the dangling reference.
    run(kubectl, "gc", "patch", "configmap", "padlock-rules", "-n", FALCO, "--type=json",
        "-p", '[{"op":"remove","path":"/metadata/ownerReferences"}]')
    # And when every owner is gone (a RuleSource deleted): delete the published ConfigMap.
    run(kubectl, "gc", "delete", "configmap", "padlock-rules", "-n", FALCO, "--wait=false")
    assert run(kubectl, "admin", "get", "configmap", "padlock-rules", "-n", FALCO, check=False).returncode != 0
    with operator_managed_policy(kubectl, "adv-gc") as name:
        run(kubectl, "gc", "delete", "managedpolicy", name, "--wait=false")
        assert run(kubectl, "admin", "get", "managedpolicy", name, check=False).returncode != 0


def test_another_service_account_in_kube_system_is_not_the_garbage_collector(
    kubectl: Runner, mode: str, published: dict[str, Any]
) -> None:
    impostor = ["--as=system:serviceaccount:kube-system:generic-garbage-collector-x",
                "--as-group=system:masters"]
    refused(kubectl(*impostor, "delete", "configmap", "padlock-rules", "-n", FALCO, "--wait=false",
                    check=False), mode)
