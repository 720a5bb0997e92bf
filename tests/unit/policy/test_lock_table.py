"""One lock definition: the webhook's checks and the chart's ValidatingAdmissionPolicies give the same
verdict on every field, for every identity, because both come from ``padlock.policy.lock.LOCK_TABLE``.

Covers:
- the table names every field: each property of the ManagedPolicy schema (generated from the pydantic
  models), each ObjectMeta field and each ConfigMap field of the Kubernetes API has its own row;
- ``charts/padlock/templates/lock-policy.yaml`` and the tables of docs/security.md are what
  ``padlock.policy.lock_policy`` generates from the table (``make verify`` checks the same);
- a walk over every field path of a fully populated ManagedPolicy and of a generated ConfigMap: each
  change, removal and addition, by a tenant and by the garbage collector, on the main resource and on
  the status sub-resource, gets the same verdict from the webhook (``padlock.policy.lock``) and from the
  policies' CEL as ``helm template`` renders it, evaluated with cel-python (celpy) with the API
  server's matching rules (resource, operation, objectSelector on old and new, namespaceSelector,
  matchConditions, variables, validations; an evaluation error denies, as failurePolicy Fail);
- creates and deletes by the operator, a tenant and the garbage collector, including the reserved
  names ``padlock-rules``, ``padlock-rules-N`` (labelled or not, in and outside the Falco namespace) and
  the operator's own limit to the declared shard names;
- a ManagedPolicy declared ahead of the operator (GitOps: only spec.enabled, disabledRules, scope and
  labels/annotations outside padlock.dev/) may be created by anyone; the same declaration with any one
  locked field of a full ManagedPolicy added is refused, by both;
- spot checks that the verdicts are the intended ones (immutable, binaryData, finalizers,
  ownerReferences, generateName, user choices).
"""

from __future__ import annotations

import copy
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import celpy
import kubernetes.client
import pytest
import yaml

from padlock.api import kinds, schema
from padlock.devenv import tools
from padlock.policy import lock, lock_policy

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "padlock"
OPERATOR = lock.DEFAULT_OPERATOR_USERNAME
GC = lock.GARBAGE_COLLECTOR_USERNAMES[0]
TENANT = "alice"
TARGET = lock.PublishTarget()


# ---------------------------------------------------------------------------------------------
# The policies as the chart renders them, evaluated with celpy


def _helm_template(*sets: str) -> list[dict[str, Any]]:
    helm = tools.find("helm")
    with tempfile.TemporaryDirectory(prefix="padlock-helm-") as home:
        env = {"HOME": home, "HELM_CACHE_HOME": home, "HELM_CONFIG_HOME": home, "HELM_DATA_HOME": home,
               "PATH": "/usr/bin:/bin"}
        args = [str(helm), "template", "padlock", str(CHART), "--namespace", "padlock-system",
                "--show-only", "templates/lock-policy.yaml"]
        for s in sets:
            args += ["--set", s]
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d and d["kind"] == "ValidatingAdmissionPolicy"]


