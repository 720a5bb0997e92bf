"""One object's size or failure leaves only that object out, on a real API server with the real operator.

Module-scoped story (chart RBAC only, example rules from a real OCI registry): a tenant, allowed to
write PolicyExceptions in its own namespace only, creates one of about 1 MB (within the CRD's
limits); it is left out of the published ruleset with ``Ready=False`` reason ``TooLarge`` and one
Event of that reason (not repeated by later renders), and ``kubectl get policyexceptions`` shows ``TooLarge`` at a glance; an
admin's later ``disabledRules`` change is still published, and a small exception of another tenant
too; never more ConfigMaps than the mount declares. Then an admin's CustomPolicy whose
``falcoRules`` nest 1,000 deep, and one with a bad condition, are left out with ``Invalid`` while
release v2 is adopted and published on time (its new GPG rule reaches the layer).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from support_operator import (
    CARRIERS,
    CONFIGMAP,
    FALCO_NS,
    GPG_RULE,
    SHELL_RULE,
    User,
    disabled,
    exception_entries,
    running_operator,
    wait_for,
)

SOURCE = "isolation-story"
DISABLED_RULE = "Read cloud credentials file"
API = "padlock.dev/v1alpha1"


def _exception(name: str, namespace: str, values: list[list[str]]) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "PolicyException", "metadata": {"name": name, "namespace": namespace},
            "spec": {"policies": [{"kind": "ManagedPolicy", "name": "execution", "rules": [SHELL_RULE]}],
                     "match": {"fields": ["proc.name"], "comps": ["="], "values": values},
                     "reason": "noise from our jobs"}}


def _ready(user: User, *args: str) -> dict[str, Any] | None:
    return user.condition("Ready", *args)


@pytest.fixture(scope="module")
def story(control_plane: Any, kubectl: Any, registry: str, crds_installed: list[str], operator_rbac: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("isolation-story")
    suffix = secrets.token_hex(3)
    ns_a, ns_b = f"tenant-a-{suffix}", f"tenant-b-{suffix}"
    for ns in (ns_a, ns_b):
        control_plane.create_namespace(ns)
        # The tenant may write PolicyExceptions in its own namespaces, nothing else.
        kubectl("create", "role", "exceptions", "-n", ns, "--verb=get,list,watch,create,update,patch,delete",
                "--resource=policyexceptions.padlock.dev")
        kubectl("create", "rolebinding", "tenant-exceptions", "-n", ns, "--role=exceptions", "--user=tenant")
    cleanup = [("delete", "policyexceptions", "--all", "-n", ns, "--wait=false") for ns in (ns_a, ns_b)]
    cleanup.append(("delete", "custompolicies", "deep-rules", "bad-condition", "--ignore-not-found", "--wait=false"))
    with running_operator(control_plane, kubectl, registry, workdir, source=SOURCE, cleanup=cleanup) as running:
        user = running.user
        wait_for("v1 published", lambda: user.configmap())
        yield {"user": user, "running": running, "kubectl": kubectl, "a": ns_a, "b": ns_b}


def test_tenant_exception_of_about_a_megabyte_is_left_out_as_too_large_and_shown_at_a_glance(
    story: dict[str, Any],
) -> None:
    user: User = story["user"]
    ns = story["a"]
    huge = _exception("huge", ns, [[f"job-{i}-" + "x" * 3990] for i in range(250)])
    assert len(json.dumps(huge)) > 1_000_000
    # create, not apply: apply would also store the whole object again in an annotation
    story["kubectl"]("create", "-f", "-", input=json.dumps(huge), identity="tenant")
    ready = wait_for("the huge exception's Ready condition", lambda: (
        (c := _ready(user, "policyexception", "huge", "-n", ns)) and c["reason"] != "Rendered" and c))
    assert (ready["status"], ready["reason"]) == ("False", "TooLarge")
    assert "per-object limit of 262144" in ready["message"]
    assert user.status("policyexception", "huge", "-n", ns)["active"] is False
    table = user.kubectl("get", "policyexceptions", "-n", ns).stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:2] == ["NAME", "POLICIES"] and "STATE" in header.split()
    assert row.split()[0] == "huge" and "TooLarge" in row.split()
    events = wait_for("one TooLarge Event on it", lambda: [
        e for e in (user.get("events", "-n", ns, "--field-selector", "involvedObject.name=huge") or {}).get("items", [])
        if e["reason"] == "TooLarge"])
    assert len(events) == 1 and events[0]["type"] == "Warning"
    assert f"padlock_pe_{ns}_huge" not in exception_entries(user.layer(), SHELL_RULE)


def test_an_admins_change_made_after_it_is_published_and_so_is_another_tenants_exception(
    story: dict[str, Any],
) -> None:
    user: User = story["user"]
    assert not disabled(user.layer(), DISABLED_RULE)
    for policy in CARRIERS:
        user.kubectl("patch", "managedpolicy", policy, "--type=merge", "-p",
                     json.dumps({"spec": {"disabledRules": [DISABLED_RULE]}}))
    wait_for("the admin's disabledRules in the published layer", lambda: disabled(user.layer(), DISABLED_RULE))
    ns_b = story["b"]
    story["kubectl"]("create", "-f", "-", input=json.dumps(_exception("small", ns_b, [["cron"]])), identity="tenant")
    entry = wait_for("the other tenant's exception published", lambda: exception_entries(
        user.layer(), SHELL_RULE).get(f"padlock_pe_{ns_b}_small"))
    assert entry["values"] == [["cron", ns_b]]
    assert f"padlock_pe_{story['a']}_huge" not in exception_entries(user.layer(), SHELL_RULE)
    assert _ready(user, "policyexception", "huge", "-n", story["a"])["reason"] == "TooLarge"  # type: ignore[index]
    events = (user.get("events", "-n", story["a"], "--field-selector", "involvedObject.name=huge") or {})["items"]
    assert [e["reason"] for e in events] == ["TooLarge"]  # the renders since did not repeat it
    shards = user.get("configmaps", "-n", FALCO_NS) or {}
    names = [c["metadata"]["name"] for c in shards["items"] if c["metadata"]["name"].startswith(CONFIGMAP)]
    assert 1 <= len(names) <= 4


def test_invalid_custom_policies_do_not_block_the_adoption_of_a_new_release(story: dict[str, Any]) -> None:
    user: User = story["user"]
    deep = {"apiVersion": API, "kind": "CustomPolicy", "metadata": {"name": "deep-rules"},
            "spec": {"falcoRules": "- rule: Deep\n  desc: " + "[" * 1000 + "]" * 1000 + "\n"}}
    bad = {"apiVersion": API, "kind": "CustomPolicy", "metadata": {"name": "bad-condition"},
           "spec": {"falcoRules": "- rule: Bad\n  desc: d\n  condition: spawned_process and no_such_macro\n"
                                  "  output: o %proc.name\n  priority: WARNING\n"}}
    for obj in (deep, bad):
        user.apply(obj)
    for name in ("deep-rules", "bad-condition"):
        ready = wait_for(f"CustomPolicy {name} left out", lambda name=name: (
            (c := _ready(user, "custompolicy", name)) and c["status"] == "False" and c))
        assert ready["reason"] == "Invalid" and "spec.falcoRules" in ready["message"]
    assert "no_such_macro" in _ready(user, "custompolicy", "bad-condition")["message"]  # type: ignore[index]
    story["running"].push("v2", "1.1.0")
    wait_for("v2 adopted", lambda: user.status("rulesource", SOURCE).get("currentVersion") == "1.1.0", timeout=120)
    wait_for("v2 published", lambda: "1.1.0" in ((user.configmap() or {}).get("metadata", {}).get(
        "annotations", {}).get("padlock.dev/source-versions", "")))
    cm = user.configmap() or {}
    upstream = "".join(v for k, v in cm["data"].items() if not k.startswith("99-padlock"))
    assert GPG_RULE in upstream
    assert disabled(user.layer(), DISABLED_RULE)  # the admin's choice still holds
    table = user.kubectl("get", "custompolicies").stdout
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    assert "Invalid" in rows["deep-rules"] and "Invalid" in rows["bad-condition"]
