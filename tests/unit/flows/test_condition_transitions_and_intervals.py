"""Conditions keep their lastTransitionTime while their status holds (no status flapping), carry
observedGeneration; RuleSource intervals parse Go durations and reject anything else by field name."""

from __future__ import annotations

import datetime as dt

import pytest

from padlock.flows import conditions
from padlock.flows.conditions import Cond
from padlock.flows.durations import DurationError, parse_duration

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(hours=1)


def test_transition_time_moves_only_when_status_changes():
    first = conditions.merge([], [Cond("Ready", True, "Adopted", "v1")], generation=1, now=T0)
    same = conditions.merge(first, [Cond("Ready", True, "Adopted", "v2 now")], generation=2, now=T1)
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[0]["observedGeneration"] == 2 and same[0]["message"] == "v2 now"
    flipped = conditions.merge(same, [Cond("Ready", False, "ValidationFailed", "bad")], generation=2, now=T1)
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T01:00:00Z" and flipped[0]["status"] == "False"


def test_conditions_are_ordered_and_undecided_types_kept():
    merged = conditions.merge([{"type": "Degraded", "status": "False"}],
                              [Cond("UpToDate", None, "SourceUnavailable"), Cond("Ready", True, "Adopted")],
                              generation=1, now=T0)
    assert [c["type"] for c in merged] == ["Ready", "UpToDate", "Degraded"]
    assert merged[1]["status"] == "Unknown"


@pytest.mark.parametrize(("text", "seconds"), [("1h", 3600), ("90s", 90), ("1h30m", 5400), ("500ms", 0.5), ("2s", 2)])
def test_durations_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "1x", "-1s", "0s", "1h 30m"])
def test_bad_durations_name_the_field(text):
    with pytest.raises(DurationError, match=r"spec\.interval"):
        parse_duration(text)
