"""Benchmark of the one parse of padlock objects (prints figures; never asserts timings).

``padlock.policy.policy_objects.parse_objects`` over 1,000 CustomPolicy and 5,000 PolicyException
bodies, as the operator hands them to every render: cold (each body validated by its ``padlock.api``
model, strict, from its JSON form) and warm (equal bodies, new dicts: the memo by JSON text answers).
Usage: ``python bench/core/parse_bench.py [--json]``.
"""

from __future__ import annotations

import copy
import json
import sys
import timeit

from padlock.policy import policy_objects


def bodies() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in range(1000):
        out.append({"apiVersion": "padlock.dev/v1alpha1", "kind": "CustomPolicy",
                    "metadata": {"name": f"team-{i}", "resourceVersion": str(i), "uid": f"u{i}"},
                    "spec": {"basedOn": {"managedPolicy": "execution"}, "disabledRules": ["Terminal shell in container"],
                             "scope": {"namespaces": {"include": [f"team-{i}"]}}}})
    for i in range(5000):
        out.append({"apiVersion": "padlock.dev/v1alpha1", "kind": "PolicyException",
                    "metadata": {"name": f"e{i}", "namespace": f"team-{i % 1000}", "resourceVersion": str(i)},
                    "spec": {"policies": [{"kind": "ManagedPolicy", "name": "execution",
                                           "rules": ["Terminal shell in container"]}],
                             "match": {"images": [f"registry.example.com/app-{i}"]}, "reason": "bench"}})
    return out


def main() -> None:
    objs = bodies()
    policy_objects._MEMO.clear()
    cold = timeit.timeit(lambda: policy_objects.parse_objects(objs), number=1)
    again = copy.deepcopy(objs)
    warm = min(timeit.repeat(lambda: policy_objects.parse_objects(again), number=1, repeat=3))
    parsed = policy_objects.parse_objects(again)
    assert len(parsed.custom) == 1000 and len(parsed.exceptions) == 5000 and not parsed.invalid
    if "--json" in sys.argv:
        print(json.dumps({"cold_s": round(cold, 4), "warm_s": round(warm, 4)}))
    else:
        print(f"parse 1,000 CustomPolicies + 5,000 PolicyExceptions: cold {cold * 1000:.1f} ms, "
              f"warm (equal bodies) {warm * 1000:.1f} ms")


if __name__ == "__main__":
    main()
