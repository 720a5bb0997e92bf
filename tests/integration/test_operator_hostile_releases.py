"""Hostile releases pushed through the real operator (real OCI registry, real API server).

One operator follows one RuleSource; v1 is adopted, then each hostile release of issue 11 is pushed
as the next version: 100k nested ``[`` (the C parser's stack overflow), 1,000 nested ``[``, a chain
of 3,000 macros (RecursionError), a billion-laughs alias bomb, 40 doubling alias levels, a condition
starting with a 100k-letter identifier and a 200k-letter macro name (quadratic regexes), and a list
of 300k unknown event types (over the condition length limit). For each: the RuleSource says ``Ready=False`` with a message naming
the version once, the problem and the kept version; exactly one ReleaseRefused Event names it; the
operator process is alive and ``/healthz`` answered every poll while it decided; the published
ConfigMap is byte-identical (same data, same resourceVersion). A release carrying the crash-only mark
of three deaths is refused without being tried. Finally a good release is adopted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from padlock.devenv import artifacts
from support_operator import RULES, RunningOperator, running_operator, wait_for

SOURCE = "hostile"


def billion_laughs() -> str:
    lines = ['- &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, prev in zip("bcdefghi", "abcdefgh", strict=True):
        lines.append(f"- &{i} [{','.join([f'*{prev}'] * 9)}]")
    return "\n".join(lines) + "\n"


def doubling() -> str:
    return "- &l0 [x, x]\n" + "".join(f"- &l{i} [*l{i - 1}, *l{i - 1}]\n" for i in range(1, 40))


def macro_chain(n: int = 3000) -> str:
    text = "- macro: m0\n  condition: evt.type = open\n"
    text += "".join(f"- macro: m{i}\n  condition: m{i - 1} and proc.name = x\n" for i in range(1, n))
    return text + rule(f"m{n - 1}")


def rule(condition: str) -> str:
    return f"- rule: r\n  desc: d\n  output: o\n  priority: INFO\n  condition: {condition}\n"


HOSTILE: list[tuple[str, str, str]] = [
    ("1.1.0", "[" * 100_000, "nests deeper than 64 levels"),
    ("1.2.0", "[" * 1000 + "]" * 1000, "nests deeper than 64 levels"),
    ("1.3.0", macro_chain(), "Macro nesting is deeper than 300 levels"),
    ("1.4.0", billion_laughs(), "nodes once aliases are expanded"),
    ("1.5.0", doubling(), "nodes once aliases are expanded"),
    ("1.6.0", rule("a" * 100_000 + " = 1"), "is longer than 1024 characters"),
    ("1.7.0", f"- macro: {'m' * 200_000}-\n  condition: evt.type = open\n", "name is longer than 1024 characters"),
    # ~410k characters: over the condition limit, under what one ConfigMap holds (else no-room first)
    ("1.8.0", rule("evt.type in (" + ",".join(f"z{i}" for i in range(60_000)) + ")"),
     "characters long, over the limit of 262144"),
]


@pytest.fixture(scope="module")
def hostile(control_plane: Any, kubectl: Any, registry: str, crds_installed: list[str], operator_rbac: Any,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOperator]:
    workdir = tmp_path_factory.mktemp("operator-hostile")
    with running_operator(control_plane, kubectl, registry, workdir, source=SOURCE) as running:
        wait_for("v1 adopted", lambda: (running.user.status("rulesource", SOURCE).get("currentVersion") == "1.0.0"
                                        and running.user.configmap()))
        yield running


def refusal_events(running: RunningOperator, version: str) -> list[dict[str, Any]]:
    out = running.user.kubectl("get", "events", "-n", "default", "--field-selector",
                               f"involvedObject.name={SOURCE},reason=ReleaseRefused", "-o", "json").stdout
    return [e for e in json.loads(out)["items"] if f"version {version} " in e.get("message", "")]


@pytest.mark.parametrize("version, text, problem", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_release_is_refused_with_one_event_while_the_operator_stays_healthy(
        hostile: RunningOperator, version: str, text: str, problem: str) -> None:
    user, op = hostile.user, hostile.op
    before = user.configmap()
    assert before is not None
    artifacts.push_rules_artifact(hostile.registry, hostile.repository, version, {"falco_rules.yaml": text},
                                  engine_version="0.26.0")
    health: list[int] = []

    def refused() -> dict[str, Any] | None:
        health.append(op._get("/healthz")[0])
        c = user.condition("Ready", "rulesource", SOURCE)
        return c if c and c["status"] == "False" and f"version {version} " in c["message"] else None

    ready = wait_for(f"RuleSource refusing {version}", refused, timeout=180)
    assert op.proc is not None and op.proc.poll() is None, op.tail()
    assert health and set(health) == {200}, health
    assert problem in ready["message"], ready["message"]
    assert "keeping version 1.0.0" in ready["message"]
    assert ready["message"].count(f"RuleSource {SOURCE}") == 1
    assert len(ready["message"]) < 2000
    events = wait_for(f"a ReleaseRefused Event for {version}", lambda: refusal_events(hostile, version))
    assert len(events) == 1 and events[0].get("count") in (None, 1), events
    after = user.configmap()
    assert after is not None
    assert after["data"] == before["data"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert user.status("rulesource", SOURCE)["currentVersion"] == "1.0.0"


def test_a_release_the_operator_died_on_three_times_is_refused_without_trying_it(hostile: RunningOperator) -> None:
    """Crash-only: the ``padlock.dev/validating`` mark left by three deaths on a release refuses it."""
    user = hostile.user
    files = {p.name: p.read_text() for p in sorted((RULES / "v2").glob("*.yaml"))}
    pushed = artifacts.push_rules_artifact(hostile.registry, hostile.repository, "1.8.5", files, floating_tags=False)
    user.kubectl("annotate", "rulesource", SOURCE, "--overwrite", f"padlock.dev/validating={pushed.digest} 3")
    user.kubectl("patch", "rulesource", SOURCE, "--type=merge", "-p", '{"spec":{"oci":{"tag":"1.8.5"}}}')
    try:
        ready = wait_for("the poisoned release refused", lambda: (
            (c := user.condition("Ready", "rulesource", SOURCE)) and c["reason"] == "ReleaseCrashedOperator" and c))
        assert "version 1.8.5" in ready["message"] and "stopped 3 times while validating it" in ready["message"]
        assert user.status("rulesource", SOURCE)["currentVersion"] == "1.0.0"
        assert hostile.op.proc is not None and hostile.op.proc.poll() is None
        wait_for("the mark removed after the verdict", lambda: "padlock.dev/validating" not in (
            ((user.get("rulesource", SOURCE) or {}).get("metadata") or {}).get("annotations") or {}))
    finally:
        user.kubectl("patch", "rulesource", SOURCE, "--type=merge", "-p", '{"spec":{"oci":{"tag":"1"}}}')


def test_the_next_good_release_is_adopted(hostile: RunningOperator) -> None:
    user = hostile.user
    files = {p.name: p.read_text() for p in sorted((RULES / "v2").glob("*.yaml"))}
    artifacts.push_rules_artifact(hostile.registry, hostile.repository, "1.9.0", files)
    wait_for("1.9.0 adopted", lambda: user.status("rulesource", SOURCE).get("currentVersion") == "1.9.0",
             timeout=180)
    ready = user.condition("Ready", "rulesource", SOURCE)
    assert ready is not None and ready["status"] == "True"
    cm = user.configmap()
    assert cm is not None and any(files[name] == text for name in files for text in cm["data"].values())
