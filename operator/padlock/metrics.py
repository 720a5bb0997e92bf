"""Prometheus metrics of the operator (prometheus-client), served on ``--metrics-addr``.

Flows and handlers increment these; the webhook increments ``ADMISSION_DECISIONS``. Metric objects
live in a dedicated registry (not the process-global default) so tests and the CLI can create
several operators in one process without duplicate-registration errors.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

SYNCS = Counter(
    "padlock_source_syncs_total", "RuleSource syncs by source and result "
    "(unchanged, adopted, refused, unavailable, waiting_approval, error).",
    ["source", "result"], registry=REGISTRY,
)
SYNC_DURATION = Histogram(
    "padlock_source_sync_duration_seconds", "Duration of one RuleSource sync (check, fetch, render, adopt).",
    ["source"], registry=REGISTRY, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
SOURCE_VERSION = Gauge(
    "padlock_source_version_info", "Current adopted version of a RuleSource (value is always 1).",
    ["source", "version", "digest"], registry=REGISTRY,
)
RENDERS = Counter(
    "padlock_renders_total", "Effective ruleset renders by result (publishable, invalid, error).",
    ["result"], registry=REGISTRY,
)
PUBLISH_WRITES = Counter(
    "padlock_publish_writes_total", "ConfigMap writes by the publisher (written, unchanged, deleted).",
    ["action"], registry=REGISTRY,
)
ADMISSION_DECISIONS = Counter(
    "padlock_admission_decisions_total", "Admission decisions by kind, operation and result (allowed, denied).",
    ["kind", "operation", "result"], registry=REGISTRY,
)


def serve(addr: str) -> None:
    """Start the /metrics HTTP server on ``host:port`` in a daemon thread."""
    host, _, port = addr.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0", registry=REGISTRY)


def set_source_version(source: str, version: str, digest: str) -> None:
    """One series per source: drop the previous version's label set first."""
    for labels in list(SOURCE_VERSION._metrics):  # prometheus-client has no "remove by partial labels"
        if labels[0] == source:
            SOURCE_VERSION.remove(*labels)
    SOURCE_VERSION.labels(source, version, digest).set(1)

# -- the tuner's alert intake (padlock.controllers.intake) ---------------------------------------------
TUNER_ALERTS = Counter(
    "padlock_tuner_alerts_total", "Falco alerts received by rule (rules the published ruleset does not know "
    "are counted as 'other'), priority and outcome (counted, silenced, untunable, internal, unmatchable).",
    ["rule", "priority", "outcome"], registry=REGISTRY,
)
TUNER_REJECTED = Counter(
    "padlock_tuner_rejected_requests_total", "Intake requests refused, by reason (unauthorized, too_large, "
    "rate_limited, malformed).", ["reason"], registry=REGISTRY,
)
TUNER_SUGGESTIONS_OPEN = Gauge(
    "padlock_tuner_suggestions_open", "TuningSuggestions in state Open.", registry=REGISTRY,
)
TUNER_TRACKED = Gauge(
    "padlock_tuner_tracked_workloads", "Workloads the tuner counts alerts for (bounded by its LRU).",
    registry=REGISTRY,
)
FALCO_FEEDBACK = Counter(
    "padlock_falco_feedback_total", "Falco's own signals about the published ruleset, by reason "
    "(FalcoReloadFailed, FalcoRulesetStale) and Falco host.", ["reason", "hostname"], registry=REGISTRY,
)

# Leader election (--leader-election): 1 on the replica that holds the Lease and writes.
LEADER = Gauge("padlock_leader", "1 while this replica holds the leader Lease", registry=REGISTRY)
