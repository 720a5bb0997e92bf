"""Which version a RuleSource runs: floating tags, semver ranges, pinning and manual approval.

Covers ``padlock.sources.selection`` (pure) and ``padlock.sources.single`` (one-version sources).
"""

from __future__ import annotations

import pytest

from padlock.api.rulesource import RuleSourceSpec
from padlock.sources import selection, single
from padlock.sources.errors import ApprovalRequired, VersionNotFound

UPSTREAM_TAGS = [
    "0.1.0", "1.0.0", "1.0.1", "1.0.2", "2.0.0", "3.0.0", "3.0.1", "3.1.0", "3.2.0", "4.0.0",
    "5.0.0-rc1", "5.0.0", "5.1.0", "6.0.0-rc1", "1", "2", "3", "4", "5", "5.1", "latest",
    "sha256-abc.sig",
]  # fmt: skip


def test_floating_major_tag_candidates_are_that_majors_releases_newest_first() -> None:
    assert selection.floating_candidates(UPSTREAM_TAGS, "5") == ["5.1.0", "5.0.0"]


def test_floating_minor_tag_candidates_stay_in_that_minor() -> None:
    assert selection.floating_candidates(UPSTREAM_TAGS, "3.0") == ["3.0.1", "3.0.0"]


def test_latest_candidates_cover_every_final_release_but_no_prerelease() -> None:
    found = selection.floating_candidates(UPSTREAM_TAGS, "latest")
    assert found[0] == "5.1.0"
    assert "6.0.0-rc1" not in found and "5.0.0-rc1" not in found
    assert len(found) == 12


def test_exact_tag_is_its_own_only_candidate_even_a_prerelease() -> None:
    assert selection.floating_candidates(UPSTREAM_TAGS, "6.0.0-rc1") == ["6.0.0-rc1"]
    assert selection.floating_candidates(UPSTREAM_TAGS, "9.9.9") == []


def test_semver_range_picks_highest_matching_release() -> None:
    assert selection.highest_in_range(UPSTREAM_TAGS, "^3.0.0") == "3.2.0"
    assert selection.highest_in_range(UPSTREAM_TAGS, ">=4.0.0 <6.0.0") == "5.1.0"
    assert selection.highest_in_range(UPSTREAM_TAGS, "~3.0") == "3.0.1"


def test_semver_range_never_picks_a_prerelease() -> None:
    # 6.0.0-rc1 is the highest tag and >=5.1.0 would admit it in a loose reading.
    assert selection.highest_in_range(UPSTREAM_TAGS, ">=5.1.0") == "5.1.0"
    assert selection.highest_in_range(["6.0.0-rc1"], ">=5.0.0") is None


def test_semver_range_with_no_match_returns_none() -> None:
    assert selection.highest_in_range(UPSTREAM_TAGS, "^7.0.0") is None


def test_invalid_semver_range_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="invalid semver range '>>5'"):
        selection.highest_in_range(UPSTREAM_TAGS, ">>5")


def test_automatic_policy_adopts_newest() -> None:
    plan = selection.plan("5.1.0", pinned=None, manual=False, approved=None, current="5.0.0")
    assert plan == selection.Adoption(version="5.1.0", available=None)


def test_pinned_version_wins_and_reports_newer_as_available() -> None:
    plan = selection.plan("5.1.0", pinned="5.0.0", manual=False, approved=None, current="5.1.0")
    assert plan == selection.Adoption(version="5.0.0", available="5.1.0")


def test_pinned_version_wins_over_manual_approval() -> None:
    plan = selection.plan("5.1.0", pinned="4.0.0", manual=True, approved="5.1.0", current="5.0.0")
    assert plan.version == "4.0.0"


def test_manual_policy_stays_on_current_until_approved() -> None:
    waiting = selection.plan("5.1.0", pinned=None, manual=True, approved=None, current="5.0.0")
    assert waiting == selection.Adoption(version="5.0.0", available="5.1.0")
    approved = selection.plan("5.1.0", pinned=None, manual=True, approved="5.1.0", current="5.0.0")
    assert approved == selection.Adoption(version="5.1.0", available=None)


def test_manual_policy_with_nothing_installed_adopts_nothing() -> None:
    plan = selection.plan("5.1.0", pinned=None, manual=True, approved=None, current=None)
    assert plan == selection.Adoption(version=None, available="5.1.0")


def _http_spec(**extra: object) -> RuleSourceSpec:
    return RuleSourceSpec.model_validate(
        {"http": {"url": "http://127.0.0.1:1/falco-rules-5.1.0.tar.gz"}, **extra}
    )


def test_version_is_read_from_the_file_name_or_else_from_the_digest() -> None:
    assert single.content_version("falco-rules-5.1.0.tar.gz", "sha256:" + "a" * 64) == "5.1.0"
    assert single.content_version("rules-1.2.0-rc1.yaml", "sha256:" + "a" * 64) == "1.2.0-rc1"
    assert (
        single.content_version("falco_rules.yaml", "sha256:" + "0123456789ab" + "c" * 52)
        == "sha256-0123456789ab"
    )


def test_one_version_source_under_manual_policy_stays_on_the_current_digest() -> None:
    spec = _http_spec(updatePolicy="Manual")
    candidate = single.adopt(
        "rs", spec, found_version="5.1.0", found_digest="sha256:new", reference="u", engine_requirement=None,
        current_version="5.0.0", current_digest="sha256:old",
    )  # fmt: skip
    assert (candidate.version, candidate.digest, candidate.available_version) == (
        "5.0.0",
        "sha256:old",
        "5.1.0",
    )


def test_one_version_source_under_manual_policy_with_nothing_installed_waits_for_approval() -> None:
    with pytest.raises(ApprovalRequired) as caught:
        single.adopt(
            "rs", _http_spec(updatePolicy="Manual"), found_version="5.1.0", found_digest="sha256:new",
            reference="u", engine_requirement=None, current_version=None, current_digest=None,
        )  # fmt: skip
    assert caught.value.available_version == "5.1.0"
    assert "spec.approvedVersion" in str(caught.value)


def test_one_version_source_cannot_roll_back_to_a_version_it_does_not_serve() -> None:
    with pytest.raises(VersionNotFound, match=r"version 4\.0\.0 is not what this source serves"):
        single.adopt(
            "rs", _http_spec(pinnedVersion="4.0.0"), found_version="5.1.0", found_digest="sha256:new",
            reference="u", engine_requirement=None, current_version=None, current_digest=None,
        )  # fmt: skip
