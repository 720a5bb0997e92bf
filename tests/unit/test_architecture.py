"""The layer contracts of docs/design.md hold: imports only go down, the core stays pure.

The contracts live in pyproject.toml ([tool.importlinter]); this test runs them so that a
forbidden import fails the suite, not only `make lint`.
"""

from __future__ import annotations

from pathlib import Path

from importlinter import cli as importlinter_cli

ROOT = Path(__file__).resolve().parents[2]


def test_layer_and_purity_contracts_are_kept(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT / "operator"))
    exit_code = importlinter_cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    assert exit_code == importlinter_cli.EXIT_STATUS_SUCCESS, "import-linter contracts broken: run `lint-imports`"
