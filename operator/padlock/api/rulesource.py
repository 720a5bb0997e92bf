"""``RuleSource``: where managed rules come from and how Padlock follows them (cluster-scoped).

Written by admins; read by the source-sync flow (``padlock.flows``) and by ``padlock.sources``,
which turn a spec into a pulled Bundle. Only the operator writes ``status``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

import semantic_version
from pydantic import AwareDatetime, Field, field_validator

from padlock.api.common import (
    API_VERSION,
    CONFIGMAP_KEY,
    DURATION,
    SHA256_DIGEST,
    SHA256_HEX,
    CelRule,
    DnsLabel,
    ObjectMeta,
    ObjectName,
    PadlockModel,
    StatusBase,
    Version,
    list_type,
    parse_duration,
)

# Repository part of an OCI reference, without tag or digest: a registry host (optionally with a
# port) and at least one path component, as the OCI distribution spec names repositories.
OCI_REPOSITORY = (
    r"^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]+)?"
    r"(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)+$"
)
OCI_TAG = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$"
# A host name or IP address, optionally with a port: an entry of spec.http.allowedRedirectHosts.
REDIRECT_HOST = r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$"
# Characters of npm-style semver ranges (">=5.0.0 <6.0.0", "~5.1", "5.x", "^5"); the model parses
# the range for real, the API server only checks the characters.
SEMVER_RANGE = r"^[0-9A-Za-z.*^~<>=|, +-]+$"
# 1s, not 1m: integration tests and bench/operator follow a loopback registry every second or two.
MIN_INTERVAL = timedelta(seconds=1)


class SecretRef(PadlockModel):
    """A Secret of type kubernetes.io/dockerconfigjson holding registry credentials."""

    name: ObjectName
    """Name of the Secret."""
    namespace: DnsLabel | None = None
    """Namespace of the Secret. Defaults to the operator's namespace, the only one where the chart
    lets the operator read Secrets."""


class ConfigMapRef(PadlockModel):
    """A ConfigMap (and optionally one key of it)."""

    name: ObjectName
    """Name of the ConfigMap."""
    namespace: DnsLabel
    """Namespace of the ConfigMap. The operator must be allowed to read ConfigMaps there (chart value
    `rbac.configMapNamespaces`)."""
    key: str | None = Field(default=None, min_length=1, max_length=253, pattern=CONFIGMAP_KEY)
    """Key to read. Unset: every key ending in `.yaml` or `.yml`, in key order."""


class OciSource(PadlockModel):
    """An OCI artifact of Falco rules, as published by falcosecurity/rules."""

    repository: str = Field(min_length=3, max_length=512, pattern=OCI_REPOSITORY)
    """Repository without tag or digest, e.g. `ghcr.io/falcosecurity/rules/falco-rules`."""
    tag: str | None = Field(default=None, pattern=OCI_TAG)
    """A tag to track, usually a floating one such as `5` (latest 5.x.y) or `latest`."""
    semver: str | None = Field(default=None, min_length=1, max_length=128, pattern=SEMVER_RANGE)
    """A semver range to track among the repository's tags, e.g. `>=5.0.0 <6.0.0` or `~5.1`."""
    pull_secret: SecretRef | None = None
    """Registry credentials. Unset: anonymous pull."""
    plain_http: bool = Field(default=False, alias="plainHTTP")
    """Talk plain HTTP to the registry (a local mirror without TLS)."""
    ca_config_map: ConfigMapRef | None = None
    """CA bundle (PEM) for a registry with a private certificate authority; key defaults to `ca.crt`."""

    cel_rules = (
        CelRule(
            rule="has(self.tag) != has(self.semver)",
            message="exactly one of oci.tag or oci.semver must be set",
            check=lambda s: (s.tag is None) != (s.semver is None),
        ),
    )

    @field_validator("semver")
    @classmethod
    def _semver_range_parses(cls, value: str | None) -> str | None:
        # The CRD pattern only checks characters; parse the range so `padlock validate` catches typos.
        if value is not None:
            try:
                semantic_version.NpmSpec(value)
            except ValueError as exc:
                raise ValueError(f"invalid semver range {value!r}: {exc}") from None
        return value


class HttpSource(PadlockModel):
    """A rules file (`.yaml`) or archive (`.tar.gz`) downloaded over HTTP(S)."""

    url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://[^\s]+$")
    """URL of the `.yaml` file or `.tar.gz` archive."""
    sha256: str | None = Field(default=None, pattern=SHA256_HEX)
    """Expected sha256 of the downloaded bytes (64 hex digits). A mismatch is never adopted."""
    allowed_redirect_hosts: list[Annotated[str, Field(min_length=1, max_length=261, pattern=REDIRECT_HOST)]] | None = (
        Field(default=None, max_length=16, json_schema_extra=list_type("set"))
    )
    """Other servers the URL may redirect to (`host` or `host:port`). Unset: a redirect is followed
    only to the same scheme, host and port; never from https to http; at most 5 redirects."""


