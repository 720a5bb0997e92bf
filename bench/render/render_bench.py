"""Benchmark of the effective render at scale (prints figures; never asserts timings).

Full render of 1,000 CustomPolicies and 5,000 exceptions over the newest upstream stable + incubating +
sandbox files (targets: < 2 s cold), then a re-render after one exception changes with a warm
``RenderCache`` (target: < 100 ms), the same with every object parsed anew (equal, not identical
objects, as the operator gives them), then one after a CustomPolicy's scope changes (same targets).
Usage: ``python bench/render/render_bench.py [--json]``.
Upstream files come from the vendored ``tests/data/upstream-rules``.
"""

from __future__ import annotations

import copy
import json
import platform
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from padlock.devenv.paths import upstream_rules_dir
from padlock.engine import loader
from padlock.engine.model import RulesFile
from padlock.policy import catalog, effective, managed
from padlock.policy.policy_objects import (
    BasedOn,
    CustomPolicyInput,
    ExceptionInput,
    ExceptionMatch,
    ObjectRef,
    PolicyTarget,
    Scope,
    SourceInput,
)

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = upstream_rules_dir()
FILES = [
    ("falco-rules", 10, "5.1.0", "falco-rules-5.1.0/falco_rules.yaml"),
    ("falco-incubating-rules", 20, "6.0.1", "falco-incubating-rules-6.0.1/falco-incubating_rules.yaml"),
    ("falco-sandbox-rules", 30, "6.1.0", "falco-sandbox-rules-6.1.0/falco-sandbox_rules.yaml"),
]
PLUGINS = {"container": "0.4.0"}
NOW = datetime(2026, 5, 1, tzinfo=UTC)


def build_inputs(n_custom: int = 1000, n_exceptions: int = 5000) -> effective.RenderInputs:
    sources = []
    rulesets = {}
    for name, order, version, rel in FILES:
        text = (UPSTREAM / rel).read_text()
        sources.append(SourceInput(name, order, version, ((rel.split("/")[-1], text),)))
        rulesets[name] = loader.load([RulesFile(rel, text)], plugins=PLUGINS).ruleset
    contents = managed.build_managed(catalog.builtin(), rulesets, {n: v for n, _, v, _ in FILES})
    mps = tuple(c.as_input(enabled=True) for c in contents)
    names = [c.name for c in contents if c.rules]
    all_rules = sorted({r.name for c in contents for r in c.rules})
    customs = []
    for i in range(n_custom):
        base = names[i % len(names)]
        customs.append(CustomPolicyInput(
            name=f"team-{i:04d}",
            based_on=BasedOn(base, follow_updates=i % 3 != 0),
            frozen_rules=None if i % 3 else tuple(all_rules[i % 7 :: 9]),
            rules=(all_rules[i % len(all_rules)],),
            scope=Scope(include=(f"ns-{i:04d}",)),
            priority_override="CRITICAL" if i % 10 == 0 else None,
        ))
    excs = []
    for i in range(n_exceptions):
        rule_name = all_rules[i % len(all_rules)]
        policy = next(c.name for c in contents if rule_name in {r.name for r in c.rules})
        excs.append(ExceptionInput(
            ObjectRef("PolicyException", f"ex-{i:05d}", f"ns-{i % 1000:04d}"),
            (PolicyTarget("ManagedPolicy", policy, (rule_name,)),),
            ExceptionMatch(images=(f"registry.example.com/team/app-{i}",)), "bench"))
    return effective.RenderInputs(sources=tuple(sources), managed=mps, custom=tuple(customs),
                                  exceptions=tuple(excs), plugins=PLUGINS)


def main() -> None:
    inputs = build_inputs()
    cache = effective.RenderCache()
    t0 = time.perf_counter()
    full = effective.render(inputs, NOW, cache)
    full_s = time.perf_counter() - t0
    changed = list(inputs.exceptions)
    changed[0] = replace(changed[0], match=ExceptionMatch(images=("registry.example.com/team/changed",)))
    t0 = time.perf_counter()
    again = effective.render(replace(inputs, exceptions=tuple(changed)), NOW, cache)
    rerender_s = time.perf_counter() - t0
    # The operator parses every object anew for each render: equal objects, not the same ones.
    fresh = replace(inputs, exceptions=copy.deepcopy(inputs.exceptions), custom=copy.deepcopy(inputs.custom),
                    managed=copy.deepcopy(inputs.managed))
    fresh_changed = list(fresh.exceptions)
    fresh_changed[1] = replace(fresh_changed[1], match=ExceptionMatch(images=("registry.example.com/team/again",)))
    t0 = time.perf_counter()
    again_fresh = effective.render(replace(fresh, exceptions=tuple(fresh_changed)), NOW, cache)
    rerender_fresh_s = time.perf_counter() - t0
    customs = list(inputs.custom)
    customs[1] = replace(customs[1], scope=Scope(include=("ns-0001", "ns-extra")))
    t0 = time.perf_counter()
    again_custom = effective.render(replace(inputs, exceptions=tuple(changed), custom=tuple(customs)), NOW, cache)
    rerender_custom_s = time.perf_counter() - t0
    result = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "custom_policies": len(inputs.custom),
        "exceptions": len(inputs.exceptions),
        "publishable": all(o.publishable for o in (full, again, again_fresh, again_custom)),
        "files": len(full.files),
        "configmaps": len(full.configmaps),
        "bytes": sum(len(v.encode()) for v in full.files.values()),
        "full_render_s": round(full_s, 3),
        "rerender_one_change_s": round(rerender_s, 3),
        "rerender_one_change_objects_parsed_anew_s": round(rerender_fresh_s, 3),
        "rerender_custom_policy_scope_s": round(rerender_custom_s, 3),
        "targets": {"full_render_s": 2.0, "rerender_one_change_s": 0.1, "rerender_one_change_objects_parsed_anew_s": 0.1,
                    "rerender_custom_policy_scope_s": 0.1},
    }
    if "--json" in sys.argv:
        print(json.dumps(result, indent=2))
        return
    print(f"full render: {full_s:.3f} s ({len(inputs.custom)} CustomPolicies, {len(inputs.exceptions)} exceptions, "
          f"{result['files']} files, {result['bytes']} bytes, {result['configmaps']} ConfigMaps; target < 2 s)")
    print(f"re-render after one exception changed: {rerender_s * 1000:.1f} ms (target < 100 ms)")
    print(f"the same with every object parsed anew, as the operator does: {rerender_fresh_s * 1000:.1f} ms "
          "(target < 100 ms)")
    print(f"re-render after one CustomPolicy's scope changed: {rerender_custom_s * 1000:.1f} ms (target < 100 ms)")
    print(f"publishable: {result['publishable']}")


if __name__ == "__main__":
    main()
