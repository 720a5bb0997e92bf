"""Exception values stay values: Falco's textual builder, the compiler's verdicts, and the policy proof.

Covers:
- ``exception_text``, the port of Falco's ``quote_item``, ``paren_item``, ``build_rule_exception_infos``
  and ``resolve_list`` (quotes only with a space, parentheses for list operators, list names replaced
  inside quoted strings, an empty list taking a comma with it);
- the loader's compiler, which now compiles exceptions from that text as Falco does: an injected
  value compiles to an unpinned ``or`` branch, quotes or parentheses break the condition
  (LOAD_ERR_COMPILE_CONDITION), a comma splits a list item, a value after ``exists`` is code, a
  list name after ``=`` is pasted as text, ``k8s.ns.name[x]`` is not a supported filter field, an
  empty value is refused by the reader;
- the policy side (``exceptions_render``) on the whole attack corpus of issue 14: every attack is
  either refused with a field path and a reason, or rendered so that the condition the loader
  compiles from the published entry is the intended confined shape (each row ``field op literal``
  terms with the user's exact values and the ``k8s.ns.name`` pin), checked on the compiled condition;
- a property test: for random values built from the characters that matter to Falco's builder,
  either the object is refused or the compiled exception is exactly the intended confined shape;
- the layer excludes a refused object and reports it on that object, the others still publish; its
  memo renders exceptions again when the lists change; a scope namespace named like a list is quoted;
- the incremental loader treats a list named inside an exception value as an input of the rule.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from padlock.engine import condition as cond
from padlock.engine import exception_text as et
from padlock.engine import loader
from padlock.engine.model import RulesFile
from padlock.policy.exceptions_render import check_exception, render_exception
from padlock.policy.layer import build_layer
from padlock.policy.policy_objects import ExceptionInput, ExceptionMatch, ObjectRef, PolicyTarget

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PLUGINS = {"container": "0.4.0"}
UPSTREAM = """
- list: shell_binaries
  items: [bash, sh]
- list: team-a
  items: [team-b]
- list: one_item
  items: [sshd]
- rule: Shell
  desc: d
  condition: evt.type = execve and proc.name in (shell_binaries)
  output: shell %proc.name
  priority: NOTICE
