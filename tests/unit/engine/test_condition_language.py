"""The condition language: parse, print back, re-parse; precedence, operators, quoting, errors.

Covers: every macro and rule condition of every upstream file parses, renders and re-parses to the same
tree; precedence (not > and > or); every operator and modifier; field arguments and transformers;
quoting and escapes; errors carry libsinsp's message and the offset; ``fields()`` lists what a condition
uses; arbitrary input (hypothesis) yields a tree or a ``ConditionError``, never another exception.
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from padlock.engine import condition as c
from rules_corpus import manifest, read_upstream


def _upstream_conditions() -> list[tuple[str, str]]:
    out = []
    for entry in manifest()["files"]:
        for item in yaml.load(read_upstream(entry["file"]), Loader=yaml.CSafeLoader) or []:
            if isinstance(item, dict) and item.get("condition"):
                name = item.get("rule") or item.get("macro")
                out.append((f"{entry['tag']}:{name}", str(item["condition"])))
    return out


def test_every_upstream_condition_round_trips() -> None:
    conditions = _upstream_conditions()
    assert len(conditions) > 5000
    for where, text in conditions:
        tree = c.parse(text)
        printed = c.render(tree)
        assert c.parse(printed) == tree, where
        assert c.render(c.parse(printed)) == printed, where


def test_not_binds_tighter_than_and_which_binds_tighter_than_or() -> None:
    tree = c.parse("not a and b or c")
    assert isinstance(tree, c.Or)
    first = tree.children[0]
    assert isinstance(first, c.And)
    assert isinstance(first.children[0], c.Not)
    assert c.render(c.parse("a or b and not (c or d)")) == "a or b and not (c or d)"
    assert c.render(c.parse("(a or b) and c")) == "(a or b) and c"


def test_appended_text_keeps_falco_precedence() -> None:
    # Appending "and not x" to "a or b" yields a or (b and not x): why Padlock wraps conditions.
    tree = c.parse("a or b" + " " + "and not x")
    assert isinstance(tree, c.Or) and isinstance(tree.children[1], c.And)


@pytest.mark.parametrize(
    ("text", "op", "modifier"),
    [
        ("fd.name exists", "exists", None),
        ("proc.pid <= 10", "<=", None),
        ("proc.pid < 0x1F", "<", None),
        ("proc.pid >= 1.5e+3", ">=", None),
        ("proc.pid > -3", ">", None),
        ("proc.name == bash", "==", None),
        ("proc.name=bash", "=", None),
        ("proc.name != bash", "!=", None),
        ("evt.buffer bcontains CAFE", "bcontains", None),
        ("evt.buffer bstartswith CAFE", "bstartswith", None),
        ("proc.cmdline contains curl", "contains", None),
        ("proc.cmdline icontains CURL", "icontains", None),
        ("fd.name endswith .pem", "endswith", None),
        ("fd.name glob /etc/*", "glob", None),
        ("fd.name iglob /ETC/*", "iglob", None),
        ("fd.name startswith /etc", "startswith", None),
        ("proc.name regex '^ba.*'", "regex", None),
        ("proc.name in(bash, sh)", "in", None),
        ("proc.name intersects (bash)", "intersects", None),
        ("fd.name pmatch (/etc, /usr/*)", "pmatch", None),
        ("proc.cmdline contains anyof (curl, wget)", "contains", "anyof"),
        ("proc.name = oneof (a, b)", "=", "oneof"),
        ("fd.name startswith allof (/a, /b)", "startswith", "allof"),
    ],
)
def test_every_operator_parses_and_round_trips(text: str, op: str, modifier: str | None) -> None:
    tree = c.parse(text)
    assert isinstance(tree, c.Check)
    assert (tree.op, tree.modifier) == (op, modifier)
    assert c.parse(c.render(tree)) == tree


def test_field_arguments_and_transformers() -> None:
    tree = c.parse("proc.aname[2] = sshd and proc.env['HOME DIR'] = x and tolower(proc.name) = val(proc.pname)")
    assert isinstance(tree, c.And)
    first, second, third = tree.children
    assert isinstance(first, c.Check) and first.lhs == c.FieldRef("proc.aname", "2")
    assert isinstance(second, c.Check) and second.lhs == c.FieldRef("proc.env", "HOME DIR")
    assert isinstance(third, c.Check) and isinstance(third.lhs, c.Transformer) and third.lhs.name == "tolower"
    assert isinstance(third.value, c.Transformer) and third.value.name == "val"
    assert c.parse(c.render(tree)) == tree
    assert c.fields(tree) == ("proc.aname", "proc.env", "proc.name", "proc.pname")


def test_quoting_and_escapes_survive_a_round_trip() -> None:
    tree = c.parse(r'''proc.cmdline = "a \"quoted\" word" and fd.name = 'it\'s' and x.y in ("sh -c", b)''')
    checks = [n for n in c.iter_nodes(tree) if isinstance(n, c.Check)]
    assert [ch.value.value for ch in checks[:2]] == ['a "quoted" word', "it's"]  # type: ignore[union-attr]
    assert c.parse(c.render(tree)) == tree


def test_bare_values_keep_special_characters() -> None:
    tree = c.parse("proc.pname in (runc:[0:PARENT], /usr/bin/*) and fd.cnet = 10.0.0.0/8")
    assert isinstance(tree, c.And)
    lst = tree.children[0]
    assert isinstance(lst, c.Check) and isinstance(lst.value, c.ListValue)
    assert [i.value for i in lst.value.items] == ["runc:[0:PARENT]", "/usr/bin/*"]


def test_macro_reference_is_a_bare_identifier() -> None:
    tree = c.parse("spawned_process and not never_true")
    assert [r.name for r in c.macro_refs(tree)] == ["spawned_process", "never_true"]


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("", "filter input string is empty", 0),
        ("evt.type = open AND proc.name = x", "unexpected token after 'open', expecting 'or', 'and'", 16),
        ("proc.name like x", "expected a valid check operator", 10),
        ("(proc.name = x", "expected a ')' token", 14),
        ('proc.name = "a\\qb"', "unsupported string escape sequence", 14),
        ("proc.name in (a, b", "expected a ',' or ')' token in list", 18),
        ("proc.pid < abc", "expected a number value", 11),
        ("not", "expected a field, a macro name, 'not' or '('", 0),
    ],
)
def test_errors_carry_message_and_offset(text: str, message: str, offset: int) -> None:
    with pytest.raises(c.ConditionError) as exc:
        c.parse(text)
    assert exc.value.message.startswith(message)
    assert exc.value.offset == offset


def test_deep_nesting_is_a_clean_error() -> None:
    with pytest.raises(c.ConditionError, match="max depth"):
        c.parse("(" * 5000 + "a" + ")" * 5000)
    with pytest.raises(c.ConditionError, match="max depth"):
        c.parse("not " * 5000 + "a")


_ALPHABET = st.sampled_from(
    [*"abcdefghijklmnopqrstuvwxyz._[]()'\",=<>!\\ \t\n0123456789-+/*:",
     "and ", "or ", "not ", " in ", "exists", "contains ", "proc.name", "val(", "tolower(", "anyof "]
)


@settings(max_examples=600, deadline=None)
@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_arbitrary_input_gives_a_tree_or_a_clean_error(text: str) -> None:
    try:
        tree = c.parse(text)
    except c.ConditionError as exc:
        assert 0 <= exc.offset <= len(text)
        assert exc.message
        return
    assert c.parse(c.render(tree)) == tree


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_unicode_gives_a_tree_or_a_clean_error(text: str) -> None:
    try:
        tree = c.parse(text)
    except c.ConditionError:
        return
    assert c.parse(c.render(tree)) == tree


def test_macro_expansion_keeps_each_macro_grouping() -> None:
    macros = {"a": c.parse("x.y = 1 or x.y = 2"), "b": c.parse("a and not c"), "c": c.parse("p.q exists")}
    expanded = c.expand_macros(c.parse("b and x.z = 3"), macros)
    assert c.render(expanded) == "((x.y = 1 or x.y = 2) and not p.q exists) and x.z = 3"
    assert not list(c.macro_refs(expanded))
    # unknown and self-referencing macros stay references
    assert c.render(c.expand_macros(c.parse("loop or nope"), {"loop": c.parse("loop")})) == "loop or nope"


def test_list_substitution_replaces_only_bare_names_in_lists() -> None:
    lists = {"shells": ("bash", "sh -c"), "empty": ()}
    tree = c.substitute_lists(c.parse('proc.name in (shells, zsh, "shells", empty)'), lists)
    assert c.render(tree) == 'proc.name in (bash, "sh -c", zsh, shells)'
