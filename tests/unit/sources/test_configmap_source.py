"""ConfigMap sources (air-gapped clusters): content digest as version identity, key selection, errors.

Covers ``padlock.sources.configmap`` through ``padlock.sources.resolve``/``fetch`` with the real
``RuleSourceSpec`` model and an in-memory ``ConfigMapReader`` (the port the caller implements with
the kubernetes client).
"""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from padlock import sources
from padlock.api.rulesource import RuleSourceSpec
from padlock.engine.model import RulesFile
from padlock.sources.errors import ArchiveRejected, SourceUnavailable, SpecInvalid, VersionNotFound
from padlock.sources.ports import ConfigMapContent

V1 = "- required_engine_version: 0.50.0\n- list: a\n  items: [x]\n"
V2 = "- required_engine_version: 0.57.0\n- list: a\n  items: [x, y]\n"


class Store:
    """ConfigMaps in memory, keyed by (namespace, name)."""

    def __init__(self) -> None:
        self.maps: dict[tuple[str, str], ConfigMapContent] = {}
        self.broken = False

    def put(self, data: dict[str, str], binary: dict[str, bytes] | None = None, rv: str = "1") -> None:
        self.maps[("falco", "rules")] = ConfigMapContent(rv, data, binary or {})

    def __call__(self, namespace: str, name: str) -> ConfigMapContent | None:
        if self.broken:
            raise ConnectionError("apiserver went away")
        return self.maps.get((namespace, name))


def spec(key: str | None = "rules.yaml", **extra: object) -> RuleSourceSpec:
    ref: dict[str, object] = {"name": "rules", "namespace": "falco"}
    if key:
        ref["key"] = key
    return RuleSourceSpec.model_validate({"configMap": ref, **extra})


def test_key_content_round_trips_verbatim_with_engine_requirement() -> None:
    store = Store()
    store.put({"rules.yaml": V1, "other": "ignored"})
    candidate = sources.resolve("air", spec(), configmaps=store)
    assert candidate.engine_requirement == "0.50.0"
    assert candidate.reference == "configmap:falco/rules#rules.yaml"
    bundle = sources.fetch("air", spec(), candidate, configmaps=store)
    assert bundle.files == (RulesFile("rules.yaml", V1),)
    assert (bundle.version, bundle.digest, bundle.source) == (candidate.version, candidate.digest, "air")


def test_unrelated_edit_keeps_the_version_and_content_edit_changes_it() -> None:
    store = Store()
    store.put({"rules.yaml": V1, "notes": "a"}, rv="1")
    first = sources.resolve("air", spec(), configmaps=store)
    store.put({"rules.yaml": V1, "notes": "b"}, rv="2")
    assert sources.resolve("air", spec(), configmaps=store) == first
    store.put({"rules.yaml": V2}, rv="3")
    changed = sources.resolve("air", spec(), configmaps=store)
    assert changed.digest != first.digest and changed.version != first.version


def test_version_comes_from_a_versioned_key_name() -> None:
    store = Store()
    store.put({"example-rules-1.1.0.yaml": V1})
    assert sources.resolve("air", spec("example-rules-1.1.0.yaml"), configmaps=store).version == "1.1.0"


def test_without_key_every_yaml_key_is_a_rules_file_in_key_order() -> None:
    store = Store()
    store.put({"b.yaml": V2, "a.yml": V1, "README": "not rules"})
    bundle = sources.fetch(
        "air", spec(None), sources.resolve("air", spec(None), configmaps=store), configmaps=store
    )
    assert [f.name for f in bundle.files] == ["a.yml", "b.yaml"]
    assert bundle.engine_requirement == "0.57.0"


def test_binary_tar_gz_key_is_unpacked_with_the_archive_limits() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        info = tarfile.TarInfo("../escape.yaml")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"[]"))
    store = Store()
    store.put({}, {"rules.tar.gz": gzip.compress(raw.getvalue())})
    with pytest.raises(ArchiveRejected, match="escapes the archive"):
        sources.resolve("air", spec("rules.tar.gz"), configmaps=store)


def test_missing_configmap_and_missing_key_are_named() -> None:
    store = Store()
    with pytest.raises(VersionNotFound, match="ConfigMap falco/rules not found"):
        sources.resolve("air", spec(), configmaps=store)
    store.put({"x.yaml": V1})
    with pytest.raises(VersionNotFound, match=r"ConfigMap has no key 'rules\.yaml'"):
        sources.resolve("air", spec(), configmaps=store)


def test_text_key_that_is_not_a_rules_file_name_is_rejected() -> None:
    store = Store()
    store.put({"rules.txt": V1})
    with pytest.raises(ArchiveRejected, match=r"'rules\.txt' is not a rules file"):
        sources.resolve("air", spec("rules.txt"), configmaps=store)


def test_reader_failure_is_retryable() -> None:
    store = Store()
    store.broken = True
    with pytest.raises(SourceUnavailable, match="cannot read ConfigMap: apiserver went away") as caught:
        sources.resolve("air", spec(), configmaps=store)
    assert caught.value.retryable


def test_content_changed_between_check_and_fetch_is_retryable() -> None:
    store = Store()
    store.put({"rules.yaml": V1})
    candidate = sources.resolve("air", spec(), configmaps=store)
    store.put({"rules.yaml": V2})
    with pytest.raises(SourceUnavailable, match="changed since the check"):
        sources.fetch("air", spec(), candidate, configmaps=store)


def test_no_reader_is_a_wiring_error() -> None:
    with pytest.raises(SpecInvalid, match="no ConfigMap reader"):
        sources.resolve("air", spec(), configmaps=None)