class Vap:
    """One ValidatingAdmissionPolicy, compiled with celpy, judged as the API server does."""

    env = celpy.Environment()

    def __init__(self, policy: Mapping[str, Any]) -> None:
        self.name = policy["metadata"]["name"]
        spec = policy["spec"]
        self.constraints = spec["matchConstraints"]
        self.conditions = [self._compile(c["expression"]) for c in spec.get("matchConditions", [])]
        self.variables = [(v["name"], self._compile(v["expression"])) for v in spec.get("variables", [])]
        self.validations = [self._compile(v["expression"]) for v in spec["validations"]]

    def _compile(self, expression: str) -> Any:
        return self.env.program(self.env.compile(expression))

    def matches(self, request: Mapping[str, Any]) -> bool:
        resource = request["resource"] + (f"/{request['subResource']}" if request.get("subResource") else "")
        if not any(resource in rule["resources"] and request["operation"] in rule["operations"]
                   for rule in self.constraints["resourceRules"]):
            return False
        selector = (self.constraints.get("objectSelector") or {}).get("matchLabels")
        if selector:
            def labelled(obj: Any) -> bool:
                labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
                return all(labels.get(k) == v for k, v in selector.items())
            # The API server matches the object selector against the old and the new object.
            if not (labelled(request["object"]) or labelled(request["oldObject"])):
                return False
        namespaces = (self.constraints.get("namespaceSelector") or {}).get("matchLabels")
        return not namespaces or namespaces == {"kubernetes.io/metadata.name": request.get("namespace")}

    def allows(self, request: Mapping[str, Any]) -> bool:
        if not self.matches(request):
            return True
        cel_request = {k: v for k, v in request.items() if k in ("operation", "name", "namespace", "subResource")
                       and v}
        cel_request["userInfo"] = {"username": request["username"]}
        activation: dict[str, Any] = {
            "request": celpy.json_to_cel(cel_request),
            "object": celpy.json_to_cel(request["object"]),
            "oldObject": celpy.json_to_cel(request["oldObject"]),
        }
        for condition in self.conditions:
            result = condition.evaluate(activation)
            if not isinstance(result, celpy.celtypes.BoolType):
                return False  # an error in a match condition: failurePolicy Fail
            if not result:
                return True
        variables: dict[str, Any] = {}
        for name, program in self.variables:
            variables[name] = program.evaluate({**activation, "variables": celpy.celtypes.MapType(
                {celpy.celtypes.StringType(k): v for k, v in variables.items()})})
        activation["variables"] = celpy.celtypes.MapType(
            {celpy.celtypes.StringType(k): v for k, v in variables.items()})
        for validation in self.validations:
            result = validation.evaluate(activation)
            if not isinstance(result, celpy.celtypes.BoolType) or not result:
                return False  # false denies; an evaluation error too (failurePolicy Fail)
        return True


@pytest.fixture(scope="module")
def policies() -> list[Vap]:
    return [Vap(p) for p in _helm_template()]


def vap_allows(policies: list[Vap], request: Mapping[str, Any]) -> bool:
    return all(p.allows(request) for p in policies)


def webhook_allows(request: Mapping[str, Any]) -> bool:
    """The webhook's decision (padlock.policy.lock, as padlock.webhook.handlers calls it)."""
    old, new, op, user = request["oldObject"], request["object"], request["operation"], request["username"]
    if request["resource"] == "managedpolicies":
        return not lock.check_managed_policy(old=old, new=new, operation=op, username=user,
                                             subresource=request.get("subResource") or None)
    return not lock.check_generated_configmap(old=old, new=new, operation=op, username=user) and (
        lock.check_reserved_name(namespace=request.get("namespace"), new=new, operation=op, username=user,
                                 target=TARGET) is None
    )


def request(resource: str, operation: str, username: str, old: Any, new: Any, *,
            subresource: str = "") -> dict[str, Any]:
    meta = ((new or old) or {}).get("metadata") or {}
    return {"resource": resource, "operation": operation, "username": username, "oldObject": old,
            "object": new, "subResource": subresource, "name": meta.get("name", ""),
            "namespace": meta.get("namespace", "")}


# ---------------------------------------------------------------------------------------------
# Fully populated objects and every field path in them


def sample(node: Mapping[str, Any]) -> Any:
    """A value for a schema node with every optional field present."""
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        if "properties" in node:
            return {k: sample(v) for k, v in node["properties"].items()}
        if isinstance(node.get("additionalProperties"), Mapping):
            return {"k1": sample(node["additionalProperties"])}
        return {"k1": "v1"}
    if kind == "array":
        return [sample(node["items"])]
    if kind == "boolean":
        return True
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if node.get("format") == "date-time":
        return "2024-01-01T00:00:00Z"
    return "x"


