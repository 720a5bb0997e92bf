"""The chart keys Kyverno and Gatekeeper users expect, rendered by the real ``helm template``.

Covers: nameOverride / fullnameOverride name every object; serviceAccount.create false renders no
ServiceAccount and binds the named one (and the lock exempts it); operator.priorityClassName and
operator.topologySpreadConstraints reach the pod (a constraint without labelSelector gets the
release's pod labels); the ServiceMonitor (off by default) scrapes the Service's metrics port; the
NetworkPolicy (off by default) opens the webhook/metrics/health/tuner ports and egress only to DNS,
the API server and the configured sources, and refuses to render without the API server's CIDRs;
webhook failurePolicy and timeoutSeconds on every webhook; the serving certificate from a Secret (the
operator serves it; with caBundle given the chart writes it and the operator neither patches nor may
patch the configuration) or from cert-manager (Certificate with the names the operator checks,
self-signed Issuer unless an issuerRef is given, cainjector annotation, no patching); the default
RuleSource with approval, pin, semver, pull secret (readable by the operator, by name), private CA
and verification is a valid RuleSource; the schema still refuses unknown and bad keys but accepts
tests/data/chart/every-new-value.yaml.
"""

from __future__ import annotations

import base64
import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import chart_template
import pytest
import yaml

from padlock.api import RuleSource
from padlock.webhook import certs

REPO = chart_template.REPO
CHART = chart_template.CHART
EVERY = REPO / "tests" / "data" / "chart" / "every-new-value.yaml"


_helm = chart_template.helm


