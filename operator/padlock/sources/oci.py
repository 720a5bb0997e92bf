"""RuleSource ``spec.oci``: follow a Falco rules OCI artifact (upstream layout) through a registry.

Called by: ``padlock.sources.resolve`` / ``padlock.sources.fetch`` (``padlock/sources/__init__.py``).
Synchronous; the operator runs it in a thread. ``resolve`` reads the tag list, manifests and the tiny
config blob, never a layer. ``fetch`` pulls exactly ``candidate.digest``, checks the digest pins and
the cosign signature *before* downloading the layer, then unpacks it with ``archives`` limits.

Artifact layout (falcosecurity/rules ``build/registry``): one layer
``application/vnd.cncf.falco.rulesfile.layer.v1+tar.gz`` holding the YAML, and a config
``application/vnd.cncf.falco.rulesfile.config.v1+json`` with ``name``, ``version`` and
``requirements: [{name: engine_version_semver, version}]``. A mirror of ghcr.io works unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from padlock.sources import archives, bundles, cosign, requirements, selection
from padlock.sources.bundles import Bundle, Candidate
from padlock.sources.errors import (
    ApprovalRequired,
    ArchiveRejected,
    IntegrityError,
    SignatureError,
    SourceRejected,
    SpecInvalid,
    VersionNotFound,
)
from padlock.sources.ports import OciSourceSpec, RuleSourceSpecLike, VerifySpec
from padlock.sources.registry import MAX_CONFIG_BYTES, OCI_INDEX, RegistryClient

LAYER_MEDIA_TYPE = "application/vnd.cncf.falco.rulesfile.layer.v1+tar.gz"
CONFIG_MEDIA_TYPE = "application/vnd.cncf.falco.rulesfile.config.v1+json"
MAX_SIGNATURE_PAYLOAD_BYTES = 64 * 1024


def _client(
    source: str,
    oci: OciSourceSpec,
    docker_config: Mapping[str, Any] | None,
    ca_pem: str | None,
    timeout: float,
) -> RegistryClient:
    return RegistryClient(
        oci.repository,
        source=source,
        plain_http=bool(oci.plain_http),
        docker_config=docker_config,
        ca_pem=ca_pem,
        timeout=timeout,
    )


def check_digest_pins(
    verify: VerifySpec | None, digest: str, *, source: str, reference: str, version: str
) -> None:
    """``IntegrityError`` when ``spec.verify.digests`` is set and does not contain ``digest``."""
    pins = list(verify.digests or []) if verify is not None else []
    if pins and digest not in pins:
        raise IntegrityError(
            source, reference, f"version {version} has digest {digest}, which is not in spec.verify.digests"
        )


def _read_config(client: RegistryClient, manifest: Mapping[str, Any], reference: str) -> dict[str, Any]:
    descriptor = manifest.get("config")
    if not isinstance(descriptor, Mapping) or not isinstance(descriptor.get("digest"), str):
        raise SourceRejected(client.source, reference, "manifest has no config descriptor")
    raw = client.blob(descriptor["digest"], MAX_CONFIG_BYTES, what="artifact config")
    try:
        config = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise SourceRejected(client.source, reference, f"artifact config is not JSON: {exc}") from exc
    return config if isinstance(config, dict) else {}


def _check_manifest(client: RegistryClient, manifest: Mapping[str, Any], reference: str) -> None:
    if manifest.get("mediaType") == OCI_INDEX or "manifests" in manifest:
        raise SourceRejected(
            client.source,
            reference,
            "reference is an image index, not a rules artifact "
            "(expected one manifest with a rulesfile layer)",
        )


def _newest(client: RegistryClient, tags: Sequence[str], oci: OciSourceSpec) -> tuple[str | None, str, str]:
    """(version or None if only the config can tell, digest, tag followed) of what the spec tracks."""
    source = client.source
    if oci.tag and oci.semver:
        raise SpecInvalid(source, client.repository, "set only one of spec.oci.tag and spec.oci.semver")
    if oci.semver:
        try:
            tag = selection.highest_in_range(list(tags), oci.semver)
        except ValueError as exc:
            raise SpecInvalid(source, client.repository, f"spec.oci.semver: {exc}") from exc
        if tag is None:
            raise VersionNotFound(
                source,
                client.repository,
                f"no release tag matches semver range {oci.semver!r} (found {len(tags)} tags)",
            )
        return tag, client.manifest_digest(tag), tag
    floating = oci.tag or "latest"
    if floating not in tags:
        raise VersionNotFound(source, client.ref(floating), f"tag {floating!r} not found in the repository")
    digest = client.manifest_digest(floating)
    # The exact tag with the same digest names the version; newest first, so usually one HEAD.
    for tag in selection.floating_candidates(list(tags), floating):
        if tag == floating or client.manifest_digest(tag) == digest:
            return tag, digest, floating
    return None, digest, floating


def resolve(
    source: str,
    spec: RuleSourceSpecLike,
    *,
    docker_config: Mapping[str, Any] | None = None,
    ca_pem: str | None = None,
    current_version: str | None = None,
    engine_version: str | None = None,
    timeout: float = 30.0,
) -> Candidate:
    """The version to run now and its immutable digest, from tags and manifests only."""
    oci = spec.oci
    if oci is None:
        raise SpecInvalid(source, "", "spec.oci is not set")
    with _client(source, oci, docker_config, ca_pem, timeout) as client:
        tags = client.tags()
        newest, newest_digest, followed = _newest(client, tags, oci)
        newest_config: dict[str, Any] | None = None
        if newest is None:
            manifest, _, _ = client.manifest(newest_digest)
            newest_config = _read_config(client, manifest, client.ref(newest_digest))
            # An artifact under a custom tag only: the config's version is the only name it has.
            newest = str(newest_config.get("version") or f"{followed}@{newest_digest[7:19]}")
        adoption = selection.plan(
            newest,
            pinned=spec.pinned_version,
            manual=spec.update_policy == "Manual",
            approved=spec.approved_version,
            current=current_version,
        )
        if adoption.version is None:
            raise ApprovalRequired(source, client.ref(followed), newest)
        version = adoption.version
        if version == newest:
            digest = newest_digest
        else:
            if version not in tags:
                what = (
                    "spec.pinnedVersion"
                    if spec.pinned_version
                    else ("spec.approvedVersion" if spec.approved_version else "the current version")
                )
                raise VersionNotFound(
                    source, client.ref(version), f"{what} {version} has no tag in the repository"
                )
            digest = client.manifest_digest(version)
        reference = client.ref(digest)
        check_digest_pins(spec.verify, digest, source=source, reference=reference, version=version)
        if newest_config is not None and digest == newest_digest:
            config = newest_config
        else:
            manifest, _, _ = client.manifest(digest)
            _check_manifest(client, manifest, reference)
            config = _read_config(client, manifest, reference)
        engine = requirements.from_config(config)
        requirements.check_engine(engine, engine_version, source=source, reference=reference, version=version)
        return Candidate(
            version=version,
            digest=digest,
            reference=reference,
            engine_requirement=engine,
            available_version=adoption.available,
        )


def _verify_signature(client: RegistryClient, public_key_pem: str, digest: str) -> None:
    reference = client.ref(digest)
    tag = cosign.signature_tag(digest)
    try:
        manifest, _, _ = client.manifest(tag)
    except VersionNotFound as exc:
        raise SignatureError(
            client.source,
            reference,
            f"artifact is not signed: no cosign signature tag {tag} "
            "(spec.verify.cosignPublicKey requires one)",
        ) from exc
    layers: list[cosign.SignedLayer] = []
    for descriptor in manifest.get("layers") or []:
        if (
            not isinstance(descriptor, Mapping)
            or descriptor.get("mediaType") != cosign.SIMPLESIGNING_MEDIA_TYPE
        ):
            continue
        annotations = descriptor.get("annotations") or {}
        payload = client.blob(
            str(descriptor.get("digest")), MAX_SIGNATURE_PAYLOAD_BYTES, what="signature payload"
        )
        layers.append(cosign.SignedLayer(payload, annotations.get(cosign.SIGNATURE_ANNOTATION)))
    cosign.verify(public_key_pem, digest, layers, source=client.source, reference=reference)


def fetch(
    source: str,
    spec: RuleSourceSpecLike,
    candidate: Candidate,
    *,
    docker_config: Mapping[str, Any] | None = None,
    ca_pem: str | None = None,
    engine_version: str | None = None,
    limits: archives.Limits = archives.DEFAULT_LIMITS,
    timeout: float = 30.0,
) -> Bundle:
    """Pull ``candidate.digest``, verify pins and signature, unpack its rules files safely."""
    from padlock.engine.model import RulesFile  # the rules core's type; imported here to keep layers loose

    oci = spec.oci
    if oci is None:
        raise SpecInvalid(source, "", "spec.oci is not set")
    with _client(source, oci, docker_config, ca_pem, timeout) as client:
        digest = candidate.digest
        reference = client.ref(digest)
        manifest, _, _ = client.manifest(digest)  # verified: content hashes to the digest asked for
        _check_manifest(client, manifest, reference)
        check_digest_pins(spec.verify, digest, source=source, reference=reference, version=candidate.version)
        key = spec.verify.cosign_public_key if spec.verify is not None else None
        if key:
            _verify_signature(client, key, digest)
        config = _read_config(client, manifest, reference)
        layers = [d for d in manifest.get("layers") or [] if isinstance(d, Mapping)]
        rules_layers = [d for d in layers if d.get("mediaType") == LAYER_MEDIA_TYPE]
        if not rules_layers:
            found = ", ".join(sorted({str(d.get("mediaType")) for d in layers})) or "no layers"
            raise ArchiveRejected(
                source, reference, f"artifact has no {LAYER_MEDIA_TYPE} layer (found: {found})"
            )
        files: list[RulesFile] = []
        names: set[str] = set()
        for descriptor in rules_layers:
            size = descriptor.get("size")
            if isinstance(size, int) and size > limits.max_compressed_bytes:
                raise ArchiveRejected(
                    source,
                    reference,
                    f"rules layer is {size} bytes, over the limit of {limits.max_compressed_bytes} bytes",
                )
            data = client.blob(str(descriptor.get("digest")), limits.max_compressed_bytes, what="rules layer")
            for extracted in archives.extract_rules(data, limits=limits, source=source, reference=reference):
                if extracted.name in names:
                    raise ArchiveRejected(
                        source, reference, f"two layers hold a file named {extracted.name!r}"
                    )
                names.add(extracted.name)
                files.append(RulesFile(extracted.name, extracted.text))
        if len(files) > limits.max_files:
            raise ArchiveRejected(source, reference, f"artifact holds more than {limits.max_files} files")
        engine = requirements.from_config(config) or requirements.from_texts(f.text for f in files)
        return bundles.engine_checked(
            source, candidate, files, engine_requirement=engine, engine_version=engine_version, reference=reference
        )
