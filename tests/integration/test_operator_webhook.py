"""The admission webhook served by the real ``padlock operator`` process (url mode, 127.0.0.1).

The operator runs as the chart's ServiceAccount with exactly the chart's RBAC (``operator_rbac``); the
harness, as admin, installs the chart's webhook configuration in url mode (``LocalWebhook``); the
operator only patches its caBundle. Covers: the caBundle is the operator's CA and the operator could
not have created the configuration itself; a locked-field edit by admin is denied by the operator's
webhook with the lock message and the ``padlock copy`` guidance; a user-choice edit is allowed and
reaches the published ruleset; a CustomPolicy using an undefined macro is rejected at ``kubectl
apply`` with the object path; the operator's own writes (ManagedPolicies, their status, the generated
ConfigMap) go through its own webhook.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from padlock.controllers.local_webhook import LocalWebhook
from padlock.controllers.process import OperatorProcess
from support_operator import CARRIERS, POLICY, RunningOperator, disabled, running_operator, wait_for

SOURCE = "webhook-story"
DISABLED_RULE = "Read cloud credentials file"


@pytest.fixture(scope="module")
def served(control_plane: Any, kubectl: Any, helm: Any, registry: str, crds_installed: list[str],
           operator_rbac: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOperator]:
    workdir = tmp_path_factory.mktemp("operator-webhook")
    with running_operator(control_plane, kubectl, registry, workdir, source=SOURCE, interval="1h", helm=helm,
                          cleanup=[("delete", "custompolicies", "--all", "--wait=false")]) as running:
        wait_for(f"ManagedPolicy {POLICY}", lambda: running.user.status("managedpolicy", POLICY).get("ruleCount"))
        running.serving(POLICY)
        yield running


def test_operator_patches_the_ca_bundle_it_could_not_have_created(served: RunningOperator) -> None:
    hook: LocalWebhook = served.hook
    kubectl = served.user.kubectl
    ca = (hook.cert_dir / "ca.crt").read_bytes()
    assert hook.ca_bundles() and all(b == ca for b in hook.ca_bundles())
    config = served.user.get("validatingwebhookconfiguration", hook.name) or {}
    assert all(h["clientConfig"]["url"].startswith(hook.base_url + "/") for h in config["webhooks"])
    # Least privilege: the operator may get/patch this one configuration, nothing more.
    for verb, target in (("create", "validatingwebhookconfigurations"),
                         ("delete", f"validatingwebhookconfigurations/{hook.name}"),
                         ("patch", "validatingwebhookconfigurations/someone-elses")):
        answer = kubectl("auth", "can-i", verb, target, identity="operator", check=False).stdout.strip()
        assert answer == "no", f"operator can {verb} {target}"
    assert kubectl("auth", "can-i", "patch", f"validatingwebhookconfigurations/{hook.name}",
                   identity="operator").stdout.strip() == "yes"


def test_locked_field_edit_by_admin_is_denied_with_the_lock_message(served: RunningOperator) -> None:
    user = served.user
    before = user.get("managedpolicy", POLICY) or {}
    patch = [{"op": "replace", "path": "/spec/rules/0/condition", "value": "evt.num > 0"}]
    done = user.kubectl("patch", "managedpolicy", POLICY, "--type=json", "-p", json.dumps(patch), check=False)
    assert done.returncode != 0, done.stdout
    err = done.stderr
    assert f'admission webhook "lock-managedpolicy.{served.hook.name}" denied the request' in err, err
    assert f'managedpolicy "{POLICY}" is managed by Padlock and locked' in err, err
    assert "spec.rules[0].condition (changed)" in err, err
    assert f"padlock copy managedpolicy/{POLICY} my-{POLICY}" in err, err
    after = user.get("managedpolicy", POLICY) or {}
    assert after["spec"]["rules"] == before["spec"]["rules"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_user_choice_edit_is_allowed_and_the_operator_publishes_it(served: RunningOperator) -> None:
    user = served.user
    op: OperatorProcess = served.op
    for policy in CARRIERS:
        user.kubectl("patch", "managedpolicy", policy, "--type=merge", "-p",
                     json.dumps({"spec": {"disabledRules": [DISABLED_RULE]}}))
    assert (user.get("managedpolicy", POLICY) or {})["spec"]["disabledRules"] == [DISABLED_RULE]
    # The operator's own writes pass its webhook: the ConfigMap update and the status patch land.
    wait_for("the rule disabled in the published layer", lambda: disabled(user.layer(), DISABLED_RULE))
    wait_for("enabledRuleCount to drop", lambda: (
        (s := user.status("managedpolicy", POLICY))
        and s.get("enabledRuleCount") == s.get("ruleCount", 0) - 1))
    metrics = op.metrics()
    assert 'padlock_admission_decisions_total{kind="ManagedPolicy",operation="UPDATE",result="allowed"}' in metrics
    assert 'padlock_admission_decisions_total{kind="ConfigMap",operation="UPDATE",result="allowed"}' in metrics \
        or 'padlock_admission_decisions_total{kind="ConfigMap",operation="CREATE",result="allowed"}' in metrics, \
        "the operator's write of its ConfigMap was judged (and allowed) by its own webhook"


def test_custom_policy_with_an_undefined_macro_is_rejected_at_apply(served: RunningOperator) -> None:
    user = served.user
    body = {
        "apiVersion": "padlock.dev/v1alpha1", "kind": "CustomPolicy", "metadata": {"name": "web-shells"},
        "spec": {"description": "shells in web servers", "falcoRules": (
            "- rule: Shell in web server\n"
            "  desc: a shell spawned by a web server\n"
            "  condition: example_spawned_process and web_server_parent_undefined\n"
            "  output: shell in web server (command=%proc.cmdline)\n"
            "  priority: WARNING\n")},
    }
    done = user.apply(body, check=False)
    assert done.returncode != 0, done.stdout
    err = done.stderr
    assert f'admission webhook "validate-custompolicy.{served.hook.name}" denied the request' in err, err
    assert "CustomPolicy web-shells: spec.falcoRules:3:" in err, err
    assert "web_server_parent_undefined" in err, err
    assert user.get("custompolicy", "web-shells") is None
    good = json.loads(json.dumps(body))
    good["spec"]["falcoRules"] = good["spec"]["falcoRules"].replace("web_server_parent_undefined",
                                                                    "proc.pname in (nginx, httpd)")
    user.apply(good)
    assert user.get("custompolicy", "web-shells") is not None


def test_operator_log_shows_no_permission_problem(served: RunningOperator) -> None:
    log = (served.workdir / "operator.log").read_text(errors="replace")
    assert "cannot publish the webhook caBundle" not in log, log[-3000:]
    assert " 403 " not in log and "Forbidden" not in log, log[-3000:]


def test_operator_identity_check_is_the_charts_service_account(served: RunningOperator, control_plane: Any) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "padlock", "operator", "--kubeconfig", str(control_plane.kubeconfig("operator")),
         "--identity-check"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "system:serviceaccount:padlock-system:padlock"