def render(*sets: str, files: tuple[Path, ...] = ()) -> list[dict[str, Any]]:
    return chart_template.render(*sets, files=files, release="rel")


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def kinds(docs: list[dict[str, Any]]) -> set[str]:
    return {d["kind"] for d in docs}


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (c,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return c


def webhook_rbac(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for d in docs if d["kind"] == "ClusterRole" for r in d["rules"]
            if "validatingwebhookconfigurations" in r["resources"]]


def test_name_overrides_rename_every_object_and_label() -> None:
    docs = render("nameOverride=lock")
    assert one(docs, "Deployment")["metadata"]["name"] == "rel-lock"
    assert one(docs, "Deployment")["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "lock"
    docs = render("fullnameOverride=guard")
    assert one(docs, "Deployment")["metadata"]["name"] == "guard"
    assert one(docs, "Service")["metadata"]["name"] == "guard"
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "ClusterRole"} == {"guard-operator"}
    env = {e["name"]: e.get("value") for e in container(docs)["env"]}
    assert env["PADLOCK_WEBHOOK_SERVICE"] == "guard"
    service = one(docs, "ValidatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["service"]
    assert service["name"] == "guard"


def test_an_existing_service_account_is_used_and_exempted_when_create_is_false() -> None:
    docs = render("serviceAccount.create=false", "serviceAccount.name=ops-padlock")
    assert "ServiceAccount" not in kinds(docs)
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops-padlock"
    assert one(docs, "ClusterRoleBinding")["subjects"][0]["name"] == "ops-padlock"
    vap = next(d for d in docs if d["kind"] == "ValidatingAdmissionPolicy")
    assert "system:serviceaccount:padlock-system:ops-padlock" in yaml.safe_dump(vap)
    assert one(render(), "ServiceAccount")["metadata"]["name"] == "padlock"


def test_priority_class_and_topology_spread_reach_the_pod() -> None:
    pod = one(render(files=(EVERY,)), "Deployment")["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "padlock-critical"
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": "lock",
                                                      "app.kubernetes.io/instance": "rel"}
    own = {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
           "labelSelector": {"matchLabels": {"team": "sec"}}}
    values = Path(tempfile.mkstemp(suffix=".yaml")[1])
    try:
        values.write_text(yaml.safe_dump({"operator": {"topologySpreadConstraints": [own]}}))
        pod = one(render(files=(values,)), "Deployment")["spec"]["template"]["spec"]
    finally:
        values.unlink()
    assert pod["topologySpreadConstraints"] == [own]
    default = one(render(), "Deployment")["spec"]["template"]["spec"]
    assert "priorityClassName" not in default and "topologySpreadConstraints" not in default


def test_the_service_monitor_is_off_by_default_and_scrapes_the_metrics_port() -> None:
    assert "ServiceMonitor" not in kinds(render())
    docs = render(files=(EVERY,))
    sm = one(docs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    (endpoint,) = sm["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("metrics", "/metrics", "15s")
    svc = one(docs, "Service")
    assert "metrics" in {p["name"] for p in svc["spec"]["ports"]}
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["padlock-system"]}


def test_the_network_policy_opens_only_the_pods_ports_dns_the_api_server_and_the_sources() -> None:
    assert "NetworkPolicy" not in kinds(render())
    docs = render("tuner.enabled=true", "tuner.tokenSecret.name=t", files=(EVERY,))
    np = one(docs, "NetworkPolicy")
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert np["spec"]["podSelector"] == one(docs, "Deployment")["spec"]["selector"]
    ingress_ports = [[p["port"] for p in rule["ports"]] for rule in np["spec"]["ingress"]]
    assert ingress_ports == [["webhook"], ["metrics", "health"], ["tuner"]]
    container_ports = {p["name"] for p in container(docs)["ports"]}
    assert {p for ports in ingress_ports for p in ports} == container_ports
    assert np["spec"]["ingress"][1]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"}
    egress = np["spec"]["egress"]
    assert [p["port"] for p in egress[0]["ports"]] == [53, 53]
    assert [t["ipBlock"]["cidr"] for t in egress[1]["to"]] == ["10.96.0.1/32", "192.168.0.10/32"]
    assert [p["port"] for p in egress[1]["ports"]] == [443, 6443]
    assert egress[2] == {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
                         "ports": [{"port": 443, "protocol": "TCP"}]}
    assert egress[3]["to"] == [{"ipBlock": {"cidr": "10.20.0.5/32"}}]
    assert len(egress) == 4


def test_the_network_policy_needs_the_api_server_addresses() -> None:
    result = _helm("template", "rel", str(CHART), "--set", "networkPolicy.enabled=true")
    assert result.returncode != 0
    assert "networkPolicy.apiServer.cidrs" in result.stderr


def test_failure_policy_and_timeout_apply_to_every_webhook() -> None:
    hooks = one(render("webhook.failurePolicy=Fail", "webhook.timeoutSeconds=3"),
                "ValidatingWebhookConfiguration")["webhooks"]
    assert len(hooks) == 7
    assert {(h["failurePolicy"], h["timeoutSeconds"]) for h in hooks} == {("Fail", 3)}
    default = one(render(), "ValidatingWebhookConfiguration")["webhooks"]
    assert {(h["failurePolicy"], h["timeoutSeconds"]) for h in default} == {("Ignore", 10)}


def test_by_default_the_operator_makes_its_ca_and_patches_the_ca_bundle() -> None:
    docs = render()
    assert "--webhook-configuration=" not in container(docs)["args"]
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"][1] == {"name": "webhook-tls",
                                                                                 "emptyDir": {}}
    assert webhook_rbac(docs)[0]["resourceNames"] == ["padlock.dev"]
    assert "caBundle" not in one(docs, "ValidatingWebhookConfiguration")["webhooks"][0]["clientConfig"]


def test_a_secrets_certificate_is_served_and_a_given_ca_bundle_is_written_by_the_chart() -> None:
    docs = render("webhook.certificate.secretName=my-tls")
    volume = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"][1]
    assert volume == {"name": "webhook-tls", "secret": {"secretName": "my-tls"}}
    # No caBundle given: the operator writes the Secret's ca.crt, nobody else does.
    assert "--webhook-configuration=" not in container(docs)["args"]
    assert webhook_rbac(docs)
    ca, _cert, _key = certs.generate(["rel-padlock.padlock-system.svc"], now=dt.datetime.now(dt.UTC))
    bundle = base64.b64encode(ca).decode()
    docs = render("webhook.certificate.secretName=my-tls", f"webhook.certificate.caBundle={bundle}")
    hooks = one(docs, "ValidatingWebhookConfiguration")["webhooks"]
    assert {h["clientConfig"]["caBundle"] for h in hooks} == {bundle}
    assert "--webhook-configuration=" in container(docs)["args"]
    assert webhook_rbac(docs) == []
    # The older key still works (an upgrade keeps the user's choice).
    old = one(render("webhook.certSecret=legacy-tls"), "Deployment")["spec"]["template"]["spec"]["volumes"][1]
    assert old["secret"] == {"secretName": "legacy-tls"}


def test_cert_manager_issues_the_certificate_the_operator_checks_and_cainjector_fills_the_bundle() -> None:
    docs = render("webhook.certificate.certManager.enabled=true")
    cert = one(docs, "Certificate")
    issuer = one(docs, "Issuer")
    assert issuer["spec"] == {"selfSigned": {}}
    assert cert["spec"]["issuerRef"] == {"name": issuer["metadata"]["name"], "kind": "Issuer",
                                         "group": "cert-manager.io"}
    env = {e["name"]: e.get("value") for e in container(docs)["env"]}
    expected = certs.service_sans(env["PADLOCK_WEBHOOK_SERVICE"], "padlock-system")
    assert cert["spec"]["dnsNames"] == expected
    assert cert["spec"]["ipAddresses"] == ["127.0.0.1"]
    secret = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"][1]["secret"]["secretName"]
    assert cert["spec"]["secretName"] == secret
    config = one(docs, "ValidatingWebhookConfiguration")
    assert config["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": f"padlock-system/{cert['metadata']['name']}"}
    assert "--webhook-configuration=" in container(docs)["args"]
    assert webhook_rbac(docs) == []
    given = render(files=(EVERY,))
    assert "Issuer" not in kinds(given)
    assert one(given, "Certificate")["spec"]["issuerRef"]["kind"] == "ClusterIssuer"


def test_the_default_rule_source_covers_approval_pin_pull_secret_private_ca_and_verification() -> None:
    docs = render(files=(EVERY,))
    rs = RuleSource.model_validate(one(docs, "RuleSource"))
    assert rs.spec.oci is not None
    assert (rs.spec.oci.semver, rs.spec.oci.tag) == (">=5.0.0 <6.0.0", None)
    assert (rs.spec.update_policy, rs.spec.approved_version, rs.spec.pinned_version) == ("Manual", "5.1.0", "5.0.2")
    assert rs.spec.oci.pull_secret is not None
    assert (rs.spec.oci.pull_secret.name, rs.spec.oci.pull_secret.namespace) == ("ghcr-pull", "padlock-system")
    assert rs.spec.oci.ca_config_map is not None
    assert (rs.spec.oci.ca_config_map.name, rs.spec.oci.ca_config_map.key) == ("registry-ca", "ca.pem")
    assert rs.spec.verify is not None and rs.spec.verify.digests == [f"sha256:{'0' * 63}1"]
    assert (rs.spec.verify.cosign_public_key or "").startswith("-----BEGIN PUBLIC KEY-----\n")
    secret_rules = [(r["resourceNames"], r["verbs"]) for d in docs if d["kind"] == "Role"
                    for r in d["rules"] if "secrets" in r["resources"]]
    assert secret_rules == [(["ghcr-pull"], ["get"])]
    plain = RuleSource.model_validate(one(render(), "RuleSource"))
    assert plain.spec.oci is not None and plain.spec.oci.pull_secret is None and plain.spec.verify is None


def test_the_schema_accepts_every_new_value_and_still_refuses_unknown_keys() -> None:
    assert _helm("lint", str(CHART), "--strict", "-f", str(EVERY)).returncode == 0
    for bad, where in (
        ("webhook.unknown=1", "webhook"),
        ("webhook.failurePolicy=Sometimes", "/webhook/failurePolicy"),
        ("webhook.timeoutSeconds=31", "/webhook/timeoutSeconds"),
        ("serviceMonitor.extra=1", "serviceMonitor"),
        ("networkPolicy.apiServer.cidrs={not-a-cidr}", "/networkPolicy/apiServer/cidrs"),
        ("defaultRuleSource.verify.digests={md5:1}", "/defaultRuleSource/verify/digests"),
        ("webhook.certificate.certManager.issuerRef.kind=Vault", "issuerRef/kind"),
    ):
        result = _helm("template", "rel", str(CHART), "--set", bad)
        assert result.returncode != 0, bad
        assert where in result.stderr, (bad, result.stderr)


@pytest.mark.parametrize("key", ["serviceMonitor", "networkPolicy", "nameOverride", "fullnameOverride"])
def test_every_new_top_level_key_is_in_values_yaml(key: str) -> None:
    assert key in yaml.safe_load((CHART / "values.yaml").read_text())


@pytest.mark.parametrize(
    ("sets", "patches"),
    [
        ((), "padlock.dev"),
        (("webhook.certificate.secretName=my-tls",), "padlock.dev"),
        (("webhook.certificate.secretName=my-tls", "webhook.certificate.caBundle=QUJD"), None),
        (("webhook.certificate.certManager.enabled=true",), None),
    ],
)
def test_the_operator_parses_the_rendered_args_into_who_owns_the_ca_bundle(
    sets: tuple[str, ...], patches: str | None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from padlock.cli import operator as operator_cli

    c = container(render(*sets))
    # The pod's environment, as the Deployment sets it: the flags must win over it.
    for env in c["env"]:
        if "value" in env:
            monkeypatch.setenv(env["name"], env["value"])
    monkeypatch.setenv("POD_NAMESPACE", "padlock-system")
    ctx = operator_cli.command.make_context("operator", list(c["args"][1:]))
    assert (ctx.params["webhook_configuration"] or None) == patches
    assert ctx.params["webhook_cert_dir"] == "/etc/padlock/webhook-tls"


@pytest.mark.parametrize("cert", [(), ("webhook.certificate.certManager.enabled=true",),
                                  ("webhook.certificate.secretName=my-tls",)])
def test_replicas_share_a_generated_certificate_only_when_no_secret_or_cert_manager_provides_one(
        cert: tuple[str, ...]) -> None:
    """High availability meets the certificate sources: with leader election the replicas share the
    chart's empty Secret that the first replica fills, unless a Secret or cert-manager provides one."""
    docs = render("replicaCount=2", "leaderElection.enabled=true", *cert)
    env = {e["name"] for e in container(docs)["env"]}
    shared = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-webhook-tls")]
    assert bool(shared) == (not cert)
    assert ("PADLOCK_WEBHOOK_CERT_SECRET" in env) == (not cert)
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
