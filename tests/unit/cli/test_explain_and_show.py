"""``padlock explain rule`` and ``padlock show managedpolicy/NAME``, offline and on a given World.

Covers: offline on render inputs, explain gives the rule's text, MITRE tactic and technique names, the
source and version, the policies including it and whether each runs it, the exceptions attached with
their namespace, and the condition as published with the exception appended; a rule disabled in its
ManagedPolicy but run by a CustomPolicy says so by name; the recorded changes make a rule "new in
1.1.0" and another "updated"; show badges those rules and flags a switched-off rule still run
elsewhere; read from the cluster, a CustomPolicy following a managed one includes that policy's
rules; -o json and -o yaml give the same data; an unknown rule or policy exits 1 naming it; every
MITRE id the vendored upstream rules use has a name in the shipped table.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import yaml
from click.testing import CliRunner

from padlock.cli import explain, show
from padlock.cli.main import cli
from padlock.devenv.paths import repo_root, upstream_rules_dir
from padlock.policy import mitre

REPO = repo_root()
assert REPO is not None
V2 = f"falco-rules@1.1.0={REPO / 'examples' / 'rules' / 'v2'}"
GPG = "Search GPG Private Keys"
CLOUD = "Read cloud credentials file"
NOW = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)  # 3 days after 2026-02-27
OBJECTS = f"""\
apiVersion: padlock.dev/v1alpha1
kind: ManagedPolicy
metadata: {{name: credential-access}}
spec:
  disabledRules: [{CLOUD}]
---
apiVersion: padlock.dev/v1alpha1
kind: CustomPolicy
metadata: {{name: my-credential-access}}
spec:
  basedOn: {{managedPolicy: credential-access}}
---
apiVersion: padlock.dev/v1alpha1
kind: PolicyException
metadata: {{name: gpg-ci, namespace: ci}}
spec:
  policies: [{{kind: ManagedPolicy, name: credential-access, rules: [{GPG}]}}]
  match: {{images: [ci-runner]}}
  reason: CI signs releases
