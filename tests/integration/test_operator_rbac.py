"""Least privilege, proved on a real API server: what the operator's ServiceAccount may do is exactly
``padlock.api.kinds.operator_access()``, nothing less and nothing more.

The chart's RBAC (``helm template --show-only templates/rbac.yaml``) is applied for a release of this
module's own (its own release, Falco, RuleSource-ConfigMap and unrelated namespaces; a pull secret
named; leader election on, so every optional rule is present), and ``kubectl auth can-i`` is asked as
that release's ServiceAccount (impersonated, with the ServiceAccount groups) over a matrix of verbs x
resources x namespaces x names: the rules ConfigMaps ``padlock-rules``, ``padlock-rules-3`` against
``padlock-rules-4`` and Falco's own ConfigMap, the named pull secret against any other Secret, the
webhook configuration by name against another, every Padlock kind and status, and resources the
operator never needs (pods, service accounts, RBAC, namespaces). Every answer must equal the intended
table, both ways. ``kubectl auth can-i --list`` in each namespace must show no rule beyond the table.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from padlock.api import kinds
from padlock.devenv.controlplane import ControlPlane
from padlock.devenv.tools import Runner
from support_webhook import REPO, wait_until

SUFFIX = secrets.token_hex(3)
RELEASE = f"rbac{SUFFIX}"
NS = {"release": f"rbac-rel-{SUFFIX}", "falco": f"rbac-falco-{SUFFIX}", "sources": f"rbac-src-{SUFFIX}",
      "other": f"rbac-other-{SUFFIX}"}
PULL_SECRET = "registry-pull"
SA = f"system:serviceaccount:{NS['release']}:padlock"
AS = [f"--as={SA}", "--as-group=system:serviceaccounts", f"--as-group=system:serviceaccounts:{NS['release']}"]
VALUES = (f"falco.namespace={NS['falco']}", f"rbac.configMapNamespaces={{{NS['sources']}}}",
          f"rbac.pullSecretNames={{{PULL_SECRET}}}", "leaderElection.enabled=true")
INTENDED = kinds.operator_access(pull_secrets=(PULL_SECRET,), leader_election=True, source_namespaces=True,
                                 webhook_tls_secret=f"{RELEASE}-padlock-webhook-tls")
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
BASIC_USER = {"selfsubjectaccessreviews.authorization.k8s.io", "selfsubjectrulesreviews.authorization.k8s.io",
              "selfsubjectreviews.authentication.k8s.io"}
"""What every authenticated user may do (the API server's bootstrap roles), not the chart's."""


@dataclass(frozen=True)
class Target:
    group: str
    resource: str
    subresource: str = ""
    name: str = ""
    namespaced: bool = True

    def arg(self) -> str:
        qualified = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{qualified}/{self.name}" if self.name else qualified


def intended(verb: str, target: Target, namespace: str | None) -> bool:
    scope = next((s for s, ns in NS.items() if ns == namespace), None)
    resource = f"{target.resource}/{target.subresource}" if target.subresource else target.resource
    for grant in INTENDED:
        if (grant.group, grant.resource) != (target.group, resource) or verb not in grant.verbs:
            continue
        if grant.scope != "cluster" and grant.scope != scope:
            continue
        # resourceNames never match a request without a name (list, watch, collection verbs).
        if grant.names and (not target.name or target.name not in grant.names):
            continue
        return True
    return False


NAMESPACED = (
    Target("", "configmaps"), Target("", "configmaps", name="padlock-rules"),
    Target("", "configmaps", name="padlock-rules-3"), Target("", "configmaps", name="padlock-rules-4"),
    Target("", "configmaps", name="falco-config"),
    Target("", "secrets"), Target("", "secrets", name=PULL_SECRET), Target("", "secrets", name="falco-tls"),
    Target("", "events"), Target("events.k8s.io", "events"), Target("coordination.k8s.io", "leases"),
    Target("", "pods"), Target("", "serviceaccounts"), Target("", "serviceaccounts", "token", name="padlock"),
    Target("rbac.authorization.k8s.io", "rolebindings"),
    Target("padlock.dev", "policyexceptions"), Target("padlock.dev", "policyexceptions", "status"),
)
CLUSTER = (
    *(Target(k.group, k.plural, namespaced=False) for k in kinds.ALL if not k.namespaced),
    *(Target(k.group, k.plural, "status", namespaced=False) for k in kinds.ALL if not k.namespaced),
    Target("apiextensions.k8s.io", "customresourcedefinitions", namespaced=False),
    Target("admissionregistration.k8s.io", "validatingwebhookconfigurations", namespaced=False),
    Target("admissionregistration.k8s.io", "validatingwebhookconfigurations", name="padlock.dev", namespaced=False),
    Target("admissionregistration.k8s.io", "validatingwebhookconfigurations", name="other", namespaced=False),
    Target("admissionregistration.k8s.io", "validatingadmissionpolicies", namespaced=False),
    Target("", "namespaces", namespaced=False), Target("rbac.authorization.k8s.io", "clusterroles", namespaced=False),
)


@pytest.fixture(scope="module")
def release(control_plane: ControlPlane, kubectl: Runner, helm: Runner, crds_installed: list[str]) -> Iterator[str]:
    for ns in NS.values():
        control_plane.create_namespace(ns)
    sets = [arg for v in VALUES for arg in ("--set", v)]
    manifest = helm("template", RELEASE, str(REPO / "charts" / "padlock"), "--namespace", NS["release"],
                    "--show-only", "templates/rbac.yaml", *sets).stdout
    kubectl("apply", "-f", "-", input=manifest)
    # The RBAC authorizer reads from an informer cache: wait for one grant of each Role to apply.
    for namespace, probe in ((NS["falco"], "configmaps/padlock-rules"), (NS["release"], "leases"),
                             (None, "managedpolicies.padlock.dev")):
        where = ["-n", namespace] if namespace else []
        wait_until(lambda p=probe, w=where: can_i(kubectl, "get", p, w), timeout=60, what=f"RBAC for {probe}")
    yield manifest
    kubectl("delete", "-f", "-", "--ignore-not-found", input=manifest, check=False)


def can_i(kubectl: Runner, verb: str, target: str, where: list[str], *extra: str) -> bool:
    result = kubectl("auth", "can-i", verb, target, *where, *extra, *AS, check=False)
    if result.stdout.strip() not in ("yes", "no"):
        raise AssertionError(f"kubectl auth can-i {verb} {target} {where}: {result.stdout} {result.stderr}")
    return result.stdout.strip() == "yes"


def test_kubectl_auth_can_i_answers_exactly_the_intended_table(kubectl: Runner, release: str) -> None:
    cells: list[tuple[str, Target, str | None]] = [
        (verb, target, ns) for verb in VERBS for target in NAMESPACED for ns in NS.values()
    ] + [(verb, target, None) for verb in VERBS for target in CLUSTER]

    def ask(cell: tuple[str, Target, str | None]) -> tuple[tuple[str, Target, str | None], bool]:
        verb, target, ns = cell
        extra = [f"--subresource={target.subresource}"] if target.subresource else []
        return cell, can_i(kubectl, verb, target.arg(), ["-n", ns] if ns else [], *extra)

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = dict(pool.map(ask, cells))
    wrong = [
        f"{'allowed' if got else 'denied'} but intended {'allowed' if intended(v, t, ns) else 'denied'}: "
        f"{v} {t.arg()}{'/' + t.subresource if t.subresource else ''} in {ns or 'the cluster'}"
        for (v, t, ns), got in answers.items()
        if got != intended(v, t, ns)
    ]
    assert not wrong, "\n".join(wrong)
    granted = sum(answers.values())
    assert granted > 60 and len(answers) - granted > 300  # the matrix holds both answers, many of each


_ROW = re.compile(r"^(\S*)\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*?)\]\s*$")


def _listed(kubectl: Runner, namespace: str) -> set[tuple[str, tuple[str], str]]:
    """(resource[.group], (resource name or ""), verb) of every rule ``kubectl auth can-i --list`` shows."""
    out = set()
    for line in kubectl("auth", "can-i", "--list", "-n", namespace, *AS).stdout.splitlines()[1:]:
        match = _ROW.match(line)
        assert match, line
        resource, _urls, names, verbs = match.groups()
        if not resource or resource in BASIC_USER:
            continue
        # kubectl prints one row per resource name; count each name on its own.
        for verb in verbs.split():
            out.update((resource, (name,), verb) for name in names.split() or [""])
    return out


def _listed_name(grant: kinds.Grant) -> str:
    """How ``--list`` names a resource: ``resource.group/subresource``."""
    resource, _, sub = grant.resource.partition("/")
    qualified = f"{resource}.{grant.group}" if grant.group else resource
    return f"{qualified}/{sub}" if sub else qualified


def test_kubectl_auth_can_i_list_shows_no_rule_beyond_the_table(kubectl: Runner, release: str) -> None:
    for scope, namespace in NS.items():
        expected = {
            (_listed_name(g), (name,), verb)
            for g in INTENDED
            if g.scope in ("cluster", scope)
            for verb in g.verbs
            for name in g.names or ("",)
        }
        assert _listed(kubectl, namespace) == expected, scope


def test_the_chart_grants_no_configmap_list_or_watch_in_the_falco_namespace(release: str) -> None:
    rules = [r for d in yaml.safe_load_all(release) if d and d["kind"] == "Role"
             and d["metadata"]["namespace"] == NS["falco"] for r in d["rules"]]
    assert rules and all(not {"list", "watch"} & set(r["verbs"]) for r in rules)
    names: Any = [r.get("resourceNames") for r in rules if "update" in r["verbs"]]
    assert names == [list(kinds.rules_configmap_names("padlock-rules", 3))]  # the default falco.rulesShards
