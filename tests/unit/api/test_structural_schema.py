"""The generated CRD schemas are structural and carry what Kubernetes needs.

Covers: no $ref/anyOf/title/null left; every node typed; status is a real schema (not
preserve-unknown-fields) on every kind, with the status subresource; descriptions come from
attribute docstrings; defaults, bounds, enums, patterns, CEL rules and list types are attached;
shapes Kubernetes cannot express raise SchemaError naming the path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from padlock.api import kinds, schema
from padlock.api.common import PadlockModel


def _nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}.*")


@pytest.fixture(params=kinds.ALL, ids=lambda k: k.kind)
def kind(request: pytest.FixtureRequest) -> kinds.Kind:
    return request.param  # type: ignore[no-any-return]


def test_schema_has_only_structural_keywords(kind: kinds.Kind) -> None:
    for path, node in _nodes(schema.object_schema(kind)):
        for banned in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "title", "const"):
            assert banned not in node, f"{kind.kind}{path}: {banned}"
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), (
            f"{kind.kind}{path}: untyped"
        )
        assert node.get("default", "unset") is not None, f"{kind.kind}{path}: default null"


def test_status_is_a_real_schema_with_the_status_subresource(kind: kinds.Kind) -> None:
    crd = schema.crd(kind)
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert "x-kubernetes-preserve-unknown-fields" not in status
    assert {"observedGeneration", "conditions"} <= set(status["properties"])
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert conditions["items"]["properties"]["status"]["enum"] == ["True", "False", "Unknown"]


def test_names_scope_and_category(kind: kinds.Kind) -> None:
    spec = schema.crd(kind)["spec"]
    assert spec["group"] == "padlock.dev"
    assert spec["scope"] == kind.scope
    assert spec["names"]["categories"] == ["padlock"]
    assert spec["names"]["shortNames"]
    assert schema.object_schema(kind)["required"] == ["spec"]


def test_only_policy_exception_is_namespaced() -> None:
    assert [k.kind for k in kinds.ALL if k.namespaced] == ["PolicyException", "TuningSuggestion"]


def test_field_docstrings_become_descriptions() -> None:
    spec = schema.object_schema(kinds.MANAGED_POLICY)["properties"]["spec"]["properties"]
    assert spec["disabledRules"]["description"].startswith("User choice: names of rules")
    # hard-wrapped docstring lines are joined so kubectl explain can re-flow them
    assert "\n" not in spec["disabledRules"]["description"]
    rules = spec["rules"]["items"]
    assert (
        rules["properties"]["condition"]["description"]
        == "Filter condition, after upstream overrides and appends."
    )


def test_defaults_bounds_enums_and_patterns_reach_the_schema() -> None:
    spec = schema.object_schema(kinds.RULE_SOURCE)["properties"]["spec"]
    props = spec["properties"]
    assert props["interval"]["default"] == "1h"
    assert props["updatePolicy"] == {
        **props["updatePolicy"],
        "enum": ["Automatic", "Manual"],
        "default": "Automatic",
    }
    assert (props["loadOrder"]["minimum"], props["loadOrder"]["maximum"], props["loadOrder"]["default"]) == (
        0,
        99,
        50,
    )
    assert props["verify"]["properties"]["digests"]["items"]["pattern"] == "^sha256:[a-f0-9]{64}$"
    assert props["oci"]["properties"]["plainHTTP"]["default"] is False
    custom = schema.object_schema(kinds.CUSTOM_POLICY)["properties"]["spec"]["properties"]
    assert custom["enabled"]["default"] is True
    assert custom["basedOn"]["properties"]["followUpdates"]["default"] is True


def test_user_choice_fields_of_managed_policies_have_no_server_side_default() -> None:
    # A default would make the API server write the field, fighting the user's GitOps tool.
    spec = schema.object_schema(kinds.MANAGED_POLICY)["properties"]["spec"]["properties"]
    for name in ("enabled", "disabledRules", "scope"):
        assert "default" not in spec[name], name


def test_cel_rules_are_attached_where_they_span_fields() -> None:
    spec = schema.object_schema(kinds.RULE_SOURCE)["properties"]["spec"]
    messages = [v["message"] for v in spec["x-kubernetes-validations"]]
    assert "exactly one of spec.oci, spec.http or spec.configMap must be set" in messages
    oci = spec["properties"]["oci"]
    assert oci["x-kubernetes-validations"][0]["rule"] == "has(self.tag) != has(self.semver)"
    match = schema.object_schema(kinds.POLICY_EXCEPTION)["properties"]["spec"]["properties"]["match"]
    assert len(match["x-kubernetes-validations"]) >= 2


def test_managed_rules_are_typed_and_keyed_by_name() -> None:
    rules = schema.object_schema(kinds.MANAGED_POLICY)["properties"]["spec"]["properties"]["rules"]
    assert rules["x-kubernetes-list-type"] == "map"
    assert rules["x-kubernetes-list-map-keys"] == ["name"]
    assert set(rules["items"]["required"]) == {"name", "condition", "priority"}
    assert "WARNING" in rules["items"]["properties"]["priority"]["enum"]


def test_printer_columns_answer_the_first_question() -> None:
    cols = {
        c["name"]: c
        for c in schema.crd(kinds.MANAGED_POLICY)["spec"]["versions"][0]["additionalPrinterColumns"]
    }
    assert list(cols)[:5] == ["ENABLED", "RULES", "VERSION", "UPDATED", "AGE"]
    assert cols["UPDATED"] == {**cols["UPDATED"], "type": "date", "jsonPath": ".status.lastUpdated"}
    rs = [c["name"] for c in schema.crd(kinds.RULE_SOURCE)["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert rs[:7] == ["VERSION", "READY", "UP-TO-DATE", "FALCO", "AVAILABLE", "LAST CHECK", "AGE"]
    cp = [
        c["name"] for c in schema.crd(kinds.CUSTOM_POLICY)["spec"]["versions"][0]["additionalPrinterColumns"]
    ]
    assert cp[:6] == ["ENABLED", "BASED ON", "RULES", "READY", "STATE", "AGE"]
    pex = [
        c["name"]
        for c in schema.crd(kinds.POLICY_EXCEPTION)["spec"]["versions"][0]["additionalPrinterColumns"]
    ]
    assert pex == ["POLICIES", "REASON", "EXPIRES", "ACTIVE", "STATE", "AGE"]


# --- shapes Kubernetes cannot express -------------------------------------------------------------


class _Union(PadlockModel):
    value: int | str
    """Either."""


class _Node(PadlockModel):
    children: list[_Node] | None = None
    """Recursive."""


class _FreeForm(PadlockModel):
    extra: dict[str, Any]
    """Anything."""


class _Untyped(PadlockModel):
    anything: Any
    """No type."""


@pytest.mark.parametrize(
    ("model", "words"),
    [
        (_Union, "_Union.value: a union of types"),
        (_Node, "recursive model _Node"),
        (_Untyped, "_Untyped.anything: no type"),
    ],
)
def test_inexpressible_shapes_raise_naming_the_path(model: type[BaseModel], words: str) -> None:
    with pytest.raises(schema.SchemaError, match=words):
        schema.openapi_schema(model)


def test_free_form_maps_are_marked_preserve_unknown_fields() -> None:
    extra = schema.openapi_schema(_FreeForm)["properties"]["extra"]
    assert extra == {
        "type": "object",
        "description": "Anything.",
        "x-kubernetes-preserve-unknown-fields": True,
    }


def test_short_names_are_unique_and_avoid_well_known_ones() -> None:
    # Core kinds and neighbours people run next to Falco (Kyverno, Gatekeeper, Tetragon, KubeArmor).
    taken = {
        "rs",
        "cm",
        "po",
        "svc",
        "deploy",
        "ds",
        "sts",
        "ns",
        "no",
        "pv",
        "pvc",
        "sa",
        "ep",
        "ev",
        "ing",
        "netpol",
        "pdb",
        "hpa",
        "crd",
        "crds",
        "cs",
        "csr",
        "rc",
        "pc",
        "sc",
        "cj",
        "limits",
        "quota",
        "cpol",
        "pol",
        "polex",
        "mpol",
        "vpol",
        "gpol",
        "ivpol",
        "tgtp",
        "tgtpn",
        "ksp",
        "csp",
        "hsp",
    }
    names = [n for k in kinds.ALL for n in k.short_names]
    assert len(names) == len(set(names))
    assert not set(names) & taken
