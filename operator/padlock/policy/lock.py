"""The lock on Padlock's own objects: one table of who may change what, and the checks derived from it.

Pure. ``LOCK_TABLE`` lists, for the locked kinds (ManagedPolicy, the generated rules ConfigMaps),
every field and every operation with the writers allowed to change it. Two consumers are derived
from that one table and must give the same verdict on every request:

* the admission webhook (``padlock.webhook.handlers``) calls ``check_managed_policy``,
  ``check_generated_configmap`` and ``check_reserved_name`` below, which walk the request's old and
  new object and look every changed path up in the table;
* the ValidatingAdmissionPolicies (``charts/padlock/templates/lock-policy.yaml``, so the lock holds
  while the webhook is down) are generated from the same table by ``padlock.policy.lock_policy``
  (``make lock-policy``; ``make verify`` fails when the checked-in template differs).
  ``tests/unit/policy/test_lock_table.py`` walks every field of the models and of a ConfigMap and
  demands the same verdict from both.

Writers (docs/security.md shows the table):

* ``operator``: the operator's ServiceAccount may change everything it owns; its only limit is that it
  may create ConfigMaps in the Falco namespace only under the generated names (RBAC cannot restrict
  ``create`` by name, so the lock does).
* ``garbage-collector``: Kubernetes' garbage collector may delete locked objects and drop dangling
  owner references and its own finalizers, so deleting a RuleSource removes the ConfigMaps it owned.
  Only the operator writes owner references, so the garbage collector only ever acts for it.
* ``anyone``: whoever RBAC lets write the object: ManagedPolicy user-choice fields (``spec.enabled``,
  ``spec.disabledRules``, ``spec.scope``) and labels/annotations outside ``padlock.dev/``.
* ``api-server``: bookkeeping the API server writes on any write (resourceVersion, managedFields, ...)
  or never lets change (name, uid); the lock ignores it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from padlock.api import kinds
from padlock.api.managedpolicy import ManagedPolicySpec

DEFAULT_OPERATOR_USERNAME: Final = "system:serviceaccount:padlock-system:padlock"
"""The operator's identity in tests and in the chart's default install."""

GARBAGE_COLLECTOR_USERNAMES: Final = (
    "system:serviceaccount:kube-system:generic-garbage-collector",
    "system:kube-controller-manager",
)
"""The garbage collector's identities: its own ServiceAccount when kube-controller-manager runs with
``--use-service-account-credentials`` (kubeadm and most distributions), the controller manager's user
otherwise."""

MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "padlock"
PROTECTED_PREFIX: Final = "padlock.dev/"
"""Labels and annotations under this prefix carry the operator's bookkeeping, so they are locked."""

USER_CHOICE_SPEC_FIELDS: Final = ("enabled", "disabledRules", "scope")
"""The only spec fields of a ManagedPolicy a user may change (design.md, "User-choice spec fields")."""

DEFAULT_FALCO_NAMESPACE: Final = "falco"
DEFAULT_RULES_CONFIGMAP: Final = "padlock-rules"
DEFAULT_RULES_SHARDS: Final = kinds.DEFAULT_RULES_SHARDS
"""ConfigMaps the Falco mount declares besides the first (``padlock-rules-1`` .. ``-3``), as the
shipped Falco values (charts/falco-values/padlock.yaml) and the chart's ``falco.rulesShards``:
four ConfigMaps in all, the render's default ``max_shards``."""

MAX_LISTED_PATHS: Final = 8
"""How many changed paths a rejection message names before it says "and N more"."""

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
Change = Literal["changed", "added", "removed"]
Writer = Literal["operator", "garbage-collector", "anyone", "api-server"]
Role = Literal["operator", "garbage-collector", "anyone"]
LockedKind = Literal["ManagedPolicy", "ConfigMap"]
KeySet = Literal["all", "padlock", "other"]

OPERATOR: Final[Writer] = "operator"
GARBAGE_COLLECTOR: Final[Writer] = "garbage-collector"
ANYONE: Final[Writer] = "anyone"
API_SERVER: Final[Writer] = "api-server"


