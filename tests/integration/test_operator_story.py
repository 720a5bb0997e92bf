"""The operator on a real kube-apiserver + etcd and a real OCI registry, run as ``padlock operator``
in a subprocess with the operator identity bound to exactly the chart's RBAC.

Covers, in story order (module-scoped: one operator, one RuleSource, releases pushed in turn):
- skeleton: RuleSource conditions carry the generation they describe, and follow a spec change;
- v1: managed policies appear with their rules and timestamps; the ConfigMap holds the files;
- user choices applied by a second field manager (server-side apply) never conflict with the
  operator, and re-applying them writes nothing (resourceVersions unchanged, no status flapping);
- v2: the new GPG rule arrives in credential-access without user action; UPDATED moves; the change
  list names it; the disabled rule and the exception are still in force in the published files;
- the published ConfigMap passes ``padlock validate``;
- v3 (a condition that does not compile): refused, the ConfigMap is byte-identical, the RuleSource
  says why;
- two operator restarts leave the ConfigMap untouched (same data, same resourceVersion);
- a ConfigMap edited or deleted by someone else is published again;
- a ManagedPolicy deleted anyway is recreated with the user's choices intact.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support_operator import (
    CARRIERS,
    CONFIGMAP,
    FALCO_NS,
    GPG_RULE,
    LAYER,
    SHELL_RULE,
    RunningOperator,
    disabled,
    parse_layer,
    running_operator,
    wait_for,
)

SOURCE = "story"
REPOSITORY = "rules/story"
DISABLED_RULE = "Read cloud credentials file"


@pytest.fixture(scope="module")
def story(control_plane: Any, kubectl: Any, registry: str, crds_installed: list[str], operator_rbac: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOperator]:
    workdir = tmp_path_factory.mktemp("operator-story")
    with running_operator(control_plane, kubectl, registry, workdir, source=SOURCE, repository=REPOSITORY,
                          cleanup=[("delete", "clusterpolicyexceptions", "--all", "--wait=false")]) as running:
        yield running


def test_rulesource_conditions_follow_the_generation(story: RunningOperator) -> None:
    user = story.user
    ready = wait_for("RuleSource story Ready=True", lambda: (c := user.condition("Ready", "rulesource", "story")) and c["status"] == "True" and c)
    obj = user.get("rulesource", "story")
    assert obj is not None
    generation = obj["metadata"]["generation"]
    assert ready["observedGeneration"] == generation
    user.kubectl("patch", "rulesource", "story", "--type=merge", "-p", '{"spec":{"interval":"3s"}}')
    moved = user.get("rulesource", "story")
    assert moved is not None and moved["metadata"]["generation"] == generation + 1
    wait_for("conditions observing the new generation", lambda: all(
        c["observedGeneration"] == generation + 1
        for c in ((user.get("rulesource", "story") or {}).get("status") or {}).get("conditions") or [{"observedGeneration": 0}]
    ))
    status = (user.get("rulesource", "story") or {})["status"]
    assert status["observedGeneration"] == generation + 1
    assert {c["type"] for c in status["conditions"]} == {"Ready", "UpToDate", "Degraded"}


def test_v1_managed_policies_appear_with_rules_and_timestamps(story: RunningOperator) -> None:
    user = story.user
    policy = wait_for("ManagedPolicy credential-access with status", lambda: (
        (p := user.get("managedpolicy", "credential-access")) and (p.get("status") or {}).get("lastUpdated") and p))
    names = {r["name"] for r in policy["spec"]["rules"]}
    assert DISABLED_RULE in names and GPG_RULE not in names
    assert all(r["condition"] and r["output"] for r in policy["spec"]["rules"])
    assert policy["spec"]["source"] == {"ruleSource": "story", "version": "1.0.0"}
    assert policy["status"]["sourceVersion"] == "1.0.0"
    assert policy["status"]["ruleCount"] == len(names)
    assert "enabled" not in policy["spec"] and "disabledRules" not in policy["spec"]
    source = user.get("rulesource", "story") or {}
    assert source["status"]["currentVersion"] == "1.0.0"
    assert source["status"]["history"][0]["version"] == "1.0.0"
    cm = wait_for("published ConfigMap", user.configmap)
    assert cm["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "padlock"
    assert cm["metadata"]["annotations"]["padlock.dev/content-hash"].startswith("sha256:")
    assert "story=1.0.0" in cm["metadata"]["annotations"]["padlock.dev/source-versions"]
    assert [r["kind"] for r in cm["metadata"]["ownerReferences"]] == ["RuleSource"]
    assert "50-story-padlock_example_rules.yaml" in cm["data"]
    assert LAYER in cm["data"]
    metrics = story.op.metrics()
    assert 'padlock_source_syncs_total{result="adopted",source="story"} 1.0' in metrics
    assert 'padlock_source_version_info{digest="' in metrics and 'version="1.0.0"' in metrics
    assert "padlock_publish_writes_total" in metrics and "padlock_source_sync_duration_seconds_bucket" in metrics


def _choices(policy: str) -> dict[str, Any]:
    return {"apiVersion": "padlock.dev/v1alpha1", "kind": "ManagedPolicy", "metadata": {"name": policy},
            "spec": {"disabledRules": [DISABLED_RULE]}}


def _exception() -> dict[str, Any]:
    return {"apiVersion": "padlock.dev/v1alpha1", "kind": "ClusterPolicyException", "metadata": {"name": "nginx-shell"},
            "spec": {"policies": [{"kind": "ManagedPolicy", "name": "execution", "rules": [SHELL_RULE]}],
                     "match": {"images": ["nginx"]}, "reason": "nginx image runs a shell in its entrypoint"}}


def _changes(old: Any, new: Any, path: str = "") -> list[str]:
    """Paths where two JSON values differ (for a readable failure)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [c for k in sorted(set(old) | set(new)) if k != "resourceVersion"
                for c in _changes(old.get(k), new.get(k), f"{path}.{k}")]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [c for i, (a, b) in enumerate(zip(old, new, strict=True)) for c in _changes(a, b, f"{path}[{i}]")]
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"[:300]]


