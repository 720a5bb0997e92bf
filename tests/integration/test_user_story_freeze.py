"""A hand-written frozen CustomPolicy on the real operator: ``followUpdates: false`` freezes for real.

Real kube-apiserver + etcd, a real OCI registry and the real ``padlock operator`` (chart RBAC only).
Module-scoped, in story order: v1 is adopted; the managed originals that carry the credential rules
are switched off, so only custom policies decide what runs; a CustomPolicy written by hand with
``basedOn: {managedPolicy: credential-access, followUpdates: false}`` (no ``spec.rules``) gets
``status.frozenRules`` (the managed policy's rules at that moment) and a RULES count in
``kubectl get``, next to a followed copy; v2 adds "Search GPG Private Keys" to credential-access:
the frozen policy does not gain it (the published layer keeps it off), the followed copy does; then
switching the frozen policy to ``followUpdates: true`` clears its set and back to ``false`` captures
anew.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from support_operator import (
    CARRIERS,
    GPG_RULE,
    KEYS_RULE,
    POLICY,
    User,
    disabled,
    remove_story,
    running_operator,
    runs,
    wait_for,
)

SOURCE = "freeze-story"
FROZEN, FOLLOWED = "frozen-by-hand", "followed-by-hand"
CLEANUP = [("delete", "custompolicies", "--all", "--wait=false")]


def _policy(name: str, follow: bool) -> dict[str, Any]:
    return {"apiVersion": "padlock.dev/v1alpha1", "kind": "CustomPolicy", "metadata": {"name": name},
            "spec": {"basedOn": {"managedPolicy": POLICY, "followUpdates": follow}}}


def _status(user: User, name: str) -> dict[str, Any]:
    return user.status("custompolicy", name)


def _rules_column(user: User, name: str) -> str:
    """The RULES column of ``kubectl get custompolicy <name>``."""
    header, row = user.kubectl("get", "custompolicy", name).stdout.splitlines()[:2]
    start = header.index("RULES")  # kubectl aligns each value under its header ("BASED ON" has a space)
    return row[start:].split()[0]


def _on_v(user: User, version: str) -> bool:
    annotations = ((user.configmap() or {}).get("metadata") or {}).get("annotations") or {}
    return f"{SOURCE}={version}" in annotations.get("padlock.dev/source-versions", "")


@pytest.fixture(scope="module")
def story(control_plane: Any, kubectl: Any, registry: str, crds_installed: list[str], operator_rbac: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("freeze-story")
    # The published layer is cluster-wide: no custom policy of another module may decide what runs here.
    remove_story(kubectl, SOURCE, CLEANUP)
    with running_operator(control_plane, kubectl, registry, workdir, source=SOURCE, cleanup=CLEANUP) as running:
        user = running.user
        wait_for(f"ManagedPolicy {POLICY} with status",
                 lambda: user.status("managedpolicy", POLICY).get("lastUpdated"))
        wait_for("ConfigMap with v1", lambda: _on_v(user, "1.0.0"))
        yield {"user": user, "running": running}


def test_hand_written_frozen_policy_gets_its_frozen_set_and_a_rules_count(story: dict[str, Any]) -> None:
    user: User = story["user"]
    for policy in CARRIERS:
        user.kubectl("patch", "managedpolicy", policy, "--type=merge", "-p", '{"spec":{"enabled":false}}')
    wait_for("the credential rules off with the originals disabled", lambda: disabled(user.layer(), KEYS_RULE))
    user.apply(_policy(FROZEN, follow=False))
    user.apply(_policy(FOLLOWED, follow=True))
    managed = user.get("managedpolicy", POLICY) or {}
    v1_rules = sorted(r["name"] for r in managed["spec"]["rules"] if r.get("enabled", True))
    assert GPG_RULE not in v1_rules and KEYS_RULE in v1_rules
    status = wait_for("status.frozenRules", lambda: (s := _status(user, FROZEN)).get("frozenRules") and s)
    assert status["frozenRules"] == v1_rules
    assert status["ruleCount"] == len(v1_rules)
    assert _rules_column(user, FROZEN) == str(len(v1_rules))
    followed = wait_for("the followed copy counted", lambda: (s := _status(user, FOLLOWED)).get("ruleCount") and s)
    assert followed["ruleCount"] == len(v1_rules) and "frozenRules" not in followed
    assert runs(user.layer(), KEYS_RULE)
    # A disabled policy runs nothing, and its count says so.
    user.kubectl("patch", "custompolicy", FOLLOWED, "--type=merge", "-p", '{"spec":{"enabled":false}}')
    wait_for("the disabled copy counting 0", lambda: _status(user, FOLLOWED).get("ruleCount") == 0)
    assert _rules_column(user, FOLLOWED) == "0"
    story["v1_rules"] = v1_rules


def test_v2_does_not_reach_the_frozen_policy_but_reaches_the_followed_copy(story: dict[str, Any]) -> None:
    user: User = story["user"]
    v1_rules = story["v1_rules"]
    story["running"].push("v2", "1.1.0")
    wait_for("ConfigMap with v2", lambda: _on_v(user, "1.1.0"))
    cm = user.configmap() or {}
    assert GPG_RULE in cm["data"][f"50-{SOURCE}-padlock_example_rules.yaml"]
    managed = user.get("managedpolicy", POLICY) or {}
    assert GPG_RULE in {r["name"] for r in managed["spec"]["rules"]}
    # The very render that published v2 kept the frozen set: the new rule is off, the frozen ones run.
    layer = user.layer()
    assert disabled(layer, GPG_RULE), "the frozen policy must not gain the new upstream rule"
    assert runs(layer, KEYS_RULE)
    status = _status(user, FROZEN)
    assert status["frozenRules"] == v1_rules and status["ruleCount"] == len(v1_rules)
    # The followed copy, switched on again, brings it.
    user.kubectl("patch", "custompolicy", FOLLOWED, "--type=merge", "-p", '{"spec":{"enabled":true}}')
    wait_for("GPG on through the followed copy", lambda: runs(user.layer(), GPG_RULE))
    wait_for("the followed copy counting the new rule",
             lambda: _status(user, FOLLOWED).get("ruleCount") == len(v1_rules) + 1)
    assert _status(user, FROZEN)["frozenRules"] == v1_rules


def test_following_again_clears_the_frozen_set_and_freezing_again_captures_anew(story: dict[str, Any]) -> None:
    user: User = story["user"]
    v1_rules = story["v1_rules"]
    user.kubectl("patch", "custompolicy", FOLLOWED, "--type=merge", "-p", '{"spec":{"enabled":false}}')
    user.kubectl("patch", "custompolicy", FROZEN, "--type=merge", "-p", '{"spec":{"basedOn":{"followUpdates":true}}}')
    status = wait_for("frozenRules cleared", lambda: "frozenRules" not in (s := _status(user, FROZEN))
                      and s.get("ruleCount") == len(v1_rules) + 1 and s)
    assert status["ruleCount"] == len(v1_rules) + 1
    wait_for("GPG on through the policy that follows again", lambda: runs(user.layer(), GPG_RULE))
    user.kubectl("patch", "custompolicy", FROZEN, "--type=merge", "-p", '{"spec":{"basedOn":{"followUpdates":false}}}')
    status = wait_for("frozenRules captured anew", lambda: (s := _status(user, FROZEN)).get("frozenRules") and s)
    assert status["frozenRules"] == sorted([*v1_rules, GPG_RULE])
    assert runs(user.layer(), GPG_RULE)
