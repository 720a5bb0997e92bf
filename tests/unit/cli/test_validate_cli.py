"""``padlock validate``: exit codes, the JSON shape, text like falco -V, files in order, determinism.

Runs the real click command (``click.testing.CliRunner``) on files written to a temporary directory and
on the vendored upstream corpus (``tests/data/upstream-rules``; missing corpus fails).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from padlock.cli.main import cli
from padlock.devenv.paths import upstream_rules_dir

REPO = Path(__file__).resolve().parents[3]
UPSTREAM = upstream_rules_dir()
STABLE = UPSTREAM / "falco-rules-5.1.0/falco_rules.yaml"
INCUBATING = UPSTREAM / "falco-incubating-rules-6.0.1/falco-incubating_rules.yaml"
SANDBOX = UPSTREAM / "falco-sandbox-rules-6.1.0/falco-sandbox_rules.yaml"

GOOD = "- rule: r\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: INFO\n"
BAD = "- rule: r\n  desc: d\n  condition: evt.type = execve and nope\n  output: o\n  priority: INFO\n"


def upstream() -> None:
    if not STABLE.is_file():
        pytest.fail(f"upstream corpus incomplete at {UPSTREAM}: {STABLE.name} missing")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["validate", *args])
    return result.exit_code, result.output


def test_upstream_stack_is_valid_in_json(tmp_path: Path) -> None:
    upstream()
    code, out = run("--plugin", "container=0.4.0", "-o", "json", str(STABLE), str(INCUBATING), str(SANDBOX))
    assert code == 0, out
    doc = json.loads(out)
    assert doc == {"valid": True, "errors": [], "warnings": []}


def test_invalid_file_exits_1_with_located_diagnostic(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    code, out = run("-o", "json", str(f))
    assert code == 1
    doc = json.loads(out)
    assert doc["valid"] is False
    assert doc["errors"] == [
        {
            "code": "LOAD_ERR_VALIDATE",
            "message": "Undefined macro 'nope' used in filter.",
            "file": str(f),
            "line": 3,
            "column": 36,
            "item": {"type": "rule", "name": "r"},
        }
    ]


def test_warnings_alone_keep_exit_0(tmp_path: Path) -> None:
    f = tmp_path / "w.yaml"
    f.write_text(GOOD + "- macro: idle\n  condition: evt.type = open\n")
    code, out = run("-o", "json", str(f))
    assert code == 0
    doc = json.loads(out)
    assert doc["valid"] is True and [w["code"] for w in doc["warnings"]] == ["LOAD_UNUSED_MACRO"]


def test_strict_makes_warnings_fail_and_the_default_does_not(tmp_path: Path) -> None:
    f = tmp_path / "w.yaml"
    f.write_text(GOOD + "- macro: idle\n  condition: evt.type = open\n")
    code, _ = run(str(f))
    assert code == 0
    code, out = run("--strict", str(f))
    assert code == 1
    assert "strict: 1 warning(s) fail the validation" in out
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert run("--strict", str(good))[0] == 0


def test_padlock_own_checks_never_fail_what_falco_loads(tmp_path: Path) -> None:
    # A misspelt list name looks like a typo to Padlock, but Falco loads it (as a literal): a warning.
    f = tmp_path / "typo.yaml"
    f.write_text("- list: shell_binaries\n  items: [bash]\n" + GOOD.replace(
        "evt.type = execve", "evt.type = execve and proc.name in (shell_binarie)"))
    code, out = run("-o", "json", str(f))
    assert code == 0, out
    assert sorted(w["code"] for w in json.loads(out)["warnings"]) == ["LOAD_COMPILE_CONDITION", "LOAD_UNUSED_LIST"]
    assert run("--strict", str(f))[0] == 1


def test_engine_version_selects_the_deprecations_of_that_falco(tmp_path: Path) -> None:
    f = tmp_path / "dir.yaml"
    f.write_text(GOOD.replace("evt.type = execve", "evt.type = execve and evt.dir = <"))
    code, out = run("--engine-version", "0.46.0", "-o", "json", str(f))
    assert code == 0 and json.loads(out)["warnings"] == [], out
    code, out = run("--engine-version", "0.62.0", "-o", "json", str(f))
    assert code == 0
    assert [w["code"] for w in json.loads(out)["warnings"]] == ["LOAD_DEPRECATED_ITEM"]
    assert "evt.dir" in json.loads(out)["warnings"][0]["message"]


def test_text_output_reads_like_falco_validate(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(BAD.replace("- rule: r", "- rule: r2"))
    code, out = run(str(good), str(bad))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"{good}: Ok"
    assert lines[1] == f"{bad}: Invalid"
    assert f'{bad}:3:36: rule "r2": Undefined macro \'nope\' used in filter. [undefined-macro] LOAD_ERR_VALIDATE' in lines[2]
    assert "  condition: evt.type = execve and nope" in out  # snippet
    assert lines[-1] == "1 error(s), 0 warning(s)"


def test_files_load_in_the_order_given(tmp_path: Path) -> None:
    base, override = tmp_path / "a.yaml", tmp_path / "b.yaml"
    base.write_text(GOOD)
    override.write_text("- rule: r\n  enabled: false\n  override: {enabled: replace}\n")
    assert run(str(base), str(override))[0] == 0
    code, out = run(str(override), str(base))
    assert code == 1 and "no rule by that name already exists" in out


def test_engine_version_and_plugins_are_checked(tmp_path: Path) -> None:
    upstream()
    assert run(str(STABLE))[0] == 0  # the default plugins (the Falco chart's) include the container plugin
    assert run("--plugin", "json=0.7.0", str(STABLE))[0] == 1  # needs the container plugin
    assert run("--plugin", "container=0.4.0", "--engine-version", "0.50.0", str(STABLE))[0] == 1
    assert run("--plugin", "container=0.4.0", "--engine-version", "0.57.0", str(STABLE))[0] == 0


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--plugin", "container", "x.yaml"],
        ["--plugin", "container=latest", "x.yaml"],
        ["--engine-version", "new", "x.yaml"],
        ["-o", "xml", "x.yaml"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert run(*args)[0] == 2


def test_missing_file_is_a_file_read_error(tmp_path: Path) -> None:
    code, out = run("-o", "json", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert json.loads(out)["errors"][0]["code"] == "LOAD_ERR_FILE_READ"


def test_output_is_byte_identical_across_runs(tmp_path: Path) -> None:
    upstream()
    f = tmp_path / "bad.yaml"
    f.write_text(BAD + GOOD.replace("- rule: r", "- rule: other").replace("execve", "opne"))
    outs = {run("-o", "json", "--plugin", "container=0.4.0", str(STABLE), str(f))[1] for _ in range(3)}
    assert len(outs) == 1


def test_file_kind_dispatch_recognises_padlock_objects() -> None:
    from padlock.cli import validate

    assert validate.kind_of("apiVersion: padlock.dev/v1alpha1\nkind: ManagedPolicy\n") == "padlock-object"
    assert validate.kind_of("- rule: r\n  desc: 'apiVersion: padlock.dev/v1alpha1'\n") == "falco-rules"
    assert set(validate.VALIDATORS) >= {"falco-rules", "padlock-object"}
