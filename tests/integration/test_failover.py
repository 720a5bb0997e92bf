"""High availability on the real control plane: two ``padlock operator`` replicas, the leader killed
with SIGKILL in the middle of a sync, and the survivor taking over.

Two replicas run as the chart's ServiceAccount with the chart's RBAC for ``leaderElection.enabled``
(Lease get/create/update, and get/update of the one Secret holding the webhook certificate they
share, which the chart creates empty). The API server reaches the webhook through a TCP pass-through
proxy in front of both replicas, as a Service with two endpoints would (TLS ends in the replicas).

Covers: exactly one replica takes the Lease, and the other syncs and renders nothing but holds the
same upstream rules for admission (a CustomPolicy built on them is accepted by each); both serve the same certificate (the one in the Secret)
and the caBundle holds its CA; a user's choice on a ManagedPolicy is published; a new release is
pushed and the leader is SIGKILLed once the sync of that release has started (its validation mark is
on the RuleSource); the other replica takes the Lease within the lease duration plus bounded slack;
the new release is adopted and the rules ConfigMap written exactly once for it (a watch counts every
write); the user's choice survives in the ManagedPolicy and in the published layer; every admission
request sent meanwhile (a locked edit, dry run) is denied by the webhook, i.e. answered by a live
replica. A leader whose Lease is taken over (an admin writes another holder) exits with status 1
(a restart makes it a follower with no state carried over) and does not write the Lease back. The takeover and republish times are printed, and appended as JSON to
``$PADLOCK_FAILOVER_RESULTS`` when set (bench/operator/failover_bench.py); nothing here asserts on speed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from padlock.adapters.kube.client import KubeClient, load_connection
from padlock.controllers.local_webhook import LocalWebhook
from padlock.controllers.process import OperatorProcess, free_port
from padlock.controllers.rulesource import ATTEMPT_ANNOTATION
from padlock.devenv import rbac
from support_operator import (
    CHART,
    CONFIGMAP,
    FALCO_NS,
    GPG_RULE,
    OPERATOR_FLAGS,
    ConfigMapWatch,
    User,
    disabled,
    parse_layer,
    push_release,
    remove_story,
    rule_source,
    wait_for,
)

NAMESPACE = "padlock-system"
LEASE = "padlock-operator"
SECRET = "padlock-webhook-tls"
SOURCE = "failover"
POLICY = "credential-access"
DISABLED_RULE = "Read cloud credentials file"
LEASE_DURATION, RENEW_DEADLINE, RETRY = 10.0, 7.0, 1.0
SLACK = 30.0
"""Bound on the takeover beyond the lease duration: a loaded machine delays the survivor's retries."""
WEBHOOK_DENIED = 'admission webhook "lock-managedpolicy.padlock.dev" denied'


