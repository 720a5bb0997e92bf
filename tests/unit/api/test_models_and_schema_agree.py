"""Models and generated schemas accept and reject the same objects; models round-trip camelCase.

Covers: every example in examples/ parses with its model and validates against its CRD schema
(jsonschema stands in for the API server's OpenAPI check; CEL is checked against the real API
server in tests/integration/test_crds.py); invalid objects (bad enum, missing required field, value
out of range, bad pattern) are rejected by both; CEL mirrors reject with the CEL message; defaults
from the product; status dumps as camelCase without unset fields.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest
import yaml

from padlock.api import (
    ClusterPolicyException,
    CustomPolicy,
    ManagedPolicy,
    ManagedPolicyStatus,
    PolicyException,
    RuleSource,
    kinds,
    schema,
)
from padlock.api.common import Condition
from support_bodies import DELETE, edited

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def _schema_errors(body: dict[str, Any]) -> list[str]:
    openapi = schema.object_schema(kinds.BY_KIND[body["kind"]])
    validator = jsonschema.Draft7Validator(openapi)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "examples" / name).read_text())
    return data


def test_there_is_an_example_for_every_kind() -> None:
    found = {yaml.safe_load(p.read_text())["kind"] for p in EXAMPLES}
    assert found == set(kinds.BY_KIND)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_parses_with_its_model_and_validates_against_its_schema(path: Path) -> None:
    body = yaml.safe_load(path.read_text())
    assert path.name.startswith(body["kind"].lower() + "-"), "examples are named <kind>-<variant>.yaml"
    obj = kinds.model_for(body["kind"]).model_validate(body)
    assert obj.metadata.name == body["metadata"]["name"]
    assert _schema_errors(body) == []
    # what the model writes back is also accepted by the schema
    assert _schema_errors(obj.to_dict()) == []


def _rs() -> dict[str, Any]:
    return _load("rulesource-oci.yaml")


INVALID = [
    ("bad enum", "rulesource-oci.yaml", "spec.updatePolicy", "Sometimes", "updatePolicy"),
    ("out of range", "rulesource-oci.yaml", "spec.loadOrder", 100, "loadOrder"),
    ("negative", "rulesource-oci.yaml", "spec.loadOrder", -1, "loadOrder"),
    ("bad duration", "rulesource-oci.yaml", "spec.interval", "hourly", "interval"),
    ("bad digest", "rulesource-oci-manual.yaml", "spec.verify.digests", ["md5:abc"], "digests"),
    ("bad sha256", "rulesource-http.yaml", "spec.http.sha256", "XYZ", "sha256"),
    ("repository with tag", "rulesource-oci.yaml", "spec.oci.repository", "ghcr.io/falco:5", "repository"),
    ("missing reason", "policyexception-nginx-shell.yaml", "spec.reason", DELETE, "reason"),
    ("empty reason", "policyexception-nginx-shell.yaml", "spec.reason", "", "reason"),
    (
        "bad policy kind",
        "policyexception-nginx-shell.yaml",
        "spec.policies",
        [{"kind": "Pod", "name": "x"}],
        "kind",
    ),
    (
        "missing condition",
        "managedpolicy-credential-access.yaml",
        "spec.rules",
        [{"name": "r", "priority": "WARNING"}],
        "condition",
    ),
    ("bad priority", "custompolicy-based-on.yaml", "spec.priorityOverride", "Loud", "priorityOverride"),
    ("bad comp", "policyexception-native.yaml", "spec.match.comps", ["=", "like"], "comps"),
    (
        "bad namespace",
        "custompolicy-based-on.yaml",
        "spec.scope.namespaces.include",
        ["Not_A_Namespace"],
        "include",
    ),
    ("unknown field", "rulesource-oci.yaml", "spec.intervall", "1h", "intervall"),
]


@pytest.mark.parametrize(("case", "example", "path", "value", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_object_is_rejected_by_model_and_schema(
    case: str, example: str, path: str, value: Any, field: str
) -> None:
    body = edited(_load(example), path, value)
    model = kinds.model_for(body["kind"])
    with pytest.raises(pydantic.ValidationError) as err:
        model.model_validate(body)
    assert field in str(err.value), f"model error does not name {field}: {err.value}"
    if case != "unknown field":  # the API server prunes (or, with strict validation, refuses) unknown fields
        errors = _schema_errors(body)
        assert errors, f"schema accepted {case}"
        assert any(field in e for e in errors), errors


CEL_CASES = [
    (
        "two sources",
        edited(_load("rulesource-oci.yaml"), "spec.http", {"url": "https://example.com/r.yaml"}),
        "exactly one of spec.oci, spec.http or spec.configMap must be set",
    ),
    ("no source", edited(_load("rulesource-oci.yaml"), "spec.oci", DELETE), "exactly one of spec.oci"),
    (
        "tag and semver",
        edited(_load("rulesource-oci.yaml"), "spec.oci.semver", "~5.1"),
        "exactly one of oci.tag or oci.semver",
    ),
    (
        "approved without Manual",
        edited(_load("rulesource-oci.yaml"), "spec.approvedVersion", "5.0.1"),
        "approvedVersion only applies",
    ),
    (
        "interval too short",
        edited(_load("rulesource-oci.yaml"), "spec.interval", "500ms"),
        "interval must be at least 1s",
    ),
    (
        "both match forms",
        edited(_load("policyexception-native.yaml"), "spec.match.images", ["nginx"]),
        "match must use either fields/comps/values or images/containerNames/processNames",
    ),
    (
        "comps length",
        edited(_load("policyexception-native.yaml"), "spec.match.comps", ["="]),
        "comps must have one operator per field",
    ),
    (
        "row length",
        edited(_load("policyexception-native.yaml"), "spec.match.values", [["restic"]]),
        "every values row must have one value per field",
    ),
    (
        "included and excluded",
        edited(_load("custompolicy-based-on.yaml"), "spec.scope.namespaces.exclude", ["payments"]),
        "a namespace cannot be both included and excluded",
    ),
    (
        "empty custom policy",
        edited(_load("custompolicy-frozen.yaml"), "spec.basedOn", DELETE),
        "needs at least one of basedOn",
    ),
]


@pytest.mark.parametrize(("case", "body", "message"), CEL_CASES, ids=[c[0] for c in CEL_CASES])
def test_cross_field_rules_reject_with_the_cel_message(case: str, body: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        kinds.model_for(body["kind"]).model_validate(body)


def test_semver_range_is_parsed_not_just_pattern_checked() -> None:
    body = edited(_load("rulesource-oci-manual.yaml"), "spec.oci.semver", ">=5.0.0 <<6")
    with pytest.raises(pydantic.ValidationError, match="invalid semver range"):
        RuleSource.model_validate(body)


def test_defaults_follow_the_product() -> None:
    rs = RuleSource.model_validate(
        {"metadata": {"name": "r"}, "spec": {"oci": {"repository": "ghcr.io/a/b", "tag": "5"}}}
    )
    assert (rs.spec.interval, rs.spec.update_policy, rs.spec.load_order) == ("1h", "Automatic", 50)
    assert rs.spec.oci is not None and rs.spec.oci.plain_http is False
    cp = CustomPolicy.model_validate({"metadata": {"name": "c"}, "spec": {"basedOn": {"managedPolicy": "m"}}})
    assert cp.spec.enabled is True
    assert cp.spec.based_on is not None and cp.spec.based_on.follow_updates is True
    mp = ManagedPolicy.model_validate(_load("managedpolicy-credential-access.yaml"))
    assert (
        mp.spec.rules is not None
        and mp.spec.rules[1].enabled is True
        and mp.spec.rules[1].source == "syscall"
    )


def test_snake_case_attributes_and_camel_case_names_both_work() -> None:
    by_alias = PolicyException.model_validate(_load("policyexception-native.yaml"))
    by_name = PolicyException.model_validate(
        {"metadata": {"name": "x"}, "spec": {**by_alias.spec.model_dump(), "expires_at": NOW}}
    )
    assert by_name.spec.expires_at == NOW
    assert by_name.to_dict()["spec"]["expiresAt"] == "2026-01-02T03:04:05Z"


def test_status_dumps_camel_case_without_unset_fields() -> None:
    status = ManagedPolicyStatus(
        enabled=True,
        last_updated=NOW,
        source_version="5.0.1",
        rule_count=2,
        enabled_rule_count=1,
        observed_generation=3,
        conditions=[
            Condition(
                type="Ready",
                status="True",
                reason="Reconciled",
                last_transition_time=NOW,
                observed_generation=3,
            )
        ],
    )
    dumped = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert dumped == {
        "observedGeneration": 3,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Reconciled",
                "message": "",
                "observedGeneration": 3,
                "lastTransitionTime": "2026-01-02T03:04:05Z",
            }
        ],
        "enabled": True,
        "lastUpdated": "2026-01-02T03:04:05Z",
        "sourceVersion": "5.0.1",
        "ruleCount": 2,
        "enabledRuleCount": 1,
    }
    body = {**_load("managedpolicy-credential-access.yaml"), "status": dumped}
    assert _schema_errors(body) == []


def test_timestamps_must_carry_a_timezone() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"lastTransitionTime|last_transition_time"):
        Condition(type="Ready", status="True", reason="X", last_transition_time=dt.datetime(2026, 1, 1))


def test_history_and_changes_are_bounded_at_twenty() -> None:
    entry = {"time": "2026-01-01T00:00:00Z", "toVersion": "5.0.1"}
    with pytest.raises(pydantic.ValidationError, match="changes"):
        ManagedPolicyStatus.model_validate({"changes": [entry] * 21})
    assert len(ManagedPolicyStatus.model_validate({"changes": [entry] * 20}).changes or []) == 20


def test_unknown_metadata_is_ignored_but_unknown_spec_fields_are_not() -> None:
    body = _load("clusterpolicyexception-expiring.yaml")
    body["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    assert ClusterPolicyException.model_validate(body).metadata.name == "loadtest-shells"
    body["spec"]["reasons"] = "typo"
    with pytest.raises(pydantic.ValidationError, match="reasons"):
        ClusterPolicyException.model_validate(body)


def test_model_for_names_an_unknown_kind() -> None:
    with pytest.raises(KeyError, match="unknown padlock kind 'Rulesource'"):
        kinds.model_for("Rulesource")