class Verification(PadlockModel):
    """Checks a pulled artifact must pass before it is adopted."""

    digests: list[Annotated[str, Field(pattern=SHA256_DIGEST)]] | None = Field(
        default=None, max_length=64, json_schema_extra=list_type("set")
    )
    """Allowed artifact digests (`sha256:<64 hex>`). When set, any other digest is refused."""
    cosign_public_key: str | None = Field(
        default=None, max_length=8192, pattern=r"^-----BEGIN PUBLIC KEY-----"
    )
    """PEM cosign public key; when set, the artifact's signature must verify with it."""


UpdatePolicy = Literal["Automatic", "Manual"]


class RuleSourceSpec(PadlockModel):
    """What to follow: exactly one of oci, http or configMap, and how to follow it."""

    oci: OciSource | None = None
    """Follow an OCI artifact (the way falcosecurity/rules publishes releases)."""
    http: HttpSource | None = None
    """Download a rules file or archive over HTTP(S)."""
    config_map: ConfigMapRef | None = None
    """Read rules files from a ConfigMap (air-gapped clusters)."""
    interval: str = Field(default="1h", max_length=32, pattern=DURATION)
    """How often to check for a new version, as a duration (`1h`, `30m`, `24h`); at least `1s`."""
    update_policy: UpdatePolicy = "Automatic"
    """`Automatic` adopts a new version once it validates. `Manual` records it in
    status.availableVersion and waits until spec.approvedVersion names it."""
    approved_version: Version | None = None
    """With updatePolicy `Manual`: the version the admin approved for adoption."""
    pinned_version: Version | None = None
    """Stay on, or roll back to, this version whatever the tag or range says."""
    verify: Verification | None = None
    """Digest pins and signature verification."""
    load_order: int = Field(default=50, ge=0, le=99)
    """Where this source's files sit among all rules files (0-99, lower loads first)."""

    cel_rules = (
        CelRule(
            rule="[has(self.oci), has(self.http), has(self.configMap)].filter(x, x).size() == 1",
            message="exactly one of spec.oci, spec.http or spec.configMap must be set",
            check=lambda s: sum(x is not None for x in (s.oci, s.http, s.config_map)) == 1,
        ),
        CelRule(
            rule="!has(self.approvedVersion) || self.updatePolicy == 'Manual'",
            message="approvedVersion only applies with updatePolicy Manual",
            check=lambda s: s.approved_version is None or s.update_policy == "Manual",
            field_path=".approvedVersion",
        ),
        CelRule(
            rule="duration(self.interval) >= duration('1s')",
            message="interval must be at least 1s",
            check=lambda s: parse_duration(s.interval) >= MIN_INTERVAL,
            field_path=".interval",
        ),
    )


class HistoryEntry(PadlockModel):
    """One adopted version."""

    version: str = Field(max_length=128)
    """Version adopted."""
    digest: str | None = Field(default=None, max_length=128)
    """Digest of the adopted artifact (`sha256:...`)."""
    time: AwareDatetime
    """When it was adopted."""
    added: int = Field(default=0, ge=0)
    """Number of rules added compared with the previous version."""
    removed: int = Field(default=0, ge=0)
    """Number of rules removed."""
    modified: int = Field(default=0, ge=0)
    """Number of rules whose text changed."""


class RuleSourceStatus(StatusBase):
    """What the operator found and adopted. Conditions: `Ready`, `UpToDate`, `Degraded`, and `FalcoLoaded`
    (from Falco's own alerts, with the tuner on: False when a Falco host refused to reload the published
    ruleset or still runs an older one)."""

    current_version: str | None = Field(default=None, max_length=128)
    """Version in use (published to Falco)."""
    current_digest: str | None = Field(default=None, max_length=128)
    """Digest of the artifact in use."""
    last_check_time: AwareDatetime | None = None
    """When the source was last checked for a new version."""
    last_update_time: AwareDatetime | None = None
    """When a new version was last adopted."""
    available_version: str | None = Field(default=None, max_length=128)
    """Newest version found; with updatePolicy `Manual` it waits here until approved."""
    history: list[HistoryEntry] | None = Field(default=None, max_length=20)
    """Adopted versions, newest first (at most 20)."""


class RuleSource(PadlockModel):
    """Follows one upstream rules artifact and feeds its rules to Falco and the managed policies."""

    api_version: Literal["padlock.dev/v1alpha1"] = API_VERSION
    kind: Literal["RuleSource"] = "RuleSource"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RuleSourceSpec
    """Where the rules come from and how they are followed."""
    status: RuleSourceStatus | None = None
    """Written by the operator only."""
