"""Parsing Falco alert JSON as Falco's http_output and falcosidekick's webhook post it.

Covers: the fields kept from a Falco json_output alert and a falcosidekick payload; priorities in any
case and the INFO alias; nanosecond times; newline-delimited batches; output_fields with missing,
null, numeric, boolean, object and "<NA>" values; Falco internal messages; refusals naming the line
and field (not JSON, not an object, missing rule, unknown priority, bad tags, bad time, non-object
output_fields); and the bounds (body size, alert count, nesting, field count).
"""

from __future__ import annotations

import json

import pytest

from padlock.policy.tuning.alerts import AlertError, Limits, canonical_priority, parse_body, parse_line
from support_alerts import SHELL, body, falco_alert, reload_failure, sidekick_alert


def test_a_falco_alert_keeps_rule_priority_host_time_and_the_match_fields() -> None:
    (alert,) = parse_body(body(falco_alert()))
    assert alert.rule == SHELL
    assert alert.priority == "NOTICE"
    assert alert.hostname == "node-1"
    assert alert.source == "syscall"
    assert alert.uuid == "5e2c1b6a-8f4d-4a3e-9c5e-0c1f7b2a9d10"
    assert alert.time is not None and alert.time.isoformat() == "2024-12-02T14:33:20.123456+00:00"
    assert dict(alert.fields) == {
        "k8s.ns.name": "shop", "container.image.repository": "docker.io/library/nginx", "container.name": "nginx",
        "proc.name": "bash", "proc.pname": "runc", "k8s.pod.name": "web-0",
    }
    assert "mitre_execution" in alert.tags


def test_a_falcosidekick_payload_parses_to_the_same_alert() -> None:
    (falco,) = parse_body(body(falco_alert()))
    (sidekick,) = parse_body(body(sidekick_alert()))
    assert (sidekick.rule, sidekick.priority, dict(sidekick.fields)) == (falco.rule, falco.priority, dict(falco.fields))
    assert sidekick.uuid is None


@pytest.mark.parametrize(("text", "expected"), [
    ("Warning", "WARNING"), ("warning", "WARNING"), ("INFO", "INFORMATIONAL"), ("Informational", "INFORMATIONAL"),
    ("Emergency", "EMERGENCY"), ("loud", None),
])
def test_priorities_are_read_in_any_case(text: str, expected: str | None) -> None:
    assert canonical_priority(text) == expected


def test_a_newline_delimited_batch_gives_one_alert_per_line_and_skips_blank_lines() -> None:
    data = body(falco_alert(proc="bash"), falco_alert(proc="sh")) + b"\n\n" + body(sidekick_alert(proc="zsh")) + b"\n"
    assert [a.get("proc.name") for a in parse_body(data)] == ["bash", "sh", "zsh"]


def test_missing_null_and_unusable_output_fields_are_left_out() -> None:
    alert = falco_alert(ns=None, container="<NA>", parent=None)
    del alert["output_fields"]["container.image.repository"]
    alert["output_fields"]["proc.name"] = {"nested": "object"}
    (parsed,) = parse_body(body(alert))
    assert dict(parsed.fields) == {"k8s.pod.name": "web-0"}


def test_numeric_and_boolean_field_values_become_text() -> None:
    (parsed,) = parse_body(body(falco_alert(proc=42, container=True)))  # type: ignore[arg-type]
    assert parsed.get("proc.name") == "42"
    assert parsed.get("container.name") == "true"


def test_an_alert_without_output_fields_tags_or_output_is_accepted() -> None:
    alert = falco_alert()
    for key in ("output_fields", "tags", "output", "uuid", "hostname", "source"):
        del alert[key]
    (parsed,) = parse_body(body(alert))
    assert (parsed.rule, parsed.fields, parsed.tags, parsed.source) == (SHELL, {}, (), "syscall")


def test_falco_internal_messages_are_marked_internal() -> None:
    (parsed,) = parse_body(body(reload_failure()))
    assert parsed.internal and parsed.priority == "CRITICAL" and parsed.hostname == "node-2"


@pytest.mark.parametrize(("data", "message"), [
    (b"not json", "line 1: not JSON"),
    (b"[1, 2]", "line 1: expected a JSON object (a Falco alert), got a list"),
    (b"", "empty body"),
    (json.dumps({"priority": "Notice"}).encode(), 'line 1: field "rule" is missing'),
    (json.dumps({"rule": 42, "priority": "Notice"}).encode(), 'line 1: field "rule": expected a non-empty string, got number 42'),
    (json.dumps({"rule": "r", "priority": "Loud"}).encode(), 'line 1: field "priority": \'Loud\' is not a Falco priority'),
    (json.dumps({"rule": "r", "priority": "Notice", "tags": "a"}).encode(), 'field "tags": expected a list of strings'),
    (json.dumps({"rule": "r", "priority": "Notice", "time": "yesterday"}).encode(), "'yesterday' is not an RFC 3339 time"),
    (json.dumps({"rule": "r", "priority": "Notice", "time": "2024-12-02T14:33:20"}).encode(), "has no time zone"),
    (json.dumps({"rule": "r", "priority": "Notice", "output_fields": [1]}).encode(), 'field "output_fields": expected an object, got a list'),
    (b"\xff\xfe", "body is not UTF-8"),
])
def test_bad_input_is_refused_with_a_message_naming_line_and_field(data: bytes, message: str) -> None:
    with pytest.raises(AlertError, match=None) as err:
        parse_body(data)
    assert message in str(err.value)


def test_one_bad_line_refuses_the_whole_batch_naming_that_line() -> None:
    data = body(falco_alert(), falco_alert()) + b"\n{broken"
    with pytest.raises(AlertError, match=r"^line 3: not JSON"):
        parse_body(data)


def test_bodies_over_the_size_or_count_limits_are_refused() -> None:
    limits = Limits(max_body_bytes=4096, max_alerts=2)
    with pytest.raises(AlertError, match="exceeds the limit of 4096 bytes"):
        parse_body(b" " * 4097, limits)
    small = {"rule": "r", "priority": "Notice"}
    with pytest.raises(AlertError, match="3 alerts in one request exceed the limit of 2"):
        parse_body(body(small, small, small), limits)


def test_deep_nesting_is_refused_without_recursion() -> None:
    deep = '{"rule": "r", "priority": "Notice", "output_fields": {"x": ' + "[" * 50 + "]" * 50 + "}}"
    with pytest.raises(AlertError, match="nested deeper than 8 levels"):
        parse_line(deep)
    very_deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(AlertError, match="line 1"):
        parse_line(very_deep)


def test_too_many_output_fields_are_refused() -> None:
    alert = {"rule": "r", "priority": "Notice", "output_fields": {f"f.{i}": i for i in range(600)}}
    with pytest.raises(AlertError, match="600 keys exceed the limit of 512"):
        parse_body(body(alert))
