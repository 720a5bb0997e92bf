"""Admission webhook latency at a fixed request rate, over TLS on loopback; prints p50/p90/p99.

Starts a real control plane (padlock.devenv) and the webhook process (tests/support_webhook.py, the
same kopf server ``padlock operator`` runs), then sends AdmissionReview POSTs straight to the
webhook at ``--rate`` requests per second for ``--seconds`` (open loop: a request is sent on
schedule whether or not earlier ones finished, so a slow server shows up as latency, not as a lower
rate). The mix alternates a denied locked-field edit, an allowed user-choice edit and an exception
validation. Target: p99 < 20 ms at 100 requests/s.

    python bench/webhook/latency.py [--rate 100] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import ssl
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from padlock.devenv import binaries, tools  # noqa: E402
from padlock.devenv.controlplane import ControlPlane  # noqa: E402
from support_webhook import (  # noqa: E402
    OPERATOR_IDENTITY,
    WebhookProcess,
    grant_lock_test_rbac,
    managed_policy,
    wait_until,
)


def review(
    resource: str, kind: str, operation: str, old: Any, new: Any, user: str, namespace: str = ""
) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "padlock.dev", "version": "v1alpha1", "kind": kind},
            "resource": {"group": "padlock.dev", "version": "v1alpha1", "resource": resource},
            "requestKind": {"group": "padlock.dev", "version": "v1alpha1", "kind": kind},
            "requestResource": {"group": "padlock.dev", "version": "v1alpha1", "resource": resource},
            "name": (new or old)["metadata"]["name"],
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": user, "groups": ["system:authenticated"]},
            "object": new,
            "oldObject": old,
            "dryRun": False,
            "options": {},
        },
    }


SHAPES = ("locked edit (denied)", "user choice (allowed)", "exception validation (allowed)")


def workload() -> list[tuple[str, bytes, bool]]:
    """(path, body, expected allowed) for the three request shapes (SHAPES), cycled by the generator."""
    old = managed_policy("bench-policy")
    locked = copy.deepcopy(old)
    locked["spec"]["rules"][0]["condition"] = "always_true"
    choice = copy.deepcopy(old)
    choice["spec"]["disabledRules"] = ["Read sensitive file untrusted"]
    exception = {
        "apiVersion": "padlock.dev/v1alpha1",
        "kind": "PolicyException",
        "metadata": {"name": "bench-exc", "namespace": "default"},
        "spec": {
            "policies": [{"kind": "ManagedPolicy", "name": "bench-policy"}],
            "reason": "bench",
            "match": {"fields": ["proc.name"], "comps": ["="], "values": [["tar"]]},
        },
    }
    return [
        (
            "/lock-managedpolicy",
            json.dumps(review("managedpolicies", "ManagedPolicy", "UPDATE", old, locked, "admin")).encode(),
            False,
        ),
        (
            "/lock-managedpolicy",
            json.dumps(review("managedpolicies", "ManagedPolicy", "UPDATE", old, choice, "tenant")).encode(),
            True,
        ),
        (
            "/validate-policyexception",
            json.dumps(
                review("policyexceptions", "PolicyException", "CREATE", None, exception, "tenant", "default")
            ).encode(),
            True,
        ),
    ]


async def generate(
    url: str, cafile: Path, rate: float, seconds: float
) -> tuple[list[tuple[int, float]], int, int]:
    context = ssl.create_default_context(cafile=str(cafile))
    shapes = workload()
    latencies: list[tuple[int, float]] = []
    wrong = 0
    errors = 0
    connector = aiohttp.TCPConnector(ssl=context, limit=64)
    async with aiohttp.ClientSession(
        connector=connector, headers={"Content-Type": "application/json"}
    ) as session:

        async def one(i: int) -> None:
            nonlocal wrong, errors
            path, body, expected = shapes[i % len(shapes)]
            start = time.perf_counter()
            try:
                async with session.post(url + path, data=body) as resp:
                    payload = await resp.json()
            except (TimeoutError, aiohttp.ClientError):
                errors += 1
                return
            latencies.append((i % len(shapes), (time.perf_counter() - start) * 1000))
            if payload["response"]["allowed"] is not expected:
                wrong += 1

        # Warm up connections and kopf's caches outside the measurement.
        await asyncio.gather(*(one(i) for i in range(30)))
        latencies.clear()
        total = int(rate * seconds)
        t0 = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return latencies, wrong, errors


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of the measured run")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="padlock-bench-webhook-"))
    with ControlPlane(binaries=binaries.find(), workdir=workdir / "cp") as cp:
        kubectl = tools.Runner(tools.find("kubectl"), cp.kubeconfig, workdir / "home")
        kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
        kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/managedpolicies.padlock.dev",
            "crd/policyexceptions.padlock.dev",
        )
        grant_lock_test_rbac(kubectl, "bench")
        webhook = WebhookProcess(cp, workdir / "webhook").start()
        try:
            wait_until(webhook.registered, timeout=90, what="the webhook to register")
            # The policy the exception names, created as the operator so the webhook's state knows it.
            kubectl(
                "create",
                "-f",
                "-",
                input=json.dumps(managed_policy("bench-policy")),
                identity=OPERATOR_IDENTITY,
            )
            time.sleep(2)
            url = f"https://127.0.0.1:{webhook.port}"
            samples, wrong, errors = asyncio.run(
                generate(url, webhook.cert_dir / "ca.crt", args.rate, args.seconds)
            )
        finally:
            webhook.stop()
    latencies = [ms for _, ms in samples]
    p99 = percentile(latencies, 99)
    print(f"admission webhook latency, {args.rate:.0f} req/s for {args.seconds:.0f}s over TLS on 127.0.0.1")
    print(f"  requests: {len(latencies)}  wrong decisions: {wrong}  transport errors: {errors}")
    print(
        f"  p50 {percentile(latencies, 50):.2f} ms  p90 {percentile(latencies, 90):.2f} ms  "
        f"p99 {p99:.2f} ms  max {max(latencies):.2f} ms  mean {statistics.fmean(latencies):.2f} ms"
    )
    for index, shape in enumerate(SHAPES):
        mine = [ms for i, ms in samples if i == index]
        print(f"  {shape:32s} p50 {percentile(mine, 50):.2f} ms  p99 {percentile(mine, 99):.2f} ms")
    print(f"  target p99 < 20 ms: {'met' if p99 < 20 else 'NOT met'}")


if __name__ == "__main__":
    main()
