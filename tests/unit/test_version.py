"""The version is kept in one place, ``padlock.__version__``.

Covers: the installed distribution reports it (pyproject.toml reads it dynamically), and the chart's
``appVersion`` and the CHANGELOG's newest entry name the same version.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import yaml

import padlock

ROOT = Path(__file__).resolve().parents[2]


def test_distribution_chart_and_changelog_carry_the_package_version() -> None:
    assert importlib.metadata.version("padlock") == padlock.__version__
    chart = yaml.safe_load((ROOT / "charts" / "padlock" / "Chart.yaml").read_text())
    assert chart["appVersion"] == padlock.__version__
    newest = re.search(r"^## \[?(\d+\.\d+\.\d+)", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert newest is not None and newest.group(1) == padlock.__version__
