"""``padlock operator --tuner-*`` flags (padlock.cli.tuner_flags) and what they build.

Covers: no --tuner-port, no tuner; the token is read from its file (stripped), never taken from a
flag; an empty or unreadable token file and a tuner without any authentication are usage errors
naming the flag; thresholds, untunable rules and samples reach the tuner's config; the service name
puts the Service's DNS names into the certificate's names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest

from padlock.cli.tuner_flags import build, tuner_options


def values(**overrides: Any) -> dict[str, Any]:
    captured: dict[str, Any] = {}

    @click.command()
    @tuner_options
    def cmd(**kwargs: Any) -> None:
        captured.update(kwargs)

    cmd.main([], standalone_mode=False)
    return {**captured, **overrides}


def test_without_a_port_there_is_no_tuner() -> None:
    assert build(values()) is None


def test_the_token_comes_from_its_file_and_settings_reach_the_tuner(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("  abc123\n")
    flags = build(values(tuner_port=8443, tuner_token_file=str(token), tuner_min_hits=7, tuner_min_share=0.25,
                         tuner_window="30m", tuner_untunable_rules=("Read sensitive file untrusted",),
                         tuner_samples=False, tuner_service="padlock-tuner", tuner_namespace="ops"))
    assert flags.intake.token == "abc123" and flags.intake.port == 8443
    assert (flags.config.min_hits, flags.config.min_share, flags.config.window) == (7, 0.25, 1800.0)
    assert flags.config.untunable_rules == frozenset({"Read sensitive file untrusted"})
    assert flags.config.samples == 0 and flags.samples is False
    assert "padlock-tuner.ops.svc" in flags.intake.sans and flags.cluster_namespace == "ops"


def test_missing_authentication_and_bad_token_files_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(click.BadParameter, match="needs a bearer token"):
        build(values(tuner_port=8443))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(click.BadParameter, match="is empty"):
        build(values(tuner_port=8443, tuner_token_file=str(empty)))
    with pytest.raises(click.BadParameter, match="No such file"):
        build(values(tuner_port=8443, tuner_token_file=str(tmp_path / "missing")))