OBJECT_META = {
    "name": "credential-access",
    "generateName": "credential-",
    "namespace": "",
    "uid": "u-1",
    "resourceVersion": "10",
    "generation": 3,
    "creationTimestamp": "2024-01-01T00:00:00Z",
    "deletionTimestamp": "2024-01-02T00:00:00Z",
    "deletionGracePeriodSeconds": 0,
    "labels": {"app.kubernetes.io/managed-by": "padlock", "padlock.dev/catalog": "default", "team": "sec"},
    "annotations": {"padlock.dev/source-version": "5.0.1", "note": "x"},
    "ownerReferences": [{"apiVersion": "padlock.dev/v1alpha1", "kind": "RuleSource", "name": "falco-rules",
                         "uid": "rs-1", "controller": False, "blockOwnerDeletion": False}],
    "finalizers": ["padlock.dev/keep"],
    "managedFields": [{"manager": "padlock", "operation": "Apply"}],
    "selfLink": "",
}


def full_managed_policy() -> dict[str, Any]:
    model = schema.openapi_schema(kinds.MANAGED_POLICY.model)["properties"]
    return {"apiVersion": "padlock.dev/v1alpha1", "kind": "ManagedPolicy", "metadata": copy.deepcopy(OBJECT_META),
            "spec": sample(model["spec"]), "status": sample(model["status"])}


def full_configmap(name: str = "padlock-rules") -> dict[str, Any]:
    meta = copy.deepcopy(OBJECT_META)
    meta.update(name=name, namespace="falco", generateName="padlock-rules-")
    meta["labels"] = {"app.kubernetes.io/managed-by": "padlock", "padlock.dev/ruleset": "padlock-rules"}
    meta["annotations"] = {"padlock.dev/content-hash": "sha256:1", "note": "x"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
            "data": {"50-falco-rules.yaml": "- rule: a\n", "padlock-policies.yaml": "[]\n"},
            "binaryData": {"x.bin": "AAEC"}, "immutable": False}


Path_ = tuple[str | int, ...]
STRING_MAPS = ("labels", "annotations", "data", "binaryData")


def paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every path to a node below ``value`` (maps by key, lists by index), parents before children."""
    if isinstance(value, Mapping):
        for key, child in value.items():
            yield (*prefix, key)
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield (*prefix, index)
            yield from paths(child, (*prefix, index))


def _parent(obj: Any, path: Path_) -> Any:
    for part in path[:-1]:
        obj = obj[part]
    return obj


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "-changed"
    if isinstance(value, list):
        return [*value, copy.deepcopy(value[0])] if value else ["x"]
    return {**value, "added-key": copy.deepcopy(next(iter(value.values()), "v"))}


def mutations(obj: dict[str, Any], skip: tuple[str, ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(description, changed copy) for each path: its value changed, and the node removed.

    A key is added only to string maps (labels, annotations, data, schema maps): a typed object has no
    other keys (the API server prunes or refuses them before admission).
    """
    for path in paths(obj):
        if path[0] in skip:
            continue
        value = _parent(obj, path)[path[-1]]
        typed = isinstance(value, Mapping) and not (path[-1] in STRING_MAPS or "k1" in value)
        for how in ("removed",) if typed else ("changed", "removed"):
            new = copy.deepcopy(obj)
            parent = _parent(new, path)
            if how == "changed":
                parent[path[-1]] = _changed(parent[path[-1]])
            else:
                del parent[path[-1]]
            yield f"{'.'.join(map(str, path))} {how}", new


# ---------------------------------------------------------------------------------------------
# The table covers every field


def test_the_table_has_a_row_for_every_field_of_the_managed_policy_schema_and_of_object_meta() -> None:
    spec = schema.openapi_schema(kinds.MANAGED_POLICY.model)["properties"]["spec"]["properties"]
    rows = {r.parts for r in lock.field_rules("ManagedPolicy")}
    assert {("spec", name) for name in spec} <= rows
    assert ("status",) in {r.parts for r in lock.field_rules("ManagedPolicy", subresource="status")}
    meta = set(kubernetes.client.V1ObjectMeta.attribute_map.values())
    assert meta == set(lock.METADATA_FIELDS)
    assert {("metadata", name) for name in meta} <= rows


