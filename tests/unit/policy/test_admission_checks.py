"""padlock.policy.admission: CustomPolicy and exception objects checked against the current state.

Covers: shape errors from the policy parser, references to missing policies and rules (errors once
the operator has loaded, warnings before), namespace confinement of PolicyExceptions, Falco
semantics of falcoRules (undefined macro, unknown field) located in the field, exception fields
Falco does not know, and the one-line rejection message; falcoRules checked on the prepared upstream
load (as a full load would report, reused across views, prepared again when the upstream changes).
"""

from __future__ import annotations

from typing import Any

from padlock.engine.model import RulesFile
from padlock.policy import admission

UPSTREAM = RulesFile(
    "00-falco-rules-falco_rules.yaml",
    """
- macro: spawned_process
  condition: evt.type in (execve, execveat)
- list: shell_binaries
  items: [bash, sh]
- rule: Terminal shell in container
  desc: shell
  condition: spawned_process and proc.name in (shell_binaries)
  output: shell %proc.name
  priority: NOTICE
  tags: [container, shell, mitre_execution]
""",
)

# container.* and k8s.* fields exist only with Falco's container plugin (Falco >= 0.41).
PLUGINS = {"container": "0.4.0"}

VIEW = admission.AdmissionView.build(
    [UPSTREAM],
    {
        ("ManagedPolicy", "container-drift"): ["Terminal shell in container"],
        ("CustomPolicy", "mine"): ["My rule"],
    },
    plugins=PLUGINS,
)


def custom(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "padlock.dev/v1alpha1",
        "kind": "CustomPolicy",
        "metadata": {"name": "web"},
        "spec": spec,
    }


def exception(namespace: str | None = "team-a", **spec: Any) -> dict[str, Any]:
    kind = "PolicyException" if namespace else "ClusterPolicyException"
    meta: dict[str, Any] = {"name": "quiet-nginx"}
    if namespace:
        meta["namespace"] = namespace
    body_spec = {
        "policies": [
            {"kind": "ManagedPolicy", "name": "container-drift", "rules": ["Terminal shell in container"]}
        ],
        "reason": "nginx entrypoint runs sh",
        "match": {"images": ["nginx"]},
    }
    body_spec.update(spec)
    return {"apiVersion": "padlock.dev/v1alpha1", "kind": kind, "metadata": meta, "spec": body_spec}


def lines(body: dict[str, Any], view: admission.AdmissionView = VIEW) -> list[str]:
    return [f"{d.severity}: {d.path}: {d.message}" for d in admission.validate(body, view)]


def test_a_valid_custom_policy_and_exception_pass() -> None:
    good = custom(
        basedOn={"managedPolicy": "container-drift"},
        rules=["Terminal shell in container"],
        falcoRules="- rule: My rule\n  desc: d\n  condition: spawned_process and proc.name = nc\n"
        "  output: nc %proc.name\n  priority: WARNING\n",
        disabledRules=["My rule"],
    )
    assert lines(good) == []
    assert lines(exception()) == []
    assert lines(exception(namespace=None)) == []


def test_custom_rule_with_an_undefined_macro_is_located_in_falco_rules() -> None:
    bad = custom(
        falcoRules="- rule: X\n  desc: d\n  condition: spawned_process and y\n  output: o %proc.name\n  priority: WARNING\n"
    )
    diags = admission.validate(bad, VIEW)
    assert [d.severity for d in diags] == ["error"]
    assert diags[0].path == "spec.falcoRules:3:34"
    assert diags[0].message.startswith('rule "X": ')
    assert "Undefined macro 'y'" in diags[0].message
    assert diags[0].id == "undefined-macro"
    assert admission.message(diags).startswith(
        'CustomPolicy web: spec.falcoRules:3:34: rule "X": Undefined macro'
    )


def test_custom_rule_with_an_unknown_field_is_rejected() -> None:
    bad = custom(
        falcoRules="- rule: X\n  desc: d\n  condition: spawned_process and proc.nmae = x\n  output: o\n  priority: WARNING\n"
    )
    (diag,) = [d for d in admission.validate(bad, VIEW) if d.severity == "error"]
    assert diag.path == "spec.falcoRules:3:34"
    assert diag.message == 'rule "X": filter_check called with nonexistent field proc.nmae'


def test_custom_rule_appending_to_an_undefined_list_is_rejected() -> None:
    bad = custom(falcoRules="- list: no_such_list\n  items: [x]\n  override:\n    items: append\n")
    errors = [d for d in admission.validate(bad, VIEW) if d.severity == "error"]
    assert [d.path.split(":")[0] for d in errors] == ["spec.falcoRules"]
    assert "no_such_list" in errors[0].message