# ---------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class FieldRule:
    """Who may change one field of a locked kind (on UPDATE).

    ``parts`` is the field's path (``("spec", "rules")``); a ``*`` last part stands for every other
    key of that parent (what a newer API version or a missing model field would add). ``keys``
    splits a string map (labels, annotations) by the ``padlock.dev/`` prefix. ``subresource`` is
    ``"status"`` for fields written only through the status sub-resource.
    """

    kind: LockedKind
    parts: tuple[str, ...]
    writers: tuple[Writer, ...]
    why: str
    keys: KeySet = "all"
    subresource: str = ""

    @property
    def path(self) -> str:
        base = ".".join(self.parts)
        if self.keys == "padlock":
            return f"{base}[{PROTECTED_PREFIX}*]"
        if self.keys == "other":
            return f"{base}[not {PROTECTED_PREFIX}*]"
        return base

    @property
    def locked(self) -> bool:
        """True when someone besides the operator is refused a change here."""
        return ANYONE not in self.writers and API_SERVER not in self.writers

    def allows(self, role: Role) -> bool:
        return role in self.writers or ANYONE in self.writers or API_SERVER in self.writers


@dataclass(frozen=True)
class OperationRule:
    """Who may CREATE or DELETE a locked object. ``scope`` says which objects the row covers."""

    kind: LockedKind
    operation: Literal["CREATE", "DELETE"]
    scope: str
    writers: tuple[Writer, ...]
    why: str


_OP_ONLY: Final[tuple[Writer, ...]] = (OPERATOR,)
_OP_GC: Final[tuple[Writer, ...]] = (OPERATOR, GARBAGE_COLLECTOR)

# ObjectMeta (k8s.io/apimachinery ObjectMeta, every field; a unit test compares with the client's
# V1ObjectMeta) -> writers on a locked object; labels and annotations are split per kind below.
_METADATA: Final[tuple[tuple[str, tuple[Writer, ...], str], ...]] = (
    ("name", (API_SERVER,), "immutable: the API server refuses a change"),
    ("namespace", (API_SERVER,), "immutable: the API server refuses a change"),
    ("uid", (API_SERVER,), "set by the API server"),
    ("creationTimestamp", (API_SERVER,), "set by the API server"),
    ("deletionTimestamp", (API_SERVER,), "set by the API server on delete"),
    ("deletionGracePeriodSeconds", (API_SERVER,), "set by the API server on delete"),
    ("resourceVersion", (API_SERVER,), "changes on every write"),
    ("generation", (API_SERVER,), "counts spec changes, including users' choices"),
    ("managedFields", (API_SERVER,), "every server-side apply writes it"),
    ("selfLink", (API_SERVER,), "deprecated, always empty"),
    ("generateName", _OP_ONLY, "only the operator names its objects"),
    ("ownerReferences", _OP_GC, "only the operator says what owns its objects; the garbage collector drops "
     "dangling references"),
    ("finalizers", _OP_GC, "a foreign finalizer would block the operator's deletes; the garbage collector "
     "removes its own (orphan, foregroundDeletion)"),
    ("*", _OP_ONLY, "any metadata field not listed here"),
)
METADATA_FIELDS: Final = (*tuple(name for name, _w, _why in _METADATA if name != "*"), "labels", "annotations")
"""Every ObjectMeta field the table names."""


def _managed_policy_rules() -> tuple[FieldRule, ...]:
    rules: list[FieldRule] = []
    for name, field in ManagedPolicySpec.model_fields.items():
        alias = field.alias or name
        if alias in USER_CHOICE_SPEC_FIELDS:
            rules.append(FieldRule("ManagedPolicy", ("spec", alias), (ANYONE,), "the user's choice"))
        else:
            rules.append(FieldRule("ManagedPolicy", ("spec", alias), _OP_ONLY,
                                   "rendered from the catalog and the RuleSource"))
    rules.append(FieldRule("ManagedPolicy", ("spec", "*"), _OP_ONLY, "any spec field not listed here"))
    rules.append(FieldRule("ManagedPolicy", ("status",), _OP_ONLY, "the operator's report", subresource="status"))
    for meta in ("labels", "annotations"):
        rules.append(FieldRule("ManagedPolicy", ("metadata", meta), _OP_ONLY,
                               "the operator's bookkeeping (catalog, source version)", keys="padlock"))
        rules.append(FieldRule("ManagedPolicy", ("metadata", meta), (ANYONE,),
                               "free for users and tools", keys="other"))
    for name, writers, why in _METADATA:
        rules.append(FieldRule("ManagedPolicy", ("metadata", name), writers, why))
    rules.append(FieldRule("ManagedPolicy", ("*",), _OP_ONLY, "any top-level field not listed here"))
    return tuple(rules)


