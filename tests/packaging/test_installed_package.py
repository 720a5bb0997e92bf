"""`pip install .` gives a working `padlock` and `kubectl-padlock`, with the package data they need.

Installs the project (not editable) into a fresh virtual environment that borrows the already
installed dependencies, then runs the console scripts from there: this proves the entry points,
and that the field catalog and the policy catalog are shipped inside the wheel.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_RULES = ROOT / "examples" / "rules" / "v1"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    # The outer pip installs into the venv (`--python`); the build runs isolated, as `pip install .` does.
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(ROOT)],
        check=True, cwd=env_dir,
    )
    return env_dir / "bin"


@pytest.mark.parametrize("script", ["padlock", "kubectl-padlock"])
def test_console_script_prints_help(installed: Path, script: str, tmp_path: Path) -> None:
    result = subprocess.run([installed / script, "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("validate", "diff", "render", "copy", "policies", "operator"):
        assert command in result.stdout


def test_installed_package_is_not_the_source_tree(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [installed / "python", "-c", "import padlock; print(padlock.__file__)"],
        capture_output=True, text=True, cwd=tmp_path, check=True,
    ).stdout.strip()
    assert str(installed.parent) in where, where


def test_installed_validate_uses_the_shipped_field_catalog(installed: Path, tmp_path: Path) -> None:
    rules = sorted(EXAMPLE_RULES.glob("*.yaml"))
    assert rules, "examples/rules/v1 has no rules file"
    result = subprocess.run(
        [installed / "padlock", "validate", "--plugin", "container=0.4.0", *map(str, rules)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_installed_render_uses_the_shipped_policy_catalog(installed: Path, tmp_path: Path) -> None:
    objects = tmp_path / "objects"
    objects.mkdir()
    # The shipped catalog puts "Terminal shell in container" into one managed policy (its one owner);
    # switching it off there must disable it in the generated layer.
    (objects / "choices.yaml").write_text(
        "".join(
            f"---\napiVersion: padlock.dev/v1alpha1\nkind: ManagedPolicy\nmetadata:\n  name: {name}\n"
            "spec:\n  disabledRules: [Terminal shell in container]\n"
            for name in ("execution",)
        )
    )
    out = tmp_path / "out"
    result = subprocess.run(
        [installed / "padlock", "render", str(objects), "--source", str(EXAMPLE_RULES),
         "--plugin", "container=0.4.0", "--format", "files", "-o", str(out)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    generated = sorted(p.name for p in out.rglob("*.yaml"))
    assert "padlock-policies.yaml" in generated, generated
    layer = (out / "padlock-policies.yaml").read_text()
    assert "rule: Terminal shell in container" in layer, layer
    assert "enabled: false" in layer, layer
