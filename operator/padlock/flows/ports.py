"""The ports flows talk through: one Protocol per outside part, so unit tests pass fakes.

- ``SourcePort``: ``padlock.sources`` (cheap check and pull of a RuleSource).
- ``CorePort``: the policy and rules core (managed policy drafts, the effective render, diffs);
  implemented by ``padlock.flows.corebridge``.
- ``ClusterPort``: Kubernetes writes (``padlock.adapters.kube.cluster``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from padlock.flows.rendering import ManagedDraft, Rendered, RenderInputs

JSON = dict[str, Any]


class SourcePort(Protocol):
    def resolve(self, source: JSON) -> Any:
        """A ``padlock.sources.bundles.Candidate`` for the RuleSource object; raises on failure."""

    def fetch(self, source: JSON, candidate: Any) -> Any:
        """The ``Bundle`` for ``candidate``; raises on failure (verification, transport)."""

    def fetch_current(self, source: JSON) -> Any | None:
        """Re-fetch the RuleSource's current version by its digest (after a restart), or None."""


class CorePort(Protocol):
    def managed_drafts(self, bundles: Mapping[str, Any], now: dt.datetime,
                       load_orders: Mapping[str, int] | None = None) -> Sequence[ManagedDraft]:
        """Operator-owned ManagedPolicy content built from the catalog and the adopted bundles."""

    def render(self, inputs: RenderInputs, now: dt.datetime) -> Rendered:
        """The effective ruleset for ``inputs``; never raises for bad input (diagnostics instead)."""

    def diff_counts(self, old: Any | None, new: Any) -> tuple[int, int, int]:
        """Rules (added, removed, modified) between two bundles (``old`` None: all added)."""

    def recover_files(self, source: JSON, configmaps: Sequence[JSON]) -> Any | None:
        """The current bundle of ``source`` recovered verbatim from published ConfigMaps, or None."""


class ClusterPort(Protocol):
    def apply_managed(self, draft: ManagedDraft) -> JSON: ...
    def recreate_managed(self, draft: ManagedDraft, choices: JSON) -> JSON: ...
    def delete_managed(self, name: str) -> None: ...
    def write_status(self, kind: str, name: str, status: JSON, *, namespace: str | None = None) -> bool: ...
    def event(self, obj: JSON, reason: str, message: str, *, warning: bool = False) -> None: ...
    def publish(self, rendered: Rendered, owners: Sequence[JSON]) -> Any: ...
    def published(self) -> list[JSON]: ...
