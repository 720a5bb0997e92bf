"""``padlock render``: objects in a directory + rules sources -> the operator's files and ConfigMaps.

Covers: -o DIR writes the files (verbatim upstream + generated layer) that load cleanly; the user's
ManagedPolicy choices found in the directory apply; ConfigMaps on stdout equal what the core render
gives (same bytes as the operator); -o json summary; diagnostics on stderr in one-line form with exit
1 when an object is excluded; exit 2 for unreadable input; a new upstream version adds the rule; the
operator's limits and its tenants' precedence (creation times from the objects) decide the same way.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import yaml
from click.testing import CliRunner

from padlock.cli.render import command
from padlock.engine import loader
from padlock.engine.model import RulesFile

RULES_V1 = """\
- macro: spawned_process
  condition: (evt.type in (execve, execveat))
- rule: Terminal shell in container
  desc: A shell was spawned in a container.
  condition: spawned_process and proc.name = bash
  output: Shell (cmd=%proc.cmdline)
  priority: NOTICE
  tags: [maturity_stable, container, shell, mitre_execution, T1059]
- rule: Search Private Keys or Passwords
  desc: Grep for private keys.
  condition: spawned_process and proc.name = grep
  output: Key search (cmd=%proc.cmdline)
  priority: WARNING
  tags: [maturity_stable, mitre_credential_access]
"""
GPG = """\
- rule: Search GPG Private Keys
  desc: GPG secret key export.
  condition: spawned_process and proc.name = gpg
  output: GPG export (cmd=%proc.cmdline)
  priority: WARNING
  tags: [maturity_stable, mitre_credential_access]
"""
OBJECTS = """\
apiVersion: padlock.dev/v1alpha1
kind: RuleSource
metadata: {name: falco-rules}
spec: {oci: {repository: ghcr.io/falcosecurity/rules/falco-rules, tag: "5"}, loadOrder: 10}
---
apiVersion: padlock.dev/v1alpha1
kind: ManagedPolicy
metadata: {name: stable-threat-detection}
spec: {disabledRules: [Search Private Keys or Passwords]}
---
apiVersion: padlock.dev/v1alpha1
kind: ManagedPolicy
metadata: {name: credential-access}
spec: {disabledRules: [Search Private Keys or Passwords]}
---
apiVersion: padlock.dev/v1alpha1
kind: PolicyException
metadata: {name: nginx-shell, namespace: web}
spec:
  policies: [{kind: ManagedPolicy, name: execution, rules: [Terminal shell in container]}]
  match: {images: [nginx]}
  reason: probe runs a shell
"""


def _setup(tmp_path: Path, rules: str = RULES_V1, objects: str = OBJECTS) -> tuple[Path, Path]:
    (tmp_path / "objs").mkdir()
    (tmp_path / "objs" / "all.yaml").write_text(objects)
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "falco_rules.yaml").write_text(rules)
    return tmp_path / "objs", tmp_path / "rules"


def _run(*args: str):
    return CliRunner().invoke(command, [*args, "--plugin", "container=0.4.0"], catch_exceptions=False)


def test_render_writes_files_that_load_and_keep_the_users_choices(tmp_path):
    objs, rules = _setup(tmp_path)
    out = tmp_path / "out"
    res = _run(str(objs), "--source", f"falco-rules@1.0.0={rules}", "-o", str(out), "--format", "files")
    assert res.exit_code == 0, res.output
    keys = sorted(p.name for p in out.iterdir())
    assert keys == ["10-falco-rules-falco_rules.yaml", "padlock-policies.yaml"]
    assert (out / keys[0]).read_text() == RULES_V1
    loaded = loader.load([RulesFile(k, (out / k).read_text()) for k in keys], plugins={"container": "0.4.0"})
    assert loaded.valid, [d.one_line() for d in loaded.errors]
    assert loaded.ruleset.rules["Search Private Keys or Passwords"].enabled is False
    assert "k8s.ns.name = web" in loaded.ruleset.rules["Terminal shell in container"].compiled_condition


def test_new_upstream_version_adds_the_rule_and_keeps_the_disabled_one(tmp_path):
    objs, rules = _setup(tmp_path, RULES_V1 + GPG)
    res = _run(str(objs), "--source", f"falco-rules@2.0.0={rules}", "-o", "json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["publishable"] is True and summary["sourceVersions"] == "falco-rules=2.0.0"
    out = tmp_path / "cms"
    _run(str(objs), "--source", f"falco-rules@2.0.0={rules}", "-o", str(out))
    cm = yaml.safe_load((out / "padlock-rules.yaml").read_text())
    assert cm["metadata"]["annotations"]["padlock.dev/content-hash"] == summary["contentHash"]
    files = cm["data"]
    loaded = loader.load([RulesFile(k, files[k]) for k in sorted(files)], plugins={"container": "0.4.0"})
    assert loaded.ruleset.rules["Search GPG Private Keys"].enabled is True
    assert loaded.ruleset.rules["Search Private Keys or Passwords"].enabled is False


def test_stdout_configmaps_are_byte_identical_across_runs(tmp_path):
    objs, rules = _setup(tmp_path)
    args = (str(objs), "--source", f"falco-rules@1.0.0={rules}", "--now", "2026-05-01T00:00:00Z")
    one, two = _run(*args), _run(*args)
    assert one.exit_code == 0 and one.stdout == two.stdout
    docs = list(yaml.safe_load_all(one.stdout))
    assert [d["metadata"]["name"] for d in docs] == ["padlock-rules"]


def test_excluded_object_is_reported_on_stderr_and_exits_1(tmp_path):
    bad = OBJECTS + """\
