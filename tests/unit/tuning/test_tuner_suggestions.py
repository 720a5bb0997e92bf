"""The tuner's aggregation and suggestions (padlock.policy.tuning.suggest), fed parsed Falco alerts.

Covers: a workload past the count and share thresholds gets one suggestion, below either it gets
none; the suggested PolicyException matches exactly the values seen (image, container, process,
parent) in the workload's namespace and is a valid PolicyException; several processes give one row
per combination; alerts across namespaces give a ClusterPolicyException with the namespaces in the
match; untunable rules by priority and by name; rules no policy runs (until
one does); acceptance silences exactly
what the exception covers; dismissal stops the suggestion; the sliding window forgets old alerts;
samples are truncated and can be switched off; names are stable DNS-1123 names; memory stays bounded
by max_keys.
"""

from __future__ import annotations

from typing import Any

from padlock.api import ClusterPolicyException, PolicyException
from padlock.policy.tuning.alerts import from_json
from padlock.policy.tuning.suggest import (
    COUNTED,
    SILENCED,
    UNMATCHABLE,
    UNTUNABLE,
    Tuner,
    TunerConfig,
    WorkloadMatch,
)
from support_alerts import SHELL, falco_alert

T0 = 1_733_150_000.0
POLICIES = {SHELL: (("ManagedPolicy", "container-drift"),), "Other rule": (("ManagedPolicy", "misc"),)}


def tuner(**config: Any) -> Tuner:
    return Tuner(TunerConfig(**{"min_hits": 5, "min_share": 0.5, **config}),
                 policies_for=lambda rule: POLICIES.get(rule, ()))


def feed(t: Tuner, n: int, at: float = T0, **alert: Any) -> list[str]:
    return [t.observe(from_json(falco_alert(**alert)), at + i * 0.01) for i in range(n)]


def test_a_noisy_workload_gets_a_namespaced_exception_matching_exactly_what_was_seen() -> None:
    t = tuner()
    assert feed(t, 6) == [COUNTED] * 6
    (s,) = t.due(T0 + 1)
    assert (s.rule, s.namespace, s.hits, s.rule_hits, s.cluster) == (SHELL, "shop", 6, 6, False)
    exc = s.exception()
    assert exc["kind"] == "PolicyException"
    assert exc["metadata"]["namespace"] == "shop"
    assert exc["spec"]["policies"] == [{"kind": "ManagedPolicy", "name": "container-drift", "rules": [SHELL]}]
    assert exc["spec"]["match"] == {
        "fields": ["container.image.repository", "container.name", "proc.name", "proc.pname"],
        "comps": ["=", "=", "=", "="],
        "values": [["docker.io/library/nginx", "nginx", "bash", "runc"]],
    }
    PolicyException.model_validate(exc)


def test_below_the_count_threshold_there_is_no_suggestion() -> None:
    t = tuner()
    feed(t, 4)
    assert t.due(T0 + 1) == []


def test_below_the_share_threshold_there_is_no_suggestion() -> None:
    t = tuner(min_share=0.6)
    feed(t, 6)
    feed(t, 5, image="docker.io/library/redis", container="redis")
    feed(t, 5, image="docker.io/library/mysql", container="mysql")
    assert t.due(T0 + 1) == []  # nginx is 6 of 16 alerts of the rule


def test_several_processes_give_one_value_row_per_combination() -> None:
    t = tuner()
    feed(t, 3, proc="bash")
    feed(t, 3, proc="sh")
    (s,) = t.due(T0 + 1)
    values = s.exception()["spec"]["match"]["values"]
    assert sorted(v[2] for v in values) == ["bash", "sh"]
    assert s.match.covers(from_json(falco_alert(proc="sh")))
    assert not s.match.covers(from_json(falco_alert(proc="zsh")))


def test_a_field_with_too_many_values_is_left_out_of_the_match() -> None:
    t = tuner(max_values=2)
    for proc in ("bash", "sh", "zsh"):
        feed(t, 2, proc=proc)
    (s,) = t.due(T0 + 1)
    assert s.match.get("proc.name") is None
    assert s.match.get("container.image.repository") == ("docker.io/library/nginx",)


