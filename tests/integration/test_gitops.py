"""GitOps: a ManagedPolicy declared in Git before the operator creates it is adopted, and server-side
apply shows there is no fight over fields.

The declared manifest is the one docs/gitops.md shows. Covers, on the real API server with the chart's lock in force (its ValidatingAdmissionPolicies applied,
and the operator's webhook in url mode once it runs):
- ``kubectl apply --server-side`` (field manager ``argocd-controller``, as Argo CD uses) of a
  ManagedPolicy holding only the user-choice fields (enabled, disabledRules, scope) succeeds before
  the operator runs: the lock lets a declaration through (padlock.policy.lock.declaration_violations);
- the operator, started afterwards, adopts it: it applies the catalog's fields (rules, catalog, source)
  beside the declared ones, writes its status, and the published ruleset honours the declared choices
  (the disabled rule is switched off in the layer);
- field ownership stays split: the declaring manager owns spec.enabled, spec.disabledRules and
  spec.scope, the operator owns spec.rules;
- a second server-side apply of the same manifest, without --force-conflicts, succeeds and writes
  nothing: the resourceVersion and the declaring manager's managedFields entry are unchanged;
- a declaration that also sets a locked field (spec.rules) is refused by the lock.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from padlock.devenv.controlplane import ControlPlane
from padlock.devenv.tools import Runner
from support_operator import KEYS_RULE, POLICY, RunningOperator, disabled, running_operator, wait_for
from support_webhook import VAP_NAMES, chart_template, managed_policy, wait_until

SOURCE = "gitops"
MANAGER = "argocd-controller"
DOC = Path(__file__).resolve().parents[2] / "docs" / "gitops.md"


def _documented_declaration() -> dict[str, Any]:
    """The declared ManagedPolicy of docs/gitops.md, so the documented manifest is the one tested."""
    block = re.search(r"<!-- BEGIN manifest: declared-managedpolicy -->\n```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert block, "docs/gitops.md lost its declared-managedpolicy manifest"
    obj: dict[str, Any] = yaml.safe_load(block.group(1))
    return obj


DECLARED = _documented_declaration()


def _apply(kubectl: Runner, obj: dict[str, Any]) -> Any:
    return kubectl("apply", "--server-side", f"--field-manager={MANAGER}", "--show-managed-fields", "-o", "json",
                   "-f", "-", input=json.dumps(obj), check=False)


def _quiet(kubectl: Runner) -> bool:
    """The ManagedPolicy's resourceVersion did not move for a second."""
    first = _get(kubectl)["metadata"]["resourceVersion"]
    time.sleep(1)
    return bool(_get(kubectl)["metadata"]["resourceVersion"] == first)


def _get(kubectl: Runner) -> dict[str, Any]:
    """The declared ManagedPolicy as stored, with its managedFields."""
    data: dict[str, Any] = json.loads(
        kubectl("get", "managedpolicy", POLICY, "--show-managed-fields", "-o", "json").stdout)
    return data


@pytest.fixture(scope="module")
def lock_policy(kubectl: Runner, helm: Runner, crds_installed: list[str]) -> Iterator[None]:
    """The chart's ValidatingAdmissionPolicies, enforced (probed with a server-side dry run)."""
    kubectl("apply", "-f", "-", input=chart_template(helm, "lock-policy.yaml"))
    probe = json.dumps(managed_policy("gitops-probe"))
    try:
        wait_until(lambda: "padlock-lock-managedpolicies" in kubectl(
            "create", "--dry-run=server", "-f", "-", input=probe, check=False).stderr,
            timeout=60, what="the API server to enforce the lock policy")
        yield
    finally:
        kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", *VAP_NAMES,
                "--ignore-not-found")