def test_the_table_has_a_row_for_every_field_of_a_configmap() -> None:
    fields = set(kubernetes.client.V1ConfigMap.attribute_map.values()) - {"apiVersion", "kind", "metadata"}
    assert fields == {"data", "binaryData", "immutable"}
    rows = {r.parts: r for r in lock.field_rules("ConfigMap")}
    for name in fields:
        assert rows[(name,)].writers == (lock.OPERATOR,), name
    for name in kubernetes.client.V1ObjectMeta.attribute_map.values():
        assert ("metadata", name) in rows


def test_the_chart_template_is_what_the_table_generates() -> None:
    assert (REPO / lock_policy.TEMPLATE).read_text() == lock_policy.render(), (
        "charts/padlock/templates/lock-policy.yaml is stale: run make lock-policy"
    )


def test_the_security_doc_shows_the_current_lock_table_and_rbac_matrix() -> None:
    text = (REPO / lock_policy.SECURITY_DOC).read_text()
    assert lock_policy.with_generated_blocks(text) == text, "docs/security.md is stale: run make lock-policy"
    assert "| ConfigMap | `immutable` | operator |" in text
    assert "`padlock-rules-3`" in text


# ---------------------------------------------------------------------------------------------
# Same verdict on every field


@pytest.mark.parametrize("user", [TENANT, GC])
def test_every_managed_policy_field_change_gets_the_same_verdict_from_webhook_and_policy(
    policies: list[Vap], user: str
) -> None:
    base = full_managed_policy()
    checked = 0
    for what, changed in mutations(base, skip=("apiVersion", "kind")):
        for old, new in ((base, changed), (changed, base)):
            for sub in ("", "status"):
                req = request("managedpolicies", "UPDATE", user, old, new, subresource=sub)
                assert webhook_allows(req) == vap_allows(policies, req), f"{what} (sub-resource {sub!r}, {user})"
                checked += 1
    assert checked > 400


@pytest.mark.parametrize("user", [TENANT, GC])
def test_every_configmap_field_change_gets_the_same_verdict_from_webhook_and_policy(
    policies: list[Vap], user: str
) -> None:
    base = full_configmap()
    checked = 0
    for what, changed in mutations(base, skip=("apiVersion", "kind")):
        for old, new in ((base, changed), (changed, base)):
            req = request("configmaps", "UPDATE", user, old, new)
            assert webhook_allows(req) == vap_allows(policies, req), f"{what} ({user})"
            checked += 1
    assert checked > 60


