"""A warm ``RenderCache`` never changes what ``effective.render`` publishes or reports.

Covers: a sequence of one-object changes on the full upstream stable + incubating + sandbox set
(an exception changed, removed, made invalid, naming a missing policy, sharing its ref with another
object; a CustomPolicy with inline rules added, broken,
fixed; a scope changed; an exception expiring as ``now`` moves; a followed managed policy losing a rule; a
rule an exception names leaving its policy;
policies switched off and on, which changes what every exception binds to) rendered with one cache reused across
the whole sequence and, for each step, with a fresh cache: files, ConfigMaps, hash, diagnostics,
exclusions, expiries and policy rule lists are identical, and each published set reloads as valid.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

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
from rules_corpus import read_upstream

PLUGINS = {"container": "0.4.0"}
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
FILES = (
    ("falco-rules", 10, "falco-rules-5.1.0/falco_rules.yaml"),
    ("falco-incubating-rules", 20, "falco-incubating-rules-6.0.1/falco-incubating_rules.yaml"),
    ("falco-sandbox-rules", 30, "falco-sandbox-rules-6.1.0/falco-sandbox_rules.yaml"),
)
CUSTOM_RULES = """\
- list: team_binaries
  items: [team-agent]
- macro: team_proc
  condition: proc.name in (team_binaries)
- rule: Team agent spawned
  desc: the team agent started
  condition: spawned_process and team_proc
  output: team agent (cmd=%proc.cmdline)
  priority: NOTICE
