"""The tuner's alert intake under load: alerts/s, request latency, and memory with 1M distinct keys.

Starts the intake in its own process (``--serve``: the same ``padlock.controllers.intake.Intake``,
aiohttp server, TLS and tuner the operator runs, without the Kubernetes side, which the handler never
waits on), then, over keep-alive HTTPS on loopback with a bearer token:

1. ``single``: ``--clients`` processes each send one Falco alert per request (as Falco's
   ``http_output`` does), closed loop, for ``--seconds``: alerts/s and p50/p90/p99/max latency.
2. ``batch``: the same with newline-delimited batches of ``--batch`` alerts (falcosidekick-style
   bulk or a log shipper): alerts/s and request latency.
3. ``keys``: 1,000,000 alerts, each from a different image (a distinct workload key), in batches of
   1,000; then the server's RSS (VmRSS from /proc) and the number of workloads it tracks.

Targets (issue 12): >= 5,000 alerts/s; p99 < 20 ms; RSS bounded, < 250 MB with 1M distinct keys.

    python bench/tuner/intake_bench.py [--seconds 10] [--clients 2] [--batch 100]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing as mp
import os
import secrets
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TOKEN = os.environ.get("PADLOCK_BENCH_TOKEN") or secrets.token_hex(24)


def alert(image: str = "docker.io/library/nginx", n: int = 0) -> dict[str, Any]:
    return {
        "output": f"12:00:00.{n:09d}: Notice A shell was spawned in a container with an attached terminal "
                  f"(user=root process=bash parent=runc container_name=web image={image})",
        "priority": "Notice", "rule": "Terminal shell in container", "time": "2026-01-01T12:00:00.000000000Z",
        "source": "syscall", "hostname": "node-1", "tags": ["container", "mitre_execution", "shell"],
        "output_fields": {"container.id": "8a4f2bb6c9d1", "container.image.repository": image,
                          "container.name": "web", "k8s.ns.name": "shop", "k8s.pod.name": "web-0",
                          "proc.name": "bash", "proc.pname": "runc", "proc.cmdline": "bash -i", "proc.tty": 34816,
                          "user.name": "root", "evt.time": 1767268800000000000 + n},
    }


# -- server ---------------------------------------------------------------------------------------------
def serve(port: int, cert_dir: str, token: str, max_keys: int) -> None:
    from padlock.controllers.intake import Intake, IntakeOptions
    from padlock.policy.tuning.suggest import Tuner, TunerConfig

    options = IntakeOptions(port=port, token=token, rate=1e9, burst=1e9)
    tuner = Tuner(TunerConfig(min_hits=20, max_keys=max_keys), policies_for=lambda _r: (("ManagedPolicy", "p"),))
    intake = Intake(options, tuner)

    async def main() -> None:
        from aiohttp import web

        runner = await intake.start(Path(cert_dir))
        app = web.Application()
        app.router.add_get("/tracked", lambda _r: web.json_response({"tracked": tuner.tracked,
                                                                      "received": intake.received}))
        stats = web.AppRunner(app)
        await stats.setup()
        await web.TCPSite(stats, "127.0.0.1", port + 1).start()
        print("ready", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())


# -- clients --------------------------------------------------------------------------------------------
def _connection(port: int, ca: str) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(cafile=ca), timeout=30)


def _post(conn: http.client.HTTPSConnection, data: bytes) -> None:
    conn.request("POST", "/", body=data, headers={"Authorization": f"Bearer {TOKEN}",
                                                  "Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    if resp.status != 200:
        raise RuntimeError(f"intake answered {resp.status}")


def _client(port: int, ca: str, data: bytes, seconds: float, out: Any) -> None:
    conn = _connection(port, ca)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while (start := time.perf_counter()) < deadline:
        _post(conn, data)
        latencies.append(time.perf_counter() - start)
    conn.close()
    out.put(latencies)


def load(port: int, ca: str, data: bytes, per_request: int, clients: int, seconds: float) -> dict[str, Any]:
    queue: Any = mp.Queue()
    procs = [mp.Process(target=_client, args=(port, ca, data, seconds, queue)) for _ in range(clients)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    latencies: list[float] = []
    for _ in procs:
        latencies.extend(queue.get())
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    q = statistics.quantiles(ms, n=100)
    return {"requests": len(ms), "alerts_per_s": round(len(ms) * per_request / elapsed), "p50_ms": round(q[49], 2),
            "p90_ms": round(q[89], 2), "p99_ms": round(q[98], 2), "max_ms": round(ms[-1], 2)}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--max-keys", type=int, default=100_000, help="the tuner's LRU bound (chart default)")
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "CERT_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1], TOKEN, args.max_keys)
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    certs = tempfile.mkdtemp(prefix="padlock-tuner-bench-")
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), certs, "--max-keys", str(args.max_keys)],
                              stdout=subprocess.PIPE, env={**os.environ, "PADLOCK_BENCH_TOKEN": TOKEN})
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != b"ready":
            raise SystemExit("intake did not start")
        ca = str(Path(certs) / "ca.crt")
        idle = rss_mb(server.pid)
        single = load(port, ca, json.dumps(alert()).encode(), 1, args.clients, args.seconds)
        print(f"single alert per request, {args.clients} keep-alive clients: {single['alerts_per_s']} alerts/s; "
              f"p50 {single['p50_ms']} ms  p90 {single['p90_ms']} ms  p99 {single['p99_ms']} ms  max {single['max_ms']} ms")
        batch_body = "\n".join(json.dumps(alert(n=i)) for i in range(args.batch)).encode()
        batch = load(port, ca, batch_body, args.batch, args.clients, args.seconds)
        print(f"batches of {args.batch}, {args.clients} keep-alive clients: {batch['alerts_per_s']} alerts/s; "
              f"request p50 {batch['p50_ms']} ms  p99 {batch['p99_ms']} ms  max {batch['max_ms']} ms")
        conn = _connection(port, ca)
        started = time.perf_counter()
        per = 1000
        # One serialised alert with a placeholder, so the client's own JSON work does not dominate.
        template = json.dumps(alert(image="registry.example/team/app-@N@"))
        for start in range(0, args.keys, per):
            _post(conn, "\n".join(template.replace("@N@", str(i))
                                  for i in range(start, min(start + per, args.keys))).encode())
        offered_s = time.perf_counter() - started
        conn.close()
        rss = rss_mb(server.pid)
        status = http.client.HTTPConnection("127.0.0.1", port + 1, timeout=10)
        status.request("GET", "/tracked")
        tracked = json.loads(status.getresponse().read())
        print(f"{args.keys} distinct keys offered in {offered_s:.1f} s: RSS {rss:.1f} MB (idle {idle:.1f} MB), "
              f"tracked {tracked['tracked']} (bound {args.max_keys})")
        print(json.dumps({"single": single, "batch": batch, "keys": {"offered": args.keys, "seconds": round(offered_s, 1),
                          "rss_mb": round(rss, 1), "idle_rss_mb": round(idle, 1), **tracked}}))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
