"""The operator's webhook wiring: url-mode configuration from the chart, caBundle upkeep, flags.

Also: the leader election flags, and the certificate replicas share through one Secret (filled
once under a resourceVersion precondition; a replica that loses that race serves the winner's).

Pure parts and the async upkeep loop with a fake publisher; the real API server side is covered by
tests/integration/test_operator_webhook.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from padlock.cli import operator as operator_cli
from padlock.controllers import expiry, webhook_wiring
from padlock.devenv import tools
from padlock.webhook import handlers

REPO = Path(__file__).resolve().parents[3]


def _chart_webhook_yaml() -> str:
    helm = tools.find("helm")
    done = subprocess.run(
        [str(helm), "template", "padlock", str(REPO / "charts" / "padlock"), "--namespace", "padlock-system",
         "--show-only", "templates/webhook.yaml"], capture_output=True, text=True, check=True, timeout=120)
    return done.stdout


def test_url_mode_configuration_keeps_the_charts_webhooks_and_points_them_at_the_url() -> None:
    manifest = _chart_webhook_yaml()
    config = webhook_wiring.url_mode_configuration(manifest, "https://127.0.0.1:9999/")
    assert config["metadata"]["name"] == "padlock.dev"
    hooks = config["webhooks"]
    assert sorted(h["name"] for h in hooks) == sorted(f"{i}.padlock.dev" for i in handlers.HANDLER_IDS)
    for hook in hooks:
        handler_id = hook["name"].removesuffix(".padlock.dev")
        assert hook["clientConfig"] == {"url": f"https://127.0.0.1:9999/{handler_id}"}
        assert hook["failurePolicy"] == "Ignore"
    cm = next(h for h in hooks if h["name"].startswith("lock-configmap."))
    assert cm["objectSelector"] == {"matchLabels": {"app.kubernetes.io/managed-by": "padlock"}}


def test_url_mode_configuration_names_the_problem_in_a_bad_manifest() -> None:
    with pytest.raises(ValueError, match="expected one ValidatingWebhookConfiguration, found 0"):
        webhook_wiring.url_mode_configuration("kind: ConfigMap\n", "https://127.0.0.1:1")
    bad = ("kind: ValidatingWebhookConfiguration\nmetadata: {name: x}\n"
           "webhooks:\n- name: a.x\n  clientConfig: {service: {name: s}}\n")
    with pytest.raises(ValueError, match=r"webhooks\[0\] \(a.x\): clientConfig.service.path"):
        webhook_wiring.url_mode_configuration(bad, "https://127.0.0.1:1")


def test_operator_webhook_options_are_never_kopf_managed_and_carry_plugins() -> None:
    flags = webhook_wiring.WebhookFlags(port=9443, listen_addr="0.0.0.0", configuration="padlock.dev",
                                        service="padlock", namespace="padlock-system")
    options = webhook_wiring.webhook_options(flags, plugins={"k8saudit": "0.7.0", "container": "0.4.0"},
                                             engine_version="0.62.0")
    assert options.managed_config is None
    assert options.ca_bundle_config == "padlock.dev"
    assert options.plugins == (("container", "0.4.0"), ("k8saudit", "0.7.0"))
    assert options.engine_version == "0.62.0"
    assert "padlock.padlock-system.svc" in options.sans()


def test_ca_bundle_upkeep_retries_until_the_configuration_exists_then_rechecks() -> None:
    calls: list[str] = []

    def publish(client: Any, name: str, ca: bytes) -> bool:
        calls.append(name)
        if len(calls) < 3:
            raise RuntimeError("GET validatingwebhookconfigurations/padlock.dev: 404 NotFound")
        return len(calls) == 3

    async def scenario() -> None:
        task = asyncio.create_task(webhook_wiring.keep_ca_bundle(
            object(), "padlock.dev", b"ca", recheck=0.01, retry=0.01, publish=publish))
        while len(calls) < 6:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert set(calls) == {"padlock.dev"} and len(calls) >= 6


def _run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[Any, dict[str, Any]]:
    seen: dict[str, Any] = {}

    def fake_run(options: Any, runtime: Any, connection: Any, webhook_flags: Any = None,
                 tuner_flags: Any = None, election_flags: Any = None) -> None:
        seen.update(options=options, runtime=runtime, webhook=webhook_flags, tuner=tuner_flags,
                    election=election_flags)

    import padlock.adapters.kube.client as client_mod
    import padlock.controllers.run as run_mod

    mp = pytest.MonkeyPatch()
    mp.setattr(run_mod, "run_operator", fake_run)
    mp.setattr(client_mod, "load_connection", lambda *a: object())
    try:
        result = CliRunner().invoke(operator_cli.command, list(args), env=env or {})
    finally:
        mp.undo()
    return result, seen


def test_chart_env_vars_select_service_mode() -> None:
    result, seen = _run_cli("--webhook-port", "9443", "--webhook-addr", "0.0.0.0", "--plugin", "container=0.4.0",
                            env={"PADLOCK_WEBHOOK_SERVICE": "padlock", "POD_NAMESPACE": "padlock-system",
                                 "PADLOCK_WEBHOOK_CA_BUNDLE_CONFIG": "my-hooks",
                                 "PADLOCK_OPERATOR_USERNAME": "system:serviceaccount:ops:padlock"})
    assert result.exit_code == 0, result.output
    flags = seen["webhook"]
    assert (flags.service, flags.namespace, flags.configuration) == ("padlock", "padlock-system", "my-hooks")
    assert flags.operator_username == "system:serviceaccount:ops:padlock"
    assert seen["options"].plugins == {"container": "0.4.0"}


def test_no_webhook_port_means_no_webhook_and_service_needs_a_namespace() -> None:
    result, seen = _run_cli()
    assert result.exit_code == 0 and seen["webhook"] is None
    result, _ = _run_cli("--webhook-port", "9443", "--webhook-service", "padlock")
    assert result.exit_code == 2 and "--webhook-namespace" in result.output


def _t(seconds: int) -> dt.datetime:
    return dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)


def test_expiry_times_cover_exceptions_and_custom_policy_entries() -> None:
    exceptions = [{"spec": {"expiresAt": "2026-01-01T00:00:10Z"}}, {"spec": {}}, {"spec": {"expiresAt": "junk"}}]
    custom = [{"spec": {"exceptions": [{"expiresAt": "2026-01-01T00:00:05Z"}, {"reason": "x"}]}}]
    assert expiry.expiry_times(exceptions, custom) == [_t(5), _t(10)]


def test_an_expiry_wakes_the_render_once_when_it_passes() -> None:
    times = [_t(5)]
    assert not expiry.passed_between(times, _t(0), _t(4))
    assert expiry.passed_between(times, _t(4), _t(5))
    assert not expiry.passed_between(times, _t(5), _t(6))


def test_leader_election_flags_take_the_pods_namespace_and_name_and_refuse_unsafe_timings() -> None:
    result, seen = _run_cli("--leader-election", env={"POD_NAMESPACE": "padlock-system", "POD_NAME": "padlock-0"})
    assert result.exit_code == 0, result.output
    election = seen["election"]
    assert (election.namespace, election.identity, election.name) == ("padlock-system", "padlock-0", "padlock-operator")
    assert election.timing.renew_deadline < election.timing.lease_duration
    result, seen = _run_cli()
    assert result.exit_code == 0 and seen["election"] is None
    result, _ = _run_cli("--leader-election", "--lease-duration", "5", "--renew-deadline", "5",
                         env={"POD_NAMESPACE": "p"})
    assert result.exit_code == 2 and "must be longer than the renew deadline" in result.output
    result, _ = _run_cli("--leader-election")
    assert result.exit_code == 2 and "--leader-election-namespace" in result.output


class _SecretServer:
    """A Secret the way the API server treats updates: resourceVersion preconditions, 409 on a stale one."""

    def __init__(self) -> None:
        self.obj: dict[str, Any] = {"metadata": {"name": "tls", "namespace": "ns", "resourceVersion": "1"},
                                    "type": "Opaque"}
        self.race: dict[str, Any] | None = None

    def get(self, path: str) -> dict[str, Any]:
        import copy
        return copy.deepcopy(self.obj)

    def replace(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        from padlock.adapters.kube.client import ApiError
        if self.race is not None:  # another replica wins between our read and our write
            self.obj, self.race = {**self.race, "metadata": {**self.obj["metadata"], "resourceVersion": "2"}}, None
        if body["metadata"]["resourceVersion"] != self.obj["metadata"]["resourceVersion"]:
            raise ApiError("PUT", path, 409, "Conflict", "the object has been modified")
        self.obj = {**body, "metadata": {**body["metadata"], "resourceVersion": str(int(body["metadata"]["resourceVersion"]) + 1)}}
        return self.obj


def test_replicas_share_one_certificate_from_the_secret_and_a_lost_race_uses_the_winners(tmp_path: Path) -> None:
    from padlock.webhook import certs

    now = dt.datetime.now(dt.UTC)
    sans = ["127.0.0.1", "padlock.padlock-system.svc"]
    server = _SecretServer()
    assert webhook_wiring.load_shared_certificate(server, "ns", "tls", str(tmp_path / "a"), sans, now=now)
    assert not webhook_wiring.load_shared_certificate(server, "ns", "tls", str(tmp_path / "b"), sans, now=now)
    for name in (certs.CA_FILE, certs.CERT_FILE, certs.KEY_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    # A replica that finds it empty but loses the race to fill it serves the winner's certificate.
    winner = _SecretServer()
    winner.obj["data"] = {}
    import base64
    ca, cert, key = certs.generate(sans, now=now)
    winner.race = {"type": "Opaque", "data": {k: base64.b64encode(v).decode() for k, v in
                                              ((certs.CA_FILE, ca), (certs.CERT_FILE, cert), (certs.KEY_FILE, key))}}
    assert not webhook_wiring.load_shared_certificate(winner, "ns", "tls", str(tmp_path / "c"), sans, now=now)
    assert (tmp_path / "c" / certs.CA_FILE).read_bytes() == ca
    # A certificate that lacks a name the replicas are reached by is replaced, not served.
    assert webhook_wiring.load_shared_certificate(server, "ns", "tls", str(tmp_path / "d"), [*sans, "other"], now=now)
    assert (tmp_path / "d" / certs.CA_FILE).read_bytes() != (tmp_path / "a" / certs.CA_FILE).read_bytes()
