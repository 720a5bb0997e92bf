"""20,000 PolicyExceptions over the full upstream sets: what fits the 4 ConfigMaps the Falco mount
declares, what is left out, and what the limits cost.

Renders ``render_bench.build_inputs(n_exceptions=20000)`` (1,000 CustomPolicies, exceptions spread
over 1,000 namespaces) twice: with no ConfigMap limit (what the render produced before the limit
existed) and with the default limits (docs/limits.md). Prints the ConfigMap counts, how many
objects were left out and why, and both render times. Nothing here is asserted: figures go in
bench/README.md.
"""

from __future__ import annotations

import collections
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import render_bench  # a sibling script

from padlock.policy import effective


def main() -> None:
    inputs = render_bench.build_inputs(n_exceptions=20_000)
    t0 = time.perf_counter()
    unlimited = effective.render(replace(inputs, max_shards=1000), render_bench.NOW)
    unlimited_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    limited = effective.render(inputs, render_bench.NOW)
    limited_s = time.perf_counter() - t0
    result = {
        "exceptions": len(inputs.exceptions),
        "configmaps_without_limit": len(unlimited.configmaps),
        "configmaps_with_limit": len(limited.configmaps),
        "max_shards": inputs.max_shards,
        "left_out": dict(collections.Counter(limited.reasons.values())),
        "publishable": limited.publishable,
        "render_without_limit_s": round(unlimited_s, 3),
        "render_with_limit_s": round(limited_s, 3),
    }
    if "--json" in sys.argv:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['exceptions']} exceptions: {result['configmaps_without_limit']} ConfigMaps without a limit "
          f"({unlimited_s:.3f} s); {result['configmaps_with_limit']} with the default limit of {inputs.max_shards} "
          f"({limited_s:.3f} s), left out: {result['left_out']}, publishable: {limited.publishable}")


if __name__ == "__main__":
    main()
