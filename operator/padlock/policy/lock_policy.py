"""Generate the chart's ValidatingAdmissionPolicies (``templates/lock-policy.yaml``) from the lock table.

``python -m padlock.policy.lock_policy --write`` (``make lock-policy``) writes the template and the tables
of docs/security.md; ``make verify`` regenerates them and fails when a checked-in file differs, as for
the CRDs. The CEL states exactly
``padlock.policy.lock.LOCK_TABLE``: one term per locked field (CEL cannot iterate the fields of a typed
object, so each is named; a field added to the ManagedPolicy model is added here by regenerating),
the split of labels/annotations by the ``padlock.dev/`` prefix, the garbage collector's exemptions,
and the reserved ConfigMap names. Only standard CEL is used in the expressions that decide (no
optional types), so ``tests/unit/policy/test_lock_table.py`` can evaluate them with cel-python and
compare every verdict with the webhook's; the message expressions may use Kubernetes' ``join``.

Pure text generation; the only I/O is ``main`` writing the file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from padlock.api import kinds
from padlock.policy import lock

TEMPLATE = Path("charts/padlock/templates/lock-policy.yaml")
SECURITY_DOC = Path("docs/security.md")
"""Its lock table and RBAC matrix are generated too, between ``<!-- BEGIN generated: NAME -->`` markers."""
POLICY_NAMES = ("padlock-lock-managedpolicies", "padlock-lock-configmaps", "padlock-reserve-rules-configmaps")

_HOWTO = (
    "Only spec.enabled, spec.disabledRules, spec.scope and labels/annotations outside padlock.dev/ may be "
    "changed. To change anything else, copy it into a CustomPolicy: padlock copy managedpolicy/' + "
    "request.name + ' my-' + request.name + ' (or: kubectl get managedpolicy ' + request.name + "
    "' -o yaml, then create a CustomPolicy with spec.basedOn.managedPolicy: ' + request.name + ')"
)
_CM_HOWTO = (
    "Its content is rendered from RuleSource, ManagedPolicy, CustomPolicy and exception objects: change "
    "those instead (see padlock render), and the operator republishes it"
)


def _present(root: str, parts: Sequence[str]) -> str:
    """``has()`` for every level of ``root.parts`` below metadata (which every object has)."""
    checks = [
        f"has({root}.{'.'.join(parts[: i + 1])})"
        for i in range(len(parts))
        if parts[: i + 1] != ("metadata",)
    ]
    return " && ".join(checks) if checks else "true"


def same(parts: Sequence[str]) -> str:
    """CEL: the field is absent on both sides, or present on both with equal values."""
    path = ".".join(parts)
    new, old = _present("object", parts), _present("oldObject", parts)
    return f"(({new}) ? (({old}) && object.{path} == oldObject.{path}) : !({old}))"


def same_prefixed_keys(parts: Sequence[str]) -> str:
    """CEL: the keys of a string map under ``padlock.dev/`` are the same on both sides, with equal values."""
    path = ".".join(parts)
    prefix = lock.PROTECTED_PREFIX
    new, old = f"object.{path}", f"oldObject.{path}"
    return (
        f"((!has({old}) || {old}.all(k, !k.startsWith('{prefix}') || "
        f"(has({new}) && k in {new} && {new}[k] == {old}[k]))) && "
        f"(!has({new}) || {new}.all(k, !k.startsWith('{prefix}') || (has({old}) && k in {old}))))"
    )


def _unchanged(rule: lock.FieldRule) -> str:
    if rule.keys == "padlock":
        condition = same_prefixed_keys(rule.parts)
    elif rule.keys == "other":
        raise ValueError(f"{rule.path}: keys outside the prefix are never locked alone")
    else:
        condition = same(rule.parts)
    if lock.GARBAGE_COLLECTOR in rule.writers:
        condition = f"variables.gc || {condition}"
    return condition


def changed_terms(kind: lock.LockedKind, subresource: str = "") -> list[str]:
    """One CEL term per locked field: ``[]`` when unchanged (or allowed), ``['<path>']`` otherwise.

    ``*`` rows (fields a schema does not declare) need no term: the API server prunes unknown fields
    of a custom resource before admission, and a ConfigMap has no others.
    """
    return [
        f"(({_unchanged(rule)}) ? [] : ['{rule.path}'])"
        for rule in lock.field_rules(kind, subresource=subresource)
        if rule.locked and rule.parts[-1] != "*"
    ]


def _allowed_by(kind: lock.LockedKind, operation: str) -> str:
    """CEL that is true when the requester (never the operator: matchConditions skip it) may do ``operation``."""
    writers = lock.operation_writers(kind, operation)
    condition = f"request.operation != '{operation}'"
    if lock.ANYONE in writers:
        return "true"
    if lock.GARBAGE_COLLECTOR in writers:
        condition += " || variables.gc"
    return condition


def _block(lines: Sequence[str], indent: int) -> str:
    pad = " " * indent
    return "\n".join(pad + line for line in lines)


def _sum(terms: Sequence[str], indent: int) -> str:
    if not terms:
        return " " * indent + "[]"
    return _block([t + (" +" if i < len(terms) - 1 else "") for i, t in enumerate(terms)], indent)


def _set_on_create(rule: lock.FieldRule) -> str:
    """CEL: the locked field (or a ``padlock.dev/`` key of the map) is set in the created object."""
    if rule.keys == "padlock":
        path = f"object.{'.'.join(rule.parts)}"
        return f"(has({path}) && {path}.exists(k, k.startsWith('{lock.PROTECTED_PREFIX}')))"
    present = f"({_present('object', rule.parts)})"
    if rule.parts[0] == "spec" and len(rule.parts) == 2 and rule.parts[1] in lock.SPEC_DEFAULTS:
        # The API server fills in the schema default before admission: at that value, not set by the request.
        value = lock.SPEC_DEFAULTS[rule.parts[1]]
        literal = ("true" if value else "false") if isinstance(value, bool) else (
            f"'{value}'" if isinstance(value, str) else str(value))
        present = f"({present[1:-1]} && object.spec.{rule.parts[1]} != {literal})"
    if lock.GARBAGE_COLLECTOR in rule.writers:
        present = f"(!variables.gc && {present})"
    return present


def declared_terms(kind: lock.LockedKind) -> list[str]:
    """One CEL term per locked field a CREATE sets: the create of a declaration (only the fields a user
    may change, ``lock.declaration_violations``) has none. ``*`` rows need none (pruned, as above)."""
    return [
        f"({_set_on_create(rule)} ? ['{rule.path}'] : [])"
        for rule in lock.field_rules(kind)
        if rule.locked and rule.parts[-1] != "*" and not rule.subresource
    ]


def render() -> str:
    """The whole ``lock-policy.yaml`` template text."""
    mp_main = changed_terms("ManagedPolicy")
    mp_status = changed_terms("ManagedPolicy", "status")
    mp_declared = declared_terms("ManagedPolicy")
    cm_main = changed_terms("ConfigMap")
    gc_variable = (
        "    - name: gc\n"
        "      expression: >-\n"
        "        request.userInfo.username in [{{ $gc }}]\n"
    )
    return f"""{{{{- /*
GENERATED by `python -m padlock.policy.lock_policy --write` (make lock-policy) from the lock table in
operator/padlock/policy/lock.py; do not edit: `make verify` fails when this file differs from the table.

The lock on ManagedPolicies and on the generated rules ConfigMaps as ValidatingAdmissionPolicies (CEL,
evaluated inside the API server), so it holds while the operator's webhook is down, with the same
verdicts as the webhook (padlock.policy.lock; tests/unit/policy/test_lock_table.py compares them):
  - the operator's ServiceAccount may change what it owns (matchConditions skip the first two
    policies for it); it may create ConfigMaps in the Falco namespace only under the generated names;
  - the garbage collector may delete locked objects and drop owner references and finalizers;
  - anyone else may UPDATE a ManagedPolicy only in spec.enabled, spec.disabledRules, spec.scope and
    labels/annotations outside padlock.dev/; DELETE and status writes are denied, and CREATE too
    unless the object is a declaration holding only those fields (GitOps; the operator adopts it);
  - ConfigMaps labelled app.kubernetes.io/managed-by=padlock may not be created, changed or deleted
    (data, binaryData, immutable, labels, annotations, finalizers, ownerReferences, generateName);
  - nobody but the operator may create <falco.rulesConfigMap> or <falco.rulesConfigMap>-<n> in the
    Falco namespace, labelled or not: the Falco mount loads those names.
*/ -}}}}
{{{{- if .Values.lockPolicy.enabled }}}}
{{{{- $operator := include "padlock.operatorUsername" . }}}}
{{{{- $gc := include "padlock.celStrings" .Values.lockPolicy.garbageCollectorUsernames }}}}
{{{{- $base := .Values.falco.rulesConfigMap }}}}
{{{{- $names := list $base }}}}
{{{{- range $i := until (int .Values.falco.rulesShards) }}}}
{{{{- $names = append $names (printf "%s-%d" $base (add1 $i)) }}}}
{{{{- end }}}}
{{{{- $creatable := append $names "{kinds.TUNER_CA_CONFIGMAP}" }}}}
{{{{- $howto := "{_HOWTO}" }}}}
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: padlock-lock-managedpolicies
  labels:
    {{{{- include "padlock.labels" . | nindent 4 }}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: ["padlock.dev"]
        apiVersions: ["*"]
        operations: ["CREATE", "UPDATE", "DELETE"]
        resources: ["managedpolicies", "managedpolicies/status"]
  matchConditions:
    - name: not-the-padlock-operator
      expression: "request.userInfo.username != '{{{{ $operator }}}}'"
  variables:
{gc_variable}    # Locked fields this request changes, by path; empty for CREATE/DELETE (handled below).
    - name: changed
      expression: >-
        request.operation != 'UPDATE' ? [] :
        (has(request.subResource) && request.subResource == 'status') ? (
{_sum(mp_status, 10)}
        ) : (
{_sum(mp_main, 10)}
        )
    # Locked fields a CREATE sets; empty for a declaration (GitOps) the operator adopts.
    - name: declared
      expression: >-
        request.operation != 'CREATE' ? [] : (
{_sum(mp_declared, 10)}
        )
  validations:
    - expression: "{_allowed_by("ManagedPolicy", "CREATE")} || size(variables.declared) == 0"
      reason: Forbidden
      messageExpression: >-
        'ManagedPolicy objects are created only by the Padlock operator, or declared ahead of it with nothing but the fields below (this one sets ' + variables.declared.join(', ') + '). {{{{ $howto }}}}'
    - expression: "{_allowed_by("ManagedPolicy", "DELETE")}"
      reason: Forbidden
      messageExpression: >-
        'managedpolicy "' + request.name + '" is managed by Padlock and cannot be deleted (disable it with spec.enabled: false). {{{{ $howto }}}}'
    - expression: "size(variables.changed) == 0"
      reason: Forbidden
      messageExpression: >-
        'managedpolicy "' + request.name + '" is managed by Padlock and locked; this request changes ' + variables.changed.join(', ') + '. {{{{ $howto }}}}'
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: padlock-lock-managedpolicies
  labels:
    {{{{- include "padlock.labels" . | nindent 4 }}}}
spec:
  policyName: padlock-lock-managedpolicies
  validationActions: [Deny]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: padlock-lock-configmaps
  labels:
    {{{{- include "padlock.labels" . | nindent 4 }}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["CREATE", "UPDATE", "DELETE"]
        resources: ["configmaps"]
    # Evaluated on the old and the new object, so removing the label is caught too.
    objectSelector:
      matchLabels:
        {lock.MANAGED_BY_LABEL}: {lock.MANAGED_BY_VALUE}
  matchConditions:
    - name: not-the-padlock-operator
      expression: "request.userInfo.username != '{{{{ $operator }}}}'"
  variables:
{gc_variable}    - name: changed
      expression: >-
        request.operation != 'UPDATE' ? [] : (
{_sum(cm_main, 10)}
        )
  validations:
    - expression: "{_allowed_by("ConfigMap", "CREATE")}"
      reason: Forbidden
      messageExpression: >-
        'configmap "' + request.namespace + '/' + object.metadata.name + '" carries {lock.MANAGED_BY_LABEL}: {lock.MANAGED_BY_VALUE}; only the Padlock operator creates such ConfigMaps. {_CM_HOWTO}'
    - expression: "{_allowed_by("ConfigMap", "DELETE")}"
      reason: Forbidden
      messageExpression: >-
        'configmap "' + request.namespace + '/' + request.name + '" is generated by Padlock and cannot be deleted by hand. {_CM_HOWTO}'
    - expression: "size(variables.changed) == 0"
      reason: Forbidden
      messageExpression: >-
        'configmap "' + request.namespace + '/' + request.name + '" is generated by Padlock and locked; this request changes ' + variables.changed.join(', ') + '. {_CM_HOWTO}'
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: padlock-lock-configmaps
  labels:
    {{{{- include "padlock.labels" . | nindent 4 }}}}
spec:
  policyName: padlock-lock-configmaps
  validationActions: [Deny]
---
# The names the Falco mount loads are reserved, labelled or not: nobody but the operator creates them,
# and the operator creates nothing else in the Falco namespace (RBAC cannot confine create to names).
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: padlock-reserve-rules-configmaps
  labels:
    {{{{- include "padlock.labels" . | nindent 4 }}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["CREATE"]
        resources: ["configmaps"]
    namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: {{{{ .Values.falco.namespace | quote }}}}
  variables:
    # generateName: validating admission sees the generated name.
    - name: name
      expression: "has(object.metadata.name) ? object.metadata.name : ''"
    - name: operator
      expression: "request.userInfo.username == '{{{{ $operator }}}}'"
  validations:
    - expression: >-
        !variables.operator || variables.name in [{{{{ include "padlock.celStrings" $creatable }}}}]
      reason: Forbidden
      messageExpression: >-
        'configmap "' + request.namespace + '/' + variables.name + '": the Padlock operator may create only the ConfigMaps it publishes in ' + request.namespace + ' ({{{{ join ", " $creatable }}}}; falco.rulesShards sets how many)'
    - expression: >-
        variables.operator || !(variables.name == '{{{{ $base }}}}' || variables.name.matches('^{{{{ $base | replace "." "[.]" }}}}-[0-9]+$'))
      reason: Forbidden
      messageExpression: >-
        'configmap "' + request.namespace + '/' + variables.name + '": this name is reserved for the rules Padlock publishes (Falco mounts {{{{ join ", " $names }}}} as its rules); only the Padlock operator creates it. Put your own rules in a CustomPolicy, or in a ConfigMap with another name'
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: padlock-reserve-rules-configmaps
  labels:
    {{{{- include "padlock.labels" . | nindent 4 }}}}
spec:
  policyName: padlock-reserve-rules-configmaps
  validationActions: [Deny]
{{{{- end }}}}
"""


_WHO = {lock.OPERATOR: "operator", lock.GARBAGE_COLLECTOR: "garbage collector", lock.ANYONE: "anyone RBAC lets",
        lock.API_SERVER: "API server only (ignored by the lock)"}


def lock_table_markdown() -> str:
    """The lock table for docs/security.md: every row of ``lock.LOCK_TABLE``."""
    lines = ["| Kind | Field or operation | Who may change it | Why |", "| --- | --- | --- | --- |"]
    for rule in lock.FIELD_RULES:
        where = f"`{rule.path}`" + (" (status sub-resource)" if rule.subresource else "")
        who = ", ".join(_WHO[w] for w in rule.writers)
        lines.append(f"| {rule.kind} | {where} | {who} | {rule.why} |")
    for op in lock.OPERATION_RULES:
        who = ", ".join(_WHO[w] for w in op.writers)
        lines.append(f"| {op.kind} | {op.operation} ({op.scope}) | {who} | {op.why} |")
    return "\n".join(lines) + "\n"


def rbac_table_markdown() -> str:
    """The operator's RBAC (chart defaults plus the optional rules) for docs/security.md."""
    where = {"cluster": "cluster", "release": "release namespace", "falco": "Falco namespace",
             "sources": "each of rbac.configMapNamespaces"}
    lines = ["| API group | Resource | Verbs | Where | Names | Why |", "| --- | --- | --- | --- | --- | --- |"]
    for g in kinds.operator_access(pull_secrets=("<rbac.pullSecretNames>",), leader_election=True, tuner=True,
                                   source_namespaces=True):
        names = ", ".join(f"`{n}`" for n in g.names) if g.names else "any"
        lines.append(f"| `{g.group or 'core'}` | `{g.resource}` | {', '.join(g.verbs)} | {where[g.scope]} | "
                     f"{names} | {g.why} |")
    return "\n".join(lines) + "\n"


def with_generated_blocks(text: str) -> str:
    """``text`` (docs/security.md) with its generated blocks replaced by the current tables."""
    for name, body in (("lock-table", lock_table_markdown()), ("rbac-matrix", rbac_table_markdown())):
        begin, end = f"<!-- BEGIN generated: {name} -->\n", f"<!-- END generated: {name} -->"
        head, found, rest = text.partition(begin)
        if not found or end not in rest:
            raise ValueError(f"{SECURITY_DOC}: no {begin.strip()} ... {end} block")
        text = head + begin + body + end + rest.split(end, 1)[1]
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {TEMPLATE} (default: print it)")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: .)")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        (args.root / TEMPLATE).write_text(text)
        doc = args.root / SECURITY_DOC
        doc.write_text(with_generated_blocks(doc.read_text()))
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
