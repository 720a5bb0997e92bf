"""``padlock validate`` on padlock objects: the CRD schema, then the admission webhook's checks offline.

Runs the real click command on the repository's examples and example rules releases, and on bad
objects written to a temporary directory. Each negative case asserts the code, the file and line of
the object's ``kind:`` key, the object, and the field path at the start of the message; plus the JSON
shape shared with rules files, exit codes, mixed rules files + objects, and byte-identical output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from padlock.cli.main import cli

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
RULES_V2 = REPO / "examples" / "rules" / "v2"
RULES_V3 = REPO / "examples" / "rules" / "v3"
WITH_V2 = ("--source", str(RULES_V2), "--plugin", "container=0.4.0")
HEAD = "apiVersion: padlock.dev/v1alpha1\n"
DIAGNOSTIC_KEYS = {"code", "message", "file", "line", "column", "item"}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["validate", *args])
    return result.exit_code, result.stdout


def run_json(*args: str) -> tuple[int, dict[str, Any]]:
    code, out = run("-o", "json", *args)
    return code, json.loads(out)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_every_example_validates_against_the_example_rules() -> None:
    assert EXAMPLES, "no examples/*.yaml"
    code, doc = run_json(*WITH_V2, *map(str, EXAMPLES))
    assert (code, doc) == (0, {"valid": True, "errors": [], "warnings": []})
    code, text = run(*WITH_V2, *map(str, EXAMPLES))
    assert code == 0
    assert [line for line in text.splitlines() if not line.startswith(" ")] == [
        *(f"{p}: Ok" for p in EXAMPLES),
        "0 error(s), 0 warning(s)",
    ]


# (file text, code, (line, column) of the object's kind:, item type, item name, message start, message part)
NEGATIVE = {
    "bad-enum": (
        HEAD + "kind: RuleSource\nmetadata: {name: rs}\n"
        "spec: {oci: {repository: ghcr.io/falcosecurity/rules/falco-rules, tag: '5'}, updatePolicy: Sometimes}\n",
        "OBJECT_ERR_SCHEMA", (2, 1), "RuleSource", "rs", "spec.updatePolicy: ", "(got \"Sometimes\")",
    ),
    "missing-reason": (
        HEAD + "kind: ClusterPolicyException\nmetadata: {name: cpe}\n"
        "spec: {policies: [{kind: ManagedPolicy, name: execution}], match: {processNames: [sh]}}\n",
        "OBJECT_ERR_SCHEMA", (2, 1), "ClusterPolicyException", "cpe", "spec.reason: ", "is required",
    ),
    "two-sources-in-a-rulesource": (
        "# comment first\n" + HEAD + "kind: RuleSource\nmetadata: {name: two}\nspec:\n"
        "  oci: {repository: ghcr.io/falcosecurity/rules/falco-rules, tag: '5'}\n"
        "  http: {url: 'https://example.com/rules.yaml'}\n",
        "OBJECT_ERR_SCHEMA", (3, 1), "RuleSource", "two", "spec: ", "exactly one of spec.oci, spec.http or spec.configMap",
    ),
    "unknown-kind": (
        HEAD + "kind: PolicyWidget\nmetadata: {name: w}\nspec: {}\n",
        "OBJECT_ERR_KIND", (2, 1), "PolicyWidget", "w", "kind: ", '"PolicyWidget" is not a padlock kind',
    ),
    "unknown-api-version": (
        "apiVersion: padlock.dev/v1beta1\nkind: CustomPolicy\nmetadata: {name: c}\nspec: {rules: [x]}\n",
        "OBJECT_ERR_KIND", (2, 1), "CustomPolicy", "c", "apiVersion: ", "padlock objects use padlock.dev/v1alpha1",
    ),
    "undefined-macro-in-falco-rules": (
        HEAD + "kind: CustomPolicy\nmetadata: {name: web-shells}\nspec:\n  falcoRules: |\n"
        "    - rule: Web shell\n      desc: d\n      condition: evt.type = execve and no_such_macro\n"
        "      output: shell %proc.name\n      priority: WARNING\n",
        "OBJECT_ERR_VALIDATE", (2, 1), "CustomPolicy", "web-shells", "spec.falcoRules:3:36: ",
        "Undefined macro 'no_such_macro'",
    ),
    "unknown-exception-field": (
        HEAD + "kind: ClusterPolicyException\nmetadata: {name: nofield}\nspec:\n"
        "  policies: [{kind: ManagedPolicy, name: execution}]\n"
        "  match: {fields: [proc.name, proc.nosuchfield], values: [[sh, x]]}\n  reason: r\n",
        "OBJECT_ERR_VALIDATE", (2, 1), "ClusterPolicyException", "nofield", "spec.match.fields[1]: ",
        "proc.nosuchfield",
    ),
    "missing-policy-reference": (
        HEAD + "kind: ClusterPolicyException\nmetadata: {name: dangling}\nspec:\n"
        "  policies: [{kind: CustomPolicy, name: not-there}]\n  match: {images: [nginx]}\n  reason: r\n",
        "OBJECT_ERR_VALIDATE", (2, 1), "ClusterPolicyException", "dangling", "spec.policies[0].name: ",
        'CustomPolicy "not-there" does not exist',
    ),
    "tenant-exception-reaching-another-namespace": (
        HEAD + "kind: PolicyException\nmetadata: {name: escape, namespace: a}\nspec:\n"
        "  policies: [{kind: ManagedPolicy, name: execution}]\n"
        "  match: {fields: [proc.name, k8s.ns.name], values: [[sh, b]]}\n  reason: r\n",
        "OBJECT_ERR_VALIDATE", (2, 1), "PolicyException", "a/escape", "spec.match.values[0][1]: ",
        'k8s.ns.name "b" is another namespace',
    ),
    "tenant-value-that-would-become-code": (
        HEAD + "kind: PolicyException\nmetadata: {name: code, namespace: a}\nspec:\n"
        "  policies: [{kind: ManagedPolicy, name: execution}]\n"
        "  match: {fields: [proc.name], values: [['x example_shell_binaries y']]}\n  reason: r\n",
        "OBJECT_ERR_VALIDATE", (2, 1), "PolicyException", "a/code", "spec.match.values[0][0]: ",
        "Falco would build",
    ),
    "bad-expires-at": (
        HEAD + "kind: PolicyException\nmetadata: {name: soon, namespace: a}\nspec:\n"
        "  policies: [{kind: ManagedPolicy, name: execution}]\n  match: {images: [nginx]}\n  reason: r\n"
        "  expiresAt: next tuesday\n",
        "OBJECT_ERR_SCHEMA", (2, 1), "PolicyException", "a/soon", "spec.expiresAt: ", '(got "next tuesday")',
    ),
    "comps-count-reported-at-its-field": (
        HEAD + "kind: CustomPolicy\nmetadata: {name: cp}\nspec:\n  rules: [Terminal shell in container]\n"
        "  exceptions:\n    - match: {fields: [proc.name], comps: ['=', '='], values: [[sh]]}\n      reason: r\n",
        "OBJECT_ERR_SCHEMA", (2, 1), "CustomPolicy", "cp", "spec.exceptions[0].match.comps: ",
        "comps must have one operator per field",
    ),
    "misspelt-field": (
        HEAD + "kind: CustomPolicy\nmetadata: {name: typo}\nspec: {rules: [Terminal shell in container], "
        "disabledRule: [x]}\n",
        "OBJECT_ERR_SCHEMA", (2, 1), "CustomPolicy", "typo", "spec.disabledRule: ", "is not a field",
    ),
    "missing-name": (
        HEAD + "kind: CustomPolicy\nmetadata: {labels: {a: b}}\nspec: {rules: [Terminal shell in container]}\n",
        "OBJECT_ERR_SCHEMA", (2, 1), "CustomPolicy", "", "metadata.name: ", "is required",
    ),
    "rule-from-no-source": (
        HEAD + "kind: CustomPolicy\nmetadata: {name: ghost}\nspec: {rules: [No Such Rule]}\n",
        "OBJECT_ERR_VALIDATE", (2, 1), "CustomPolicy", "ghost", "spec.rules[0]: ", 'rule "No Such Rule" is not defined',
    ),
    "list-wrapper": (
        "apiVersion: v1\nkind: List\nitems:\n"
        "  - apiVersion: padlock.dev/v1alpha1\n    kind: CustomPolicy\n    metadata: {name: fine}\n"
        "    spec: {rules: [Terminal shell in container]}\n"
        "  - apiVersion: padlock.dev/v1alpha1\n    kind: CustomPolicy\n    metadata: {name: listed}\n"
        "    spec: {enabled: maybe, rules: [Terminal shell in container]}\n",
        "OBJECT_ERR_SCHEMA", (9, 5), "CustomPolicy", "listed", "spec.enabled: ", '(got "maybe")',
    ),
}


@pytest.mark.parametrize("case", sorted(NEGATIVE))
def test_bad_object_is_reported_at_its_document_with_field_path(tmp_path: Path, case: str) -> None:
    text, code, (line, column), kind, name, start, part = NEGATIVE[case]
    path = write(tmp_path, f"{case}.yaml", text)
    exit_code, doc = run_json(*WITH_V2, path)
    assert exit_code == 1, doc
    assert doc["valid"] is False and doc["warnings"] == []
    assert len(doc["errors"]) == 1, doc["errors"]
    error = doc["errors"][0]
    assert (error["code"], error["file"], error["line"], error["column"]) == (code, path, line, column)
    assert error["item"] == {"type": kind, "name": name}
    assert error["message"].startswith(start) and part in error["message"], error["message"]


def test_yaml_syntax_error_names_file_and_line_and_keeps_earlier_documents(tmp_path: Path) -> None:
    text = HEAD + "kind: CustomPolicy\nmetadata: {name: before}\nspec: {enabled: nope, rules: [x]}\n---\n"
    text += HEAD + "kind: CustomPolicy\nmetadata: {name: broken\nspec: {}\n"
    path = write(tmp_path, "syntax.yaml", text)
    code, doc = run_json(*WITH_V2, path)
    assert code == 1
    assert [(e["code"], e["line"], e["item"]["name"]) for e in doc["errors"]] == [
        ("OBJECT_ERR_SCHEMA", 2, "before"),
        ("LOAD_ERR_YAML_PARSE", 9, ""),
    ]
    assert doc["errors"][1]["file"] == path


def test_disabled_rule_not_in_managed_policy_is_a_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "choices.yaml",
        HEAD + "kind: ManagedPolicy\nmetadata: {name: credential-access}\n"
        "spec:\n  disabledRules: [Search GPG Private Keys, Terminal shell in container]\n",
    )
    code, doc = run_json(*WITH_V2, path)
    assert code == 0 and doc["valid"] is True and doc["errors"] == []
    assert doc["warnings"] == [
        {
            "code": "OBJECT_WARNING",
            "message": 'spec.disabledRules[1]: rule "Terminal shell in container" is not in ManagedPolicy '
            '"credential-access"; disabling it has no effect',
            "file": path,
            "line": 2,
            "column": 1,
            "item": {"type": "ManagedPolicy", "name": "credential-access"},
        }
    ]


def test_choices_for_a_policy_the_catalog_does_not_have_are_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", HEAD + "kind: ManagedPolicy\nmetadata: {name: nope}\nspec: {enabled: true}\n")
    code, doc = run_json(*WITH_V2, path)
    assert code == 0
    assert [(w["item"]["name"], w["message"].split(":")[0]) for w in doc["warnings"]] == [("nope", "metadata.name")]


def test_text_output_names_file_line_object_path_and_code(tmp_path: Path) -> None:
    text, *_ = NEGATIVE["missing-policy-reference"]
    good = write(tmp_path, "good.yaml", HEAD + "kind: CustomPolicy\nmetadata: {name: ok}\nspec: {rules: [Clear shell history]}\n")
    bad = write(tmp_path, "bad.yaml", text)
    code, out = run(*WITH_V2, good, bad)
    assert code == 1
    assert out.splitlines() == [
        f"{good}: Ok",
        f"{bad}: Invalid",
        f'  error: {bad}:2:1: ClusterPolicyException dangling: spec.policies[0].name: CustomPolicy "not-there" '
        "does not exist [missing-policy] OBJECT_ERR_VALIDATE",
        "1 error(s), 0 warning(s)",
    ]


def test_without_source_only_the_schema_is_checked_and_output_says_so(tmp_path: Path) -> None:
    ghost, *_ = NEGATIVE["rule-from-no-source"]
    enum, *_ = NEGATIVE["bad-enum"]
    path = write(tmp_path, "ghost.yaml", ghost)
    code, doc = run_json(path)
    assert code == 0 and doc["errors"] == []
    assert [(w["code"], w["file"]) for w in doc["warnings"]] == [("OBJECT_NOT_CHECKED", "")]
    assert doc["warnings"][0]["message"].startswith("semantic checks skipped: no --source given")
    code, doc = run_json(write(tmp_path, "enum.yaml", enum))
    assert code == 1 and [e["code"] for e in doc["errors"]] == ["OBJECT_ERR_SCHEMA"]


def test_rules_files_among_files_are_a_source_for_the_objects(tmp_path: Path) -> None:
    rules = write(
        tmp_path,
        "local_rules.yaml",
        "- rule: Local only rule\n  desc: d\n  condition: evt.type = execve and proc.name = nc\n"
        "  output: nc %proc.name\n  priority: WARNING\n",
    )
    policy = write(tmp_path, "cp.yaml", HEAD + "kind: CustomPolicy\nmetadata: {name: local}\nspec: {rules: [Local only rule]}\n")
    assert run_json(policy)[0] == 0  # schema only
    assert run_json(*WITH_V2, policy)[0] == 1  # the rule is in no --source
    code, doc = run_json(*WITH_V2, rules, policy)
    assert (code, doc) == (0, {"valid": True, "errors": [], "warnings": []})


def test_json_shape_is_shared_with_rules_files(tmp_path: Path) -> None:
    bad_rules = write(
        tmp_path, "bad_rules.yaml",
        "- rule: r\n  desc: d\n  condition: evt.type = execve and nope\n  output: o\n  priority: INFO\n",
    )
    text, *_ = NEGATIVE["missing-reason"]
    bad_object = write(tmp_path, "bad_object.yaml", text)
    code, doc = run_json(*WITH_V2, bad_rules, bad_object)
    assert code == 1
    assert set(doc) == {"valid", "errors", "warnings"}
    assert {e["file"] for e in doc["errors"]} == {bad_rules, bad_object}
    for d in doc["errors"] + doc["warnings"]:
        assert set(d) == DIAGNOSTIC_KEYS and set(d["item"]) == {"type", "name"}


def test_broken_source_is_an_error_even_when_objects_are_fine() -> None:
    code, doc = run_json("--source", str(RULES_V3), "--plugin", "container=0.4.0", *map(str, EXAMPLES))
    assert code == 1
    assert [(e["code"], e["item"]) for e in doc["errors"]] == [
        ("OBJECT_ERR_VALIDATE", {"type": "RuleSource", "name": "v3"})
    ]
    assert "Search GPG Private Keys" in doc["errors"][0]["message"]


def test_object_namespace_is_where_unnamespaced_exceptions_land(tmp_path: Path) -> None:
    path = write(
        tmp_path, "pe.yaml",
        HEAD + "kind: PolicyException\nmetadata: {name: mine}\nspec:\n"
        "  policies: [{kind: ManagedPolicy, name: execution}]\n"
        "  match: {fields: [k8s.ns.name], values: [[team-a]]}\n  reason: r\n",
    )
    code, doc = run_json(*WITH_V2, path)
    assert code == 1 and doc["errors"][0]["item"] == {"type": "PolicyException", "name": "default/mine"}
    assert run_json(*WITH_V2, "--object-namespace", "team-a", path)[0] == 0


def test_duplicate_and_foreign_documents(tmp_path: Path) -> None:
    one = HEAD + "kind: CustomPolicy\nmetadata: {name: twice}\nspec: {rules: [Clear shell history]}\n"
    path = write(tmp_path, "dup.yaml", one + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\n" + one)
    code, doc = run_json(*WITH_V2, path)
    assert code == 1
    assert [(e["line"], e["message"]) for e in doc["errors"]] == [(11, f"metadata.name: also defined at {path}:2")]
    assert [(w["code"], w["line"], w["item"]) for w in doc["warnings"]] == [
        ("OBJECT_NOT_CHECKED", 7, {"type": "Namespace", "name": "x"})
    ]


def test_directory_argument_validates_its_yaml_files(tmp_path: Path) -> None:
    (tmp_path / "nested").mkdir()
    text, *_ = NEGATIVE["bad-enum"]
    bad = write(tmp_path / "nested", "rs.yaml", text)
    good = write(tmp_path, "a.yaml", HEAD + "kind: CustomPolicy\nmetadata: {name: a}\nspec: {rules: [Clear shell history]}\n")
    code, out = run(*WITH_V2, str(tmp_path))
    assert code == 1
    assert out.splitlines()[:2] == [f"{good}: Ok", f"{bad}: Invalid"]


def test_exit_2_for_unreadable_or_clashing_sources(tmp_path: Path) -> None:
    path = write(tmp_path, "cp.yaml", HEAD + "kind: CustomPolicy\nmetadata: {name: a}\nspec: {rules: [x]}\n")
    result = CliRunner().invoke(cli, ["validate", "--source", str(tmp_path / "missing"), path])
    assert result.exit_code == 2 and "does not exist" in result.stderr
    result = CliRunner().invoke(cli, ["validate", "--source", f"r={RULES_V2}", "--source", f"r={RULES_V3}", path])
    assert result.exit_code == 2 and "share a name" in result.stderr
    assert run("--plugin", "container", path)[0] == 2


def test_output_is_byte_identical_across_processes(tmp_path: Path) -> None:
    paths = [write(tmp_path, f"{case}.yaml", NEGATIVE[case][0]) for case in sorted(NEGATIVE)]
    args = [sys.executable, "-c", "from padlock.cli.main import main; main()", "validate", "-o", "json", *WITH_V2]
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([*args, *map(str, EXAMPLES), *paths], capture_output=True, text=True, env=env)
        assert done.returncode == 1, done.stderr
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert len(json.loads(outputs.pop())["errors"]) == len(NEGATIVE)


def test_object_names_must_be_kubernetes_names(tmp_path: Path) -> None:
    path = write(
        tmp_path, "names.yaml",
        HEAD + "kind: CustomPolicy\nmetadata: {name: Web_Shells}\nspec: {rules: [Clear shell history]}\n---\n"
        + HEAD + "kind: PolicyException\nmetadata: {name: pe, namespace: Team_A}\nspec:\n"
        "  policies: [{kind: ManagedPolicy, name: execution}]\n  match: {images: [nginx]}\n  reason: r\n",
    )
    code, doc = run_json(*WITH_V2, path)
    assert code == 1
    assert [(e["line"], e["message"].split(":")[0]) for e in doc["errors"]] == [
        (2, "metadata.name"),
        (7, "metadata.namespace"),
    ]
