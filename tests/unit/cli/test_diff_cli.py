"""``padlock diff``: JSON shape, changelog text, OLD... -- NEW... and OLD NEW forms, exit codes.

Runs the real click command on files in a temporary directory and on the vendored upstream corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from padlock.cli.main import cli
from padlock.devenv.paths import upstream_rules_dir

REPO = Path(__file__).resolve().parents[3]

OLD = """
- list: shells
  items: [bash, sh]
- rule: Shell
  desc: a shell
  condition: evt.type = execve and proc.name in (shells)
  output: shell %proc.name
  priority: NOTICE
- rule: Gone
  desc: removed later
  condition: evt.type = open
  output: o
  priority: WARNING
"""
NEW = """
- list: shells
  items: [bash, sh, zsh]
- rule: Shell
  desc: a shell
  condition: evt.type = execve and proc.name in (shells)
  output: shell %proc.name
  priority: WARNING
- rule: Fresh
  desc: new
  condition: evt.type = connect
  output: o
  priority: INFO
  tags: [network, T1000]
"""


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["diff", *args])
    return result.exit_code, result.output


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(OLD)
    new.write_text(NEW)
    return str(old), str(new)


def test_json_lists_changes_and_affected_rules(files: tuple[str, str]) -> None:
    code, out = run("-o", "json", *files)
    assert code == 0
    assert json.loads(out) == {
        "rules": {"added": ["Fresh"], "removed": ["Gone"], "modified": [{"name": "Shell", "keys": ["priority"]}]},
        "macros": {"added": [], "removed": [], "modified": []},
        "lists": {"added": [], "removed": [], "modified": [{"name": "shells", "keys": ["items"]}]},
        "affects": {"macros": {}, "lists": {"shells": ["Shell"]}},
    }


def test_changelog_text_flags_breaking_removals(files: tuple[str, str]) -> None:
    code, out = run(*files)
    assert code == 0
    assert "Rules: 1 added, 1 removed, 1 modified" in out
    assert "  + Fresh [INFORMATIONAL]" in out and "tags: network, T1000" in out
    assert "BREAKING" in out and "  - Gone [WARNING]" in out
    assert "  ~ Shell: priority NOTICE -> WARNING" in out
    assert "  ~ shells (items +zsh); affects 1 rule(s): Shell" in out


def test_dash_dash_form_takes_several_files_per_side(files: tuple[str, str], tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("- rule: Fresh\n  enabled: false\n  override: {enabled: replace}\n")
    code, out = run("-o", "json", files[0], "--", files[1], str(extra))
    assert code == 0
    assert json.loads(out)["rules"]["added"] == ["Fresh"]


def test_upstream_upgrade_diff_is_deterministic() -> None:
    up = upstream_rules_dir()
    old, new = up / "falco-rules-4.0.0/falco_rules.yaml", up / "falco-rules-5.1.0/falco_rules.yaml"
    outs = {run("-o", "json", str(old), str(new)) for _ in range(2)}
    assert len(outs) == 1
    code, out = outs.pop()
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"rules", "macros", "lists", "affects"}


@pytest.mark.parametrize("args", [["a.yaml"], ["a.yaml", "b.yaml", "c.yaml"], ["a.yaml", "--"], ["-o", "xml", "a", "b"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert run(*args)[0] == 2


def test_a_set_that_does_not_load_exits_1(files: tuple[str, str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(NEW.replace("proc.name in", "proc.nmae in"))
    code, out = run(files[0], str(broken))
    assert code == 1
    assert "NEW rules do not load" in out
