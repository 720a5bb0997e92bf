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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from padlock.controllers.process import OperatorProcess
from padlock.devenv import artifacts
from support_webhook import wait_until

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "examples" / "rules"
REPOSITORY = "rules/story"
CONFIGMAP = "padlock-rules"
FALCO_NS = "falco"
GPG_RULE = "Search GPG Private Keys"
DISABLED_RULE = "Read cloud credentials file"
SHELL_RULE = "Terminal shell in container"
OPERATOR_FLAGS = ["--plugin", "container=0.4.0", "--tick", "0.2", "--drift-interval", "1", "--debounce", "0.2"]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` otherwise."""
    return wait_until(check, timeout=timeout, interval=0.2, what=what)


def push(registry: str, release: str, version: str) -> artifacts.PushedArtifact:
    files = {p.name: p.read_text() for p in sorted((RULES / release).glob("*.yaml"))}
    return artifacts.push_rules_artifact(registry, REPOSITORY, version, files)


class Cluster:
    """Reads and writes through kubectl as admin (the user side of the story)."""

    def __init__(self, kubectl: Any) -> None:
        self.kubectl = kubectl

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        args = ["get", kind, name, "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        done = self.kubectl(*args, check=False)
        return json.loads(done.stdout) if done.returncode == 0 else None

    def apply(self, obj: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", *extra, "-f", "-", input=json.dumps(obj))

    def configmap(self) -> dict[str, Any] | None:
        return self.get("configmap", CONFIGMAP, FALCO_NS)

    def condition(self, name: str, type_: str) -> dict[str, Any] | None:
        obj = self.get("rulesource", name) or {}
        return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


@pytest.fixture(scope="module")
def story(control_plane: Any, kubectl: Any, registry: str, crds_installed: list[str], operator_rbac: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("operator-story")
    push(registry, "v1", "1.0.0")
    cluster = Cluster(kubectl)
    cluster.apply({
        "apiVersion": "padlock.dev/v1alpha1", "kind": "RuleSource", "metadata": {"name": "story"},
        "spec": {"oci": {"repository": f"{registry}/{REPOSITORY}", "tag": "1", "plainHTTP": True},
                 "interval": "2s"},
    })
    op = OperatorProcess(control_plane.kubeconfig("operator"), workdir / "operator.log", extra=OPERATOR_FLAGS,
                         falco_namespace=FALCO_NS, configmap=CONFIGMAP)
    op.start()
    ctx = {"cluster": cluster, "op": op, "registry": registry, "workdir": workdir, "control_plane": control_plane}
    try:
        op.wait_ready(90)
        yield ctx
    finally:
        ctx["op"].stop()
        print(ctx["op"].tail(80))
        kubectl("delete", "rulesource", "story", "--wait=false", check=False)
        kubectl("patch", "rulesource", "story", "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False)
        kubectl("delete", "managedpolicies", "--all", "--wait=false", check=False)
        kubectl("delete", "clusterpolicyexceptions", "--all", "--wait=false", check=False)
        kubectl("delete", "configmap", CONFIGMAP, "-n", FALCO_NS, check=False)


def test_rulesource_conditions_follow_the_generation(story: dict[str, Any]) -> None:
    cluster: Cluster = story["cluster"]
    ready = wait_for("RuleSource story Ready=True", lambda: (c := cluster.condition("story", "Ready")) and c["status"] == "True" and c)
    obj = cluster.get("rulesource", "story")
    assert obj is not None
    generation = obj["metadata"]["generation"]
    assert ready["observedGeneration"] == generation
    cluster.kubectl("patch", "rulesource", "story", "--type=merge", "-p", '{"spec":{"interval":"3s"}}')
    moved = cluster.get("rulesource", "story")
    assert moved is not None and moved["metadata"]["generation"] == generation + 1
    wait_for("conditions observing the new generation", lambda: all(
        c["observedGeneration"] == generation + 1
        for c in ((cluster.get("rulesource", "story") or {}).get("status") or {}).get("conditions") or [{"observedGeneration": 0}]
    ))
    status = (cluster.get("rulesource", "story") or {})["status"]
    assert status["observedGeneration"] == generation + 1
    assert {c["type"] for c in status["conditions"]} == {"Ready", "UpToDate", "Degraded"}


def test_v1_managed_policies_appear_with_rules_and_timestamps(story: dict[str, Any]) -> None:
    cluster: Cluster = story["cluster"]
    policy = wait_for("ManagedPolicy credential-access with status", lambda: (
        (p := cluster.get("managedpolicy", "credential-access")) and (p.get("status") or {}).get("lastUpdated") and p))
    names = {r["name"] for r in policy["spec"]["rules"]}
    assert DISABLED_RULE in names and GPG_RULE not in names
    assert all(r["condition"] and r["output"] for r in policy["spec"]["rules"])
    assert policy["spec"]["source"] == {"ruleSource": "story", "version": "1.0.0"}
    assert policy["status"]["sourceVersion"] == "1.0.0"
    assert policy["status"]["ruleCount"] == len(names)
    assert "enabled" not in policy["spec"] and "disabledRules" not in policy["spec"]
    source = cluster.get("rulesource", "story") or {}
    assert source["status"]["currentVersion"] == "1.0.0"
    assert source["status"]["history"][0]["version"] == "1.0.0"
    cm = wait_for("published ConfigMap", cluster.configmap)
    assert cm["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "padlock"
    assert cm["metadata"]["annotations"]["padlock.dev/content-hash"].startswith("sha256:")
    assert "story=1.0.0" in cm["metadata"]["annotations"]["padlock.dev/source-versions"]
    assert [r["kind"] for r in cm["metadata"]["ownerReferences"]] == ["RuleSource"]
    assert "50-story-padlock_example_rules.yaml" in cm["data"]
    assert "99-padlock-policies.yaml" in cm["data"]
    metrics = story["op"].metrics()
    assert 'padlock_source_syncs_total{result="adopted",source="story"} 1.0' in metrics
    assert 'padlock_source_version_info{digest="' in metrics and 'version="1.0.0"' in metrics
    assert "padlock_publish_writes_total" in metrics and "padlock_source_sync_duration_seconds_bucket" in metrics


# A rule runs while any enabled policy includes it and does not disable it; the example rules are all
# stable, so the user switches the rule off in both policies that carry it.
CHOICE_POLICIES = ("credential-access", "stable-threat-detection")


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


def _rule_disabled(files: dict[str, str], rule: str) -> bool:
    generated = yaml.safe_load(files["99-padlock-policies.yaml"]) or []
    return any(item.get("rule") == rule and item.get("enabled") is False for item in generated if isinstance(item, dict))


def test_user_choices_from_a_second_field_manager_never_conflict(story: dict[str, Any]) -> None:
    cluster: Cluster = story["cluster"]
    for policy in CHOICE_POLICIES:
        cluster.apply(_choices(policy), "--server-side", "--field-manager", "gitops")
    cluster.apply(_exception(), "--server-side", "--field-manager", "gitops")
    wait_for("disabled rule in the published policy layer",
             lambda: (cm := cluster.configmap()) and _rule_disabled(cm["data"], DISABLED_RULE))
    wait_for("exception in the published policy layer",
             lambda: (cm := cluster.configmap()) and "nginx" in cm["data"]["99-padlock-policies.yaml"])
    wait_for("missingDisabledRules empty and counts updated", lambda: (
        (p := cluster.get("managedpolicy", "credential-access"))
        and p["status"]["enabledRuleCount"] == p["status"]["ruleCount"] - 1))
    time.sleep(2)  # let the renders triggered by our own writes settle before taking the baseline
    objs_before = {p["metadata"]["name"]: p for p in json.loads(cluster.kubectl("get", "managedpolicies", "-o", "json", "--show-managed-fields").stdout)["items"]}
    before = {n: p["metadata"]["resourceVersion"] for n, p in objs_before.items()}
    cm_before = (cluster.configmap() or {})["metadata"]["resourceVersion"]
    for policy in CHOICE_POLICIES:
        cluster.apply(_choices(policy), "--server-side", "--field-manager", "gitops")
    cluster.apply(_exception(), "--server-side", "--field-manager", "gitops")
    time.sleep(3)  # a few ticks and renders: nothing may be written
    objs_after = {p["metadata"]["name"]: p for p in json.loads(cluster.kubectl("get", "managedpolicies", "-o", "json", "--show-managed-fields").stdout)["items"]}
    after = {n: p["metadata"]["resourceVersion"] for n, p in objs_after.items()}
    changed = {n: _changes(objs_before[n], objs_after[n]) for n in after if after[n] != before.get(n)}
    assert not changed, f"objects written although nothing changed: {changed}"
    assert (cluster.configmap() or {})["metadata"]["resourceVersion"] == cm_before
    shown = json.loads(cluster.kubectl("get", "managedpolicy", "credential-access", "-o", "json",
                                       "--show-managed-fields").stdout)
    managers = {m["manager"] for m in shown["metadata"]["managedFields"]}
    assert {"padlock", "gitops"} <= managers


def test_v2_gpg_rule_arrives_without_user_action(story: dict[str, Any]) -> None:
    cluster: Cluster = story["cluster"]
    before = cluster.get("managedpolicy", "credential-access") or {}
    time.sleep(1.1)  # lastUpdated has second precision: make a move visible
    push(story["registry"], "v2", "1.1.0")
    policy = wait_for("GPG rule in credential-access", lambda: (
        (p := cluster.get("managedpolicy", "credential-access"))
        and GPG_RULE in {r["name"] for r in p["spec"]["rules"]}
        and (p.get("status") or {}).get("sourceVersion") == "1.1.0" and p))
    assert policy["status"]["lastUpdated"] > before["status"]["lastUpdated"]
    change = policy["status"]["changes"][0]
    assert change["added"] == [GPG_RULE]
    assert change["fromVersion"] == "1.0.0" and change["toVersion"] == "1.1.0"
    assert policy["spec"]["disabledRules"] == [DISABLED_RULE]
    cm = wait_for("ConfigMap with v2", lambda: (c := cluster.configmap()) and "story=1.1.0" in
                  c["metadata"]["annotations"]["padlock.dev/source-versions"] and c)
    assert GPG_RULE in cm["data"]["50-story-padlock_example_rules.yaml"]
    assert _rule_disabled(cm["data"], DISABLED_RULE)
    assert "nginx" in cm["data"]["99-padlock-policies.yaml"]
    listing = cluster.kubectl("get", "managedpolicies").stdout
    assert "credential-access" in listing and "1.1.0" in listing
    source = cluster.get("rulesource", "story") or {}
    assert source["status"]["currentVersion"] == "1.1.0"
    assert source["status"]["history"][0]["added"] >= 1


def test_published_configmap_passes_padlock_validate(story: dict[str, Any], tmp_path: Path) -> None:
    cm = story["cluster"].configmap()
    assert cm is not None
    paths = []
    for key in sorted(cm["data"]):
        path = tmp_path / key
        path.write_text(cm["data"][key])
        paths.append(str(path))
    done = subprocess.run([sys.executable, "-m", "padlock", "validate", "--plugin", "container=0.4.0", *paths],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_v3_that_does_not_compile_is_refused_and_nothing_is_rewritten(story: dict[str, Any]) -> None:
    cluster: Cluster = story["cluster"]
    cm_before = cluster.configmap()
    assert cm_before is not None
    push(story["registry"], "v3", "1.2.0")
    ready = wait_for("RuleSource refusing v3", lambda: (
        (c := cluster.condition("story", "Ready")) and c["reason"] == "ValidationFailed" and c))
    assert ready["status"] == "False"
    assert "1.2.0" in ready["message"] and GPG_RULE in ready["message"]
    assert "keeping version 1.1.0" in ready["message"]
    degraded = cluster.condition("story", "Degraded")
    assert degraded is not None and degraded["status"] == "True"
    source = cluster.get("rulesource", "story") or {}
    assert source["status"]["currentVersion"] == "1.1.0"
    time.sleep(2)
    cm_after = cluster.configmap()
    assert cm_after is not None
    assert cm_after["data"] == cm_before["data"]
    assert cm_after["metadata"]["resourceVersion"] == cm_before["metadata"]["resourceVersion"]
    events = cluster.kubectl("get", "events", "-n", "default", "--field-selector",
                             "involvedObject.name=story,reason=ReleaseRefused", "-o", "json").stdout
    assert json.loads(events)["items"], "a ReleaseRefused Event for the RuleSource"


def test_two_restarts_leave_the_configmap_untouched(story: dict[str, Any]) -> None:
    cluster: Cluster = story["cluster"]
    before = cluster.configmap()
    assert before is not None
    objs_before = {p["metadata"]["name"]: p
                   for p in json.loads(cluster.kubectl("get", "managedpolicies", "-o", "json", "--show-managed-fields").stdout)["items"]}
    for restart in range(2):
        story["op"].stop()
        op = OperatorProcess(story["control_plane"].kubeconfig("operator"), story["workdir"] / f"operator-{restart}.log",
                             extra=OPERATOR_FLAGS, falco_namespace=FALCO_NS, configmap=CONFIGMAP)
        story["op"] = op.start()
        op.wait_ready(90)
        time.sleep(3)  # several ticks, drift checks and renders after readiness
        after = cluster.configmap()
        assert after is not None
        assert after["data"] == before["data"]
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    objs_after = {p["metadata"]["name"]: p
                  for p in json.loads(cluster.kubectl("get", "managedpolicies", "-o", "json", "--show-managed-fields").stdout)["items"]}
    changed = {n: _changes(objs_before[n], p) for n, p in objs_after.items()
               if p["metadata"]["resourceVersion"] != objs_before[n]["metadata"]["resourceVersion"]}
    assert not changed, f"ManagedPolicies written by a restart with the same inputs: {changed}"


def test_edited_or_deleted_configmap_is_published_again(story: dict[str, Any]) -> None:
    cluster: Cluster = story["cluster"]
    good = cluster.configmap()
    assert good is not None
    key = "99-padlock-policies.yaml"
    cluster.kubectl("patch", "configmap", CONFIGMAP, "-n", FALCO_NS, "--type=merge", "-p",
                    json.dumps({"data": {key: "# edited by hand\n[]\n"}}))
    wait_for("the hand edit to be replaced", lambda: (c := cluster.configmap()) and c["data"] == good["data"])
    cluster.kubectl("delete", "configmap", CONFIGMAP, "-n", FALCO_NS)
    restored = wait_for("the deleted ConfigMap to be published again", cluster.configmap)
    assert restored["data"] == good["data"]


def test_deleted_managed_policy_is_recreated_with_the_users_choices(story: dict[str, Any]) -> None:
    cluster: Cluster = story["cluster"]
    old = cluster.get("managedpolicy", "credential-access")
    assert old is not None and old["spec"]["disabledRules"] == [DISABLED_RULE]
    cluster.kubectl("delete", "managedpolicy", "credential-access")
    back = wait_for("credential-access recreated", lambda: (
        (p := cluster.get("managedpolicy", "credential-access")) and p["metadata"]["uid"] != old["metadata"]["uid"]
        and (p.get("status") or {}).get("ruleCount") and p))
    assert back["spec"]["disabledRules"] == [DISABLED_RULE]
    assert {r["name"] for r in back["spec"]["rules"]} == {r["name"] for r in old["spec"]["rules"]}
    cm = cluster.configmap()
    assert cm is not None and _rule_disabled(cm["data"], DISABLED_RULE)
