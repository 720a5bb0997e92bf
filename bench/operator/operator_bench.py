"""bench/operator: the operator on a real kube-apiserver + etcd and a real OCI registry.

Figures (printed as JSON, then one human line each; nothing is asserted):
- ``update_latency_s``: from a push completing (new digest visible in the registry) to the rules
  ConfigMap change being seen by a watch, over several pushes (p50, p90, max). RuleSource interval
  ``1s`` and timer tick 0.05 s, so the figure is dominated by where in the interval the push lands
  (expected ~0.5 s) plus check, pull, validation and publish. Target p50 < 1 s.
- ``rss_mb``: resident memory of ``padlock operator`` with 3 RuleSources carrying the full upstream
  stable 5.1.0, incubating 6.0.1 and sandbox 6.1.0 sets (from ``tests/data/upstream-rules``), once all are
  adopted and published. Target < 150 MB.

Run: ``python bench/operator/operator_bench.py [--pushes 8]`` (needs ``python -m padlock.devenv install``).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import click

from padlock.devenv.paths import upstream_rules_dir

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = upstream_rules_dir()
SETS = (
    ("stable", 10, "falco-rules-5.1.0/falco_rules.yaml", "5.1.0"),
    ("incubating", 20, "falco-incubating-rules-6.0.1/falco-incubating_rules.yaml", "6.0.1"),
    ("sandbox", 30, "falco-sandbox-rules-6.1.0/falco-sandbox_rules.yaml", "6.1.0"),
)
FLAGS = ["--plugin", "container=0.4.0", "--tick", "0.05", "--debounce", "0.05", "--drift-interval", "5"]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class ConfigMapWatch:
    """A watch on the rules ConfigMap; records (monotonic time, content hash) for every change."""

    def __init__(self, cp: Any, namespace: str, name: str) -> None:
        import kubernetes

        self.api = kubernetes.client.CoreV1Api(cp.api_client("admin"))
        self.namespace, self.name = namespace, name
        self.seen: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        self._stop = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        import kubernetes

        while not self._stop:
            w = kubernetes.watch.Watch()
            try:
                for event in w.stream(self.api.list_namespaced_config_map, self.namespace,
                                      field_selector=f"metadata.name={self.name}", timeout_seconds=30):
                    obj = event["object"]
                    digest = (obj.metadata.annotations or {}).get("padlock.dev/content-hash", "")
                    with self.cond:
                        if not self.seen or self.seen[-1][1] != digest:
                            self.seen.append((time.monotonic(), digest))
                        self.cond.notify_all()
            except Exception:
                time.sleep(0.2)

    def wait_change(self, after: float, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                newer = [t for t, _ in self.seen if t > after]
                if newer:
                    return newer[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("the ConfigMap did not change in time")
                self.cond.wait(left)


def _setup(work: Path) -> tuple[Any, Any, Any]:
    from padlock.devenv import rbac, tools
    from padlock.devenv import registry as oci_registry
    from padlock.devenv.controlplane import ControlPlane

    cp = ControlPlane(workdir=work / "cp").start()
    registry = oci_registry.Registry(workdir=work / "registry").start()
    kubectl = tools.Runner(tools.find("kubectl"), cp.kubeconfig, work)
    kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    rbac.install_operator_rbac(cp)
    return cp, registry, kubectl


def _source(name: str, registry: str, repository: str, order: int, interval: str, tag: str = "1") -> str:
    return json.dumps({"apiVersion": "padlock.dev/v1alpha1", "kind": "RuleSource", "metadata": {"name": name},
                       "spec": {"oci": {"repository": f"{registry}/{repository}", "tag": tag, "plainHTTP": True},
                                "interval": interval, "loadOrder": order}})


def bench_latency(work: Path, pushes: int) -> dict[str, Any]:
    from padlock.controllers.process import OperatorProcess
    from padlock.devenv import artifacts

    cp, registry, kubectl = _setup(work)
    base = (REPO / "examples" / "rules" / "v1" / "padlock_example_rules.yaml").read_text()
    op = None
    try:
        artifacts.push_rules_artifact(registry.address, "bench/latency", "1.0.0", {"rules.yaml": base})
        kubectl("apply", "-f", "-", input=_source("latency", registry.address, "bench/latency", 50, "1s"))
        op = OperatorProcess(cp.kubeconfig("operator"), work / "latency-operator.log", extra=FLAGS).start()
        op.wait_ready(120)
        watch = ConfigMapWatch(cp, "falco", "padlock-rules")
        watch.wait_change(0.0)
        samples = []
        for i in range(1, pushes + 1):
            time.sleep(0.37)  # spread the pushes over the interval's phase
            text = base + f"\n# bench release {i}\n"
            artifacts.push_rules_artifact(registry.address, "bench/latency", f"1.0.{i}", {"rules.yaml": text})
            pushed = time.monotonic()
            samples.append(watch.wait_change(pushed) - pushed)
        samples.sort()
        return {"pushes": pushes, "p50": statistics.median(samples),
                "p90": samples[max(0, round(0.9 * len(samples)) - 1)], "max": samples[-1],
                "samples": [round(s, 3) for s in samples], "interval": "1s", "tick_s": 0.05}
    finally:
        if op is not None:
            op.stop()
        registry.stop()
        cp.stop()


def bench_rss(work: Path) -> dict[str, Any]:
    from padlock.controllers.process import OperatorProcess
    from padlock.devenv import artifacts

    if not UPSTREAM.is_dir():
        raise click.ClickException(f"upstream rules corpus not found at {UPSTREAM} (vendored under tests/data)")
    cp, registry, kubectl = _setup(work)
    op = None
    try:
        for name, order, rel, version in SETS:
            path = UPSTREAM / rel
            artifacts.push_rules_artifact(registry.address, f"bench/{name}", version, {path.name: path.read_text()})
            kubectl("apply", "-f", "-", input=_source(name, registry.address, f"bench/{name}", order, "1m", version.split(".")[0]))
        op = OperatorProcess(cp.kubeconfig("operator"), work / "rss-operator.log", extra=FLAGS).start()
        started = time.monotonic()
        op.wait_ready(300)
        ready_s = time.monotonic() - started
        deadline = time.monotonic() + 120
        published = False
        while time.monotonic() < deadline and not published:
            done = kubectl("get", "configmap", "padlock-rules", "-n", "falco", "-o", "json", check=False)
            if done.returncode == 0:
                versions = json.loads(done.stdout)["metadata"]["annotations"].get("padlock.dev/source-versions", "")
                published = all(f"{n}={v}" in versions for n, _, _, v in SETS)
            time.sleep(0.5)
        if not published:
            raise click.ClickException(f"the three sources were not published:\n{op.tail()}")
        time.sleep(5)  # a few drift checks and renders after the publish
        assert op.proc is not None
        rss = _rss_mb(op.proc.pid)
        return {"sources": [f"{n}={v}" for n, _, _, v in SETS], "rss_mb": round(rss, 1),
                "time_to_ready_s": round(ready_s, 2)}
    finally:
        if op is not None:
            op.stop()
        registry.stop()
        cp.stop()


@click.command()
@click.option("--pushes", default=8, show_default=True)
def main(pushes: int) -> None:
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="padlock-bench-operator-") as tmp:
        latency = bench_latency(Path(tmp) / "latency", pushes)
        rss = bench_rss(Path(tmp) / "rss")
    result = {"bench": "operator", "commit": commit, "python": platform.python_version(),
              "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "update_latency_s": latency, "memory": rss}
    print(json.dumps(result, indent=2))
    print(f"update latency (push -> ConfigMap seen by a watch), {latency['pushes']} pushes, interval 1s: "
          f"p50 {latency['p50']:.3f}s, p90 {latency['p90']:.3f}s, max {latency['max']:.3f}s (target p50 < 1s)")
    print(f"operator RSS with {', '.join(rss['sources'])}: {rss['rss_mb']} MB (target < 150 MB); "
          f"ready after {rss['time_to_ready_s']}s")


if __name__ == "__main__":
    sys.exit(main())
