"""What ``helm template charts/padlock`` renders for the tuner (``tuner.*`` values).

Covers: nothing of the tuner renders by default; enabling it without a token Secret or client CA
fails with a message; enabled, the operator gets the intake flags, a named port, the token as a
mounted file (never an env var or argument), the thresholds, and a Service; samples can be switched
off; the tuner's ClusterRole grants exactly the TuningSuggestion verbs of ``padlock.api.kinds`` with
no wildcard and no delete; tenants get aggregated edit/view roles on suggestions only.

Runs the real helm binary, no cluster needed.
"""

from __future__ import annotations

from typing import Any

from test_chart_renders_least_privilege import CHART, _helm, _of, render

from padlock.api import kinds

ON = ("tuner.enabled=true", "tuner.tokenSecret.name=falco-alerts-token")


def _operator(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = _of(docs, "Deployment")
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_nothing_of_the_tuner_renders_by_default() -> None:
    docs = render()
    assert not [d for d in docs if "tuner" in d["metadata"]["name"]]
    assert not [a for a in _operator(docs)["args"] if a.startswith("--tuner")]


def test_enabling_the_tuner_without_authentication_fails_with_a_message() -> None:
    result = _helm("template", "padlock", str(CHART), "--set", "tuner.enabled=true")
    assert result.returncode != 0
    assert "tuner.enabled needs tuner.tokenSecret.name or tuner.clientCASecret" in result.stderr


def test_the_operator_serves_the_intake_with_the_token_from_a_mounted_secret() -> None:
    docs = render(*ON, "tuner.minHits=7", "tuner.untunableRules={Read sensitive file untrusted}")
    container = _operator(docs)
    args = container["args"]
    assert "--tuner-port=8443" in args and "--tuner-min-hits=7" in args
    assert "--tuner-untunable-rule=Read sensitive file untrusted" in args
    assert "--tuner-token-file=/etc/padlock/tuner-token/token" in args
    assert "--tuner-samples" in args
    assert {"name": "tuner", "containerPort": 8443, "protocol": "TCP"} in container["ports"]
    assert "falco-alerts-token" not in str(container.get("env"))
    (pod,) = [d["spec"]["template"]["spec"] for d in _of(docs, "Deployment")]
    assert {"name": "tuner-token", "secret": {"secretName": "falco-alerts-token"}} in pod["volumes"]
    (service,) = [s for s in _of(docs, "Service") if s["metadata"]["name"] == "padlock-tuner"]
    assert service["spec"]["ports"] == [{"name": "tuner", "port": 8443, "targetPort": "tuner", "protocol": "TCP"}]


def test_samples_can_be_switched_off() -> None:
    assert "--no-tuner-samples" in _operator(render(*ON, "tuner.samples=false"))["args"]


def test_the_tuner_role_grants_exactly_the_declared_verbs_and_tenants_only_read_and_decide() -> None:
    docs = render(*ON, template="templates/tuner-rbac.yaml")
    roles = {d["metadata"]["name"]: d for d in _of(docs, "ClusterRole")}
    kind = kinds.BY_KIND["TuningSuggestion"]
    granted = {r["resources"][0]: set(r["verbs"]) for r in roles["padlock-tuner"]["rules"]}
    assert granted == {kind.plural: set(kind.operator_verbs), f"{kind.plural}/status": set(kind.operator_status_verbs)}
    assert "delete" not in granted[kind.plural]
    for role in roles.values():
        for rule in role["rules"]:
            assert rule["apiGroups"] == ["padlock.dev"] and rule["resources"][0].startswith("tuningsuggestions")
            assert "*" not in rule["verbs"]
    assert roles["padlock-tuner-edit"]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert roles["padlock-tuner-edit"]["rules"][0]["verbs"] == ["get", "list", "watch", "patch"]
    assert roles["padlock-tuner-view"]["rules"][0]["verbs"] == ["get", "list", "watch"]