@pytest.mark.parametrize(
    ("change", "tenant", "gc"),
    [
        (("spec", "enabled"), True, True),
        (("spec", "disabledRules"), True, True),
        (("spec", "scope"), True, True),
        (("metadata", "labels", "team"), True, True),
        (("metadata", "annotations", "note"), True, True),
        (("metadata", "resourceVersion"), True, True),
        (("metadata", "managedFields"), True, True),
        (("spec", "rules"), False, False),
        (("spec", "displayName"), False, False),
        (("metadata", "labels", "padlock.dev/catalog"), False, False),
        (("metadata", "generateName"), False, False),
        (("metadata", "ownerReferences"), False, True),
        (("metadata", "finalizers"), False, True),
    ],
)
def test_managed_policy_verdicts_are_the_intended_ones(
    policies: list[Vap], change: tuple[str, ...], tenant: bool, gc: bool
) -> None:
    old = full_managed_policy()
    new = copy.deepcopy(old)
    parent = _parent(new, change)
    parent[change[-1]] = _changed(parent[change[-1]])
    for user, expected in ((TENANT, tenant), (GC, gc), (OPERATOR, True)):
        req = request("managedpolicies", "UPDATE", user, old, new)
        assert (webhook_allows(req), vap_allows(policies, req)) == (expected, expected), (change, user)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("immutable", True),
        ("binaryData", {"x.bin": "AAEC", "extra.yaml": "LSBydWxlOiB4Cg=="}),
        ("data", {"padlock-policies.yaml": "- rule: x\n"}),
        ("metadata.finalizers", ["someone/else"]),
        ("metadata.ownerReferences", []),
        ("metadata.generateName", "mine-"),
        ("metadata.labels", {"padlock.dev/ruleset": "padlock-rules"}),
        ("metadata.annotations", {"padlock.dev/content-hash": "sha256:1", "note": "y"}),
    ],
)
def test_configmap_fields_are_locked_for_a_tenant_and_only_references_and_finalizers_free_for_the_gc(
    policies: list[Vap], field: str, value: Any
) -> None:
    old = full_configmap()
    old.pop("binaryData")
    new = copy.deepcopy(old)
    *parents, leaf = field.split(".")
    target = new
    for part in parents:
        target = target[part]
    target[leaf] = value
    gc_may = field in ("metadata.finalizers", "metadata.ownerReferences")
    for user, expected in ((TENANT, False), (GC, gc_may), (OPERATOR, True)):
        req = request("configmaps", "UPDATE", user, old, new)
        assert (webhook_allows(req), vap_allows(policies, req)) == (expected, expected), (field, user)


# ---------------------------------------------------------------------------------------------
# Creates and deletes


def _unlabelled(name: str, namespace: str = "falco") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {"x.yaml": "[]"}}


@pytest.mark.parametrize(
    ("obj", "operator", "gc", "tenant"),
    [
        (full_configmap("padlock-rules"), True, False, False),
        (full_configmap("padlock-rules-3"), True, False, False),
        (full_configmap("padlock-rules-4"), False, False, False),  # beyond falco.rulesShards
        (full_configmap("padlock-tuner-ca"), True, False, False),  # the tuner intake's CA, the operator's too
        (full_configmap("other"), False, False, False),  # labelled: only the operator, which may not use it
        (_unlabelled("padlock-rules"), True, False, False),
        (_unlabelled("padlock-rules-1"), True, False, False),
        (_unlabelled("padlock-rules-17"), False, False, False),
        (_unlabelled("padlock-rules-x"), False, True, True),
        (_unlabelled("padlock-rulesx"), False, True, True),
        (_unlabelled("falco-config"), False, True, True),
        (_unlabelled("padlock-rules-1", namespace="team-a"), True, True, True),
    ],
    ids=lambda v: v["metadata"]["namespace"] + "/" + v["metadata"]["name"] if isinstance(v, dict) else str(v),
)
def test_configmap_creates_get_the_same_intended_verdict(
    policies: list[Vap], obj: dict[str, Any], operator: bool, gc: bool, tenant: bool
) -> None:
    for user, expected in ((OPERATOR, operator), (GC, gc), (TENANT, tenant)):
        req = request("configmaps", "CREATE", user, None, obj)
        assert (webhook_allows(req), vap_allows(policies, req)) == (expected, expected), user


def test_deletes_are_the_operators_and_the_garbage_collectors(policies: list[Vap]) -> None:
    for resource, obj in (("managedpolicies", full_managed_policy()), ("configmaps", full_configmap())):
        for user, expected in ((OPERATOR, True), (GC, True), (lock.GARBAGE_COLLECTOR_USERNAMES[1], True),
                               (TENANT, False), ("system:serviceaccount:kube-system:other", False)):
            req = request(resource, "DELETE", user, obj, None)
            assert (webhook_allows(req), vap_allows(policies, req)) == (expected, expected), (resource, user)
    foreign = _unlabelled("padlock-rules")
    req = request("configmaps", "DELETE", TENANT, foreign, None)
    assert webhook_allows(req) and vap_allows(policies, req)


