"""Publish Falco rules artifacts to a registry exactly as falcosecurity/rules does, for tests, the demo
and benches.

Called by: integration tests (``tests/integration/test_sources_*.py`` and the end-to-end story),
``padlock demo`` and ``bench/``. Never by the operator.

What ``push_rules_artifact`` builds, after falcosecurity/rules ``build/registry``:

- one layer ``application/vnd.cncf.falco.rulesfile.layer.v1+tar.gz``: a gzip tar of the YAML file(s),
  titled ``<file>.tar.gz``; built deterministically (fixed mtimes, owners, modes, sorted names) so the
  same input always gives the same digest;
- a config ``application/vnd.cncf.falco.rulesfile.config.v1+json``:
  ``{"name": <last path segment>, "version": ..., "requirements": [{"name": "engine_version_semver", ...}]}``,
  the engine version taken from ``required_engine_version`` in the file when not given (integer N -> 0.N.0);
- tags by upstream's ``ociTagsToUpdate``: ``X.Y.Z`` always; ``X.Y``, ``X`` and ``latest`` when this
  release is the newest of its minor, major, or overall; none of those for a pre-release;
- optionally a cosign-style signature under ``sha256-<hex>.sig`` (see ``padlock.sources.cosign``).

The push goes through oras-py over plain HTTP (``padlock.sources.registry.OrasRegistry``, which adds
timeouts and drops oras' sleeping retry loop).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from padlock.sources import cosign, requirements, selection
from padlock.sources.oci import CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE
from padlock.sources.registry import OCI_MANIFEST, OrasRegistry, sha256_digest

OCI_CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
_FIXED_MTIME = 0  # deterministic archives: the same files always give the same digest


class PushError(RuntimeError):
    """The registry refused a push; the message carries the HTTP status and body."""


@dataclass(frozen=True)
class PushedArtifact:
    """Where an artifact landed: ``reference`` is ``host/repo@sha256:...``."""

    repository: str
    version: str
    digest: str
    tags: tuple[str, ...]
    signature_tag: str | None

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"


def build_layer(files: Mapping[str, str]) -> bytes:
    """A deterministic ``.tar.gz`` of ``{name: text}`` (names sorted, root-owned, mode 0644, mtime 0)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(files):
            data = files[name].encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = _FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=_FIXED_MTIME)


def build_config(name: str, version: str, engine_version: str | None) -> bytes:
    """The artifact config as upstream writes it (compact JSON, keys in upstream order)."""
    config: dict[str, object] = {"name": name, "version": version}
    if engine_version:
        config["requirements"] = [{"name": requirements.ENGINE_KEY, "version": engine_version}]
    return json.dumps(config, separators=(",", ":")).encode()


def upstream_floating_tags(version: str, existing: Sequence[str]) -> list[str]:
    """Extra tags for ``version`` per upstream ``ociTagsToUpdate`` (``X.Y``, ``X``, ``latest``)."""
    new = selection.parse_exact(version)
    if new is None or new.prerelease:
        return []
    finals = [v for v, _ in selection.final_versions(list(existing))] + [new]
    tags: list[str] = []
    if all(v <= new for v in finals if (v.major, v.minor) == (new.major, new.minor)):
        tags.append(f"{new.major}.{new.minor}")
    if all(v <= new for v in finals if v.major == new.major):
        tags.append(f"{new.major}")
    if all(v <= new for v in finals):
        tags.append("latest")
    return tags


