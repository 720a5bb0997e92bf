"""The ``FalcoLoaded`` decision (padlock.flows.falco_loaded), pure, from alerts in Falco's JSON shape.

Covers: no condition without evidence; Falco's hot-restart-failure alert gives False/FalcoReloadFailed
naming the host and Falco's message on one line, truncated; an alert of a disabled rule gives
False/FalcoRulesetStale with the host, the rule and the published hash, but only for events after
the publish plus the grace; a stale alert never hides a reload failure of the same publish; recovery
by a rule the current publish started running, or by a running rule after a newer publish and its
grace, never by a running rule the old ruleset also ran; back to True/Loaded once every host
recovered; bounds: hosts tracked LRU, at most three hosts named then "and N more"; the intake
drops stale Events whose event predates the publish; the condition merges into a RuleSource status
keeping lastTransitionTime and observedGeneration; it is written at most every interval, only when it
or the published sources changed (plus a periodic check), and only to sources whose stored condition
differs; a False left by a previous process becomes Unknown (EvidenceLost).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from padlock.flows import falco_loaded as fl
from padlock.flows import statuses
from padlock.policy.tuning.alerts import from_json
from padlock.policy.tuning.feedback import RELOAD_FAILED, STALE, RulesetView, assess
from support_alerts import falco_alert, loader_report, reload_failure

T0 = 1_767_268_800.0  # 2026-01-01T12:00:00Z
SHELL = "Terminal shell in container"
KEYS = "Read ssh information"
NEW = "Drop and execute new binary in container"
RUNNING = frozenset({SHELL, NEW})
KNOWN = frozenset({SHELL, NEW, KEYS})
HASH1, HASH2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def _at(t: float) -> str:
    moment = dt.datetime.fromtimestamp(t, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}123Z"


def _published(content_hash: str = HASH1, *, at: float = T0, running: frozenset[str] = RUNNING,
               started: frozenset[str] = frozenset()) -> fl.Published:
    return fl.Published(content_hash, running, KNOWN, started, at)


def _feed(tracker: fl.HostTracker, doc: dict[str, Any], published: fl.Published, now: float) -> bool:
    alert = from_json(doc)
    view = RulesetView(running=published.running, known=published.known)
    return tracker.observe(alert, assess(alert, view), published, now)


def test_without_any_evidence_there_is_no_condition() -> None:
    tracker = fl.HostTracker(grace=0)
    assert _feed(tracker, falco_alert(SHELL, time=_at(T0 + 5)), _published(), T0 + 5) is False
    assert fl.condition(tracker, _published()) is None
    assert fl.condition(tracker, None) is None


def test_a_refused_reload_names_the_host_and_falcos_message_on_one_line() -> None:
    tracker = fl.HostTracker(grace=0)
    report = loader_report("/etc/falco/rules.d/padlock-rules.yaml", "Custom shell", "proc.nmae")
    assert _feed(tracker, reload_failure(report, hostname="node-7", time=_at(T0 + 1)), _published(), T0 + 1)
    cond = fl.condition(tracker, _published())
    assert cond is not None and (cond.type, cond.status, cond.reason) == ("FalcoLoaded", False, RELOAD_FAILED)
    assert cond.message == (f"Falco on node-7 refused to reload the published rules ({HASH1}) and keeps its "
                            "previous ones: /etc/falco/rules.d/padlock-rules.yaml: Invalid LOAD_ERR_COMPILE_CONDITION "
                            "(Error compiling condition): filter_check called with nonexistent field proc.nmae")
    _feed(tracker, reload_failure("x" * 1000, hostname="node-7", time=_at(T0 + 2)), _published(), T0 + 2)
    cond = fl.condition(tracker, _published())
    assert cond is not None and cond.message.endswith("x…") and len(cond.message) < 400


def test_an_alert_of_a_disabled_rule_after_the_grace_means_an_older_ruleset() -> None:
    tracker = fl.HostTracker(grace=60)
    published = _published()
    # Within the grace the kubelet may not have swapped the files yet: no evidence, no Event.
    assert _feed(tracker, falco_alert(KEYS, time=_at(T0 + 30)), published, T0 + 30) is False
    assert fl.condition(tracker, published) is None
    assert _feed(tracker, falco_alert(KEYS, hostname="node-3", time=_at(T0 + 61)), published, T0 + 61) is True
    cond = fl.condition(tracker, published)
    assert cond is not None and (cond.status, cond.reason) == (False, STALE)
    assert cond.message == (f"Falco on node-3 raised rule {KEYS!r}, which the published ruleset {HASH1} does not "
                            "run: it runs an older ruleset")


def test_a_stale_alert_does_not_hide_the_reload_failure_that_caused_it() -> None:
    tracker = fl.HostTracker(grace=0)
    published = _published()
    _feed(tracker, reload_failure("bad rules", hostname="node-1", time=_at(T0 + 1)), published, T0 + 1)
    assert _feed(tracker, falco_alert(KEYS, hostname="node-1", time=_at(T0 + 2)), published, T0 + 2) is True
    cond = fl.condition(tracker, published)
    assert cond is not None and cond.reason == RELOAD_FAILED and "bad rules" in cond.message


def test_a_running_rule_the_old_ruleset_also_ran_proves_nothing_without_a_new_publish() -> None:
    tracker = fl.HostTracker(grace=0)
    published = _published()
    _feed(tracker, reload_failure("bad rules", hostname="node-1", time=_at(T0 + 1)), published, T0 + 1)
    _feed(tracker, falco_alert(SHELL, hostname="node-1", time=_at(T0 + 500)), published, T0 + 500)
    cond = fl.condition(tracker, published)
    assert cond is not None and cond.status is False


def test_a_rule_the_current_publish_started_running_shows_the_current_ruleset() -> None:
    tracker = fl.HostTracker(grace=0)
    published = _published(started=frozenset({NEW}))
    _feed(tracker, reload_failure("bad rules", hostname="node-1", time=_at(T0 + 1)), published, T0 + 1)
    _feed(tracker, falco_alert(NEW, hostname="node-1", time=_at(T0 + 2)), published, T0 + 2)
    cond = fl.condition(tracker, published)
    assert cond is not None and (cond.status, cond.reason) == (True, fl.LOADED)
    assert cond.message == f"Falco on node-1 shows the published ruleset {HASH1} again"


def test_after_a_newer_publish_and_its_grace_a_running_rule_clears_the_host() -> None:
    tracker = fl.HostTracker(grace=60)
    first = _published(HASH1, at=T0)
    _feed(tracker, falco_alert(KEYS, hostname="node-1", time=_at(T0 + 100)), first, T0 + 100)
    second = _published(HASH2, at=T0 + 200)
    _feed(tracker, falco_alert(SHELL, hostname="node-1", time=_at(T0 + 230)), second, T0 + 230)  # within grace
    assert fl.condition(tracker, second) == fl.condition(tracker, first)
    _feed(tracker, falco_alert(SHELL, hostname="node-1", time=_at(T0 + 261)), second, T0 + 261)
    cond = fl.condition(tracker, second)
    assert cond is not None and (cond.status, cond.reason) == (True, fl.LOADED) and HASH2 in cond.message


def test_the_condition_stays_false_until_every_host_recovered() -> None:
    tracker = fl.HostTracker(grace=0)
    published = _published(started=frozenset({NEW}))
    for host in ("node-1", "node-2"):
        _feed(tracker, reload_failure("bad", hostname=host, time=_at(T0 + 1)), published, T0 + 1)
    _feed(tracker, falco_alert(NEW, hostname="node-1", time=_at(T0 + 2)), published, T0 + 2)
    cond = fl.condition(tracker, published)
    assert cond is not None and cond.status is False and "node-2" in cond.message and "node-1" not in cond.message
    _feed(tracker, falco_alert(NEW, hostname="node-2", time=_at(T0 + 3)), published, T0 + 3)
    cond = fl.condition(tracker, published)
    assert cond is not None and cond.status is True
    assert cond.message.startswith("Falco on node-2, node-1 show the published ruleset")


def test_hosts_are_bounded_and_the_message_names_three_then_counts_the_rest() -> None:
    tracker = fl.HostTracker(grace=0, max_hosts=5)
    published = _published()
    for n in range(8):
        _feed(tracker, falco_alert(KEYS, hostname=f"node-{n}", time=_at(T0 + n)), published, T0 + n)
    assert list(tracker.problems) == [f"node-{n}" for n in range(3, 8)]  # least recently heard of dropped
    cond = fl.condition(tracker, published)
    assert cond is not None
    assert [h for h in (f"node-{n}" for n in range(8)) if f"on {h} " in cond.message] == ["node-3", "node-4", "node-5"]
    assert cond.message.endswith("; and 2 more hosts (and 3 more no longer tracked)")


def test_a_problem_before_anything_was_published_is_not_tracked() -> None:
    tracker = fl.HostTracker(grace=0)
    assert tracker.observe(from_json(reload_failure("x")), None, None, T0) is False
    assert not tracker.problems


def test_the_condition_merges_into_a_rule_source_status_keeping_other_fields() -> None:
    before = {"observedGeneration": 4, "currentVersion": "5.0.1", "conditions": [
        {"type": "Ready", "status": "True", "reason": "Adopted", "message": "running version 5.0.1",
         "observedGeneration": 4, "lastTransitionTime": "2026-01-01T10:00:00Z"}]}
    t1 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    failed = fl.Cond("FalcoLoaded", False, RELOAD_FAILED, "Falco on node-1 refused ...")
    first = statuses.falco_loaded(before, failed, now=t1)
    assert first["observedGeneration"] == 4 and first["currentVersion"] == "5.0.1"
    by_type = {c["type"]: c for c in first["conditions"]}
    assert by_type["Ready"] == before["conditions"][0]
    assert by_type["FalcoLoaded"]["lastTransitionTime"] == "2026-01-01T12:00:00Z"
    again = statuses.falco_loaded(first, fl.Cond("FalcoLoaded", False, STALE, "other"),
                                  now=t1 + dt.timedelta(minutes=5))
    assert {c["type"]: c for c in again["conditions"]}["FalcoLoaded"]["lastTransitionTime"] == "2026-01-01T12:00:00Z"
    loaded = statuses.falco_loaded(again, fl.Cond("FalcoLoaded", True, fl.LOADED, "ok"),
                                   now=t1 + dt.timedelta(minutes=9))
    assert {c["type"]: c for c in loaded["conditions"]}["FalcoLoaded"]["lastTransitionTime"] == "2026-01-01T12:09:00Z"


def test_the_intake_posts_no_stale_event_for_an_event_before_the_publish_and_tracks_the_rest() -> None:
    from padlock.controllers.intake import Intake, IntakeOptions
    from padlock.policy.tuning.suggest import Tuner, TunerConfig

    published = _published(at=T0)
    it = Intake(IntakeOptions(token="t"), Tuner(TunerConfig()),
                view=lambda: RulesetView(running=RUNNING, known=KNOWN), published=lambda: published,
                hosts=fl.HostTracker(grace=0))
    it.process([from_json(falco_alert(KEYS, hostname="node-1", time=_at(T0 - 5)))], T0 + 1)
    assert it.take_feedback() == [] and not it.hosts.problems
    it.process([from_json(falco_alert(KEYS, hostname="node-1", time=_at(T0 + 1)))], T0 + 2)
    (fb,) = it.take_feedback()
    assert fb.reason == STALE and list(it.hosts.problems) == ["node-1"]


def test_the_condition_is_written_at_most_every_interval_and_only_when_it_changed() -> None:
    gate = fl.WriteGate(interval=5.0, resync=60.0)
    failed = fl.Cond("FalcoLoaded", False, RELOAD_FAILED, "Falco on node-1 refused ...")
    sources = ("falco-rules",)
    assert not gate.due(None, sources, 0.0) and not gate.due(failed, (), 0.0)
    assert gate.due(failed, sources, 0.0)
    gate.written(failed, sources, 0.0)
    other = fl.Cond("FalcoLoaded", False, RELOAD_FAILED, "Falco on node-1, node-2 refused ...")
    assert not gate.due(other, sources, 4.9)  # changed, but too soon
    assert gate.due(other, sources, 5.0)
    assert not gate.due(failed, sources, 30.0)  # unchanged
    assert gate.due(failed, ("falco-rules", "incubating"), 30.0)  # a source joined the published ruleset
    assert gate.due(failed, sources, 60.0)  # the periodic check


def test_write_falco_loaded_patches_only_sources_whose_condition_differs() -> None:
    from padlock.flows.tuning import write_falco_loaded

    t1 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    cond = fl.Cond("FalcoLoaded", False, STALE, "Falco on node-1 raised rule ...")
    stored = {"a": {"status": {"observedGeneration": 2}}, "b": {"status": statuses.falco_loaded({}, cond, now=t1)}}
    patches: list[tuple[str, Any]] = []

    class Client:
        def get_or_none(self, path: str) -> Any:
            return stored.get(path.rstrip("/").rsplit("/", 1)[-1])

        def merge_patch(self, path: str, body: Any) -> Any:
            patches.append((path, body))
            return {}

    assert write_falco_loaded(Client(), ["a", "b", "gone"], cond, t1) == 1  # type: ignore[arg-type]
    ((path, patch),) = patches
    assert path.endswith("/rulesources/a/status")
    assert patch["status"]["observedGeneration"] == 2
    assert [c["type"] for c in patch["status"]["conditions"]] == ["FalcoLoaded"]


def test_a_false_left_by_a_previous_process_becomes_unknown_and_nothing_else_is_touched() -> None:
    left = [{"type": "Ready", "status": "True"},
            {"type": "FalcoLoaded", "status": "False", "reason": STALE, "message": "..."}]
    cond = fl.after_restart(left)
    assert cond is not None and (cond.type, cond.status, cond.reason) == ("FalcoLoaded", None, "EvidenceLost")
    assert STALE in cond.message
    assert fl.after_restart([{"type": "FalcoLoaded", "status": "True", "reason": fl.LOADED}]) is None
    assert fl.after_restart(None) is None
