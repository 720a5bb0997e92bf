"""Names, scope, printer columns and operator RBAC verbs of each Padlock kind.

This module does the job of kubebuilder markers: ``padlock.api.schema`` reads it to write the CRDs,
the chart's RBAC is checked against ``operator_verbs`` by a unit test, and adapters look up plurals
here instead of spelling them. Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from padlock.api.common import GROUP, VERSION, PadlockModel
from padlock.api.custompolicy import CustomPolicy
from padlock.api.exception import ClusterPolicyException, PolicyException
from padlock.api.managedpolicy import ManagedPolicy
from padlock.api.rulesource import RuleSource
from padlock.api.tuningsuggestion import TuningSuggestion

CATEGORY = "padlock"
# Verbs the operator needs on every kind: read and watch, patch for kopf's annotations and
# finalizers. Status is written through the status subresource only.
_READ_PATCH = ("get", "list", "watch", "patch", "update")
_STATUS = ("get", "patch", "update")


@dataclass(frozen=True)
class PrinterColumn:
    """One column of `kubectl get` (a CRD additionalPrinterColumn)."""

    name: str
    type: Literal["string", "integer", "number", "boolean", "date"]
    json_path: str
    description: str
    priority: int = 0
    """0: always shown; 1: only with `-o wide`."""

    def to_crd(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
        }
        if self.priority:
            out["priority"] = self.priority
        return out


@dataclass(frozen=True)
class Kind:
    """Everything the CRD and the operator's RBAC need to know about one kind."""

    kind: str
    plural: str
    singular: str
    scope: Literal["Cluster", "Namespaced"]
    short_names: tuple[str, ...]
    model: type[PadlockModel]
    printer_columns: tuple[PrinterColumn, ...]
    operator_verbs: tuple[str, ...] = _READ_PATCH
    operator_status_verbs: tuple[str, ...] = _STATUS
    group: str = GROUP
    version: str = VERSION
    categories: tuple[str, ...] = (CATEGORY,)
    renders: bool = True
    """An input of the published ruleset (False: TuningSuggestion, which only proposes one)."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def namespaced(self) -> bool:
        return self.scope == "Namespaced"


def _ready(priority: int = 0) -> PrinterColumn:
    return PrinterColumn(
        "READY", "string", '.status.conditions[?(@.type=="Ready")].status', "Ready condition status", priority
    )


def _state() -> PrinterColumn:
    # The Ready condition's reason: Rendered, Expired, or why the object is left out of the published
    # ruleset (Invalid, TooLarge, NamespaceLimit, NoRoom; docs/limits.md), visible at a glance.
    return PrinterColumn(
        "STATE", "string", '.status.conditions[?(@.type=="Ready")].reason', "In force, or why it is left out"
    )


_AGE = PrinterColumn("AGE", "date", ".metadata.creationTimestamp", "Time since creation")

RULE_SOURCE = Kind(
    kind="RuleSource",
    plural="rulesources",
    singular="rulesource",
    scope="Cluster",
    short_names=("rsrc",),
    model=RuleSource,
    printer_columns=(
        PrinterColumn("VERSION", "string", ".status.currentVersion", "Version in use"),
        _ready(),
        PrinterColumn(
            "UP-TO-DATE",
            "string",
            '.status.conditions[?(@.type=="UpToDate")].status',
            "Whether the newest allowed version is in use",
        ),
        PrinterColumn(
            "FALCO",
            "string",
            '.status.conditions[?(@.type=="FalcoLoaded")].status',
            "Whether Falco's alerts show it runs the published ruleset (the tuner's feedback)",
        ),
        PrinterColumn("AVAILABLE", "string", ".status.availableVersion", "Newest version found"),
        PrinterColumn("LAST CHECK", "date", ".status.lastCheckTime", "Time since the last check"),
        _AGE,
        PrinterColumn("REPOSITORY", "string", ".spec.oci.repository", "OCI repository followed", 1),
        PrinterColumn("POLICY", "string", ".spec.updatePolicy", "Automatic or Manual", 1),
    ),
)

MANAGED_POLICY = Kind(
    kind="ManagedPolicy",
    plural="managedpolicies",
    singular="managedpolicy",
    scope="Cluster",
    short_names=("mp",),
    model=ManagedPolicy,
    printer_columns=(
        PrinterColumn("ENABLED", "boolean", ".status.enabled", "Whether the policy runs"),
        PrinterColumn("RULES", "integer", ".status.ruleCount", "Rules in the policy"),
        PrinterColumn("VERSION", "string", ".status.sourceVersion", "Rules source version"),
        PrinterColumn("UPDATED", "date", ".status.lastUpdated", "Time since the rules last changed"),
        _AGE,
        PrinterColumn("ACTIVE", "integer", ".status.enabledRuleCount", "Rules that run", 1),
        PrinterColumn("SOURCE", "string", ".spec.source.ruleSource", "RuleSource of the rules", 1),
        _ready(1),
    ),
    # The operator creates managed policies from the catalog and recreates deleted ones.
    operator_verbs=(*_READ_PATCH, "create", "delete"),
)

CUSTOM_POLICY = Kind(
    kind="CustomPolicy",
    plural="custompolicies",
    singular="custompolicy",
    scope="Cluster",
    short_names=("cp",),
    model=CustomPolicy,
    printer_columns=(
        PrinterColumn("ENABLED", "boolean", ".spec.enabled", "Whether the policy runs"),
        PrinterColumn("BASED ON", "string", ".spec.basedOn.managedPolicy", "Managed policy it starts from"),
        PrinterColumn("RULES", "integer", ".status.ruleCount", "Rules in the policy"),
        _ready(),
        _state(),
        _AGE,
        PrinterColumn("FOLLOWS", "boolean", ".spec.basedOn.followUpdates", "Receives managed updates", 1),
    ),
)

_EXCEPTION_COLUMNS = (
    PrinterColumn("POLICIES", "string", ".spec.policies[*].name", "Policies it applies to"),
    PrinterColumn("REASON", "string", ".spec.reason", "Why it exists"),
    # A string, not a date: kubectl prints a future date column as "<invalid>".
    PrinterColumn("EXPIRES", "string", ".spec.expiresAt", "When it stops applying"),
    PrinterColumn("ACTIVE", "boolean", ".status.active", "Whether it is in force"),
    _state(),
    _AGE,
)

POLICY_EXCEPTION = Kind(
    kind="PolicyException",
    plural="policyexceptions",
    singular="policyexception",
    scope="Namespaced",
    short_names=("pex",),
    model=PolicyException,
    printer_columns=_EXCEPTION_COLUMNS,
)

CLUSTER_POLICY_EXCEPTION = Kind(
    kind="ClusterPolicyException",
    plural="clusterpolicyexceptions",
    singular="clusterpolicyexception",
    scope="Cluster",
    short_names=("cpex",),
    model=ClusterPolicyException,
    printer_columns=_EXCEPTION_COLUMNS,
)

# Written by the operator's tuner from Falco's alerts: created in the workload's namespace, kept
# current (patch), its decision (spec.state) read back.
TUNING_SUGGESTION = Kind(
    kind="TuningSuggestion",
    plural="tuningsuggestions",
    singular="tuningsuggestion",
    scope="Namespaced",
    short_names=("tsug",),
    model=TuningSuggestion,
    printer_columns=(
        PrinterColumn("RULE", "string", ".spec.rule", "Rule the workload keeps triggering"),
        PrinterColumn("WORKLOAD", "string", ".spec.workload", "The workload, as its alerts show it"),
        PrinterColumn("HITS", "integer", ".status.hits", "Alerts in the tuner's window"),
        PrinterColumn("STATE", "string", ".spec.state", "Open, Accepted or Dismissed"),
        PrinterColumn("SCOPE", "string", ".spec.scope", "Namespace, or Cluster when the alerts span namespaces"),
        PrinterColumn("LAST SEEN", "date", ".status.lastSeen", "Time since the last alert"),
        PrinterColumn("EXCEPTION", "string", ".spec.exception.name", "Exception accepting creates", 1),
        PrinterColumn("POLICIES", "string", ".spec.policies[*].name", "Policies running the rule", 1),
    ),
    operator_verbs=(*_READ_PATCH, "create"),
    renders=False,
)

ALL: tuple[Kind, ...] = (
    RULE_SOURCE,
    MANAGED_POLICY,
    CUSTOM_POLICY,
    POLICY_EXCEPTION,
    CLUSTER_POLICY_EXCEPTION,
    TUNING_SUGGESTION,
)
BY_KIND: dict[str, Kind] = {k.kind: k for k in ALL}
BY_PLURAL: dict[str, Kind] = {k.plural: k for k in ALL}
RENDERED: tuple[Kind, ...] = tuple(k for k in ALL if k.renders)
"""The kinds the published ruleset is rendered from."""


def model_for(body_kind: str) -> type[PadlockModel]:
    """The model class for a `kind:` value; KeyError naming the kind when it is not Padlock's."""
    try:
        return BY_KIND[body_kind].model
    except KeyError:
        raise KeyError(f"unknown padlock kind {body_kind!r}; expected one of {', '.join(BY_KIND)}") from None


