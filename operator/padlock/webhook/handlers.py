"""kopf validating handlers: the lock on ManagedPolicies, generated ConfigMaps and reserved ConfigMap
names, and object validation.

``register(registry, context)`` adds the handlers to a kopf registry; ``padlock.webhook.setup`` calls
it at operator startup (before kopf starts its admission server, which reads the registry after the
startup handlers finished). Each handler has a fixed id, which is also its URL path on the webhook
server (``/lock-managedpolicy``) and the webhook name prefix in the ValidatingWebhookConfiguration, so
the chart's service-based configuration (``charts/padlock/templates/webhook.yaml``) routes to the same
handlers as kopf's managed one.

The decisions themselves are pure (``padlock.policy.lock``, ``padlock.policy.admission``); this module
turns them into ``kopf.AdmissionError`` (HTTP 403, shown by kubectl as "denied the request: ...") and
counts them in ``padlock_admission_decisions_total``.

Every webhook registration uses ``failurePolicy: Ignore``: while the operator is down, users can still
change their own choices, and the ValidatingAdmissionPolicy in the chart keeps the lock on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import kopf

from padlock import metrics
from padlock.api import kinds
from padlock.flows.state import OperatorState
from padlock.policy import admission, lock
from padlock.webhook.views import ViewCache

GROUP: Final = kinds.MANAGED_POLICY.group
VERSION: Final = kinds.MANAGED_POLICY.version

HANDLER_IDS: Final = (
    "lock-managedpolicy",
    "lock-managedpolicy-status",
    "lock-configmap",
    "reserve-configmap-name",
    "validate-custompolicy",
    "validate-policyexception",
    "validate-clusterpolicyexception",
)
"""Handler ids = URL paths = webhook name prefixes. The chart's webhook.yaml lists the same ids."""

FORBIDDEN: Final = 403
INVALID: Final = 422

logger = logging.getLogger(__name__)


@dataclass
class AdmissionContext:
    """What the handlers need besides the request: who the operator is, and the operator's state."""

    identity: lock.Identity = field(default_factory=lock.Identity)
    target: lock.PublishTarget = field(default_factory=lock.PublishTarget)
    """Where the operator publishes: the ConfigMap names reserved for it in the Falco namespace."""
    state: OperatorState | None = None
    """The operator's state (read only), or None for a webhook-only process."""
    views: ViewCache = field(default_factory=ViewCache)


def _username(userinfo: Mapping[str, Any] | None) -> str | None:
    value = (userinfo or {}).get("username")
    return value if isinstance(value, str) else None


def _raw(body: Any) -> dict[str, Any] | None:
    # kopf passes Body views (or None); the pure core takes plain mappings.
    return None if body is None else dict(body)


def _count(kind: str, operation: str, result: str) -> None:
    metrics.ADMISSION_DECISIONS.labels(kind, operation, result).inc()


def _answer(kind: str, operation: str, reason: str | None, code: int) -> None:
    """Count the decision; deny with ``reason`` (HTTP ``code``) when there is one."""
    _count(kind, operation, "denied" if reason else "allowed")
    if reason:
        raise kopf.AdmissionError(reason, code=code)


def decide_managed_policy(
    context: AdmissionContext,
    *,
    name: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    operation: str,
    subresource: str | None,
    username: str | None,
) -> str | None:
    """The rejection message for a ManagedPolicy request, or None to allow it."""
    violations = lock.check_managed_policy(
        old=old,
        new=new,
        operation=operation,
        username=username,
        subresource=subresource,
        identity=context.identity,
    )
    if not violations:
        return None
    return lock.managed_policy_message(name, operation, violations)


def decide_configmap(
    context: AdmissionContext,
    *,
    namespace: str | None,
    name: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    operation: str,
    username: str | None,
) -> str | None:
    """The rejection message for a request on a generated ConfigMap, or None to allow it."""
    violations = lock.check_generated_configmap(
        old=old, new=new, operation=operation, username=username, identity=context.identity
    )
    if not violations:
        return None
    return lock.configmap_message(namespace, name, operation, violations)


def decide_configmap_name(
    context: AdmissionContext,
    *,
    namespace: str | None,
    new: Mapping[str, Any] | None,
    operation: str,
    username: str | None,
) -> str | None:
    """The rejection message for a ConfigMap CREATE under a name reserved for (or refused to) the
    operator in the Falco namespace, or None to allow it."""
    return lock.check_reserved_name(
        namespace=namespace, new=new, operation=operation, username=username,
        identity=context.identity, target=context.target,
    )


