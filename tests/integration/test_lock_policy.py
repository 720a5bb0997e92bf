"""The lock with the webhook down: the chart's ValidatingAdmissionPolicies enforce it on their own.

The webhook is started, registered, then killed (SIGKILL, as a crash), so its configuration stays
behind with failurePolicy Ignore; the policies come from ``helm template charts/padlock --show-only
templates/lock-policy.yaml``. Covers: locked-field edits by merge patch, JSON patch, server-side
apply and replace, deletes, creates and status writes denied by the policy with the guidance
message, for admin and tenant; user choices still possible with the operator down; the operator
identity exempt; generated ConfigMaps locked; on a published ConfigMap ``immutable: true`` and an added
``binaryData`` refused; an unlabelled ``padlock-rules-1`` created by anyone but the operator refused in
the Falco namespace, and the operator refused any name there but the declared ones. The policies are
rendered with a Falco namespace of this module's own (``falco.namespace``), so the generated-ConfigMap
tests in "falco" see only the label lock.
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
    WebhookProcess,
    chart_template,
    generated_configmap,
    managed_policy,
    operator_managed_policy,
    patch,
    registered_webhook,
    wait_until,
)

USERS = ("admin", "tenant")
MP_POLICY = "ValidatingAdmissionPolicy 'padlock-lock-managedpolicies'"
CM_POLICY = "ValidatingAdmissionPolicy 'padlock-lock-configmaps'"
NAME_POLICY = "ValidatingAdmissionPolicy 'padlock-reserve-rules-configmaps'"
FALCO = f"falco-vap-{secrets.token_hex(3)}"
"""This module's Falco namespace: where the policies reserve the rules ConfigMap names."""


@pytest.fixture(scope="module")
def lock_policy(
    control_plane: ControlPlane,
    kubectl: Runner,
    helm: Runner,
    crds_installed: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WebhookProcess]:
    control_plane.create_namespace(FALCO)
    manifest = chart_template(helm, "lock-policy.yaml", f"falco.namespace={FALCO}")
    with registered_webhook(control_plane, kubectl, tmp_path_factory.mktemp("webhook-down"),
                            falco_namespace=FALCO) as (webhook, suffix):
        try:
            webhook.kill()
            assert not webhook.alive()
            kubectl("apply", "-f", "-", input=manifest)
            probes = (
                (json.dumps(managed_policy(f"probe-{suffix}")), MP_POLICY),
                (json.dumps(generated_configmap(f"probe-{suffix}")), CM_POLICY),
                (json.dumps(plain_configmap("padlock-rules-1")), NAME_POLICY),
            )

            def policy_enforced() -> bool:
                return all(
                    marker in kubectl("create", "--dry-run=server", "-f", "-", input=probe, check=False).stderr
                    for probe, marker in probes
                )

            wait_until(policy_enforced, timeout=60, what="the API server to enforce the lock policy")
            yield webhook
        finally:
            kubectl(
                "delete",
                "validatingadmissionpolicybinding,validatingadmissionpolicy",
                *VAP_NAMES,
                "--ignore-not-found",
            )


@pytest.fixture
def policy(kubectl: Runner, lock_policy: WebhookProcess) -> Iterator[str]:
    with operator_managed_policy(kubectl, "vap") as name:
        yield name


def _denied(result: Any, name: str, *fragments: str) -> None:
    assert result.returncode != 0, f"expected a denial, got success: {result.stdout}"
    err = result.stderr
    # Denied by the policy, not by the (dead) webhook.
    assert MP_POLICY in err, err
    assert "admission webhook" not in err, err
    assert f"padlock copy managedpolicy/{name} my-{name}" in err, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize("user", USERS)