# ---------------------------------------------------------------------------------------------
# The operator's whole RBAC: its own kinds (operator_verbs above) and everything else it touches.
# charts/padlock/templates/rbac.yaml grants exactly this (tests/unit/chart compares the rendered rules)
# and a real API server answers `kubectl auth can-i` exactly so (tests/integration/test_operator_rbac.py).

Scope = Literal["cluster", "release", "falco", "sources"]
"""Where a grant holds: cluster-wide, the release namespace, the Falco namespace, or each namespace of
``rbac.configMapNamespaces`` (RuleSource spec.configMap)."""


@dataclass(frozen=True)
class Grant:
    """Verbs on one resource (``resource/subresource``), in one scope, optionally only on some names."""

    group: str
    resource: str
    verbs: tuple[str, ...]
    scope: Scope
    why: str
    names: tuple[str, ...] = ()
    """Empty: every name. RBAC cannot confine list, watch or create to names."""


DEFAULT_RULES_SHARDS = 3
"""Shards ``padlock-rules-1`` .. ``-3`` the Falco mount declares besides ``padlock-rules`` (four
ConfigMaps, what charts/falco-values/padlock.yaml mounts): the one default of the chart's
``falco.rulesShards``, the ``--rules-shards`` flags, the RBAC names, the lock and the render."""


