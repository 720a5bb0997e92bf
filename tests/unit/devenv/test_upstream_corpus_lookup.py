"""Where tests and benchmarks find the vendored upstream rules corpus, and what they say when it is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from padlock.devenv.errors import MissingComponentError
from padlock.devenv.paths import upstream_rules_dir


def checkout(root: Path) -> Path:
    (root / "tests" / "controlplane").mkdir(parents=True)
    (root / "tests" / "controlplane" / "build.sh").write_text("")
    return root


def test_corpus_is_vendored_in_the_checkout(tmp_path: Path) -> None:
    clone = checkout(tmp_path / "clone")
    corpus = clone / "tests" / "data" / "upstream-rules"
    corpus.mkdir(parents=True)
    (corpus / "manifest.json").write_text("{}")
    assert upstream_rules_dir({"PADLOCK_REPO": str(clone)}) == corpus


def test_this_clone_carries_the_whole_corpus() -> None:
    corpus = upstream_rules_dir()
    manifest = json.loads((corpus / "manifest.json").read_text())
    files = manifest["files"]
    assert len(files) == 33
    assert (corpus / "LICENSE").is_file()


def test_missing_corpus_says_where_it_belongs(tmp_path: Path) -> None:
    clone = checkout(tmp_path / "clone")
    with pytest.raises(MissingComponentError) as missing:
        upstream_rules_dir({"PADLOCK_REPO": str(clone)})
    message = str(missing.value)
    assert str(clone / "tests" / "data" / "upstream-rules") in message
    assert "vendored" in message


def test_every_vendored_file_matches_its_manifest_digest() -> None:
    import hashlib

    corpus = upstream_rules_dir()
    manifest = json.loads((corpus / "manifest.json").read_text())
    for entry in manifest["files"]:
        data = (corpus / entry["file"]).read_bytes()
        assert len(data) == entry["bytes"], entry["file"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
