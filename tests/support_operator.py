"""Harness for the integration tests that run the real ``padlock operator``: one place for each step.

``running_operator`` pushes the example rules' v1 to the test registry, installs the chart's webhook
configuration in url mode (``LocalWebhook``, as admin) when asked, applies a RuleSource following the
pushed repository, starts ``padlock operator`` as the chart's ServiceAccount (``OperatorProcess``) and,
on the way out, removes the webhook first (so admin cleanup is never locked out), stops the operator,
prints its log tail and deletes what the story left behind. ``User`` is the platform engineer's side
(kubectl as admin, the padlock CLI, the published ConfigMap and its generated layer); ``disabled``,
``runs`` and ``exception_entries`` read that layer. ``wait_for`` polls like ``support_webhook.wait_until``.
Used by tests/integration/test_operator_story.py, test_operator_webhook.py, test_user_story.py,
test_user_story_freeze.py and test_render_matches_operator.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from padlock.controllers.local_webhook import LocalWebhook
from padlock.controllers.process import OperatorProcess, free_port
from padlock.devenv import artifacts
from padlock.devenv.controlplane import ControlPlane
from support_webhook import wait_until

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "examples" / "rules"
CHART = REPO / "charts" / "padlock"
FALCO_NS = "falco"
CONFIGMAP = "padlock-rules"
LAYER = "padlock-policies.yaml"
"""The key of the generated policy layer in the published ConfigMap."""
PLUGIN = "container=0.4.0"
OPERATOR_FLAGS = ["--plugin", PLUGIN, "--tick", "0.2", "--drift-interval", "1", "--debounce", "0.2"]
"""Short tick, drift interval and debounce, so stories settle in seconds."""

# What examples/rules hold (every rule there is maturity_stable; the built-in catalog gives each rule one
# owner policy, so the credential rules are carried by credential-access alone).
POLICY = "credential-access"
CARRIERS = ("credential-access",)
"""The managed policy that carries the credential rules (one owner per rule)."""
GPG_RULE = "Search GPG Private Keys"
"""The rule v2 adds to credential-access."""
KEYS_RULE = "Search Private Keys or Passwords"
SHELL_RULE = "Terminal shell in container"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
    """Poll ``check`` until it returns something truthy and return that; fail naming ``what`` otherwise."""
    return wait_until(check, timeout=timeout, interval=0.2, what=what)


def push_release(registry: str, repository: str, release: str, version: str) -> artifacts.PushedArtifact:
    """Push examples/rules/<release>/*.yaml as ``version`` of ``registry/repository``."""
    files = {p.name: p.read_text() for p in sorted((RULES / release).glob("*.yaml"))}
    return artifacts.push_rules_artifact(registry, repository, version, files)


def rule_source(name: str, registry: str, repository: str, *, interval: str = "2s",
                **spec: Any) -> dict[str, Any]:
    """A RuleSource following tag ``1`` of ``registry/repository`` over plain HTTP; ``spec`` adds fields."""
    return {"apiVersion": "padlock.dev/v1alpha1", "kind": "RuleSource", "metadata": {"name": name},
            "spec": {"oci": {"repository": f"{registry}/{repository}", "tag": "1", "plainHTTP": True},
                     "interval": interval, **spec}}


def parse_layer(configmap: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The items of the generated layer in a published ConfigMap (empty when there is none)."""
    text = ((configmap or {}).get("data") or {}).get(LAYER) or "[]"
    return [i for i in yaml.safe_load(text) or [] if isinstance(i, dict)]


def disabled(layer: list[dict[str, Any]], rule: str) -> bool:
    """The layer switches ``rule`` off with Falco's override mechanism."""
    return any(i.get("rule") == rule and i.get("enabled") is False
               and (i.get("override") or {}).get("enabled") == "replace" for i in layer)


def runs(layer: list[dict[str, Any]], rule: str) -> bool:
    return not disabled(layer, rule)


def exception_entries(layer: list[dict[str, Any]], rule: str) -> dict[str, dict[str, Any]]:
    """Exception entries appended to ``rule`` by the layer, by exception name."""
    out: dict[str, dict[str, Any]] = {}
    for item in layer:
        if item.get("rule") == rule and (item.get("override") or {}).get("exceptions") == "append":
            for entry in item.get("exceptions") or []:
                out[entry["name"]] = entry
    return out


class User:
    """The platform engineer: kubectl as admin, and the padlock CLI with the admin kubeconfig."""

    def __init__(self, kubectl: Any, kubeconfig: Path) -> None:
        self.kubectl = kubectl
        self.kubeconfig = kubeconfig

    def get(self, *args: str) -> dict[str, Any] | None:
        """``kubectl get <args> -o json``, or None when it fails (not found)."""
        done = self.kubectl("get", *args, "-o", "json", check=False)
        return json.loads(done.stdout) if done.returncode == 0 else None

    def status(self, *args: str) -> dict[str, Any]:
        """The status of ``kubectl get <args>`` (empty while the object or its status is missing)."""
        return (self.get(*args) or {}).get("status") or {}

    def condition(self, type_: str, *args: str) -> dict[str, Any] | None:
        """The status condition ``type_`` of ``kubectl get <args>``, if there is one."""
        return next((c for c in self.status(*args).get("conditions") or [] if c["type"] == type_), None)

    def apply(self, obj: dict[str, Any], *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``kubectl apply <extra> -f -`` with ``obj``; ``check=False`` returns a refusal instead of raising."""
        result: subprocess.CompletedProcess[str] = self.kubectl(
            "apply", *extra, "-f", "-", input=json.dumps(obj), check=check)
        return result

    def padlock(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "padlock", *args, "--kubeconfig", str(self.kubeconfig)],
                              capture_output=True, text=True, timeout=120)

    def configmap(self) -> dict[str, Any] | None:
        """The published ConfigMap, None while there is none."""
        return self.get("configmap", CONFIGMAP, "-n", FALCO_NS)

    def layer(self) -> list[dict[str, Any]]:
        return parse_layer(self.configmap())


@dataclasses.dataclass
class RunningOperator:
    """``padlock operator`` started by ``running_operator``, with what the story needs to go on."""

    control_plane: ControlPlane
    user: User
    webhook: LocalWebhook | None
    workdir: Path
    registry: str
    repository: str
    flags: list[str]
    op: OperatorProcess = dataclasses.field(init=False)
    """The running process; ``restart`` replaces it."""

    def __post_init__(self) -> None:
        self.op = self._process(self.workdir / "operator.log")

    @property
    def hook(self) -> LocalWebhook:
        """The webhook the operator serves (started with ``helm``)."""
        assert self.webhook is not None, "running_operator was started without helm: no webhook"
        return self.webhook

    def _process(self, log: Path) -> OperatorProcess:
        return OperatorProcess(self.control_plane.kubeconfig("operator"), log, extra=self.flags,
                               falco_namespace=FALCO_NS, configmap=CONFIGMAP)

    def push(self, release: str, version: str) -> artifacts.PushedArtifact:
        """Push examples/rules/<release> as ``version`` of the repository the RuleSource follows."""
        return push_release(self.registry, self.repository, release, version)

    def restart(self, log_name: str) -> OperatorProcess:
        """Stop the operator and start a new one with the same flags, logging to ``workdir/log_name``."""
        self.op.stop()
        self.op = self._process(self.workdir / log_name).start()
        self.op.wait_ready(120)
        return self.op

    def serving(self, policy: str) -> None:
        """Wait until the operator published its caBundle and the API server calls its webhook (a
        dry-run locked edit of ManagedPolicy ``policy`` is denied)."""
        wait_for("the operator's caBundle", self.hook.ca_published)
        self.hook.wait_answering(policy)


@contextlib.contextmanager
def running_operator(
    control_plane: ControlPlane, kubectl: Any, registry: str, workdir: Path, *, source: str,
    repository: str | None = None, interval: str = "2s", source_spec: dict[str, Any] | None = None,
    helm: Any = None, flags: Sequence[str] = OPERATOR_FLAGS, cleanup: Sequence[Sequence[str]] = (),
) -> Iterator[RunningOperator]:
    """v1 pushed, a RuleSource ``source`` following it, and ``padlock operator`` ready (chart RBAC only).

    With ``helm``, the chart's webhook configuration is installed in url mode and the operator serves
    it (``RunningOperator.serving`` waits until it answers). ``repository`` defaults to a fresh
    ``rules/<source>-<random>``. Afterwards: the webhook is removed first, the operator stopped (its
    log tail printed) and ``remove_story`` run with ``cleanup``.
    """
    repository = repository or f"rules/{source}-{secrets.token_hex(3)}"
    push_release(registry, repository, "v1", "1.0.0")
    hook = None
    if helm is not None:
        hook = LocalWebhook(kubectl, helm, CHART, port=free_port(), cert_dir=workdir / "tls")
        hook.install()
    user = User(kubectl, control_plane.kubeconfig("admin"))
    user.apply(rule_source(source, registry, repository, interval=interval, **(source_spec or {})))
    running = RunningOperator(control_plane, user, hook, workdir, registry, repository,
                              [*flags, *(hook.flags() if hook else [])])
    running.op.start()
    try:
        running.op.wait_ready(120)
        yield running
    finally:
        if hook is not None:
            hook.remove()  # first: with the webhook gone, cleanup as admin is not locked out
        running.op.stop()
        print(running.op.tail(80))
        remove_story(kubectl, source, cleanup)


def remove_story(kubectl: Any, source: str, cleanup: Sequence[Sequence[str]] = ()) -> None:
    """Delete what a story leaves: each ``cleanup`` kubectl command, then the RuleSource ``source`` (its
    finalizer dropped: no operator is left to remove it), every ManagedPolicy and the published
    ConfigMaps (all ``check=False``: some may never have been created)."""
    for command in cleanup:
        kubectl(*command, check=False)
    kubectl("delete", "rulesource", source, "--wait=false", check=False)
    kubectl("patch", "rulesource", source, "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False)
    kubectl("delete", "managedpolicies", "--all", "--wait=false", check=False)
    kubectl("delete", "configmap", CONFIGMAP, "-n", FALCO_NS, "--ignore-not-found", check=False)
    kubectl("delete", "configmap", "-n", FALCO_NS, "-l", f"padlock.dev/ruleset={CONFIGMAP}", check=False)


class ConfigMapWatch:
    """``kubectl get configmap padlock-rules -w``: every version written (ADDED or MODIFIED), as
    ``record(object)`` in ``seen``; a test counts writes or checks what each version held."""

    def __init__(self, kubectl: Any, kubeconfig: str, record: Callable[[dict[str, Any]], Any]) -> None:
        self.record = record
        self.seen: list[Any] = []
        self.proc = subprocess.Popen(
            [str(kubectl.binary), "--kubeconfig", kubeconfig, "get", "configmap", CONFIGMAP, "-n", FALCO_NS,
             "-w", "--output-watch-events", "-o", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        decoder, buf = json.JSONDecoder(), ""
        for line in self.proc.stdout:
            buf += line
            while buf.strip():
                try:
                    event, end = decoder.raw_decode(buf.lstrip())
                except json.JSONDecodeError:
                    break
                buf = buf.lstrip()[end:]
                if event.get("type") in ("ADDED", "MODIFIED"):
                    self.seen.append(self.record(event.get("object") or {}))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
