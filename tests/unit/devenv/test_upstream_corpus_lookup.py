"""Where tests and benchmarks find the shared upstream rules corpus, and what they say when it is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from padlock.devenv.errors import MissingComponentError
from padlock.devenv.paths import upstream_rules_dir


def corpus(root: Path) -> Path:
    path = root / "upstream-rules"
    path.mkdir(parents=True)
    (path / "manifest.json").write_text("{}")
    return path


def test_padlock_shared_names_the_corpus(tmp_path: Path) -> None:
    expected = corpus(tmp_path / "elsewhere")
    assert upstream_rules_dir({"PADLOCK_SHARED": str(tmp_path / "elsewhere")}) == expected


def test_default_is_shared_beside_the_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "clone"
    (checkout / "tests" / "controlplane").mkdir(parents=True)
    (checkout / "tests" / "controlplane" / "build.sh").write_text("")
    expected = corpus(tmp_path / "shared")
    assert upstream_rules_dir({"PADLOCK_REPO": str(checkout)}) == expected


def test_missing_corpus_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(MissingComponentError) as missing:
        upstream_rules_dir({"PADLOCK_SHARED": str(tmp_path / "nothing")})
    message = str(missing.value)
    assert str(tmp_path / "nothing" / "upstream-rules") in message
    assert "PADLOCK_SHARED" in message and "beside the clone" in message