def test_user_choices_from_a_second_field_manager_never_conflict(story: RunningOperator) -> None:
    user = story.user
    for policy in CARRIERS:
        user.apply(_choices(policy), "--server-side", "--field-manager", "gitops")
    user.apply(_exception(), "--server-side", "--field-manager", "gitops")
    wait_for("disabled rule in the published policy layer",
             lambda: (cm := user.configmap()) and disabled(parse_layer(cm), DISABLED_RULE))
    wait_for("exception in the published policy layer",
             lambda: (cm := user.configmap()) and "nginx" in cm["data"][LAYER])
    wait_for("missingDisabledRules empty and counts updated", lambda: (
        (p := user.get("managedpolicy", "credential-access"))
        and p["status"]["enabledRuleCount"] == p["status"]["ruleCount"] - 1))
    time.sleep(2)  # let the renders triggered by our own writes settle before taking the baseline
    objs_before = {p["metadata"]["name"]: p for p in json.loads(user.kubectl("get", "managedpolicies", "-o", "json", "--show-managed-fields").stdout)["items"]}
    before = {n: p["metadata"]["resourceVersion"] for n, p in objs_before.items()}
    cm_before = (user.configmap() or {})["metadata"]["resourceVersion"]
    for policy in CARRIERS:
        user.apply(_choices(policy), "--server-side", "--field-manager", "gitops")
    user.apply(_exception(), "--server-side", "--field-manager", "gitops")
    time.sleep(3)  # a few ticks and renders: nothing may be written
    objs_after = {p["metadata"]["name"]: p for p in json.loads(user.kubectl("get", "managedpolicies", "-o", "json", "--show-managed-fields").stdout)["items"]}
    after = {n: p["metadata"]["resourceVersion"] for n, p in objs_after.items()}
    changed = {n: _changes(objs_before[n], objs_after[n]) for n in after if after[n] != before.get(n)}
    assert not changed, f"objects written although nothing changed: {changed}"
    assert (user.configmap() or {})["metadata"]["resourceVersion"] == cm_before
    shown = json.loads(user.kubectl("get", "managedpolicy", "credential-access", "-o", "json",
                                       "--show-managed-fields").stdout)
    managers = {m["manager"] for m in shown["metadata"]["managedFields"]}
    assert {"padlock", "gitops"} <= managers


def test_v2_gpg_rule_arrives_without_user_action(story: RunningOperator) -> None:
    user = story.user
    before = user.get("managedpolicy", "credential-access") or {}
    time.sleep(1.1)  # lastUpdated has second precision: make a move visible
    story.push("v2", "1.1.0")
    policy = wait_for("GPG rule in credential-access", lambda: (
        (p := user.get("managedpolicy", "credential-access"))
        and GPG_RULE in {r["name"] for r in p["spec"]["rules"]}
        and (p.get("status") or {}).get("sourceVersion") == "1.1.0" and p))
    assert policy["status"]["lastUpdated"] > before["status"]["lastUpdated"]
    change = policy["status"]["changes"][0]
    assert change["added"] == [GPG_RULE]
    assert change["fromVersion"] == "1.0.0" and change["toVersion"] == "1.1.0"
    assert policy["spec"]["disabledRules"] == [DISABLED_RULE]
    cm = wait_for("ConfigMap with v2", lambda: (c := user.configmap()) and "story=1.1.0" in
                  c["metadata"]["annotations"]["padlock.dev/source-versions"] and c)
    assert GPG_RULE in cm["data"]["50-story-padlock_example_rules.yaml"]
    assert disabled(parse_layer(cm), DISABLED_RULE)
    assert "nginx" in cm["data"][LAYER]
    listing = user.kubectl("get", "managedpolicies").stdout
    assert "credential-access" in listing and "1.1.0" in listing
    source = user.get("rulesource", "story") or {}
    assert source["status"]["currentVersion"] == "1.1.0"
    assert source["status"]["history"][0]["added"] >= 1


