"""The CLI refuses special and oversized files and survives hostile YAML, through the real commands.

Covers ``padlock validate`` on ``/dev/zero``, a FIFO (nobody writing: reading it would block forever)
and a file over ``limits.MAX_YAML_BYTES`` (each a LOAD_ERR_FILE_READ, exit 1, nothing read whole),
``padlock render`` on the same as objects and sources (usage error, exit 2), and ``padlock validate``
on a 100k-``[`` rules file and an alias bomb (a located LOAD_ERR_YAML_VALIDATE, not a segfault), run in
a subprocess so a crash of the process shows as a signal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from padlock.cli import objects
from padlock.cli.main import cli
from padlock.engine import limits


def validate(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(cli, ["validate", "-o", "json", *args])
    return result.exit_code, json.loads(result.output)


def special_files(tmp_path: Path) -> list[Path]:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:
        fh.truncate(limits.MAX_YAML_BYTES + 1)
    return [Path("/dev/zero"), fifo, big]


def test_validate_refuses_devices_fifos_and_oversized_files_without_reading_them(tmp_path: Path) -> None:
    for path in special_files(tmp_path):
        code, doc = validate(str(path))
        assert code == 1
        errors = doc["errors"]
        assert isinstance(errors, list) and len(errors) == 1
        assert errors[0]["code"] == "LOAD_ERR_FILE_READ"
        assert str(path) in errors[0]["message"]
        reason = "not a regular file" if path.name != "big.yaml" else "over the limit"
        assert reason in errors[0]["message"]


def test_render_refuses_special_files_as_objects_and_as_sources(tmp_path: Path) -> None:
    for path in special_files(tmp_path):
        with pytest.raises(objects.InputError):
            objects.read_objects([path])
        with pytest.raises(objects.InputError):
            objects.read_source(f"x={path}", {})


@pytest.mark.parametrize("text, expected, line", [
    ("[" * 100_000, "yaml-too-deep", 1),
    ("- &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
     + "".join(f"- &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
     "yaml-too-many-nodes", 6),  # the first alias that takes the count over the limit
])
def test_validate_in_a_process_refuses_a_hostile_file_with_a_located_error(tmp_path: Path, text: str,
                                                                           expected: str, line: int) -> None:
    f = tmp_path / "hostile.yaml"
    f.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "padlock", "validate", "-o", "json", str(f)],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert proc.returncode == 1, proc.stderr  # a segfault would be -11
    errors = json.loads(proc.stdout)["errors"]
    assert [(e["code"], e["line"]) for e in errors] == [("LOAD_ERR_YAML_VALIDATE", line)]
    words = {"yaml-too-deep": "nests deeper than", "yaml-too-many-nodes": "nodes once aliases are expanded"}
    assert words[expected] in errors[0]["message"]
