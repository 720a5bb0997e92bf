"""RuleSource ``spec.configMap``: rules files kept in a ConfigMap (air-gapped clusters).

Called by: ``padlock.sources.resolve`` / ``padlock.sources.fetch``. The ConfigMap is read through a
``ConfigMapReader`` the caller implements with the kubernetes client, so this module stays free of
it. With ``key`` set, that key is read: a text key must be a ``.yaml``/``.yml`` rules file, a
``binaryData`` key ending in ``.tar.gz``/``.tgz`` is unpacked like an artifact layer. Without
``key``, every ``.yaml``/``.yml`` key of ``data`` is a rules file, in key order.

The digest is the sha256 of the content (of the one key; over names and contents for several), so
editing an unrelated key changes the resourceVersion but not the version. The version comes from
the key name when it carries one (``falco-rules-5.1.0.yaml``), else ``sha256-<12 hex>``.
"""

from __future__ import annotations

import hashlib

from padlock.sources import archives, bundles, requirements, single
from padlock.sources.bundles import Bundle, Candidate
from padlock.sources.errors import ArchiveRejected, SourceUnavailable, SpecInvalid, VersionNotFound
from padlock.sources.ports import ConfigMapContent, ConfigMapReader, ConfigMapSourceSpec, RuleSourceSpecLike


def _reference(ref: ConfigMapSourceSpec) -> str:
    return f"configmap:{ref.namespace}/{ref.name}" + (f"#{ref.key}" if ref.key else "")


def _read(source: str, ref: ConfigMapSourceSpec, reader: ConfigMapReader | None) -> ConfigMapContent:
    reference = _reference(ref)
    if reader is None:
        raise SpecInvalid(source, reference, "no ConfigMap reader was given for a spec.configMap source")
    try:
        content = reader(ref.namespace, ref.name)
    except Exception as exc:  # the reader is the caller's kubernetes client: any failure is transport
        raise SourceUnavailable(source, reference, f"cannot read ConfigMap: {exc}") from exc
    if content is None:
        raise VersionNotFound(source, reference, f"ConfigMap {ref.namespace}/{ref.name} not found")
    return content


def _unpack(
    source: str, ref: ConfigMapSourceSpec, content: ConfigMapContent, limits: archives.Limits
) -> tuple[tuple[archives.ExtractedFile, ...], str, str]:
    """(files, digest, name used for the version) of the ConfigMap content the spec selects."""
    reference = _reference(ref)
    key = ref.key
    if key:
        if key in content.data:
            archives.check_rules_name(key, source=source, reference=reference)
            raw = content.data[key].encode()
            if len(raw) > limits.max_uncompressed_bytes:
                raise ArchiveRejected(
                    source, reference, f"key {key!r} is over {limits.max_uncompressed_bytes} bytes"
                )
            files: tuple[archives.ExtractedFile, ...] = (archives.ExtractedFile(key, content.data[key]),)
        elif key in content.binary_data:
            raw = content.binary_data[key]
            if key.lower().endswith((".tar.gz", ".tgz")):
                files = archives.extract_rules(raw, limits=limits, source=source, reference=reference)
            else:
                archives.check_rules_name(key, source=source, reference=reference)
                files = (
                    archives.ExtractedFile(
                        key, archives.decode_rules_text(key, raw, source=source, reference=reference)
                    ),
                )
        else:
            raise VersionNotFound(source, reference, f"ConfigMap has no key {key!r}")
        return files, "sha256:" + hashlib.sha256(raw).hexdigest(), key
    keys = sorted(k for k in content.data if k.lower().endswith(archives.RULES_SUFFIXES))
    if not keys:
        raise VersionNotFound(source, reference, "ConfigMap has no .yaml or .yml keys")
    if len(keys) > limits.max_files:
        raise ArchiveRejected(source, reference, f"ConfigMap has more than {limits.max_files} rules keys")
    hasher = hashlib.sha256()
    total = 0
    for k in keys:
        blob = content.data[k].encode()
        total += len(blob)
        # Length-prefixed so that moving text between keys changes the digest.
        hasher.update(f"{len(k)}:{k}{len(blob)}:".encode() + blob)
    if total > limits.max_uncompressed_bytes:
        raise ArchiveRejected(
            source, reference, f"rules keys total over {limits.max_uncompressed_bytes} bytes"
        )
    files = tuple(archives.ExtractedFile(k, content.data[k]) for k in keys)
    return files, "sha256:" + hasher.hexdigest(), ""


def resolve(
    source: str,
    spec: RuleSourceSpecLike,
    *,
    reader: ConfigMapReader | None,
    current_version: str | None = None,
    current_digest: str | None = None,
    limits: archives.Limits = archives.DEFAULT_LIMITS,
) -> Candidate:
    """The digest of the selected content; the engine requirement is read from the text (it is here)."""
    ref = spec.config_map
    if ref is None:
        raise SpecInvalid(source, "", "spec.configMap is not set")
    files, digest, name = _unpack(source, ref, _read(source, ref, reader), limits)
    return single.adopt(
        source,
        spec,
        found_version=single.content_version(name, digest),
        found_digest=digest,
        reference=_reference(ref),
        engine_requirement=requirements.from_texts(f.text for f in files),
        current_version=current_version,
        current_digest=current_digest,
    )


def fetch(
    source: str,
    spec: RuleSourceSpecLike,
    candidate: Candidate,
    *,
    reader: ConfigMapReader | None,
    engine_version: str | None = None,
    limits: archives.Limits = archives.DEFAULT_LIMITS,
) -> Bundle:
    """The rules files, provided the content still has the checked digest."""
    from padlock.engine.model import RulesFile  # the rules core's type; imported here to keep layers loose

    ref = spec.config_map
    if ref is None:
        raise SpecInvalid(source, "", "spec.configMap is not set")
    reference = _reference(ref)
    files, digest, _ = _unpack(source, ref, _read(source, ref, reader), limits)
    if digest != candidate.digest:
        raise SourceUnavailable(
            source,
            reference,
            f"content has digest {digest}, not the checked "
            f"{candidate.digest} (the ConfigMap changed since the check)",
        )
    return bundles.engine_checked(
        source, candidate, (RulesFile(f.name, f.text) for f in files),
        engine_requirement=requirements.from_texts(f.text for f in files), engine_version=engine_version,
        reference=reference,
    )
