"""What every handler needs, created once at startup and carried in kopf's ``memo.ctx``."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from padlock.adapters.kube.client import Connection, KubeClient
from padlock.adapters.kube.cluster import KubeCluster
from padlock.flows.options import OperatorOptions
from padlock.flows.state import OperatorState
from padlock.flows.sync_source import Refusal


@dataclass
class RuntimeOptions:
    """Process-level settings of ``padlock operator`` (addresses, timings), not used by flows."""

    health_addr: str = "127.0.0.1:8080"
    metrics_addr: str | None = "127.0.0.1:9090"
    webhook_addr: str | None = None
    webhook_port: int | None = None
    webhook_cert_dir: str | None = None
    tick: float = 1.0
    """Seconds between RuleSource timer ticks; each tick checks only sources whose interval is due."""
    debounce: float = 0.3
    """Seconds the render loop waits after a change so a burst of changes gives one render."""
    drift_interval: float = 10.0
    """Seconds between checks that the published ConfigMaps still hold what was published."""


@dataclass
class OperatorContext:
    options: OperatorOptions
    runtime: RuntimeOptions
    connection: Connection
    client: KubeClient
    cluster: KubeCluster
    sources: Any
    """``SourcePort`` (``padlock.flows.sourcebridge.Sources``)."""
    core: Any
    """``CorePort`` (``padlock.flows.corebridge.Core``)."""
    state: OperatorState = field(default_factory=OperatorState)
    publish_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    source_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    render_wanted: asyncio.Event = field(default_factory=asyncio.Event)
    refused: dict[str, Refusal] = field(default_factory=dict)
    next_check: dict[str, float] = field(default_factory=dict)
    """Monotonic time of the next due check per RuleSource."""
    started: bool = False
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    leading: Callable[[], bool] = field(default=lambda: True)
    """Whether this replica may sync and publish now (``--leader-election``: holds the Lease; else always)."""
    elected: bool = False
    """Run with leader election: readiness means "serves admission", not "synced" (followers never sync)."""

    def lock_for(self, source: str) -> asyncio.Lock:
        return self.source_locks.setdefault(source, asyncio.Lock())

    def request_render(self) -> None:
        self.render_wanted.set()

    @staticmethod
    def now() -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()
