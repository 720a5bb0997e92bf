"""The shapes ``padlock.sources`` reads, as Protocols, so that it needs neither kopf nor kubernetes.

Called by: the source modules (type hints only). The RuleSource spec is the pydantic model
``padlock.api.rulesource.RuleSourceSpec``; these Protocols name only the attributes sources read, in
the snake_case the model uses (YAML camelCase in comments). The caller (a flow, with the kubernetes
client) implements ``ConfigMapReader`` and reads pull secrets and CA ConfigMaps into plain data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol


class OciSourceSpec(Protocol):
    """``spec.oci``."""

    @property
    def repository(self) -> str: ...  # host/path, no tag: ghcr.io/falcosecurity/rules/falco-rules
    @property
    def tag(self) -> str | None: ...  # floating or exact tag to follow: "5", "5.1", "latest"
    @property
    def semver(self) -> str | None: ...  # npm-style range: "^5.0.0", ">=5.1.0 <6"
    @property
    def plain_http(self) -> bool: ...  # plainHTTP: talk http:// to a mirror


class HttpSourceSpec(Protocol):
    """``spec.http``."""

    @property
    def url(self) -> str: ...
    @property
    def sha256(
        self,
    ) -> str | None: ...  # expected sha256 of the body, hex; unset: the body digest is the identity


class ConfigMapSourceSpec(Protocol):
    """``spec.configMap``."""

    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def key(self) -> str | None: ...  # unset: every .yaml/.yml key, in key order


class VerifySpec(Protocol):
    """``spec.verify``."""

    @property
    def digests(self) -> Sequence[str] | None: ...  # allowed digests, "sha256:<hex>"
    @property
    def cosign_public_key(self) -> str | None: ...  # cosignPublicKey: PEM


class RuleSourceSpecLike(Protocol):
    """The attributes of ``RuleSourceSpec`` that sources read."""

    @property
    def oci(self) -> OciSourceSpec | None: ...
    @property
    def http(self) -> HttpSourceSpec | None: ...
    @property
    def config_map(self) -> ConfigMapSourceSpec | None: ...  # configMap
    @property
    def update_policy(self) -> Literal["Automatic", "Manual"] | str: ...
    @property
    def approved_version(self) -> str | None: ...
    @property
    def pinned_version(self) -> str | None: ...
    @property
    def verify(self) -> VerifySpec | None: ...


@dataclass(frozen=True)
class ConfigMapContent:
    """What a ``ConfigMapReader`` returns: the object's resourceVersion and its data."""

    resource_version: str
    data: Mapping[str, str]
    binary_data: Mapping[str, bytes]
    """``binaryData`` already base64-decoded (a ``.tar.gz`` may live there)."""


class ConfigMapReader(Protocol):
    """Reads one ConfigMap; implemented by the caller with the kubernetes client.

    Returns None when the ConfigMap does not exist. Raises any exception for transport failures;
    sources turn those into ``SourceUnavailable``.
    """

    def __call__(self, namespace: str, name: str) -> ConfigMapContent | None: ...
