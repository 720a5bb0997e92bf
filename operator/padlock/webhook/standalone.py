"""A webhook-only kopf process: the lock and object validation without the rest of the operator.

For integration tests and the admission bench, so they never wait on the full operator::

    PADLOCK_WEBHOOK_PORT=9443 python -m kopf run --standalone -A -m padlock.webhook.standalone

Configured by environment variables (all optional): ``PADLOCK_WEBHOOK_ADDR`` (default 127.0.0.1),
``PADLOCK_WEBHOOK_PORT`` (9443), ``PADLOCK_WEBHOOK_CERT_DIR`` (a temporary directory),
``PADLOCK_WEBHOOK_CONFIG`` (the kopf-managed ValidatingWebhookConfiguration, default padlock.dev),
``PADLOCK_OPERATOR_USERNAME``, ``PADLOCK_PLUGINS`` (``container=0.4.0,...``). It holds no operator state, so reference checks only warn.
"""

from __future__ import annotations

import datetime
import os
import tempfile
from typing import Any

import kopf

from padlock.api import kinds
from padlock.flows.state import OperatorState
from padlock.policy import lock
from padlock.webhook.wiring import WebhookOptions, setup

GROUP, VERSION = kinds.MANAGED_POLICY.group, kinds.MANAGED_POLICY.version
WATCHED = {k.plural: k.kind for k in (
    kinds.MANAGED_POLICY, kinds.CUSTOM_POLICY, kinds.POLICY_EXCEPTION, kinds.CLUSTER_POLICY_EXCEPTION)}


def options_from_env(env: dict[str, str] | None = None) -> WebhookOptions:
    values = dict(os.environ if env is None else env)
    return WebhookOptions(
        listen_addr=values.get("PADLOCK_WEBHOOK_ADDR", "127.0.0.1"),
        port=int(values.get("PADLOCK_WEBHOOK_PORT", "9443")),
        cert_dir=values.get("PADLOCK_WEBHOOK_CERT_DIR") or tempfile.mkdtemp(prefix="padlock-webhook-"),
        managed_config=values.get("PADLOCK_WEBHOOK_CONFIG", "padlock.dev") or None,
        operator_username=values.get("PADLOCK_OPERATOR_USERNAME", lock.DEFAULT_OPERATOR_USERNAME),
        target=lock.PublishTarget(
            namespace=values.get("PADLOCK_FALCO_NAMESPACE", lock.DEFAULT_FALCO_NAMESPACE),
            base=values.get("PADLOCK_RULES_CONFIGMAP", lock.DEFAULT_RULES_CONFIGMAP),
            shards=int(values.get("PADLOCK_RULES_SHARDS", str(lock.DEFAULT_RULES_SHARDS))),
        ),
        plugins=tuple(
            (name, version)
            for name, _, version in (p.partition("=") for p in values.get("PADLOCK_PLUGINS", "").split(","))
            if name
        ),
    )


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Nothing here writes to the cluster, so posting kopf's events is pointless.
    settings.posting.enabled = False
    memo.state = OperatorState()
    setup(settings, options_from_env(), memo.state, now=datetime.datetime.now(datetime.UTC))


def _track(plural: str, kind: str) -> None:
    @kopf.on.event(GROUP, VERSION, plural, id=f"track-{plural}")
    def track(**kwargs: Any) -> None:
        # kopf reports the initial listing with type None, then ADDED/MODIFIED/DELETED.
        obj = dict(kwargs["body"])
        obj.setdefault("kind", kind)
        state: OperatorState = kwargs["memo"].state
        if kwargs.get("type") == "DELETED":
            state.remove(obj)
        else:
            state.upsert(obj)


for _plural, _kind in WATCHED.items():
    _track(_plural, _kind)
