"""Hostile rules files and YAML never crash, exhaust or stall the rules core: each is refused with a code,
a file and a line.

Covers ``padlock.engine.safe_yaml`` (size, nesting depth through ``[``, ``{`` and block ``-``, alias
bombs: billion laughs and 40 doubling levels, recursive aliases), yaml-cpp's reading (a key written
twice: the first wins; ``enabled`` in YAML 1.1 spellings, quoted or not), the condition parser and
collector on 100k/200k-letter identifiers and names, macro chains thousands deep (no RecursionError),
a condition naming tens of thousands of unknown event types (one error, not one per value), and a condition
over the length limit (refused before parsing).
Each case would hang, segfault or raise under the previous reader, parser or compiler.
"""

from __future__ import annotations

import pytest

from padlock.engine import condition, limits, loader, safe_yaml
from padlock.engine.model import RulesFile

RULE = "- rule: r\n  desc: d\n  output: o\n  priority: INFO\n  condition: {cond}\n"


def load(text: str) -> loader.LoadResult:
    return loader.load([RulesFile("hostile.yaml", text)])


def only_error(res: loader.LoadResult) -> tuple[str, str, int]:
    assert len(res.errors) == 1, [d.one_line() for d in res.errors]
    d = res.errors[0]
    assert d.file == "hostile.yaml"
    return d.code, d.id, d.line


def billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, prev in zip("bcdefghi", "abcdefgh", strict=True):
        lines.append(f"{i}: &{i} [{','.join([f'*{prev}'] * 9)}]")
    return "\n".join(lines) + "\n"


def doubling(levels: int = 40) -> str:
    lines = ["- &l0 [x, x]"]
    lines += [f"- &l{i} [*l{i - 1}, *l{i - 1}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text, expected_id", [
    ("[" * 100_000, "yaml-too-deep"),
    ("{a: " * 100_000, "yaml-too-deep"),
    ("- " * 100_000 + "x\n", "yaml-too-deep"),
    ("".join("  " * i + "- a:\n" for i in range(limits.MAX_YAML_DEPTH + 5)), "yaml-too-deep"),
    (billion_laughs(), "yaml-too-many-nodes"),
    (doubling(40), "yaml-too-many-nodes"),
    ("- &a [x, *a]\n", "yaml-recursive-alias"),
    ("- " + "x" * (limits.MAX_YAML_BYTES + 1) + "\n", "yaml-too-large"),
], ids=["flow-seq", "flow-map", "block-seq", "block-map", "billion-laughs", "doubling-40", "recursive-alias",
        "too-large"])
def test_a_hostile_yaml_document_is_refused_with_a_code_and_a_line(text: str, expected_id: str) -> None:
    with pytest.raises(safe_yaml.YamlError) as err:
        safe_yaml.compose_all(text)
    assert err.value.id == expected_id
    assert err.value.code == "LOAD_ERR_YAML_VALIDATE"
    assert err.value.line >= 1
    code, id_, line = only_error(load(text))
    assert (code, id_, line) == ("LOAD_ERR_YAML_VALIDATE", expected_id, err.value.line)


def test_an_alias_through_which_the_document_nests_too_deep_is_refused_at_the_alias() -> None:
    deep = "[" * 40 + "x" + "]" * 40
    text = f"a: &deep {deep}\nb: " + "[" * 30 + "*deep" + "]" * 30 + "\n"
    with pytest.raises(safe_yaml.YamlError) as err:
        safe_yaml.compose_all(text)
    assert (err.value.id, err.value.line) == ("yaml-too-deep", 2)
    assert "*deep" in err.value.message


def test_nesting_and_aliases_within_the_limits_still_read() -> None:
    text = "a: &x [1, 2, {k: v}]\nb: [*x, *x]\n" + "c: " + "[" * 20 + "y" + "]" * 20 + "\n"
    value = safe_yaml.load(text)
    assert isinstance(value, dict)
    assert value["b"] == [[1, 2, {"k": "v"}], [1, 2, {"k": "v"}]]


def test_a_key_written_twice_keeps_the_first_value_as_yaml_cpp_does() -> None:
    res = load("- rule: r\n  desc: d\n  output: o\n  priority: INFO\n  condition: evt.type = open\n"
               "  enabled: false\n  enabled: true\n")
    assert not res.errors
    assert res.ruleset.rules["r"].enabled is False
    assert safe_yaml.load("a: 1\nb: 2\na: 3\n") == {"a": 1, "b": 2}


def test_a_bad_first_priority_is_an_error_even_when_a_good_second_one_follows() -> None:
    res = load("- rule: r\n  desc: d\n  output: o\n  priority: NOPE\n  priority: INFO\n  condition: evt.type = open\n")
    assert [d.id for d in res.errors] == ["bad-priority"]