"""


def _run(tmp_path, *args):
    objs = tmp_path / "objects.yaml"
    objs.write_text(OBJECTS)
    return CliRunner().invoke(cli, [*args, str(objs), "--source", V2, "--plugin", "container=0.4.0"])


def test_explain_offline_gives_text_mitre_names_policies_exceptions_and_the_published_condition(tmp_path):
    done = _run(tmp_path, "explain", "rule", GPG, "-o", "json")
    assert done.exit_code == 0, done.output
    doc = json.loads(done.output)
    assert doc["priority"] == "WARNING" and "gpg" in doc["condition"]
    assert (doc["ruleSource"], doc["version"]) == ("falco-rules", "1.1.0")
    assert doc["mitre"]["tactics"] == [{"tag": "mitre_credential_access", "id": "TA0006", "name": "Credential Access"}]
    assert doc["mitre"]["techniques"] == [{"id": "T1552.001", "name": "Unsecured Credentials: Credentials In Files"}]
    assert [(p["policy"], p["runs"]) for p in doc["policies"]] == [
        ("custompolicy/my-credential-access", True), ("managedpolicy/credential-access", True)]
    assert doc["runs"] is True
    (exc,) = doc["exceptions"]
    assert exc["object"] == "policyexception/ci/gpg-ci" and exc["namespace"] == "ci"
    assert doc["publishedCondition"].endswith("and not (container.image.repository in (ci-runner) and k8s.ns.name = ci)")


def test_explain_names_the_custom_policy_that_still_runs_a_disabled_rule(tmp_path):
    done = _run(tmp_path, "explain", "rule", CLOUD)
    assert done.exit_code == 0, done.output
    assert "Runs: yes (run by custompolicy/my-credential-access)" in done.output
    assert "managedpolicy/credential-access: disabled in spec.disabledRules" in done.output
    assert "MITRE tactic TA0006 Credential Access" in done.output


def test_show_offline_flags_a_switched_off_rule_still_run_elsewhere_and_prints_conditions(tmp_path):
    done = _run(tmp_path, "show", "managedpolicy/credential-access")
    assert done.exit_code == 0, done.output
    assert f"- {CLOUD}  [WARNING] off here, still run by custompolicy/my-credential-access" in done.output
    assert "condition: (example_spawned_process" in done.output
    as_yaml = yaml.safe_load(_run(tmp_path, "show", "managedpolicy/credential-access", "-o", "yaml").output)
    as_json = json.loads(_run(tmp_path, "show", "managedpolicy/credential-access", "-o", "json").output)
    assert as_yaml == as_json and as_json["ruleCount"] == 4


def test_unknown_rule_or_policy_exits_1_naming_it(tmp_path):
    done = _run(tmp_path, "explain", "rule", "No Such Rule")
    assert done.exit_code == 1 and 'no rule named "No Such Rule"' in done.output
    done = _run(tmp_path, "show", "managedpolicy/nope")
    assert done.exit_code == 1 and 'no ManagedPolicy named "nope"' in done.output


def _world_with_history():
    rules = [{"name": GPG, "condition": "evt.type = open", "priority": "WARNING", "tags": ["mitre_credential_access"]},
             {"name": CLOUD, "condition": "evt.type = open", "priority": "WARNING", "tags": []}]
    changes = [
        {"time": "2026-02-27T00:00:00Z", "fromVersion": "1.0.0", "toVersion": "1.1.0", "added": [GPG],
         "modified": [CLOUD]},
        {"time": "2026-01-01T00:00:00Z", "toVersion": "1.0.0", "added": [CLOUD]},
    ]
    managed = {"kind": "ManagedPolicy", "metadata": {"name": "credential-access"},
               "spec": {"rules": rules, "defaultEnabled": True, "source": {"ruleSource": "s", "version": "1.1.0"}},
               "status": {"changes": changes}}
    key = "managedpolicy/credential-access"
    names = frozenset({GPG, CLOUD})
    return explain.World((managed,), runs={key: names}, includes={key: names})


def test_recorded_changes_make_a_rule_new_in_its_version_and_another_updated():
    world = _world_with_history()
    doc = explain.explain_rule(world, GPG)
    assert doc is not None
    assert doc["added"] == {"version": "1.1.0", "from": "1.0.0", "time": "2026-02-27T00:00:00Z", "new": True}
    assert "Added: new in 1.1.0, 3 days ago" in explain.to_text(doc, NOW)
    cloud = explain.explain_rule(world, CLOUD)
    assert cloud is not None and cloud["added"]["new"] is False and cloud["lastChanged"]["version"] == "1.1.0"
    shown = show.show_policy(world, "credential-access", NOW)
    assert shown is not None
    assert {r["name"]: r["badge"] for r in shown["rules"]} == {GPG: "new in 1.1.0, 3 days ago",
                                                            CLOUD: "updated 3 days ago"}


def test_every_mitre_id_the_upstream_rules_use_has_a_name():
    missing = set()
    for path in upstream_rules_dir().rglob("*.yaml"):
        try:
            items = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            continue
        for item in items if isinstance(items, list) else []:
            tags = [t for t in (item.get("tags") or []) if isinstance(t, str)] if isinstance(item, dict) else []
            found = mitre.attack(tags)
            missing |= {tag for tag, tid, _ in found.tactics if not tid}
            missing |= {tid for tid, name in found.techniques if not name}
            missing |= {t for t in tags if re.match(r"^T\d", t) and not re.match(r"^T\d{4}(\.\d{3})?$", t)}
    assert not missing, sorted(missing)


def test_from_cluster_statuses_a_following_copy_includes_its_managed_policys_rules():
    copy = {"metadata": {"name": "mine"}, "spec": {"basedOn": {"managedPolicy": "credential-access"},
                                                   "disabledRules": [CLOUD]},
            "status": {"runningRules": [GPG, CLOUD], "stillRunning": [{"rule": CLOUD,
                                                                      "runBy": ["managedpolicy/credential-access"]}]}}
    included, runs = explain.custom_runs(copy, {"credential-access": frozenset({GPG, CLOUD, "Other"})})
    assert included == {GPG, CLOUD, "Other"} and runs == {GPG}
    frozen = {**copy, "spec": {**copy["spec"], "basedOn": {"managedPolicy": "credential-access",
                                                           "followUpdates": False}}}
    assert explain.custom_runs(frozen, {"credential-access": frozenset({"Other"})})[0] == {GPG, CLOUD}
