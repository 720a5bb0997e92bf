"""The ``--tuner-*`` flags of ``padlock operator`` and what they build (``TunerFlags``).

Kept apart from ``padlock.cli.operator`` so the tuner's many settings stay one decorator there. The
chart sets them from ``tuner.*`` values; the bearer token comes from a file (a mounted Secret), never
from a flag, so it does not show in the pod spec or ``ps``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from padlock.api.common import parse_duration

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = [
    click.option("--tuner-port", type=int, help="Port of the tuner's HTTPS alert intake (unset: no tuner)."),
    click.option("--tuner-addr", default="127.0.0.1", show_default=True, help="Address the alert intake listens on."),
    click.option("--tuner-cert-dir", type=click.Path(file_okay=False),
                 help="Directory with tls.crt/tls.key for the intake (generated if absent)."),
    click.option("--tuner-token-file", envvar="PADLOCK_TUNER_TOKEN_FILE", type=click.Path(dir_okay=False),
                 help="File holding the bearer token Falco/falcosidekick must send."),
    click.option("--tuner-client-ca", type=click.Path(exists=True, dir_okay=False),
                 help="CA (PEM) whose client certificates are accepted (mutual TLS)."),
    click.option("--tuner-service", envvar="PADLOCK_TUNER_SERVICE",
                 help="Service name of the intake; its DNS names go into the certificate."),
    click.option("--tuner-namespace", envvar="POD_NAMESPACE", default="padlock-system", show_default=True,
                 help="Namespace of cluster-wide suggestions (and of the intake Service)."),
    click.option("--tuner-window", default="1h", show_default=True, help="Sliding window the tuner counts over."),
    click.option("--tuner-min-hits", type=click.IntRange(min=1), default=20, show_default=True,
                 help="Alerts of one workload for one rule in the window before a suggestion."),
    click.option("--tuner-min-share", type=click.FloatRange(0, 1), default=0.5, show_default=True,
                 help="Share of the rule's alerts the workload must account for."),
    click.option("--tuner-untunable-priority", default="CRITICAL", show_default=True,
                 help="Never tune this priority or more severe ones ('' to tune every priority)."),
    click.option("--tuner-untunable-rule", "tuner_untunable_rules", multiple=True, metavar="RULE",
                 help="A rule never to tune (repeatable)."),
    click.option("--tuner-samples/--no-tuner-samples", default=True, show_default=True,
                 help="Keep a few truncated alert outputs in suggestions (outputs can hold command lines)."),
    click.option("--tuner-max-keys", type=click.IntRange(min=1), default=100_000, show_default=True,
                 help="Workloads tracked at once."),
    click.option("--tuner-rate", type=click.FloatRange(min=1), default=20_000.0, show_default=True,
                 help="Alerts per second accepted from one client."),
    click.option("--tuner-max-body", type=click.IntRange(min=1024), default=1 << 20, show_default=True,
                 help="Largest request body in bytes."),
    click.option("--tuner-interval", type=float, default=1.0, show_default=True, hidden=True,
                 help="Seconds between suggestion writes."),
    click.option("--tuner-reload-grace", type=click.FloatRange(min=0), default=120.0, show_default=True,
                 help="Seconds after a publish before Falco's alerts count as evidence of what it loaded "
                      "(the kubelet's delay in updating the mounted rules)."),
]


def tuner_options(func: F) -> F:
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


def build(values: dict[str, Any]) -> Any:
    """``TunerFlags`` from the ``tuner_*`` keyword arguments, or None without ``--tuner-port``."""
    if values.get("tuner_port") is None:
        return None
    from padlock.controllers.intake import IntakeOptions
    from padlock.controllers.tuner import TunerFlags
    from padlock.policy.tuning.alerts import Limits
    from padlock.policy.tuning.suggest import TunerConfig
    from padlock.webhook.certs import service_sans

    token = None
    if values.get("tuner_token_file"):
        path = Path(values["tuner_token_file"])
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise click.BadParameter(f"{path}: {exc.strerror}", param_hint="--tuner-token-file") from None
        if not token:
            raise click.BadParameter(f"{path} is empty", param_hint="--tuner-token-file")
    try:
        window = parse_duration(values["tuner_window"]).total_seconds()
        config = TunerConfig(window=window, min_hits=values["tuner_min_hits"], min_share=values["tuner_min_share"],
                             untunable_priority=values["tuner_untunable_priority"],
                             untunable_rules=frozenset(values["tuner_untunable_rules"]),
                             max_keys=values["tuner_max_keys"], samples=3 if values["tuner_samples"] else 0)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tuner-*") from None
    namespace = values["tuner_namespace"]
    sans = ["127.0.0.1", "localhost"]
    if values.get("tuner_service"):
        sans += service_sans(values["tuner_service"], namespace)
    limits = Limits(max_body_bytes=values["tuner_max_body"])
    rate = values["tuner_rate"]
    try:
        intake = IntakeOptions(addr=values["tuner_addr"], port=values["tuner_port"], cert_dir=values["tuner_cert_dir"],
                               sans=tuple(sans), token=token, client_ca=values.get("tuner_client_ca"), limits=limits,
                               rate=rate, burst=max(2 * rate, float(limits.max_alerts)))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tuner-token-file") from None
    return TunerFlags(intake=intake, config=config, samples=values["tuner_samples"], cluster_namespace=namespace,
                      interval=values["tuner_interval"], reload_grace=values["tuner_reload_grace"])
