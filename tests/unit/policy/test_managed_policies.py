"""Managed policies built from the catalog and upstream rulesets, and their change tracking.

Covers: tag/maturity selection with full rule text sorted by name; a new upstream rule with a
matching tag appears with no user action; the later RuleSource's definition wins; diff by name and
text; lastUpdated moves only on real change; bounded newest-first change list; counts respecting the
user's choices; a disabled rule that vanished upstream is reported.
"""

from __future__ import annotations

from datetime import timedelta

from policy_helpers import NOW, policy_rule, rule, ruleset

from padlock.policy import catalog
from padlock.policy.changes import MAX_CHANGES, diff_policy, next_status
from padlock.policy.managed import build_managed

SHELL = rule("Terminal shell in container", ("maturity_stable", "container", "mitre_execution", "T1059"))
KEYS = rule("Search Private Keys or Passwords", ("maturity_stable", "mitre_credential_access"))
AWS = rule("Find AWS Credentials", ("maturity_stable", "aws", "mitre_credential_access"))
EC2 = rule("Contact EC2 Instance Metadata Service From Container",
           ("maturity_incubating", "mitre_credential_access"))
GPG = rule("Search GPG Private Keys", ("maturity_stable", "host", "mitre_credential_access", "T1552.001"))


def _by_name(policies):
    return {p.name: p for p in policies}


def test_tactic_policy_holds_the_stable_rules_with_that_tag_sorted_with_full_text():
    built = _by_name(build_managed(catalog.builtin(), {"falco-rules": ruleset(SHELL, KEYS, AWS),
                                                       "incubating": ruleset(EC2)},
                                   {"falco-rules": "1.0.0", "incubating": "6.0.1"}))
    cred = built["credential-access"]
    assert [r.name for r in cred.rules] == ["Find AWS Credentials", "Search Private Keys or Passwords"]
    assert cred.rules[1] == policy_rule(KEYS)
    assert (cred.rule_source, cred.source_version) == ("falco-rules", "1.0.0")
    assert [r.name for r in built["incubating"].rules] == [EC2.name]
    assert (built["incubating"].rule_source, built["incubating"].source_version) == ("incubating", "6.0.1")
    spec = cred.to_spec()
    assert spec["catalog"] == {"name": "padlock-builtin", "version": "2.0.0", "policy": "credential-access"}
    assert spec["source"] == {"ruleSource": "falco-rules", "version": "1.0.0"}
    assert spec["rules"][0]["tags"] == ["maturity_stable", "aws", "mitre_credential_access"]
    assert set(spec) == {"displayName", "description", "catalog", "source", "defaultEnabled", "rules"}


def test_new_tagged_upstream_rule_appears_in_the_credential_access_policy():
    cat = catalog.builtin()
    v1 = _by_name(build_managed(cat, {"falco-rules": ruleset(SHELL, KEYS)}, {"falco-rules": "1.0.0"}))
    v2 = _by_name(build_managed(cat, {"falco-rules": ruleset(SHELL, KEYS, GPG)}, {"falco-rules": "2.0.0"}))
    assert GPG.name not in [r.name for r in v1["credential-access"].rules]
    assert GPG.name in [r.name for r in v2["credential-access"].rules]
    assert [r.name for r in v2["execution"].rules] == [SHELL.name]


def test_rule_redefined_by_a_later_source_carries_the_later_text():
    later = rule(KEYS.name, KEYS.tags, condition="evt.type = execve")
    built = _by_name(build_managed(catalog.builtin(), {"a": ruleset(KEYS), "b": ruleset(later)},
                                   {"a": "1", "b": "2"}))
    assert built["credential-access"].rules[0].condition == "evt.type = execve"
    assert built["credential-access"].rule_source == "b"


def test_build_is_deterministic_and_every_catalog_policy_exists_even_when_empty():
    args = (catalog.builtin(), {"falco-rules": ruleset(KEYS, SHELL, AWS)}, {"falco-rules": "1.0.0"})
    first, second = build_managed(*args), build_managed(*args)
    assert first == second
    assert [p.name for p in first] == [p.name for p in catalog.builtin().policies]
    assert _by_name(first)["exfiltration"].rules == ()


def test_diff_policy_by_name_and_text():
    changed = policy_rule(rule(KEYS.name, KEYS.tags, priority="CRITICAL"))
    d = diff_policy([policy_rule(SHELL), policy_rule(KEYS)], [changed, policy_rule(GPG)])
    assert (d.added, d.removed, d.modified) == ((GPG.name,), (SHELL.name,), (KEYS.name,))


def _status(old, old_rules, new_rules, now, **kw):
    args = {"default_enabled": True, "enabled": None, "disabled_rules": (), "from_version": "1.0.0",
            "to_version": "2.0.0"} | kw
    return next_status(old, old_rules, new_rules, now=now, **args)


def test_last_updated_moves_only_when_rules_change_and_change_list_names_the_new_rule():
    v1 = [policy_rule(KEYS), policy_rule(AWS)]
    first = _status(None, (), v1, NOW, from_version=None, to_version="1.0.0")
    assert first.last_updated == NOW and first.changes[0].added == (AWS.name, KEYS.name)
    later = NOW + timedelta(days=3)
    same = _status(first, v1, v1, later, from_version="1.0.0", to_version="1.0.1")
    assert same.last_updated == NOW and same.changes == first.changes and same.source_version == "1.0.1"
    v2 = [*v1, policy_rule(GPG)]
    moved = _status(same, v1, v2, later)
    assert moved.last_updated == later
    assert moved.changes[0].added == (GPG.name,) and moved.changes[0].to_version == "2.0.0"
    assert moved.changes[1] == first.changes[0]
    assert moved.to_dict()["changes"][0] == {"time": "2026-05-04T12:00:00Z", "fromVersion": "1.0.0",
                                             "toVersion": "2.0.0", "added": [GPG.name], "removed": [],
                                             "modified": []}


def test_change_list_is_bounded_newest_first():
    status, rules_now = None, []
    for i in range(MAX_CHANGES + 5):
        new = [*rules_now, policy_rule(rule(f"r{i:02d}", ("maturity_stable",)))]
        status = _status(status, rules_now, new, NOW + timedelta(hours=i), to_version=str(i))
        rules_now = new
    assert len(status.changes) == MAX_CHANGES
    assert status.changes[0].added == (f"r{MAX_CHANGES + 4:02d}",)


def test_counts_respect_user_choices_and_vanished_disabled_rule_is_reported():
    rules_v2 = [policy_rule(KEYS), policy_rule(GPG)]
    st = _status(None, (), rules_v2, NOW, disabled_rules=("Find AWS Credentials", KEYS.name))
    assert (st.rule_count, st.enabled_rule_count) == (2, 1)
    assert st.missing_disabled_rules == ("Find AWS Credentials",)
    off = _status(None, (), rules_v2, NOW, enabled=False)
    assert (off.enabled, off.enabled_rule_count) == (False, 0)
    default_off = _status(None, (), rules_v2, NOW, default_enabled=False)
    assert default_off.enabled is False


def test_status_round_trips_through_its_dict_form():
    st = _status(None, (), [policy_rule(KEYS)], NOW, disabled_rules=("gone",))
    from padlock.policy.changes import PolicyStatus

    assert PolicyStatus.from_dict(st.to_dict()) == st
