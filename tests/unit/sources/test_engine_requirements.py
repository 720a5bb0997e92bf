"""The engine version an artifact needs is read like upstream's build/registry and checked early.

Covers ``padlock.sources.requirements``: reading the requirement, and an early gate that decides
exactly as the loader's ``padlock.engine.versions.compatible`` (one engine-version comparison).
"""

from __future__ import annotations

import pytest

from padlock.devenv.paths import upstream_rules_dir
from padlock.engine import versions
from padlock.sources import requirements
from padlock.sources.errors import EngineTooNew


def test_config_requirement_engine_version_semver_is_read() -> None:
    config = {"name": "falco-rules", "version": "5.1.0",
              "requirements": [{"name": "engine_version_semver", "version": "0.57.0"}]}  # fmt: skip
    assert requirements.from_config(config) == "0.57.0"


def test_config_without_requirements_has_none() -> None:
    assert requirements.from_config({"name": "x", "version": "1.0.0"}) is None
    assert requirements.from_config({"requirements": "junk"}) is None


def test_integer_engine_versions_mean_zero_n_zero() -> None:
    assert requirements.from_config({"requirements": [{"name": "engine_version", "version": 26}]}) == "0.26.0"
    assert requirements.from_texts(["- required_engine_version: 17\n"]) == "0.17.0"


def test_highest_required_engine_version_in_the_texts_wins() -> None:
    texts = ["- required_engine_version: '0.31.0'\n- rule: x\n", '# c\n- required_engine_version: "0.57.0"\n']
    assert requirements.from_texts(texts) == "0.57.0"
    assert requirements.from_texts(["- rule: no requirement\n"]) is None


def test_upstream_5_1_0_requirement_is_found_in_its_text() -> None:
    with open(upstream_rules_dir() / "falco-rules-5.1.0/falco_rules.yaml", encoding="utf-8") as handle:
        assert requirements.from_texts([handle.read()]) == "0.57.0"


def test_artifact_needing_a_newer_engine_is_rejected_before_pulling() -> None:
    with pytest.raises(EngineTooNew) as caught:
        requirements.check_engine("0.57.0", "0.50.0", source="falco-rules", reference="r", version="5.1.0")
    assert str(caught.value) == (
        "RuleSource falco-rules: r: version 5.1.0 requires Falco engine 0.57.0, but the cluster runs engine 0.50.0"
    )


def test_equal_or_older_requirement_or_unknown_engine_passes() -> None:
    requirements.check_engine("0.57.0", "0.57.0", source="s", reference="r", version="v")
    requirements.check_engine("0.50.0", "0.62.0", source="s", reference="r", version="v")
    requirements.check_engine("0.99.0", None, source="s", reference="r", version="v")


VERSIONS = ("0.26.0", "0.50.0", "0.57.0", "0.57.1", "0.62.0", "1.0.0", "0.57.0-rc1", "0.100.0")


@pytest.mark.parametrize("requirement", VERSIONS)
@pytest.mark.parametrize("engine", VERSIONS)
def test_the_early_gate_refuses_exactly_what_the_loader_refuses(requirement: str, engine: str) -> None:
    refused = False
    try:
        requirements.check_engine(requirement, engine, source="s", reference="r", version="v")
    except EngineTooNew:
        refused = True
    assert refused is not versions.compatible(engine, requirement)


def test_the_highest_requirement_compares_numerically_not_as_text() -> None:
    texts = ["- required_engine_version: 0.9.0\n", "- required_engine_version: 0.10.0\n- required_engine_version: 7\n"]
    assert requirements.from_texts(texts) == "0.10.0"
