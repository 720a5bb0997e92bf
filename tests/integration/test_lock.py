"""The lock, through the admission webhook, on a real API server calling it over TLS on 127.0.0.1.

Covers, as admin and as a tenant who holds RBAC to write ManagedPolicies (so RBAC is never what
denies): locked-field edits by merge patch, JSON patch, server-side apply and replace, status
writes, prefixed labels, creates and deletes are denied with the guidance message; user choices
(enabled, disabledRules, scope, plain labels) are allowed; the operator identity may change
anything. Generated ConfigMaps: admin edits (merge, strategic, label removal) and deletes are
denied, the operator's allowed, unrelated ConfigMaps untouched.
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
    WebhookProcess,
    generated_configmap,
    managed_policy,
    operator_managed_policy,
    patch,
    registered_webhook,
    wait_until,
)

USERS = ("admin", "tenant")


@pytest.fixture(scope="module")
def webhook(
    control_plane: ControlPlane,
    kubectl: Runner,
    crds_installed: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WebhookProcess]:
    # The rules names are reserved in another namespace, so the generated-ConfigMap tests below in "falco"
    # see only the label lock (test_adversarial_lock.py covers the reserved names).
    falco = f"falco-lock-{secrets.token_hex(3)}"
    control_plane.create_namespace(falco)
    with registered_webhook(control_plane, kubectl, tmp_path_factory.mktemp("webhook"),
                            falco_namespace=falco) as (process, suffix):
        probe = json.dumps(managed_policy(f"probe-{suffix}"))

        def webhook_answers() -> bool:
            # A server-side dry run reaches the webhooks without persisting anything.
            result = kubectl("create", "--dry-run=server", "-f", "-", input=probe, check=False)
            return f'admission webhook "lock-managedpolicy.{process.config_name}" denied' in result.stderr

        wait_until(webhook_answers, timeout=60, what="the API server to call the webhook")
        yield process


@pytest.fixture
def policy(kubectl: Runner, webhook: WebhookProcess) -> Iterator[str]:
    """A ManagedPolicy created by the operator identity; deleted by it afterwards."""
    with operator_managed_policy(kubectl, "lock") as name:
        yield name


def _denied(result: Any, webhook: WebhookProcess, name: str, *paths: str) -> None:
    assert result.returncode != 0, f"expected a denial, got success: {result.stdout}"
    err = result.stderr
    assert f'admission webhook "lock-managedpolicy.{webhook.config_name}" denied the request' in err, err
    for path in paths:
        assert path in err, err
    assert "is managed by Padlock" in err or "created only by the Padlock operator" in err, err
    assert f"padlock copy managedpolicy/{name} my-{name}" in err, err
    assert f"kubectl get managedpolicy {name} -o yaml" in err, err


def _spec(kubectl: Runner, name: str) -> dict[str, Any]:
    return dict(json.loads(kubectl("get", "managedpolicy", name, "-o", "json").stdout)["spec"])


@pytest.mark.parametrize("user", USERS)
def test_locked_field_merge_patch_is_denied_with_guidance(
    kubectl: Runner, webhook: WebhookProcess, policy: str, user: str
) -> None:
    rules = managed_policy(policy)["spec"]["rules"]
    rules[0]["condition"] = "always_true"
    result = patch(kubectl, "managedpolicy", policy, {"spec": {"rules": rules}}, identity=user, check=False)
    _denied(result, webhook, policy, "spec.rules[0].condition (changed)")
    assert _spec(kubectl, policy)["rules"][0]["condition"] == "open_read and sensitive_files"


@pytest.mark.parametrize("user", USERS)
def test_locked_field_json_patch_is_denied(
    kubectl: Runner, webhook: WebhookProcess, policy: str, user: str
) -> None:
    ops = [{"op": "replace", "path": "/spec/rules/0/priority", "value": "DEBUG"}]
    result = patch(kubectl, "managedpolicy", policy, ops, type="json", identity=user, check=False)
    _denied(result, webhook, policy, "spec.rules[0].priority (changed)")


@pytest.mark.parametrize("user", USERS)
def test_locked_field_server_side_apply_is_denied(
    kubectl: Runner, webhook: WebhookProcess, policy: str, user: str
) -> None:
    body = managed_policy(policy, description="my own description")
    result = kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        f"--field-manager={user}-ssa",
        "-f",
        "-",
        input=json.dumps(body),
        identity=user,
        check=False,
    )
    _denied(result, webhook, policy, "spec.description (changed)")
    assert _spec(kubectl, policy)["description"] == "Rules tagged mitre_credential_access"


@pytest.mark.parametrize("user", USERS)
def test_locked_field_replace_is_denied(
    kubectl: Runner, webhook: WebhookProcess, policy: str, user: str
) -> None:
    current = json.loads(kubectl("get", "managedpolicy", policy, "-o", "json", identity=user).stdout)
    current["spec"]["rules"].append({"name": "Injected", "condition": "never_true", "priority": "INFO"})
    current["spec"]["displayName"] = "Mine now"
    result = kubectl("replace", "-f", "-", input=json.dumps(current), identity=user, check=False)
    _denied(result, webhook, policy, "spec.displayName (changed)", "spec.rules[1] (added)")


@pytest.mark.parametrize("user", USERS)
def test_delete_is_denied(kubectl: Runner, webhook: WebhookProcess, policy: str, user: str) -> None:
    result = kubectl("delete", "managedpolicy", policy, "--wait=false", identity=user, check=False)
    _denied(result, webhook, policy, "cannot be deleted")
    assert kubectl("get", "managedpolicy", policy, check=False).returncode == 0


@pytest.mark.parametrize("user", USERS)
def test_status_write_is_denied(kubectl: Runner, webhook: WebhookProcess, policy: str, user: str) -> None:
    result = patch(
        kubectl, "managedpolicy", policy, {"status": {"ruleCount": 99}}, "--subresource=status",
        identity=user, check=False,
    )
    assert result.returncode != 0
    assert f'admission webhook "lock-managedpolicy-status.{webhook.config_name}" denied' in result.stderr
    assert "this request changes status (added)" in result.stderr, result.stderr


def test_create_by_admin_is_denied(kubectl: Runner, webhook: WebhookProcess) -> None:
    name = f"lock-{secrets.token_hex(4)}"
    result = kubectl("create", "-f", "-", input=json.dumps(managed_policy(name)), check=False)
    _denied(result, webhook, name, "created only by the Padlock operator")
    assert kubectl("get", "managedpolicy", name, check=False).returncode != 0


@pytest.mark.parametrize("user", USERS)
def test_padlock_prefixed_label_is_locked_but_other_labels_are_not(
    kubectl: Runner, webhook: WebhookProcess, policy: str, user: str
) -> None:
    result = kubectl(
        "label",
        "managedpolicy",
        policy,
        "padlock.dev/catalog=mine",
        "--overwrite",
        identity=user,
        check=False,
    )
    _denied(result, webhook, policy, 'metadata.labels["padlock.dev/catalog"] (changed)')
    kubectl("label", "managedpolicy", policy, "team=payments", identity=user)
    kubectl("annotate", "managedpolicy", policy, "owner=sec-team", identity=user)
    meta = json.loads(kubectl("get", "managedpolicy", policy, "-o", "json").stdout)["metadata"]
    assert meta["labels"]["team"] == "payments"
    assert meta["annotations"]["owner"] == "sec-team"


@pytest.mark.parametrize("user", USERS)
def test_user_choices_are_allowed_by_every_patch_style(
    kubectl: Runner, webhook: WebhookProcess, policy: str, user: str
) -> None:
    patch(kubectl, "managedpolicy", policy, {"spec": {"enabled": False}}, identity=user)
    disable = [{"op": "add", "path": "/spec/disabledRules", "value": ["Read sensitive file untrusted"]}]
    patch(kubectl, "managedpolicy", policy, disable, type="json", identity=user)
    scope = {
        "apiVersion": "padlock.dev/v1alpha1",
        "kind": "ManagedPolicy",
        "metadata": {"name": policy},
        "spec": {"scope": {"namespaces": {"exclude": ["kube-system"]}}},
    }
    kubectl(
        "apply",
        "--server-side",
        f"--field-manager={user}-choices",
        "-f",
        "-",
        input=json.dumps(scope),
        identity=user,
    )
    spec = _spec(kubectl, policy)
    assert spec["enabled"] is False
    assert spec["disabledRules"] == ["Read sensitive file untrusted"]
    assert spec["scope"] == {"namespaces": {"exclude": ["kube-system"]}}
    current = json.loads(kubectl("get", "managedpolicy", policy, "-o", "json").stdout)
    current["spec"]["enabled"] = True
    kubectl("replace", "-f", "-", input=json.dumps(current), identity=user)
    assert _spec(kubectl, policy)["enabled"] is True


def test_the_operator_identity_may_change_everything(
    kubectl: Runner, webhook: WebhookProcess, policy: str
) -> None:
    ops = [
        {
            "op": "replace",
            "path": "/spec/rules/0/condition",
            "value": "open_read and sensitive_files and not trusted",
        }
    ]
    patch(kubectl, "managedpolicy", policy, ops, type="json", identity=OPERATOR_IDENTITY)
    patch(
        kubectl, "managedpolicy", policy, {"status": {"ruleCount": 1}}, "--subresource=status",
        identity=OPERATOR_IDENTITY,
    )
    kubectl(
        "label", "managedpolicy", policy, "padlock.dev/catalog=v2", "--overwrite", identity=OPERATOR_IDENTITY
    )
    obj = json.loads(kubectl("get", "managedpolicy", policy, "-o", "json").stdout)
    assert obj["spec"]["rules"][0]["condition"].endswith("and not trusted")
    assert obj["status"]["ruleCount"] == 1
    kubectl("delete", "managedpolicy", policy, "--wait=false", identity=OPERATOR_IDENTITY)


@pytest.fixture
def configmap(kubectl: Runner, webhook: WebhookProcess) -> Iterator[str]:
    name = f"padlock-rules-{secrets.token_hex(3)}"
    kubectl("create", "-f", "-", input=json.dumps(generated_configmap(name)), identity=OPERATOR_IDENTITY)
    yield name
    kubectl(
        "delete",
        "configmap",
        name,
        "-n",
        "falco",
        "--ignore-not-found",
        "--wait=false",
        identity=OPERATOR_IDENTITY,
    )


def _cm_denied(result: Any, webhook: WebhookProcess, name: str, *fragments: str) -> None:
    assert result.returncode != 0, result.stdout
    assert f'admission webhook "lock-configmap.{webhook.config_name}" denied the request' in result.stderr, (
        result.stderr
    )
    assert f'configmap "falco/{name}" ' in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_admin_edits_and_deletes_of_generated_configmaps_are_denied(
    kubectl: Runner, webhook: WebhookProcess, configmap: str
) -> None:
    merge = patch(
        kubectl, "configmap", configmap, {"data": {"padlock-policies.yaml": "- rule: x\n"}},
        namespace="falco", check=False,
    )
    _cm_denied(merge, webhook, configmap, 'data["padlock-policies.yaml"] (changed)')
    strategic = patch(
        kubectl, "configmap", configmap, {"data": {"extra.yaml": "[]"}}, type="strategic", namespace="falco",
        check=False,
    )
    _cm_denied(strategic, webhook, configmap, 'data["extra.yaml"] (added)')
    unlabel = kubectl(
        "label", "configmap", configmap, "-n", "falco", "app.kubernetes.io/managed-by-", check=False
    )
    # The label was the only one, so the whole labels map goes; the lock still sees the old object.
    _cm_denied(unlabel, webhook, configmap, "metadata.labels (removed)")
    delete = kubectl("delete", "configmap", configmap, "-n", "falco", "--wait=false", check=False)
    _cm_denied(delete, webhook, configmap, "cannot be deleted by hand")
    data = json.loads(kubectl("get", "configmap", configmap, "-n", "falco", "-o", "json").stdout)["data"]
    assert data == {"padlock-policies.yaml": "[]\n"}


def test_admin_cannot_create_a_configmap_posing_as_generated(
    kubectl: Runner, webhook: WebhookProcess
) -> None:
    name = f"padlock-rules-{secrets.token_hex(3)}"
    result = kubectl("create", "-f", "-", input=json.dumps(generated_configmap(name)), check=False)
    _cm_denied(result, webhook, name, "only the Padlock operator creates such ConfigMaps")


def test_the_operator_updates_generated_configmaps_and_other_configmaps_are_untouched(
    kubectl: Runner, webhook: WebhookProcess, configmap: str, namespace: str
) -> None:
    patch(
        kubectl, "configmap", configmap, {"data": {"padlock-policies.yaml": "- list: x\n  items: []\n"}},
        namespace="falco", identity=OPERATOR_IDENTITY,
    )
    kubectl("create", "configmap", "app-settings", "-n", namespace, "--from-literal=a=1")
    patch(kubectl, "configmap", "app-settings", {"data": {"a": "2"}}, namespace=namespace)
    kubectl("delete", "configmap", "app-settings", "-n", namespace)
