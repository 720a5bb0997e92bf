"""The operator recovers published ConfigMaps it cannot update in place, on the real control plane.

Before ``padlock operator`` starts (with nothing but the chart's RBAC, which lets it get, update and
delete only ``padlock-rules`` and ``padlock-rules-1..4``, and list nothing), someone left in the Falco
namespace an immutable, unlabelled ``padlock-rules`` with rules of their own, and a foreign
``padlock-rules-2`` that the Falco mount would load as a shard. Covers: the operator replaces the
first (delete + create: an immutable ConfigMap can never be updated) with the rendered ruleset, removes
the second, and says so in Warning Events ``Replaced`` and ``RemovedForeign`` on those ConfigMaps; a
ConfigMap made immutable while the operator runs (the lock off) is replaced at the next drift check.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from support_operator import CONFIGMAP, FALCO_NS, LAYER, RunningOperator, running_operator, wait_for

SOURCE = "recovery"
FOREIGN_DATA = {"zz-mine.yaml": "- macro: spawned_process\n  condition: (evt.num < 0)\n"}


def _configmap(kubectl: Any, name: str) -> dict[str, Any] | None:
    result = kubectl("get", "configmap", name, "-n", FALCO_NS, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def _events(kubectl: Any, name: str) -> list[dict[str, Any]]:
    result = kubectl("get", "events", "-n", FALCO_NS, "--field-selector", f"involvedObject.name={name}",
                     "-o", "json")
    return list(json.loads(result.stdout)["items"])


@pytest.fixture(scope="module")
def recovered(control_plane: Any, kubectl: Any, registry: str, crds_installed: list[str], operator_rbac: Any,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOperator]:
    for name, extra in ((CONFIGMAP, {"immutable": True}), (f"{CONFIGMAP}-2", {})):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": FALCO_NS},
                "data": FOREIGN_DATA, **extra}
        kubectl("delete", "configmap", name, "-n", FALCO_NS, "--ignore-not-found")
        kubectl("create", "-f", "-", input=json.dumps(body))
    assert (_configmap(kubectl, CONFIGMAP) or {}).get("immutable") is True
    workdir = tmp_path_factory.mktemp("publish-recovery")
    with running_operator(control_plane, kubectl, registry, workdir, source=SOURCE) as running:
        yield running


def test_an_immutable_foreign_configmap_is_replaced_by_the_rendered_ruleset(
    kubectl: Any, recovered: RunningOperator
) -> None:
    def republished() -> dict[str, Any] | None:
        cm = _configmap(kubectl, CONFIGMAP)
        ours = cm and (cm["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == "padlock"
        return cm if ours else None

    cm = wait_for("the operator to replace the immutable padlock-rules", republished, timeout=120)
    assert "immutable" not in cm
    assert LAYER in cm["data"] and "zz-mine.yaml" not in cm["data"]
    (event,) = wait_for("the Replaced Event", lambda: [e for e in _events(kubectl, CONFIGMAP)
                                                       if e["reason"] == "Replaced"])
    assert event["type"] == "Warning"
    assert "was replaced by the Padlock operator" in event["message"] and "immutable" in event["message"]
    assert event["involvedObject"]["uid"] == cm["metadata"]["uid"]


def test_a_foreign_configmap_under_a_shard_name_is_removed_and_reported(
    kubectl: Any, recovered: RunningOperator
) -> None:
    wait_for("the foreign padlock-rules-2 to go", lambda: _configmap(kubectl, f"{CONFIGMAP}-2") is None, timeout=120)
    (event,) = wait_for("the RemovedForeign Event", lambda: [e for e in _events(kubectl, f"{CONFIGMAP}-2")
                                                             if e["reason"] == "RemovedForeign"])
    assert "not made by Padlock" in event["message"] and "rules shard" in event["message"]
    assert "Replaced" in recovered.op.tail(400) or "replaced" in recovered.op.tail(400)


def test_a_configmap_made_immutable_while_the_operator_runs_is_replaced_at_the_next_drift_check(
    kubectl: Any, recovered: RunningOperator
) -> None:
    # No webhook and no lock policy in this module: as if the lock had been switched off meanwhile.
    before = wait_for("the published ConfigMap", lambda: _configmap(kubectl, CONFIGMAP))
    kubectl("patch", "configmap", CONFIGMAP, "-n", FALCO_NS, "--type=merge", "-p", '{"immutable":true}')

    def replaced() -> dict[str, Any] | None:
        cm = _configmap(kubectl, CONFIGMAP)
        return cm if cm and cm["metadata"]["uid"] != before["metadata"]["uid"] and "immutable" not in cm else None

    cm = wait_for("the operator to replace the ConfigMap made immutable", replaced, timeout=120)
    assert cm["data"] == before["data"]
    assert [e for e in _events(kubectl, CONFIGMAP)
            if e["reason"] == "Replaced" and e["involvedObject"].get("uid") == cm["metadata"]["uid"]]
