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
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from padlock.controllers.local_webhook import LocalWebhook
from padlock.controllers.process import OperatorProcess, free_port
from padlock.devenv import artifacts

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "examples" / "rules"
SOURCE = "webhook-story"
POLICY = "credential-access"
FALCO_NS = "falco"
CONFIGMAP = "padlock-rules"
DISABLED_RULE = "Read cloud credentials file"
FLAGS = ["--plugin", "container=0.4.0", "--tick", "0.2", "--drift-interval", "1", "--debounce", "0.2"]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; last seen: {last!r}")


def _get(kubectl: Any, *args: str) -> dict[str, Any] | None:
    done = kubectl("get", *args, "-o", "json", check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


@pytest.fixture(scope="module")
def served(control_plane: Any, kubectl: Any, helm: Any, registry: str, crds_installed: list[str],
           operator_rbac: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("operator-webhook")
    repository = f"rules/webhook-{secrets.token_hex(3)}"
    files = {p.name: p.read_text() for p in sorted((RULES / "v1").glob("*.yaml"))}
    artifacts.push_rules_artifact(registry, repository, "1.0.0", files)
    hook = LocalWebhook(kubectl, helm, REPO / "charts" / "padlock", port=free_port(), cert_dir=workdir / "tls")
    hook.install()
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "padlock.dev/v1alpha1", "kind": "RuleSource", "metadata": {"name": SOURCE},
        "spec": {"oci": {"repository": f"{registry}/{repository}", "tag": "1", "plainHTTP": True}, "interval": "1h"},
    }))
    op = OperatorProcess(control_plane.kubeconfig("operator"), workdir / "operator.log",
                         extra=[*FLAGS, *hook.flags()], falco_namespace=FALCO_NS, configmap=CONFIGMAP)
    op.start()
    try:
        op.wait_ready(120)
        wait_for("the operator to publish its caBundle", hook.ca_published)
        wait_for(f"ManagedPolicy {POLICY}", lambda: ((_get(kubectl, "managedpolicy", POLICY) or {}).get("status")
                                                     or {}).get("ruleCount"))
        hook.wait_answering(POLICY)
        yield {"op": op, "hook": hook, "kubectl": kubectl, "workdir": workdir}
    finally:
        hook.remove()  # first: with the webhook gone, cleanup as admin is not locked out
        op.stop()
        print(op.tail(60))
        kubectl("delete", "custompolicies", "--all", "--wait=false", check=False)
        kubectl("delete", "rulesource", SOURCE, "--wait=false", check=False)
        kubectl("patch", "rulesource", SOURCE, "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False)
        kubectl("delete", "managedpolicies", "--all", "--wait=false", check=False)
        kubectl("delete", "configmap", CONFIGMAP, "-n", FALCO_NS, "--ignore-not-found", check=False)


def test_operator_patches_the_ca_bundle_it_could_not_have_created(served: dict[str, Any]) -> None:
    hook: LocalWebhook = served["hook"]
    kubectl = served["kubectl"]
    ca = (hook.cert_dir / "ca.crt").read_bytes()
    assert hook.ca_bundles() and all(b == ca for b in hook.ca_bundles())
    config = _get(kubectl, "validatingwebhookconfiguration", hook.name) or {}
    assert all(h["clientConfig"]["url"].startswith(hook.base_url + "/") for h in config["webhooks"])
    # Least privilege: the operator may get/patch this one configuration, nothing more.
    for verb, target in (("create", "validatingwebhookconfigurations"),
                         ("delete", f"validatingwebhookconfigurations/{hook.name}"),
                         ("patch", "validatingwebhookconfigurations/someone-elses")):
        answer = kubectl("auth", "can-i", verb, target, identity="operator", check=False).stdout.strip()
        assert answer == "no", f"operator can {verb} {target}"
    assert kubectl("auth", "can-i", "patch", f"validatingwebhookconfigurations/{hook.name}",
                   identity="operator").stdout.strip() == "yes"


def test_locked_field_edit_by_admin_is_denied_with_the_lock_message(served: dict[str, Any]) -> None:
    kubectl = served["kubectl"]
    before = _get(kubectl, "managedpolicy", POLICY) or {}
    patch = [{"op": "replace", "path": "/spec/rules/0/condition", "value": "evt.num > 0"}]
    done = kubectl("patch", "managedpolicy", POLICY, "--type=json", "-p", json.dumps(patch), check=False)
    assert done.returncode != 0, done.stdout
    err = done.stderr
    assert f'admission webhook "lock-managedpolicy.{served["hook"].name}" denied the request' in err, err
    assert f'managedpolicy "{POLICY}" is managed by Padlock and locked' in err, err
    assert "spec.rules[0].condition (changed)" in err, err
    assert f"padlock copy managedpolicy/{POLICY} my-{POLICY}" in err, err
    after = _get(kubectl, "managedpolicy", POLICY) or {}
    assert after["spec"]["rules"] == before["spec"]["rules"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def _layer(kubectl: Any) -> list[dict[str, Any]]:
    cm = _get(kubectl, "configmap", CONFIGMAP, "-n", FALCO_NS) or {}
    return list(yaml.safe_load((cm.get("data") or {}).get("99-padlock-policies.yaml") or "[]") or [])


def test_user_choice_edit_is_allowed_and_the_operator_publishes_it(served: dict[str, Any]) -> None:
    kubectl = served["kubectl"]
    op: OperatorProcess = served["op"]
    for policy in (POLICY, "stable-threat-detection"):
        kubectl("patch", "managedpolicy", policy, "--type=merge", "-p",
                json.dumps({"spec": {"disabledRules": [DISABLED_RULE]}}))
    assert (_get(kubectl, "managedpolicy", POLICY) or {})["spec"]["disabledRules"] == [DISABLED_RULE]
    # The operator's own writes pass its webhook: the ConfigMap update and the status patch land.
    wait_for("the rule disabled in the published layer", lambda: any(
        i.get("rule") == DISABLED_RULE and i.get("enabled") is False for i in _layer(kubectl)))
    wait_for("enabledRuleCount to drop", lambda: (
        (s := (_get(kubectl, "managedpolicy", POLICY) or {}).get("status") or {})
        and s.get("enabledRuleCount") == s.get("ruleCount", 0) - 1))
    metrics = op.metrics()
    assert 'padlock_admission_decisions_total{kind="ManagedPolicy",operation="UPDATE",result="allowed"}' in metrics
    assert 'padlock_admission_decisions_total{kind="ConfigMap",operation="UPDATE",result="allowed"}' in metrics \
        or 'padlock_admission_decisions_total{kind="ConfigMap",operation="CREATE",result="allowed"}' in metrics, \
        "the operator's write of its ConfigMap was judged (and allowed) by its own webhook"


def test_custom_policy_with_an_undefined_macro_is_rejected_at_apply(served: dict[str, Any]) -> None:
    kubectl = served["kubectl"]
    body = {
        "apiVersion": "padlock.dev/v1alpha1", "kind": "CustomPolicy", "metadata": {"name": "web-shells"},
        "spec": {"description": "shells in web servers", "falcoRules": (
            "- rule: Shell in web server\n"
            "  desc: a shell spawned by a web server\n"
            "  condition: example_spawned_process and web_server_parent_undefined\n"
            "  output: shell in web server (command=%proc.cmdline)\n"
            "  priority: WARNING\n")},
    }
    done = kubectl("apply", "-f", "-", input=json.dumps(body), check=False)
    assert done.returncode != 0, done.stdout
    err = done.stderr
    assert f'admission webhook "validate-custompolicy.{served["hook"].name}" denied the request' in err, err
    assert "CustomPolicy web-shells: spec.falcoRules:3:" in err, err
    assert "web_server_parent_undefined" in err, err
    assert _get(kubectl, "custompolicy", "web-shells") is None
    good = json.loads(json.dumps(body))
    good["spec"]["falcoRules"] = good["spec"]["falcoRules"].replace("web_server_parent_undefined",
                                                                    "proc.pname in (nginx, httpd)")
    kubectl("apply", "-f", "-", input=json.dumps(good))
    assert _get(kubectl, "custompolicy", "web-shells") is not None


def test_operator_log_shows_no_permission_problem(served: dict[str, Any]) -> None:
    log = (served["workdir"] / "operator.log").read_text(errors="replace")
    assert "cannot publish the webhook caBundle" not in log, log[-3000:]
    assert " 403 " not in log and "Forbidden" not in log, log[-3000:]


def test_operator_identity_check_is_the_charts_service_account(served: dict[str, Any], control_plane: Any) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "padlock", "operator", "--kubeconfig", str(control_plane.kubeconfig("operator")),
         "--identity-check"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "system:serviceaccount:padlock-system:padlock"
