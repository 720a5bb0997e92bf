"""Registry plumbing without a registry: repository parsing, pull-secret credentials, digest pins.

Covers ``padlock.sources.registry`` (``parse_repository``, ``basic_credentials``) and
``padlock.sources.oci.check_digest_pins``.
"""

from __future__ import annotations

import base64

import pytest

from padlock.api.rulesource import Verification
from padlock.sources.errors import IntegrityError, SpecInvalid
from padlock.sources.oci import check_digest_pins
from padlock.sources.registry import basic_credentials, parse_repository

GOOD = "sha256:" + "a" * 64
BAD = "sha256:" + "b" * 64


def test_repository_splits_into_host_and_path() -> None:
    assert parse_repository("ghcr.io/falcosecurity/rules/falco-rules", source="s") == (
        "ghcr.io", "falcosecurity/rules/falco-rules"
    )  # fmt: skip
    assert parse_repository("127.0.0.1:5000/rules/x", source="s") == ("127.0.0.1:5000", "rules/x")
    assert parse_repository("localhost/x", source="s") == ("localhost", "x")


@pytest.mark.parametrize(
    ("repository", "problem"),
    [
        ("falcosecurity/rules", "must start with a registry host"),
        ("ghcr.io", "must start with a registry host"),
        ("ghcr.io/falcosecurity/rules/falco-rules:5", "must not carry a tag or digest"),
        ("ghcr.io/Falco/rules", "must be lower case"),
    ],
)
def test_bad_repository_is_a_spec_error_naming_the_field(repository: str, problem: str) -> None:
    with pytest.raises(SpecInvalid, match=f"spec.oci.repository .*{problem}"):
        parse_repository(repository, source="falco-rules")


def test_credentials_come_from_the_pull_secret_for_the_registry_host_only() -> None:
    auth = base64.b64encode(b"robot:s3cret").decode()
    config = {
        "auths": {"https://ghcr.io": {"auth": auth}, "other.example": {"username": "u", "password": "p"}}
    }
    assert basic_credentials(config, "ghcr.io") == auth
    assert basic_credentials(config, "other.example") == base64.b64encode(b"u:p").decode()
    assert basic_credentials(config, "quay.io") is None
    assert basic_credentials(None, "ghcr.io") is None


def test_digest_in_the_pins_passes_and_no_pins_means_any_digest() -> None:
    check_digest_pins(Verification(digests=[GOOD, BAD]), GOOD, source="s", reference="r", version="1.0.0")
    check_digest_pins(None, GOOD, source="s", reference="r", version="1.0.0")
    check_digest_pins(Verification(), GOOD, source="s", reference="r", version="1.0.0")


def test_digest_outside_the_pins_is_rejected_naming_version_and_digest() -> None:
    with pytest.raises(IntegrityError) as caught:
        check_digest_pins(
            Verification(digests=[GOOD]), BAD, source="falco-rules", reference="r", version="5.1.0"
        )
    assert str(caught.value) == (
        f"RuleSource falco-rules: r: version 5.1.0 has digest {BAD}, which is not in spec.verify.digests"
    )
    assert not caught.value.retryable
