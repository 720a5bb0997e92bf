"""The published keys are validated in the order Falco reads them, and the policy layer loads last.

Covers (property test over random RuleSource names, load orders, file names and shard limits): the
order ``effective.render`` validated equals Falco's read order of every key of every shard mounted
through one projected volume (byte order of the full path), and every generated layer part comes after
every upstream file, in part order; the issue's case (``loadOrder: 99`` named ``vendor``) explicitly;
``padlock validate`` on a directory reads files in the byte order of the full path; the webhook's view
holds the upstream files in that order too.
"""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from padlock.cli import objects
from padlock.engine import readorder
from padlock.policy import effective
from padlock.policy.policy_objects import CustomPolicyInput, Scope, SourceInput

RULE = "- rule: R{n}\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n  tags: [maturity_stable]\n"
NOW = __import__("datetime").datetime(2026, 1, 1, tzinfo=__import__("datetime").UTC)

names = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,14}[a-z0-9])?", fullmatch=True)
files = st.lists(st.text(string.ascii_letters + string.digits + "-._", min_size=1, max_size=12)
                 .map(lambda s: f"{s}.yaml"), min_size=1, max_size=3, unique=True)
sources = st.lists(st.tuples(names, st.integers(0, 99), files), min_size=1, max_size=4,
                   unique_by=lambda s: s[0])


def _render(srcs, limit):
    inputs = []
    n = 0
    for name, order, fnames in srcs:
        texts = []
        for f in fnames:
            texts.append((f, RULE.format(n=n)))
            n += 1
        inputs.append(SourceInput(name, order, "1", tuple(texts)))
    # Scoped policies give every rule a condition override: a layer big enough to need parts.
    custom = tuple(CustomPolicyInput(f"c{i}", rules=tuple(f"R{j}" for j in range(n)),
                                     scope=Scope(include=(f"team-{i}-{'x' * 40}",))) for i in range(3))
    inputs_ = effective.RenderInputs(sources=tuple(inputs), custom=custom, shard_limit=limit, max_shards=1000,
                                     plugins={"container": "0.4.0"})
    return effective.render(inputs_, NOW)


def _mounted(outcome):
    keys = [k for cm in outcome.configmaps for k in cm.data]
    return readorder.read_order(keys, "/etc/falco/rules.d")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sources, st.sampled_from([700, 1200, 900 * 1024]))
def test_validated_order_is_falcos_read_order_and_the_layer_comes_last(srcs, limit):
    outcome = _render(srcs, limit)
    if not outcome.publishable:  # only two files giving one key, or a file over the limit, may refuse
        assert outcome.configmaps == ()
        assert {d.id for d in outcome.errors} <= {"invalid-file-name", "file-too-large"}, outcome.errors
        return
    read = _mounted(outcome)
    assert list(outcome.validated_order) == read
    layer = [k for k in read if k.startswith("padlock-policies")]
    assert layer == [readorder.layer_key(i) for i in range(len(layer))]
    assert read[-len(layer):] == layer


def test_a_source_at_load_order_99_named_after_padlock_still_loads_before_the_layer():
    outcome = _render([("vendor", 99, ["rules.yaml"]), ("falco-rules", 0, ["falco_rules.yaml"])], 900 * 1024)
    assert outcome.publishable
    assert _mounted(outcome) == ["00-falco-rules-falco_rules.yaml", "99-vendor-rules.yaml", "padlock-policies.yaml"]
    assert list(outcome.validated_order) == _mounted(outcome)


def test_validate_reads_a_directory_in_byte_order_of_the_full_path(tmp_path):
    (tmp_path / "a").mkdir()
    for rel in ("a/b.yaml", "a-c.yaml", "B.yaml", "a.yaml"):
        (tmp_path / rel).write_text("[]\n")
    got = [p.relative_to(tmp_path).as_posix() for p in objects.yaml_files(tmp_path)]
    assert got == ["B.yaml", "a-c.yaml", "a.yaml", "a/b.yaml"]


def test_the_webhook_view_holds_upstream_files_in_falcos_read_order():
    from dataclasses import dataclass

    from padlock.engine.model import RulesFile
    from padlock.flows.state import OperatorState
    from padlock.webhook.views import build_view

    @dataclass(frozen=True)
    class Bundle:
        files: tuple[RulesFile, ...]

    state = OperatorState()
    for name, order, fname in (("a", 50, "x.yaml"), ("a-b", 50, "c.yaml"), ("vendor", 99, "v.yaml")):
        state.upsert({"kind": "RuleSource", "metadata": {"name": name}, "spec": {"loadOrder": order}})
        state.bundles[name] = Bundle((RulesFile(fname, "[]\n"),))
        state.synced.add(name)
    names = [f.name for f in build_view(state).upstream_files]
    assert names == readorder.read_order(names) == ["50-a-b-c.yaml", "50-a-x.yaml", "99-vendor-v.yaml"]