def decide_object(context: AdmissionContext, body: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """(rejection message or None, warnings) for a CustomPolicy or exception create/update."""
    diags = admission.validate(body, context.views.view(context.state))
    warnings = [d.one_line() for d in diags if d.severity == "warning"]
    errors = admission.message(diags)
    return (errors or None), warnings


def register(registry: kopf.OperatorRegistry, context: AdmissionContext) -> None:
    """Add Padlock's validating handlers to ``registry``; they read ``context`` on every request."""

    def lock_managed_policy(**kwargs: Any) -> None:
        old, new, operation = kwargs.get("old"), kwargs.get("new"), str(kwargs.get("operation"))
        name, subresource, userinfo = kwargs.get("name"), kwargs.get("subresource"), kwargs.get("userinfo")
        old_raw, new_raw = _raw(old), _raw(new)
        obj_name = name or str(((new_raw or old_raw or {}).get("metadata") or {}).get("name", ""))
        reason = decide_managed_policy(
            context,
            name=obj_name,
            old=old_raw,
            new=new_raw,
            operation=operation,
            subresource=subresource,
            username=_username(userinfo),
        )
        _answer("ManagedPolicy", operation, reason, FORBIDDEN)

    kopf.on.validate(
        GROUP,
        VERSION,
        kinds.MANAGED_POLICY.plural,
        id="lock-managedpolicy",
        registry=registry,
        operations=["CREATE", "UPDATE", "DELETE"],
        ignore_failures=True,
    )(lock_managed_policy)
    kopf.on.validate(
        GROUP,
        VERSION,
        kinds.MANAGED_POLICY.plural,
        id="lock-managedpolicy-status",
        registry=registry,
        operations=["UPDATE"],
        subresource="status",
        ignore_failures=True,
    )(lock_managed_policy)

    def lock_configmap(**kwargs: Any) -> None:
        old, new, operation = kwargs.get("old"), kwargs.get("new"), str(kwargs.get("operation"))
        name, namespace, userinfo = kwargs.get("name"), kwargs.get("namespace"), kwargs.get("userinfo")
        old_raw, new_raw = _raw(old), _raw(new)
        if not (lock.is_generated_configmap(old_raw) or lock.is_generated_configmap(new_raw)):
            return  # not ours; not counted, so the metric only shows decisions about Padlock's objects
        reason = decide_configmap(
            context,
            namespace=namespace,
            # With generateName, the request carries no name; the object has the generated one.
            name=name or str(((new_raw or old_raw or {}).get("metadata") or {}).get("name") or ""),
            old=old_raw,
            new=new_raw,
            operation=operation,
            username=_username(userinfo),
        )
        _answer("ConfigMap", operation, reason, FORBIDDEN)

    # No kopf label filter here: kopf would check it on the new object only, so an UPDATE that removes
    # the managed-by label would skip the lock. The chart's webhook.yaml narrows the calls with an
    # objectSelector, which the API server evaluates on old and new objects.
    kopf.on.validate(
        "",
        "v1",
        "configmaps",
        id="lock-configmap",
        registry=registry,
        operations=["CREATE", "UPDATE", "DELETE"],
        ignore_failures=True,
    )(lock_configmap)

    def reserve_configmap_name(**kwargs: Any) -> None:
        new, operation, namespace = _raw(kwargs.get("new")), str(kwargs.get("operation")), kwargs.get("namespace")
        if operation != "CREATE" or namespace != context.target.namespace:
            return  # not counted: the metric only shows decisions about Padlock's names
        reason = decide_configmap_name(
            context, namespace=namespace, new=new, operation=operation, username=_username(kwargs.get("userinfo"))
        )
        _answer("ConfigMap", operation, reason, FORBIDDEN)

    # Every ConfigMap CREATE in the Falco namespace, labelled or not (the chart's webhook.yaml selects
    # that namespace): the names the Falco mount loads are the operator's, and the operator may create
    # no other name there (RBAC cannot confine create to names).
    kopf.on.validate(
        "",
        "v1",
        "configmaps",
        id="reserve-configmap-name",
        registry=registry,
        operations=["CREATE"],
        ignore_failures=True,
    )(reserve_configmap_name)

    def validating(kind: str) -> Callable[..., None]:
        def validate_object(**kwargs: Any) -> None:
            body, operation, warnings = kwargs.get("body"), str(kwargs.get("operation")), kwargs["warnings"]
            try:
                reason, found = decide_object(context, _raw(body) or {})
            except Exception:
                # A bug in validation must not block users: the operator validates again before
                # publishing and reports problems in status. Deny only what is known to be wrong.
                logger.exception("validating %s failed; allowing the request", kind)
                _count(kind, operation, "error")
                warnings.append(f"padlock could not validate this {kind} at admission; see the operator log")
                return
            warnings.extend(found)
            _answer(kind, operation, reason, INVALID)

        return validate_object

    for plural, kind in (
        (k.plural, k.kind) for k in (kinds.CUSTOM_POLICY, kinds.POLICY_EXCEPTION, kinds.CLUSTER_POLICY_EXCEPTION)
    ):
        kopf.on.validate(
            GROUP,
            VERSION,
            plural,
            id=f"validate-{kind.lower()}",
            registry=registry,
            operations=["CREATE", "UPDATE"],
            ignore_failures=True,
        )(validating(kind))
