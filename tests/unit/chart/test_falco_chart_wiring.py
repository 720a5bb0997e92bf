"""docs/tuner.md's values for the official Falco chart render the http_output the tuner needs.

Covers: the vendored chart (tests/data/falco-chart/falco 9.1.0) cannot be rendered as shipped because
its subcharts are not vendored (helm says which); a copy without the conditional ``dependencies:``
list (all three subcharts are off by default) rendered with the exact values block of docs/tuner.md
gives Falco ``json_output: true``, an enabled ``http_output`` with the tuner's URL, ``mtls`` and the
CA path, the client-certificate Secret mounted where ``client_cert`` points, and the padlock-tuner-ca
ConfigMap mounted where ``ca_cert`` points.

Runs the real helm binary, no cluster needed.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml
from test_chart_renders_least_privilege import _helm

REPO = Path(__file__).resolve().parents[3]
FALCO_CHART = REPO / "tests" / "data" / "falco-chart" / "falco"
DOC = REPO / "docs" / "tuner.md"


def _doc_values() -> str:
    text = DOC.read_text()
    found = re.search(r"<!-- falco-values:.*?-->\n```yaml\n(.*?)```", text, re.S)
    assert found, "docs/tuner.md lost its falco-values block"
    return found.group(1)


def test_the_vendored_chart_needs_its_subcharts_to_render() -> None:
    result = _helm("template", "falco", str(FALCO_CHART))
    assert result.returncode != 0
    assert "missing in charts/ directory: falcosidekick, k8s-metacollector, falco-talon" in result.stderr


def test_the_documented_values_render_falco_http_output_to_the_tuner(tmp_path: Path) -> None:
    chart = tmp_path / "falco"
    shutil.copytree(FALCO_CHART, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    assert all(d.get("condition") for d in meta.pop("dependencies")), "every subchart is optional"
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    values = tmp_path / "values.yaml"
    values.write_text(_doc_values())
    result = _helm("template", "falco", str(chart), "--namespace", "falco", "-f", str(values))
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    (config,) = [d for d in docs if d["kind"] == "ConfigMap" and "falco.yaml" in d.get("data", {})]
    falco: dict[str, Any] = yaml.safe_load(config["data"]["falco.yaml"])
    assert falco["json_output"] is True and falco["json_include_tags_property"] is True
    http = falco["http_output"]
    assert http["enabled"] is True and http["mtls"] is True and http["insecure"] is False
    assert http["url"] == "https://padlock-tuner.padlock-system.svc:8443/"
    (daemonset,) = [d for d in docs if d["kind"] == "DaemonSet"]
    pod = daemonset["spec"]["template"]["spec"]
    (falco_container,) = [c for c in pod["containers"] if c["name"] == "falco"]
    mounts = {m["mountPath"]: m["name"] for m in falco_container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    ca_dir = str(Path(http["ca_cert"]).parent)
    assert volumes[mounts[ca_dir]]["configMap"]["name"] == "padlock-tuner-ca"
    client_dir = str(Path(http["client_cert"]).parent)
    assert Path(http["client_key"]).parent == Path(client_dir)
    assert volumes[mounts[client_dir]]["secret"]["secretName"] == "falco-tuner-client"