TUNER_CA_CONFIGMAP = "padlock-tuner-ca"
"""The one ConfigMap besides the rules the operator writes in the Falco namespace: the CA of the
tuner's intake, for Falco's ``http_output`` (docs/tuner.md). The lock reserves it like the rules."""


def rules_configmap_names(base: str, shards: int) -> tuple[str, ...]:
    """The ConfigMaps the Falco mount declares: ``base`` and ``base-1`` .. ``base-<shards>``."""
    return (base, *(f"{base}-{i}" for i in range(1, shards + 1)))


def operator_access(
    *,
    rules_configmap: str = "padlock-rules",
    shards: int = DEFAULT_RULES_SHARDS,
    webhook: bool = True,
    webhook_configuration: str = "padlock.dev",
    pull_secrets: tuple[str, ...] = (),
    leader_election: bool = False,
    webhook_tls_secret: str = "padlock-webhook-tls",
    source_namespaces: bool = False,
    tuner: bool = False,
) -> tuple[Grant, ...]:
    """Every permission the operator needs, for the chart values given (defaults: the chart's).

    The TuningSuggestion grants come from templates/tuner-rbac.yaml, rendered only with
    ``tuner.enabled`` (``tuner=True``)."""
    grants: list[Grant] = []
    for k in ALL:
        if k is TUNING_SUGGESTION and not tuner:
            continue
        only = " (only with tuner.enabled)" if k is TUNING_SUGGESTION else ""
        grants.append(Grant(k.group, k.plural, k.operator_verbs, "cluster",
                            "watch and patch (kopf bookkeeping)" + only))
        grants.append(Grant(k.group, f"{k.plural}/status", k.operator_status_verbs, "cluster", "write status" + only))
    if tuner:
        grants.append(Grant("", "configmaps", ("get", "update"), "falco",
                            "publish the tuner intake's CA for Falco (only with tuner.enabled)", (TUNER_CA_CONFIGMAP,)))
    grants += [
        Grant("", "events", ("create", "patch"), "cluster", "Events about objects, in their namespaces"),
        Grant("events.k8s.io", "events", ("create", "patch"), "cluster", "the same, new Events API"),
        Grant("apiextensions.k8s.io", "customresourcedefinitions", ("get", "list", "watch"), "cluster",
              "kopf waits for the CRDs"),
        # create cannot be confined to names in RBAC: the lock policy lets the operator create only
        # these names there (padlock-reserve-rules-configmaps).
        Grant("", "configmaps", ("create",), "falco", "publish the rules (names enforced by admission)"),
        Grant("", "configmaps", ("get", "update", "delete"), "falco",
              "read back, update, replace and remove its own shards, by name",
              rules_configmap_names(rules_configmap, shards)),
        Grant("", "configmaps", ("get",), "release", "RuleSource spec.configMap and oci.caConfigMap"),
    ]
    if source_namespaces:
        grants.append(Grant("", "configmaps", ("get",), "sources", "RuleSource spec.configMap elsewhere (rbac.configMapNamespaces)"))
    if pull_secrets:
        grants.append(Grant("", "secrets", ("get",), "release", "RuleSource spec.oci.pullSecret (only with rbac.pullSecretNames)",
                            tuple(pull_secrets)))
    if webhook:
        grants.append(Grant("admissionregistration.k8s.io", "validatingwebhookconfigurations", ("get", "patch"),
                            "cluster", "keep its webhook's caBundle current (only with webhook.enabled)", (webhook_configuration,)))
    if leader_election:
        grants.append(Grant("coordination.k8s.io", "leases", ("get", "create", "update"), "release",
                            "leader election (only with leaderElection.enabled)"))
    if leader_election and webhook:
        grants.append(Grant("", "secrets", ("get", "update"), "release",
                            "the webhook certificate replicas share (only with leaderElection.enabled)",
                            (webhook_tls_secret,)))
    return tuple(grants)