class Proxy:
    """TCP pass-through on 127.0.0.1 to whichever backend accepts the connection (round robin)."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.turn = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self.turn += 1
        for i in range(len(self.backends)):
            port = self.backends[(self.turn + i) % len(self.backends)]
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                continue  # that replica is gone: the next one (as a Service drops a dead endpoint)
            upstream.settimeout(None)
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
            self._pipe(client, upstream)
            return
        client.close()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self.closed = True
        self.sock.close()


def _written(obj: dict[str, Any]) -> tuple[str, str]:
    """(resourceVersion, source-versions annotation) of one version of the published ConfigMap."""
    md = obj.get("metadata") or {}
    return md["resourceVersion"], (md.get("annotations") or {}).get("padlock.dev/source-versions", "")


class Prober:
    """A locked edit (dry run) every half second; records whether the webhook denied each."""

    def __init__(self, kubectl: Any) -> None:
        self.kubectl = kubectl
        self.answers: list[tuple[float, bool, str]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        patch = json.dumps({"metadata": {"labels": {"padlock.dev/probe": "x"}}})
        while not self.stopping.is_set():
            done = self.kubectl("patch", "managedpolicy", POLICY, "--type=merge", "-p", patch, "--dry-run=server",
                                check=False)
            text = (done.stderr or done.stdout).strip()
            self.answers.append((time.monotonic(), WEBHOOK_DENIED in text, text[:300]))
            self.stopping.wait(0.5)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(60)


def _replica(control_plane: Any, workdir: Path, name: str, port: int) -> OperatorProcess:
    return OperatorProcess(
        control_plane.kubeconfig("operator"), workdir / f"{name}.log", falco_namespace=FALCO_NS, configmap=CONFIGMAP,
        extra=[*OPERATOR_FLAGS, "--webhook-addr", "127.0.0.1", "--webhook-port", str(port),
               "--webhook-cert-dir", str(workdir / f"tls-{name}"), "--webhook-configuration", "padlock.dev",
               "--webhook-namespace", NAMESPACE, "--webhook-cert-secret", SECRET,
               "--leader-election", "--leader-election-namespace", NAMESPACE, "--leader-identity", name,
               "--lease-duration", str(LEASE_DURATION), "--renew-deadline", str(RENEW_DEADLINE),
               "--retry-period", str(RETRY)])


@pytest.fixture
def ha_rbac(control_plane: Any, kubectl: Any, helm: Any, crds_installed: list[str],
            operator_rbac: Any) -> Iterator[None]:
    """The chart's RBAC and empty certificate Secret with leaderElection.enabled; default RBAC again after."""
    kubectl("create", "namespace", NAMESPACE, check=False)
    manifest = helm("template", "padlock", str(CHART), "--namespace", NAMESPACE, "--set", "leaderElection.enabled=true",
                    "--show-only", "templates/rbac.yaml", "--show-only", "templates/webhook-tls-secret.yaml").stdout
    assert any(d and d.get("kind") == "Secret" for d in yaml.safe_load_all(manifest)), "the chart renders the Secret"
    kubectl("apply", "-f", "-", input=manifest)
    try:
        yield
    finally:
        kubectl("delete", "lease", LEASE, "-n", NAMESPACE, "--ignore-not-found", check=False)
        kubectl("delete", "secret", SECRET, "-n", NAMESPACE, "--ignore-not-found", check=False)
        rbac.install_operator_rbac(control_plane)


def _review(port: int, ca_file: Path, obj: dict[str, Any]) -> dict[str, Any]:
    """POST an AdmissionReview (create ``obj``) to one replica's CustomPolicy webhook; its response."""
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": secrets.token_hex(8), "kind": {"group": "padlock.dev", "version": "v1alpha1", "kind": "CustomPolicy"},
        "resource": {"group": "padlock.dev", "version": "v1alpha1", "resource": "custompolicies"},
        "name": obj["metadata"]["name"], "operation": "CREATE", "object": obj, "oldObject": None,
        "userInfo": {"username": "admin", "groups": ["system:masters"]}, "dryRun": True, "options": None}}
    request = urllib.request.Request(f"https://127.0.0.1:{port}/validate-custompolicy", method="POST",
                                     data=json.dumps(review).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30, context=ssl.create_default_context(cafile=str(ca_file))) as r:
        answer: dict[str, Any] = json.loads(r.read())["response"]
    return answer


def _custom_policy(name: str, rule: str) -> dict[str, Any]:
    """A CustomPolicy that loads only on top of the source's rules (an upstream rule and list by name)."""
    return {"apiVersion": "padlock.dev/v1alpha1", "kind": "CustomPolicy", "metadata": {"name": name},
            "spec": {"description": "shells", "rules": [rule], "falcoRules": (
                "- rule: Example shell again\n  desc: a shell\n  condition: evt.type = execve and proc.name in "
                "(example_shell_binaries)\n  output: shell %proc.name\n  priority: INFO\n")}}


