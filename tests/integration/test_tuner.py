"""The tuner end to end: Falco alerts posted over HTTPS to the real ``padlock operator`` (chart RBAC
only, its admission webhook serving) become TuningSuggestions, accepted or dismissed with the CLI.

Module-scoped, in story order: the intake publishes its CA for Falco; refusals (no or wrong token:
401; malformed: 400 naming the line; oversize: 413), each counted; mutual TLS (a client certificate
from the configured CA is accepted without a token, one from another CA fails the handshake); alerts of "Terminal shell in
container" from image nginx in namespace shop, posted one per request in Falco's http_output format,
give a suggestion in that namespace with the exact PolicyException; a falcosidekick batch
(newline-delimited) for redis gives another; ``padlock tune`` lists both; ``padlock tune accept``
creates the exception through admission, the published layer carries it, the suggestion shows
Accepted and further nginx alerts are silenced (metrics); ``padlock tune dismiss`` marks the other
Dismissed; alerts from one image across two namespaces give a cluster-wide suggestion proposing a
ClusterPolicyException; Falco's hot-restart-failure alert (Falco's real shape and loader report) becomes a
Warning Event on the published ConfigMap and FalcoLoaded=False/FalcoReloadFailed naming the host on the
published RuleSource; after a new publish the host's running alerts clear it, and an alert of a rule the
published ruleset disables gives an Event and FalcoLoaded=False/FalcoRulesetStale (host, rule, content
hash); re-enabling the rule and an alert of it from that host bring FalcoLoaded back to True/Loaded.
"""

from __future__ import annotations

import json
import re
import secrets
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from padlock.controllers.process import free_port
from support_alerts import (
    Poster,
    body,
    client_pki,
    falco_alert,
    loader_report,
    now_time,
    reload_failure,
    sidekick_alert,
)
from support_operator import (
    CARRIERS,
    CONFIGMAP,
    FALCO_NS,
    KEYS_RULE,
    OPERATOR_FLAGS,
    POLICY,
    SHELL_RULE,
    User,
    disabled,
    exception_entries,
    running_operator,
    wait_for,
)

