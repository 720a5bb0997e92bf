"""``SourcePort`` over ``padlock.sources``: parse the RuleSource spec, read its Secret/ConfigMaps.

The sources package is I/O-free about Kubernetes: this bridge reads the pull secret
(``.dockerconfigjson``), the CA ConfigMap and ``spec.configMap`` sources with the operator's client and
hands them over as plain data. Runs in worker threads.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, TypedDict

from padlock import sources
from padlock.adapters.kube.client import ApiError, KubeClient
from padlock.adapters.kube.resources import configmap_path
from padlock.api.rulesource import RuleSourceSpec
from padlock.sources.bundles import Bundle, Candidate
from padlock.sources.errors import SpecInvalid
from padlock.sources.ports import ConfigMapContent, ConfigMapReader

JSON = dict[str, Any]
DEFAULT_SECRET_NAMESPACE = "padlock-system"


class _Access(TypedDict, total=False):
    """What ``padlock.sources.resolve`` and ``fetch`` need from the cluster, read here."""

    configmaps: ConfigMapReader
    docker_config: Mapping[str, Any]
    ca_pem: str | None


class Sources:
    def __init__(self, client: KubeClient, *, engine_version: str | None = None,
                 secret_namespace: str = DEFAULT_SECRET_NAMESPACE) -> None:
        self.client = client
        self.engine_version = engine_version
        self.secret_namespace = secret_namespace

    # -- the port ----------------------------------------------------------------------------------------
    def resolve(self, source: JSON) -> Candidate:
        name, spec = self._spec(source)
        status = source.get("status") or {}
        return sources.resolve(
            name, spec, current_version=status.get("currentVersion"), current_digest=status.get("currentDigest"),
            engine_version=self.engine_version, **self._access(spec),
        )

    def fetch(self, source: JSON, candidate: Candidate) -> Bundle:
        name, spec = self._spec(source)
        return sources.fetch(name, spec, candidate, engine_version=self.engine_version, **self._access(spec))

    def fetch_current(self, source: JSON) -> Bundle | None:
        status = source.get("status") or {}
        version, digest = status.get("currentVersion"), status.get("currentDigest")
        if not version or not digest:
            return None
        name, spec = self._spec(source)
        # fetch uses only version and digest of a rebuilt candidate (padlock.sources.fetch docstring).
        candidate = Candidate(version=version, digest=digest, reference="", engine_requirement=None)
        return sources.fetch(name, spec, candidate, engine_version=None, **self._access(spec))

    # -- helpers -----------------------------------------------------------------------------------------
    def _spec(self, source: JSON) -> tuple[str, RuleSourceSpec]:
        name = str((source.get("metadata") or {}).get("name"))
        try:
            return name, RuleSourceSpec.model_validate(source.get("spec") or {})
        except ValueError as exc:
            raise SpecInvalid(name, "", f"spec: {exc}".replace("\n", " ")) from None

    def _access(self, spec: RuleSourceSpec) -> _Access:
        out: _Access = {"configmaps": self._read_configmap}
        if spec.oci is not None and spec.oci.pull_secret is not None:
            ref = spec.oci.pull_secret
            secret = self.client.get(f"/api/v1/namespaces/{ref.namespace or self.secret_namespace}/secrets/{ref.name}")
            raw = (secret.get("data") or {}).get(".dockerconfigjson")
            if raw:
                out["docker_config"] = json.loads(base64.b64decode(raw))
        if spec.oci is not None and spec.oci.ca_config_map is not None:
            ref2 = spec.oci.ca_config_map
            cm = self._read_configmap(ref2.namespace, ref2.name)
            if cm is not None:
                out["ca_pem"] = cm.data.get(ref2.key or "ca.crt")
        return out

    def _read_configmap(self, namespace: str, name: str) -> ConfigMapContent | None:
        try:
            cm = self.client.get(configmap_path(namespace, name))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        binary = {k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()}
        return ConfigMapContent(resource_version=str(cm["metadata"].get("resourceVersion", "")),
                                data=dict(cm.get("data") or {}), binary_data=binary)
