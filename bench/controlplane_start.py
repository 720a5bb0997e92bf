"""Benchmark: warm start of the local control plane (etcd + kube-apiserver to ready, with the
``padlock-system`` and ``falco`` namespaces created), then stop.

Run: ``python bench/controlplane_start.py [--runs N]`` (default 3). Binaries must already be built
(``bash .ci/install``); the build is not timed. Prints one JSON line (commit, Python, CPU, versions,
each run's start and stop seconds) and one human line. The target is a warm start under 30 s; this
script only reports, tests never assert timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

from padlock.devenv import binaries
from padlock.devenv.controlplane import ControlPlane

REPO = Path(__file__).resolve().parents[1]


def _commit() -> str:
    result = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return result.stdout.strip() or "unknown"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} x{os.cpu_count()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    found = binaries.find(build=False)
    starts: list[float] = []
    stops: list[float] = []
    for _ in range(args.runs):
        began = time.perf_counter()
        cp = ControlPlane(binaries=found).start()
        starts.append(time.perf_counter() - began)
        began = time.perf_counter()
        cp.stop()
        stops.append(time.perf_counter() - began)

    result = {
        "bench": "controlplane_start",
        "commit": _commit(),
        "python": platform.python_version(),
        "cpu": _cpu(),
        "versions": found.versions(),
        "runs": args.runs,
        "start_s": [round(s, 3) for s in starts],
        "stop_s": [round(s, 3) for s in stops],
        "start_median_s": round(statistics.median(starts), 3),
        "start_max_s": round(max(starts), 3),
        "target_s": 30,
    }
    print(json.dumps(result, sort_keys=True))
    print(
        f"control plane warm start: median {result['start_median_s']:.2f}s, max {result['start_max_s']:.2f}s "
        f"over {args.runs} runs (target < 30s); stop median {statistics.median(stops):.2f}s"
    )


if __name__ == "__main__":
    main()
