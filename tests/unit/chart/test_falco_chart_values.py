"""Padlock's values for the official Falco chart, rendered by the real chart 9.1.0 with real helm.

Covers: with ``charts/falco-values/padlock.yaml`` the Falco DaemonSet mounts every shard ConfigMap
(``padlock-rules``, ``padlock-rules-1`` … ``-3``) through one projected volume, read-only, at the path
that ``falco.yaml``'s ``rules_files`` lists, and nothing else is mounted there; ``rules_files`` lists
only Padlock's directory (plus ``customRules``' directory after it when a user adds it); falcoctl
installs plugins but no rules artifact and follows nothing; in combination with the chart's own
``customRules`` (no mount collision), ``collectors.kubernetes.enabled`` (the k8smeta plugin is still
installed by falcoctl and loaded) and ``falcosidekick.enabled`` (http_output still points at
falcosidekick) the same holds.

The chart is vendored in ``tests/data/falco-chart`` (provenance there). Its three subcharts
(falcosidekick, k8s-metacollector, falco-talon) are not: the test renders a copy whose Chart.yaml
lists no dependencies, so helm renders Falco's own templates (the DaemonSet, falco.yaml, falcoctl's
config) exactly as published, without the subcharts' objects.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from padlock.devenv import tools

REPO = Path(__file__).resolve().parents[3]
FALCO_CHART = REPO / "tests" / "data" / "falco-chart" / "falco"
VALUES = REPO / "charts" / "falco-values" / "padlock.yaml"
SHARDS = ["padlock-rules", "padlock-rules-1", "padlock-rules-2", "padlock-rules-3"]
PADLOCK_DIR = "/etc/falco/padlock.d"


@pytest.fixture(scope="module")
def chart() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="falco-chart-") as tmp:
        copy = Path(tmp) / "falco"
        shutil.copytree(FALCO_CHART, copy)
        meta = yaml.safe_load((copy / "Chart.yaml").read_text())
        meta.pop("dependencies", None)
        (copy / "Chart.yaml").write_text(yaml.safe_dump(meta))
        yield copy


def template(chart: Path, *extra_values: dict[str, Any]) -> dict[str, Any]:
    helm = tools.find("helm")
    with tempfile.TemporaryDirectory(prefix="padlock-helm-") as home:
        args = [str(helm), "template", "falco", str(chart), "--namespace", "falco", "-f", str(VALUES)]
        for i, values in enumerate(extra_values):
            path = Path(home) / f"extra-{i}.yaml"
            path.write_text(yaml.safe_dump(values))
            args += ["-f", str(path)]
        env = {"HOME": home, "HELM_CACHE_HOME": home, "HELM_CONFIG_HOME": home, "HELM_DATA_HOME": home,
               "PATH": "/usr/bin:/bin"}
        result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    (daemonset,) = [d for d in docs if d["kind"] == "DaemonSet"]
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    falco_yaml = yaml.safe_load(configmaps["falco"]["data"]["falco.yaml"])
    falcoctl = yaml.safe_load(configmaps["falco-falcoctl"]["data"]["falcoctl.yaml"]) \
        if "falco-falcoctl" in configmaps else None
    return {"daemonset": daemonset, "falco": falco_yaml, "falcoctl": falcoctl, "configmaps": configmaps}


def falco_container(daemonset: dict[str, Any]) -> dict[str, Any]:
    (container,) = [c for c in daemonset["spec"]["template"]["spec"]["containers"] if c["name"] == "falco"]
    return container


def padlock_volume(daemonset: dict[str, Any]) -> dict[str, Any]:
    volumes = daemonset["spec"]["template"]["spec"]["volumes"]
    (volume,) = [v for v in volumes if v["name"] == "padlock-rules"]
    return volume


def assert_padlock_wiring(rendered: dict[str, Any]) -> None:
    volume = padlock_volume(rendered["daemonset"])
    assert [s["configMap"]["name"] for s in volume["projected"]["sources"]] == SHARDS
    # The first shard always exists once Padlock published; Falco must not start without it.
    assert [s["configMap"].get("optional", False) for s in volume["projected"]["sources"]] == [
        False, True, True, True]
    mounts = falco_container(rendered["daemonset"])["volumeMounts"]
    at_dir = [m for m in mounts if m["mountPath"] == PADLOCK_DIR]
    assert at_dir == [{"name": "padlock-rules", "mountPath": PADLOCK_DIR, "readOnly": True}]
    assert not any(m.get("subPath") and m["mountPath"].startswith(PADLOCK_DIR) for m in mounts)
    assert rendered["falco"]["rules_files"][0] == PADLOCK_DIR
    assert rendered["falco"]["watch_config_files"] is True


def assert_no_rules_artifact(rendered: dict[str, Any]) -> None:
    falcoctl = rendered["falcoctl"]
    assert falcoctl is not None
    assert falcoctl["artifact"]["allowedTypes"] == ["plugin"]
    assert not any("rules" in ref for ref in falcoctl["artifact"]["install"]["refs"])
    assert falcoctl["artifact"]["follow"]["refs"] == []
    containers = rendered["daemonset"]["spec"]["template"]["spec"]["containers"]
    assert "falcoctl-artifact-follow" not in [c["name"] for c in containers]
    # With "rulesfile" not allowed, falcoctl's emptyDir is not laid over /etc/falco.
    assert not any(m["mountPath"] == "/etc/falco" for m in falco_container(rendered["daemonset"])["volumeMounts"])


def test_padlock_values_mount_every_shard_in_one_projected_volume_listed_in_rules_files(chart: Path) -> None:
    rendered = template(chart)
    assert_padlock_wiring(rendered)
    assert rendered["falco"]["rules_files"] == [PADLOCK_DIR]
    assert_no_rules_artifact(rendered)
    # The container plugin the upstream rules need is still installed by falcoctl and loaded.
    assert any("plugin/container" in ref for ref in rendered["falcoctl"]["artifact"]["install"]["refs"])
    assert "container" in rendered["falco"]["load_plugins"]


def test_custom_rules_mount_elsewhere_and_load_after_padlock(chart: Path) -> None:
    custom = {"customRules": {"site.yaml": "- list: site_list\n  items: [a]\n"},
              "falco": {"rules_files": [PADLOCK_DIR, "/etc/falco/rules.d"]}}
    rendered = template(chart, custom)
    assert_padlock_wiring(rendered)
    assert rendered["falco"]["rules_files"] == [PADLOCK_DIR, "/etc/falco/rules.d"]
    mounts = falco_container(rendered["daemonset"])["volumeMounts"]
    paths = [m["mountPath"] for m in mounts]
    assert len(paths) == len(set(paths)), f"two volumes mounted at one path: {paths}"
    assert {"name": "rules-volume", "mountPath": "/etc/falco/rules.d"}.items() <= next(
        m for m in mounts if m["name"] == "rules-volume").items()


def test_kubernetes_collector_keeps_its_plugin_installed_by_falcoctl(chart: Path) -> None:
    collector = {"collectors": {"kubernetes": {"enabled": True, "collectorHostname": "k8s-metacollector.falco.svc",
                                               "collectorPort": 45000}},
                 # The k8s-metacollector subchart's own default, which Falco's helper reads even when
                 # collectorPort is set; the subchart is not vendored, so its default is given here.
                 "k8s-metacollector": {"service": {"ports": {"broker-grpc": {"port": 45000}}}}}
    rendered = template(chart, collector)
    assert_padlock_wiring(rendered)
    assert_no_rules_artifact(rendered)
    refs = rendered["falcoctl"]["artifact"]["install"]["refs"]
    assert any("k8smeta" in ref for ref in refs), refs
    assert "k8smeta" in rendered["falco"]["load_plugins"]


def test_falcosidekick_keeps_http_output_and_padlock_wiring(chart: Path) -> None:
    rendered = template(chart, {"falcosidekick": {"enabled": True}})
    assert_padlock_wiring(rendered)
    assert_no_rules_artifact(rendered)
    http_output = rendered["falco"]["http_output"]
    assert http_output["enabled"] is True
    assert "falcosidekick" in http_output["url"]