def test_published_configmap_passes_padlock_validate(story: RunningOperator, tmp_path: Path) -> None:
    cm = story.user.configmap()
    assert cm is not None
    paths = []
    for key in sorted(cm["data"]):
        path = tmp_path / key
        path.write_text(cm["data"][key])
        paths.append(str(path))
    done = subprocess.run([sys.executable, "-m", "padlock", "validate", "--plugin", "container=0.4.0", *paths],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_v3_that_does_not_compile_is_refused_and_nothing_is_rewritten(story: RunningOperator) -> None:
    user = story.user
    cm_before = user.configmap()
    assert cm_before is not None
    story.push("v3", "1.2.0")
    ready = wait_for("RuleSource refusing v3", lambda: (
        (c := user.condition("Ready", "rulesource", "story")) and c["reason"] == "ValidationFailed" and c))
    assert ready["status"] == "False"
    assert "1.2.0" in ready["message"] and GPG_RULE in ready["message"]
    assert "keeping version 1.1.0" in ready["message"]
    degraded = user.condition("Degraded", "rulesource", "story")
    assert degraded is not None and degraded["status"] == "True"
    source = user.get("rulesource", "story") or {}
    assert source["status"]["currentVersion"] == "1.1.0"
    time.sleep(2)
    cm_after = user.configmap()
    assert cm_after is not None
    assert cm_after["data"] == cm_before["data"]
    assert cm_after["metadata"]["resourceVersion"] == cm_before["metadata"]["resourceVersion"]
    events = user.kubectl("get", "events", "-n", "default", "--field-selector",
                             "involvedObject.name=story,reason=ReleaseRefused", "-o", "json").stdout
    assert json.loads(events)["items"], "a ReleaseRefused Event for the RuleSource"


def test_two_restarts_leave_the_configmap_untouched(story: RunningOperator) -> None:
    user = story.user
    before = user.configmap()
    assert before is not None
    objs_before = {p["metadata"]["name"]: p
                   for p in json.loads(user.kubectl("get", "managedpolicies", "-o", "json", "--show-managed-fields").stdout)["items"]}
    for restart in range(2):
        story.restart(f"operator-{restart}.log")
        time.sleep(3)  # several ticks, drift checks and renders after readiness
        after = user.configmap()
        assert after is not None
        assert after["data"] == before["data"]
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    objs_after = {p["metadata"]["name"]: p
                  for p in json.loads(user.kubectl("get", "managedpolicies", "-o", "json", "--show-managed-fields").stdout)["items"]}
    changed = {n: _changes(objs_before[n], p) for n, p in objs_after.items()
               if p["metadata"]["resourceVersion"] != objs_before[n]["metadata"]["resourceVersion"]}
    assert not changed, f"ManagedPolicies written by a restart with the same inputs: {changed}"


def test_edited_or_deleted_configmap_is_published_again(story: RunningOperator) -> None:
    user = story.user
    good = user.configmap()
    assert good is not None
    key = LAYER
    user.kubectl("patch", "configmap", CONFIGMAP, "-n", FALCO_NS, "--type=merge", "-p",
                    json.dumps({"data": {key: "# edited by hand\n[]\n"}}))
    wait_for("the hand edit to be replaced", lambda: (c := user.configmap()) and c["data"] == good["data"])
    user.kubectl("delete", "configmap", CONFIGMAP, "-n", FALCO_NS)
    restored = wait_for("the deleted ConfigMap to be published again", user.configmap)
    assert restored["data"] == good["data"]


def test_deleted_managed_policy_is_recreated_with_the_users_choices(story: RunningOperator) -> None:
    user = story.user
    old = user.get("managedpolicy", "credential-access")
    assert old is not None and old["spec"]["disabledRules"] == [DISABLED_RULE]
    user.kubectl("delete", "managedpolicy", "credential-access")
    back = wait_for("credential-access recreated", lambda: (
        (p := user.get("managedpolicy", "credential-access")) and p["metadata"]["uid"] != old["metadata"]["uid"]
        and (p.get("status") or {}).get("ruleCount") and p))
    assert back["spec"]["disabledRules"] == [DISABLED_RULE]
    assert {r["name"] for r in back["spec"]["rules"]} == {r["name"] for r in old["spec"]["rules"]}
    cm = user.configmap()
    assert cm is not None and disabled(parse_layer(cm), DISABLED_RULE)
