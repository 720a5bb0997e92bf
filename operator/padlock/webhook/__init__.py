"""Padlock's admission webhook: the lock on managed objects and validation of user objects at apply time.

Entry point for the operator: ``setup(settings, WebhookOptions(...), state, now=...)`` in a kopf
startup handler (see ``padlock.webhook.wiring`` and docs/design.md, "Operator <-> webhook").
Modules: ``certs`` (TLS material), ``handlers`` (kopf validating handlers), ``views`` (the admission
view of the operator's state), ``wiring`` (server and registration), ``standalone`` (a webhook-only
kopf process for tests and the bench).
"""

from padlock.webhook.wiring import WebhookOptions, WebhookRuntime, publish_ca_bundle, setup

__all__ = ["WebhookOptions", "WebhookRuntime", "publish_ca_bundle", "setup"]