def test_problems_in_upstream_files_are_not_blamed_on_the_object() -> None:
    broken = RulesFile(
        "00-x-broken.yaml",
        "- rule: Broken\n  desc: d\n  condition: nope_macro\n  output: o\n  priority: INFO\n",
    )
    view = admission.AdmissionView.build([UPSTREAM, broken], {}, plugins=PLUGINS)
    ok = custom(
        falcoRules="- rule: X\n  desc: d\n  condition: spawned_process\n  output: o\n  priority: WARNING\n"
    )
    assert [d for d in admission.validate(ok, view) if d.severity == "error"] == []


def test_references_to_missing_policies_and_rules_are_errors_with_paths() -> None:
    assert lines(custom(basedOn={"managedPolicy": "nope"})) == [
        'error: spec.basedOn.managedPolicy: ManagedPolicy "nope" does not exist'
    ]
    assert lines(custom(rules=["Terminal shell in container", "Ghost rule"])) == [
        'error: spec.rules[1]: rule "Ghost rule" is not defined by any RuleSource nor in spec.falcoRules'
    ]
    bad = exception(
        policies=[
            {
                "kind": "ManagedPolicy",
                "name": "container-drift",
                "rules": ["Terminal shell in container", "Nope"],
            },
            {"kind": "CustomPolicy", "name": "absent"},
        ]
    )
    assert lines(bad) == [
        'error: spec.policies[0].rules[1]: rule "Nope" is not in ManagedPolicy "container-drift"',
        'error: spec.policies[1].name: CustomPolicy "absent" does not exist',
    ]


def test_references_only_warn_while_the_operator_is_still_loading() -> None:
    loading = admission.AdmissionView.build([UPSTREAM], {}, complete=False, plugins=PLUGINS)
    found = lines(exception(), loading)
    assert found == [
        'warning: spec.policies[0].name: ManagedPolicy "container-drift" does not exist '
        "(the operator is still loading; not enforced yet)"
    ]


def test_disabling_a_rule_not_in_the_policy_is_a_warning() -> None:
    assert lines(custom(basedOn={"managedPolicy": "container-drift"}, disabledRules=["Typo rule"])) == [
        'warning: spec.disabledRules[0]: rule "Typo rule" is not in this policy; disabling it has no effect'
    ]


def test_tenant_exception_naming_another_namespace_is_rejected() -> None:
    bad = exception(
        match={"fields": ["k8s.ns.name", "proc.name"], "comps": ["=", "="], "values": [["team-b", "sh"]]}
    )
    (line,) = lines(bad)
    assert line.startswith('error: spec.match.values[0][0]: k8s.ns.name "team-b" is another namespace;')
    assert 'PolicyException in namespace "team-a" may only silence events from "team-a"' in line


def test_tenant_exception_with_a_list_or_a_negation_over_namespaces_is_rejected() -> None:
    listed = exception(
        match={"fields": ["k8s.ns.name"], "comps": ["in"], "values": [["(team-a, kube-system)"]]}
    )
    assert lines(listed)[0].startswith(  # an inline list is one string, as the CRD schema has it
        'error: spec.match.values[0][0]: k8s.ns.name "(team-a, kube-system)" is another namespace'
    )
    negated = exception(match={"fields": ["k8s.ns.name"], "comps": ["!="], "values": [["team-a"]]})
    assert lines(negated)[0].startswith(
        'error: spec.match.comps[0]: "k8s.ns.name != ..." can match namespaces other'
    )


def test_tenant_exception_naming_its_own_namespace_and_cluster_exceptions_naming_any_are_allowed() -> None:
    own = exception(
        match={"fields": ["k8s.ns.name", "proc.name"], "comps": ["=", "="], "values": [["team-a", "sh"]]}
    )
    assert lines(own) == []
    cluster = exception(
        namespace=None, match={"fields": ["k8s.ns.name"], "comps": ["="], "values": [["team-b"]]}
    )
    assert lines(cluster) == []


def test_exception_field_falco_does_not_know_is_located_at_its_index() -> None:
    bad = exception(
        match={
            "fields": ["container.image.repository", "proc.nmae"],
            "comps": ["=", "="],
            "values": [["nginx", "sh"]],
        }
    )
    assert lines(bad) == ["error: spec.match.fields[1]: 'proc.nmae' is not a supported filter field"]


def test_custom_policy_inline_exceptions_are_checked_too() -> None:
    bad = custom(rules=["Terminal shell in container"],
                 exceptions=[{"reason": "r", "match": {"fields": ["proc.nmae"], "values": [["x"]]}}])
    assert lines(bad) == [
        "error: spec.exceptions[0].match.fields[0]: 'proc.nmae' is not a supported filter field"
    ]


def test_shape_errors_come_from_the_policy_parser_and_stop_further_checks() -> None:
    bad = exception(reason="", match={"fields": ["proc.nmae"], "comps": ["=", "="], "values": [["x"]]})
    found = lines(bad)
    assert "error: spec.reason: is required: say why these events are expected" in found
    assert any(line.startswith("error: spec.match.comps:") for line in found)
    assert not any("not a supported filter field" in line for line in found)