def _configmap_rules() -> tuple[FieldRule, ...]:
    content = "what Falco loads: rendered from Padlock's objects"
    rules = [
        FieldRule("ConfigMap", ("data",), _OP_ONLY, content),
        FieldRule("ConfigMap", ("binaryData",), _OP_ONLY, content + "; Falco's projected volume mounts it too"),
        FieldRule("ConfigMap", ("immutable",), _OP_ONLY, "an immutable ConfigMap could never be republished"),
        FieldRule("ConfigMap", ("metadata", "labels"), _OP_ONLY,
                  f"{MANAGED_BY_LABEL}: {MANAGED_BY_VALUE} is what the lock selects on"),
        FieldRule("ConfigMap", ("metadata", "annotations"), _OP_ONLY, "content hash, shard index and count"),
    ]
    for name, writers, why in _METADATA:
        rules.append(FieldRule("ConfigMap", ("metadata", name), writers, why))
    rules.append(FieldRule("ConfigMap", ("*",), _OP_ONLY, "any top-level field not listed here"))
    return tuple(rules)


FIELD_RULES: Final = _managed_policy_rules() + _configmap_rules()

OPERATION_RULES: Final = (
    OperationRule("ManagedPolicy", "CREATE", "any but a declaration", _OP_ONLY,
                  "made from the policy catalog; anyone RBAC lets may declare one ahead of the operator "
                  "(GitOps) with only the fields a user may change, which the operator adopts"),
    OperationRule("ManagedPolicy", "DELETE", "any", _OP_GC,
                  "the operator would recreate it; users disable it with spec.enabled: false"),
    OperationRule("ConfigMap", "CREATE", f"labelled {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}", _OP_ONLY,
                  "only the operator publishes rules"),
    OperationRule("ConfigMap", "CREATE", "named <rulesConfigMap> or <rulesConfigMap>-<n> in the Falco namespace",
                  _OP_ONLY, "the Falco mount loads these names as shards, labelled or not"),
    OperationRule("ConfigMap", "DELETE", f"labelled {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}", _OP_GC,
                  "Falco would lose its rules; the garbage collector removes them with their RuleSources"),
)

LOCK_TABLE: Final = (FIELD_RULES, OPERATION_RULES)
"""The whole lock: field rules (UPDATE) and operation rules (CREATE, DELETE)."""


def field_rules(kind: LockedKind, *, subresource: str = "") -> tuple[FieldRule, ...]:
    return tuple(r for r in FIELD_RULES if r.kind == kind and r.subresource == subresource)


def operation_writers(kind: LockedKind, operation: str) -> tuple[Writer, ...]:
    """Writers of the first (broadest) rule for ``operation`` on ``kind``."""
    for rule in OPERATION_RULES:
        if rule.kind == kind and rule.operation == operation:
            return rule.writers
    return (ANYONE,)


# ---------------------------------------------------------------------------------------------
# Who is asking, and where the operator publishes


@dataclass(frozen=True)
class Identity:
    """Who counts as the operator and as the garbage collector (chart values / operator flags)."""

    operator_username: str = DEFAULT_OPERATOR_USERNAME
    garbage_collectors: tuple[str, ...] = GARBAGE_COLLECTOR_USERNAMES

    def is_operator(self, username: str | None) -> bool:
        return username == self.operator_username

    def role(self, username: str | None) -> Role:
        if self.is_operator(username):
            return "operator"
        if username is not None and username in self.garbage_collectors:
            return "garbage-collector"
        return "anyone"


