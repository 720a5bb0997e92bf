"""``padlock policies`` rows and table: the padlock mark only on managed policies, enabled/total rule
counts, source version, and "N days ago" computed from the passed ``now``."""

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
    assert lines[0].split() == ["NAME", "ENABLED", "RULES", "SOURCE", "VERSION", "UPDATED"]
    assert lines[1].split() == [LOCK, "credential-access", "true", "3/4", "1.1.0", "14", "days", "ago"]
    assert lines[2].split() == ["mine", "false", "0/2", "-", "1", "day", "ago"]
