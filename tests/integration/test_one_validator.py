"""One validator: the API server, ``padlock validate`` and the render's parse give the same verdict.

Covers a corpus of objects (each example with one field broken or set to an edge value, plus every
rejection of tests/integration/test_crds.py): for each one the real kube-apiserver (server-side dry
run, strict field validation), ``padlock validate`` (schema stage) and ``padlock.policy.policy_objects``
(the one parse the operator, the webhook and ``padlock render`` use) all accept it or all refuse it.
The issue's case is in it: a PolicyException naming a policy without ``kind`` is refused by all three
(the render used to default it to ManagedPolicy).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from test_crds import REJECTIONS

from padlock.cli.main import cli
from padlock.devenv.tools import Runner
from padlock.policy import policy_objects
from support_bodies import DELETE, edited

REPO = Path(__file__).resolve().parents[2]

# (case, example, dotted path, value)
CORPUS: list[tuple[str, str, str, Any]] = [
    ("policy reference without kind", "policyexception-nginx-shell.yaml", "spec.policies",
     [{"name": "execution", "rules": ["Terminal shell in container"]}]),
    ("policy reference of another kind", "policyexception-nginx-shell.yaml", "spec.policies",
     [{"kind": "RuleSource", "name": "execution"}]),
    ("no policies", "policyexception-nginx-shell.yaml", "spec.policies", []),
    ("empty reason", "policyexception-nginx-shell.yaml", "spec.reason", ""),
    ("blank reason is a reason", "policyexception-nginx-shell.yaml", "spec.reason", "   "),
    ("a number where a value string goes", "policyexception-native.yaml", "spec.match.values", [[1, 2]]),
    ("a list where a value string goes", "policyexception-native.yaml", "spec.match.values",
     [[["restic", "velero"], "/etc/"]]),
    ("unknown comparison", "policyexception-native.yaml", "spec.match.comps", ["=", "like"]),
    ("expiry that is not a time", "clusterpolicyexception-expiring.yaml", "spec.expiresAt", "tomorrow"),
    ("expiry without a time zone", "clusterpolicyexception-expiring.yaml", "spec.expiresAt", "2030-01-31T00:00:00"),
    ("expiry with a time zone", "clusterpolicyexception-expiring.yaml", "spec.expiresAt", "2030-01-31T00:00:00+02:00"),
    ("lower-case priority override", "custompolicy-based-on.yaml", "spec.priorityOverride", "info"),
    ("INFO priority override", "custompolicy-based-on.yaml", "spec.priorityOverride", "INFO"),
    ("bad scope namespace", "custompolicy-based-on.yaml", "spec.scope", {"namespaces": {"include": ["Bad_NS"]}}),
    ("misspelt field", "custompolicy-based-on.yaml", "spec.rulez", ["x"]),
    ("basedOn without a policy", "custompolicy-based-on.yaml", "spec.basedOn", {"followUpdates": True}),
    ("enabled as a string", "custompolicy-based-on.yaml", "spec.enabled", "yes"),
    ("disabledRules as a string", "managedpolicy-credential-access.yaml", "spec.disabledRules", "Read sensitive file"),
    ("enabled unset on a managed policy", "managedpolicy-credential-access.yaml", "spec.enabled", DELETE),
    ("load order out of range", "rulesource-oci.yaml", "spec.loadOrder", -1),
    ("load order at the top", "rulesource-oci.yaml", "spec.loadOrder", 99),
    *[(f"test_crds: {case}", example, path, value) for case, example, path, value, _ in REJECTIONS],
]


def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "examples" / name).read_text())
    return data


def _body(example: str, path: str, value: Any) -> dict[str, Any]:
    body = _example(example)
    if path.rsplit(".", 1)[-1] not in _walk(body, path.rsplit(".", 1)[0]) and value is DELETE:
        return body
    return edited(body, path, value if value is DELETE else copy.deepcopy(value))


def _walk(body: dict[str, Any], path: str) -> dict[str, Any]:
    node: Any = body
    for part in path.split("."):
        node = node[part]
    return node if isinstance(node, dict) else {}


def _api_server_accepts(kubectl: Runner, body: dict[str, Any], namespace: str) -> tuple[bool, str]:
    args = ["-n", namespace] if body["kind"] == "PolicyException" else []
    done = kubectl("apply", "--dry-run=server", "-f", "-", *args, input=json.dumps(body), check=False)
    return done.returncode == 0, done.stderr


def _validate_accepts(body: dict[str, Any], tmp_path: Path) -> tuple[bool, str]:
    path = tmp_path / "object.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    done = CliRunner().invoke(cli, ["validate", str(path), "--object-namespace", "default"])
    assert done.exit_code in (0, 1), done.output
    return done.exit_code == 0, done.output


def _render_accepts(body: dict[str, Any], namespace: str) -> tuple[bool, str]:
    body = copy.deepcopy(body)
    if body["kind"] == "PolicyException":
        body["metadata"]["namespace"] = namespace
    parsed = policy_objects.parse_objects([body])
    return not parsed.invalid, "; ".join(d.one_line() for d in parsed.diagnostics)


@pytest.mark.parametrize(("case", "example", "path", "value"), CORPUS, ids=[c[0] for c in CORPUS])
def test_api_server_validate_and_render_give_the_same_verdict(
    case: str, example: str, path: str, value: Any, kubectl: Runner, crds_installed: list[str], namespace: str,
    tmp_path: Path,
) -> None:
    body = _body(example, path, value)
    server, why = _api_server_accepts(kubectl, body, namespace)
    offline, said = _validate_accepts(body, tmp_path)
    rendered, parsed = _render_accepts(body, namespace)
    assert (server, offline, rendered) in ((True, True, True), (False, False, False)), (
        f"{case}: API server {'accepts' if server else 'refuses'} ({why.strip()}); "
        f"padlock validate {'accepts' if offline else 'refuses'} ({said.strip()}); "
        f"render {'accepts' if rendered else 'refuses'} ({parsed})")


def test_the_issues_case_is_refused_everywhere_naming_the_field(tmp_path: Path) -> None:
    body = _body(*CORPUS[0][1:])
    _, said = _validate_accepts(body, tmp_path)
    assert "spec.policies[0].kind: is required" in said
    _, parsed = _render_accepts(body, "default")
    assert "spec.policies[0].kind: is required" in parsed
