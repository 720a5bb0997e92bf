"""padlock.policy.lock: who may change what in a ManagedPolicy and in a generated ConfigMap.

Covers: each operator-owned spec field, each user-choice field, labels and annotations with and
without the padlock.dev/ prefix, API-server bookkeeping, the operator versus everyone else, create,
update, delete, the status sub-resource, the rejection message, and ConfigMaps.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from padlock.policy import lock

OPERATOR = lock.DEFAULT_OPERATOR_USERNAME
ADMIN = "admin"
TENANT = "alice"


def managed_policy() -> dict[str, Any]:
    return {
        "apiVersion": "padlock.dev/v1alpha1",
        "kind": "ManagedPolicy",
        "metadata": {
            "name": "credential-access",
            "resourceVersion": "10",
            "generation": 3,
            "uid": "u-1",
            "labels": {
                "app.kubernetes.io/managed-by": "padlock",
                "padlock.dev/catalog": "default",
                "team": "sec",
            },
            "annotations": {"padlock.dev/source-version": "5.0.1", "note": "x"},
            "managedFields": [{"manager": "padlock", "operation": "Apply"}],
        },
        "spec": {
            "displayName": "Credential access",
            "description": "Rules tagged mitre_credential_access",
            "catalog": {"name": "default", "version": "1", "policy": "credential-access"},
            "source": {"ruleSource": "falco-rules", "version": "5.0.1"},
            "defaultEnabled": True,
            "rules": [
                {
                    "name": "Read sensitive file untrusted",
                    "condition": "open_read and sensitive_files",
                    "output": "o",
                    "priority": "WARNING",
                    "tags": ["mitre_credential_access"],
                    "enabled": True,
                    "desc": "d",
                    "source": "syscall",
                },
                {
                    "name": "Search private keys",
                    "condition": "spawned_process and grep_keys",
                    "output": "o2",
                    "priority": "NOTICE",
                    "tags": ["mitre_credential_access"],
                    "enabled": True,
                    "desc": "d2",
                    "source": "syscall",
                },
            ],
            "disabledRules": [],
        },
        "status": {"ruleCount": 2, "lastUpdated": "2024-01-01T00:00:00Z"},
    }


def check(
    old: Any, new: Any, *, op: str = "UPDATE", user: str = ADMIN, sub: str | None = None
) -> list[lock.Violation]:
    return lock.check_managed_policy(old=old, new=new, operation=op, username=user, subresource=sub)


def edited(**changes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    old = managed_policy()
    new = copy.deepcopy(old)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target: Any = new
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
        if value is DELETE:
            del target[leaf]
        else:
            target[leaf] = value
    return old, new


DELETE = object()


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"spec__displayName": "Mine"}, "spec.displayName"),
        ({"spec__description": "edited"}, "spec.description"),
        ({"spec__catalog__version": "2"}, "spec.catalog.version"),
        ({"spec__source__version": "6.0.0"}, "spec.source.version"),
        ({"spec__defaultEnabled": False}, "spec.defaultEnabled"),
        ({"spec__rules__1__condition": "always_true"}, "spec.rules[1].condition"),
        ({"spec__rules__0__priority": "DEBUG"}, "spec.rules[0].priority"),
        ({"spec__rules__0__output": "changed"}, "spec.rules[0].output"),
        ({"spec__rules__0__enabled": False}, "spec.rules[0].enabled"),
        ({"spec__rules__0__desc": DELETE}, "spec.rules[0].desc"),
        ({"spec__description": DELETE}, "spec.description"),
        ({"spec__newField": "x"}, "spec.newField"),
    ],
)
def test_every_operator_owned_spec_field_is_locked_for_admin_and_tenant(
    change: dict[str, Any], path: str
) -> None:
    old, new = edited(**change)
    for user in (ADMIN, TENANT):
        assert [v.path for v in check(old, new, user=user)] == [path]


def test_removing_a_rule_names_the_removed_index() -> None:
    old = managed_policy()
    new = copy.deepcopy(old)
    new["spec"]["rules"].pop()
    assert check(old, new) == [lock.Violation("spec.rules[1]", "removed")]


def test_adding_a_rule_names_the_added_index() -> None:
    old = managed_policy()
    new = copy.deepcopy(old)
    new["spec"]["rules"].append({"name": "mine", "condition": "evt.type=open"})
    assert check(old, new) == [lock.Violation("spec.rules[2]", "added")]


@pytest.mark.parametrize(
    "change",
    [
        {"spec__enabled": False},
        {"spec__disabledRules": ["Search private keys"]},
        {"spec__scope": {"namespaces": {"exclude": ["kube-system"]}}},
        {"metadata__labels__team": "platform"},
        {"metadata__labels__env": "prod"},
        {"metadata__labels__team": DELETE},
        {"metadata__annotations__note": "y"},
        {"metadata__annotations__kopf.zalando.org/last-handled-configuration": "{}"},
        {"metadata__resourceVersion": "11", "metadata__generation": 4},
        {"metadata__managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
    ],
)
def test_user_choice_fields_and_bookkeeping_may_be_changed_by_anyone(change: dict[str, Any]) -> None:
    old, new = edited(**change)
    for user in (ADMIN, TENANT):
        assert check(old, new, user=user) == []


def test_user_choices_together_with_a_locked_field_report_only_the_locked_field() -> None:
    old, new = edited(spec__enabled=False, spec__disabledRules=["x"], spec__rules__0__condition="true")
    assert [v.path for v in check(old, new)] == ["spec.rules[0].condition"]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"metadata__labels__padlock.dev/catalog": "mine"}, 'metadata.labels["padlock.dev/catalog"]'),
        ({"metadata__labels__padlock.dev/catalog": DELETE}, 'metadata.labels["padlock.dev/catalog"]'),
        ({"metadata__labels__padlock.dev/new": "x"}, 'metadata.labels["padlock.dev/new"]'),
        (
            {"metadata__annotations__padlock.dev/source-version": "1"},
            'metadata.annotations["padlock.dev/source-version"]',
        ),
        (
            {"metadata__annotations__padlock.dev/source-version": DELETE},
            'metadata.annotations["padlock.dev/source-version"]',
        ),
    ],
)
def test_labels_and_annotations_under_the_padlock_prefix_are_locked(
    change: dict[str, Any], path: str
) -> None:
    old, new = edited(**change)
    assert [v.path for v in check(old, new, user=TENANT)] == [path]


def test_removing_all_labels_reports_only_the_prefixed_ones() -> None:
    old, new = edited(metadata__labels=DELETE)
    assert [v.path for v in check(old, new)] == ['metadata.labels["padlock.dev/catalog"]']


def test_other_metadata_such_as_finalizers_and_owner_references_is_locked() -> None:
    old, new = edited(metadata__finalizers=["x"], metadata__ownerReferences=[])
    assert [v.path for v in check(old, new)] == ["metadata.finalizers", "metadata.ownerReferences"]


def test_the_operator_may_change_anything() -> None:
    old, new = edited(**{"spec__rules__0__condition": "x", "metadata__labels__padlock.dev/catalog": "y"})
    assert check(old, new, user=OPERATOR) == []
    assert check(None, new, op="CREATE", user=OPERATOR) == []
    assert check(old, None, op="DELETE", user=OPERATOR) == []
    assert check(old, new, user=OPERATOR, sub="status") == []


def test_the_operator_identity_is_configurable() -> None:
    old, new = edited(spec__description="y")
    identity = lock.Identity(operator_username="system:serviceaccount:sec:padlock-op")
    assert (
        lock.check_managed_policy(
            old=old,
            new=new,
            operation="UPDATE",
            username="system:serviceaccount:sec:padlock-op",
            identity=identity,
        )
        == []
    )
    # The default identity is no longer special once another one is configured.
    assert (
        lock.check_managed_policy(old=old, new=new, operation="UPDATE", username=OPERATOR, identity=identity)
        != []
    )


def test_a_username_that_only_resembles_the_operator_is_not_the_operator() -> None:
    old, new = edited(spec__description="y")
    for user in (OPERATOR + "x", "system:serviceaccount:padlock-system:padlock ", "padlock", None):
        assert check(old, new, user=user) != []


def test_create_and_delete_by_anyone_but_the_operator_are_denied() -> None:
    policy = managed_policy()
    for user in (ADMIN, TENANT):
        # A create is refused naming the locked fields it sets (a declaration sets none).
        created = check(None, policy, op="CREATE", user=user)
        assert lock.Violation("spec.rules", "added") in created
        assert all(v.change == "added" and v.path for v in created)
        assert check(policy, None, op="DELETE", user=user) == [lock.Violation("", "removed")]


def test_a_declaration_with_only_user_choices_may_be_created_by_anyone_for_the_operator_to_adopt() -> None:
    declared = {"apiVersion": "padlock.dev/v1alpha1", "kind": "ManagedPolicy",
                "metadata": {"name": "p", "labels": {"team": "sec"}, "annotations": {"argocd.argoproj.io/x": "y"}},
                "spec": {"enabled": False, "disabledRules": ["r"], "scope": {"namespaces": {"exclude": ["a"]}}}}
    for user in (ADMIN, TENANT):
        assert check(None, declared, op="CREATE", user=user) == []
    for extra, path in (({"spec": {**declared["spec"], "description": "x"}}, "spec.description"),
                        ({"metadata": {"name": "p", "labels": {"padlock.dev/catalog": "c"}}},
                         'metadata.labels["padlock.dev/catalog"]'),
                        ({"metadata": {"name": "p", "finalizers": ["x"]}}, "metadata.finalizers")):
        assert check(None, {**declared, **extra}, op="CREATE", user=TENANT) == [lock.Violation(path, "added")]


def test_status_writes_by_anyone_but_the_operator_are_denied() -> None:
    old, new = edited(status__ruleCount=99)
    assert check(old, new, user=ADMIN, sub="status") == [lock.Violation("status.ruleCount", "changed")]
    old, new = edited(status=DELETE)
    assert check(old, new, user=TENANT, sub="status") == [lock.Violation("status", "removed")]


def test_a_status_write_that_changes_nothing_is_allowed() -> None:
    old = managed_policy()
    assert check(old, copy.deepcopy(old), sub="status") == []


def test_status_differences_on_the_main_resource_are_ignored_because_the_api_server_drops_them() -> None:
    old, new = edited(status__ruleCount=99)
    assert check(old, new) == []


def test_a_type_change_counts_as_a_change() -> None:
    old, new = edited(spec__defaultEnabled=1)
    assert [v.path for v in check(old, new)] == ["spec.defaultEnabled"]


def test_an_unchanged_update_is_allowed() -> None:
    old = managed_policy()
    assert check(old, copy.deepcopy(old), user=TENANT) == []


def test_message_names_the_locked_fields_the_owner_and_the_way_out() -> None:
    old, new = edited(spec__rules__1__condition="true")
    message = lock.managed_policy_message("credential-access", "UPDATE", check(old, new))
    assert "spec.rules[1].condition (changed)" in message
    assert "managed by Padlock" in message
    assert "padlock copy managedpolicy/credential-access my-credential-access" in message
    assert "kubectl get managedpolicy credential-access -o yaml" in message
    assert "spec.enabled, spec.disabledRules, spec.scope" in message


def test_message_for_delete_and_create() -> None:
    assert "cannot be deleted" in lock.managed_policy_message("p", "DELETE", [lock.Violation("", "removed")])
    assert "created only by the Padlock operator" in lock.managed_policy_message("p", "CREATE", [])


def test_message_lists_a_bounded_number_of_paths() -> None:
    violations = [lock.Violation(f"spec.rules[{i}].condition", "changed") for i in range(20)]
    message = lock.managed_policy_message("p", "UPDATE", violations)
    assert "spec.rules[7].condition" in message
    assert "spec.rules[8].condition" not in message
    assert "and 12 more" in message


# ---------------------------------------------------------------------------------------------
# ConfigMaps


def configmap(labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "padlock-rules",
            "namespace": "falco",
            "resourceVersion": "5",
            "labels": {"app.kubernetes.io/managed-by": "padlock"} if labels is None else labels,
            "annotations": {"padlock.dev/content-hash": "abc"},
        },
        "data": {"50-falco-rules-falco_rules.yaml": "- rule: a\n", "padlock-policies.yaml": "[]\n"},
    }


def check_cm(old: Any, new: Any, *, op: str = "UPDATE", user: str = ADMIN) -> list[lock.Violation]:
    return lock.check_generated_configmap(old=old, new=new, operation=op, username=user)


def test_configmap_data_edits_by_admin_are_denied_with_the_file_name() -> None:
    old = configmap()
    new = copy.deepcopy(old)
    new["data"]["padlock-policies.yaml"] = "- rule: x\n"
    assert check_cm(old, new) == [lock.Violation('data["padlock-policies.yaml"]', "changed")]


def test_configmap_any_metadata_edit_is_denied_but_bookkeeping_is_not() -> None:
    old = configmap()
    new = copy.deepcopy(old)
    new["metadata"]["annotations"]["team"] = "x"
    assert [v.path for v in check_cm(old, new)] == ["metadata.annotations.team"]
    new = copy.deepcopy(old)
    new["metadata"]["resourceVersion"] = "6"
    assert check_cm(old, new) == []


def test_removing_the_managed_by_label_is_itself_locked() -> None:
    old = configmap()
    new = configmap(labels={})
    assert [v.path for v in check_cm(old, new)] == ['metadata.labels["app.kubernetes.io/managed-by"]']


def test_configmap_create_and_delete_by_others_are_denied_and_allowed_for_the_operator() -> None:
    cm = configmap()
    assert check_cm(None, cm, op="CREATE") == [lock.Violation("", "added")]
    assert check_cm(cm, None, op="DELETE") == [lock.Violation("", "removed")]
    assert check_cm(None, cm, op="CREATE", user=OPERATOR) == []
    assert check_cm(cm, None, op="DELETE", user=OPERATOR) == []
    changed = copy.deepcopy(cm)
    changed["data"] = {}
    assert check_cm(cm, changed, user=OPERATOR) == []


def test_configmaps_without_the_label_are_not_locked() -> None:
    plain = configmap(labels={"app": "x"})
    other = copy.deepcopy(plain)
    other["data"] = {}
    assert check_cm(plain, other) == []
    assert check_cm(None, plain, op="CREATE") == []
    assert check_cm(plain, None, op="DELETE") == []
    helm = configmap(labels={"app.kubernetes.io/managed-by": "Helm"})
    assert check_cm(helm, None, op="DELETE") == []


def test_configmap_message_says_what_to_change_instead() -> None:
    message = lock.configmap_message(
        "falco", "padlock-rules", "UPDATE", [lock.Violation('data["x"]', "changed")]
    )
    assert 'configmap "falco/padlock-rules"' in message
    assert 'data["x"] (changed)' in message
    assert "RuleSource, ManagedPolicy, CustomPolicy" in message
    assert "cannot be deleted" in lock.configmap_message("falco", "padlock-rules", "DELETE", [])
