"""Effective state: which of a policy's rules actually run, and who runs the ones it switched off.

A rule runs when at least one enabled policy runs it (``padlock.policy.layer``), so disabling a rule in
one policy does not stop it while another policy runs it. ``effective_state`` says so per policy,
from what the render resolved: the rules each policy includes and the ones each enabled policy runs.
ManagedPolicy and CustomPolicy status (``runningRules``, ``stillRunning``), ``padlock policies`` and
``padlock explain`` all read it, so they cannot disagree with the published ruleset.

Who calls it: ``padlock.flows.corebridge``, ``padlock.cli.policies``, ``padlock.cli.explain``. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from padlock.policy.policy_objects import ObjectRef


def ref_text(ref: ObjectRef) -> str:
    """``custompolicy/my-credential-access``: how a policy is named where it runs a rule."""
    return f"{ref.kind.lower()}/{ref.name}"


@dataclass(frozen=True)
class PolicyState:
    """One policy's effective state."""

    total: int
    running: tuple[str, ...]
    #: rule this policy does not run -> the other policies that run it (``kind/name``), sorted
    still_running: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_status(self) -> dict[str, object]:
        """The status fields (camelCase), as ``ManagedPolicyStatus``/``CustomPolicyStatus`` take them."""
        return {
            "runningRules": list(self.running),
            "runningRuleCount": len(self.running),
            "stillRunning": [{"rule": r, "runBy": list(by)} for r, by in sorted(self.still_running.items())],
        }


def runners(runs: Mapping[ObjectRef, tuple[str, ...]]) -> dict[str, tuple[ObjectRef, ...]]:
    """rule name -> the policies that run it (sorted), from each enabled policy's running rules."""
    out: dict[str, list[ObjectRef]] = {}
    for ref in sorted(runs):
        for name in runs[ref]:
            out.setdefault(name, []).append(ref)
    return {name: tuple(refs) for name, refs in out.items()}


def effective_state(
    included: Mapping[ObjectRef, tuple[str, ...]], runs: Mapping[ObjectRef, tuple[str, ...]]
) -> dict[ObjectRef, PolicyState]:
    """Every policy's state. ``included``: the rules each policy covers; ``runs``: the rules each
    policy runs (empty for a disabled policy), as ``RenderOutcome.policy_included``/``policy_rules``."""
    by_rule = runners(runs)
    out: dict[ObjectRef, PolicyState] = {}
    for ref, names in included.items():
        own = set(runs.get(ref, ()))
        running = tuple(sorted(n for n in names if n in by_rule))
        still = {
            n: tuple(ref_text(r) for r in by_rule[n] if r != ref)
            for n in names
            if n not in own and n in by_rule
        }
        out[ref] = PolicyState(len(names), running, {n: by for n, by in still.items() if by})
    return out