---
apiVersion: padlock.dev/v1alpha1
kind: CustomPolicy
metadata: {name: web}
spec:
  falcoRules: |
    - rule: X
      desc: d
      condition: spawned_process and y
      output: o
      priority: WARNING
"""
    objs, rules = _setup(tmp_path, objects=bad)
    res = CliRunner().invoke(command, [str(objs), "--source", f"falco-rules={rules}", "--plugin", "container=0.4.0",
                                       "-o", str(tmp_path / "o"), "--format", "files"])
    assert res.exit_code == 1
    assert ("error: CustomPolicy web: spec.falcoRules:3:34: rule \"X\": Undefined macro 'y' used in filter. "
            "[undefined-macro]") in res.stderr
    assert (tmp_path / "o" / "padlock-policies.yaml").exists()  # the rest still renders


def test_expired_exception_is_not_rendered(tmp_path):
    objects = OBJECTS.replace("reason: probe runs a shell", "reason: probe\n  expiresAt: 2026-01-01T00:00:00Z")
    objs, rules = _setup(tmp_path, objects=objects)
    res = _run(str(objs), "--source", f"falco-rules={rules}", "-o", "json", "--now", "2026-05-01T00:00:00Z")
    summary = json.loads(res.stdout)
    assert summary["expired"] == [{"kind": "PolicyException", "namespace": "web", "name": "nginx-shell"}]
    assert res.exit_code == 0


def test_missing_source_path_is_a_usage_error(tmp_path):
    res = _run(str(tmp_path), "--source", str(tmp_path / "nope"))
    assert res.exit_code == 2 and "does not exist" in res.stderr


def test_not_yaml_objects_file_is_a_usage_error_naming_the_file(tmp_path):
    objs, rules = _setup(tmp_path, objects="a: [\n")
    res = _run(str(objs), "--source", str(rules))
    assert res.exit_code == 2 and "all.yaml: not valid YAML" in res.stderr


def test_cli_render_equals_the_core_render_the_operator_calls(tmp_path):
    from padlock.cli.render import managed_inputs, read_objects, read_source
    from padlock.policy import effective, policy_objects

    objs, rules = _setup(tmp_path)
    now = datetime(2026, 5, 1, tzinfo=UTC)
    res = _run(str(objs), "--source", f"falco-rules@1.0.0={rules}", "--now", "2026-05-01T00:00:00Z")
    parsed = policy_objects.parse_objects(read_objects([objs]))
    src = read_source(f"falco-rules@1.0.0={rules}", dict(parsed.rule_sources))
    mps, _ = managed_inputs([src], parsed, None, {"container": "0.4.0"})
    outcome = effective.render(effective.RenderInputs(
        sources=(src,), managed=tuple(mps), custom=parsed.custom, exceptions=parsed.exceptions,
        plugins={"container": "0.4.0"}), now)
    assert yaml.safe_load(res.stdout)["data"] == outcome.files


def test_limits_and_creation_times_decide_as_in_the_operator(tmp_path):
    def exception(name: str, created: str) -> str:
        return f"""\
---
apiVersion: padlock.dev/v1alpha1
kind: PolicyException
metadata: {{name: {name}, namespace: crowded, creationTimestamp: "{created}"}}
spec:
  policies: [{{kind: ManagedPolicy, name: execution}}]
  match: {{images: [registry.example.com/{name}]}}
  reason: r
"""
    # "a-new" sorts first by name but is the newest: the older one keeps the namespace's room
    objs, rules = _setup(tmp_path, objects=OBJECTS + exception("a-new", "2026-03-01T00:00:00Z")
                         + exception("z-old", "2026-01-01T00:00:00Z"))
    res = _run(str(objs), "--source", f"falco-rules={rules}", "--max-namespace-bytes", "400", "-o", "json")
    assert res.exit_code == 1
    summary = json.loads(res.stdout)
    assert summary["excluded"] == [{"kind": "PolicyException", "namespace": "crowded", "name": "a-new",
                                    "reason": "NamespaceLimit"}]
    assert "[namespace-limit]" in res.stderr and "PolicyException crowded/a-new" in res.stderr
