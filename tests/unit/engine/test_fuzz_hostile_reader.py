"""Fuzzing the reader and loader with hostile classes: 0 crashes, 0 tracebacks.

Hypothesis generates rules texts from the classes that took the operator down (deep ``[``/``{``/``-``
nesting, alias bombs of any fan-out and depth, recursive aliases, long identifiers and names, YAML
punctuation soup) and plants them into a real upstream rules file at a random line. The loader must
return diagnostics (every error with a known code, a file and a line) and never raise; the one YAML
function must raise nothing but ``YamlError``. The number of examples per property is
``PADLOCK_FUZZ_EXAMPLES`` (default 60, kept small for the default run).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from padlock.devenv.paths import upstream_rules_dir
from padlock.engine import diagnostics, loader, safe_yaml
from padlock.engine.model import RulesFile

EXAMPLES = int(os.environ.get("PADLOCK_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
UPSTREAM = (upstream_rules_dir() / "falco-rules-3.2.0" / "falco_rules.yaml").read_text(encoding="utf-8")


@st.composite
def nesting(draw: st.DrawFn) -> str:
    opener = draw(st.sampled_from(["[", "{a: ", "- ", "{", "[[", "? "]))
    depth = draw(st.integers(min_value=1, max_value=150_000))
    closed = draw(st.booleans())
    body = opener * depth + "x"
    if closed and opener in ("[", "[["):
        body += "]" * depth * len(opener)
    return body


@st.composite
def alias_bomb(draw: st.DrawFn) -> str:
    levels = draw(st.integers(min_value=1, max_value=60))
    fanout = draw(st.integers(min_value=1, max_value=10))
    lines = ["- &a0 [lol]"]
    for i in range(1, levels):
        lines.append(f"- &a{i} [{', '.join([f'*a{i - 1}'] * fanout)}]")
    if draw(st.booleans()):
        lines.append(f"- rule: r\n  condition: *a{levels - 1}")
    return "\n".join(lines)


@st.composite
def long_words(draw: st.DrawFn) -> str:
    n = draw(st.integers(min_value=1, max_value=250_000))
    word = draw(st.sampled_from(["a", "ab_", "x1"])) * (n // 2 + 1)
    tail = draw(st.sampled_from(["", "-", ".", " = 1", "!"]))
    where = draw(st.sampled_from(["macro", "cond", "list", "rule"]))
    if where == "macro":
        return f"- macro: {word}{tail}\n  condition: evt.type = open"
    if where == "list":
        return f"- list: {word}{tail}\n  items: [{word}]"
    if where == "rule":
        return f"- rule: {word}{tail}\n  desc: d\n  output: o\n  priority: INFO\n  condition: evt.type = open"
    return f"- rule: r\n  desc: d\n  output: o\n  priority: INFO\n  condition: {word}{tail}"


soup = st.text(alphabet="[]{}:-&*!|>'\"#\n ,?%@`abc0.=()\t\\", max_size=3000)
hostile = st.one_of(nesting(), alias_bomb(), long_words(), soup)


def planted(snippet: str, line: int) -> str:
    lines = UPSTREAM.splitlines(keepends=True)
    at = line % (len(lines) + 1)
    return "".join(lines[:at]) + snippet + "\n" + "".join(lines[at:])


def check_result(res: loader.LoadResult) -> None:
    for d in res.errors + res.warnings:
        assert d.code in diagnostics.CODES
        assert d.file == "fuzz.yaml"
        assert len(d.message) < 2000


@FUZZ
@given(hostile)
def test_the_yaml_function_raises_only_yaml_error(text: str) -> None:
    try:
        safe_yaml.load_all(text)
    except safe_yaml.YamlError as err:
        assert err.code in ("LOAD_ERR_YAML_PARSE", "LOAD_ERR_YAML_VALIDATE")


@FUZZ
@given(hostile)
def test_the_loader_returns_diagnostics_for_any_hostile_file(text: str) -> None:
    check_result(loader.load([RulesFile("fuzz.yaml", text)]))


@FUZZ
@given(hostile, st.integers(min_value=0, max_value=10_000))
def test_the_loader_returns_diagnostics_for_an_upstream_file_with_a_hostile_part(snippet: str, line: int) -> None:
    check_result(loader.load([RulesFile("fuzz.yaml", planted(snippet, line))]))
