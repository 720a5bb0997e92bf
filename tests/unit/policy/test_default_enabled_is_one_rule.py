"""``defaultEnabled`` left unset means off, the same in the CRD, the catalog, the render input and the
status; ``spec.enabled`` wins over it whenever the user set it.

Covers: the CRD default generated from the model; a catalog entry without the key; a ManagedPolicy
body without the key (parse_managed); ``effective_enabled`` for every combination; ``next_status``
reporting the same effective value.
"""

from __future__ import annotations

import pytest
from policy_helpers import NOW

from padlock.api import kinds, schema
from padlock.api.managedpolicy import DEFAULT_ENABLED, ManagedPolicySpec
from padlock.policy import catalog
from padlock.policy.changes import next_status
from padlock.policy.policy_objects import effective_enabled, parse_managed

CATALOG_WITHOUT_DEFAULT = """\
apiVersion: padlock.dev/catalog/v1
name: test
version: 1.0.0
policies:
  - name: quiet
    displayName: Quiet
    description: A policy nobody switched on.
    select: {tagsAny: [mitre_discovery]}
"""


def test_unset_default_is_off_in_the_model_and_the_crd():
    assert DEFAULT_ENABLED is False
    assert ManagedPolicySpec(rules=[]).default_enabled is False
    crd = schema.crd(kinds.MANAGED_POLICY)
    props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert props["defaultEnabled"]["default"] is False


def test_catalog_entry_without_default_enabled_is_off():
    parsed, problems = catalog.parse(CATALOG_WITHOUT_DEFAULT, "test.yaml")
    assert problems == [] and parsed is not None
    assert parsed.policies[0].default_enabled is False


def test_managed_policy_body_without_default_enabled_does_not_run():
    body = {"apiVersion": "padlock.dev/v1alpha1", "kind": "ManagedPolicy", "metadata": {"name": "quiet"},
            "spec": {"rules": []}}
    policy, diagnostics = parse_managed(body)
    assert diagnostics == [] and policy is not None
    assert policy.default_enabled is False and policy.effective_enabled is False
    switched_on, _ = parse_managed({**body, "spec": {"rules": [], "enabled": True}})
    assert switched_on is not None and switched_on.effective_enabled is True


@pytest.mark.parametrize(("enabled", "default", "runs"), [
    (None, False, False), (None, True, True), (True, False, True), (False, True, False),
])
def test_user_choice_wins_over_the_default(enabled, default, runs):
    assert effective_enabled(enabled, default) is runs
    status = next_status(None, (), (), default_enabled=default, enabled=enabled, disabled_rules=(), now=NOW,
                         from_version=None, to_version="1.0.0")
    assert status.enabled is runs
