"""The manifests of docs/gitops.md: they parse, say what the text claims, and the Argo CD health check
gives the right verdict when run.

Covers: every fenced manifest between ``<!-- BEGIN manifest: NAME -->`` markers parses as YAML; the
declared ManagedPolicy holds only user-choice fields (``padlock.policy.lock.declaration_violations`` is
empty), validates against the ManagedPolicy model and opts out of pruning for both tools; the Argo CD
Application points at this repository's chart path with values the chart's schema accepts (real
``helm template``), syncs with ServerSideApply and RespectIgnoreDifferences, and ignores exactly the
webhook configuration's caBundle under the chart's default configuration name; the ``argocd-cm``
health check exists for every Padlock kind with a Ready condition and, run with Lua 5.1 (the language
of Argo CD's gopher-lua, through lupa), says Progressing without status or for an older generation,
Healthy for Ready=True, Degraded for Ready=False with the reason; the Flux HelmRelease creates and
replaces CRDs on install and upgrade from the chart path, and the Kustomization prunes without force.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import pytest
import yaml

from padlock.api import ManagedPolicy
from padlock.devenv import tools
from padlock.policy import lock

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "gitops.md"
KINDS_WITH_READY = ("RuleSource", "ManagedPolicy", "CustomPolicy", "PolicyException", "ClusterPolicyException")


def manifests() -> dict[str, list[dict[str, Any]]]:
    text = DOC.read_text()
    blocks = re.findall(r"<!-- BEGIN manifest: ([\w-]+) -->\n```yaml\n(.*?)```\n<!-- END manifest: \1 -->", text, re.S)
    return {name: [d for d in yaml.safe_load_all(body) if d] for name, body in blocks}


@pytest.fixture(scope="module")
def docs() -> dict[str, list[dict[str, Any]]]:
    found = manifests()
    assert set(found) == {"declared-managedpolicy", "argocd-application", "argocd-cm", "flux-helmrelease",
                          "flux-kustomization"}
    return found


def test_the_declared_managed_policy_holds_only_user_choices_and_is_never_pruned(docs: dict[str, Any]) -> None:
    (policy,) = docs["declared-managedpolicy"]
    ManagedPolicy.model_validate(policy)
    assert lock.declaration_violations(policy, "anyone") == []
    assert set(policy["spec"]) <= set(lock.USER_CHOICE_SPEC_FIELDS)
    notes = policy["metadata"]["annotations"]
    assert "Prune=false" in notes["argocd.argoproj.io/sync-options"].split(",")
    assert "ServerSideApply=true" in notes["argocd.argoproj.io/sync-options"].split(",")
    assert notes["kustomize.toolkit.fluxcd.io/prune"] == "disabled"


def test_the_argo_cd_application_syncs_the_chart_server_side_and_ignores_only_the_ca_bundle(
    docs: dict[str, Any],
) -> None:
    (app,) = docs["argocd-application"]
    assert app["apiVersion"] == "argoproj.io/v1alpha1" and app["kind"] == "Application"
    source = app["spec"]["source"]
    assert (REPO / source["path"] / "Chart.yaml").is_file()
    options = app["spec"]["syncPolicy"]["syncOptions"]
    assert "ServerSideApply=true" in options and "RespectIgnoreDifferences=true" in options
    (ignored,) = app["spec"]["ignoreDifferences"]
    default_name = yaml.safe_load((REPO / "charts/padlock/values.yaml").read_text())["webhook"]["configurationName"]
    assert (ignored["group"], ignored["kind"], ignored["name"]) == (
        "admissionregistration.k8s.io", "ValidatingWebhookConfiguration", default_name)
    assert ignored["jqPathExpressions"] == [".webhooks[]?.clientConfig.caBundle"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as values:
        yaml.safe_dump(source["helm"]["valuesObject"], values)
        values.flush()
        result = subprocess.run([str(tools.find("helm")), "template", "padlock", str(REPO / source["path"]),
                                 "-f", values.name], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def _health(script: str, obj: dict[str, Any]) -> tuple[str, str]:
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)

    def table(value: Any) -> Any:
        if isinstance(value, dict):
            return runtime.table_from({k: table(v) for k, v in value.items()})
        if isinstance(value, list):
            return runtime.table_from([table(v) for v in value])
        return value

    runtime.globals()["obj"] = table(obj)
    hs = runtime.execute(script)
    return str(hs["status"]), str(hs["message"])


def _obj(generation: int, *conditions: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "x", "generation": generation}}
    if conditions:
        obj["status"] = {"conditions": list(conditions)}
    return obj


def _ready(status: str, generation: int = 2, reason: str = "Published", message: str = "ok") -> dict[str, Any]:
    return {"type": "Ready", "status": status, "reason": reason, "message": message,
            "observedGeneration": generation}


def test_the_argo_cd_health_check_covers_every_kind_and_reads_the_ready_condition(docs: dict[str, Any]) -> None:
    (cm,) = docs["argocd-cm"]
    scripts = {k.rsplit("_", 1)[1]: v for k, v in cm["data"].items()
               if k.startswith("resource.customizations.health.padlock.dev_")}
    assert set(scripts) == set(KINDS_WITH_READY)
    assert len(set(scripts.values())) == 1
    script = scripts["ManagedPolicy"]
    assert _health(script, _obj(2))[0] == "Progressing"
    assert _health(script, _obj(2, _ready("True")))[0] == "Healthy"
    status, message = _health(script, _obj(2, _ready("False", reason="ValidationFailed", message="rule x: LOAD_ERR")))
    assert (status, message) == ("Degraded", "ValidationFailed: rule x: LOAD_ERR")
    assert _health(script, _obj(3, _ready("True", generation=2)))[0] == "Progressing"
    assert _health(script, _obj(2, _ready("Unknown")))[0] == "Progressing"
    other = {"type": "Degraded", "status": "True", "reason": "R", "observedGeneration": 2}
    assert _health(script, _obj(2, other, _ready("True")))[0] == "Healthy"


def test_flux_replaces_crds_on_upgrade_and_prunes_without_force(docs: dict[str, Any]) -> None:
    repo, release = docs["flux-helmrelease"]
    assert repo["kind"] == "GitRepository"
    assert release["apiVersion"] == "helm.toolkit.fluxcd.io/v2" and release["kind"] == "HelmRelease"
    assert release["spec"]["install"]["crds"] == "CreateReplace"
    assert release["spec"]["upgrade"]["crds"] == "CreateReplace"
    chart = release["spec"]["chart"]["spec"]
    assert (REPO / chart["chart"] / "Chart.yaml").is_file()
    assert chart["sourceRef"] == {"kind": "GitRepository", "name": repo["metadata"]["name"],
                                  "namespace": repo["metadata"]["namespace"]}
    (kustomization,) = docs["flux-kustomization"]
    assert kustomization["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    spec = kustomization["spec"]
    assert spec["prune"] is True and spec["force"] is False and spec["wait"] is True