def test_a_bad_second_condition_is_ignored() -> None:
    res = load(RULE.format(cond="evt.type = open") + "  condition: ((( not a condition\n")
    assert not res.errors
    assert res.ruleset.rules["r"].condition == "evt.type = open"


@pytest.mark.parametrize("spelling, enabled", [
    ("y", True), ("n", False), ("yes", True), ("no", False), ("on", True), ("off", False),
    ('"y"', True), ("'off'", False), ('"YES"', True), ("On", True), ("true", True), ('"false"', False),
])
def test_enabled_accepts_the_yaml_1_1_spellings_yaml_cpp_reads_quoted_or_not(spelling: str, enabled: bool) -> None:
    res = load(RULE.format(cond="evt.type = open") + f"  enabled: {spelling}\n")
    assert not res.errors, [d.one_line() for d in res.errors]
    assert res.ruleset.rules["r"].enabled is enabled


@pytest.mark.parametrize("spelling", ["maybe", "yES", "1", "'tru'"])
def test_enabled_refuses_what_yaml_cpp_cannot_read_as_a_boolean(spelling: str) -> None:
    res = load(RULE.format(cond="evt.type = open") + f"  enabled: {spelling}\n")
    assert [(d.code, d.id) for d in res.errors] == [("LOAD_ERR_YAML_VALIDATE", "bad-scalar")]


def test_a_condition_starting_with_a_100k_letter_identifier_is_refused_cleanly() -> None:
    with pytest.raises(condition.ConditionError) as err:
        condition.parse("a" * 100_000 + " = 1")
    assert "longer than" in err.value.message and "(100000 characters)" in err.value.message
    res = load(RULE.format(cond="b" * 100_000 + ".c = 1"))
    assert [(d.code, d.id) for d in res.errors] == [("LOAD_ERR_COMPILE_CONDITION", "condition-syntax")]
    assert len(res.errors[0].message) < 300


def test_identifiers_up_to_the_limit_still_parse() -> None:
    name = "m" * limits.MAX_NAME_CHARS
    assert condition.parse(name) == condition.MacroRef(name, 0)


def test_a_200k_letter_macro_name_is_refused_with_a_short_message() -> None:
    name = "m" * 200_000 + "-"
    code, id_, line = only_error(load(f"- macro: {name}\n  condition: evt.type = open\n"))
    assert (code, id_, line) == ("LOAD_ERR_YAML_VALIDATE", "name-too-long", 1)
    assert len(load(f"- macro: {name}\n  condition: evt.type = open\n").errors[0].one_line()) < 400


def test_a_chain_of_3000_macros_is_refused_where_it_gets_too_deep_without_recursion_error() -> None:
    n = 3000
    text = "- macro: m0\n  condition: evt.type = open\n"
    text += "".join(f"- macro: m{i}\n  condition: m{i - 1} and proc.name = x\n" for i in range(1, n))
    text += RULE.format(cond=f"m{n - 1}")
    res = load(text)
    assert [(d.code, d.id, d.item_name) for d in res.errors] == [
        ("LOAD_ERR_VALIDATE", "macro-too-deep", f"m{limits.MAX_MACRO_DEPTH // 2}")
    ]


def test_a_chain_of_macros_within_the_bound_loads() -> None:
    text = "- macro: m0\n  condition: evt.type = open\n"
    text += "".join(f"- macro: m{i}\n  condition: m{i - 1} and proc.name = x\n" for i in range(1, 100))
    res = load(text + RULE.format(cond="m99"))
    assert not res.errors, [d.one_line() for d in res.errors[:3]]


def test_tens_of_thousands_of_unknown_event_types_give_one_error() -> None:
    n = 20_000
    res = load(RULE.format(cond="evt.type in (" + ",".join(f"z{i}" for i in range(n)) + ")"))
    assert [(d.id, d.line) for d in res.errors] == [("unknown-event-type", 5)]
    assert res.errors[0].message == f"unknown event type z0 (and {n - 1} more unknown event types in this check)"


def test_a_condition_over_the_length_limit_is_refused_before_parsing() -> None:
    text = "evt.type in (" + ",".join(f"z{i}" for i in range(300_000)) + ")"
    res = load(RULE.format(cond=text))
    assert [(d.code, d.id) for d in res.errors] == [("LOAD_ERR_COMPILE_CONDITION", "condition-syntax")]
    assert f"condition is {len(text)} characters long, over the limit of {limits.MAX_CONDITION_CHARS}" in \
        res.errors[0].message


def test_nested_complex_keys_do_not_double_in_size_at_each_level() -> None:
    # Printing a map used as a key, used as a key... doubles the escaping at each level: 2^49 bytes.
    text = "? " * 49 + "x"
    value = safe_yaml.load(text)
    assert value == {"<map key at line 1, column 3>": None}
    res = load("- rule: r\n  " + "? " * 40 + "x\n")
    assert all(len(d.message) < 300 for d in res.errors + res.warnings)
