"""What ``helm template charts/padlock`` renders: least-privilege RBAC, a hardened Deployment, the
default RuleSource, release-namespace placement, and values the schema refuses.

Covers: padlock.dev RBAC equals the verbs declared in padlock.api.kinds; every rule of every Role and
ClusterRole equals padlock.api.kinds.operator_access() for several value sets; no wildcard anywhere;
ConfigMap writes only in the Falco namespace and only by name (create aside); no list or watch of
ConfigMaps; Secrets readable only by name in the operator namespace, none by default;
the webhook configuration only by name; Leases only when leader election is on; the Deployment
runs `padlock operator` non-root, read-only, without capabilities, with seccomp and probes; every
namespaced object lands in the release namespace; the default RuleSource is a valid object and can
be switched off; values.schema.json rejects bad values with a message naming the key.

Runs the real helm binary (``padlock.devenv.tools.find("helm")``), no cluster needed.
"""

from __future__ import annotations

from typing import Any

import chart_template
import pytest

from padlock.api import RuleSource, kinds

REPO = chart_template.REPO
CHART = chart_template.CHART


_helm = chart_template.helm


def render(*sets: str, namespace: str = "padlock-system", template: str | None = None) -> list[dict[str, Any]]:
    return chart_template.render(*sets, template=template, namespace=namespace)


_of = chart_template.of


@pytest.fixture(scope="module")
def rbac() -> list[dict[str, Any]]:
    return render(template="templates/rbac.yaml")


@pytest.fixture(scope="module")
def default_docs() -> list[dict[str, Any]]:
    return render()


def test_padlock_rules_equal_the_verbs_declared_per_kind(rbac: list[dict[str, Any]]) -> None:
    (cluster_role,) = _of(rbac, "ClusterRole")
    # The tuner's rules are in their own template (rendered with the tuner on); its tenant roles aside.
    tuner = render("tuner.enabled=true", "tuner.tokenSecret.name=t", template="templates/tuner-rbac.yaml")
    (tuner_role,) = [r for r in _of(tuner, "ClusterRole") if r["metadata"]["name"] == "padlock-tuner"]
    granted: dict[str, set[str]] = {}
    for rule in cluster_role["rules"] + tuner_role["rules"]:
        if rule["apiGroups"] == ["padlock.dev"]:
            for resource in rule["resources"]:
                granted.setdefault(resource, set()).update(rule["verbs"])
    expected: dict[str, set[str]] = {}
    for k in kinds.ALL:
        expected[k.plural] = set(k.operator_verbs)
        expected[f"{k.plural}/status"] = set(k.operator_status_verbs)
    assert granted == expected