def test_locked_edits_are_denied_by_the_policy_in_every_patch_style(
    kubectl: Runner, policy: str, user: str
) -> None:
    rules = managed_policy(policy)["spec"]["rules"]
    rules[0]["condition"] = "always_true"
    merge = patch(kubectl, "managedpolicy", policy, {"spec": {"rules": rules}}, identity=user, check=False)
    _denied(
        merge,
        policy,
        f'managedpolicy "{policy}" is managed by Padlock and locked; this request changes spec.rules',
    )
    ops = [{"op": "replace", "path": "/spec/description", "value": "mine"}]
    json_patch = patch(kubectl, "managedpolicy", policy, ops, type="json", identity=user, check=False)
    _denied(json_patch, policy, "changes spec.description")
    ssa = kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        f"--field-manager={user}-vap",
        "-f",
        "-",
        input=json.dumps(managed_policy(policy, description="mine")),
        identity=user,
        check=False,
    )
    _denied(ssa, policy, "changes spec.description")
    current = json.loads(kubectl("get", "managedpolicy", policy, "-o", "json").stdout)
    current["spec"]["displayName"] = "Mine"
    replace = kubectl("replace", "-f", "-", input=json.dumps(current), identity=user, check=False)
    _denied(replace, policy, "changes spec.displayName")
    label = kubectl(
        "label",
        "managedpolicy",
        policy,
        "padlock.dev/catalog=mine",
        "--overwrite",
        identity=user,
        check=False,
    )
    _denied(label, policy, "changes metadata.labels[padlock.dev/*]")
    spec = json.loads(kubectl("get", "managedpolicy", policy, "-o", "json").stdout)["spec"]
    assert spec["rules"][0]["condition"] == "open_read and sensitive_files"
    assert spec["description"] == "Rules tagged mitre_credential_access"


@pytest.mark.parametrize("user", USERS)
def test_delete_create_and_status_writes_are_denied_by_the_policy(
    kubectl: Runner, policy: str, user: str
) -> None:
    delete = kubectl("delete", "managedpolicy", policy, "--wait=false", identity=user, check=False)
    _denied(delete, policy, "cannot be deleted")
    other = f"vap-{secrets.token_hex(4)}"
    create = kubectl("create", "-f", "-", input=json.dumps(managed_policy(other)), identity=user, check=False)
    _denied(create, other, "created only by the Padlock operator")
    status = patch(
        kubectl, "managedpolicy", policy, {"status": {"ruleCount": 5}}, "--subresource=status",
        identity=user, check=False,
    )
    _denied(status, policy, "changes status")


@pytest.mark.parametrize("user", USERS)
def test_user_choices_stay_possible_while_the_operator_is_down(
    kubectl: Runner, policy: str, user: str
) -> None:
    choices = {"spec": {"enabled": False, "disabledRules": ["Read sensitive file untrusted"]}}
    patch(kubectl, "managedpolicy", policy, choices, identity=user)
    scope = [{"op": "add", "path": "/spec/scope", "value": {"namespaces": {"include": ["web"]}}}]
    patch(kubectl, "managedpolicy", policy, scope, type="json", identity=user)
    kubectl("label", "managedpolicy", policy, "team=web", identity=user)
    spec = json.loads(kubectl("get", "managedpolicy", policy, "-o", "json").stdout)["spec"]
    assert (spec["enabled"], spec["disabledRules"], spec["scope"]) == (
        False,
        ["Read sensitive file untrusted"],
        {"namespaces": {"include": ["web"]}},
    )


def test_the_operator_is_exempt_from_the_policy(kubectl: Runner, policy: str) -> None:
    ops = [{"op": "replace", "path": "/spec/rules/0/priority", "value": "ERROR"}]
    patch(kubectl, "managedpolicy", policy, ops, type="json", identity=OPERATOR_IDENTITY)
    kubectl("delete", "managedpolicy", policy, "--wait=false", identity=OPERATOR_IDENTITY)
    assert kubectl("get", "managedpolicy", policy, check=False).returncode != 0


def test_generated_configmaps_are_locked_by_the_policy(kubectl: Runner, lock_policy: WebhookProcess) -> None:
    name = f"padlock-rules-{secrets.token_hex(3)}"
    kubectl("create", "-f", "-", input=json.dumps(generated_configmap(name)), identity=OPERATOR_IDENTITY)
    try:
        edit = patch(kubectl, "configmap", name, {"data": {"x.yaml": "[]"}}, namespace="falco", check=False)
        assert CM_POLICY in edit.stderr, edit.stderr
        assert f'configmap "falco/{name}" is generated by Padlock and locked' in edit.stderr
        unlabel = kubectl(
            "label", "configmap", name, "-n", "falco", "app.kubernetes.io/managed-by-", check=False
        )
        assert CM_POLICY in unlabel.stderr, unlabel.stderr
        delete = kubectl("delete", "configmap", name, "-n", "falco", "--wait=false", check=False)
        assert CM_POLICY in delete.stderr, delete.stderr
        patch(kubectl, "configmap", name, {"data": {"x.yaml": "[]"}}, namespace="falco", identity=OPERATOR_IDENTITY)
    finally:
        kubectl("delete", "configmap", name, "-n", "falco", "--ignore-not-found", identity=OPERATOR_IDENTITY)


