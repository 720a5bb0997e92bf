"""The tuner's alert intake handler (padlock.controllers.intake), through aiohttp's test server.

Covers: no or a wrong bearer token gets 401 with WWW-Authenticate and is counted; a Falco alert and a
newline-delimited batch in falcosidekick's shape are accepted and counted by the tuner; malformed
input gets 400 naming the line and field; an oversize body gets 413; a client over its rate gets 429
with Retry-After while another client is unaffected; Falco's hot-restart-failure alert is queued as
feedback; the intake refuses to start without any authentication configured.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from padlock import metrics
from padlock.controllers.intake import Intake, IntakeOptions
from padlock.policy.tuning.alerts import Limits
from padlock.policy.tuning.feedback import RELOAD_FAILED
from padlock.policy.tuning.suggest import Tuner, TunerConfig
from support_alerts import body, falco_alert, reload_failure, sidekick_alert

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def intake(**options: Any) -> Intake:
    opts = {"token": TOKEN, "limits": Limits(max_body_bytes=64 * 1024, max_alerts=100), "rate": 1000.0,
            "burst": 1000.0, **options}
    return Intake(IntakeOptions(**opts), Tuner(TunerConfig(min_hits=2),
                                               policies_for=lambda _r: (("ManagedPolicy", "p"),)))


async def client_for(it: Intake) -> TestClient:  # type: ignore[type-arg]
    client: TestClient = TestClient(TestServer(it.app()))  # type: ignore[type-arg]
    await client.start_server()
    return client


def rejected(reason: str) -> float:
    return metrics.REGISTRY.get_sample_value("padlock_tuner_rejected_requests_total", {"reason": reason}) or 0.0


async def test_requests_without_the_right_token_get_401() -> None:
    it = intake()
    client = await client_for(it)
    try:
        before = rejected("unauthorized")
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            resp = await client.post("/", data=body(falco_alert()), headers=headers)
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert rejected("unauthorized") == before + 3
        assert it.received == 0
    finally:
        await client.close()


async def test_a_falco_alert_and_a_sidekick_batch_are_accepted_and_counted() -> None:
    it = intake()
    client = await client_for(it)
    try:
        resp = await client.post("/", data=body(falco_alert()), headers=AUTH)
        assert resp.status == 200 and (await resp.json()) == {"accepted": 1}
        resp = await client.post("/alerts", data=body(sidekick_alert(), sidekick_alert()), headers=AUTH)
        assert resp.status == 200 and (await resp.json()) == {"accepted": 2}
        assert it.received == 3
        (s,) = it.tuner.due(it.clock() + 1)
        assert s.hits == 3 and s.namespace == "shop"
    finally:
        await client.close()


async def test_malformed_input_gets_400_naming_line_and_field() -> None:
    client = await client_for(intake())
    try:
        resp = await client.post("/", data=body(falco_alert()) + b'\n{"rule": "r"}', headers=AUTH)
        assert resp.status == 400
        answer = await resp.json()
        assert answer["error"] == "malformed"
        assert answer["message"].startswith('line 2: field "priority" is missing')
    finally:
        await client.close()


async def test_an_oversize_body_gets_413() -> None:
    client = await client_for(intake())
    try:
        resp = await client.post("/", data=b"x" * (65 * 1024), headers=AUTH)
        assert resp.status == 413
        assert "exceeds the limit of 65536 bytes" in (await resp.json())["message"]
    finally:
        await client.close()


async def test_a_client_over_its_rate_gets_429_and_others_are_unaffected() -> None:
    it = intake(rate=5.0, burst=100.0, limits=Limits(max_alerts=100))
    client = await client_for(it)
    try:
        batch = body(*[falco_alert()] * 100)
        assert (await client.post("/", data=batch, headers=AUTH)).status == 200
        resp = await client.post("/", data=batch, headers=AUTH)
        assert resp.status == 429 and resp.headers["Retry-After"] == "1"
        assert it.limiter.allow("another-client", 0.0, cost=100)
    finally:
        await client.close()


async def test_a_refused_falco_reload_is_queued_as_feedback() -> None:
    it = intake()
    client = await client_for(it)
    try:
        for _ in range(3):  # Falco repeats it on every refused reload: one item per reason and host
            assert (await client.post("/", data=body(reload_failure("bad rule")), headers=AUTH)).status == 200
        (fb,) = it.take_feedback()
        assert fb.reason == RELOAD_FAILED and "bad rule" in fb.message and fb.hostname == "node-2"
        assert it.take_feedback() == []
    finally:
        await client.close()


def test_the_intake_refuses_to_run_without_authentication() -> None:
    with pytest.raises(ValueError, match="needs a bearer token"):
        IntakeOptions(token=None, client_ca=None)
