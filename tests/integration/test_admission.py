"""Validation of CustomPolicies and exceptions at `kubectl apply`, through the webhook on a real API server.

Covers: a custom rule using an undefined macro and an unknown field (Falco's message, located in
spec.falcoRules), an exception field Falco does not know (located at spec.match.fields[i]),
references to a missing policy or rule, a tenant PolicyException in namespace `a` naming namespace
`b`, and the valid counterparts being accepted, with warnings returned to kubectl.
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
    WebhookProcess,
    operator_managed_policy,
    registered_webhook,
    wait_until,
)

API = "padlock.dev/v1alpha1"


@pytest.fixture(scope="module")
def webhook(
    control_plane: ControlPlane,
    kubectl: Runner,
    crds_installed: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[WebhookProcess, str]]:
    """The webhook plus one ManagedPolicy it has seen (its name is returned with the process)."""
    with (
        registered_webhook(control_plane, kubectl, tmp_path_factory.mktemp("webhook-admission")) as (process, _),
        operator_managed_policy(kubectl, "drift") as policy,
    ):
        probe = json.dumps(_exception("default", policy, rules=["No such rule"]))

        def state_loaded() -> bool:
            # Denied for the missing rule means: the webhook is called and has seen the policy.
            result = kubectl("create", "--dry-run=server", "-f", "-", input=probe, check=False)
            return "is not in ManagedPolicy" in result.stderr

        wait_until(state_loaded, timeout=60, what="the webhook to be called with the policy loaded")
        yield process, policy


def _exception(
    namespace: str | None, policy: str, *, rules: list[str] | None = None, match: Any = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"exc-{secrets.token_hex(3)}"}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": API,
        "kind": "PolicyException" if namespace else "ClusterPolicyException",
        "metadata": meta,
        "spec": {
            "policies": [
                {"kind": "ManagedPolicy", "name": policy, "rules": rules or ["Read sensitive file untrusted"]}
            ],
            "reason": "backup agent reads /etc/shadow",
            "match": match or {"images": ["registry.example/backup"]},
        },
    }


def _custom(falco_rules: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "CustomPolicy",
        "metadata": {"name": f"custom-{secrets.token_hex(3)}"},
        "spec": {**({"falcoRules": falco_rules} if falco_rules else {}), **spec},
    }


def _apply(kubectl: Runner, body: dict[str, Any]) -> Any:
    return kubectl("apply", "-f", "-", input=json.dumps(body), check=False)


def _rejected(result: Any, webhook: WebhookProcess, hook: str, *fragments: str) -> None:
    assert result.returncode != 0, result.stdout
    assert f'admission webhook "{hook}.{webhook.config_name}" denied the request' in result.stderr, (
        result.stderr
    )
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


MACRO = "- macro: shell_spawn\n  condition: evt.type = execve and proc.name in (bash, sh)\n"


def test_custom_rule_with_undefined_macro_is_rejected_with_falcos_message(
    kubectl: Runner, webhook: tuple[WebhookProcess, str]
) -> None:
    rules = (
        MACRO
        + "- rule: Shell in web\n  desc: d\n  condition: shell_spawn and y\n  output: o %proc.name\n  priority: WARNING\n"
    )
    result = _apply(kubectl, _custom(rules))
    _rejected(
        result,
        webhook[0],
        "validate-custompolicy",
        "spec.falcoRules:5:30: rule \"Shell in web\": Undefined macro 'y' used in filter. [undefined-macro]",
    )


def test_custom_rule_with_unknown_field_is_rejected(
    kubectl: Runner, webhook: tuple[WebhookProcess, str]
) -> None:
    rules = (
        MACRO
        + "- rule: Typo\n  desc: d\n  condition: shell_spawn and proc.nmae = x\n  output: o\n  priority: WARNING\n"
    )
    result = _apply(kubectl, _custom(rules))
    _rejected(
        result,
        webhook[0],
        "validate-custompolicy",
        'rule "Typo": filter_check called with nonexistent field proc.nmae',
        "[unknown-field]",
    )


def test_valid_custom_policy_is_accepted_and_a_disabled_rule_typo_is_a_warning(
    kubectl: Runner, webhook: tuple[WebhookProcess, str]
) -> None:
    rules = (
        MACRO
        + "- rule: Shell in web\n  desc: d\n  condition: shell_spawn\n  output: o %proc.name\n  priority: WARNING\n"
    )
    body = _custom(rules, basedOn={"managedPolicy": webhook[1]}, disabledRules=["Shel in web"])
    result = _apply(kubectl, body)
    assert result.returncode == 0, result.stderr
    assert (
        'spec.disabledRules[0]: rule "Shel in web" is not in this policy' in result.stderr
    )  # kubectl prints warnings
    kubectl("delete", "custompolicy", body["metadata"]["name"])


def test_custom_policy_based_on_a_missing_managed_policy_is_rejected(
    kubectl: Runner, webhook: tuple[WebhookProcess, str]
) -> None:
    result = _apply(kubectl, _custom("", basedOn={"managedPolicy": "no-such-policy"}))
    _rejected(
        result,
        webhook[0],
        "validate-custompolicy",
        'spec.basedOn.managedPolicy: ManagedPolicy "no-such-policy" does not exist [missing-policy]',
    )


def test_exception_with_unknown_field_is_rejected_at_its_index(
    kubectl: Runner, webhook: tuple[WebhookProcess, str], namespace: str
) -> None:
    match = {
        "fields": ["container.image.repository", "proc.nmae"],
        "comps": ["=", "="],
        "values": [["nginx", "sh"]],
    }
    result = _apply(kubectl, _exception(namespace, webhook[1], match=match))
    _rejected(
        result,
        webhook[0],
        "validate-policyexception",
        "spec.match.fields[1]: 'proc.nmae' is not a supported filter field",
    )


def test_exception_referencing_a_missing_policy_or_rule_is_rejected(
    kubectl: Runner, webhook: tuple[WebhookProcess, str], namespace: str
) -> None:
    missing_rule = _apply(kubectl, _exception(namespace, webhook[1], rules=["Terminal shell in container"]))
    _rejected(
        missing_rule,
        webhook[0],
        "validate-policyexception",
        f'spec.policies[0].rules[0]: rule "Terminal shell in container" is not in ManagedPolicy "{webhook[1]}"',
    )
    missing_policy = _apply(kubectl, _exception(None, "no-such-policy"))
    _rejected(
        missing_policy,
        webhook[0],
        "validate-clusterpolicyexception",
        'spec.policies[0].name: ManagedPolicy "no-such-policy" does not exist',
    )


def test_tenant_exception_in_namespace_a_naming_b_is_rejected(
    kubectl: Runner, webhook: tuple[WebhookProcess, str], namespace: str
) -> None:
    match = {"fields": ["k8s.ns.name", "proc.name"], "comps": ["=", "="], "values": [["b", "tar"]]}
    result = _apply(kubectl, _exception(namespace, webhook[1], match=match))
    _rejected(
        result,
        webhook[0],
        "validate-policyexception",
        'spec.match.values[0][0]: k8s.ns.name "b" is another namespace',
        f'a PolicyException in namespace "{namespace}" may only silence events from "{namespace}"',
    )


def test_valid_exceptions_are_accepted(
    kubectl: Runner, webhook: tuple[WebhookProcess, str], namespace: str
) -> None:
    own = {"fields": ["k8s.ns.name", "proc.name"], "comps": ["=", "="], "values": [[namespace, "tar"]]}
    tenant = _exception(namespace, webhook[1], match=own)
    result = _apply(kubectl, tenant)
    assert result.returncode == 0, result.stderr
    cluster = _exception(
        None, webhook[1], match={"fields": ["k8s.ns.name"], "comps": ["="], "values": [["b"]]}
    )
    result = _apply(kubectl, cluster)
    assert result.returncode == 0, result.stderr
    kubectl("delete", "clusterpolicyexception", cluster["metadata"]["name"])
    kubectl("delete", "policyexception", tenant["metadata"]["name"], "-n", namespace)
