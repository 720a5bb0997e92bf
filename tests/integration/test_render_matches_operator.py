"""``padlock render`` in CI gives byte for byte what the running operator publishes.

The real operator (chart RBAC, webhook served) follows the example rules from a real registry; the user
has made choices of every kind (disabled rules, a scope, a policy switched off, a CustomPolicy with
inline Falco rules, a priority override and its own exception, a copy of a managed policy, namespaced
and cluster exceptions, one of them expired). The objects are then fetched from the cluster as a
GitOps repository would hold them, and ``padlock render`` runs on them with the same example rules
files: the ConfigMaps must have the same names, the same keys, byte-identical data and the same
content hash and source versions, at v1 and again after v2 is adopted.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support_operator import (
    CONFIGMAP,
    FALCO_NS,
    GPG_RULE,
    OPERATOR_FLAGS,
    PLUGIN,
    RULES,
    running_operator,
    wait_for,
)

SOURCE = "render-match"
ENGINE = "0.62.0"
KINDS = "rulesources,managedpolicies,custompolicies,policyexceptions,clusterpolicyexceptions"
ANNOTATIONS = ("padlock.dev/content-hash", "padlock.dev/source-versions", "padlock.dev/shard-index",
               "padlock.dev/shard-count")


def _user_objects(ns: str) -> list[dict[str, Any]]:
    api = "padlock.dev/v1alpha1"
    return [
        {"apiVersion": api, "kind": "CustomPolicy", "metadata": {"name": "web-tier"}, "spec": {
            "description": "web servers", "priorityOverride": "CRITICAL",
            "scope": {"namespaces": {"include": [ns]}},
            "falcoRules": ("- macro: web_server_proc\n  condition: proc.name in (nginx, httpd)\n"
                           "- rule: Shell from web server\n  desc: a shell spawned by a web server\n"
                           "  condition: example_spawned_process and proc.pname in (nginx, httpd)\n"
                           "  output: shell from web server (command=%proc.cmdline)\n  priority: WARNING\n"),
            "rules": ["Netcat remote shell in container"],
            "exceptions": [{"rules": ["Shell from web server"], "match": {"processNames": ["healthcheck.sh"]},
                            "reason": "the health check runs a shell"}]}},
        {"apiVersion": api, "kind": "CustomPolicy", "metadata": {"name": "my-discovery"},
         "spec": {"basedOn": {"managedPolicy": "credential-access"}, "disabledRules": ["Clear shell history"]}},
        {"apiVersion": api, "kind": "PolicyException", "metadata": {"name": "nginx-shell", "namespace": ns},
         "spec": {"policies": [{"kind": "ManagedPolicy", "name": "execution", "rules": ["Terminal shell in container"]}],
                  "match": {"images": ["nginx"]}, "reason": "the nginx entrypoint runs a shell"}},
        {"apiVersion": api, "kind": "PolicyException", "metadata": {"name": "old-debug", "namespace": ns},
         "spec": {"policies": [{"kind": "ManagedPolicy", "name": "execution"}], "match": {"processNames": ["gdb"]},
                  "reason": "a finished debugging session", "expiresAt": "2020-01-01T00:00:00Z"}},
        {"apiVersion": api, "kind": "ClusterPolicyException", "metadata": {"name": "backup-agent"},
         "spec": {"policies": [{"kind": "ManagedPolicy", "name": "credential-access",
                                "rules": ["Search Private Keys or Passwords"]}],
                  "match": {"containerNames": ["backup"], "processNames": ["restic"]},
                  "reason": "the backup agent reads every file"}},
    ]


@pytest.fixture(scope="module")
def cluster(control_plane: Any, kubectl: Any, helm: Any, registry: str, crds_installed: list[str],
            operator_rbac: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("render-match")
    ns = f"shop-{secrets.token_hex(3)}"
    control_plane.create_namespace(ns)
    cleanup = [("delete", "policyexceptions", "--all", "-n", ns, "--wait=false"),
               ("delete", "custompolicies,clusterpolicyexceptions", "--all", "--wait=false")]
    with running_operator(control_plane, kubectl, registry, workdir, source=SOURCE, source_spec={"loadOrder": 20},
                          helm=helm, flags=[*OPERATOR_FLAGS, "--engine-version", ENGINE],
                          cleanup=cleanup) as running:
        wait_for("managed policies", lambda: running.user.get("managedpolicy", "execution"))
        running.serving("execution")
        for name, choice in (("credential-access", {"disabledRules": ["Read cloud credentials file"]}),
                             ("execution", {"scope": {"namespaces": {"exclude": ["kube-system"]}}}),
                             ("stable-other", {"scope": {"namespaces": {"exclude": ["kube-system"]}}}),
                             ("persistence", {"enabled": False})):
            kubectl("patch", "managedpolicy", name, "--type=merge", "-p", json.dumps({"spec": choice}))
        for obj in _user_objects(ns):
            running.user.apply(obj)
        yield {"kubectl": kubectl, "running": running, "workdir": workdir}


def _published(kubectl: Any) -> dict[str, dict[str, Any]]:
    listing = json.loads(kubectl("get", "configmaps", "-n", FALCO_NS, "-l", f"padlock.dev/ruleset={CONFIGMAP}",
                                 "-o", "json").stdout)
    return {cm["metadata"]["name"]: cm for cm in listing["items"]}


def _settled(kubectl: Any, version: str) -> dict[str, dict[str, Any]]:
    """The published ConfigMaps once they carry ``version`` and every object's status observed it."""
    def check() -> dict[str, dict[str, Any]] | None:
        # Statuses first: the operator writes them after publishing the render that saw those objects, so
        # ConfigMaps read afterwards already carry them (read before, they could be the render before).
        objs = json.loads(kubectl("get", "custompolicies,policyexceptions,clusterpolicyexceptions", "-A",
                                  "-o", "json").stdout)["items"]
        if not all((o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"] for o in objs):
            return None
        cms = _published(kubectl)
        if not cms or not all(f"{SOURCE}={version}" in cm["metadata"]["annotations"]["padlock.dev/source-versions"]
                              for cm in cms.values()):
            return None
        return cms

    first = wait_for(f"ConfigMaps with {SOURCE}={version}", check)
    time.sleep(2)  # renders are debounced: make sure nothing is still on its way
    again = _published(kubectl)
    assert {n: c["data"] for n, c in again.items()} == {n: c["data"] for n, c in first.items()}
    return again


def _render(kubectl: Any, workdir: Path, release: str, version: str) -> dict[str, dict[str, Any]]:
    """``padlock render`` on the objects as fetched from the cluster and the same example rules files."""
    items = json.loads(kubectl("get", KINDS, "-A", "-o", "json").stdout)["items"]
    objects = workdir / f"objects-{version}.yaml"
    objects.write_text(yaml.safe_dump_all(items, sort_keys=True))
    out = workdir / f"rendered-{version}"
    done = subprocess.run(
        [sys.executable, "-m", "padlock", "render", str(objects), "--source", f"{SOURCE}@{version}={RULES / release}",
         "--plugin", PLUGIN, "--engine-version", ENGINE, "--namespace", FALCO_NS, "--configmap", CONFIGMAP,
         "-o", str(out), "--format", "configmaps"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    rendered = [yaml.safe_load(p.read_text()) for p in sorted(out.glob("*.yaml"))]
    return {cm["metadata"]["name"]: cm for cm in rendered}


def _assert_same(published: dict[str, dict[str, Any]], rendered: dict[str, dict[str, Any]]) -> None:
    assert sorted(rendered) == sorted(published)
    for name, cm in published.items():
        mine = rendered[name]
        assert list(mine["data"]) == sorted(cm["data"]), f"{name}: keys"
        for key, text in cm["data"].items():
            assert mine["data"][key].encode() == text.encode(), f"{name}/{key} differs"
        for annotation in ANNOTATIONS:
            assert mine["metadata"]["annotations"].get(annotation) == cm["metadata"]["annotations"].get(annotation), \
                f"{name}: {annotation}"


def test_render_of_the_fetched_objects_equals_the_published_configmaps_at_v1(cluster: dict[str, Any]) -> None:
    kubectl = cluster["kubectl"]
    published = _settled(kubectl, "1.0.0")
    layer = published[CONFIGMAP]["data"]["padlock-policies.yaml"]
    # The inputs are not trivial: every kind of choice reached the published layer.
    for fragment in ("Shell from web server", "padlock_pe_", "padlock_cpe_backup-agent", "padlock_cp_web-tier_0",
                     "kube-system", "CRITICAL"):
        assert fragment in layer, fragment
    assert "gdb" not in layer, "the expired exception is not applied"
    assert f"20-{SOURCE}-padlock_example_rules.yaml" in published[CONFIGMAP]["data"]
    _assert_same(published, _render(kubectl, cluster["workdir"], "v1", "1.0.0"))


def test_render_still_equals_the_operator_after_v2_is_adopted(cluster: dict[str, Any]) -> None:
    kubectl = cluster["kubectl"]
    cluster["running"].push("v2", "1.1.0")
    published = _settled(kubectl, "1.1.0")
    assert GPG_RULE in published[CONFIGMAP]["data"][f"20-{SOURCE}-padlock_example_rules.yaml"]
    _assert_same(published, _render(kubectl, cluster["workdir"], "v2", "1.1.0"))
