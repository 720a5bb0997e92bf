"""``padlock copy managedpolicy/X NEW``: the CustomPolicy written from a managed policy.

Covers: a following copy (basedOn with followUpdates true) carrying the user's choices; a frozen copy
listing the rules in spec.rules (upstream-disabled rules left out); the frozen copy keeps its set when
a new upstream rule arrives while the following copy gains it; errors for a missing policy and bad
arguments. (Reading from and applying to a cluster is covered by the integration story.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml
from click.testing import CliRunner

from padlock.cli.copy import command
from padlock.engine.model import Rule, Ruleset
from padlock.policy.layer import build_layer
from padlock.policy.policy_objects import ManagedPolicyInput, ObjectRef, PolicyRule, parse_custom

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def rule(name: str) -> Rule:
    return Rule(name=name, condition="evt.type = open", output="o", desc="d", priority="WARNING")


def ruleset(*rules: Rule) -> Ruleset:
    return Ruleset(rules={r.name: r for r in rules})


def managed(name: str, *rules: Rule, enabled: bool | None = None) -> ManagedPolicyInput:
    return ManagedPolicyInput(name, tuple(PolicyRule(r.name, r.desc, r.condition, r.output, r.priority)
                                          for r in rules), enabled=enabled)

MANAGED = """\
apiVersion: padlock.dev/v1alpha1
kind: ManagedPolicy
metadata: {name: credential-access}
spec:
  displayName: Credential access
  description: Stable rules tagged mitre_credential_access.
  defaultEnabled: true
  rules:
    - {name: Search Private Keys or Passwords, desc: d, condition: c, output: o, priority: WARNING, enabled: true}
    - {name: Read sensitive file untrusted, desc: d, condition: c, output: o, priority: WARNING, enabled: true}
    - {name: Upstream off, desc: d, condition: c, output: o, priority: WARNING, enabled: false}
  disabledRules: [Read sensitive file untrusted]
  scope: {namespaces: {include: [prod]}}
"""


def _copy(tmp_path: Path, *args: str):
    f = tmp_path / "mp.yaml"
    f.write_text(MANAGED)
    return CliRunner().invoke(command, ["managedpolicy/credential-access", *args, "--from-file", str(f)])


def test_copy_follows_updates_and_keeps_the_users_choices(tmp_path):
    res = _copy(tmp_path, "cred-prod")
    assert res.exit_code == 0, res.output
    assert yaml.safe_load(res.stdout) == {
        "apiVersion": "padlock.dev/v1alpha1",
        "kind": "CustomPolicy",
        "metadata": {"name": "cred-prod"},
        "spec": {
            "enabled": True,
            "description": "Copy of managed policy credential-access: Stable rules tagged mitre_credential_access.",
            "basedOn": {"managedPolicy": "credential-access", "followUpdates": True},
            "disabledRules": ["Read sensitive file untrusted"],
            "scope": {"namespaces": {"include": ["prod"]}},
        },
    }


def test_frozen_copy_lists_its_rules_and_does_not_gain_new_upstream_rules(tmp_path):
    frozen_body = yaml.safe_load(_copy(tmp_path, "cred-frozen", "--freeze").stdout)
    assert frozen_body["spec"]["basedOn"]["followUpdates"] is False
    assert frozen_body["spec"]["rules"] == ["Read sensitive file untrusted", "Search Private Keys or Passwords"]
    follow_body = yaml.safe_load(_copy(tmp_path, "cred-follow").stdout)
    frozen, _ = parse_custom(frozen_body)
    follow, _ = parse_custom(follow_body)
    keys, shadow, gpg = rule("Search Private Keys or Passwords"), rule("Read sensitive file untrusted"), rule("GPG")
    v2 = managed("credential-access", keys, shadow, gpg, enabled=False)
    layer = build_layer(ruleset(keys, shadow, gpg), [v2], [(frozen, None), (follow, None)], [], NOW)
    assert layer.policies[ObjectRef("CustomPolicy", "cred-frozen")].runs == ("Search Private Keys or Passwords",)
    assert layer.policies[ObjectRef("CustomPolicy", "cred-follow")].runs == ("Search Private Keys or Passwords", "GPG")


def test_copy_of_unknown_policy_fails_with_a_message(tmp_path):
    f = tmp_path / "mp.yaml"
    f.write_text(MANAGED)
    res = CliRunner().invoke(command, ["managedpolicy/nope", "x", "--from-file", str(f)])
    assert res.exit_code == 1 and 'no ManagedPolicy named "nope"' in res.stderr


def test_copy_rejects_bad_arguments(tmp_path):
    res = _copy(tmp_path, "Not_A_Name")
    assert res.exit_code == 2 and "not a valid Kubernetes object name" in res.output
    f = tmp_path / "mp.yaml"
    res = CliRunner().invoke(command, ["custompolicy/x", "y", "--from-file", str(f)])
    assert res.exit_code == 2 and "expected managedpolicy/NAME" in res.output
