"""``padlock policies`` rows and table: the padlock mark only on managed policies, running/total rule
counts, source version, "N days ago" computed from the passed ``now``, and rules switched off in a
policy that another policy still runs, flagged and named with who runs them."""

from __future__ import annotations

import datetime as dt

from padlock.cli.policies import LOCK, ago, rows, table

NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)


def test_ago_reads_like_a_person():
    assert ago("2026-01-01T12:00:00Z", NOW) == "14 days ago"
    assert ago("2026-01-15T11:59:58Z", NOW) == "just now"
    assert ago("2026-01-15T11:00:00Z", NOW) == "1 hour ago"
    assert ago(None, NOW) == "-" and ago("yesterday", NOW) == "-"


def test_table_marks_managed_policies_and_counts_rules():
    managed = [{"metadata": {"name": "credential-access"}, "spec": {"defaultEnabled": True},
                "status": {"enabled": True, "ruleCount": 4, "enabledRuleCount": 3, "sourceVersion": "1.1.0",
                           "lastUpdated": "2026-01-01T12:00:00Z"}}]
    custom = [{"metadata": {"name": "mine", "creationTimestamp": "2026-01-14T12:00:00Z"},
               "spec": {"enabled": False}, "status": {"ruleCount": 2}}]
    lines = table(rows(managed, custom, NOW)).splitlines()
    assert lines[0].split() == ["NAME", "ENABLED", "RUNNING", "SOURCE", "VERSION", "UPDATED", "STILL", "RUN"]
    assert lines[1].split() == [LOCK, "credential-access", "true", "3/4", "1.1.0", "14", "days", "ago"]
    assert lines[2].split() == ["mine", "false", "0/2", "-", "1", "day", "ago"]


def test_a_disabled_rule_another_policy_still_runs_is_flagged_and_named():
    managed = [{"metadata": {"name": "credential-access"}, "spec": {"defaultEnabled": True, "disabledRules": ["K"]},
                "status": {"enabled": True, "ruleCount": 3, "enabledRuleCount": 2, "runningRuleCount": 3,
                           "stillRunning": [{"rule": "K", "runBy": ["custompolicy/my-credential-access"]}]}}]
    items = rows(managed, [], NOW)
    assert items[0]["runningRules"] == 3 and items[0]["stillRunning"] == [
        {"rule": "K", "runBy": ["custompolicy/my-credential-access"]}]
    lines = table(items).splitlines()
    assert lines[1].split() == [LOCK, "credential-access", "true", "3/3", "-", "-", "1", "!"]
    assert lines[-1] == ('! managedpolicy/credential-access: "K" is switched off here but still runs, '
                         "run by custompolicy/my-credential-access")
