"""The tuning step of ``padlock demo``: Falco alerts in, a suggestion out, accepted into the ruleset.

``flags(workdir)`` are the ``padlock operator`` flags that switch the tuner on for the demo (a bearer
token file, a certificate directory, a low threshold); ``step(...)`` posts alerts of "Terminal shell in
container" from image nginx in namespace shop exactly as Falco's ``http_output`` does (one JSON alert
per HTTPS request, bearer token, the intake's CA trusted), waits for the TuningSuggestion, runs
``padlock tune`` and ``padlock tune accept`` and shows the exception in the published ruleset.
"""

from __future__ import annotations

import http.client
import json
import secrets
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from padlock.engine import readorder

RULE = "Terminal shell in container"
IMAGE = "docker.io/library/nginx"
# The published key of the generated policy layer, from the one place that names it.
LAYER = readorder.LAYER_KEY


def flags(workdir: Path, port: int) -> list[str]:
    token = workdir / "tuner-token"
    token.write_text(secrets.token_urlsafe(24))
    return ["--tuner-port", str(port), "--tuner-token-file", str(token), "--tuner-cert-dir",
            str(workdir / "tuner-tls"), "--tuner-min-hits", "5", "--tuner-interval", "0.5"]


def falco_alert(namespace: str, n: int) -> dict[str, Any]:
    """An alert in the shape Falco's http_output posts with json_output: true."""
    return {
        "output": f"12:00:{n:02d}.000000000: Notice A shell was spawned in a container with an attached terminal "
                  f"(user=root process=bash parent=runc container_name=web k8s_ns={namespace} image={IMAGE})",
        "priority": "Notice", "rule": RULE, "time": f"2026-01-01T12:00:{n:02d}.000000000Z", "source": "syscall",
        "tags": ["container", "maturity_stable", "mitre_execution", "shell"], "hostname": "demo-node",
        "output_fields": {"container.image.repository": IMAGE, "container.name": "web", "k8s.ns.name": namespace,
                          "k8s.pod.name": "web-0", "proc.name": "bash", "proc.pname": "runc", "proc.tty": 34816,
                          "user.name": "root", "evt.time": 1767268800000000000 + n},
    }


def step(workdir: Path, port: int, kubectl: Any, padlock: Callable[..., str], kubeconfig: str,
         show: Callable[[str, str], None], wait: Callable[..., Any], namespace: str = "shop") -> None:
    token = (workdir / "tuner-token").read_text().strip()
    context = ssl.create_default_context(cafile=str(workdir / "tuner-tls" / "ca.crt"))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    try:
        for n in range(8):
            conn.request("POST", "/", body=json.dumps(falco_alert(namespace, n)),
                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"the tuner's intake answered {resp.status}")
    finally:
        conn.close()
    print(f"posted 8 alerts of {RULE!r} from image {IMAGE} in namespace {namespace} (as Falco's http_output)")

    def suggestion() -> Any:
        done = kubectl("get", "tuningsuggestions", "-n", namespace, "-o", "json", check=False)
        items = json.loads(done.stdout).get("items") if done.returncode == 0 else []
        return next((i for i in items or [] if IMAGE in i["spec"]["workload"]), None)

    found = wait("the tuning suggestion", suggestion)
    name = found["metadata"]["name"]
    show(f"kubectl get tuningsuggestions -n {namespace}", kubectl("get", "tuningsuggestions", "-n", namespace).stdout)
    show("padlock tune", padlock("tune", "--kubeconfig", kubeconfig))
    show(f"padlock tune accept {name} --expires 30d",
         padlock("tune", "accept", name, "--expires", "30d", "--kubeconfig", kubeconfig))

    def in_layer() -> Any:
        done = kubectl("get", "configmap", "padlock-rules", "-n", "falco", "-o", "json", check=False)
        if done.returncode != 0:
            return None
        items = yaml.safe_load(json.loads(done.stdout)["data"].get(LAYER) or "[]") or []
        return next((e for i in items if isinstance(i, dict) and i.get("rule") == RULE
                     for e in i.get("exceptions") or [] if e.get("name") == f"padlock_pe_{namespace}_{name}"), None)

    entry = wait("the accepted exception in the published ruleset", in_layer)
    show(f"# in the published ConfigMap falco/padlock-rules, rule {RULE!r} now carries:",
         yaml.safe_dump([entry], sort_keys=False))
    time.sleep(0.5)
    state = json.loads(kubectl("get", "tuningsuggestion", name, "-n", namespace, "-o", "json").stdout)["spec"]["state"]
    print(f"suggestion {name}: {state}")
