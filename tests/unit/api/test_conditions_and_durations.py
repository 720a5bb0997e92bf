"""Helpers in padlock.api.common: condition upsert with Kubernetes transition semantics, durations.

Covers: lastTransitionTime kept when status is unchanged and moved when it changes; other
conditions and their order kept; Go-style durations parsed; bad durations named in the error.
"""

from __future__ import annotations

import datetime as dt

import pytest

from padlock.api.common import Condition, find_condition, parse_duration, set_condition

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(hours=1)


def _c(type_: str, status: str, at: dt.datetime, reason: str = "R", message: str = "") -> Condition:
    return Condition.model_validate(
        {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": at}
    )


def test_same_status_keeps_the_transition_time_but_takes_the_new_message() -> None:
    out = set_condition([_c("Ready", "True", T0, message="old")], _c("Ready", "True", T1, message="new"))
    assert out == [_c("Ready", "True", T0, message="new")]


def test_changed_status_moves_the_transition_time() -> None:
    out = set_condition([_c("Ready", "True", T0)], _c("Ready", "False", T1, reason="ValidationFailed"))
    assert out == [_c("Ready", "False", T1, reason="ValidationFailed")]


def test_other_conditions_and_order_are_kept_and_new_types_appended() -> None:
    start = [_c("Ready", "True", T0), _c("UpToDate", "True", T0)]
    out = set_condition(start, _c("Degraded", "False", T1))
    assert [c.type for c in out] == ["Ready", "UpToDate", "Degraded"]
    assert find_condition(out, "UpToDate") == start[1]
    assert find_condition(out, "Stalled") is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600), ("30m", 1800), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), ("500ms", 0.5)],
)
def test_go_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "1d", "-1h", "1 h"])
def test_bad_durations_are_named(text: str) -> None:
    with pytest.raises(ValueError, match=f"invalid duration {text!r}"):
        parse_duration(text)
