"""OCI rules sources against a real registry (Debian docker-registry on 127.0.0.1, fixture ``registry``).

Covers, end to end through ``padlock.sources.resolve``/``fetch`` and ``padlock.devenv.artifacts``:
push of the example releases v1/v2 in the upstream layout; floating tag ``1`` moving from v1 to v2;
resolve + fetch round trip (text verbatim, engine requirement from the config); semver ranges,
pinning and manual approval against real tags; digest pins; cosign signatures verified and rejected
(wrong key, unsigned, copied signature); a hostile layer; the full upstream falco-rules 5.1.0 file
pushed in the upstream layout and fetched back byte-identical; unreachable registry and missing tag.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import secrets
import tarfile
from pathlib import Path

import pytest

from padlock import sources
from padlock.api.rulesource import RuleSourceSpec
from padlock.devenv import artifacts
from padlock.devenv.paths import upstream_rules_dir
from padlock.devenv.registry import Registry
from padlock.sources.errors import (
    ApprovalRequired,
    ArchiveRejected,
    EngineTooNew,
    IntegrityError,
    SignatureError,
    SourceUnavailable,
    VersionNotFound,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "rules"
RULES_FILE = "padlock_example_rules.yaml"
UPSTREAM_FILE = upstream_rules_dir() / "falco-rules-5.1.0/falco_rules.yaml"
UPSTREAM_SHA256 = "1c15d5d543635b76e31cca39d7df8bf4caf50a428613c314d92986a23bfcb617"


def example(version: str) -> dict[str, str]:
    return {RULES_FILE: (EXAMPLES / version / RULES_FILE).read_text(encoding="utf-8")}


def fresh_repository() -> str:
    # One repository per test: the registry is shared by the whole session.
    return f"padlock-tests/example-rules-{secrets.token_hex(4)}"


def oci_spec(registry: str, repository: str, **extra: object) -> RuleSourceSpec:
    oci = {"repository": f"{registry}/{repository}", "plainHTTP": True}
    oci.update(extra.pop("oci", {"tag": "1"}))  # type: ignore[arg-type]
    return RuleSourceSpec.model_validate({"oci": oci, **extra})


def test_push_v1_then_v2_moves_floating_tag_and_round_trips(registry: str) -> None:
    repository = fresh_repository()
    v1 = artifacts.push_rules_artifact(registry, repository, "1.0.0", example("v1"))
    assert v1.tags == ("1.0.0", "1.0", "1", "latest")
    spec = oci_spec(registry, repository)

    first = sources.resolve("examples", spec)
    assert (first.version, first.digest, first.available_version) == ("1.0.0", v1.digest, None)
    assert first.reference == f"{registry}/{repository}@{v1.digest}"
    assert first.engine_requirement == "0.50.0"  # from the artifact config, no layer pulled

    v2 = artifacts.push_rules_artifact(registry, repository, "1.1.0", example("v2"))
    assert v2.digest != v1.digest
    second = sources.resolve("examples", spec, current_version="1.0.0")
    assert (second.version, second.digest) == ("1.1.0", v2.digest)

    bundle = sources.fetch("examples", spec, second)
    assert [(f.name, f.text) for f in bundle.files] == list(example("v2").items())
    assert (bundle.source, bundle.version, bundle.digest) == ("examples", "1.1.0", v2.digest)
    assert "Search GPG Private Keys" in bundle.files[0].text

    # The candidate of the older version still fetches exactly that version by digest.
    assert sources.fetch("examples", spec, first).files[0].text == example("v1")[RULES_FILE]


def test_semver_range_pinning_and_manual_approval_on_real_tags(registry: str) -> None:
    repository = fresh_repository()
    v1 = artifacts.push_rules_artifact(registry, repository, "1.0.0", example("v1"))
    v2 = artifacts.push_rules_artifact(registry, repository, "1.1.0", example("v2"))
    artifacts.push_rules_artifact(registry, repository, "2.0.0-rc1", example("v2"))

    ranged = sources.resolve("examples", oci_spec(registry, repository, oci={"semver": ">=1.0.0"}))
    assert (ranged.version, ranged.digest) == ("1.1.0", v2.digest)  # the pre-release is never picked

    pinned = sources.resolve(
        "examples", oci_spec(registry, repository, pinnedVersion="1.0.0"), current_version="1.1.0"
    )
    assert (pinned.version, pinned.digest, pinned.available_version) == ("1.0.0", v1.digest, "1.1.0")

    manual = oci_spec(registry, repository, updatePolicy="Manual")
    waiting = sources.resolve("examples", manual, current_version="1.0.0")
    assert (waiting.version, waiting.digest, waiting.available_version) == ("1.0.0", v1.digest, "1.1.0")
    with pytest.raises(ApprovalRequired) as caught:
        sources.resolve("examples", manual)
    assert caught.value.available_version == "1.1.0"
    approved = oci_spec(registry, repository, updatePolicy="Manual", approvedVersion="1.1.0")
    assert sources.resolve("examples", approved, current_version="1.0.0").digest == v2.digest

    with pytest.raises(VersionNotFound, match=r"spec\.pinnedVersion 1\.0\.9 has no tag"):
        sources.resolve("examples", oci_spec(registry, repository, pinnedVersion="1.0.9"))


def test_digest_pins_admit_only_pinned_releases(registry: str) -> None:
    repository = fresh_repository()
    v1 = artifacts.push_rules_artifact(registry, repository, "1.0.0", example("v1"))
    pinned_to_v1 = oci_spec(registry, repository, verify={"digests": [v1.digest]})
    assert sources.resolve("examples", pinned_to_v1).digest == v1.digest

    v2 = artifacts.push_rules_artifact(registry, repository, "1.1.0", example("v2"))
    with pytest.raises(
        IntegrityError, match=f"version 1.1.0 has digest {v2.digest}, which is not in spec.verify.digests"
    ):
        sources.resolve("examples", pinned_to_v1)
    # fetch checks the pins too, whatever candidate it is handed.
    unpinned_candidate = sources.resolve("examples", oci_spec(registry, repository))
    with pytest.raises(IntegrityError):
        sources.fetch("examples", pinned_to_v1, unpinned_candidate)

    both = oci_spec(registry, repository, verify={"digests": [v1.digest, v2.digest]})
    assert sources.fetch("examples", both, sources.resolve("examples", both)).digest == v2.digest


def test_cosign_signature_is_verified_and_bad_ones_rejected(registry: str) -> None:
    repository = fresh_repository()
    key, public_pem = artifacts.generate_signing_key()
    _stranger, stranger_pem = artifacts.generate_signing_key()
    v1 = artifacts.push_rules_artifact(registry, repository, "1.0.0", example("v1"), sign_with=key)
    assert v1.signature_tag == "sha256-" + v1.digest.removeprefix("sha256:") + ".sig"

    signed = oci_spec(registry, repository, verify={"cosignPublicKey": public_pem})
    bundle = sources.fetch("examples", signed, sources.resolve("examples", signed))
    assert bundle.digest == v1.digest

    wrong_key = oci_spec(registry, repository, verify={"cosignPublicKey": stranger_pem})
    with pytest.raises(SignatureError, match=r"verifies with spec\.verify\.cosignPublicKey"):
        sources.fetch("examples", wrong_key, sources.resolve("examples", wrong_key))

    # v2 unsigned: following the tag with a key configured refuses it.
    v2 = artifacts.push_rules_artifact(registry, repository, "1.1.0", example("v2"))
    with pytest.raises(SignatureError, match="artifact is not signed"):
        sources.fetch("examples", signed, sources.resolve("examples", signed))

    # A valid signature of v1 copied onto v2's signature tag: the digest inside does not match.
    artifacts.push_signature(registry, repository, v2.digest, key, signed_digest=v1.digest)
    with pytest.raises(SignatureError, match=f"signs {v1.digest}, not {v2.digest}"):
        sources.fetch("examples", signed, sources.resolve("examples", signed))


def test_full_upstream_file_in_upstream_layout_comes_back_byte_identical(registry: str) -> None:
    text = UPSTREAM_FILE.read_text(encoding="utf-8")
    assert hashlib.sha256(text.encode()).hexdigest() == UPSTREAM_SHA256
    repository = f"falcosecurity-mirror-{secrets.token_hex(4)}/rules/falco-rules"
    pushed = artifacts.push_rules_artifact(registry, repository, "5.1.0", {"falco_rules.yaml": text})
    spec = oci_spec(registry, repository, oci={"tag": "5"})
    candidate = sources.resolve("falco-rules", spec)
    assert (candidate.version, candidate.digest, candidate.engine_requirement) == (
        "5.1.0",
        pushed.digest,
        "0.57.0",
    )
    bundle = sources.fetch("falco-rules", spec, candidate)
    assert [f.name for f in bundle.files] == ["falco_rules.yaml"]
    assert hashlib.sha256(bundle.files[0].text.encode()).hexdigest() == UPSTREAM_SHA256


def test_engine_too_new_is_refused_before_any_layer_is_pulled(registry: str) -> None:
    repository = fresh_repository()
    artifacts.push_rules_artifact(registry, repository, "1.0.0", example("v1"))
    with pytest.raises(
        EngineTooNew, match=r"requires Falco engine 0\.50\.0, but the cluster runs engine 0\.40\.0"
    ):
        sources.resolve("examples", oci_spec(registry, repository), engine_version="0.40.0")


def test_hostile_layer_in_a_real_artifact_is_rejected(registry: str) -> None:
    repository = fresh_repository()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        info = tarfile.TarInfo("falco_rules.yaml")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/shadow"
        archive.addfile(info)
    artifacts.push_artifact_bytes(
        registry,
        repository,
        "1.0.0",
        layer=gzip.compress(raw.getvalue()),
        config=b'{"name":"x","version":"1.0.0"}',
    )
    spec = oci_spec(registry, repository, oci={"tag": "1.0.0"})
    with pytest.raises(ArchiveRejected, match=r"'falco_rules\.yaml' is a symlink"):
        sources.fetch("examples", spec, sources.resolve("examples", spec))


def test_missing_tag_and_unreachable_registry_are_told_apart(registry: str) -> None:
    repository = fresh_repository()
    artifacts.push_rules_artifact(registry, repository, "1.0.0", example("v1"))
    with pytest.raises(VersionNotFound, match="tag '7' not found") as missing:
        sources.resolve("examples", oci_spec(registry, repository, oci={"tag": "7"}))
    assert not missing.value.retryable

    stopped = Registry().start()
    address = stopped.address
    stopped.stop()
    with pytest.raises(SourceUnavailable, match=f"cannot reach registry {address}") as down:
        sources.resolve("examples", oci_spec(address, repository), timeout=5)
    assert down.value.retryable
