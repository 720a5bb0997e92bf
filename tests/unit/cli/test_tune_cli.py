"""``padlock tune`` without a cluster: --from-file, --expires parsing, and the exception accept creates.

Covers: a Falco JSON log with a Falco log line in it gives one suggestion per noisy workload (table,
json, and yaml printing valid PolicyExceptions whose policies come from the catalog by the alerts'
tags, or from --policy); the skipped line is reported; an unreadable file exits 2; --expires takes
durations and RFC 3339 times and refuses past or zone-less times; accepting copies the proposed
exception with the user's reason and expiry and the suggestion label.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from padlock.api import PolicyException
from padlock.cli.tune import command, exception_body, expires_at
from support_alerts import falco_alert

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "alerts.jsonl"
    lines = ["Mon Dec  2 14:00:00 2024: Falco initialized with configuration files:"]
    for i in range(30):
        alert = falco_alert(proc="bash" if i % 2 else "sh")
        alert["time"] = f"2024-12-02T14:{i:02d}:00.123456789Z"
        lines.append(json.dumps(alert))
    lines += [json.dumps(falco_alert(image="docker.io/library/redis", container="redis"))] * 3
    path.write_text("\n".join(lines) + "\n")
    return path


def test_from_file_prints_the_noisy_workload_and_reports_skipped_lines(log: Path) -> None:
    result = CliRunner().invoke(command, ["--from-file", str(log)])
    assert result.exit_code == 0, result.output
    assert "terminal-shell-in-container-nginx-" in result.stdout
    assert "redis" not in result.stdout
    assert "skipped line 1: not JSON" in result.stderr
    assert "33 alerts, 1 suggestions" in result.stderr


def test_from_file_json_gives_hits_and_the_exception(log: Path) -> None:
    result = CliRunner().invoke(command, ["--from-file", str(log), "-o", "json", "--min-hits", "3", "--min-share", "0"])
    rows = json.loads(result.stdout)
    assert sorted((r["workload"].split(",")[0], r["hits"]) for r in rows) == [
        ("image docker.io/library/nginx", 30), ("image docker.io/library/redis", 3)]


def test_from_file_yaml_prints_valid_exceptions_for_the_catalog_policies(log: Path) -> None:
    result = CliRunner().invoke(command, ["--from-file", str(log), "-o", "yaml"])
    (doc,) = list(yaml.safe_load_all(result.stdout))
    exc = PolicyException.model_validate(doc)
    assert exc.metadata.namespace == "shop"
    assert {p.name for p in exc.spec.policies} == {"execution"}  # the rule's one owner in the catalog
    chosen = CliRunner().invoke(command, ["--from-file", str(log), "-o", "yaml", "--policy", "CustomPolicy/mine"])
    (doc,) = list(yaml.safe_load_all(chosen.stdout))
    assert doc["spec"]["policies"] == [{"kind": "CustomPolicy", "name": "mine", "rules": ["Terminal shell in container"]}]


def test_an_unreadable_file_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(command, ["--from-file", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2 and "No such file" in result.stderr


@pytest.mark.parametrize(("text", "expected"), [
    ("30d", NOW + dt.timedelta(days=30)), ("12h", NOW + dt.timedelta(hours=12)),
    ("2w", NOW + dt.timedelta(weeks=2)), ("2026-02-01T00:00:00Z", dt.datetime(2026, 2, 1, tzinfo=dt.UTC)),
])
def test_expires_takes_durations_and_times(text: str, expected: dt.datetime) -> None:
    assert expires_at(text, NOW) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("soon", "expected a duration"), ("2025-01-01T00:00:00Z", "not in the future"), ("2026-03-01T00:00:00", "time zone"),
])
def test_expires_refuses_what_it_cannot_use(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expires_at(text, NOW)


def test_accepting_copies_the_proposed_exception_with_reason_expiry_and_label() -> None:
    example = yaml.safe_load((Path(__file__).resolve().parents[3] / "examples" / "tuningsuggestion-nginx-shell.yaml").read_text())
    body = exception_body(example, reason="TICKET-42 nginx debug shell", expires=NOW + dt.timedelta(days=30))
    exc = PolicyException.model_validate(body)
    assert exc.metadata.name == example["spec"]["exception"]["name"] and exc.metadata.namespace == "shop"
    assert exc.metadata.labels == {"padlock.dev/suggestion": example["metadata"]["name"]}
    assert exc.spec.reason == "TICKET-42 nginx debug shell"
    assert body["spec"]["expiresAt"] == "2026-02-01T03:04:05Z"
    assert body["spec"]["match"] == example["spec"]["exception"]["spec"]["match"]
