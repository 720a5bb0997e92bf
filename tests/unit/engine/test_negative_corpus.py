"""Negative corpus: hand-made bad inputs (and mutations of real upstream files) with the exact
diagnostics they must give. Cases are data in ``cases/*.yaml``; each is one test.

Covers every error and warning the rules-format notes list: codes, finer ids, file, line, column and
item. Errors must match exactly (no missing, no extra, by code and id); listed warnings must appear;
ids under ``absent`` must not appear.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from padlock.engine import loader
from padlock.engine.diagnostics import Diagnostic
from padlock.engine.model import RulesFile
from rules_corpus import upstream_dir

CASES_DIR = Path(__file__).parent / "cases"


def _cases() -> list[Any]:
    out = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text()):
            out.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return out


def _files(case: dict[str, Any]) -> list[RulesFile]:
    if "mutate" in case:
        spec = case["mutate"]
        text = (upstream_dir() / spec["file"]).read_text()
        for old, new in spec["replace"]:
            assert old in text, f"mutation target {old!r} not in {spec['file']}"
            text = text.replace(old, new, 1)
        return [RulesFile(spec["file"].split("/")[-1], text)]
    return [RulesFile(f["name"], f["text"]) for f in case["files"]]


def _matches(d: Diagnostic, e: dict[str, Any], default_file: str) -> bool:
    if d.code != e["code"] or d.id != e["id"]:
        return False
    if d.file != e.get("file", default_file):
        return False
    if "line" in e and d.line != e["line"]:
        return False
    if "column" in e and d.column != e["column"]:
        return False
    item = e.get("item")
    return item is None or (d.item_type == item["type"] and d.item_name == str(item["name"]))


@pytest.mark.parametrize("case", _cases())
def test_case_gives_expected_diagnostics(case: dict[str, Any]) -> None:
    files = _files(case)
    res = loader.load(files, engine_version=case.get("engine_version"), plugins=case.get("plugins"))
    found = res.errors + res.warnings
    shown = "\n".join(d.one_line() + " " + d.code for d in found)
    default_file = files[0].name
    for e in case["expect"]:
        assert any(_matches(d, e, default_file) for d in found), f"expected {e}\nfound:\n{shown}"
    expected_errors = Counter(
        (e["code"], e["id"]) for e in case["expect"] if not e["code"].startswith("LOAD_") or "_ERR_" in e["code"]
    )
    actual_errors = Counter((d.code, d.id) for d in res.errors)
    if case.get("errors_subset"):
        assert set(expected_errors) <= set(actual_errors), shown
    else:
        assert set(actual_errors) == set(expected_errors), f"errors differ:\n{shown}"
    assert res.valid == (not expected_errors)
    for absent in case.get("absent", []):
        assert all(d.id != absent for d in found), shown
    # Every diagnostic names its file, and positions are 1-based whenever a file is named.
    for d in found:
        assert d.file in {f.name for f in files}
        assert d.line >= 1 and d.column >= 1


def test_corpus_has_at_least_sixty_cases() -> None:
    assert len(_cases()) >= 60
