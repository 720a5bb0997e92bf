"""Benchmark: loading stable + incubating + sandbox with padlock vs a bare libyaml parse of the same files.

Run: ``python bench/core/load_bench.py [--repeat N]``. Prints both figures and their ratio; the target is
a ratio of at most 4 (``padlock.engine.loader.load`` against ``yaml.load(..., Loader=CSafeLoader)``).
Measured side by side in one process, best of N runs each. Upstream files come from the vendored
``tests/data/upstream-rules``. Prints figures only; tests never assert timings.
"""

from __future__ import annotations

import argparse
import platform
import timeit
from collections.abc import Callable

import yaml

from padlock.devenv.paths import upstream_rules_dir
from padlock.engine import loader
from padlock.engine.model import RulesFile

SETS = {
    "5.x/6.x": (
        "falco-rules-5.1.0/falco_rules.yaml",
        "falco-incubating-rules-6.0.1/falco-incubating_rules.yaml",
        "falco-sandbox-rules-6.1.0/falco-sandbox_rules.yaml",
    ),
    "3.x/4.x": (
        "falco-rules-3.2.0/falco_rules.yaml",
        "falco-incubating-rules-4.0.1/falco-incubating_rules.yaml",
        "falco-sandbox-rules-4.1.0/falco-sandbox_rules.yaml",
    ),
}


def best(fn: Callable[[], object], repeat: int) -> float:
    """Fastest of ``repeat`` single runs (stdlib timeit: the least disturbed run is the figure)."""
    # gc stays on, as in real use (timeit switches it off unless setup re-enables it).
    return min(timeit.repeat(fn, setup="gc.enable()", number=1, repeat=repeat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    root = upstream_rules_dir()
    print(f"python {platform.python_version()} on {platform.machine()}, best of {args.repeat}")
    for label, paths in SETS.items():
        files = [RulesFile(p.split("/")[-1], (root / p).read_text()) for p in paths]

        def bare(files: list[RulesFile] = files) -> None:
            for f in files:
                yaml.load(f.text, Loader=yaml.CSafeLoader)

        def padlock(files: list[RulesFile] = files) -> None:
            res = loader.load(files, plugins={"container": "0.4.0"})
            assert res.valid, [d.one_line() for d in res.errors]

        padlock()  # warm the field catalog, as a running operator would have it
        b = best(bare, args.repeat)
        p = best(padlock, args.repeat)
        print(f"{label}: yaml.load(CSafeLoader) {b * 1000:.1f} ms   padlock load {p * 1000:.1f} ms   ratio {p / b:.2f} (target <= 4)")


if __name__ == "__main__":
    main()