def test_no_rule_uses_a_wildcard(rbac: list[dict[str, Any]]) -> None:
    for doc in _of(rbac, "ClusterRole") + _of(rbac, "Role"):
        for rule in doc["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), f"{doc['metadata']['name']}: {rule}"


def _granted(docs: list[dict[str, Any]], release: str = "padlock-system", falco: str = "falco") -> set[tuple[Any, ...]]:
    """(group, resource, verb, scope, names) for every rule of every Role and ClusterRole."""
    out = set()
    for doc in _of(docs, "ClusterRole") + _of(docs, "Role"):
        ns = doc["metadata"].get("namespace")
        scope = "cluster" if ns is None else "release" if ns == release else "falco" if ns == falco else "sources"
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        out.add((group, resource, verb, scope, tuple(sorted(rule.get("resourceNames", [])))))
    return out


def _intended(**values: Any) -> set[tuple[Any, ...]]:
    return {
        (g.group, g.resource, verb, g.scope, tuple(sorted(g.names)))
        for g in kinds.operator_access(**values)
        for verb in g.verbs
    }


@pytest.mark.parametrize(
    ("sets", "values"),
    [
        ((), {}),
        (("falco.rulesShards=7", "falco.rulesConfigMap=rules"), {"shards": 7, "rules_configmap": "rules"}),
        (("rbac.pullSecretNames={ghcr,quay}",), {"pull_secrets": ("ghcr", "quay")}),
        (("webhook.enabled=false",), {"webhook": False}),
        (("webhook.configurationName=padlock-x",), {"webhook_configuration": "padlock-x"}),
        (("leaderElection.enabled=true",), {"leader_election": True}),
        (("rbac.configMapNamespaces={rules-mirror}",), {"source_namespaces": True}),
    ],
)
def test_every_rule_is_exactly_the_intended_operator_access(sets: tuple[str, ...], values: dict[str, Any]) -> None:
    assert _granted(render(*sets, template="templates/rbac.yaml")) == _intended(**values)


def test_configmaps_are_writable_only_in_the_falco_namespace_and_only_by_name(rbac: list[dict[str, Any]]) -> None:
    (cluster_role,) = _of(rbac, "ClusterRole")
    assert not [r for r in cluster_role["rules"] if {"configmaps", "secrets"} & set(r["resources"])]
    writers = [
        (role["metadata"]["namespace"], rule["verbs"], rule.get("resourceNames"))
        for role in _of(rbac, "Role")
        for rule in role["rules"]
        if "configmaps" in rule["resources"] and {"create", "update", "patch", "delete"} & set(rule["verbs"])
    ]
    names = ["padlock-rules", *(f"padlock-rules-{i}" for i in range(1, 4))]
    assert writers == [("falco", ["create"], None), ("falco", ["get", "update", "delete"], names)]
    listers = [r for role in _of(rbac, "Role") for r in role["rules"] if {"list", "watch"} & set(r["verbs"])]
    assert not [r for r in listers if "configmaps" in r["resources"] or "secrets" in r["resources"]]


def test_no_secret_is_readable_unless_named_and_then_only_in_the_operator_namespace() -> None:
    def secret_rules(docs: list[dict[str, Any]]) -> list[tuple[str, list[str], list[str] | None]]:
        return [
            (role["metadata"]["namespace"], rule["verbs"], rule.get("resourceNames"))
            for role in _of(docs, "Role")
            for rule in role["rules"]
            if "secrets" in rule["resources"]
        ]

    assert secret_rules(render(template="templates/rbac.yaml")) == []
    named = render("rbac.pullSecretNames={ghcr-pull}", template="templates/rbac.yaml")
    assert secret_rules(named) == [("padlock-system", ["get"], ["ghcr-pull"])]


def test_webhook_configuration_is_reachable_only_by_name(rbac: list[dict[str, Any]]) -> None:
    (cluster_role,) = _of(rbac, "ClusterRole")
    (rule,) = [r for r in cluster_role["rules"] if "validatingwebhookconfigurations" in r["resources"]]
    assert rule["resourceNames"] == ["padlock.dev"]
    assert rule["verbs"] == ["get", "patch"]


def test_leases_only_with_leader_election() -> None:
    def lease_rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for d in _of(docs, "Role") for r in d["rules"] if "leases" in r["resources"]]

    assert lease_rules(render(template="templates/rbac.yaml")) == []
    (rule,) = lease_rules(render("leaderElection.enabled=true", template="templates/rbac.yaml"))
    assert rule["apiGroups"] == ["coordination.k8s.io"]


def test_bindings_name_the_padlock_service_account_of_the_release_namespace(
    rbac: list[dict[str, Any]],
) -> None:
    for binding in _of(rbac, "ClusterRoleBinding") + _of(rbac, "RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "padlock", "namespace": "padlock-system"}
        ]


