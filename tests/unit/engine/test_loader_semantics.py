"""Loader semantics, Falco's way: redefinition, override append/replace, visibility, list substitution,
exceptions compiled into the condition, engine and plugin requirements.

Each test loads short inline YAML and asserts the resulting ruleset or compiled condition. Ends with
hypothesis feeding arbitrary text to the loader: diagnostics only, never an exception.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from padlock.engine import condition, loader
from padlock.engine.model import RulesFile

RULE = """
- rule: r
  desc: first
  condition: evt.type = execve and proc.name = bash
  output: shell %proc.name
  priority: warning
  tags: [a, b]
"""


def load(*texts: str, **kw: object) -> loader.LoadResult:
    files = [RulesFile(f"f{i}.yaml", t) for i, t in enumerate(texts)]
    return loader.load(files, **kw)  # type: ignore[arg-type]


def test_redefinition_replaces_the_item_but_keeps_its_position() -> None:
    res = load(
        "- list: a\n  items: [1]\n- list: b\n  items: [2]\n",
        "- list: a\n  items: [3, x]\n",
    )
    assert list(res.ruleset.lists) == ["a", "b"]
    assert res.ruleset.lists["a"].items == ("3", "x")
    assert (res.ruleset.lists["a"].file, res.ruleset.lists["a"].line) == ("f0.yaml", 1)


def test_priority_is_canonical_upper_case_and_info_is_informational() -> None:
    res = load(RULE, "- rule: r\n  priority: info\n  override: {priority: replace}\n")
    assert res.valid, res.errors
    assert res.ruleset.rules["r"].priority == "INFORMATIONAL"
    assert load(RULE).ruleset.rules["r"].priority == "WARNING"


def test_override_appends_and_replaces_per_key() -> None:
    res = load(
        RULE,
        """
- rule: r
  condition: and not proc.pname = sshd
  desc: second
  tags: [b, c]
  output: "(replaced %proc.pname)"
  override: {condition: append, desc: append, tags: append, output: replace}
""",
    )
    assert res.valid, res.errors
    r = res.ruleset.rules["r"]
    assert r.condition == "evt.type = execve and proc.name = bash and not proc.pname = sshd"
    assert r.desc == "first second"
    assert r.tags == ("a", "b", "c")
    assert r.output == "(replaced %proc.pname)"


def test_enabled_replace_disables_a_rule_that_is_still_compiled() -> None:
    res = load(RULE, "- rule: r\n  enabled: false\n  override: {enabled: replace}\n")
    assert res.valid
    assert res.ruleset.rules["r"].enabled is False
    broken = load(RULE.replace("proc.name = bash", "proc.nmae = bash") + "  enabled: false\n")
    assert not broken.valid  # a disabled rule with a bad field still breaks the load (Falco compiles it)


def test_list_inside_list_expands_only_earlier_lists() -> None:
    res = load(
        """
- list: early
  items: [bash]
- list: combined
  items: [early, later, zsh]
- list: later
  items: [sh]
- rule: r
  desc: d
  condition: evt.type = execve and proc.name in (combined)
  output: o
  priority: INFO
""",
    )
    assert res.valid, res.errors
    tree = condition.parse(res.ruleset.rules["r"].condition)
    assert condition.render(tree) == "evt.type = execve and proc.name in (combined)"
    # 'later' is defined after 'combined', so 'combined' keeps it as a word; but Falco then pastes the
    # lists into the condition text in definition order, and 'later' is pasted over that word: used.
    unused = {d.item_name for d in res.warnings if d.id == "unused-list"}
    assert unused == set()


def test_rule_may_use_a_macro_defined_later_but_a_macro_may_not() -> None:
    ok = load(
        "- rule: r\n  desc: d\n  condition: later_macro\n  output: o\n  priority: INFO\n"
        "- macro: later_macro\n  condition: evt.type = open\n"
    )
    assert ok.valid, ok.errors
    bad = load(
        "- macro: m\n  condition: later_macro\n- macro: later_macro\n  condition: evt.type = open\n"
        "- rule: r\n  desc: d\n  condition: m\n  output: o\n  priority: INFO\n"
    )
    assert [d.id for d in bad.errors] == ["undefined-macro"]


def test_exceptions_are_compiled_as_and_not() -> None:
    res = load(
        RULE
        + """  exceptions:
  - name: tools
    fields: [proc.pname, fd.name]
    comps: [=, startswith]
    values: [[sshd, /tmp/a b], [cron, /var]]
  - name: names
    fields: proc.pname
    values: [make, known_parents]
