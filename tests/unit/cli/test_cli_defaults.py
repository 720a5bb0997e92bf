"""Consistent CLI defaults: validate, diff and render assume the same plugins and speak -o text|json|yaml.

Covers: the default plugin set is what the vendored Falco chart's default values load (container
plugin, at the chart's version, and no other collector); with no --plugin, a rules file using
container.* fields validates, diffs and renders alike (each command loads the container plugin);
``-o yaml`` gives the same data as ``-o json`` for validate, diff and render, and ``-o text`` is
accepted by all three.
"""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from padlock.cli import defaults
from padlock.cli.main import cli
from padlock.devenv.paths import repo_root

REPO = repo_root()
assert REPO is not None
CHART_VALUES = REPO / "tests" / "data" / "falco-chart" / "falco" / "values.yaml"
RULES = """\
- rule: Shell in a container
  desc: d
  condition: evt.type = execve and container.id != host
  output: shell (container=%container.name)
  priority: WARNING
  tags: [maturity_stable, mitre_execution]
"""


def test_default_plugins_are_the_ones_the_falco_charts_default_values_load():
    values = yaml.safe_load(CHART_VALUES.read_text())
    collectors = values["collectors"]
    assert collectors["enabled"] and collectors["containerEngine"]["enabled"]
    ref = collectors["containerEngine"]["pluginRef"]
    assert {"container": ref.rsplit(":", 1)[1]} == defaults.CHART_PLUGINS
    others = [k for k, v in collectors.items() if isinstance(v, dict) and v.get("enabled") and k != "containerEngine"]
    assert others == [], others


def _invoke(*args):
    return CliRunner().invoke(cli, list(args))


def test_validate_diff_and_render_load_the_container_plugin_without_being_told(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    assert _invoke("validate", str(rules)).exit_code == 0
    assert _invoke("diff", str(rules), str(rules)).exit_code == 0
    done = _invoke("render", "--source", str(rules), "-o", "json")
    assert json.loads(done.output)["publishable"] is True, done.output


def test_yaml_output_is_the_json_data_for_validate_diff_and_render(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    for args in (("validate", str(rules)), ("diff", str(rules), str(rules)), ("render", "--source", str(rules))):
        head, rest = args[0], args[1:]
        as_json = _invoke(head, "-o", "json", *rest)
        as_yaml = _invoke(head, "-o", "yaml", *rest)
        as_text = _invoke(head, "-o", "text", *rest)
        assert as_json.exit_code == as_yaml.exit_code == as_text.exit_code == 0, (as_json.output, as_text.output)
        assert yaml.safe_load(as_yaml.output) == json.loads(as_json.output), head
        assert as_text.output.strip(), head
