"""Helpers for the rules-core tests: where the vendored upstream rules corpus lives.

The corpus is vendored in the repository (``tests/data/upstream-rules``, provenance in
``tests/data/README.md``). A missing corpus fails the test with a message; it is never skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from padlock.devenv.errors import MissingComponentError
from padlock.devenv.paths import upstream_rules_dir


def upstream_dir() -> Path:
    try:
        return upstream_rules_dir()
    except MissingComponentError as missing:
        pytest.fail(str(missing))


def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((upstream_dir() / "manifest.json").read_text())
    return data


def read_upstream(rel: str) -> str:
    """Text of one upstream file, e.g. ``falco-rules-5.1.0/falco_rules.yaml``."""
    return (upstream_dir() / rel).read_text(encoding="utf-8")
