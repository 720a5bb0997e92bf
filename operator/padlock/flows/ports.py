"""The ports flows talk through: one Protocol per outside part, so unit tests pass fakes.

- ``SourcePort``: ``padlock.sources`` (cheap check and pull of a RuleSource); it speaks the sources'
  own ``Candidate`` and ``Bundle`` dataclasses, and fails with ``padlock.sources.errors.SourceError``.
- ``CorePort``: the policy and rules core (managed policy drafts, the effective render, diffs);
  implemented by ``padlock.flows.corebridge``.
- ``ClusterPort``: Kubernetes writes (``padlock.adapters.kube.cluster``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from padlock.adapters.kube.publish import PublishResult
from padlock.flows.rendering import ManagedDraft, Rendered, RenderInputs
from padlock.sources.bundles import Bundle, Candidate

JSON = dict[str, Any]


class SourcePort(Protocol):
    def resolve(self, source: JSON) -> Candidate:
        """The ``Candidate`` for the RuleSource object; raises ``SourceError`` on failure."""

    def fetch(self, source: JSON, candidate: Candidate) -> Bundle:
        """The ``Bundle`` for ``candidate``; raises ``SourceError`` on failure (verification, transport)."""

    def fetch_current(self, source: JSON) -> Bundle | None:
        """Re-fetch the RuleSource's current version by its digest (after a restart), or None."""


class CorePort(Protocol):
    def managed_drafts(self, bundles: Mapping[str, Bundle], now: dt.datetime,
                       load_orders: Mapping[str, int] | None = None) -> Sequence[ManagedDraft]:
        """Operator-owned ManagedPolicy content built from the catalog and the adopted bundles."""

    def render(self, inputs: RenderInputs, now: dt.datetime) -> Rendered:
        """The effective ruleset for ``inputs``; never raises for bad input (diagnostics instead)."""

    def diff_counts(self, old: Bundle | None, new: Bundle) -> tuple[int, int, int]:
        """Rules (added, removed, modified) between two bundles (``old`` None: all added)."""

    def recover_files(self, source: JSON, configmaps: Sequence[JSON]) -> Bundle | None:
        """The current bundle of ``source`` recovered verbatim from published ConfigMaps, or None."""


class ClusterPort(Protocol):
    def apply_managed(self, draft: ManagedDraft) -> JSON: ...
    def recreate_managed(self, draft: ManagedDraft, choices: JSON) -> JSON: ...
    def delete_managed(self, name: str) -> None: ...
    def write_status(self, kind: str, name: str, status: JSON, *, namespace: str | None = None) -> bool: ...
    def event(self, obj: JSON, reason: str, message: str, *, warning: bool = False) -> None: ...
    def publish(self, rendered: Rendered, owners: Sequence[JSON]) -> PublishResult | None: ...
    def published(self) -> list[JSON]: ...
