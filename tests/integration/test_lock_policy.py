"""The lock with the webhook down: the chart's ValidatingAdmissionPolicies enforce it on their own.

The webhook is started, registered, then killed (SIGKILL, as a crash), so its configuration stays
behind with failurePolicy Ignore; the policies come from ``helm template charts/padlock --show-only
templates/lock-policy.yaml``. Covers: locked-field edits by merge patch, JSON patch, server-side
apply and replace, deletes, creates and status writes denied by the policy with the guidance
message, for admin and tenant; user choices still possible with the operator down; the operator
identity exempt; generated ConfigMaps locked.
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


@pytest.fixture(scope="module")
def lock_policy(
    control_plane: ControlPlane,
    kubectl: Runner,
    helm: Runner,
    crds_installed: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WebhookProcess]:
    manifest = chart_template(helm, "lock-policy.yaml")
    with registered_webhook(control_plane, kubectl, tmp_path_factory.mktemp("webhook-down")) as (webhook, suffix):
        try:
            webhook.kill()
            assert not webhook.alive()
            kubectl("apply", "-f", "-", input=manifest)
            probe = json.dumps(managed_policy(f"probe-{suffix}"))

            def policy_enforced() -> bool:
                result = kubectl("create", "--dry-run=server", "-f", "-", input=probe, check=False)
                return MP_POLICY in result.stderr

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
