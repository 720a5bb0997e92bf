"""The lock on Padlock's own objects: who may change what in a ManagedPolicy or a generated ConfigMap.

Pure: the admission webhook (``padlock.webhook.handlers``) passes the old and new object, the
operation, the sub-resource and the requesting username, and gets back the list of violations with
field paths and the message to show the user. The ValidatingAdmissionPolicy in
``charts/padlock/templates/lock-policy.yaml`` states the same rules in CEL so the lock holds while
the webhook is down; keep the two in step.

Rules (PRODUCT.md, "ManagedPolicy: Locked"):

* The operator identity may do anything.
* Anyone else may UPDATE a ManagedPolicy only in its user-choice fields: ``spec.enabled``,
  ``spec.disabledRules``, ``spec.scope``, and labels/annotations outside the ``padlock.dev/``
  prefix. Bookkeeping written by the API server (managedFields, resourceVersion, generation, ...)
  is ignored.
* Anyone else may not CREATE or DELETE a ManagedPolicy, nor write its ``status``.
* Generated ConfigMaps (label ``app.kubernetes.io/managed-by: padlock``) may be created, changed or
  deleted only by the operator.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

DEFAULT_OPERATOR_USERNAME: Final = "system:serviceaccount:padlock-system:padlock"
"""The operator's identity in tests and in the chart's default install."""

MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "padlock"
PROTECTED_PREFIX: Final = "padlock.dev/"
"""Labels and annotations under this prefix carry the operator's bookkeeping, so they are locked."""

USER_CHOICE_SPEC_FIELDS: Final = ("enabled", "disabledRules", "scope")
"""The only spec fields of a ManagedPolicy a user may change (design.md, "User-choice spec fields")."""

