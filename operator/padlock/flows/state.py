"""The operator's in-memory view of the cluster, shared by the kopf handlers and the webhook.

One ``OperatorState`` is created at startup and passed around explicitly (kopf ``memo.state``), never
as a module global. Handlers keep it current from watch events; the RuleSource flow stores the bundles
it adopted; the publishing flow stores the last effective render. The admission webhook
(``padlock.webhook``) reads it to validate a changed object against the current effective ruleset.

Everything runs on the operator's event loop; flows that run in worker threads receive a ``snapshot``
(plain copies) rather than the live state.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from padlock.flows.rendering import ObjectKey as ObjectKey
from padlock.flows.rendering import Rendered
from padlock.policy import lock
from padlock.sources.bundles import Bundle

JSON = dict[str, Any]

USER_CHOICE_FIELDS = lock.USER_CHOICE_SPEC_FIELDS


def user_choices(spec: Mapping[str, Any]) -> JSON:
    """The user's choices in a ManagedPolicy ``spec`` (copies, only the fields that are set)."""
    return {f: copy.deepcopy(spec[f]) for f in USER_CHOICE_FIELDS if f in spec}


def frozen_key(obj: JSON) -> str:
    """Key of a CustomPolicy in ``OperatorState.frozen``: its uid (its name when it has none yet)."""
    md = obj.get("metadata") or {}
    return str(md.get("uid") or md.get("name", ""))


def key_of(obj: JSON) -> ObjectKey:
    md = obj.get("metadata", {})
    return (str(obj.get("kind", "")), str(md.get("namespace") or ""), str(md.get("name", "")))


@dataclass(frozen=True)
class Snapshot:
    """A consistent, immutable-by-convention copy of what a render needs."""

    sources: dict[str, JSON]
    bundles: dict[str, Bundle]
    managed: dict[str, JSON]
    custom: dict[str, JSON]
    exceptions: dict[ObjectKey, JSON]


@dataclass
class OperatorState:
    """Current cluster view. Attributes are read by the webhook; only handlers and flows mutate them."""

    sources: dict[str, JSON] = field(default_factory=dict)
    """RuleSource objects by name, as last seen."""
    bundles: dict[str, Bundle] = field(default_factory=dict)
    """Adopted bundle (version, digest, files) per RuleSource name."""
    managed: dict[str, JSON] = field(default_factory=dict)
    """ManagedPolicy objects by name, as last seen."""
    custom: dict[str, JSON] = field(default_factory=dict)
    """CustomPolicy objects by name."""
    exceptions: dict[ObjectKey, JSON] = field(default_factory=dict)
    """PolicyException and ClusterPolicyException objects by (kind, namespace, name)."""
    choices: dict[str, JSON] = field(default_factory=dict)
    """The user's choices (enabled, disabledRules, scope) per ManagedPolicy, remembered so a policy
    that disappears is recreated with them intact."""
    frozen: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Frozen rule sets captured by published renders, per CustomPolicy (``frozen_key``: its uid, so a
    policy deleted and created again freezes anew), for renders that run before the watch shows them in
    ``status.frozenRules`` (``padlock.flows.publishing``). Written only by renders, under the publish lock."""
    last_render: Rendered | None = None
    """The last effective render (``padlock.flows.rendering.Rendered``), publishable or not."""
    last_published: Rendered | None = None
    """The last render that was published (the ruleset Falco runs)."""
    synced: set[str] = field(default_factory=set)
    """RuleSources whose first sync after startup finished (adopted, recovered or failed cleanly)."""
    changes: int = 0
    """Bumped on every change of the inputs; the render loop compares it to know a burst is over."""

    # -- updates from watch events ------------------------------------------------------------------
    def upsert(self, obj: JSON) -> None:
        kind, namespace, name = key_of(obj)
        if kind == "RuleSource":
            self.sources[name] = obj
        elif kind == "ManagedPolicy":
            self.managed[name] = obj
            spec = obj.get("spec") or {}
            self.choices[name] = user_choices(spec)
        elif kind == "CustomPolicy":
            self.custom[name] = obj
        elif kind in ("PolicyException", "ClusterPolicyException"):
            self.exceptions[(kind, namespace, name)] = obj
        self.changes += 1

    def remove(self, obj: JSON) -> None:
        kind, namespace, name = key_of(obj)
        if kind == "RuleSource":
            self.sources.pop(name, None)
            self.bundles.pop(name, None)
            self.synced.discard(name)
        elif kind == "ManagedPolicy":
            # The choices stay remembered: the policy is recreated with them.
            self.managed.pop(name, None)
        elif kind == "CustomPolicy":
            self.custom.pop(name, None)
            self.frozen.pop(frozen_key(obj), None)
        else:
            self.exceptions.pop((kind, namespace, name), None)
        self.changes += 1

    # -- readers ---------------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Ready after the first sync of every known RuleSource (or when there are none)."""
        return all(name in self.synced for name in self.sources)

    @property
    def missing(self) -> list[str]:
        """RuleSources that published a version (``status.currentDigest``) whose bundle is not here yet
        (right after a restart). A render now would publish less than before: renders wait."""
        return sorted(n for n, obj in self.sources.items()
                      if n not in self.bundles and (obj.get("status") or {}).get("currentDigest"))

    def snapshot(self) -> Snapshot:
        return Snapshot(
            sources=copy.deepcopy(self.sources),
            bundles=dict(self.bundles),
            managed=copy.deepcopy(self.managed),
            custom=copy.deepcopy(self.custom),
            exceptions=copy.deepcopy(self.exceptions),
        )
