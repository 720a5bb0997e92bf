"""The chart's ``limits.*`` values reach ``padlock operator`` and the schema refuses nonsense.

Covers: the defaults (256 KiB per object, 512 KiB per namespace, 3 shards besides padlock-rules,
as docs/limits.md says) and a changed value become the operator's flags, which its command line
parses into those numbers; the shipped Falco values mount exactly the ConfigMaps the default lets
the operator write; values.schema.json refuses nonsense. Runs the real helm binary.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_chart_renders_least_privilege import CHART, _helm, _of, render

from padlock.cli import operator as operator_cli
from padlock.flows.options import Limits, OperatorOptions
from padlock.policy import lock

FALCO_VALUES = Path(__file__).resolve().parents[3] / "charts" / "falco-values" / "padlock.yaml"

CHART_ARGS = ("--max-object-bytes", "--max-namespace-bytes", "--rules-shards")


def _operator_params(*sets: str) -> dict[str, object]:
    (deploy,) = _of(render(*sets), "Deployment")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    args = [a for a in container["args"][1:] if a.split("=", 1)[0] in CHART_ARGS]
    assert len(args) == 3, container["args"]
    ctx = operator_cli.command.make_context("operator", args)
    return {k: ctx.params[k] for k in ("max_object_bytes", "max_namespace_bytes", "rules_shards")}


def test_default_limits_reach_the_operator_as_documented():
    assert _operator_params() == {"max_object_bytes": 262144, "max_namespace_bytes": 524288, "rules_shards": 3}
    defaults = Limits()
    assert (defaults.object_bytes, defaults.namespace_bytes) == (262144, 524288)
    assert OperatorOptions().rules_shards == lock.DEFAULT_RULES_SHARDS == 3


def test_a_changed_limit_reaches_the_operator():
    params = _operator_params("falco.rulesShards=6", "limits.objectBytes=100000")
    assert params["rules_shards"] == 6 and params["max_object_bytes"] == 100000


def test_the_shipped_falco_values_mount_exactly_what_the_operator_may_write():
    """One number: the projected volume of charts/falco-values lists the ConfigMaps the default
    ``falco.rulesShards`` lets the operator write, no more (never read) and no fewer (left out)."""
    values = yaml.safe_load(FALCO_VALUES.read_text())
    (volume,) = [v for v in values["mounts"]["volumes"] if "projected" in v]
    mounted = tuple(s["configMap"]["name"] for s in volume["projected"]["sources"])
    assert mounted == OperatorOptions().publish_target().names()


@pytest.mark.parametrize("value", ["falco.rulesShards=-1", "falco.rulesShards=64", "limits.namespaceBytes=-1"])
def test_the_schema_refuses_nonsense(value):
    result = _helm("template", "padlock", str(CHART), "--set", value)
    assert result.returncode != 0 and value.split("=")[0].split(".")[1] in result.stderr