SOURCE = "tuner-story"
TOKEN = secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def story(control_plane: Any, kubectl: Any, helm: Any, registry: str, crds_installed: list[str],
          operator_rbac: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("tuner-story")
    suffix = secrets.token_hex(3)
    shop, web, home = f"shop-{suffix}", f"web-{suffix}", f"padlock-{suffix}"
    for ns in (shop, web, home):
        control_plane.create_namespace(ns)
    token_file = workdir / "token"
    token_file.write_text(TOKEN + "\n")
    pki, stranger = client_pki(workdir / "falco-pki"), client_pki(workdir / "other-pki", "stranger")
    port = free_port()
    flags = [*OPERATOR_FLAGS, "--tuner-port", str(port), "--tuner-token-file", str(token_file),
             "--tuner-cert-dir", str(workdir / "tuner-tls"), "--tuner-namespace", home,
             "--tuner-client-ca", pki["ca"],
             "--tuner-min-hits", "5", "--tuner-min-share", "0.3", "--tuner-interval", "0.3",
             # Loopback Falco "hosts" see a publish at once: no kubelet delay to wait out.
             "--tuner-reload-grace", "0"]
    cleanup = [("delete", "policyexceptions,tuningsuggestions", "--all", "-n", ns, "--wait=false") for ns in (shop, web, home)]
    cleanup.append(("delete", "clusterpolicyexceptions", "-l", "padlock.dev/suggestion", "--wait=false"))
    with running_operator(control_plane, kubectl, registry, workdir, source=SOURCE, helm=helm, flags=flags,
                          cleanup=cleanup) as running:
        user = running.user
        wait_for("the published ConfigMap", lambda: user.configmap())
        running.serving(POLICY)
        poster = Poster(port, str(workdir / "tuner-tls" / "ca.crt"), TOKEN)
        try:
            yield {"user": user, "running": running, "poster": poster, "shop": shop, "web": web, "home": home,
                   "port": port, "ca": str(workdir / "tuner-tls" / "ca.crt"), "pki": pki, "stranger": stranger}
        finally:
            poster.close()


def _suggestions(user: User, namespace: str) -> list[dict[str, Any]]:
    return (user.get("tuningsuggestions", "-n", namespace) or {}).get("items") or []


def _metric(running: Any, name: str, **labels: str) -> float:
    total = 0.0
    for line in running.op.metrics().splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_the_intake_publishes_its_ca_for_falco(story: dict[str, Any]) -> None:
    cm = wait_for("ConfigMap padlock-tuner-ca", lambda: story["user"].get("configmap", "padlock-tuner-ca", "-n", FALCO_NS))
    assert cm["data"]["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")


def test_requests_without_the_token_are_refused_and_counted(story: dict[str, Any]) -> None:
    poster: Poster = story["poster"]
    before = _metric(story["running"], "padlock_tuner_rejected_requests_total", reason="unauthorized")
    assert poster.post(body(falco_alert(ns=story["shop"])), token="")[0] == 401
    status, answer = poster.post(body(falco_alert(ns=story["shop"])), token="not-the-token")
    assert status == 401 and answer["error"] == "unauthorized"
    assert _metric(story["running"], "padlock_tuner_rejected_requests_total", reason="unauthorized") == before + 2


def test_a_client_certificate_from_the_configured_ca_is_enough_and_a_stranger_is_refused(
        story: dict[str, Any]) -> None:
    trusted = Poster(story["port"], story["ca"], client_cert=(story["pki"]["cert"], story["pki"]["key"]))
    try:
        assert trusted.post(body(falco_alert(ns=story["web"], image="docker.io/library/alpine")), token="") == (
            200, {"accepted": 1})
    finally:
        trusted.close()
    stranger = Poster(story["port"], story["ca"], client_cert=(story["stranger"]["cert"], story["stranger"]["key"]))
    try:
        # TLS 1.3 verifies the client after the client's handshake ends: the refusal shows as an alert
        # (SSLError) or as the server closing the connection (ConnectionError), never as an answer.
        with pytest.raises((ssl.SSLError, ConnectionError)):
            stranger.post(body(falco_alert()), token="")
    finally:
        stranger.close()


def test_malformed_and_oversize_bodies_get_4xx_with_a_message(story: dict[str, Any]) -> None:
    poster: Poster = story["poster"]
    status, answer = poster.post(body(falco_alert()) + b'\n{"rule": "x", "priority": "Loud"}')
    assert status == 400
    assert answer["message"].startswith('line 2: field "priority": \'Loud\' is not a Falco priority')
    status, answer = poster.post(b"{" + b" " * (2 << 20) + b"}")
    assert status == 413 and "exceeds the limit" in answer["message"]


def test_falco_alerts_give_a_suggestion_in_the_workload_namespace(story: dict[str, Any]) -> None:
    poster, user, shop = story["poster"], story["user"], story["shop"]
    for _ in range(6):  # one alert per request, as Falco's http_output posts them
        assert poster.post(body(falco_alert(ns=shop)))[0] == 200
    (s,) = wait_for("a suggestion in the shop namespace",
                    lambda: [x for x in _suggestions(user, shop) if (x.get("status") or {}).get("hits", 0) >= 6])
    spec = s["spec"]
    assert (spec["rule"], spec["scope"], spec["state"]) == (SHELL_RULE, "Namespace", "Open")
    assert spec["exception"]["kind"] == "PolicyException" and spec["exception"]["namespace"] == shop
    assert spec["exception"]["spec"]["match"]["values"] == [["docker.io/library/nginx", "nginx", "bash", "runc"]]
    assert {p["name"] for p in spec["policies"]} == {p["name"] for p in spec["exception"]["spec"]["policies"]}
    assert s["status"]["samples"] and "A shell was spawned" in s["status"]["samples"][0]
    assert _metric(story["running"], "padlock_tuner_alerts_total", rule=SHELL_RULE, priority="NOTICE",
                   outcome="counted") >= 6
    story["nginx"] = s["metadata"]["name"]


def test_a_falcosidekick_batch_is_counted_too(story: dict[str, Any]) -> None:
    poster, user, shop = story["poster"], story["user"], story["shop"]
    batch = body(*[sidekick_alert(ns=shop, image="docker.io/library/redis", container="redis")] * 6)
    assert poster.post(batch) == (200, {"accepted": 6})
    (s,) = wait_for("the redis suggestion", lambda: [x for x in _suggestions(user, shop) if "redis" in x["spec"]["workload"]])
    assert s["spec"]["match"]["images"] == ["docker.io/library/redis"]
    story["redis"] = s["metadata"]["name"]


def test_padlock_tune_lists_the_suggestions(story: dict[str, Any]) -> None:
    listed = story["user"].padlock("tune", "-n", story["shop"], "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert {r["name"] for r in json.loads(listed.stdout)} == {story["nginx"], story["redis"]}
    table = story["user"].padlock("tune", "-n", story["shop"])
    assert re.search(rf"{story['nginx']}\s+{SHELL_RULE}", table.stdout)


def test_accepting_creates_the_exception_the_published_layer_carries_it_and_alerts_stop_counting(
        story: dict[str, Any]) -> None:
    user, shop, name = story["user"], story["shop"], story["nginx"]
    done = user.padlock("tune", "accept", name, "--reason", "TICKET-7 nginx entrypoint shell", "--expires", "30d")
    assert done.returncode == 0, done.stderr
    exc = user.get("policyexception", name, "-n", shop)
    assert exc is not None and exc["metadata"]["labels"]["padlock.dev/suggestion"] == name
    assert exc["spec"]["reason"] == "TICKET-7 nginx entrypoint shell" and exc["spec"]["expiresAt"]
    entry = wait_for("the exception in the published layer",
                     lambda: exception_entries(user.layer(), SHELL_RULE).get(f"padlock_pe_{shop}_{name}"))
    assert "container.image.repository" in entry["fields"] and "k8s.ns.name" in entry["fields"]
    assert user.get("tuningsuggestion", name, "-n", shop)["spec"]["state"] == "Accepted"
    silenced = _metric(story["running"], "padlock_tuner_alerts_total", outcome="silenced")
    hits = user.get("tuningsuggestion", name, "-n", shop)["status"]["hits"]

    def posted_and_silenced() -> bool:
        story["poster"].post(body(falco_alert(ns=shop)))
        return _metric(story["running"], "padlock_tuner_alerts_total", outcome="silenced") > silenced

    wait_for("nginx alerts silenced after acceptance", posted_and_silenced)
    assert user.get("tuningsuggestion", name, "-n", shop)["status"]["hits"] == hits
    again = user.padlock("tune", "accept", name, "-n", shop)
    assert again.returncode == 0 and "already exists (created from this suggestion)" in again.stdout


def test_dismissing_marks_the_suggestion_dismissed(story: dict[str, Any]) -> None:
    done = story["user"].padlock("tune", "dismiss", story["redis"])
    assert done.returncode == 0, done.stderr
    assert story["user"].get("tuningsuggestion", story["redis"], "-n", story["shop"])["spec"]["state"] == "Dismissed"
    missing = story["user"].padlock("tune", "accept", "no-such-suggestion")
    assert missing.returncode == 1 and "no TuningSuggestion named no-such-suggestion" in missing.stderr


def test_alerts_across_namespaces_give_a_cluster_wide_suggestion(story: dict[str, Any]) -> None:
    alerts = [falco_alert(ns=ns, image="docker.io/library/busybox", container="debug", proc="sh")
              for ns in (story["shop"], story["web"]) for _ in range(3)]
    assert story["poster"].post(body(*alerts))[0] == 200
    (s,) = wait_for("a cluster-wide suggestion", lambda: _suggestions(story["user"], story["home"]))
    assert s["spec"]["scope"] == "Cluster" and s["spec"]["exception"]["kind"] == "ClusterPolicyException"
    assert sorted(s["spec"]["match"]["namespaces"]) == sorted([story["shop"], story["web"]])
    assert s["spec"]["exception"]["spec"]["match"]["fields"][0] == "k8s.ns.name"


def _events(user: User, reason: str) -> list[dict[str, Any]]:
    items = (user.get("events", "-n", FALCO_NS) or {}).get("items") or []
    return [e for e in items if e.get("reason") == reason and e["involvedObject"]["name"] == CONFIGMAP]


REPORT = loader_report("/etc/falco/rules.d/padlock-rules.yaml", "Custom shell", "proc.nmae")


def _falco_loaded(user: User) -> dict[str, Any]:
    """The FalcoLoaded condition of the story's RuleSource (empty while there is none)."""
    conditions = (user.get("rulesource", SOURCE) or {}).get("status", {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "FalcoLoaded"), {})


def _content_hash(user: User) -> str:
    return str(((user.configmap() or {}).get("metadata") or {}).get("annotations", {}).get("padlock.dev/content-hash"))


def test_a_refused_falco_reload_becomes_a_warning_event_and_a_condition_on_the_published_rule_source(
        story: dict[str, Any]) -> None:
    user = story["user"]
    assert story["poster"].post(body(reload_failure(REPORT, hostname="node-2", time=now_time())))[0] == 200
    (event,) = wait_for("a FalcoReloadFailed Event", lambda: _events(user, "FalcoReloadFailed"))
    assert event["type"] == "Warning"
    assert "node-2" in event["message"] and "LOAD_ERR_COMPILE_CONDITION" in event["message"]
    cond = wait_for("FalcoLoaded=False on the RuleSource", lambda: _falco_loaded(user).get("status") == "False"
                    and _falco_loaded(user))
    assert cond["reason"] == "FalcoReloadFailed"
    assert cond["message"].startswith(f"Falco on node-2 refused to reload the published rules ({_content_hash(user)})")
    assert cond["message"].endswith("LOAD_ERR_COMPILE_CONDITION (Error compiling condition): filter_check called "
                                    "with nonexistent field proc.nmae")
    columns = user.kubectl("get", "rulesource", SOURCE).stdout
    assert re.search(rf"^{SOURCE}\s+\S+\s+True\s+\S+\s+False\s", columns, re.M), columns


def test_an_alert_of_a_rule_the_ruleset_does_not_run_means_falco_is_stale(story: dict[str, Any]) -> None:
    user, off = story["user"], KEYS_RULE
    for policy in CARRIERS:  # the rule runs while any enabled policy carrying it does not disable it
        user.kubectl("patch", "managedpolicy", policy, "--type=merge", "-p",
                     json.dumps({"spec": {"disabledRules": [off]}}))
    wait_for(f"{off} disabled in the published layer", lambda: disabled(user.layer(), off))

    def posted_and_reported() -> list[dict[str, Any]]:
        # The ConfigMap shows the change a moment before the operator records it as published.
        assert story["poster"].post(body(falco_alert(rule=off, ns=story["shop"], time=now_time())))[0] == 200
        return _events(user, "FalcoRulesetStale")

    (event,) = wait_for("a FalcoRulesetStale Event", posted_and_reported)
    assert off in event["message"] and "older ruleset" in event["message"]

    def node_2_took_the_new_files() -> dict[str, Any]:
        # node-2, whose reload failed before this publish, alerts from a running rule after it.
        running = falco_alert(ns=story["web"], image="docker.io/library/alpine", hostname="node-2", time=now_time())
        assert story["poster"].post(body(running))[0] == 200
        cond = _falco_loaded(user)
        return cond if cond.get("reason") == "FalcoRulesetStale" else {}

    cond = wait_for("FalcoLoaded=False/FalcoRulesetStale", node_2_took_the_new_files)
    assert cond["status"] == "False"
    assert cond["message"] == (f"Falco on node-1 raised rule {off!r}, which the published ruleset "
                               f"{_content_hash(user)} does not run: it runs an older ruleset")


def test_alerts_of_the_current_ruleset_bring_falco_loaded_back(story: dict[str, Any]) -> None:
    user, on = story["user"], KEYS_RULE
    for policy in CARRIERS:
        user.kubectl("patch", "managedpolicy", policy, "--type=merge", "-p", json.dumps({"spec": {"disabledRules": []}}))
    wait_for(f"{on} running again in the published layer", lambda: not disabled(user.layer(), on))

    def posted_and_loaded() -> dict[str, Any]:
        # The rule this publish started running, raised by node-1: an older ruleset would not raise it.
        assert story["poster"].post(body(falco_alert(rule=on, ns=story["shop"], time=now_time())))[0] == 200
        cond = _falco_loaded(user)
        return cond if cond.get("status") == "True" else {}

    cond = wait_for("FalcoLoaded=True/Loaded", posted_and_loaded)
    assert cond["reason"] == "Loaded"
    # node-2 recovered in the same episode (FalcoLoaded stayed False for node-1): both are named.
    assert cond["message"] == f"Falco on node-1, node-2 show the published ruleset {_content_hash(user)} again"