"""
LISTS = et.expand_lists([("shell_binaries", ["bash", "sh"]), ("team-a", ["team-b"]), ("one_item", ["sshd"])])


def _load(entry: dict[str, Any], upstream: str = UPSTREAM) -> loader.LoadResult:
    layer = yaml.safe_dump([{"rule": "Shell", "exceptions": [entry], "override": {"exceptions": "append"}}])
    return loader.load([RulesFile("00-up.yaml", upstream), RulesFile("99-layer.yaml", layer)], plugins=PLUGINS)


def _compiled_exception(entry: dict[str, Any]) -> cond.Node:
    """The ``not (...)`` part of the condition the loader compiles for rule Shell with ``entry``."""
    result = _load(entry)
    assert result.valid, [d.one_line() for d in result.errors]
    tree = cond.parse(result.ruleset.rules["Shell"].compiled_condition)
    assert isinstance(tree, cond.And)
    last = tree.children[-1]
    assert isinstance(last, cond.Not)
    return last.child


def _rows(node: cond.Node) -> tuple[cond.Node, ...]:
    return node.children if isinstance(node, cond.Or) else (node,)


def _terms(row: cond.Node) -> tuple[cond.Node, ...]:
    return row.children if isinstance(row, cond.And) else (row,)


def _exc(match: ExceptionMatch, namespace: str = "team-a") -> ExceptionInput:
    kind = "PolicyException" if namespace else "ClusterPolicyException"
    return ExceptionInput(ObjectRef(kind, "x", namespace), (PolicyTarget("ManagedPolicy", "p"),), match, "r")


def _native(*values: str, field: str = "proc.name", comp: str = "=") -> ExceptionMatch:
    return ExceptionMatch(fields=(field,), comps=(comp,), values=tuple((v,) for v in values))


def _assert_confined(entry: dict[str, Any], field: str, op: str, literals: list[Any], namespace: str | None) -> None:
    """The compiled exception is one row per literal: ``field op literal`` (and the namespace pin)."""
    rows = _rows(_compiled_exception(entry))
    assert len(rows) == len(literals)
    for row, literal in zip(rows, literals, strict=True):
        terms = _terms(row)
        assert len(terms) == (2 if namespace else 1)
        check = terms[0]
        assert isinstance(check, cond.Check) and isinstance(check.lhs, cond.FieldRef)
        assert (check.lhs.name, check.op) == (field, op)
        if isinstance(literal, list):
            assert isinstance(check.value, cond.ListValue)
            assert [i.value for i in check.value.items] == literal
        else:
            assert check.value == cond.Str(literal)
        if namespace:
            assert terms[1] == cond.Check(cond.FieldRef("k8s.ns.name"), "=", cond.Str(namespace))


# ---------------------------------------------------------------------------------------------
# The port of Falco's builder


def _spec(fields: Any, comps: Any, values: list[Any]) -> et.ExceptionSpec:
    return et.ExceptionSpec("e", et.entry_of(fields), et.entry_of(comps), tuple(et.entry_of(v) for v in values))


def test_quote_item_quotes_only_a_text_with_a_space_that_is_not_already_quoted() -> None:
    assert et.quote_item("a b") == '"a b"'
    assert et.quote_item("ab") == "ab"
    assert et.quote_item('"a b') == '"a b'
    assert et.quote_item("'a b") == "'a b"
    assert et.quote_item('a"b') == 'a"b'


def test_paren_item_wraps_unless_the_text_starts_with_a_parenthesis() -> None:
    assert et.paren_item("a") == "(a)"
    assert et.paren_item("(a, b") == "(a, b"
    assert et.paren_item("") == "()"


def test_the_built_condition_is_falcos_text_for_list_and_single_field_forms() -> None:
    listed = _spec(["proc.name", "fd.name"], ["=", "in"], [["a b", "/etc"], ["c", ["x y", "z"]]])
    single = _spec("proc.name", "in", ["a", "b c"])
    assert et.build_rule_exception_infos([listed, single], "evt.type = open") == (
        '(evt.type = open) and not (( proc.name = "a b" and  fd.name in (/etc)) or '
        '( proc.name = c and  fd.name in ("x y", z))) and not (proc.name in (a, "b c"))'
    )
    assert et.build_rule_exception_infos([_spec(["proc.name"], ["="], [])], "x") == "(x)"


def test_the_builder_refuses_what_falco_throws_on() -> None:
    with pytest.raises(et.ExceptionBuildError, match="Fields and values lists must have equal length"):
        et.exception_condition(_spec(["a.b", "c.d"], ["=", "="], [["x"]]))
    with pytest.raises(et.ExceptionBuildError, match="Expected values array to contain a list of strings"):
        et.exception_condition(_spec("a.b", "in", [["x"]]))
    with pytest.raises(et.ExceptionReadError, match="Value must be non-empty"):
        et.entry_of(["x", ""])


def test_resolve_list_replaces_delimited_names_even_inside_quotes() -> None:
    assert et.resolve_list("x in (my_list)", "my_list", ["a", "b c"]) == ('x in ( a, "b c" )', True)
    assert et.resolve_list('x = "a my_list b"', "my_list", ["q"]) == ('x = "a q b"', True)
    assert et.resolve_list("x = my_listy or my_list.z", "my_list", ["q"]) == ("x = my_listy or my_list.z", False)
    # an empty list takes one adjacent comma with it
    assert et.resolve_list("x in (a, my_list)", "my_list", []) == ("x in (a  )", True)
    assert et.resolve_list("x in (my_list, a)", "my_list", []) == ("x in (   a)", True)


def test_lists_inside_lists_expand_only_from_lists_defined_before() -> None:
    got = et.expand_lists([("a", ["1", "b"]), ("b", ["2"]), ("c", ["a", "b"])])
    assert got == {"a": ("1", "b"), "b": ("2",), "c": ("1", "b", "2")}


# ---------------------------------------------------------------------------------------------
# The compiler: Falco's verdicts on raw exception values


def _raw(values: list[Any], fields: list[str] | None = None, comps: list[str] | None = None) -> loader.LoadResult:
    entry: dict[str, Any] = {"name": "e", "fields": fields or ["proc.name", "k8s.ns.name"], "values": values}
    if comps:
        entry["comps"] = comps
    return _load(entry)


def test_an_injected_value_compiles_to_an_unpinned_or_branch_as_in_falco() -> None:
    result = _raw([['x" or proc.name exists or proc.name = "y', "team-a"]])
    assert result.valid
    ex = cond.parse(result.ruleset.rules["Shell"].compiled_condition)
    assert isinstance(ex, cond.And)
    last = ex.children[-1]
    assert isinstance(last, cond.Not) and isinstance(last.child, cond.Or)
    assert cond.Check(cond.FieldRef("proc.name"), "exists") in last.child.children


@pytest.mark.parametrize(
    ("values", "comps", "message"),
    [
        ([['"x', "team-a"]], None, "expected"),
        ([["(x", "team-a"]], ["in", "="], "expected"),
        ([["x", ")or(proc.name exists"]], ["=", "exists"], "expected a ')' token"),
        ([["shell_binaries", "team-a"]], None, "expected a ')' token"),
    ],
)
def test_values_that_break_the_built_condition_are_a_compile_error(values: Any, comps: Any, message: str) -> None:
    result = _raw(values, comps=comps)
    assert [d.code for d in result.errors] == ["LOAD_ERR_COMPILE_CONDITION"]
    assert message in result.errors[0].message
    assert "in the condition Falco builds from exception 'e'" in result.errors[0].message


def test_a_value_that_only_parses_with_the_rule_around_it_rewrites_the_rule_as_in_falco() -> None:
    # ``x))or((proc.name=y`` closes the exception's parentheses: only the whole built text parses, and
    # the rule then fires for proc.name = y whatever its own condition says (Falco warns: no evt.type).
    rule = {"rule": "R", "desc": "d", "condition": "evt.type = open", "output": "o", "priority": "DEBUG",
            "exceptions": [{"name": "e", "fields": ["proc.name"], "values": [["x))or((proc.name=y"]]}]}
    result = loader.load([RulesFile("r.yaml", yaml.safe_dump([rule]))])
    assert result.valid
    assert result.ruleset.rules["R"].compiled_condition == "evt.type = open and not proc.name = x or proc.name = y"
    assert [w.code for w in result.warnings] == ["LOAD_NO_EVTTYPE"]
    rule["exceptions"][0]["values"] = [["x))or((proc.nmae=y"]]  # type: ignore[index]
    result = loader.load([RulesFile("r.yaml", yaml.safe_dump([rule]))])
    assert [d.message for d in result.errors] == ["filter_check called with nonexistent field proc.nmae"]


def test_a_comma_inside_a_list_item_splits_it_and_a_one_item_list_name_is_pasted() -> None:
    node = _compiled_exception({"name": "e", "fields": ["proc.name"], "comps": ["in"], "values": [[["a,b"]]]})
    assert node == cond.Check(cond.FieldRef("proc.name"), "in", cond.ListValue((cond.Str("a"), cond.Str("b"))))
    node = _compiled_exception({"name": "e", "fields": ["proc.name"], "values": [["one_item"]]})
    assert node == cond.Check(cond.FieldRef("proc.name"), "=", cond.Str("sshd"))


def test_reader_and_collector_rules_on_exception_fields_and_values() -> None:
    arg = _raw([["x", "team-a"]], fields=["proc.name", "k8s.ns.name[x]"])
    assert [(d.code, d.message) for d in arg.errors] == [
        ("LOAD_ERR_VALIDATE", "Exception 'e': 'k8s.ns.name[x]' is not a supported filter field")
    ]
    empty = _raw([["", "team-a"]])
    assert [(d.code, d.message) for d in empty.errors] == [
        ("LOAD_ERR_YAML_VALIDATE", "Value must be non-empty (values of exception 'e')")
    ]


# ---------------------------------------------------------------------------------------------
# The policy side: the attack corpus


REFUSED = [
    # (match, path of the refusal, id)
    (_native("x shell_binaries y"), "spec.match.values[0][0]", "value-becomes-code"),
    (_native(""), "spec.match.values[0][0]", "empty-value"),
    (_native("a\nb"), "spec.match.values[0][0]", "control-character"),
    (_native("a\tb"), "spec.match.values[0][0]", "control-character"),
    (_native("5 or proc.name exists", field="proc.pid", comp="<"), "spec.match.values[0][0]", "value-becomes-code"),
    (ExceptionMatch(fields=("proc.name", "proc.pname"), comps=("=", "exists"), values=(("a", ")or(proc.name exists"),)),
     "spec.match.values[0][1]", "value-after-exists"),
    (ExceptionMatch(fields=("proc.name",), comps=("=",), values=((("a", "b"),),)),
     "spec.match.values[0][0]", "list-value-needs-list-comp"),
    (ExceptionMatch(fields=("proc.name = x or proc.name",), comps=("=",), values=(("a",),)),
     "spec.match.fields[0]", "exception-field-not-a-field"),
    (ExceptionMatch(fields=("proc.name",), comps=("= or proc.name =",), values=(("a",),)),
     "spec.match.comps[0]", "invalid-exception"),
    (ExceptionMatch(images=("ok", "")), "spec.match.images[1]", "empty-value"),
]


@pytest.mark.parametrize(("match", "path", "id_"), REFUSED)
def test_each_attack_that_cannot_stay_a_value_is_refused_with_its_field_path(
    match: ExceptionMatch, path: str, id_: str
) -> None:
    rendered = render_exception(_exc(match), NOW, 0, LISTS)
    assert rendered.entry is None
    assert (rendered.diagnostics[0].path, rendered.diagnostics[0].id) == (path, id_)


def test_a_refusal_says_what_falco_would_build() -> None:
    (d,) = check_exception(_exc(_native("x shell_binaries y")), LISTS).diagnostics
    assert d.message.startswith("Falco would build '( proc.name = \"x bash, sh y\")'")


CONFINED = [
    'x" or proc.name exists or proc.name = "y',
    '"x',
    '"x"',
    "'x' or proc.name exists or proc.name = 'y'",
    "x' or proc.name exists or proc.name = 'y",
    "x) or (proc.name exists",
    '"x") or proc.name exists or proc.name in ("y"',
    "a, b",
    "a,b",
    "shell_binaries",
    "one_item",
    "team-a",
    "and",
    "\u201cx\u201d or proc.name exists or proc.name = \u201cy\u201d",
    "\uff02x\uff02 or proc.name exists",
    "C:\\tmp\\x",
    'x\\" or proc.name exists or proc.name = \\"y',
    "x" * 65536,
]


@pytest.mark.parametrize("value", CONFINED, ids=lambda v: repr(v)[:40])
def test_each_injection_in_a_native_value_is_rendered_as_one_pinned_literal(value: str) -> None:
    rendered = render_exception(_exc(_native(value)), NOW, 0, LISTS)
    assert rendered.entry is not None, [d.one_line() for d in rendered.diagnostics]
    _assert_confined(rendered.entry, "proc.name", "=", [value], "team-a")


@pytest.mark.parametrize("value", CONFINED[:10], ids=lambda v: repr(v)[:40])
def test_each_injection_in_images_and_process_names_stays_one_list_item(value: str) -> None:
    for match, field in ((ExceptionMatch(images=(value,)), "container.image.repository"),
                         (ExceptionMatch(process_names=(value, "ok")), "proc.name")):
        rendered = render_exception(_exc(match), NOW, 0, LISTS)
        assert rendered.entry is not None, [d.one_line() for d in rendered.diagnostics]
        _assert_confined(rendered.entry, field, "in", [list(match.images or match.process_names)],
                         "team-a")


def test_a_cluster_exception_is_confined_without_a_pin() -> None:
    rendered = render_exception(_exc(_native('x" or proc.name exists or proc.name = "y'), namespace=""), NOW, 0, LISTS)
    assert rendered.entry is not None
    _assert_confined(rendered.entry, "proc.name", "=", ['x" or proc.name exists or proc.name = "y'], None)


def test_a_namespace_that_is_also_a_list_name_is_pinned_as_a_literal() -> None:
    # an admin list named like the tenant's namespace would otherwise turn the pin into team-b
    rendered = render_exception(_exc(_native("nginx")), NOW, 0, LISTS)
    assert rendered.entry is not None
    assert rendered.entry["values"] == [["nginx", '"team-a"']]
    _assert_confined(rendered.entry, "proc.name", "=", ["nginx"], "team-a")


def test_list_names_and_inline_lists_keep_their_documented_meaning_under_in() -> None:
    named = render_exception(_exc(_native("shell_binaries", comp="in")), NOW, 0, LISTS)
    assert named.entry is not None
    _assert_confined(named.entry, "proc.name", "in", [["bash", "sh"]], "team-a")
    inline = render_exception(_exc(_native('(a, "b c", shell_binaries)', comp="in")), NOW, 0, LISTS)
    assert inline.entry is not None
    _assert_confined(inline.entry, "proc.name", "in", [["a", "b c", "bash", "sh"]], "team-a")
    hostile = "(a) or proc.name exists or proc.name in (b)"
    stays = render_exception(_exc(_native(hostile, comp="in")), NOW, 0, LISTS)
    assert stays.entry is not None
    _assert_confined(stays.entry, "proc.name", "in", [[hostile]], "team-a")


def test_many_rows_each_stay_pinned() -> None:
    values = [f'v{i}" or proc.name exists or proc.name = "w' for i in range(256)]
    rendered = render_exception(_exc(_native(*values)), NOW, 0, LISTS)
    assert rendered.entry is not None
    _assert_confined(rendered.entry, "proc.name", "=", values, "team-a")


# ---------------------------------------------------------------------------------------------
# Property: refused, or exactly the intended confined shape

_PIECES = st.sampled_from(
    ['"', "'", "(", ")", ",", " ", "=", "\\", "or", "and", "not", "exists", "proc.name", "shell_binaries",
     "team-a", "one_item", "in", "x", "\u201c", "\t", "\n", "[", "]", "%", "-"]
)
_VALUES = st.lists(_PIECES, min_size=0, max_size=12).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(_VALUES, min_size=1, max_size=3), comp=st.sampled_from(["=", "startswith", "in"]))
def test_random_values_are_refused_or_compiled_exactly_as_intended(values: list[str], comp: str) -> None:
    rendered = render_exception(_exc(_native(*values, comp=comp)), NOW, 0, LISTS)
    if rendered.entry is None:
        assert rendered.diagnostics and all(d.severity == "error" for d in rendered.diagnostics)
        assert all(d.path.startswith("spec.match") for d in rendered.diagnostics)
        return
    rows = _rows(_compiled_exception(rendered.entry))
    assert len(rows) == len(values)
    for row in rows:
        terms = _terms(row)
        assert len(terms) == 2
        check, pin = terms
        assert isinstance(check, cond.Check) and check.lhs == cond.FieldRef("proc.name") and check.op == comp
        assert pin == cond.Check(cond.FieldRef("k8s.ns.name"), "=", cond.Str("team-a"))
    for row, value in zip(rows, values, strict=True):
        check = _terms(row)[0]
        assert isinstance(check, cond.Check)
        if comp != "in":
            assert check.value == cond.Str(value)


# ---------------------------------------------------------------------------------------------
# The layer


def test_the_layer_excludes_only_the_refused_object_and_reports_it_on_that_object() -> None:
    from padlock.policy.policy_objects import ManagedPolicyInput, PolicyRule

    upstream = loader.load([RulesFile("00-up.yaml", UPSTREAM)], plugins=PLUGINS).ruleset
    rule = upstream.rules["Shell"]
    policy = ManagedPolicyInput(
        "p", (PolicyRule(rule.name, rule.desc, rule.condition, rule.output, rule.priority),), enabled=True
    )
    good = _exc(_native("nginx"))
    bad = ExceptionInput(ObjectRef("PolicyException", "bad", "team-a"), good.policies, _native("x shell_binaries y"), "r")
    layer = build_layer(upstream, [policy], [], [good, bad], NOW)
    assert bad.ref in layer.invalid and good.ref not in layer.invalid
    owners = [s.owner for s in layer.sections]
    assert good.ref in owners and bad.ref not in owners
    assert [d.id for d in layer.diagnostics if d.ref == bad.ref] == ["value-becomes-code"]


def test_a_list_named_inside_an_exception_value_is_an_input_of_the_incremental_loader() -> None:
    # Falco substitutes the list inside the quoted value: a later override of that list must reach the
    # rule even when the rule comes from a prepared base (compiler.rule_inputs names the list).
    up = yaml.safe_dump([
        {"list": "tools", "items": ["curl"]},
        {"rule": "R", "desc": "d", "condition": "evt.type = execve", "output": "o", "priority": "DEBUG",
         "exceptions": [{"name": "e", "fields": ["proc.cmdline"], "comps": ["contains"], "values": [["run tools now"]]}]},
    ])
    base = loader.prepare([RulesFile("00-up.yaml", up)])
    assert base.result.ruleset.rules["R"].compiled_condition.endswith('"run curl now"')
    over = RulesFile("10-over.yaml", yaml.safe_dump([{"list": "tools", "items": ["wget"], "override": {"items": "replace"}}]))
    warm = loader.load([over], base=base).ruleset.rules["R"].compiled_condition
    cold = loader.load([RulesFile("00-up.yaml", up), over]).ruleset.rules["R"].compiled_condition
    assert warm == cold == 'evt.type = execve and not proc.cmdline contains "run wget now"'
    again = RulesFile("10-over.yaml", yaml.safe_dump([{"list": "tools", "items": ["nc"], "override": {"items": "replace"}}]))
    warm = loader.load([again], base=base).ruleset.rules["R"].compiled_condition
    assert warm == 'evt.type = execve and not proc.cmdline contains "run nc now"'


def test_the_layer_memo_renders_exceptions_again_when_the_upstream_lists_change() -> None:
    from padlock.policy.layer import LayerMemo
    from padlock.policy.policy_objects import ManagedPolicyInput, PolicyRule

    def upstream(extra: str) -> Any:
        return loader.load([RulesFile("00-up.yaml", UPSTREAM + extra)], plugins=PLUGINS).ruleset

    before, after = upstream(""), upstream("- list: nginx\n  items: [httpd]\n")
    rule = before.rules["Shell"]
    policy = ManagedPolicyInput(
        "p", (PolicyRule(rule.name, rule.desc, rule.condition, rule.output, rule.priority),), enabled=True
    )
    exc = _exc(_native("nginx"))
    memo = LayerMemo()

    def values(ruleset: Any) -> Any:
        layer = build_layer(ruleset, [policy], [], [exc], NOW, memo)
        (section,) = [s for s in layer.sections if s.owner == exc.ref]
        return section.items[0]["exceptions"][0]["values"]

    assert values(before) == [["nginx", '"team-a"']]
    # a list named nginx now exists: a bare nginx would be replaced by its items, so it is quoted
    assert values(after) == [['"nginx"', '"team-a"']]


def test_a_scope_namespace_that_is_also_a_list_name_stays_that_namespace() -> None:
    from padlock.policy.policy_objects import ManagedPolicyInput, PolicyRule, Scope

    upstream = loader.load([RulesFile("00-up.yaml", UPSTREAM)], plugins=PLUGINS).ruleset
    rule = upstream.rules["Shell"]
    policy = ManagedPolicyInput("p", (PolicyRule(rule.name, rule.desc, rule.condition, rule.output, rule.priority),),
                                enabled=True, scope=Scope(include=("team-a", "web")))
    layer = build_layer(upstream, [policy], [], [], NOW)
    (item,) = [i for s in layer.sections if s.owner is None for i in s.items if i["rule"] == "Shell"]
    assert item["condition"].endswith('(k8s.ns.name in ("team-a", web))')
    text = yaml.safe_dump([item])
    result = loader.load([RulesFile("00-up.yaml", UPSTREAM), RulesFile("99-layer.yaml", text)], plugins=PLUGINS)
    compiled = cond.parse(result.ruleset.rules["Shell"].compiled_condition)
    scope = cond.Check(cond.FieldRef("k8s.ns.name"), "in", cond.ListValue((cond.Str("team-a"), cond.Str("web"))))
    assert isinstance(compiled, cond.And) and compiled.children[-1] == scope