# Written by the API server or by clients as a side effect of any write; a change there is not an
# edit of the policy, and a server-side apply always touches managedFields.
IGNORED_METADATA_FIELDS: Final = frozenset(
    {
        "managedFields",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "uid",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)

MAX_LISTED_PATHS: Final = 8
"""How many changed paths a rejection message names before it says "and N more"."""

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
Change = Literal["changed", "added", "removed"]


@dataclass(frozen=True)
class Violation:
    """One locked thing a request tried to change.

    ``path`` is a field path in kubectl's style (``spec.rules[3].condition``,
    ``metadata.labels["padlock.dev/catalog"]``); an empty path means the whole object (create or
    delete).
    """

    path: str
    change: Change

    def describe(self) -> str:
        if not self.path:
            return "the object"
        return f"{self.path} ({self.change})"


@dataclass(frozen=True)
class Identity:
    """Who counts as the operator. ``operator_username`` comes from configuration (chart values)."""

    operator_username: str = DEFAULT_OPERATOR_USERNAME

    def is_operator(self, username: str | None) -> bool:
        return username == self.operator_username


# ---------------------------------------------------------------------------------------------
# ManagedPolicy


def check_managed_policy(
    *,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    operation: str,
    username: str | None,
    subresource: str | None = None,
    identity: Identity = Identity(),
) -> list[Violation]:
    """Return the locked changes in a request on a ManagedPolicy; empty means allowed."""
    if identity.is_operator(username):
        return []
    if operation == "CREATE" or operation == "DELETE":
        return [Violation("", "added" if operation == "CREATE" else "removed")]
    if operation != "UPDATE" or old is None or new is None:
        return []
    if subresource == "status":
        # The status sub-resource only ever persists status; every change there is the operator's.
        return list(_diff("status", old.get("status", _ABSENT), new.get("status", _ABSENT)))
    if subresource:
        return []
    violations: list[Violation] = []
    old_spec = _as_mapping(old.get("spec"))
    new_spec = _as_mapping(new.get("spec"))
    for key in _union_keys(old_spec, new_spec):
        if key in USER_CHOICE_SPEC_FIELDS:
            continue
        violations.extend(_diff(_join("spec", key), old_spec.get(key, _ABSENT), new_spec.get(key, _ABSENT)))
    violations.extend(
        _metadata_violations(_as_mapping(old.get("metadata")), _as_mapping(new.get("metadata")))
    )
    for key in _union_keys(old, new):
        # status is reset by the API server on a main-resource write, so only other top-level keys count.
        if key in ("spec", "metadata", "status", "apiVersion", "kind"):
            continue
        violations.extend(_diff(_join("", key), old.get(key, _ABSENT), new.get(key, _ABSENT)))
    return violations


def _metadata_violations(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Violation]:
    violations: list[Violation] = []
    for key in _union_keys(old, new):
        if key in IGNORED_METADATA_FIELDS:
            continue
        if key in ("labels", "annotations"):
            old_map = _as_mapping(old.get(key))
            new_map = _as_mapping(new.get(key))
            for name in _union_keys(old_map, new_map):
                if not name.startswith(PROTECTED_PREFIX):
                    continue
                violations.extend(
                    _diff(f'metadata.{key}["{name}"]', old_map.get(name, _ABSENT), new_map.get(name, _ABSENT))
                )
            continue
        violations.extend(_diff(f"metadata.{key}", old.get(key, _ABSENT), new.get(key, _ABSENT)))
    return violations


def managed_policy_message(name: str, operation: str, violations: Sequence[Violation]) -> str:
    """The rejection text: what is locked, that Padlock manages it, and how to proceed."""
    target = f'managedpolicy "{name}"'
    if operation == "CREATE":
        what = "ManagedPolicy objects are created only by the Padlock operator"
    elif operation == "DELETE":
        what = f"{target} is managed by Padlock and cannot be deleted (disable it with spec.enabled: false)"
    else:
        what = f"{target} is managed by Padlock and locked; this request changes {_list_paths(violations)}"
    return (
        f"{what}. Only spec.enabled, spec.disabledRules, spec.scope and labels/annotations outside "
        f"{PROTECTED_PREFIX} may be changed. To change anything else, copy it into a CustomPolicy: "
        f"padlock copy managedpolicy/{name} my-{name} (or: kubectl get managedpolicy {name} -o yaml, "
        f"then create a CustomPolicy with spec.basedOn.managedPolicy: {name})"
    )


# ---------------------------------------------------------------------------------------------
# Generated ConfigMaps


def is_generated_configmap(obj: Mapping[str, Any] | None) -> bool:
    """True when ``obj`` carries the label the operator puts on the ConfigMaps it publishes."""
    if obj is None:
        return False
    labels = _as_mapping(_as_mapping(obj.get("metadata")).get("labels"))
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE


def check_generated_configmap(
    *,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    operation: str,
    username: str | None,
    identity: Identity = Identity(),
) -> list[Violation]:
    """Return the changes a non-operator request makes to a generated ConfigMap; empty means allowed.

    A ConfigMap is in scope when either its old or its new version carries the managed-by label, so
    removing the label is itself a locked change.
    """
    if identity.is_operator(username):
        return []
    if not (is_generated_configmap(old) or is_generated_configmap(new)):
        return []
    if operation == "CREATE" or operation == "DELETE":
        return [Violation("", "added" if operation == "CREATE" else "removed")]
    if operation != "UPDATE" or old is None or new is None:
        return []
    violations: list[Violation] = []
    for key in _union_keys(old, new):
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata":
            old_meta = _as_mapping(old.get("metadata"))
            new_meta = _as_mapping(new.get("metadata"))
            for mkey in _union_keys(old_meta, new_meta):
                if mkey in IGNORED_METADATA_FIELDS:
                    continue
                violations.extend(
                    _diff(_join("metadata", mkey), old_meta.get(mkey, _ABSENT), new_meta.get(mkey, _ABSENT))
                )
            continue
        violations.extend(_diff(_join("", key), old.get(key, _ABSENT), new.get(key, _ABSENT)))
    return violations


def configmap_message(
    namespace: str | None, name: str, operation: str, violations: Sequence[Violation]
) -> str:
    where = f'configmap "{namespace}/{name}"' if namespace else f'configmap "{name}"'
    if operation == "CREATE":
        what = f"{where} carries {MANAGED_BY_LABEL}: {MANAGED_BY_VALUE}; only the Padlock operator creates such ConfigMaps"
    elif operation == "DELETE":
        what = f"{where} is generated by Padlock and cannot be deleted by hand"
    else:
        what = f"{where} is generated by Padlock and locked; this request changes {_list_paths(violations)}"
    return (
        f"{what}. Its content is rendered from RuleSource, ManagedPolicy, CustomPolicy and exception "
        f"objects: change those instead (see padlock render), and the operator republishes it"
    )


# ---------------------------------------------------------------------------------------------
# Structural diff with field paths


class _Absent:
    """Marks a key missing on one side, as opposed to a key present with a null value."""

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Final = _Absent()


def _diff(path: str, old: Any, new: Any) -> Iterator[Violation]:
    """Yield the leaf-most paths where ``old`` and ``new`` differ."""
    if old is _ABSENT and new is _ABSENT:
        return
    if old is _ABSENT:
        yield Violation(path, "added")
        return
    if new is _ABSENT:
        yield Violation(path, "removed")
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in _union_keys(old, new):
            yield from _diff(_join(path, key), old.get(key, _ABSENT), new.get(key, _ABSENT))
        return
    if isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            yield from _diff(
                f"{path}[{index}]",
                old[index] if index < len(old) else _ABSENT,
                new[index] if index < len(new) else _ABSENT,
            )
        return
    # bool is an int in Python: compare types too, so true -> 1 is a change.
    if type(old) is not type(new) or old != new:
        yield Violation(path, "changed")


def _union_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Keys of both, old order first then new ones: messages list paths in a stable order."""
    keys = list(old)
    keys.extend(key for key in new if key not in old)
    return keys


def _join(path: str, key: str) -> str:
    """``path.key``, or ``path["key"]`` for keys with dots or slashes (ConfigMap file names, labels)."""
    if key.replace("_", "").replace("-", "").isalnum():
        return f"{path}.{key}" if path else key
    return f'{path}["{key}"]'


def _as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list_paths(violations: Sequence[Violation]) -> str:
    paths = [v.describe() for v in violations[:MAX_LISTED_PATHS]]
    more = len(violations) - MAX_LISTED_PATHS
    if more > 0:
        paths.append(f"and {more} more")
    return ", ".join(paths)
