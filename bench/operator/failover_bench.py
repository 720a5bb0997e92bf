"""bench/operator/failover_bench.py: takeover time of the leader Lease after the leader is SIGKILLed mid-sync.

Runs tests/integration/test_failover.py ``--runs`` times in a row (each run: a fresh control plane,
two ``padlock operator`` replicas with a 10 s lease, 7 s renew deadline and 1 s retry period, the
leader killed once its sync of a new release has started). The test appends one JSON line per run
to ``$PADLOCK_FAILOVER_RESULTS``; this script prints them, then one human line with the figures:

- ``takeover_s``: from the SIGKILL to the Lease naming the survivor. Bounded below by the lease
  duration (the survivor must see the lease unchanged for that long) and above by it plus one retry
  period plus the time to write the Lease.
- ``republish_s``: from the SIGKILL to the new release's ConfigMap, published once by the survivor.

Nothing is asserted here. Run: ``python bench/operator/failover_bench.py [--runs 3]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[2]


@click.command()
@click.option("--runs", type=click.IntRange(1, 20), default=3, show_default=True)
def main(runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="padlock-failover-") as tmp:
        results = Path(tmp) / "results.jsonl"
        env = {**os.environ, "PADLOCK_FAILOVER_RESULTS": str(results),
               "PYTHONPATH": os.pathsep.join([str(REPO / "operator"), os.environ.get("PYTHONPATH", "")])}
        outcomes = []
        for i in range(runs):
            done = subprocess.run([sys.executable, "-m", "pytest", "tests/integration/test_failover.py", "-q", "-x",
                                   "-p", "no:cacheprovider"], cwd=REPO, env=env, capture_output=True, text=True,
                                  timeout=900, check=False)
            outcomes.append(done.returncode == 0)
            if done.returncode != 0:
                print(f"run {i + 1}: FAILED\n{done.stdout[-3000:]}", file=sys.stderr)
        figures = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    print(json.dumps({"runs": runs, "passed": sum(outcomes), "results": figures}))
    for i, f in enumerate(figures, 1):
        print(f"run {i}: takeover {f['takeover_s']:.2f} s (lease {f['lease_s']:.0f} s), "
              f"new release published {f['republish_s']:.2f} s after the kill")
    if figures:
        takeovers = [f["takeover_s"] for f in figures]
        print(f"takeover: min {min(takeovers):.2f} s, max {max(takeovers):.2f} s over {len(figures)} runs; "
              f"{sum(outcomes)}/{runs} runs passed")


if __name__ == "__main__":
    main()