def test_other_kinds_are_not_validated_here() -> None:
    assert admission.validate({"kind": "RuleSource", "metadata": {"name": "x"}, "spec": {}}, VIEW) == []


def test_defined_rule_names_ignore_appends_overrides_and_bad_yaml() -> None:
    text = (
        "- rule: A\n  condition: x\n- rule: B\n  append: true\n- rule: C\n  override: {condition: append}\n"
    )
    assert list(admission.defined_rule_names(text)) == ["A"]
    assert list(admission.defined_rule_names(": : [")) == []


def test_container_fields_need_the_container_plugin() -> None:
    match = {"fields": ["container.image.repository"], "comps": ["="], "values": [["nginx"]]}
    without = admission.AdmissionView.build(
        [UPSTREAM], {("ManagedPolicy", "container-drift"): ["Terminal shell in container"]}
    )
    assert lines(exception(match=match), without) == [
        "error: spec.match.fields[0]: 'container.image.repository' is not a supported filter field"
    ]
    assert lines(exception(match=match)) == []


def test_falco_rules_checked_on_the_prepared_upstream_equal_a_full_load_and_follow_upstream_changes() -> None:
    from padlock.engine import loader

    cache = admission.UpstreamCache()
    uses_macro = custom(
        falcoRules="- rule: X\n  desc: d\n  condition: spawned_process and at_night\n  output: o\n  priority: WARNING\n"
    )
    view = admission.AdmissionView.build([UPSTREAM], {}, plugins=PLUGINS, cache=cache)
    first = lines(uses_macro, view)
    assert first == ['error: spec.falcoRules:3:34: rule "X": Undefined macro \'at_night\' used in filter.']
    # exactly what a full load of upstream + falcoRules reports
    full = loader.load(
        [UPSTREAM, RulesFile(admission.CUSTOM_RULES_FILE, uses_macro["spec"]["falcoRules"])], plugins=PLUGINS
    )
    assert [d.message for d in full.errors if d.file == admission.CUSTOM_RULES_FILE] == [
        d.message.split(": ", 1)[1] for d in admission.validate(uses_macro, view)
    ]
    prepared = cache.state
    # another view of the same upstream (a policy changed) reuses the prepared load
    again = admission.AdmissionView.build([UPSTREAM], {("CustomPolicy", "other"): []}, plugins=PLUGINS, cache=cache)
    assert lines(uses_macro, again) == first and cache.state is prepared
    # a new upstream release that defines the macro: the cached load is not reused, the object passes
    release = RulesFile(UPSTREAM.name, UPSTREAM.text + "- macro: at_night\n  condition: evt.num > 0\n")
    newer = admission.AdmissionView.build([release], {}, plugins=PLUGINS, cache=cache)
    assert [line for line in lines(uses_macro, newer) if line.startswith("error")] == []
    assert cache.state is not prepared


def test_exception_values_are_proven_to_stay_literals_at_admission() -> None:
    # A list name between delimiters inside a value would be replaced by Falco: refused, with the path.
    got = lines(exception(match={"fields": ["proc.name"], "values": [["x shell_binaries y"]]}))
    assert len(got) == 1 and got[0].startswith("error: spec.match.values[0][0]: Falco would build")
    # Injections that pre-quoting keeps literal are admitted: the render publishes them confined.
    assert lines(exception(match={"fields": ["proc.name"], "values": [['x" or proc.name exists or proc.name = "y']]})) == []
    assert lines(exception(match={"processNames": ['"x") or proc.name exists or proc.name in ("y"']})) == []


def test_falcos_reader_rules_for_exception_values_fields_and_comps_at_admission() -> None:
    def first(match: dict[str, Any]) -> str:
        return lines(exception(match=match))[0]

    assert first({"fields": ["proc.name"], "values": [[""]]}) == "error: spec.match.values[0][0]: Value must be non-empty"
    assert first({"fields": ["proc.name"], "values": [["a\nb"]]}).startswith(
        "error: spec.match.values[0][0]: contains the control character U+000A"
    )
    assert first({"fields": ["k8s.ns.name[x]"], "values": [["team-a"]]}) == (
        "error: spec.match.fields[0]: 'k8s.ns.name[x]' is not a supported filter field"
    )
    assert "'exists' takes no value" in first(
        {"fields": ["proc.name", "proc.pname"], "comps": ["=", "exists"], "values": [["a", ")or(proc.name exists"]]}
    )
    # a value that is itself a list: the CRD schema (one validator, padlock.api) refuses it first
    assert first({"fields": ["proc.name"], "comps": ["="], "values": [[["a", "b"]]]}) == (
        "error: spec.match.values[0][0]: Input should be a valid string"
    )


def test_a_value_naming_an_upstream_list_under_in_means_that_list_without_a_warning() -> None:
    assert lines(exception(match={"fields": ["proc.name"], "comps": ["in"], "values": [["shell_binaries"]]})) == []