@pytest.fixture(scope="module")
def adopted(
    control_plane: ControlPlane, kubectl: Runner, helm: Runner, registry: str, operator_rbac: Any,
    lock_policy: None, tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningOperator, dict[str, Any]]]:
    """The declaration applied first, then the operator started; yields once the operator adopted it."""
    kubectl("delete", "managedpolicy", POLICY, "--ignore-not-found")
    first = _apply(kubectl, DECLARED)
    assert first.returncode == 0, first.stderr
    declared = json.loads(first.stdout)
    assert "rules" not in declared["spec"]
    workdir: Path = tmp_path_factory.mktemp("gitops")
    with running_operator(control_plane, kubectl, registry, workdir, source=SOURCE, helm=helm) as running:
        user = running.user
        policy = wait_for("the operator to adopt the declared ManagedPolicy", lambda: (
            (obj := user.get("managedpolicy", POLICY)) and (obj.get("spec") or {}).get("rules")
            and (obj.get("status") or {}).get("conditions") and obj))
        assert policy["metadata"]["uid"] == declared["metadata"]["uid"], "adopted, not replaced"
        yield running, policy


def test_a_declaration_with_only_user_choices_is_adopted_and_honoured(
    kubectl: Runner, adopted: tuple[RunningOperator, dict[str, Any]],
) -> None:
    running, policy = adopted
    spec = policy["spec"]
    assert {k: spec[k] for k in ("enabled", "disabledRules", "scope")} == DECLARED["spec"]
    assert spec["catalog"]["policy"] == POLICY and spec["source"]["ruleSource"] == SOURCE
    assert KEYS_RULE in {r["name"] for r in spec["rules"]}
    assert DECLARED["metadata"]["name"] == POLICY and DECLARED["spec"]["disabledRules"] == [KEYS_RULE]
    assert policy["metadata"]["annotations"].items() >= DECLARED["metadata"]["annotations"].items()
    assert policy["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "padlock"
    wait_for("the declared disabled rule to be off in the published layer",
             lambda: disabled(running.user.layer(), KEYS_RULE))
    owners: dict[str, set[str]] = {}
    for entry in _get(kubectl)["metadata"]["managedFields"]:
        fields = ((entry.get("fieldsV1") or {}).get("f:spec") or {})
        owners[entry["manager"]] = owners.get(entry["manager"], set()) | set(fields)
    assert owners[MANAGER] >= {"f:enabled", "f:disabledRules", "f:scope"}
    assert "f:rules" not in owners[MANAGER]
    operator_fields = set().union(*(v for k, v in owners.items() if k != MANAGER))
    assert "f:rules" in operator_fields
    assert not operator_fields & {"f:enabled", "f:disabledRules", "f:scope"}


def test_a_second_server_side_apply_of_the_same_manifest_writes_nothing(
    kubectl: Runner, adopted: tuple[RunningOperator, dict[str, Any]],
) -> None:
    running, _ = adopted
    wait_for("the published layer", lambda: disabled(running.user.layer(), KEYS_RULE))

    def mine(obj: dict[str, Any]) -> list[dict[str, Any]]:
        return [e for e in obj["metadata"]["managedFields"] if e["manager"] == MANAGER]

    # The operator may still write status between two reads; an attempt counts only when nothing else
    # wrote around it (same resourceVersion just before and just after), bounded.
    for _attempt in range(10):
        before = _get(kubectl)
        again = _apply(kubectl, DECLARED)
        assert again.returncode == 0, again.stderr  # no conflict, without --force-conflicts
        applied = json.loads(again.stdout)
        after = _get(kubectl)
        assert mine(applied) == mine(before), "the second apply rewrote the declaring manager's fields"
        if after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]:
            assert applied["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
            break
        wait_until(lambda: _quiet(kubectl), timeout=60, what="the operator to stop writing the ManagedPolicy")
    else:
        pytest.fail("the ManagedPolicy never stayed unchanged across an apply (10 attempts)")


def test_a_declaration_that_sets_a_locked_field_is_refused(
    kubectl: Runner, adopted: tuple[RunningOperator, dict[str, Any]],
) -> None:
    grabbing = json.loads(json.dumps(DECLARED))
    grabbing["metadata"]["name"] = "gitops-grab"
    grabbing["spec"]["rules"] = managed_policy("x")["spec"]["rules"]
    refused = _apply(kubectl, grabbing)
    assert refused.returncode != 0
    assert "spec.rules" in refused.stderr and "declared ahead of it" in refused.stderr, refused.stderr