@dataclass(frozen=True)
class PublishTarget:
    """Where the operator publishes: the ConfigMap names reserved for it in the Falco namespace."""

    namespace: str = DEFAULT_FALCO_NAMESPACE
    base: str = DEFAULT_RULES_CONFIGMAP
    shards: int = DEFAULT_RULES_SHARDS
    """How many ``<base>-<n>`` shards the Falco mount declares (n = 1..shards)."""

    def names(self) -> tuple[str, ...]:
        """Every rules ConfigMap name the operator may publish, in shard order."""
        return kinds.rules_configmap_names(self.base, self.shards)

    def operator_names(self) -> tuple[str, ...]:
        """Every ConfigMap name the operator may create in the Falco namespace: the rules and the
        tuner intake's CA (``kinds.TUNER_CA_CONFIGMAP``)."""
        return (*self.names(), kinds.TUNER_CA_CONFIGMAP)

    def reserved(self, name: str) -> bool:
        """True for ``<base>`` and ``<base>-<digits>``: names a Falco mount may treat as shards."""
        return name == self.base or re.fullmatch(re.escape(self.base) + r"-[0-9]+", name) is not None


# ---------------------------------------------------------------------------------------------
# Violations


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


def _update_violations(
    kind: LockedKind, old: Mapping[str, Any], new: Mapping[str, Any], role: Role, subresource: str
) -> list[Violation]:
    """Changed paths between ``old`` and ``new`` whose table row does not allow ``role``."""
    rules = field_rules(kind, subresource=subresource)
    by_parts = {r.parts: r for r in rules if r.keys == "all"}
    split = {(r.parts, r.keys): r for r in rules if r.keys != "all"}
    violations: list[Violation] = []

    def walk(parts: tuple[str, ...], old_map: Mapping[str, Any], new_map: Mapping[str, Any]) -> None:
        for key in _union_keys(old_map, new_map):
            here = (*parts, key)
            old_value, new_value = old_map.get(key, _ABSENT), new_map.get(key, _ABSENT)
            if (here, "padlock") in split:
                for prefixed in (True, False):
                    split_rule = split[(here, "padlock" if prefixed else "other")]
                    if split_rule.allows(role):
                        continue
                    violations.extend(_diff(
                        _join(_dotted(parts), key),
                        _filter_keys(old_value, prefixed),
                        _filter_keys(new_value, prefixed),
                    ))
                continue
            rule: FieldRule | None = by_parts.get(here)
            if rule is None and any(len(p) > len(here) and p[: len(here)] == here for p in by_parts):
                # A container with a row per field below it (spec, metadata).
                walk(here, _as_mapping(old_value), _as_mapping(new_value))
                continue
            rule = rule or by_parts.get((*parts, "*"))
            if rule is not None and not rule.allows(role):
                violations.extend(_diff(_join(_dotted(parts), key), old_value, new_value))

    if subresource == "status":
        # The status sub-resource only ever persists status; everything else in the request is ignored.
        walk((), {"status": old.get("status", _ABSENT)} if "status" in old else {},
             {"status": new.get("status", _ABSENT)} if "status" in new else {})
    else:
        ignored = ("apiVersion", "kind", "status")  # status: the API server resets it on a main-resource write
        walk((), {k: v for k, v in old.items() if k not in ignored}, {k: v for k, v in new.items() if k not in ignored})
    return violations


def _filter_keys(value: Any, prefixed: bool) -> dict[str, Any]:
    """The keys of a string map with (or without) the protected prefix; absent counts as empty."""
    return {k: v for k, v in _as_mapping(value).items() if k.startswith(PROTECTED_PREFIX) == prefixed}


def _dotted(parts: Sequence[str]) -> str:
    path = ""
    for part in parts:
        path = _join(path, part)
    return path


def _denied_operation(kind: LockedKind, operation: str, role: Role) -> list[Violation]:
    writers = operation_writers(kind, operation)
    if role in writers or ANYONE in writers:
        return []
    return [Violation("", "added" if operation == "CREATE" else "removed")]


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
    role = identity.role(username)
    if role == "operator":
        return []
    if operation == "CREATE" and new is not None:
        declared = declaration_violations(new, role)
        if not declared or _denied_operation("ManagedPolicy", operation, role) == []:
            return []
        return declared
    if operation in ("CREATE", "DELETE"):
        return _denied_operation("ManagedPolicy", operation, role)
    if operation != "UPDATE" or old is None or new is None:
        return []
    if subresource and subresource != "status":
        return []
    return _update_violations("ManagedPolicy", old, new, role, subresource or "")


