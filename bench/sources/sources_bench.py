"""Benchmark: the cost of following a rules artifact on a loopback registry.

Run: ``python bench/sources/sources_bench.py [--repeat N]``. Starts Debian's docker-registry on
127.0.0.1 (``padlock.devenv.registry``), pushes falco-rules 5.1.0 in the upstream layout (signed),
then times, best of N: the cheap check (``resolve``: tag list, HEADs, manifest, config), a full
``fetch`` without and with cosign verification, and unpacking the layer alone. Prints figures and
the number of HTTP requests of one ``resolve``; tests never assert timings.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from typing import Any

from padlock import sources
from padlock.api.rulesource import RuleSourceSpec
from padlock.devenv import artifacts
from padlock.devenv.paths import upstream_rules_dir
from padlock.devenv.registry import Registry
from padlock.sources import archives, registry

UPSTREAM = "falco-rules-5.1.0/falco_rules.yaml"


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def count_requests(fn: Callable[[], Any]) -> int:
    calls = 0
    original = registry.OrasRegistry._send

    def counting(self: registry.OrasRegistry, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(self, *args, **kwargs)

    registry.OrasRegistry._send = counting  # type: ignore[method-assign]
    try:
        fn()
    finally:
        registry.OrasRegistry._send = original  # type: ignore[method-assign]
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    text = (upstream_rules_dir() / UPSTREAM).read_text(encoding="utf-8")
    with Registry() as reg:
        key, public_pem = artifacts.generate_signing_key()
        # Older releases first so the floating tag has history to search, as on ghcr.io.
        for old in ("4.0.0", "5.0.0"):
            artifacts.push_rules_artifact(
                reg.address, "bench/falco-rules", old, {"falco_rules.yaml": text + f"# {old}\n"}
            )
        pushed = artifacts.push_rules_artifact(
            reg.address, "bench/falco-rules", "5.1.0", {"falco_rules.yaml": text}, sign_with=key
        )
        oci = {"repository": f"{reg.address}/bench/falco-rules", "tag": "5", "plainHTTP": True}
        plain = RuleSourceSpec.model_validate({"oci": oci})
        signed = RuleSourceSpec.model_validate({"oci": oci, "verify": {"cosignPublicKey": public_pem}})
        candidate = sources.resolve("bench", plain)
        assert candidate.digest == pushed.digest
        layer = artifacts.build_layer({"falco_rules.yaml": text})

        print(
            f"python {platform.python_version()} on {platform.machine()}, best of {args.repeat}; "
            f"falco-rules 5.1.0 ({len(text)} bytes, layer {len(layer)} bytes)"
        )
        print(
            f"resolve (tag '5')          {best(lambda: sources.resolve('bench', plain), args.repeat) * 1000:8.2f} ms"
            f"  ({count_requests(lambda: sources.resolve('bench', plain))} HTTP requests)"
        )
        print(
            f"fetch                      {best(lambda: sources.fetch('bench', plain, candidate), args.repeat) * 1000:8.2f} ms"
            f"  ({count_requests(lambda: sources.fetch('bench', plain, candidate))} HTTP requests)"
        )
        print(
            f"fetch + cosign verify      {best(lambda: sources.fetch('bench', signed, candidate), args.repeat) * 1000:8.2f} ms"
        )
        unpack = best(
            lambda: archives.extract_rules(layer, limits=archives.DEFAULT_LIMITS, source="b", reference="r"),
            args.repeat,
        )
        print(f"unpack layer (limits on)   {unpack * 1000:8.2f} ms")


if __name__ == "__main__":
    main()
