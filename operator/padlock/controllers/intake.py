"""The tuner's alert intake: an HTTPS endpoint for Falco's ``http_output`` and falcosidekick's webhook.

``POST /`` (also ``/alerts``) takes one alert or newline-delimited alerts (``padlock.policy.tuning.alerts``).
Authentication: ``Authorization: Bearer <token>`` (the token from a mounted Secret) or a client
certificate signed by ``client_ca`` (mutual TLS); anything else gets 401. Limits: the body size (413),
alerts per second per client (429 with ``Retry-After``), the tuner's bounded keys. Bad input gets 400
naming the line and field. Every refusal is counted (``padlock_tuner_rejected_requests_total``).

The handler only parses and counts in memory, then answers; it never waits on the API server. The
Kubernetes writes (suggestions, Events) happen in ``padlock.controllers.tuner``'s background task,
which drains ``Intake.tuner`` and ``Intake.feedback``. Runs on the operator's event loop (aiohttp), or
standalone for the bench (``bench/tuner/intake_bench.py``).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import ssl
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from padlock import metrics
from padlock.flows.falco_loaded import HostTracker, Published
from padlock.policy.tuning.alerts import Alert, AlertError, Limits, parse_body
from padlock.policy.tuning.feedback import Feedback, RulesetView, assess
from padlock.policy.tuning.suggest import Tuner
from padlock.policy.tuning.window import RateLimiter
from padlock.webhook import certs

MAX_FEEDBACK = 1024
"""(reason, host) pairs waiting for the background task; more are dropped (the metric still counts them)."""
MAX_HOST_LABELS = 256


@dataclass(frozen=True)
class IntakeOptions:
    addr: str = "127.0.0.1"
    port: int = 8443
    cert_dir: str | None = None
    """tls.crt/tls.key (and ca.crt) for the endpoint; generated there when absent."""
    sans: tuple[str, ...] = ("127.0.0.1", "localhost")
    token: str | None = None
    client_ca: str | None = None
    """PEM file of the CA whose client certificates are accepted (mutual TLS)."""
    limits: Limits = field(default_factory=Limits)
    rate: float = 20_000.0
    """Alerts per second per client (token bucket)."""
    burst: float = 40_000.0

    def __post_init__(self) -> None:
        if not self.token and not self.client_ca:
            raise ValueError("the alert intake needs a bearer token (--tuner-token-file) or a client CA "
                             "(--tuner-client-ca); refusing to accept unauthenticated alerts")
        if self.burst < self.limits.max_alerts:
            raise ValueError(f"tuner burst ({self.burst:g}) must allow one full request "
                             f"({self.limits.max_alerts} alerts)")


@dataclass
class Intake:
    options: IntakeOptions
    tuner: Tuner
    view: Callable[[], RulesetView | None] = lambda: None
    clock: Callable[[], float] = time.time
    published: Callable[[], Published | None] = lambda: None
    """The last published ruleset for the per-host ``FalcoLoaded`` evidence (``padlock.flows.falco_loaded``)."""
    hosts: HostTracker = field(default_factory=HostTracker)
    feedback: dict[tuple[str, str], Feedback] = field(default_factory=dict)
    """Feedback waiting for the background task, the latest per (reason, host)."""
    received: int = 0

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.options.rate, self.options.burst)
        self._token = (self.options.token or "").encode()
        self._hosts: set[str] = set()
        self.tls_files: certs.TlsFiles | None = None

    # -- HTTP -----------------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.options.limits.max_body_bytes)
        for path in ("/", "/alerts"):
            app.router.add_post(path, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        if not self._authenticated(request):
            return _refuse(401, "unauthorized", "send Authorization: Bearer <token> or a client certificate "
                           "signed by the configured CA", headers={"WWW-Authenticate": 'Bearer realm="padlock"'})
        length = request.content_length
        limit = self.options.limits.max_body_bytes
        if length is not None and length > limit:
            return _refuse(413, "too_large", f"body of {length} bytes exceeds the limit of {limit} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _refuse(413, "too_large", f"body exceeds the limit of {limit} bytes")
        try:
            alerts = parse_body(body, self.options.limits)
        except AlertError as exc:
            return _refuse(400, "malformed", str(exc))
        now = self.clock()
        client = request.remote or "unknown"
        if not self.limiter.allow(client, now, cost=len(alerts)):
            return _refuse(429, "rate_limited", f"client {client} exceeds {self.options.rate:g} alerts per second",
                           headers={"Retry-After": "1"})
        self.process(alerts, now)
        return web.json_response({"accepted": len(alerts)})

    def _authenticated(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if self._token and header[:7].lower() == "bearer " and hmac.compare_digest(header[7:].strip().encode(),
                                                                                    self._token):
            return True
        if self.options.client_ca and request.transport is not None:
            # With a client CA the TLS layer verified any certificate presented; one present is enough.
            return bool(request.transport.get_extra_info("peercert"))
        return False

    # -- counting (no I/O) ------------------------------------------------------------------------------
    def process(self, alerts: list[Alert], now: float) -> None:
        view = self.view()
        published = self.published()
        tally: Tally[tuple[str, str, str]] = Tally()
        for alert in alerts:
            fb = assess(alert, view)
            # The tracker also decides whether a stale-looking alert is evidence at all (its event may
            # predate the publish); it costs one dict lookup for an alert of a healthy host.
            if not self.hosts.observe(alert, fb, published, now) and published is not None:
                fb = None
            if fb is not None:
                host = fb.hostname if fb.hostname in self._hosts or len(self._hosts) < MAX_HOST_LABELS else "other"
                self._hosts.add(host)
                metrics.FALCO_FEEDBACK.labels(fb.reason, host).inc()
                key = (fb.reason, fb.hostname)
                if key in self.feedback or len(self.feedback) < MAX_FEEDBACK:
                    self.feedback[key] = fb
            outcome = self.tuner.observe(alert, now)
            # Rule names come from the client: only rules the ruleset knows become label values.
            rule = alert.rule if view is not None and alert.rule in view.known else "other"
            tally[(rule, alert.priority, outcome)] += 1
        for labels, n in tally.items():
            metrics.TUNER_ALERTS.labels(*labels).inc(n)
        self.received += len(alerts)

    def take_feedback(self) -> list[Feedback]:
        out, self.feedback = list(self.feedback.values()), {}
        return out

    # -- TLS ----------------------------------------------------------------------------------------------
    def ssl_context(self, cert_dir: Path) -> ssl.SSLContext:
        files = certs.ensure(cert_dir, list(self.options.sans), now=dt.datetime.now(dt.UTC))
        self.tls_files = files
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(files.certfile), str(files.pkeyfile))
        if self.options.client_ca:
            context.load_verify_locations(cafile=self.options.client_ca)
            context.verify_mode = ssl.CERT_OPTIONAL
        return context

    async def start(self, cert_dir: Path) -> web.AppRunner:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.options.addr, self.options.port, ssl_context=self.ssl_context(cert_dir))
        await site.start()
        return runner


def _refuse(status: int, reason: str, message: str, *, headers: dict[str, str] | None = None) -> web.Response:
    metrics.TUNER_REJECTED.labels(reason).inc()
    return web.Response(status=status, text=json.dumps({"error": reason, "message": message}) + "\n",
                        content_type="application/json", headers=headers)