SPEC_DEFAULTS: Final[dict[str, Any]] = {
    field.alias or name: field.default
    for name, field in ManagedPolicySpec.model_fields.items()
    if field.default is not None and field.default_factory is None and isinstance(field.default, bool | int | str)
}
"""Spec fields the CRD schema defaults (``default:`` in crds/), by JSON name: the API server sets them on
every create before admission, so a declaration carrying one at its default has not set it."""


def declaration_violations(new: Mapping[str, Any], role: Role) -> list[Violation]:
    """Locked fields set by a ManagedPolicy CREATE, judged as an UPDATE from an empty object.

    Empty means the object is a declaration: it sets only what ``role`` could change on an existing
    ManagedPolicy (spec.enabled, spec.disabledRules, spec.scope, labels and annotations outside
    padlock.dev/), so a GitOps tool may create it before the operator does; the operator then adopts it
    and applies the catalog's fields beside the user's (padlock.flows.publishing.render_and_publish).
    """
    empty: dict[str, Any] = {"apiVersion": new.get("apiVersion"), "kind": new.get("kind"), "metadata": {}}
    spec = _as_mapping(new.get("spec"))
    defaulted = {k: v for k, v in SPEC_DEFAULTS.items() if k in spec and spec[k] == v and type(spec[k]) is type(v)}
    if defaulted:
        empty["spec"] = defaulted
    return _update_violations("ManagedPolicy", empty, new, role, "")


def managed_policy_message(name: str, operation: str, violations: Sequence[Violation]) -> str:
    """The rejection text: what is locked, that Padlock manages it, and how to proceed."""
    target = f'managedpolicy "{name}"'
    if operation == "CREATE":
        what = ("ManagedPolicy objects are created only by the Padlock operator, or declared ahead of it "
                f"with nothing but the fields below (this one sets {_list_paths(violations)})")
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
    """Return the changes a request makes to a generated ConfigMap that its sender may not make.

    A ConfigMap is in scope when either its old or its new version carries the managed-by label, so
    removing the label is itself a locked change. Reserved names are ``check_reserved_name``'s job.
    """
    role = identity.role(username)
    if role == "operator":
        return []
    if not (is_generated_configmap(old) or is_generated_configmap(new)):
        return []
    if operation in ("CREATE", "DELETE"):
        return _denied_operation("ConfigMap", operation, role)
    if operation != "UPDATE" or old is None or new is None:
        return []
    return _update_violations("ConfigMap", old, new, role, "")


def check_reserved_name(
    *,
    namespace: str | None,
    new: Mapping[str, Any] | None,
    operation: str,
    username: str | None,
    identity: Identity = Identity(),
    target: PublishTarget = PublishTarget(),
) -> str | None:
    """The refusal of a ConfigMap CREATE in the Falco namespace by name, or None.

    Anyone but the operator is refused the reserved names (``<base>``, ``<base>-<digits>``), labelled
    or not, because the Falco mount loads them; the operator is refused every other name, because its
    RBAC ``create`` cannot be confined to names.
    """
    if operation != "CREATE" or namespace != target.namespace or new is None:
        return None
    name = str(_as_mapping(new.get("metadata")).get("name") or "")
    allowed = ", ".join(target.names())
    if identity.is_operator(username):
        if name in target.operator_names():
            return None
        return (
            f'configmap "{namespace}/{name}": the Padlock operator may create only the ConfigMaps it '
            f"publishes in {namespace} ({', '.join(target.operator_names())}; falco.rulesShards sets how many)"
        )
    if target.reserved(name):
        return (
            f'configmap "{namespace}/{name}": this name is reserved for the rules Padlock publishes '
            f"(Falco mounts {allowed} as its rules); only the Padlock operator creates it. Put your own "
            f"rules in a CustomPolicy, or in a ConfigMap with another name"
        )
    return None


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