- list: known_parents
  items: [ninja]
""",
    )
    assert res.valid, res.errors
    compiled = res.ruleset.rules["r"].compiled_condition
    assert compiled == (
        '(evt.type = execve and proc.name = bash) and not (proc.pname = sshd and fd.name startswith "/tmp/a b" '
        "or proc.pname = cron and fd.name startswith /var) and not proc.pname in (make, ninja)"
    )
    assert condition.parse(compiled)  # what Falco compiles parses
    assert res.ruleset.rules["r"].exceptions[0].values == (("sshd", "/tmp/a b"), ("cron", "/var"))


def test_exception_values_are_appended_by_name() -> None:
    res = load(
        RULE + "  exceptions:\n  - {name: tools, fields: [proc.pname], values: [[sshd]]}\n",
        "- rule: r\n  exceptions:\n  - {name: tools, values: [[cron]]}\n  override: {exceptions: append}\n",
    )
    assert res.valid, res.errors
    assert res.ruleset.rules["r"].exceptions[0].values == (("sshd",), ("cron",))


def test_highest_engine_requirement_wins_and_integers_mean_0_n_0() -> None:
    res = load("- required_engine_version: 26\n", "- required_engine_version: 0.31.0\n")
    assert res.ruleset.required_engine_version == "0.31.0"
    assert load("- required_engine_version: 15\n").ruleset.required_engine_version == "0.15.0"


def test_plugin_requirement_needs_same_major_and_newer() -> None:
    text = "- required_plugin_versions:\n  - {name: container, version: 0.4.0}\n"
    assert load(text, plugins={"container": "0.5.1"}).valid
    assert not load(text, plugins={"container": "1.0.0"}).valid
    assert not load(text, plugins={"container": "0.3.9"}).valid


def test_later_file_can_fix_an_earlier_macro_for_every_rule() -> None:
    res = load(
        "- macro: tuned\n  condition: (evt.num=0)\n"
        "- rule: r\n  desc: d\n  condition: evt.type = open and not tuned\n  output: o\n  priority: INFO\n",
        "- macro: tuned\n  condition: proc.name = make\n  override: {condition: replace}\n",
    )
    assert res.valid, res.errors
    assert res.ruleset.macros["tuned"].condition == "proc.name = make"


_YAMLISH = st.sampled_from(
    ["- ", "rule: ", "macro: ", "list: ", "items: ", "condition: ", "override:", "append: true", "\n", "  ",
     "[", "]", "{", "}", ":", "x", "proc.name = a", "evt.type in (open)", "exceptions:", "- name: e",
     "priority: ", "INFO", "desc: d", "output: o", "fields: ", "values: ", "1", "&a", "*a", "!!int ", "'", '"']
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_YAMLISH, max_size=40).map("".join))
def test_arbitrary_files_give_diagnostics_never_exceptions(text: str) -> None:
    res = load(text)
    for d in res.errors + res.warnings:
        assert d.message and d.code.startswith("LOAD_")
    assert res.valid == (not res.errors)


def test_rules_falco_drops_are_not_in_the_ruleset_that_runs() -> None:
    res = load(
        """
- rule: audit
  desc: d
  condition: ka.verb = create
  output: o
  priority: INFO
  source: k8s_audit
- rule: skipped
  desc: d
  condition: evt.type = execve and proc.nmae = x
  output: o
  priority: INFO
  skip-if-unknown-filter: true
- rule: kept
  desc: d
  condition: evt.type = execve
  output: o
  priority: INFO
""",
    )
    assert res.valid, res.errors
    assert list(res.ruleset.rules) == ["kept"]  # as falco -L lists them