def generate_signing_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A fresh ECDSA P-256 key pair (as ``cosign generate-key-pair`` makes): (private key, public PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem.decode()


def _client(registry_hostport: str, auth: tuple[str, str] | None = None) -> OrasRegistry:
    basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode() if auth else None
    return OrasRegistry(registry_hostport, plain_http=True, tls_verify=False, timeout=30.0, basic_auth=basic)


def _check(response: object, what: str) -> None:
    status = getattr(response, "status_code", 0)
    if status not in (200, 201, 202):
        body = getattr(response, "text", "")
        raise PushError(f"{what}: registry answered HTTP {status}: {body[:500]}")


def _tags(client: OrasRegistry, registry_hostport: str, repository: str) -> list[str]:
    response = client.do_request(f"http://{registry_hostport}/v2/{repository}/tags/list", "GET")
    if response.status_code == 404:
        return []
    _check(response, f"list tags of {repository}")
    return list(response.json().get("tags") or [])


def put_blob(client: OrasRegistry, registry_hostport: str, repository: str, data: bytes) -> str:
    """Monolithic blob upload (POST then PUT with the digest); returns the digest."""
    digest = sha256_digest(data)
    start = client.do_request(f"http://{registry_hostport}/v2/{repository}/blobs/uploads/", "POST")
    _check(start, f"start blob upload to {repository}")
    location = start.headers["Location"]
    if location.startswith("/"):
        location = f"http://{registry_hostport}{location}"
    sep = "&" if "?" in location else "?"
    done = client.do_request(
        f"{location}{sep}digest={digest}",
        "PUT",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    _check(done, f"upload blob {digest} to {repository}")
    return digest


def put_manifest(client: OrasRegistry, registry_hostport: str, repository: str, tag: str, raw: bytes) -> str:
    """PUT raw manifest bytes under ``tag`` (bytes kept as given, so the digest is predictable)."""
    media_type = json.loads(raw).get("mediaType", OCI_MANIFEST)
    response = client.do_request(
        f"http://{registry_hostport}/v2/{repository}/manifests/{tag}",
        "PUT",
        data=raw,
        headers={"Content-Type": media_type},
    )
    _check(response, f"put manifest {repository}:{tag}")
    return sha256_digest(raw)


def _put_one_layer(
    client: OrasRegistry, registry_hostport: str, repository: str, tag: str, *, config: bytes,
    config_media_type: str, layer: bytes, layer_media_type: str, annotations: Mapping[str, str],
) -> str:
    """Upload ``layer`` and ``config`` and put an OCI manifest with that one layer under ``tag``;
    returns the manifest digest (compact JSON, so the digest is predictable)."""
    layer_digest = put_blob(client, registry_hostport, repository, layer)
    config_digest = put_blob(client, registry_hostport, repository, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_media_type, "digest": config_digest, "size": len(config)},
        "layers": [
            {
                "mediaType": layer_media_type,
                "digest": layer_digest,
                "size": len(layer),
                "annotations": dict(annotations),
            }
        ],
    }
    raw = json.dumps(manifest, separators=(",", ":")).encode()
    return put_manifest(client, registry_hostport, repository, tag, raw)


def push_artifact_bytes(
    registry_hostport: str,
    repository: str,
    tag: str,
    *,
    layer: bytes,
    config: bytes,
    layer_media_type: str = LAYER_MEDIA_TYPE,
    layer_title: str = "rules.tar.gz",
) -> str:
    """Push an arbitrary layer and config under ``tag`` and return the manifest digest.

    For tests that need artifacts upstream would never build (hostile archives, wrong media types).
    """
    client = _client(registry_hostport)
    try:
        return _put_one_layer(
            client, registry_hostport, repository, tag, config=config, config_media_type=CONFIG_MEDIA_TYPE,
            layer=layer, layer_media_type=layer_media_type,
            annotations={"org.opencontainers.image.title": layer_title},
        )
    finally:
        client.session.close()


def push_signature(
    registry_hostport: str,
    repository: str,
    digest: str,
    private_key: ec.EllipticCurvePrivateKey,
    *,
    signed_digest: str | None = None,
    auth: tuple[str, str] | None = None,
) -> str:
    """Sign ``repository@digest`` cosign-style (tag ``sha256-<hex>.sig``); returns that tag.

    ``signed_digest`` exists only for tests: the payload then names another digest, which models a
    valid signature copied from a different artifact.
    """
    client = _client(registry_hostport, auth)
    try:
        payload = cosign.payload(f"{registry_hostport}/{repository}", signed_digest or digest)
        signature = base64.b64encode(private_key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
        config = b"{}"
        tag = cosign.signature_tag(digest)
        _put_one_layer(
            client, registry_hostport, repository, tag, config=config, config_media_type=OCI_CONFIG_MEDIA_TYPE,
            layer=payload, layer_media_type=cosign.SIMPLESIGNING_MEDIA_TYPE,
            annotations={cosign.SIGNATURE_ANNOTATION: signature},
        )
        return tag
    finally:
        client.session.close()


def push_rules_artifact(
    registry_hostport: str,
    repository: str,
    version: str,
    files: Mapping[str, str],
    *,
    floating_tags: bool = True,
    engine_version: str | None = None,
    sign_with: ec.EllipticCurvePrivateKey | None = None,
    auth: tuple[str, str] | None = None,
) -> PushedArtifact:
    """Push ``files`` as release ``version`` of ``registry_hostport/repository`` in the upstream layout.

    ``engine_version`` defaults to the files' ``required_engine_version``; ``auth`` is (user, password)
    for a registry with htpasswd auth. Returns the digest and every tag written (``X.Y.Z`` first).
    """
    if not files:
        raise ValueError("push_rules_artifact needs at least one rules file")
    name = repository.rsplit("/", 1)[-1]
    engine = engine_version or requirements.from_texts(files.values())
    title = f"{next(iter(sorted(files)))}.tar.gz" if len(files) == 1 else f"{name}.tar.gz"
    client = _client(registry_hostport, auth)
    try:
        existing = _tags(client, registry_hostport, repository)
        with tempfile.TemporaryDirectory(prefix="padlock-artifact-") as tmp:
            layer_path = Path(tmp) / title
            layer_path.write_bytes(build_layer(files))
            config_path = Path(tmp) / "config.json"
            config_path.write_bytes(build_config(name, version, engine))
            response = client.push(
                target=f"{registry_hostport}/{repository}:{version}",
                files=[f"{layer_path}:{LAYER_MEDIA_TYPE}"],
                manifest_config=f"{config_path}:{CONFIG_MEDIA_TYPE}",
                disable_path_validation=True,
                quiet=True,
            )
        _check(response, f"push {repository}:{version}")
        got = client.do_request(
            f"http://{registry_hostport}/v2/{repository}/manifests/{version}",
            "GET",
            headers={"Accept": OCI_MANIFEST},
        )
        _check(got, f"read back {repository}:{version}")
        raw = got.content
        digest = sha256_digest(raw)
        tags = [version]
        if floating_tags:
            # Same bytes under each floating tag, so every tag resolves to the same digest.
            for tag in upstream_floating_tags(version, existing):
                put_manifest(client, registry_hostport, repository, tag, raw)
                tags.append(tag)
    finally:
        client.session.close()
    sig_tag = (
        push_signature(registry_hostport, repository, digest, sign_with, auth=auth)
        if sign_with is not None
        else None
    )
    return PushedArtifact(
        repository=f"{registry_hostport}/{repository}",
        version=version,
        digest=digest,
        tags=tuple(tags),
        signature_tag=sig_tag,
    )
