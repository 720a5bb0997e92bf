"""Fakes of the flows' ports (one per port), recording what the flows asked for."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from padlock.adapters.kube.publish import ConfigMapContent
from padlock.flows.rendering import ManagedDraft, Rendered, RenderInputs
from padlock.sources.errors import SourceError

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class File:
    name: str
    text: str


@dataclass(frozen=True)
class Bundle:
    version: str
    digest: str
    files: tuple[File, ...] = ()


@dataclass(frozen=True)
class Candidate:
    version: str
    digest: str
    reference: str = "ref"
    engine_requirement: str | None = None
    available_version: str | None = None


class SourceFailure(SourceError):
    """A failure of ``padlock.sources`` with any reason (the flows read only ``SourceError``'s fields)."""

    def __init__(self, reason: str, retryable: bool) -> None:
        self.reason = reason
        self.retryable = retryable
        super().__init__("src", "", f"registry says no ({reason})")


class FakeSources:
    def __init__(self, candidate: Any = None, bundles: Mapping[str, Bundle] | None = None,
                 error: Exception | None = None) -> None:
        self.candidate = candidate
        self.bundles = dict(bundles or {})
        self.error = error
        self.fetched: list[str] = []

    def resolve(self, source: dict[str, Any]) -> Any:
        if self.error is not None:
            raise self.error
        return self.candidate

    def fetch(self, source: dict[str, Any], candidate: Any) -> Bundle:
        self.fetched.append(candidate.digest)
        return self.bundles[candidate.digest]

    def fetch_current(self, source: dict[str, Any]) -> Bundle | None:
        digest = (source.get("status") or {}).get("currentDigest")
        return self.bundles.get(digest) if digest else None


class FakeCore:
    """Managed drafts list one rule per file name; a bundle whose digest is in ``broken`` fails."""

    def __init__(self, broken: Sequence[str] = (), engine_broken: Sequence[str] = ()) -> None:
        self.broken = set(broken)
        self.engine_broken = set(engine_broken)
        self.renders: list[RenderInputs] = []

    def managed_drafts(self, bundles: Mapping[str, Any], now: dt.datetime,
                       load_orders: Mapping[str, int] | None = None) -> list[ManagedDraft]:
        rules = [{"name": f.name, "condition": f.text, "priority": "WARNING"} for b in bundles.values() for f in b.files]
        version = next(iter(bundles.values())).version if bundles else ""
        return [ManagedDraft("creds", {"rules": rules, "source": {"ruleSource": "src", "version": version},
                                       "defaultEnabled": True}, {"app.kubernetes.io/managed-by": "padlock"})]

    def render(self, inputs: RenderInputs, now: dt.datetime) -> Rendered:
        self.renders.append(inputs)
        digests = {b.digest for b in inputs.bundles.values()}
        if digests & self.engine_broken:
            return Rendered(False, "", (), {("RuleSource", "", "src"): ("needs engine 0.99.0 [engine-version]",)},
                            engine_errors=("needs engine 0.99.0 [engine-version]",))
        if digests & self.broken:
            return Rendered(False, "", (), {("RuleSource", "", "src"): ('RuleSource src: rule "GPG": bad condition [condition-syntax]',)})
        data = {"50-src-rules.yaml": "|".join(sorted(digests))}
        choices = [m["spec"].get("disabledRules") for m in inputs.managed]
        data["padlock-policies.yaml"] = repr(choices) + repr([e["metadata"]["name"] for e in inputs.exceptions])
        # A CustomPolicy runs the rules it names (the real core resolves much more).
        counts = {("CustomPolicy", "", c["metadata"]["name"]): len((c.get("spec") or {}).get("rules") or [])
                  for c in inputs.custom}
        return Rendered(True, f"sha256:{hash(tuple(sorted(data.items()))) & 0xffff:x}",
                        (ConfigMapContent("padlock-rules", data, {}),), {}, rule_counts=counts)

    def diff_counts(self, old: Any, new: Any) -> tuple[int, int, int]:
        old_names = {f.name for f in (old.files if old else ())}
        new_names = {f.name for f in new.files}
        return len(new_names - old_names), len(old_names - new_names), 0

    def recover_files(self, source: dict[str, Any], configmaps: Sequence[dict[str, Any]]) -> Any:
        return None


@dataclass
class FakeCluster:
    statuses: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    applied: list[ManagedDraft] = field(default_factory=list)
    recreated: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    events: list[tuple[str, str, bool]] = field(default_factory=list)
    publishes: list[Rendered] = field(default_factory=list)

    def apply_managed(self, draft: ManagedDraft) -> dict[str, Any]:
        self.applied.append(draft)
        return {}

    def recreate_managed(self, draft: ManagedDraft, choices: dict[str, Any]) -> dict[str, Any]:
        self.recreated.append((draft.name, choices))
        return {}

    def delete_managed(self, name: str) -> None:
        self.deleted.append(name)

    def write_status(self, kind: str, name: str, status: dict[str, Any], *, namespace: str | None = None) -> bool:
        self.statuses[(kind, name)] = status
        return True

    def event(self, obj: dict[str, Any], reason: str, message: str, *, warning: bool = False) -> None:
        self.events.append((reason, message, warning))

    def publish(self, rendered: Rendered, owners: Sequence[dict[str, Any]]) -> Any:
        self.publishes.append(rendered)
        return None

    def published(self) -> list[dict[str, Any]]:
        return []


def rule_source(status: dict[str, Any] | None = None, generation: int = 1, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "padlock.dev/v1alpha1", "kind": "RuleSource",
            "metadata": {"name": "src", "uid": "uid-src", "generation": generation},
            "spec": {"oci": {"repository": "r.example/rules", "tag": "1"}, "interval": "2s", **spec},
            "status": status or {}}
