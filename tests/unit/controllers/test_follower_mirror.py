"""What a follower keeps for admission (padlock.controllers.follower), with fake sources and cluster.

Covers: a follower reads each source's current version back by its status.currentDigest and marks
it synced (the webhook's view is then complete); it fetches again only when the digest changes; a
source without an adopted version is marked synced with no bundle; a replica that leads does not
mirror; ``forget`` drops mirrored bundles and sync marks so a new leader starts like a restart; a
failed read leaves the source unsynced (admission says "still loading").
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from padlock.controllers import follower
from padlock.flows.state import OperatorState


@dataclass
class Bundle:
    version: str
    digest: str


class Sources:
    def __init__(self) -> None:
        self.fetched: list[str] = []
        self.fail = False

    def fetch_current(self, source: dict[str, Any]) -> Bundle:
        if self.fail:
            raise OSError("registry away")
        digest = source["status"]["currentDigest"]
        self.fetched.append(digest)
        return Bundle(source["status"]["currentVersion"], digest)


class Core:
    def recover_files(self, source: dict[str, Any], published: list[Any]) -> None:
        return None  # nothing published to recover from either


class Cluster:
    def published(self) -> list[Any]:
        return []


@dataclass
class Ctx:
    state: OperatorState
    sources: Sources
    core: Core
    cluster: Cluster
    lead: bool = False

    def leading(self) -> bool:
        return self.lead


def source(name: str, version: str = "", digest: str = "") -> dict[str, Any]:
    status = {"currentVersion": version, "currentDigest": digest} if digest else {}
    return {"apiVersion": "padlock.dev/v1alpha1", "kind": "RuleSource", "metadata": {"name": name}, "status": status}


def ctx_with(*objs: dict[str, Any]) -> Ctx:
    state = OperatorState()
    for obj in objs:
        state.upsert(obj)
    return Ctx(state, Sources(), Core(), Cluster())


def test_a_follower_holds_each_adopted_version_and_fetches_again_only_when_it_changes() -> None:
    ctx = ctx_with(source("a", "1.0.0", "sha256:1"), source("b"))
    assert not ctx.state.ready
    assert asyncio.run(follower.mirror_once(ctx)) == 1  # type: ignore[arg-type]
    assert ctx.state.bundles["a"] == Bundle("1.0.0", "sha256:1") and "b" not in ctx.state.bundles
    assert ctx.state.ready
    assert asyncio.run(follower.mirror_once(ctx)) == 0  # type: ignore[arg-type]
    ctx.state.upsert(source("a", "1.1.0", "sha256:2"))
    changes = ctx.state.changes
    assert asyncio.run(follower.mirror_once(ctx)) == 1  # type: ignore[arg-type]
    assert ctx.state.bundles["a"].version == "1.1.0" and ctx.state.changes > changes
    assert ctx.sources.fetched == ["sha256:1", "sha256:2"]


def test_a_leader_does_not_mirror_and_forget_leaves_a_fresh_start() -> None:
    ctx = ctx_with(source("a", "1.0.0", "sha256:1"))
    ctx.lead = True
    assert asyncio.run(follower.mirror_once(ctx)) == 0  # type: ignore[arg-type]
    assert ctx.sources.fetched == []
    ctx.lead = False
    asyncio.run(follower.mirror_once(ctx))  # type: ignore[arg-type]
    follower.forget(ctx)  # type: ignore[arg-type]
    assert ctx.state.bundles == {} and not ctx.state.ready and ctx.state.missing == ["a"]


def test_a_source_that_cannot_be_read_back_stays_unsynced() -> None:
    ctx = ctx_with(source("a", "1.0.0", "sha256:1"))
    ctx.sources.fail = True
    assert asyncio.run(follower.mirror_once(ctx)) == 0  # type: ignore[arg-type]
    assert not ctx.state.ready and "a" not in ctx.state.bundles