"""


@functools.cache
def base_inputs() -> effective.RenderInputs:
    sources, rulesets = [], {}
    for name, order, rel in FILES:
        text = read_upstream(rel)
        sources.append(SourceInput(name, order, "1.0.0", ((rel.split("/")[1], text),)))
        rulesets[name] = loader.load([RulesFile(rel, text)], plugins=PLUGINS).ruleset
    contents = managed.build_managed(catalog.builtin(), rulesets, {n: "1.0.0" for n, _, _ in FILES})
    mps = tuple(c.as_input(enabled=True) for c in contents)
    names = [c.name for c in contents if c.rules]
    rule_names = sorted({r.name for c in contents for r in c.rules})
    owner = {r.name: c.name for c in contents for r in c.rules}
    custom = tuple(
        CustomPolicyInput(name=f"team-{i}", based_on=BasedOn(names[i % len(names)]),
                          scope=Scope(include=(f"ns-{i}",)), priority_override="CRITICAL" if i % 4 == 0 else None)
        for i in range(12)
    )
    excs = tuple(
        ExceptionInput(ObjectRef("PolicyException", f"ex-{i}", f"ns-{i % 5}"),
                       (PolicyTarget("ManagedPolicy", owner[rule_names[i * 7 % len(rule_names)]],
                                     (rule_names[i * 7 % len(rule_names)],)),),
                       ExceptionMatch(images=(f"registry.example.com/app-{i}",)), "test")
        for i in range(40)
    )
    return effective.RenderInputs(sources=tuple(sources), managed=mps, custom=custom, exceptions=excs,
                                  plugins=PLUGINS)


def steps() -> list[tuple[str, effective.RenderInputs, datetime]]:
    inp = base_inputs()
    excs = list(inp.exceptions)
    out = [("initial", inp, NOW)]
    excs[3] = replace(excs[3], match=ExceptionMatch(images=("registry.example.com/changed",)))
    inp = replace(inp, exceptions=tuple(excs))
    out.append(("exception changed", inp, NOW))
    excs[5] = replace(excs[5], match=ExceptionMatch(fields=("proc.nope",), comps=("=",), values=(("x",),)))
    inp = replace(inp, exceptions=tuple(excs))
    out.append(("exception with an unknown field", inp, NOW))
    excs[7] = replace(excs[7], expires_at=NOW + timedelta(hours=1))
    inp = replace(inp, exceptions=tuple(excs))
    out.append(("exception with an expiry", inp, NOW))
    out.append(("the expiry passes", inp, NOW + timedelta(hours=2)))
    inp = replace(inp, exceptions=tuple(excs[:-1]))
    out.append(("exception removed", inp, NOW))
    excs[9] = replace(excs[9], policies=(PolicyTarget("ManagedPolicy", "no-such-policy"),))
    inp = replace(inp, exceptions=tuple(excs))
    out.append(("exception naming a missing policy", inp, NOW))
    twin = replace(excs[11], match=ExceptionMatch(process_names=("twin",)))
    inp = replace(inp, exceptions=(*excs, twin))
    out.append(("two objects with one ref", inp, NOW))
    inp = replace(inp, exceptions=tuple(excs))
    out.append(("back to one object per ref", inp, NOW))
    custom = list(inp.custom)
    custom.append(CustomPolicyInput(name="team-inline", falco_rules=CUSTOM_RULES, scope=Scope(include=("t",))))
    inp = replace(inp, custom=tuple(custom))
    out.append(("custom rules added", inp, NOW))
    custom[-1] = replace(custom[-1], falco_rules=CUSTOM_RULES.replace("team_proc\n  output", "team_prok\n  output"))
    inp = replace(inp, custom=tuple(custom))
    out.append(("custom rules broken", inp, NOW))
    custom[-1] = replace(custom[-1], falco_rules=CUSTOM_RULES)
    custom[0] = replace(custom[0], scope=Scope(exclude=("kube-system",)))
    inp = replace(inp, custom=tuple(custom))
    out.append(("fixed, and a scope changed", inp, NOW))
    assert inp.custom[0].based_on is not None
    basis = next(i for i, m in enumerate(inp.managed) if m.name == inp.custom[0].based_on.managed_policy)
    fewer = list(inp.managed)
    fewer[basis] = replace(fewer[basis], rules=fewer[basis].rules[1:])
    inp = replace(inp, managed=tuple(fewer))
    out.append(("a managed policy that CustomPolicies follow loses a rule", inp, NOW))
    named = inp.exceptions[0].policies[0]
    # a CustomPolicy keeps that rule running, so only the policy the exception names changes
    inp = replace(inp, custom=(*inp.custom, CustomPolicyInput(name="keeper", rules=named.rules)))
    out.append(("a CustomPolicy also runs the rule an exception names", inp, NOW))
    target = next(i for i, m in enumerate(inp.managed) if m.name == named.name)
    fewer = list(inp.managed)
    fewer[target] = replace(fewer[target], rules=tuple(r for r in fewer[target].rules if r.name not in named.rules))
    inp = replace(inp, managed=tuple(fewer))
    out.append(("the rule an exception names leaves its managed policy", inp, NOW))
    off = replace(inp, custom=(), managed=tuple(replace(m, enabled=False) for m in inp.managed))
    out.append(("every policy switched off", off, NOW))
    one_on = replace(off, managed=(replace(off.managed[0], enabled=True), *off.managed[1:]))
    out.append(("one managed policy back on", one_on, NOW))
    return out


def test_warm_cache_renders_byte_identical_to_a_cold_one() -> None:
    warm = effective.RenderCache()
    seen_ids: set[str] = set()
    for label, inputs, now in steps():
        hot = effective.render(inputs, now, warm)
        cold = effective.render(inputs, now, effective.RenderCache())
        assert hot == cold, label
        assert hot.publishable, (label, [d.one_line() for d in hot.errors])
        reloaded = loader.load([RulesFile(k, v) for k, v in hot.files.items()], plugins=PLUGINS)
        assert reloaded.valid, (label, [d.one_line() for d in reloaded.errors])
        seen_ids |= {d.id for d in hot.diagnostics}
    # the sequence did exercise the failure paths it claims to
    assert {"exception-unknown-field", "exception-expired", "undefined-macro", "unknown-policy", "unknown-rule"} <= seen_ids
