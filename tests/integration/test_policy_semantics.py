"""Policies do what their switches say, on a real kube-apiserver with ``padlock operator`` running.

Covers, in story order (module-scoped: one operator, one RuleSource, v1 then v2):
- a ManagedPolicy whose catalog entry is gone (``stable-threat-detection``, the old superset) is
  deleted by the operator with a ``PolicyRemoved`` Event recording the user's choices it carried;
- with the default catalog, disabling one rule in one ManagedPolicy removes it from the published
  ruleset, and the status's ``runningRules`` no longer lists it;
- disabling a tactic policy (``execution``) removes its rules from the published ruleset;
- a rule a CustomPolicy still runs is reported as still run, by name, in the ManagedPolicy's
  ``status.stillRunning`` and in ``padlock policies``;
- after v2, ``padlock explain rule "Search GPG Private Keys"`` shows it new in 1.1.0 with its condition,
  its MITRE tactic and technique and the policies running it; ``padlock show`` badges it "new".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from support_operator import GPG_RULE, SHELL_RULE, RunningOperator, disabled, running_operator, runs, wait_for

SOURCE = "semantics"
POLICY = "credential-access"
DISABLED_RULE = "Read cloud credentials file"
COPY = "my-credential-access"


@pytest.fixture(scope="module")
def story(control_plane: Any, kubectl: Any, registry: str, crds_installed: list[str], operator_rbac: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOperator]:
    workdir = tmp_path_factory.mktemp("policy-semantics")
    # A ManagedPolicy from the previous built-in catalog, with a user's choice on it.
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "padlock.dev/v1alpha1", "kind": "ManagedPolicy", "metadata": {"name": "stable-threat-detection"},
        "spec": {"catalog": {"name": "padlock-builtin", "version": "1.0.0", "policy": "stable-threat-detection"},
                 "defaultEnabled": True, "disabledRules": [DISABLED_RULE], "rules": []}}))
    with running_operator(control_plane, kubectl, registry, workdir, source=SOURCE,
                          cleanup=[("delete", "custompolicy", COPY, "--wait=false")]) as running:
        wait_for("credential-access with status", lambda: running.user.status("managedpolicy", POLICY).get("lastUpdated"))
        yield running


def test_a_policy_the_catalog_dropped_is_removed_with_an_event_recording_the_choices(story: RunningOperator) -> None:
    user = story.user
    wait_for("stable-threat-detection deleted", lambda: user.get("managedpolicy", "stable-threat-detection") is None)
    events = wait_for("the PolicyRemoved Event", lambda: [
        e for e in (user.get("events", "-A") or {}).get("items", [])
        if e.get("reason") == "PolicyRemoved" and e["involvedObject"]["name"] == "stable-threat-detection"])
    assert f'"disabledRules":["{DISABLED_RULE}"]' in events[0]["message"], events[0]["message"]


def test_disabling_one_rule_in_its_one_policy_removes_it_from_the_published_ruleset(story: RunningOperator) -> None:
    user = story.user
    assert runs(user.layer(), DISABLED_RULE)
    user.kubectl("patch", "managedpolicy", POLICY, "--type=merge", "-p",
                 json.dumps({"spec": {"disabledRules": [DISABLED_RULE]}}))
    wait_for("the rule switched off", lambda: disabled(user.layer(), DISABLED_RULE))
    status = wait_for("status without it", lambda: (s := user.status("managedpolicy", POLICY)) and
                      DISABLED_RULE not in s.get("runningRules", [DISABLED_RULE]) and s)
    assert status["runningRuleCount"] == len(status["runningRules"]) == status["ruleCount"] - 1
    assert status["stillRunning"] == []


def test_disabling_a_tactic_policy_removes_its_rules(story: RunningOperator) -> None:
    user = story.user
    assert runs(user.layer(), SHELL_RULE)
    user.kubectl("patch", "managedpolicy", "execution", "--type=merge", "-p", '{"spec":{"enabled":false}}')
    wait_for("the execution rules switched off", lambda: disabled(user.layer(), SHELL_RULE))
    status = wait_for("execution status", lambda: (s := user.status("managedpolicy", "execution")) and
                      s.get("runningRuleCount") == 0 and s)
    assert status["enabled"] is False and status["ruleCount"] > 0


def test_a_rule_a_custom_policy_still_runs_is_reported_by_name(story: RunningOperator) -> None:
    user = story.user
    user.apply({"apiVersion": "padlock.dev/v1alpha1", "kind": "CustomPolicy", "metadata": {"name": COPY},
                "spec": {"rules": [DISABLED_RULE]}})
    wait_for("the rule running again through the CustomPolicy", lambda: runs(user.layer(), DISABLED_RULE))
    status = wait_for("stillRunning in status", lambda: (s := user.status("managedpolicy", POLICY)) and
                      s.get("stillRunning") and s)
    assert status["stillRunning"] == [{"rule": DISABLED_RULE, "runBy": [f"custompolicy/{COPY}"]}]
    listed = user.padlock("policies")
    assert listed.returncode == 0, listed.stderr
    assert (f'! managedpolicy/{POLICY}: "{DISABLED_RULE}" is switched off here but still runs, '
            f"run by custompolicy/{COPY}") in listed.stdout, listed.stdout
    row = next(line for line in listed.stdout.splitlines() if f" {POLICY} " in line)
    assert row.split()[3] == f"{status['runningRuleCount']}/{status['ruleCount']}" and row.rstrip().endswith("1 !")


def test_explain_after_v2_shows_the_gpg_rule_new_in_1_1_0_with_mitre_names_and_who_runs_it(
    story: RunningOperator,
) -> None:
    user = story.user
    story.push("v2", "1.1.0")
    wait_for("GPG rule published", lambda: runs(user.layer(), GPG_RULE) and f"{SOURCE}=1.1.0" in (
        (user.configmap() or {})["metadata"]["annotations"]["padlock.dev/source-versions"]))
    wait_for("the change recorded", lambda: (user.status("managedpolicy", POLICY).get("changes") or [{}])[0]
             .get("added") == [GPG_RULE])
    done = user.padlock("explain", "rule", GPG_RULE, "-o", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["added"]["version"] == "1.1.0" and doc["added"]["new"] is True
    assert "--export-secret-keys" in doc["condition"] and "--export-secret-keys" in doc["publishedCondition"]
    assert {"tag": "mitre_credential_access", "id": "TA0006", "name": "Credential Access"} in doc["mitre"]["tactics"]
    assert {"id": "T1552.001", "name": "Unsecured Credentials: Credentials In Files"} in doc["mitre"]["techniques"]
    assert [p["policy"] for p in doc["policies"] if p["runs"]] == [f"managedpolicy/{POLICY}"]
    assert doc["runs"] is True and doc["version"] == "1.1.0"
    text = user.padlock("explain", "rule", GPG_RULE)
    assert "Added: new in 1.1.0" in text.stdout and "MITRE technique T1552.001" in text.stdout, text.stdout
    shown = user.padlock("show", f"managedpolicy/{POLICY}")
    assert shown.returncode == 0, shown.stderr
    gpg_line = next(line for line in shown.stdout.splitlines() if line.startswith(f"- {GPG_RULE}"))
    assert "** new in 1.1.0" in gpg_line, shown.stdout
