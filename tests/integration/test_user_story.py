"""The user's side of the story (PRODUCT.md section 6, step 2, then v2), end to end on a real API server,
a real OCI registry and the real ``padlock operator`` serving its webhook (chart RBAC only).

Module-scoped, in story order: v1 is adopted; the user disables a rule in a managed policy, adds a
PolicyException for image nginx on "Terminal shell in container" in namespace A, is refused an edit
of a managed rule's condition, copies the managed policy twice with ``padlock copy`` (followed, and
``--freeze``); v2 arrives: the followed copy carries the new GPG rule, the frozen one does not, and
the exception and the disabled rule still hold in the published ConfigMap. Then namespace
confinement (an exception in A only ever matches A; one naming B is refused by the webhook) and
expiry (an exception past ``expiresAt`` leaves the ConfigMap and says so in status).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from padlock.engine.loader import load
from padlock.engine.model import RulesFile
from support_operator import (
    CARRIERS,
    GPG_RULE,
    KEYS_RULE,
    POLICY,
    SHELL_RULE,
    User,
    disabled,
    exception_entries,
    running_operator,
    runs,
    wait_for,
)

SOURCE = "user-story"
DISABLED_RULE = "Read cloud credentials file"
FOLLOWED, FROZEN = "my-credential-access", "frozen-credential-access"


def _exception(name: str, namespace: str, *, rule: str = SHELL_RULE, policy: str = "execution",
               match: dict[str, Any] | None = None, expires_at: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"policies": [{"kind": "ManagedPolicy", "name": policy, "rules": [rule]}],
                            "match": match or {"images": ["nginx"]}, "reason": "the nginx entrypoint runs a shell"}
    if expires_at:
        spec["expiresAt"] = expires_at
    return {"apiVersion": "padlock.dev/v1alpha1", "kind": "PolicyException",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


@pytest.fixture(scope="module")
def story(control_plane: Any, kubectl: Any, helm: Any, registry: str, crds_installed: list[str],
          operator_rbac: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("user-story")
    suffix = secrets.token_hex(3)
    ns_a, ns_b = f"team-a-{suffix}", f"team-b-{suffix}"
    control_plane.create_namespace(ns_a)
    control_plane.create_namespace(ns_b)
    cleanup = [("delete", "policyexceptions", "--all", "-n", ns_a, "--wait=false"),
               ("delete", "custompolicies", FOLLOWED, FROZEN, "--ignore-not-found", "--wait=false")]
    with running_operator(control_plane, kubectl, registry, workdir, source=SOURCE, helm=helm,
                          cleanup=cleanup) as running:
        user = running.user
        wait_for(f"ManagedPolicy {POLICY} with status",
                 lambda: user.status("managedpolicy", POLICY).get("lastUpdated"))
        running.serving(POLICY)
        yield {"user": user, "running": running, "hook": running.hook, "a": ns_a, "b": ns_b}


def test_user_disables_a_rule_in_a_managed_policy(story: dict[str, Any]) -> None:
    user: User = story["user"]
    assert not disabled(user.layer(), DISABLED_RULE)
    for policy in CARRIERS:
        user.kubectl("patch", "managedpolicy", policy, "--type=merge", "-p",
                     json.dumps({"spec": {"disabledRules": [DISABLED_RULE]}}))
    wait_for("the rule disabled in the published layer", lambda: disabled(user.layer(), DISABLED_RULE))
    status = wait_for("enabledRuleCount one below ruleCount", lambda: (
        (s := user.status("managedpolicy", POLICY))
        and s["enabledRuleCount"] == s["ruleCount"] - 1 and s))
    assert not status.get("missingDisabledRules")


def test_policy_exception_for_nginx_on_terminal_shell_is_published_pinned_to_its_namespace(
    story: dict[str, Any],
) -> None:
    user: User = story["user"]
    ns = story["a"]
    user.apply(_exception("nginx-shell", ns))
    name = f"padlock_pe_{ns}_nginx-shell"
    entry = wait_for("the exception in the published layer", lambda: exception_entries(user.layer(), SHELL_RULE).get(name))
    assert entry["fields"] == ["container.image.repository", "k8s.ns.name"]
    assert entry["comps"] == ["in", "="]
    assert entry["values"] == [[["nginx"], ns]]
    status = wait_for("exception status", lambda: (
        (s := user.status("policyexception", "nginx-shell", "-n", ns)).get("conditions") and s))
    assert status["active"] is True
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Rendered")


def test_edit_of_a_managed_rules_condition_is_rejected_with_a_clear_message(story: dict[str, Any]) -> None:
    user: User = story["user"]
    policy = user.get("managedpolicy", POLICY) or {}
    index = next(i for i, r in enumerate(policy["spec"]["rules"]) if r["name"] == KEYS_RULE)
    patch = [{"op": "replace", "path": f"/spec/rules/{index}/condition", "value": "evt.num > 0"}]
    done = user.kubectl("patch", "managedpolicy", POLICY, "--type=json", "-p", json.dumps(patch), check=False)
    assert done.returncode != 0
    assert f'admission webhook "lock-managedpolicy.{story["hook"].name}" denied the request' in done.stderr
    assert f"spec.rules[{index}].condition (changed)" in done.stderr
    assert f"padlock copy managedpolicy/{POLICY} my-{POLICY}" in done.stderr
    after = user.get("managedpolicy", POLICY) or {}
    assert after["spec"]["rules"][index]["condition"] == policy["spec"]["rules"][index]["condition"]


def test_padlock_copy_makes_a_followed_and_a_frozen_custom_policy(story: dict[str, Any]) -> None:
    user: User = story["user"]
    applied = user.padlock("copy", f"managedpolicy/{POLICY}", FOLLOWED, "--apply")
    assert applied.returncode == 0, applied.stderr
    printed = user.padlock("copy", f"managedpolicy/{POLICY}", FROZEN, "--freeze")
    assert printed.returncode == 0, printed.stderr
    frozen = yaml.safe_load(printed.stdout)
    assert frozen["kind"] == "CustomPolicy" and frozen["spec"]["basedOn"] == {"managedPolicy": POLICY,
                                                                             "followUpdates": False}
    user.kubectl("apply", "-f", "-", input=printed.stdout)
    followed = user.get("custompolicy", FOLLOWED) or {}
    assert followed["spec"]["basedOn"] == {"managedPolicy": POLICY, "followUpdates": True}
    assert followed["spec"]["disabledRules"] == [DISABLED_RULE]
    managed_rules = {r["name"] for r in (user.get("managedpolicy", POLICY) or {})["spec"]["rules"]}
    stored = user.get("custompolicy", FROZEN) or {}
    assert set(stored["spec"]["rules"]) == managed_rules and GPG_RULE not in managed_rules
    for name in (FOLLOWED, FROZEN):
        wait_for(f"CustomPolicy {name} in force", lambda name=name: any(
            c["type"] == "Ready" and c["reason"] == "Rendered"
            for c in user.status("custompolicy", name).get("conditions") or []))


def test_v2_reaches_the_followed_copy_not_the_frozen_one_and_choices_hold(story: dict[str, Any]) -> None:
    user: User = story["user"]
    ns = story["a"]
    story["running"].push("v2", "1.1.0")
    wait_for("ConfigMap with v2", lambda: f"{SOURCE}=1.1.0" in ((user.configmap() or {}).get("metadata") or {}).get(
        "annotations", {}).get("padlock.dev/source-versions", ""))
    cm = user.configmap() or {}
    assert GPG_RULE in cm["data"][f"50-{SOURCE}-padlock_example_rules.yaml"]
    layer = user.layer()
    # The user's choices survived the update: the rule is still off, the nginx tuple still there.
    assert disabled(layer, DISABLED_RULE)
    entry = exception_entries(layer, SHELL_RULE)[f"padlock_pe_{ns}_nginx-shell"]
    assert entry["values"] == [[["nginx"], ns]]
    # Which policy carries the GPG rule shows once the managed originals are off: only the followed
    # copy brings it; the frozen copy still runs its own frozen rules.
    for policy in CARRIERS:
        user.kubectl("patch", "managedpolicy", policy, "--type=merge", "-p", '{"spec":{"enabled":false}}')
    user.kubectl("patch", "custompolicy", FOLLOWED, "--type=merge", "-p", '{"spec":{"enabled":false}}')
    layer = wait_for("GPG off with only the frozen copy enabled",
                     lambda: (lay := user.layer()) and disabled(lay, GPG_RULE) and lay)
    assert runs(layer, KEYS_RULE), "the frozen copy keeps its own rules running"
    assert disabled(layer, DISABLED_RULE), "the frozen copy carries the user's disabled rule"
    user.kubectl("patch", "custompolicy", FOLLOWED, "--type=merge", "-p", '{"spec":{"enabled":true}}')
    layer = wait_for("GPG on again through the followed copy",
                     lambda: (lay := user.layer()) and runs(lay, GPG_RULE) and lay)
    assert disabled(layer, DISABLED_RULE), "the followed copy carries the user's disabled rule"
    for policy in CARRIERS:
        user.kubectl("patch", "managedpolicy", policy, "--type=json", "-p",
                     '[{"op":"remove","path":"/spec/enabled"}]')
    managed = user.get("managedpolicy", POLICY) or {}
    assert GPG_RULE in {r["name"] for r in managed["spec"]["rules"]}
    assert managed["status"]["changes"][0]["added"] == [GPG_RULE]


def test_exception_in_namespace_a_only_ever_matches_namespace_a(story: dict[str, Any]) -> None:
    user: User = story["user"]
    ns_a, ns_b = story["a"], story["b"]
    files = [RulesFile(k, v) for k, v in sorted((user.configmap() or {})["data"].items())]
    loaded = load(files, plugins={"container": "0.4.0"})
    assert loaded.valid, [d.one_line() for d in loaded.errors]
    compiled = loaded.ruleset.rules[SHELL_RULE].compiled_condition
    assert f"k8s.ns.name = {ns_a}" in compiled and ns_b not in compiled, compiled
    # Naming namespace B from namespace A is refused at apply time by the operator's webhook.
    escape = _exception("nginx-shell-elsewhere", ns_a, match={
        "fields": ["container.image.repository", "k8s.ns.name"], "comps": ["=", "="], "values": [["nginx", ns_b]]})
    done = user.apply(escape, check=False)
    assert done.returncode != 0, done.stdout
    assert f'admission webhook "validate-policyexception.{story["hook"].name}" denied the request' in done.stderr
    assert f'PolicyException {ns_a}/nginx-shell-elsewhere' in done.stderr, done.stderr
    assert f'"{ns_b}" is another namespace' in done.stderr, done.stderr
    assert user.get("policyexception", "nginx-shell-elsewhere", "-n", ns_a) is None


def _condition(user: User, name: str, namespace: str) -> dict[str, Any]:
    status = user.status("policyexception", name, "-n", namespace)
    ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
    return {"active": status.get("active"), **ready}


def test_expired_exceptions_stop_applying_and_say_so(story: dict[str, Any]) -> None:
    user: User = story["user"]
    ns = story["a"]
    # No more source polls (their status writes would trigger renders): only the clock changes now.
    user.kubectl("patch", "rulesource", SOURCE, "--type=merge", "-p", '{"spec":{"interval":"1h"}}')
    time.sleep(3)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    past = (now - dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    soon = (now + dt.timedelta(seconds=8)).isoformat().replace("+00:00", "Z")
    user.apply(_exception("already-expired", ns, rule=KEYS_RULE, policy=POLICY, expires_at=past))
    user.apply(_exception("expires-soon", ns, rule=KEYS_RULE, policy=POLICY, expires_at=soon))
    soon_name, past_name = f"padlock_pe_{ns}_expires-soon", f"padlock_pe_{ns}_already-expired"
    entries = wait_for("the short-lived exception in the layer",
                       lambda: (e := exception_entries(user.layer(), KEYS_RULE)) and soon_name in e and e)
    assert past_name not in entries
    expired = wait_for("already-expired reported", lambda: (c := _condition(user, "already-expired", ns))
                       .get("reason") == "Expired" and c)
    assert expired["active"] is False and "expiresAt has passed" in expired["message"]
    assert _condition(user, "expires-soon", ns)["active"] is True
    # Nothing else changes in the cluster when it expires: the operator notices the time by itself.
    wait_for("the short-lived exception to leave the layer",
             lambda: soon_name not in exception_entries(user.layer(), KEYS_RULE), timeout=60)
    assert dt.datetime.now(dt.UTC) >= now + dt.timedelta(seconds=8)
    gone = wait_for("expires-soon reported expired",
                    lambda: (c := _condition(user, "expires-soon", ns)).get("reason") == "Expired" and c)
    assert gone["active"] is False
    # The unexpired nginx exception is untouched.
    assert f"padlock_pe_{ns}_nginx-shell" in exception_entries(user.layer(), SHELL_RULE)