def test_alerts_spanning_namespaces_give_a_cluster_exception_naming_those_namespaces() -> None:
    t = tuner()
    feed(t, 3, ns="shop")
    feed(t, 3, ns="web")
    (s,) = t.due(T0 + 1)
    assert s.cluster and s.namespace is None
    exc = s.exception()
    assert exc["kind"] == "ClusterPolicyException" and "namespace" not in exc["metadata"]
    assert exc["spec"]["match"]["fields"][0] == "k8s.ns.name"
    assert sorted(row[0] for row in exc["spec"]["match"]["values"]) == ["shop", "web"]
    ClusterPolicyException.model_validate(exc)


def test_critical_and_more_severe_alerts_and_named_rules_are_never_tuned() -> None:
    t = tuner(untunable_rules=frozenset({"Other rule"}))
    assert set(feed(t, 6, priority="Critical")) == {UNTUNABLE}
    assert set(feed(t, 6, rule="Other rule")) == {UNTUNABLE}
    assert t.due(T0 + 1) == []
    lenient = tuner(untunable_priority="")
    feed(lenient, 6, priority="Emergency")
    assert len(lenient.due(T0 + 1)) == 1


def test_a_rule_no_policy_runs_gets_no_suggestion_until_one_does() -> None:
    t = tuner()
    feed(t, 6, rule="Rule from another rules file")
    assert t.due(T0 + 1) == []
    POLICIES["Rule from another rules file"] = (("CustomPolicy", "mine"),)
    try:
        (s,) = t.due(T0 + 2)  # the operator published: the policies are known now
        assert s.policies == (("CustomPolicy", "mine"),)
    finally:
        del POLICIES["Rule from another rules file"]


def test_an_alert_with_nothing_to_match_on_is_not_counted() -> None:
    t = tuner()
    assert set(feed(t, 3, image=None, container=None, proc=None)) == {UNMATCHABLE}


def test_after_acceptance_exactly_the_covered_alerts_stop_counting() -> None:
    t = tuner()
    feed(t, 6)
    (s,) = t.due(T0 + 1)
    t.accept(s.name, s.rule, WorkloadMatch.from_json(s.match.to_json()))
    assert set(feed(t, 10, at=T0 + 2)) == {SILENCED}
    assert t.due(T0 + 3) == []
    assert set(feed(t, 2, at=T0 + 4, proc="python3")) == {COUNTED}  # not covered: still counted


def test_a_dismissed_suggestion_is_not_proposed_again() -> None:
    t = tuner()
    feed(t, 6)
    (s,) = t.due(T0 + 1)
    t.dismiss(s.name)
    feed(t, 6, at=T0 + 2)
    assert t.due(T0 + 3) == []
    t.forget(s.name)
    feed(t, 1, at=T0 + 4)
    assert [x.name for x in t.due(T0 + 5)] == [s.name]


def test_due_reports_a_suggestion_again_only_after_new_alerts() -> None:
    t = tuner()
    feed(t, 6)
    assert len(t.due(T0 + 1)) == 1
    assert t.due(T0 + 2) == []
    feed(t, 1, at=T0 + 3)
    (again,) = t.due(T0 + 4)
    assert again.hits == 7
    assert len(t.due(T0 + 5, all_=True)) == 1


def test_alerts_older_than_the_window_are_forgotten() -> None:
    t = tuner(window=60.0)
    feed(t, 6)
    assert t.due(T0 + 200, all_=True) == []


def test_samples_are_truncated_and_can_be_switched_off() -> None:
    t = tuner(sample_chars=20, samples=2)
    feed(t, 6)
    (s,) = t.due(T0 + 1)
    assert len(s.samples) == 2 and all(len(x) == 20 and x.endswith("…") for x in s.samples)
    off = tuner(samples=0)
    feed(off, 6)
    assert off.due(T0 + 1)[0].samples == ()


def test_names_are_stable_dns_names() -> None:
    a, b = tuner(), tuner()
    feed(a, 6)
    feed(b, 8)
    (sa,), (sb,) = a.due(T0 + 1), b.due(T0 + 1)
    assert sa.name == sb.name
    assert sa.name.startswith("terminal-shell-in-container-nginx-")
    assert len(sa.name) <= 63 and sa.name.replace("-", "").isalnum()


def test_a_million_distinct_workloads_keep_only_max_keys() -> None:
    t = tuner(max_keys=1000)
    for i in range(20_000):
        t.observe(from_json(falco_alert(image=f"registry/app-{i}")), T0)
    assert t.tracked == 1000