def test_managed_policy_creates_are_the_operators_only(policies: list[Vap]) -> None:
    for user, expected in ((OPERATOR, True), (GC, False), (TENANT, False)):
        req = request("managedpolicies", "CREATE", user, None, full_managed_policy())
        assert (webhook_allows(req), vap_allows(policies, req)) == (expected, expected), user


def test_a_declaration_is_created_by_anyone_and_each_locked_field_added_to_it_is_refused_by_both(
    policies: list[Vap],
) -> None:
    full = full_managed_policy()
    declared = {"apiVersion": full["apiVersion"], "kind": full["kind"],
                "metadata": {"name": "declared", "labels": {"team": "sec"}, "annotations": {"note": "x"}},
                "spec": {k: full["spec"][k] for k in lock.USER_CHOICE_SPEC_FIELDS}}
    # As admission sees it: the API server has filled in the schema's defaults (crds/).
    crd = yaml.safe_load((REPO / "crds" / "padlock.dev_managedpolicies.yaml").read_text())
    spec_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    defaults = {k: v["default"] for k, v in spec_schema.items() if "default" in v}
    assert defaults == lock.SPEC_DEFAULTS
    for obj in (declared, {**declared, "spec": {**declared["spec"], **defaults}}):
        for user in (TENANT, GC, OPERATOR):
            req = request("managedpolicies", "CREATE", user, None, obj)
            assert (webhook_allows(req), vap_allows(policies, req)) == (True, True), (user, obj["spec"])
    extras: list[tuple[str, dict[str, Any]]] = [
        (f"spec.{k}", {**declared, "spec": {**declared["spec"], k: v}})
        for k, v in full["spec"].items() if k not in lock.USER_CHOICE_SPEC_FIELDS
    ]
    extras += [(f"spec.{k} off its default", {**declared, "spec": {**declared["spec"], k: not v}})
               for k, v in lock.SPEC_DEFAULTS.items() if isinstance(v, bool)]
    for key in ("labels", "annotations"):
        meta = {**declared["metadata"], key: {**declared["metadata"][key], "padlock.dev/x": "1"}}
        extras.append((f"metadata.{key}", {**declared, "metadata": meta}))
    for key in ("generateName", "finalizers", "ownerReferences"):
        extras.append((f"metadata.{key}", {**declared, "metadata": {**declared["metadata"], key: full["metadata"][key]}}))
    assert len(extras) >= 9
    for what, obj in extras:
        req = request("managedpolicies", "CREATE", TENANT, None, obj)
        assert (webhook_allows(req), vap_allows(policies, req)) == (False, False), what


def test_removing_or_adding_the_managed_by_label_is_locked_both_ways(policies: list[Vap]) -> None:
    labelled = full_configmap()
    bare = copy.deepcopy(labelled)
    del bare["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    for old, new in ((labelled, bare), (bare, labelled)):
        req = request("configmaps", "UPDATE", TENANT, old, new)
        assert (webhook_allows(req), vap_allows(policies, req)) == (False, False)


def test_shard_count_and_names_follow_the_chart_values() -> None:
    policies = [Vap(p) for p in _helm_template("falco.rulesShards=1", "falco.rulesConfigMap=rules.d",
                                               "falco.namespace=security")]
    target = lock.PublishTarget(namespace="security", base="rules.d", shards=1)
    assert target.names() == ("rules.d", "rules.d-1")
    for name, operator, tenant in (("rules.d-1", True, False), ("rules.d-2", False, False),
                                   ("rulesxd-1", False, True), ("rules.d", True, False)):
        for user, expected in ((OPERATOR, operator), (TENANT, tenant)):
            req = request("configmaps", "CREATE", user, None, _unlabelled(name, "security"))
            webhook = lock.check_reserved_name(namespace="security", new=req["object"], operation="CREATE",
                                               username=user, target=target) is None
            assert (webhook, vap_allows(policies, req)) == (expected, expected), (name, user)
