"""Bind the operator's test identity to exactly the RBAC that the Helm chart grants the operator.

Called by the ``operator_rbac`` fixture and ``padlock demo``. The chart (``charts/padlock``, owned by
the chart) renders ClusterRole/ClusterRoleBinding/Role/RoleBinding for the ServiceAccount ``padlock``
in the release namespace. Because RBAC matches a ServiceAccount subject by the user name
``system:serviceaccount:padlock-system:padlock``, applying those very manifests binds the control
plane's ``operator`` token, so a permission the chart forgot fails in tests instead of in a cluster.
There is deliberately no fallback RBAC here: without the chart file this fails.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from padlock.devenv import paths, tools
from padlock.devenv.controlplane import ControlPlane
from padlock.devenv.errors import MissingComponentError

RELEASE = "padlock"
NAMESPACE = "padlock-system"
TEMPLATE = "templates/rbac.yaml"
# The tuner's rules live in their own template, rendered with the tuner switched on so tests hold the
# operator to everything the chart can grant it.
TUNER_TEMPLATE = "templates/tuner-rbac.yaml"
TUNER_VALUES = ("tuner.enabled=true", "tuner.tokenSecret.name=padlock-tuner-token")
RBAC_KINDS = frozenset({"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"})


@dataclass(frozen=True)
class OperatorRbac:
    """What was applied: the rendered manifest text and its parsed documents."""

    manifest: str
    documents: list[dict[str, Any]] = field(default_factory=list)

    def rules(self, kind: str) -> list[dict[str, Any]]:
        """All rules of every ClusterRole (``kind="ClusterRole"``) or Role (``kind="Role"``)."""
        out: list[dict[str, Any]] = []
        for doc in self.documents:
            if doc.get("kind") == kind:
                out.extend(doc.get("rules") or [])
        return out


def chart_dir(repo: Path | None = None) -> Path:
    """``charts/padlock`` of the source checkout; fails clearly when the checkout or file is missing."""
    repo = paths.repo_root() if repo is None else repo
    if repo is None:
        raise MissingComponentError(
            "charts/padlock: no padlock source checkout found (set PADLOCK_REPO to one)"
        )
    chart = repo / "charts" / "padlock"
    if not (chart / TEMPLATE).is_file():
        raise MissingComponentError(
            f"{chart / TEMPLATE} does not exist: the operator's RBAC comes only from the Helm chart "
            "(ClusterRole/ClusterRoleBinding/Role/RoleBinding for ServiceAccount padlock); "
            "the chart must provide it before operator permissions can be tested"
        )
    return chart


def render(chart: Path, helm: Path) -> OperatorRbac:
    """``helm template padlock <chart> --namespace padlock-system --show-only templates/rbac.yaml``."""
    with tempfile.TemporaryDirectory(prefix="padlock-helm-") as home:
        # helm template talks to no cluster; the kubeconfig path only has to be a path.
        runner = tools.Runner(helm, lambda _identity: Path(home) / "no-kubeconfig", Path(home))
        result = runner(
            "template",
            RELEASE,
            str(chart),
            "--namespace",
            NAMESPACE,
            "--show-only",
            TEMPLATE,
            *(["--show-only", TUNER_TEMPLATE] if (chart / TUNER_TEMPLATE).is_file() else []),
            *(arg for value in TUNER_VALUES for arg in ("--set", value)),
            identity="admin",
        )
    documents = [doc for doc in yaml.load_all(result.stdout, Loader=yaml.SafeLoader) if doc]
    kinds = {doc.get("kind") for doc in documents}
    if not documents or not kinds <= RBAC_KINDS:
        raise MissingComponentError(
            f"{chart / TEMPLATE}: rendered kinds {sorted(map(str, kinds))}, expected only {sorted(RBAC_KINDS)}"
        )
    return OperatorRbac(result.stdout, documents)


def install_operator_rbac(cp: ControlPlane, *, chart: Path | None = None) -> OperatorRbac:
    """Render the chart's RBAC and apply it to ``cp`` with kubectl as admin; return what was applied."""
    chart = chart_dir() if chart is None else chart
    rendered = render(chart, tools.find("helm"))
    kubectl = tools.Runner(tools.find("kubectl"), cp.kubeconfig, cp.workdir)
    kubectl("apply", "-f", "-", identity="admin", input=rendered.manifest)
    _wait_effective(rendered, cp)
    return rendered


def _wait_effective(rendered: OperatorRbac, cp: ControlPlane, timeout: float = 30.0) -> None:
    # The RBAC authorizer reads bindings from an informer cache, so a grant can lag its apply by a
    # moment; wait until one concrete cluster-wide grant is allowed before tests rely on it. A raw
    # SelfSubjectAccessReview needs no discovery, so it works before the CRDs are installed.
    probe = next(
        (
            {
                "verb": verb,
                "group": group,
                "resource": resource.partition("/")[0],
                "subresource": resource.partition("/")[2],
            }
            for rule in rendered.rules("ClusterRole")
            if not rule.get("resourceNames")
            for verb in rule.get("verbs", [])
            for group in rule.get("apiGroups", [])
            for resource in rule.get("resources", [])
            if "*" not in (verb, group, resource)
        ),
        None,
    )
    if probe is None:
        return
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": probe},
    }
    deadline = time.monotonic() + timeout
    while True:
        status, body = cp.request(
            "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review, identity="operator"
        )
        if status == 201 and json.loads(body).get("status", {}).get("allowed"):
            return
        if time.monotonic() > deadline:
            raise MissingComponentError(
                f"{TEMPLATE}: applied, but the operator is still not allowed {probe} after {timeout:.0f}s "
                "(is the ClusterRole bound to ServiceAccount padlock in padlock-system?)"
            )
        time.sleep(0.2)