def test_falco_namespace_and_extra_configmap_namespaces_are_configurable() -> None:
    docs = render(
        "falco.namespace=security", "rbac.configMapNamespaces={rules-mirror}", template="templates/rbac.yaml"
    )
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in _of(docs, "Role")}
    assert ("security", "padlock-operator-rules") in roles
    assert ("rules-mirror", "padlock-operator-sources") in roles
    (extra,) = [r for r in _of(docs, "Role") if r["metadata"]["namespace"] == "rules-mirror"]
    assert extra["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]


def test_deployment_runs_the_operator_hardened(default_docs: list[dict[str, Any]]) -> None:
    (deploy,) = _of(default_docs, "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["padlock"] and container["args"][0] == "operator"
    assert "--falco-namespace=falco" in container["args"]
    assert pod["serviceAccountName"] == "padlock"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090, "webhook": 9443}
    assert container["resources"]["requests"]


def test_service_exposes_webhook_and_metrics(default_docs: list[dict[str, Any]]) -> None:
    (svc,) = _of(default_docs, "Service")
    assert {p["name"]: p["targetPort"] for p in svc["spec"]["ports"]} == {
        "webhook": "webhook",
        "metrics": "metrics",
    }


def test_every_namespaced_object_lands_in_the_release_namespace() -> None:
    docs = render(namespace="team-sec")
    owned = [d for d in docs if d["kind"] not in ("ClusterRole", "ClusterRoleBinding", "RuleSource")]
    for doc in owned:
        if doc["kind"] in (
            "ValidatingWebhookConfiguration",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ):
            continue
        if doc["kind"] in ("Role", "RoleBinding") and doc["metadata"]["name"].endswith("-rules"):
            assert doc["metadata"]["namespace"] == "falco"
            continue
        assert doc["metadata"].get("namespace") == "team-sec", f"{doc['kind']}/{doc['metadata']['name']}"
    (crb,) = _of(docs, "ClusterRoleBinding")
    assert crb["subjects"][0]["namespace"] == "team-sec"


def test_default_rule_source_is_a_valid_object_and_can_be_switched_off(
    default_docs: list[dict[str, Any]],
) -> None:
    (body,) = _of(default_docs, "RuleSource")
    rs = RuleSource.model_validate(body)
    assert rs.spec.oci is not None
    assert (rs.spec.oci.repository, rs.spec.oci.tag) == ("ghcr.io/falcosecurity/rules/falco-rules", "5")
    assert not _of(render("defaultRuleSource.enabled=false"), "RuleSource")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("defaultRuleSource.updatePolicy=Sometimes", "/defaultRuleSource/updatePolicy"),
        ("defaultRuleSource.loadOrder=100", "/defaultRuleSource/loadOrder"),
        ("falco.namespace=Not_Valid", "/falco/namespace"),
        ("operator.logFormat=xml", "/operator/logFormat"),
        ("unknownKey=1", "unknownKey"),
    ],
)
def test_values_schema_rejects_bad_values_naming_the_key(value: str, words: str) -> None:
    result = _helm("template", "padlock", str(CHART), "--set", value)
    assert result.returncode != 0
    assert words in result.stderr


def test_helm_lint_is_clean() -> None:
    result = _helm("lint", str(CHART), "--strict")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


def test_deployment_passes_only_flags_padlock_operator_accepts(default_docs: list[dict[str, Any]]) -> None:
    import click

    from padlock.cli import operator as operator_cli

    known = {opt for p in operator_cli.command.params if isinstance(p, click.Option) for opt in p.opts}
    (deploy,) = _of(default_docs, "Deployment")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    flags = [arg.split("=", 1)[0] for arg in container["args"][1:]]
    assert flags and set(flags) <= known, sorted(set(flags) - known)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PADLOCK_OPERATOR_USERNAME"] == "system:serviceaccount:padlock-system:padlock"
    assert env["PADLOCK_WEBHOOK_CA_BUNDLE_CONFIG"] == "padlock.dev"


def test_with_the_tuner_the_rules_are_exactly_the_intended_access_including_the_ca_configmap_by_name() -> None:
    sets = ("tuner.enabled=true", "tuner.tokenSecret.name=t")
    docs = render(*sets, template="templates/rbac.yaml") + render(*sets, template="templates/tuner-rbac.yaml")
    service_account_roles = [d for d in docs if not d["metadata"]["name"].endswith(("-edit", "-view"))]
    assert _granted(service_account_roles) == _intended(tuner=True)
    assert ("", "configmaps", "update", "falco", ("padlock-tuner-ca",)) in _intended(tuner=True)
