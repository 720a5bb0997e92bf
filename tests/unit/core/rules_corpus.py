"""Helpers for the rules-core tests: where the shared upstream rules corpus lives.

The corpus is test data beside the clone (``<repo>/../shared/upstream-rules``), overridable with
``PADLOCK_SHARED``. A missing corpus fails the test with a message saying how to get it; it is never
skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]


def shared_dir() -> Path:
    env = os.environ.get("PADLOCK_SHARED")
    return Path(env) if env else REPO.parent / "shared"


def upstream_dir() -> Path:
    path = shared_dir() / "upstream-rules"
    if not (path / "manifest.json").is_file():
        pytest.fail(
            f"upstream rules corpus not found at {path}: put the shared/ directory beside the clone "
            "or set PADLOCK_SHARED to its path"
        )
    return path


def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((upstream_dir() / "manifest.json").read_text())
    return data


def read_upstream(rel: str) -> str:
    """Text of one upstream file, e.g. ``falco-rules-5.1.0/falco_rules.yaml``."""
    return (upstream_dir() / rel).read_text(encoding="utf-8")
