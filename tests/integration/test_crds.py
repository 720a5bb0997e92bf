"""Padlock's generated CRDs on the real kube-apiserver.

Covers: every example is accepted by a server-side dry run; `kubectl get padlock` lists objects of
every kind; `kubectl explain` shows the models' docstrings; invalid objects (bad enum, missing
required field, value out of range, bad pattern, two sources at once and the other CEL rules) are
rejected with the schema's own message; status written through the status subresource survives
structural pruning (unknown status fields are pruned, status sent with the main resource is
ignored); the tenant cannot create cluster-scoped padlock objects even with a namespace Role over
all of them; printer columns of ManagedPolicy show ENABLED, RULES, VERSION and UPDATED as an age.

Objects created for real get unique names and are deleted afterwards: other integration tests run
the operator against the same API server.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from padlock.api import ManagedPolicyStatus, RuleSourceStatus, kinds
from padlock.api.common import Condition
from padlock.api.rulesource import HistoryEntry
from padlock.devenv.tools import Runner
from support_bodies import DELETE, edited

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "examples" / name).read_text())
    return data


def _unique(body: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(body)
    out["metadata"]["name"] = f"{out['metadata']['name']}-{secrets.token_hex(3)}"
    return out


def _apply(
    kubectl: Runner, body: dict[str, Any], *args: str, identity: str = "admin", check: bool = False
) -> Any:
    return kubectl("apply", "-f", "-", *args, identity=identity, input=json.dumps(body), check=check)


class Created:
    """Objects created by a test, deleted (finalizers stripped) at teardown."""

    def __init__(self, kubectl: Runner) -> None:
        self.kubectl = kubectl
        self.refs: list[tuple[str, str, str | None]] = []

    def create(self, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        args = ["-n", namespace] if namespace else []
        self.kubectl("create", "-f", "-", *args, input=json.dumps(body))
        kind = kinds.BY_KIND[body["kind"]]
        self.refs.append((f"{kind.plural}.padlock.dev", body["metadata"]["name"], namespace))
        return body

    def cleanup(self) -> None:
        for resource, name, namespace in reversed(self.refs):
            ns = ["-n", namespace] if namespace else []
            self.kubectl(
                "patch",
                resource,
                name,
                *ns,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
                check=False,
            )
            self.kubectl("delete", resource, name, *ns, "--ignore-not-found", "--wait=false", check=False)


@pytest.fixture
def created(kubectl: Runner, crds_installed: list[str]) -> Iterator[Created]:
    tracker = Created(kubectl)
    yield tracker
    tracker.cleanup()


def test_crds_for_every_kind_are_established(crds_installed: list[str]) -> None:
    assert sorted(crds_installed) == sorted(k.crd_name for k in kinds.ALL)


def test_plain_kubectl_apply_of_the_crds_directory_works(kubectl: Runner, crds_installed: list[str]) -> None:
    # What the README tells users to run: client-side apply, last-applied annotation included.
    result = kubectl("apply", "-f", str(REPO / "crds"), check=False)
    assert result.returncode == 0, result.stderr
    for kind in kinds.ALL:
        assert f"customresourcedefinition.apiextensions.k8s.io/{kind.crd_name}" in result.stdout


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_accepted_by_a_server_side_dry_run(
    path: Path, kubectl: Runner, crds_installed: list[str], namespace: str
) -> None:
    result = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path), check=False)
    assert result.returncode == 0, result.stderr
    assert "created (server dry run)" in result.stdout


def test_kubectl_get_padlock_lists_objects_of_every_kind(
    kubectl: Runner, created: Created, namespace: str
) -> None:
    picks = {
        "RuleSource": "rulesource-oci.yaml",
        "ManagedPolicy": "managedpolicy-credential-access.yaml",
        "CustomPolicy": "custompolicy-based-on.yaml",
        "PolicyException": "policyexception-nginx-shell.yaml",
        "ClusterPolicyException": "clusterpolicyexception-expiring.yaml",
        "TuningSuggestion": "tuningsuggestion-nginx-shell.yaml",
    }
    names = {}
    for kind, example in picks.items():
        body = created.create(_unique(_example(example)), namespace if kinds.BY_KIND[kind].namespaced else None)
        names[kind] = body["metadata"]["name"]
    listed = set(kubectl("get", "padlock", "--all-namespaces", "-o", "name").stdout.split())
    for kind, name in names.items():
        assert f"{kinds.BY_KIND[kind].singular}.padlock.dev/{name}" in listed, (kind, sorted(listed))
    # short names resolve too
    for kind in kinds.ALL:
        args = ["-n", namespace] if kind.namespaced else []
        out = kubectl("get", kind.short_names[0], *args, "-o", "name").stdout
        assert names[kind.kind] in out


def test_kubectl_explain_shows_the_field_descriptions(kubectl: Runner, crds_installed: list[str]) -> None:
    spec = kubectl("explain", "managedpolicy.spec").stdout
    assert "User choice: run (true) or stop (false) the policy" in spec
    assert "disabledRules" in spec and "Operator-owned" in spec
    load_order = " ".join(kubectl("explain", "rulesource.spec.loadOrder").stdout.split())
    assert "Where this source's files sit among all rules files (0-99, lower loads first)." in load_order
    match = " ".join(kubectl("explain", "policyexception.spec.match").stdout.split())
    assert "DESCRIPTION: Events to silence." in match
    assert "images <[]string> Container image repositories (`container.image.repository`)" in match


REJECTIONS = [
    (
        "bad enum",
        "rulesource-oci.yaml",
        "spec.updatePolicy",
        "Sometimes",
        'spec.updatePolicy: Unsupported value: "Sometimes": supported values: "Automatic", "Manual"',
    ),
    (
        "missing required field",
        "policyexception-nginx-shell.yaml",
        "spec.reason",
        DELETE,
        "spec.reason: Required value",
    ),
    (
        "out of range",
        "rulesource-oci.yaml",
        "spec.loadOrder",
        100,
        "spec.loadOrder: Invalid value: 100: spec.loadOrder in body should be less than or equal to 99",
    ),
    (
        "bad digest pattern",
        "rulesource-oci-manual.yaml",
        "spec.verify.digests",
        ["md5:0"],
        "spec.verify.digests[0]: Invalid value: \"md5:0\": spec.verify.digests[0] in body should match '^sha256:[a-f0-9]{64}$'",
    ),
    (
        "two sources at once",
        "rulesource-oci.yaml",
        "spec.http",
        {"url": "https://example.com/rules.yaml"},
        "exactly one of spec.oci, spec.http or spec.configMap must be set",
    ),
    (
        "tag and semver",
        "rulesource-oci.yaml",
        "spec.oci.semver",
        "~5.1",
        "exactly one of oci.tag or oci.semver must be set",
    ),
    (
        "approved version without Manual",
        "rulesource-oci.yaml",
        "spec.approvedVersion",
        "5.0.1",
        "spec.approvedVersion: Invalid value: approvedVersion only applies with updatePolicy Manual",
    ),
    ("interval too short", "rulesource-oci.yaml", "spec.interval", "500ms", "interval must be at least"),
    (
        "both match forms",
        "policyexception-native.yaml",
        "spec.match.images",
        ["nginx"],
        "match must use either fields/comps/values or images/containerNames/processNames",
    ),
    (
        "values row too short",
        "policyexception-native.yaml",
        "spec.match.values",
        [["restic"]],
        "every values row must have one value per field",
    ),
    (
        "namespace included and excluded",
        "custompolicy-based-on.yaml",
        "spec.scope.namespaces.exclude",
        ["payments"],
        "a namespace cannot be both included and excluded",
    ),
    (
        "empty custom policy",
        "custompolicy-frozen.yaml",
        "spec.basedOn",
        DELETE,
        "a custom policy needs at least one of basedOn, rules or falcoRules",
    ),
    (
        "bad priority",
        "managedpolicy-credential-access.yaml",
        "spec.rules",
        [{"name": "r", "condition": "evt.type = open", "priority": "Loud"}],
        'spec.rules[0].priority: Unsupported value: "Loud"',
    ),
]


@pytest.mark.parametrize(
    ("case", "example", "path", "value", "message"), REJECTIONS, ids=[r[0] for r in REJECTIONS]
)
def test_invalid_object_is_rejected_with_the_schema_message(
    case: str,
    example: str,
    path: str,
    value: Any,
    message: str,
    kubectl: Runner,
    crds_installed: list[str],
    namespace: str,
) -> None:
    body = edited(_example(example), path, value)
    result = _apply(kubectl, body, "--dry-run=server", "-n", namespace)
    assert result.returncode != 0, f"{case}: accepted"
    assert "is invalid" in result.stderr
    assert message in result.stderr, result.stderr


def test_status_written_through_the_subresource_survives_pruning(kubectl: Runner, created: Created) -> None:
    body = created.create(_unique(_example("rulesource-oci.yaml")))
    name = body["metadata"]["name"]
    now = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
    status = RuleSourceStatus(
        observed_generation=1,
        current_version="5.0.1",
        current_digest="sha256:" + "a" * 64,
        last_check_time=now,
        history=[HistoryEntry(version="5.0.1", digest="sha256:" + "a" * 64, time=now, added=3)],
        conditions=[
            Condition(
                type="Ready",
                status="True",
                reason="Synced",
                message="5.0.1 in use",
                observed_generation=1,
                last_transition_time=now,
            )
        ],
    ).to_dict()
    # kopf would put its progress here if it were not configured to use annotations: pruned.
    patch = {"status": {**status, "kopf": {"progress": {"x": 1}}}}
    kubectl("patch", "rulesource", name, "--subresource=status", "--type=merge", "-p", json.dumps(patch))
    # status sent with the main resource is ignored by the API server
    kubectl(
        "patch", "rulesource", name, "--type=merge", "-p", json.dumps({"status": {"currentVersion": "9.9.9"}})
    )
    stored = json.loads(kubectl("get", "rulesource", name, "-o", "json").stdout)["status"]
    assert stored == status
    assert RuleSourceStatus.model_validate(stored).current_version == "5.0.1"


def test_tenant_cannot_create_cluster_scoped_padlock_objects(
    kubectl: Runner, crds_installed: list[str], namespace: str
) -> None:
    # Even a namespace Role over every padlock resource cannot grant cluster-scoped ones.
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "padlock-editor", "namespace": namespace},
        "rules": [
            {
                "apiGroups": ["padlock.dev"],
                "resources": [k.plural for k in kinds.ALL],
                "verbs": ["get", "list", "create", "update", "patch", "delete"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "padlock-editor", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "padlock-editor"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "tenant"}],
    }
    kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [role, binding]})
    )
    ok = kubectl(
        "create",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        str(REPO / "examples/policyexception-nginx-shell.yaml"),
        identity="tenant",
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    for example in (
        "rulesource-oci.yaml",
        "managedpolicy-credential-access.yaml",
        "custompolicy-based-on.yaml",
        "clusterpolicyexception-expiring.yaml",
    ):
        body = _example(example)
        kind = kinds.BY_KIND[body["kind"]]
        result = kubectl(
            "create", "--dry-run=server", "-f", "-", identity="tenant", input=json.dumps(body), check=False
        )
        assert result.returncode != 0, f"tenant created a {kind.kind}"
        assert (
            f'User "tenant" cannot create resource "{kind.plural}" in API group "padlock.dev" at the cluster scope'
            in result.stderr
        )


def test_managed_policy_printer_columns_show_updated_as_an_age(kubectl: Runner, created: Created) -> None:
    body = created.create(_unique(_example("managedpolicy-credential-access.yaml")))
    name = body["metadata"]["name"]
    fourteen_days_ago = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=14, hours=1)
    status = ManagedPolicyStatus(
        enabled=True,
        last_updated=fourteen_days_ago,
        source_version="5.0.1",
        rule_count=2,
        enabled_rule_count=1,
    ).to_dict()
    kubectl(
        "patch",
        "managedpolicy",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    lines = kubectl("get", "managedpolicies", name).stdout.splitlines()
    assert lines[0].split() == ["NAME", "ENABLED", "RULES", "VERSION", "UPDATED", "AGE"]
    row = lines[1].split()
    assert row[:5] == [name, "true", "2", "5.0.1", "14d"]
    wide = kubectl("get", "mp", name, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["ACTIVE", "SOURCE", "READY"]
    assert wide[1].split()[-2:] == ["1", "falco-rules"]  # READY is empty until the operator reports
