"""``padlock copy`` against the real API server: read a ManagedPolicy from the cluster, create the copy.

Covers: `padlock copy managedpolicy/X NEW --apply` (following) and `--freeze --apply` create
CustomPolicies the API server accepts (CRD schema), with basedOn and, when frozen, the rule list;
printing without --apply reads from the cluster too; an unknown policy exits 1.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from padlock.cli.copy import command

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "managedpolicy-credential-access.yaml"


@pytest.fixture
def managed_policy(control_plane, crds_installed, kubectl):
    body = yaml.safe_load(EXAMPLE.read_text())
    body["metadata"]["name"] = "copy-source"
    path = control_plane.workdir / "copy-source.yaml"
    path.write_text(yaml.safe_dump(body))
    kubectl("apply", "-f", str(path))
    yield body
    kubectl("delete", "--ignore-not-found", "managedpolicy/copy-source", "custompolicy/copy-follow",
            "custompolicy/copy-frozen")


def _run(control_plane, *args):
    return CliRunner().invoke(command, [*args, "--kubeconfig", str(control_plane.kubeconfig("admin"))])


def test_copy_applies_following_and_frozen_custom_policies(control_plane, managed_policy, kubectl):
    res = _run(control_plane, "managedpolicy/copy-source", "copy-follow", "--apply")
    assert res.exit_code == 0, res.output
    assert "custompolicy.padlock.dev/copy-follow created" in res.stdout
    res = _run(control_plane, "managedpolicy/copy-source", "copy-frozen", "--freeze", "--apply")
    assert res.exit_code == 0, res.output
    follow = yaml.safe_load(kubectl("get", "custompolicy/copy-follow", "-o", "yaml").stdout)
    frozen = yaml.safe_load(kubectl("get", "custompolicy/copy-frozen", "-o", "yaml").stdout)
    assert follow["spec"]["basedOn"] == {"managedPolicy": "copy-source", "followUpdates": True}
    assert "rules" not in follow["spec"]
    assert follow["spec"]["disabledRules"] == ["Search Private Keys or Passwords"]
    assert frozen["spec"]["basedOn"] == {"managedPolicy": "copy-source", "followUpdates": False}
    assert frozen["spec"]["rules"] == ["Read sensitive file untrusted", "Search Private Keys or Passwords"]


def test_copy_prints_from_the_cluster_and_fails_for_an_unknown_policy(control_plane, managed_policy):
    res = _run(control_plane, "managedpolicy/copy-source", "printed")
    assert res.exit_code == 0, res.output
    assert yaml.safe_load(res.stdout)["spec"]["basedOn"]["managedPolicy"] == "copy-source"
    res = _run(control_plane, "managedpolicy/does-not-exist", "x")
    assert res.exit_code == 1 and 'no ManagedPolicy named "does-not-exist" in the cluster' in res.stderr