def _holder(admin: KubeClient) -> str:
    lease = admin.get_or_none(f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{LEASE}") or {}
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


@pytest.mark.timeout(600)
def test_the_survivor_takes_over_a_killed_leader_mid_sync_publishes_once_and_admission_keeps_answering(
        control_plane: Any, kubectl: Any, helm: Any, registry: str, ha_rbac: None, tmp_path: Path) -> None:
    admin = KubeClient(load_connection(str(control_plane.kubeconfig("admin"))))
    user = User(kubectl, control_plane.kubeconfig("admin"))
    repository = f"rules/{SOURCE}-{secrets.token_hex(3)}"
    push_release(registry, repository, "v1", "1.0.0")
    user.apply(rule_source(SOURCE, registry, repository, interval="2s"))
    ports = {"replica-a": free_port(), "replica-b": free_port()}
    proxy = Proxy(list(ports.values()))
    hook = LocalWebhook(kubectl, helm, CHART, port=proxy.port, cert_dir=tmp_path / "tls-replica-a")
    hook.install()
    replicas = {name: _replica(control_plane, tmp_path, name, port).start() for name, port in ports.items()}
    watch: ConfigMapWatch | None = None
    prober: Prober | None = None
    try:
        for op in replicas.values():
            op.wait_ready(180)
        leader = wait_for("one replica holding the Lease", lambda: _holder(admin) in replicas and _holder(admin))
        survivor = next(name for name in replicas if name != leader)
        wait_for("v1 published", lambda: "failover=1.0.0" in ((user.configmap() or {}).get("metadata", {})
                                                             .get("annotations", {}).get("padlock.dev/source-versions", "")),
                 timeout=180)
        wait_for(f"ManagedPolicy {POLICY}", lambda: user.get("managedpolicy", POLICY), timeout=120)
        # One certificate for both replicas, and its CA in the caBundle (the leader's only patch).
        cas = {(tmp_path / f"tls-{name}" / "ca.crt").read_bytes() for name in replicas}
        assert len(cas) == 1, "both replicas serve the certificate from the shared Secret"
        wait_for("the shared CA in the caBundle", hook.ca_published)
        hook.wait_answering(POLICY)

        # Both replicas judge with the same upstream rules: a CustomPolicy naming an upstream rule and
        # list is accepted by each (asked directly, over TLS checked against the shared CA), and one
        # naming a rule no source has is refused by each.
        ca_file = tmp_path / f"tls-{leader}" / "ca.crt"
        def judged_alike(port: int) -> bool:
            good = _review(port, ca_file, _custom_policy("shells", "Terminal shell in container"))
            bad = _review(port, ca_file, _custom_policy("shells", "No such rule anywhere"))
            return (good.get("allowed") is True and not good.get("warnings") and bad.get("allowed") is False
                    and "No such rule anywhere" in json.dumps(bad))

        for name, port in ports.items():  # a follower reads the adopted version back within seconds
            wait_for(f"{name} judging CustomPolicies with the adopted rules", lambda port=port: judged_alike(port),
                     timeout=60)

        user.apply({"apiVersion": "padlock.dev/v1alpha1", "kind": "ManagedPolicy", "metadata": {"name": POLICY},
                    "spec": {"disabledRules": [DISABLED_RULE]}}, "--server-side", "--field-manager", "gitops")
        wait_for("the user's choice published", lambda: disabled(user.layer(), DISABLED_RULE))

        watch = ConfigMapWatch(kubectl, str(control_plane.kubeconfig("admin")), _written)
        prober = Prober(kubectl)
        wait_for("the watch listing the current version", lambda: watch.seen, timeout=30)
        listed = len(watch.seen)
        pushed = push_release(registry, repository, "v2", "1.1.0")
        mark = wait_for("the leader validating 1.1.0 (its mark on the RuleSource)", lambda: (
            v := ((admin.get(f"/apis/padlock.dev/v1alpha1/rulesources/{SOURCE}").get("metadata") or {})
                  .get("annotations") or {}).get(ATTEMPT_ANNOTATION)) and v.startswith(pushed.digest) and v, timeout=120)
        # The follower has not synced, rendered or published anything: only the leader does.
        follower_metrics = replicas[survivor].metrics()
        assert "padlock_leader 0.0" in follower_metrics
        assert "padlock_source_syncs_total{" not in follower_metrics
        assert "padlock_renders_total{" not in follower_metrics
        leader_proc = replicas[leader].proc
        assert leader_proc is not None
        published_before_kill = any("failover=1.1.0" in versions for _, versions in watch.seen)
        leader_proc.kill()
        killed_at = time.monotonic()
        leader_proc.wait(10)

        wait_for(f"{survivor} holding the Lease", lambda: _holder(admin) == survivor, timeout=LEASE_DURATION + SLACK)
        takeover = time.monotonic() - killed_at
        wait_for("1.1.0 adopted by the survivor", lambda: user.status("rulesource", SOURCE).get("currentVersion")
                 == "1.1.0", timeout=180)
        cm = wait_for("1.1.0 published", lambda: (c := user.configmap()) and "failover=1.1.0" in
                      c["metadata"]["annotations"]["padlock.dev/source-versions"] and c, timeout=60)
        republish = time.monotonic() - killed_at
        time.sleep(3 * RETRY + 2)  # a second write, if any, would come now: the watch must see it
        prober.stop()
        watch.stop()
        print(f"failover: mark {mark!r} seen; leader {leader} killed "
              f"({'after' if published_before_kill else 'before'} it published); {survivor} took over in "
              f"{takeover:.2f}s (lease {LEASE_DURATION:.0f}s), 1.1.0 published {republish:.2f}s after the kill")
        if results := os.environ.get("PADLOCK_FAILOVER_RESULTS"):
            with open(results, "a") as out:
                out.write(json.dumps({"takeover_s": round(takeover, 3), "republish_s": round(republish, 3),
                                      "lease_s": LEASE_DURATION}) + "\n")

        writes = watch.seen[listed:]
        assert [v for _, v in writes if "failover=1.1.0" in v] and len(writes) == 1, (
            f"the rules ConfigMap is written exactly once for 1.1.0, got {writes}")
        assert disabled(parse_layer(cm), DISABLED_RULE), "the user's choice is still published"
        policy = user.get("managedpolicy", POLICY) or {}
        assert policy["spec"]["disabledRules"] == [DISABLED_RULE]
        assert GPG_RULE in {r["name"] for r in policy["spec"]["rules"]}
        assert len(prober.answers) >= 5
        refused = [(round(t - killed_at, 1), text) for t, denied, text in prober.answers if not denied]
        assert not refused, f"admission requests not answered by a live replica's webhook: {refused}"
        assert "padlock_leader 1.0" in replicas[survivor].metrics()
    finally:
        if prober is not None:
            prober.stop()
        if watch is not None:
            with contextlib.suppress(Exception):
                watch.stop()
        hook.remove()
        for name, op in replicas.items():
            op.stop()
            print(f"--- {name}\n{op.tail(40)}")
        proxy.close()
        remove_story(kubectl, SOURCE)


@pytest.mark.timeout(300)
def test_a_leader_whose_lease_is_taken_stops_and_exits_without_writing_again(
        control_plane: Any, kubectl: Any, registry: str, ha_rbac: None, tmp_path: Path) -> None:
    admin = KubeClient(load_connection(str(control_plane.kubeconfig("admin"))))
    user = User(kubectl, control_plane.kubeconfig("admin"))
    repository = f"rules/{SOURCE}-{secrets.token_hex(3)}"
    push_release(registry, repository, "v1", "1.0.0")
    user.apply(rule_source(SOURCE, registry, repository, interval="2s"))
    op = _replica(control_plane, tmp_path, "replica-a", free_port()).start()
    try:
        op.wait_ready(180)
        wait_for("replica-a holding the Lease", lambda: _holder(admin) == "replica-a")
        wait_for("v1 published", lambda: user.configmap(), timeout=180)
        path = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{LEASE}"
        lease = admin.get(path)
        lease["spec"]["holderIdentity"] = "intruder"
        lease["spec"]["leaseDurationSeconds"] = 3600  # nobody may take it back
        admin.replace(path, lease)
        assert op.proc is not None
        code = op.proc.wait(timeout=RETRY * 3 + 30)
        assert code == 1, f"the deposed leader exits with status 1, got {code}"
        assert "lost Lease padlock-system/padlock-operator (holder now intruder)" in op.tail(200)
        assert _holder(admin) == "intruder", "the deposed leader did not write the Lease back"
    finally:
        op.stop()
        print(op.tail(40))
        remove_story(kubectl, SOURCE)
