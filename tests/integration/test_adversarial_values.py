"""A tenant's exception values never become Falco code, on the real control plane with the real operator.

Covers: a tenant allowed to edit PolicyExceptions in its own namespace only tries the value attacks of
issue 14 through the operator's webhook (injected ``or`` branches in native values and in
``processNames``/``images``, values starting with quotes, single-quoted variants, ``exists`` with a
value, a value naming a list or holding one between blanks, commas, unicode look-alikes of quotes, a
64 KiB value beyond the CRD limit, many rows, an empty value, a newline, a field argument Falco refuses).
Each attempt is refused at admission with a message naming the field path and the reason, or admitted
and published so that the exception Falco builds from the published text (its own builder, with the
published lists substituted) has the ``k8s.ns.name = <tenant namespace>`` pin in every row and compares
each value as one literal. ``padlock validate`` of the published ruleset passes afterwards. With no
webhook at all (only the render checks), the attacks are admitted by the API server, excluded by the
render with the reason in the object's Ready condition, and the valid exception is still published.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from padlock.engine import condition as cond
from padlock.engine import exception_text
from support_operator import (
    CONFIGMAP,
    FALCO_NS,
    OPERATOR_FLAGS,
    PLUGIN,
    SHELL_RULE,
    running_operator,
    wait_for,
)

SOURCE = "adversarial"
API = "padlock.dev/v1alpha1"
INJECTION = 'x" or proc.name exists or proc.name = "y'

ADMITTED = {
    "native-injection": {"fields": ["proc.name"], "values": [[INJECTION]]},
    "leading-quote": {"fields": ["proc.name"], "values": [['"x']]},
    "single-quotes": {"fields": ["proc.name"], "values": [["x' or proc.name exists or proc.name = 'y"]]},
    "process-names": {"processNames": ['"x") or proc.name exists or proc.name in ("y"']},
    "images": {"images": ['"x") or proc.name exists or proc.name in ("y"', "nginx"]},
    "comma": {"fields": ["proc.name"], "values": [["a, b"]]},
    "lookalike-quotes": {"fields": ["proc.name"], "values": [["\u201cx\u201d or proc.name exists"]]},
    "list-name": {"fields": ["proc.name"], "values": [["example_shell_binaries"]]},
    "many-rows": {"fields": ["proc.name"], "values": [[f'r{i}" or proc.name exists or "'] for i in range(200)]},
}
REFUSED = {
    "exists-with-value": (
        {"fields": ["proc.name", "proc.pname"], "comps": ["=", "exists"], "values": [["a", ")or(proc.name exists"]]},
        ["spec.match.values[0][1]", "'exists' takes no value"],
    ),
    "list-between-blanks": (
        {"fields": ["proc.name"], "values": [["x example_shell_binaries y"]]},
        ["spec.match.values[0][0]", "Falco would build"],
    ),
    "empty": ({"fields": ["proc.name"], "values": [[""]]}, ["spec.match.values[0][0]", "Value must be non-empty"]),
    "newline": ({"fields": ["proc.name"], "values": [["a\nb"]]}, ["spec.match.values[0][0]", "control character"]),
    "field-argument": (
        {"fields": ["k8s.ns.name[x]"], "values": [["v"]]},
        ["spec.match.fields[0]", "'k8s.ns.name[x]' is not a supported filter field"],
    ),
    "value-64k": ({"fields": ["proc.name"], "values": [["x" * 65536]]}, ["spec.match.values[0][0]", "4096"]),
}


def _exception(namespace: str, name: str, match: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "PolicyException",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "policies": [{"kind": "ManagedPolicy", "name": "execution", "rules": [SHELL_RULE]}],
            "reason": "adversarial test",
            "match": match,
        },
    }


@pytest.fixture(scope="module")
def story(control_plane: Any, kubectl: Any, helm: Any, registry: str, crds_installed: list[str],
          operator_rbac: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("adversarial")
    ns = f"team-{secrets.token_hex(3)}"
    control_plane.create_namespace(ns)
    # The tenant may edit PolicyExceptions in its own namespace, nothing else.
    kubectl("create", "role", "pe-edit", "-n", ns, "--verb=get,list,watch,create,update,patch,delete",
            "--resource=policyexceptions.padlock.dev")
    kubectl("create", "rolebinding", "pe-edit", "-n", ns, "--role=pe-edit", "--user=tenant")
    cleanup = [("delete", "policyexceptions", "--all", "-n", ns, "--wait=false")]
    with running_operator(control_plane, kubectl, registry, workdir, source=SOURCE, helm=helm,
                          flags=[*OPERATOR_FLAGS], cleanup=cleanup) as running:
        wait_for("managed policies", lambda: running.user.get("managedpolicy", "execution"))
        running.serving("execution")
        kubectl("patch", "managedpolicy", "execution", "--type=merge", "-p", json.dumps({"spec": {"enabled": True}}))
        yield {"kubectl": kubectl, "ns": ns, "workdir": workdir, "running": running}


def _tenant_apply(kubectl: Any, body: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = kubectl(
        "apply", "-f", "-", input=json.dumps(body), identity="tenant", check=False)
    return result


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_attacks_that_cannot_stay_values_are_refused_with_the_field_path(story: dict[str, Any], case: str) -> None:
    match, fragments = REFUSED[case]
    result = _tenant_apply(story["kubectl"], _exception(story["ns"], f"refused-{case}", match))
    assert result.returncode != 0, result.stdout
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def _published_files(kubectl: Any, directory: Path) -> dict[str, str]:
    listing = json.loads(kubectl("get", "configmaps", "-n", FALCO_NS, "-l", f"padlock.dev/ruleset={CONFIGMAP}",
                                 "-o", "json").stdout)
    files: dict[str, str] = {}
    for cm in listing["items"]:
        files.update(cm.get("data") or {})
    directory.mkdir(parents=True, exist_ok=True)
    for key, text in files.items():
        (directory / key).write_text(text)
    return files


def _pinned_rows(entry: dict[str, Any], lists: dict[str, tuple[str, ...]]) -> list[cond.Node]:
    """The rows of the exception Falco builds from a published entry (its builder, lists substituted)."""
    spec = exception_text.ExceptionSpec(
        entry["name"], exception_text.entry_of(entry["fields"]), exception_text.entry_of(entry["comps"]),
        tuple(exception_text.entry_of(v) for v in entry["values"]),
    )
    text, _ = exception_text.resolve_lists(exception_text.exception_condition(spec), lists.items())
    node = cond.parse(text[1:-1])
    return list(node.children) if isinstance(node, cond.Or) else [node]


def test_admitted_attacks_are_published_pinned_and_literal_and_the_ruleset_validates(
    story: dict[str, Any],
) -> None:
    kubectl, ns = story["kubectl"], story["ns"]
    for case, match in ADMITTED.items():
        result = _tenant_apply(kubectl, _exception(ns, f"admitted-{case}", match))
        assert result.returncode == 0, f"{case}: {result.stderr}"
    names = {f"padlock_pe_{ns}_admitted-{case}" for case in ADMITTED}

    def published() -> dict[str, Any] | None:
        files = _published_files(kubectl, story["workdir"] / "published")
        layer = "".join(files[k] for k in sorted(files) if k.startswith("padlock-policies"))
        entries = {e["name"]: e for item in yaml.safe_load(layer) or [] for e in item.get("exceptions") or []}
        return entries if names <= set(entries) else None

    entries = wait_for("every admitted exception in the published layer", published, timeout=120)
    files = _published_files(kubectl, story["workdir"] / "published")
    raw_lists = [(item["list"], [str(i) for i in item.get("items") or []])
                 for key in sorted(files) for item in yaml.safe_load(files[key]) or [] if "list" in item]
    lists = exception_text.expand_lists(raw_lists)
    pin = cond.Check(cond.FieldRef("k8s.ns.name"), "=", cond.Str(ns))
    for name in sorted(names):
        rows = _pinned_rows(entries[name], lists)
        for row in rows:
            terms = row.children if isinstance(row, cond.And) else (row,)
            assert terms[-1] == pin, f"{name}: {cond.render(row)}"
            assert all(isinstance(t, cond.Check) and not isinstance(t.value, cond.ListRef) for t in terms), name
            assert not any(isinstance(t, cond.Check) and t.op == "exists" for t in terms), name
    injected = _pinned_rows(entries[f"padlock_pe_{ns}_admitted-native-injection"], lists)
    assert injected == [cond.And((cond.Check(cond.FieldRef("proc.name"), "=", cond.Str(INJECTION)), pin))]
    assert len(_pinned_rows(entries[f"padlock_pe_{ns}_admitted-many-rows"], lists)) == 200
    done = subprocess.run(
        [sys.executable, "-m", "padlock", "validate", *sorted(str(p) for p in (story["workdir"] / "published").iterdir()),
         "--plugin", PLUGIN], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_without_the_webhook_the_render_excludes_the_attack_reports_it_and_publishes_the_rest(
    story: dict[str, Any],
) -> None:
    # Last in the module: the webhook configuration is removed, so only the render checks what follows.
    kubectl, ns, running = story["kubectl"], story["ns"], story["running"]
    running.hook.remove()
    attack = _exception(ns, "attack", {"fields": ["proc.name"], "values": [["x example_shell_binaries y"]]})
    exists = _exception(ns, "exists", {"fields": ["proc.name", "proc.pname"], "comps": ["=", "exists"],
                                       "values": [["a", ")or(proc.name exists"]]})
    good = _exception(ns, "good", {"fields": ["proc.name"], "values": [[INJECTION]]})
    probe = {**attack, "metadata": {**attack["metadata"], "name": "probe"}}
    wait_for("the API server to stop calling the webhook", lambda: kubectl(
        "create", "--dry-run=server", "-f", "-", input=json.dumps(probe), identity="tenant", check=False
    ).returncode == 0)
    for body in (attack, exists, good):
        result = _tenant_apply(kubectl, body)
        assert result.returncode == 0, result.stderr  # nothing refuses it at admission here

    def reported(name: str) -> str | None:
        cond_ = running.user.condition("Ready", "policyexception", name, "-n", ns)
        return cond_["message"] if cond_ and cond_["status"] == "False" else None

    assert "Falco would build" in wait_for("the attack reported on its object", lambda: reported("attack"))
    assert "'exists' takes no value" in wait_for("the exists attack reported", lambda: reported("exists"))
    good_name, files = f"padlock_pe_{ns}_good", {}

    def published() -> bool:
        files.update(_published_files(kubectl, story["workdir"] / "published-without-webhook"))
        layer = "".join(files[k] for k in sorted(files) if k.startswith("padlock-policies"))
        return good_name in layer

    wait_for("the valid exception published", published, timeout=120)
    layer = "".join(files[k] for k in sorted(files) if k.startswith("padlock-policies"))
    assert f"padlock_pe_{ns}_attack" not in layer and f"padlock_pe_{ns}_exists" not in layer
    done = subprocess.run(
        [sys.executable, "-m", "padlock", "validate",
         *sorted(str(p) for p in (story["workdir"] / "published-without-webhook").iterdir()), "--plugin", PLUGIN],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
