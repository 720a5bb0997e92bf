"""The issue's load-order case on a real kube-apiserver: a RuleSource ``vendor`` at ``loadOrder: 99``.

Covers: the operator publishes (``99-vendor-...`` used to sort after the generated layer and make Falco
refuse it); read in Falco's order (byte order of the path in the mounted directory) the published keys
put the generated layer last; ``padlock render`` on the objects fetched from the cluster and the same
rules gives the same keys and bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from padlock.engine import readorder
from support_operator import CONFIGMAP, FALCO_NS, PLUGIN, RULES, RunningOperator, running_operator, wait_for

SOURCE = "vendor"


@pytest.fixture(scope="module")
def story(control_plane: Any, kubectl: Any, registry: str, crds_installed: list[str], operator_rbac: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOperator]:
    with running_operator(control_plane, kubectl, registry, tmp_path_factory.mktemp("load-order"), source=SOURCE,
                          source_spec={"loadOrder": 99}) as running:
        yield running


def test_a_source_at_load_order_99_named_vendor_is_published_with_the_layer_last(
    story: RunningOperator, tmp_path: Path,
) -> None:
    user = story.user
    cm = wait_for("the published ConfigMap", user.configmap)
    keys = list(cm["data"])
    assert f"99-{SOURCE}-padlock_example_rules.yaml" in keys
    assert readorder.read_order(keys)[-1] == readorder.LAYER_KEY
    time.sleep(2)  # renders are debounced: compare with what is there once nothing is on its way
    cm = user.configmap() or {}
    items = json.loads(user.kubectl("get", "rulesources,managedpolicies,custompolicies", "-o", "json").stdout)["items"]
    objects = tmp_path / "objects.yaml"
    objects.write_text(yaml.safe_dump_all(items, sort_keys=True))
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "padlock", "render", str(objects), "--source", f"{SOURCE}@1.0.0={RULES / 'v1'}",
         "--plugin", PLUGIN, "--namespace", FALCO_NS, "--configmap", CONFIGMAP, "-o", str(out), "--format", "files"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    rendered = {p.name: p.read_text() for p in out.iterdir()}
    assert sorted(rendered) == sorted(cm["data"])
    for key, text in cm["data"].items():
        assert rendered[key].encode() == text.encode(), f"{key} differs"
