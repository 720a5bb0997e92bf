"""Effective state: which of a policy's rules run, and who runs the ones it switched off.

Covers: a rule disabled in its ManagedPolicy and not run elsewhere is not running and not listed as
still running; a CustomPolicy that runs it is named (``custompolicy/<name>``) for the ManagedPolicy;
a disabled tactic policy's rules are reported as not running; the CustomPolicy's own disabled rule
that the ManagedPolicy still runs names the ManagedPolicy; the status dict has the API's field names
and validates against the ManagedPolicy status model.
"""

from __future__ import annotations

from policy_helpers import NOW
from test_effective_render import KEYS, V1, _inputs

from padlock.api.managedpolicy import ManagedPolicyStatus
from padlock.policy import effective, running
from padlock.policy.policy_objects import BasedOn, CustomPolicyInput, ObjectRef

CRED = ObjectRef("ManagedPolicy", "credential-access")
EXEC = ObjectRef("ManagedPolicy", "execution")
MINE = ObjectRef("CustomPolicy", "my-credential-access")
SHADOW = "Read sensitive file untrusted"


def _state(choices=None, custom=()):
    outcome = effective.render(_inputs(V1, "1.0.0", choices=choices, custom=custom), NOW)
    assert outcome.publishable
    return running.effective_state(outcome.policy_included, outcome.policy_rules)


def test_a_rule_disabled_in_its_only_policy_does_not_run():
    state = _state({"credential-access": (None, (KEYS,))})
    assert state[CRED].running == (SHADOW,)
    assert state[CRED].total == 2 and state[CRED].still_running == {}


def test_a_rule_a_custom_policy_still_runs_is_reported_by_name():
    copy = CustomPolicyInput("my-credential-access", based_on=BasedOn("credential-access"))
    state = _state({"credential-access": (None, (KEYS,))}, custom=[copy])
    assert state[CRED].running == (SHADOW, KEYS)
    assert state[CRED].still_running == {KEYS: ("custompolicy/my-credential-access",)}
    assert state[MINE].still_running == {}
    status = state[CRED].to_status()
    assert status == {"runningRules": [SHADOW, KEYS], "runningRuleCount": 2,
                      "stillRunning": [{"rule": KEYS, "runBy": ["custompolicy/my-credential-access"]}]}
    ManagedPolicyStatus.model_validate(status)  # the API's own field names and shapes


def test_disabling_a_tactic_policy_stops_its_rules_unless_someone_else_runs_them():
    state = _state({"execution": (False, ())})
    assert state[EXEC].running == () and state[EXEC].still_running == {}
    shells = CustomPolicyInput("shells", rules=("Terminal shell in container",))
    state = _state({"execution": (False, ())}, custom=[shells])
    assert state[EXEC].still_running == {"Terminal shell in container": ("custompolicy/shells",)}


def test_the_custom_policy_learns_which_managed_policy_still_runs_its_disabled_rule():
    copy = CustomPolicyInput("my-credential-access", based_on=BasedOn("credential-access"), disabled_rules=(KEYS,))
    state = _state(custom=[copy])
    assert state[MINE].still_running == {KEYS: ("managedpolicy/credential-access",)}
