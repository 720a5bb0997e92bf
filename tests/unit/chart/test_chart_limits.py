"""The chart's ``limits.*`` values reach ``padlock operator`` and the schema refuses nonsense.

Covers: the defaults (256 KiB per object, 512 KiB per namespace, 4 ConfigMaps, as docs/limits.md
says) and a changed value become the operator's flags, which its command line parses into those
numbers; values.schema.json refuses a zero ConfigMap count. Runs the real helm binary.
"""

from __future__ import annotations

import pytest
from test_chart_renders_least_privilege import CHART, _helm, _of, render

from padlock.cli import operator as operator_cli
from padlock.flows.options import Limits

CHART_ARGS = ("--max-object-bytes", "--max-namespace-bytes", "--rules-shards")


def _operator_params(*sets: str) -> dict[str, object]:
    (deploy,) = _of(render(*sets), "Deployment")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    args = [a for a in container["args"][1:] if a.split("=", 1)[0] in CHART_ARGS]
    assert len(args) == 3, container["args"]
    ctx = operator_cli.command.make_context("operator", args)
    return {k: ctx.params[k] for k in ("max_object_bytes", "max_namespace_bytes", "rules_shards")}


def test_default_limits_reach_the_operator_as_documented():
    assert _operator_params() == {"max_object_bytes": 262144, "max_namespace_bytes": 524288, "rules_shards": 4}
    defaults = Limits()
    assert (defaults.object_bytes, defaults.namespace_bytes, defaults.shard_configmaps) == (262144, 524288, 4)


def test_a_changed_limit_reaches_the_operator():
    params = _operator_params("limits.shardConfigMaps=6", "limits.objectBytes=100000")
    assert params["rules_shards"] == 6 and params["max_object_bytes"] == 100000


@pytest.mark.parametrize("value", ["limits.shardConfigMaps=0", "limits.namespaceBytes=-1"])
def test_the_schema_refuses_a_limit_below_one(value):
    result = _helm("template", "padlock", str(CHART), "--set", value)
    assert result.returncode != 0 and value.split("=")[0].split(".")[1] in result.stderr
