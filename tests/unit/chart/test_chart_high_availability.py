"""The chart's high-availability values: replicas, leader election, the shared webhook certificate, the PDB.

Covers: replicaCount > 1 without leaderElection.enabled is refused naming both keys; with leader
election the Deployment passes --leader-election and its timings (flags `padlock operator` accepts),
POD_NAME as the Lease identity, the shared certificate Secret's name, and rolls instead of
recreating; the chart creates that Secret empty (so `helm upgrade` keeps what the operator filled in)
and grants get/update on it by name only, and not when webhook.certSecret provides the certificate;
a PodDisruptionBudget with minAvailable 1 is rendered when replicaCount > 1 or
podDisruptionBudget.enabled, and not by default; the schema refuses unknown podDisruptionBudget keys.

Runs the real helm binary (``padlock.devenv.tools.find("helm")``), no cluster needed.
"""

from __future__ import annotations

import subprocess
from typing import Any

import chart_template
import click

from padlock.cli import operator as operator_cli

CHART = chart_template.CHART
HA = ("replicaCount=2", "leaderElection.enabled=true")


def _template(*sets: str) -> subprocess.CompletedProcess[str]:
    return chart_template.helm(*chart_template.template_args(*sets))


render = chart_template.render
_of = chart_template.of


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deploy,) = _of(docs, "Deployment")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    return container


def _secret_rules(docs: list[dict[str, Any]]) -> list[tuple[list[str], list[str] | None]]:
    return [(r["verbs"], r.get("resourceNames")) for role in _of(docs, "Role") for r in role["rules"]
            if "secrets" in r["resources"]]


def test_more_than_one_replica_without_leader_election_is_refused_naming_both_keys() -> None:
    result = _template("replicaCount=2")
    assert result.returncode != 0
    assert "replicaCount > 1 needs leaderElection.enabled=true" in result.stderr


def test_leader_election_passes_the_flags_the_identity_and_the_shared_certificate() -> None:
    docs = render(*HA, "leaderElection.leaseDuration=20", "leaderElection.renewDeadline=12")
    container = _container(docs)
    known = {opt for p in operator_cli.command.params if isinstance(p, click.Option) for opt in p.opts}
    flags = [arg.split("=", 1)[0] for arg in container["args"][1:]]
    assert set(flags) <= known, sorted(set(flags) - known)
    assert {"--leader-election", "--lease-duration=20", "--renew-deadline=12", "--retry-period=2"} <= set(container["args"])
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["PADLOCK_WEBHOOK_CERT_SECRET"]["value"] == "padlock-webhook-tls"
    (deploy,) = _of(docs, "Deployment")
    assert deploy["spec"]["replicas"] == 2 and deploy["spec"]["strategy"]["type"] == "RollingUpdate"
    # the default (one replica, no election) still recreates: two publishers never overlap
    (single,) = _of(render(), "Deployment")
    assert single["spec"]["strategy"]["type"] == "Recreate"
    assert "--leader-election" not in _container(render())["args"]


def test_the_shared_certificate_secret_is_created_empty_and_readable_and_updatable_only_by_name() -> None:
    docs = render(*HA)
    (secret,) = [s for s in _of(docs, "Secret") if s["metadata"]["name"] == "padlock-webhook-tls"]
    assert secret["metadata"]["namespace"] == "padlock-system"
    assert "data" not in secret and "stringData" not in secret
    assert _secret_rules(docs) == [(["get", "update"], ["padlock-webhook-tls"])]
    # a certificate given as webhook.certSecret is mounted: no shared Secret, no Secret access
    given = render(*HA, "webhook.certSecret=my-tls")
    assert not [s for s in _of(given, "Secret") if s["metadata"]["name"] == "padlock-webhook-tls"]
    assert _secret_rules(given) == []
    assert "PADLOCK_WEBHOOK_CERT_SECRET" not in {e["name"] for e in _container(given)["env"]}


def test_a_pod_disruption_budget_keeps_one_replica_when_there_are_several_or_when_asked() -> None:
    assert _of(render(), "PodDisruptionBudget") == []
    for sets in (HA, ("podDisruptionBudget.enabled=true",)):
        (pdb,) = _of(render(*sets), "PodDisruptionBudget")
        assert pdb["spec"]["minAvailable"] == 1
        assert pdb["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "padlock",
                                                          "app.kubernetes.io/instance": "padlock"}
    result = _template("podDisruptionBudget.maxUnavailable=1")
    assert result.returncode != 0 and "maxUnavailable" in result.stderr
