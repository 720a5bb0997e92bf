"""padlock.webhook.handlers: what kopf registers (paths, operations, failure policy) and the decisions.

The webhook configuration is built with kopf's own builder, so these tests show the exact
ValidatingWebhookConfiguration kopf will write into the cluster.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
from pathlib import Path
from typing import Any

import kopf
import pytest
from kopf._cogs.structs import references
from kopf._core.engines import admission as kopf_admission

from padlock import metrics
from padlock.policy import lock
from padlock.webhook import handlers
from padlock.webhook.wiring import WebhookOptions, setup

OPERATOR = lock.DEFAULT_OPERATOR_USERNAME


def _resources() -> list[references.Resource]:
    return [
        references.Resource(
            "padlock.dev",
            "v1alpha1",
            plural,
            namespaced=plural == "policyexceptions",
            subresources=frozenset({"status"}),
        )
        for plural in ("managedpolicies", "custompolicies", "policyexceptions", "clusterpolicyexceptions")
    ] + [references.Resource("", "v1", "configmaps", namespaced=True)]


def _webhooks() -> dict[str, dict[str, Any]]:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, handlers.AdmissionContext())
    built = kopf_admission.build_webhooks(
        registry._webhooks.get_all_handlers(),
        resources=_resources(),
        name_suffix="padlock.dev",
        client_config={"url": "https://127.0.0.1:9443", "caBundle": "Q0E="},
    )
    return {w["name"]: w for w in built}


def test_every_handler_is_registered_with_its_id_as_url_path_and_failure_policy_ignore() -> None:
    webhooks = _webhooks()
    assert sorted(webhooks) == sorted(f"{i}.padlock.dev" for i in handlers.HANDLER_IDS)
    for handler_id in handlers.HANDLER_IDS:
        hook = webhooks[f"{handler_id}.padlock.dev"]
        assert hook["clientConfig"]["url"] == f"https://127.0.0.1:9443/{handler_id}"
        assert hook["failurePolicy"] == "Ignore"
        assert hook["sideEffects"] == "None"


def test_lock_webhooks_cover_create_update_delete_and_the_status_subresource() -> None:
    webhooks = _webhooks()
    main = webhooks["lock-managedpolicy.padlock.dev"]["rules"]
    assert [(r["resources"], sorted(r["operations"])) for r in main] == [
        (["managedpolicies"], ["CREATE", "DELETE", "UPDATE"])
    ]
    status = webhooks["lock-managedpolicy-status.padlock.dev"]["rules"]
    assert [(r["resources"], r["operations"]) for r in status] == [(["managedpolicies/status"], ["UPDATE"])]
    cm = webhooks["lock-configmap.padlock.dev"]["rules"]
    assert [(r["apiGroups"], r["resources"], sorted(r["operations"])) for r in cm] == [
        ([""], ["configmaps"], ["CREATE", "DELETE", "UPDATE"])
    ]
    for kind in ("custompolicies", "policyexceptions", "clusterpolicyexceptions"):
        hook = webhooks[f"validate-{kind[:-3] + 'y' if kind.endswith('ies') else kind[:-1]}.padlock.dev"]
        assert [(r["resources"], sorted(r["operations"])) for r in hook["rules"]] == [
            ([kind], ["CREATE", "UPDATE"])
        ]


def _policy() -> dict[str, Any]:
    return {
        "apiVersion": "padlock.dev/v1alpha1",
        "kind": "ManagedPolicy",
        "metadata": {"name": "credential-access", "labels": {"padlock.dev/catalog": "default"}},
        "spec": {"description": "d", "rules": [{"name": "r", "condition": "evt.type=open"}]},
    }


def test_decide_managed_policy_denies_a_locked_edit_with_the_copy_hint() -> None:
    old = _policy()
    new = copy.deepcopy(old)
    new["spec"]["rules"][0]["condition"] = "always_true"
    reason = handlers.decide_managed_policy(
        handlers.AdmissionContext(),
        name="credential-access",
        old=old,
        new=new,
        operation="UPDATE",
        subresource=None,
        username="admin",
    )
    assert reason is not None
    assert "spec.rules[0].condition (changed)" in reason
    assert "padlock copy managedpolicy/credential-access my-credential-access" in reason


def test_decide_managed_policy_allows_user_choices_and_the_configured_operator() -> None:
    old = _policy()
    choice = copy.deepcopy(old)
    choice["spec"]["disabledRules"] = ["r"]
    ctx = handlers.AdmissionContext(identity=lock.Identity("system:serviceaccount:ops:padlock"))
    assert (
        handlers.decide_managed_policy(
            ctx, name="p", old=old, new=choice, operation="UPDATE", subresource=None, username="alice"
        )
        is None
    )
    assert (
        handlers.decide_managed_policy(
            ctx,
            name="p",
            old=old,
            new=None,
            operation="DELETE",
            subresource=None,
            username="system:serviceaccount:ops:padlock",
        )
        is None
    )
    assert (
        handlers.decide_managed_policy(
            ctx, name="p", old=old, new=None, operation="DELETE", subresource=None, username=OPERATOR
        )
        is not None
    )


def _call(registry: kopf.OperatorRegistry, handler_id: str, **kwargs: Any) -> Any:
    handler = next(h for h in registry._webhooks.get_all_handlers() if h.id == handler_id)
    return handler.fn(**kwargs)


def _sample(kind: str, operation: str, result: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "padlock_admission_decisions_total", {"kind": kind, "operation": operation, "result": result}
    )
    return value or 0.0


def test_handlers_raise_admission_error_403_and_count_decisions() -> None:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, handlers.AdmissionContext())
    old = _policy()
    new = copy.deepcopy(old)
    new["spec"]["description"] = "mine"
    denied_before = _sample("ManagedPolicy", "UPDATE", "denied")
    with pytest.raises(kopf.AdmissionError) as err:
        _call(
            registry,
            "lock-managedpolicy",
            old=old,
            new=new,
            operation="UPDATE",
            name="credential-access",
            subresource=None,
            userinfo={"username": "admin"},
        )
    assert err.value.code == 403
    assert "spec.description (changed)" in str(err.value)
    assert _sample("ManagedPolicy", "UPDATE", "denied") == denied_before + 1
    allowed_before = _sample("ManagedPolicy", "UPDATE", "allowed")
    _call(
        registry,
        "lock-managedpolicy",
        old=old,
        new=new,
        operation="UPDATE",
        name="credential-access",
        subresource=None,
        userinfo={"username": OPERATOR},
    )
    assert _sample("ManagedPolicy", "UPDATE", "allowed") == allowed_before + 1


def test_configmap_handler_ignores_unlabelled_configmaps_and_locks_labelled_ones() -> None:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, handlers.AdmissionContext())
    plain = {"metadata": {"name": "x", "namespace": "falco"}, "data": {"a": "1"}}
    assert (
        _call(
            registry,
            "lock-configmap",
            old=plain,
            new=None,
            operation="DELETE",
            name="x",
            namespace="falco",
            userinfo={"username": "admin"},
        )
        is None
    )
    ours = {
        "metadata": {
            "name": "padlock-rules",
            "namespace": "falco",
            "labels": {"app.kubernetes.io/managed-by": "padlock"},
        },
        "data": {"a": "1"},
    }
    with pytest.raises(kopf.AdmissionError, match='configmap "falco/padlock-rules" is generated by Padlock'):
        _call(
            registry,
            "lock-configmap",
            old=ours,
            new=None,
            operation="DELETE",
            name="padlock-rules",
            namespace="falco",
            userinfo={"username": "admin"},
        )


def test_validation_handler_turns_a_bug_into_a_warning_not_a_denial(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, handlers.AdmissionContext())

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(handlers.admission, "validate", broken)
    warnings: list[str] = []
    _call(
        registry,
        "validate-custompolicy",
        body={"kind": "CustomPolicy"},
        operation="CREATE",
        warnings=warnings,
    )
    assert warnings == ["padlock could not validate this CustomPolicy at admission; see the operator log"]


def test_setup_configures_kopf_server_managed_config_and_certificate(tmp_path: Path) -> None:
    settings = kopf.OperatorSettings()
    registry = kopf.OperatorRegistry()
    runtime = setup(
        settings,
        WebhookOptions(
            listen_addr="127.0.0.1",
            port=18443,
            cert_dir=str(tmp_path),
            managed_config="padlock.dev",
            service="padlock-webhook",
            namespace="padlock-system",
        ),
        None,
        now=datetime.datetime.now(datetime.UTC),
        registry=registry,
    )
    assert settings.admission.managed == "padlock.dev"
    assert settings.admission.server is runtime.server
    assert {h.id for h in registry._webhooks.get_all_handlers()} == set(handlers.HANDLER_IDS)

    async def first_config() -> Any:
        async def fn(*_: Any, **__: Any) -> Any:
            return {}

        generator = runtime.server(fn)
        try:
            return await generator.__anext__()
        finally:
            await generator.aclose()

    config = asyncio.run(first_config())
    assert config["url"] == "https://127.0.0.1:18443"
    assert config["caBundle"]  # the CA, base64, as the API server needs it
    import base64

    assert base64.b64decode(config["caBundle"]) == runtime.tls.cafile.read_bytes()


def test_decide_configmap_name_reserves_the_configured_shard_names_in_the_configured_namespace() -> None:
    ctx = handlers.AdmissionContext(target=lock.PublishTarget(namespace="security", base="rules", shards=2))

    def cm(name: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "security"}}

    def decide(name: str, user: str, namespace: str = "security") -> str | None:
        return handlers.decide_configmap_name(ctx, namespace=namespace, new=cm(name), operation="CREATE",
                                              username=user)

    refused = decide("rules-2", "alice")
    assert refused is not None and 'configmap "security/rules-2": this name is reserved' in refused
    assert "rules, rules-1, rules-2" in refused
    assert decide("rules-2", lock.DEFAULT_OPERATOR_USERNAME) is None
    assert decide("other", "alice") is None
    assert decide("rules-1", "alice", namespace="falco") is None  # another namespace: not the mount's
    confined = decide("rules-3", lock.DEFAULT_OPERATOR_USERNAME)
    assert confined is not None and "may create only the ConfigMaps it publishes" in confined
