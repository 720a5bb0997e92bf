"""Test artifacts are built exactly like upstream's: deterministic layer, config shape, floating tags.

Covers the pure parts of ``padlock.devenv.artifacts`` (the push itself is in the integration tests).
"""

from __future__ import annotations

import json

from padlock.devenv.artifacts import build_config, build_layer, upstream_floating_tags
from padlock.sources.archives import Limits, extract_rules

UPSTREAM_TAGS = ["4.0.0", "5.0.0", "5.1.0", "4", "5", "5.0", "5.1", "4.0", "latest"]


def test_new_newest_release_moves_minor_major_and_latest() -> None:
    assert upstream_floating_tags("5.2.0", UPSTREAM_TAGS) == ["5.2", "5", "latest"]


def test_patch_of_an_older_major_moves_only_its_own_floating_tags() -> None:
    assert upstream_floating_tags("4.0.1", UPSTREAM_TAGS) == ["4.0", "4"]


def test_patch_of_an_older_minor_moves_only_its_minor() -> None:
    assert upstream_floating_tags("5.0.1", UPSTREAM_TAGS) == ["5.0"]


def test_prerelease_gets_no_floating_tag() -> None:
    assert upstream_floating_tags("6.0.0-rc1", UPSTREAM_TAGS) == []


def test_first_release_gets_every_floating_tag() -> None:
    assert upstream_floating_tags("1.0.0", []) == ["1.0", "1", "latest"]


def test_layer_is_byte_identical_for_the_same_files_and_unpacks_verbatim() -> None:
    files = {"b.yaml": "- list: b\n  items: []\n", "a.yaml": "- list: a\n  items: [é]\n"}
    layer = build_layer(files)
    assert layer == build_layer(dict(reversed(list(files.items()))))
    unpacked = extract_rules(layer, limits=Limits(), source="s", reference="r")
    assert [(f.name, f.text) for f in unpacked] == sorted(files.items())


def test_config_has_upstream_shape() -> None:
    assert json.loads(build_config("falco-rules", "5.1.0", "0.57.0")) == {
        "name": "falco-rules",
        "version": "5.1.0",
        "requirements": [{"name": "engine_version_semver", "version": "0.57.0"}],
    }
    assert "requirements" not in json.loads(build_config("x", "1.0.0", None))
