"""Rules sources: turn a RuleSource spec into a verified ``Bundle`` of rules files (OCI, HTTP, ConfigMap).

Called by ``padlock.flows.sync_source`` (in a thread: everything here is synchronous) and the CLI.
Two steps, as falcoctl's follower does them, with the checks it lacks:

- ``resolve(name, spec, ...) -> Candidate``: the cheap check (tags, manifest, config; no layer),
  applying the tracked tag or semver range, ``pinnedVersion``, ``updatePolicy`` / ``approvedVersion``,
  digest pins and the engine gate;
- ``fetch(name, spec, candidate, ...) -> Bundle``: pull exactly that digest, verify pins and the
  cosign signature, unpack with limits against hostile archives.

Every failure is a ``padlock.sources.errors.SourceError`` (see that module for the tree). No kopf, no
kubernetes client: the caller passes the pull secret as parsed ``.dockerconfigjson``, the CA as PEM
text and a ``ConfigMapReader`` for ConfigMap sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from padlock.sources import configmap, http, oci
from padlock.sources.archives import DEFAULT_LIMITS, Limits
from padlock.sources.bundles import Bundle, Candidate
from padlock.sources.errors import (
    ApprovalRequired,
    SourceError,
    SourceRejected,
    SourceUnavailable,
    SpecInvalid,
)
from padlock.sources.ports import ConfigMapContent, ConfigMapReader, RuleSourceSpecLike

__all__ = [
    "DEFAULT_LIMITS",
    "ApprovalRequired",
    "Bundle",
    "Candidate",
    "ConfigMapContent",
    "ConfigMapReader",
    "Limits",
    "SourceError",
    "SourceRejected",
    "SourceUnavailable",
    "fetch",
    "resolve",
]


def _kind(name: str, spec: RuleSourceSpecLike) -> str:
    kinds = [
        k
        for k, v in (("oci", spec.oci), ("http", spec.http), ("configMap", spec.config_map))
        if v is not None
    ]
    if len(kinds) != 1:
        raise SpecInvalid(
            name,
            "",
            "exactly one of spec.oci, spec.http or spec.configMap must be set "
            f"(found {', '.join(kinds) or 'none'})",
        )
    return kinds[0]


def resolve(
    name: str,
    spec: RuleSourceSpecLike,
    *,
    docker_config: Mapping[str, Any] | None = None,
    ca_pem: str | None = None,
    configmaps: ConfigMapReader | None = None,
    current_version: str | None = None,
    current_digest: str | None = None,
    engine_version: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    timeout: float = 30.0,
) -> Candidate:
    """The version RuleSource ``name`` should run now (see the source modules for each kind).

    ``docker_config``: the pull secret's parsed ``.dockerconfigjson``; ``ca_pem``: the CA bundle of
    ``spec.oci.caConfigMap``; ``configmaps``: reader for ``spec.configMap``; ``current_version`` /
    ``current_digest``: from ``status`` (Manual policy stays there); ``engine_version``: the cluster's
    Falco ``engine_version_semver``, to refuse artifacts that need a newer engine before pulling them.
    Raises ``ApprovalRequired`` (Manual, nothing approved or installed) or another ``SourceError``.
    """
    kind = _kind(name, spec)
    if kind == "oci":
        return oci.resolve(
            name,
            spec,
            docker_config=docker_config,
            ca_pem=ca_pem,
            current_version=current_version,
            engine_version=engine_version,
            timeout=timeout,
        )
    if kind == "http":
        return http.resolve(
            name,
            spec,
            current_version=current_version,
            current_digest=current_digest,
            limits=limits,
            timeout=timeout,
        )
    return configmap.resolve(
        name,
        spec,
        reader=configmaps,
        current_version=current_version,
        current_digest=current_digest,
        limits=limits,
    )


def fetch(
    name: str,
    spec: RuleSourceSpecLike,
    candidate: Candidate,
    *,
    docker_config: Mapping[str, Any] | None = None,
    ca_pem: str | None = None,
    configmaps: ConfigMapReader | None = None,
    engine_version: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    timeout: float = 30.0,
) -> Bundle:
    """The verified rules files of ``candidate`` (a ``Candidate`` from ``resolve``, or one rebuilt
    from ``status.currentVersion``/``currentDigest`` after a restart: only version and digest are used)."""
    kind = _kind(name, spec)
    if kind == "oci":
        return oci.fetch(
            name,
            spec,
            candidate,
            docker_config=docker_config,
            ca_pem=ca_pem,
            engine_version=engine_version,
            limits=limits,
            timeout=timeout,
        )
    if kind == "http":
        return http.fetch(
            name, spec, candidate, engine_version=engine_version, limits=limits, timeout=timeout
        )
    return configmap.fetch(
        name, spec, candidate, reader=configmaps, engine_version=engine_version, limits=limits
    )
