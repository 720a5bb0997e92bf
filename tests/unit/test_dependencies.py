"""The package declares exactly the third-party distributions it imports.

Covers: every module imported by ``operator/padlock`` outside the standard library belongs to a
distribution listed in ``[project.dependencies]``, and every listed distribution is imported somewhere
(no unused dependency, no dependency that works only because another one pulls it in).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_top_level_modules() -> set[str]:
    modules: set[str] = set()
    for path in (ROOT / "operator" / "padlock").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m != "padlock"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {normalise(re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0]) for dep in project["dependencies"]}


def test_every_imported_module_is_declared_and_every_declared_distribution_is_imported() -> None:
    owners = importlib.metadata.packages_distributions()
    used: set[str] = set()
    for module in sorted(imported_top_level_modules()):
        dists = owners.get(module)
        assert dists, f"padlock imports {module!r}, which no installed distribution provides"
        used.update(normalise(d) for d in dists)
    wanted = declared()
    assert sorted(used - wanted) == [], "imported but not declared in [project.dependencies]"
    assert sorted(wanted - used) == [], "declared in [project.dependencies] but never imported"