def plain_configmap(name: str, namespace: str = FALCO) -> dict[str, Any]:
    """An unlabelled ConfigMap: nothing marks it as Padlock's but its name."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {"evil.yaml": "- macro: always_true\n  condition: (evt.num >= 0)\n"}}


@pytest.fixture
def published(kubectl: Runner, lock_policy: WebhookProcess) -> Iterator[str]:
    """``padlock-rules`` in this module's Falco namespace, created by the operator as it publishes."""
    name = "padlock-rules"
    kubectl("create", "-f", "-", input=json.dumps(generated_configmap(name, FALCO)), identity=OPERATOR_IDENTITY)
    try:
        yield name
    finally:
        kubectl("delete", "configmap", name, "-n", FALCO, "--ignore-not-found", identity=OPERATOR_IDENTITY)


@pytest.mark.parametrize("user", USERS)
def test_immutable_and_binary_data_on_a_published_configmap_are_refused_by_the_policy(
    kubectl: Runner, published: str, user: str
) -> None:
    immutable = patch(kubectl, "configmap", published, {"immutable": True}, namespace=FALCO, identity=user,
                      check=False)
    assert immutable.returncode != 0 and CM_POLICY in immutable.stderr, immutable.stderr
    assert "this request changes immutable" in immutable.stderr
    binary = patch(kubectl, "configmap", published, {"binaryData": {"extra.yaml": "LSBydWxlOiB4Cg=="}},
                   namespace=FALCO, identity=user, check=False)
    assert binary.returncode != 0 and CM_POLICY in binary.stderr, binary.stderr
    assert "this request changes binaryData" in binary.stderr
    stored = json.loads(kubectl("get", "configmap", published, "-n", FALCO, "-o", "json").stdout)
    assert "immutable" not in stored and "binaryData" not in stored
    # The operator itself can still write it: nothing made it read-only.
    patch(kubectl, "configmap", published, {"data": {"x.yaml": "[]"}}, namespace=FALCO, identity=OPERATOR_IDENTITY)


@pytest.mark.parametrize("user", USERS)
def test_an_unlabelled_shard_name_is_refused_to_everyone_but_the_operator(
    kubectl: Runner, lock_policy: WebhookProcess, user: str
) -> None:
    for name in ("padlock-rules-1", "padlock-rules-01", "padlock-rules"):
        result = kubectl("create", "-f", "-", input=json.dumps(plain_configmap(name)), identity=user, check=False)
        assert result.returncode != 0 and NAME_POLICY in result.stderr, result.stderr
        assert "this name is reserved for the rules Padlock publishes" in result.stderr
    # Other names in the Falco namespace stay free.
    kubectl("create", "-f", "-", input=json.dumps(plain_configmap("falco-extra-rules")), identity=user)
    kubectl("delete", "configmap", "falco-extra-rules", "-n", FALCO)
    kubectl("create", "-f", "-", input=json.dumps(plain_configmap("padlock-rules-1")), identity=OPERATOR_IDENTITY)
    kubectl("delete", "configmap", "padlock-rules-1", "-n", FALCO)


def test_the_operator_creates_its_shard_names_and_nothing_else_in_the_falco_namespace(
    kubectl: Runner, lock_policy: WebhookProcess
) -> None:
    shard = generated_configmap("padlock-rules-3", FALCO)
    kubectl("create", "-f", "-", input=json.dumps(shard), identity=OPERATOR_IDENTITY)
    kubectl("delete", "configmap", "padlock-rules-3", "-n", FALCO, identity=OPERATOR_IDENTITY)
    for name in ("padlock-rules-4", "falco-config"):
        result = kubectl("create", "-f", "-", input=json.dumps(generated_configmap(name, FALCO)),
                         identity=OPERATOR_IDENTITY, check=False)
        assert result.returncode != 0 and NAME_POLICY in result.stderr, result.stderr
        assert "the Padlock operator may create only the ConfigMaps it publishes" in result.stderr
