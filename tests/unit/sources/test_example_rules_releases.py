"""The example rules releases in examples/rules/ tell the release story the end-to-end test relies on.

v1 and v2 load cleanly (with the container plugin, as upstream files need); v2 is v1 plus the rule
"Search GPG Private Keys" tagged mitre_credential_access; v3 fails on exactly one condition.
Loaded with the real rules core (``padlock.engine.loader``), as ``padlock validate`` does.
"""

from __future__ import annotations

from pathlib import Path

from padlock.engine import loader
from padlock.engine.model import RulesFile

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "rules"
NAME = "padlock_example_rules.yaml"
PLUGINS = {"container": "0.4.0"}


def load(version: str) -> loader.LoadResult:
    text = (EXAMPLES / version / NAME).read_text(encoding="utf-8")
    assert text.startswith("# SPDX-License-Identifier: Apache-2.0\n")
    return loader.load([RulesFile(NAME, text)], plugins=PLUGINS)


def test_v1_is_valid_and_has_the_story_rules() -> None:
    result = load("v1")
    assert result.valid, [d.one_line() for d in result.errors]
    assert not result.warnings
    rules = result.ruleset.rules
    assert 8 <= len(rules) <= 10
    assert rules["Terminal shell in container"].tags == (
        "maturity_stable", "container", "shell", "mitre_execution", "T1059"
    )  # fmt: skip
    credential = {name for name, rule in rules.items() if "mitre_credential_access" in rule.tags}
    assert {"Read sensitive file untrusted", "Search Private Keys or Passwords"} <= credential
    assert all(rule.tags[0] == "maturity_stable" for rule in rules.values())
    assert "Search GPG Private Keys" not in rules


def test_v2_is_v1_plus_the_gpg_rule() -> None:
    v1, v2 = load("v1").ruleset, load("v2")
    assert v2.valid, [d.one_line() for d in v2.errors]
    added = set(v2.ruleset.rules) - set(v1.rules)
    assert added == {"Search GPG Private Keys"}
    assert set(v1.rules) <= set(v2.ruleset.rules)
    assert all(v2.ruleset.rules[name].condition == v1.rules[name].condition for name in v1.rules)
    gpg = v2.ruleset.rules["Search GPG Private Keys"]
    assert gpg.tags == (
        "maturity_stable", "host", "container", "process", "filesystem", "mitre_credential_access", "T1552.001"
    )  # fmt: skip
    for evidence in ("--export-secret-keys", "private-keys-v1.d", "BEGIN PGP PRIVATE KEY BLOCK"):
        assert evidence in gpg.condition


def test_v3_fails_on_exactly_one_condition() -> None:
    result = load("v3")
    assert not result.valid
    assert [(d.item_name, d.code) for d in result.errors] == [
        ("Search GPG Private Keys", "LOAD_ERR_COMPILE_CONDITION")
    ]
