"""The effective ruleset end to end through the real rules core (``padlock.engine.loader``).

Covers: a disabled rule stays disabled across an upstream update (render v1 then v2); the new
tagged rule appears in the credential-access policy and runs; scope wrapping accepted by the loader;
namespace pinning visible in the compiled condition; an invalid CustomPolicy is excluded while the
rest publishes; an exception whose fields break the load is traced and excluded; override targets
that vanished upstream are dropped and reported; byte-identical output; ConfigMap shape, hash and
annotations; sharding into several ConfigMaps where every shard set loads in key order; every
rendered ruleset passes ``loader.load``.
"""

from __future__ import annotations

from policy_helpers import NOW

from padlock.devenv.paths import upstream_rules_dir
from padlock.engine import loader
from padlock.engine.model import RulesFile
from padlock.policy import catalog, effective, managed
from padlock.policy.policy_objects import (
    CustomPolicyInput,
    ExceptionInput,
    ExceptionMatch,
    ObjectRef,
    PolicyTarget,
    Scope,
    SourceInput,
)

V1 = """\
- required_engine_version: 0.31.0
- list: shell_binaries
  items: [bash, sh, zsh]
- macro: spawned_process
  condition: (evt.type in (execve, execveat) and evt.dir=<)
- rule: Terminal shell in container
  desc: A shell was spawned in a container.
  condition: spawned_process and proc.name in (shell_binaries) or proc.name = ksh
  output: Shell in container (user=%user.name cmd=%proc.cmdline)
  priority: NOTICE
  tags: [maturity_stable, container, shell, mitre_execution, T1059]
- rule: Search Private Keys or Passwords
  desc: Grep for private keys.
  condition: spawned_process and proc.name = grep and proc.args contains "BEGIN PRIVATE"
  output: Private key search (cmd=%proc.cmdline)
  priority: WARNING
  tags: [maturity_stable, mitre_credential_access, T1552.001]
- rule: Read sensitive file untrusted
  desc: Read of /etc/shadow.
  condition: evt.type = open and fd.name = /etc/shadow
  output: Sensitive file read (file=%fd.name)
  priority: WARNING
  tags: [maturity_stable, mitre_credential_access, T1555]
"""
GPG = """\
- rule: Search GPG Private Keys
  desc: Export of GPG secret keys.
  condition: spawned_process and proc.name = gpg and proc.args contains "--export-secret-keys"
  output: GPG secret key export (cmd=%proc.cmdline)
  priority: WARNING
  tags: [maturity_stable, mitre_credential_access, T1552.001]
"""
V2 = V1 + GPG
PLUGINS = {"container": "0.4.0"}


def _inputs(upstream: str, version: str, *, choices=None, custom=(), exceptions=(), limit=None, **limits):
    src = SourceInput("falco-rules", 0, version, (("falco_rules.yaml", upstream),))
    ruleset = loader.load([RulesFile("falco_rules.yaml", upstream)], plugins=PLUGINS).ruleset
    contents = managed.build_managed(catalog.builtin(), {"falco-rules": ruleset}, {"falco-rules": version})
    choices = choices or {}
    mps = tuple(c.as_input(*choices.get(c.name, (None, ()))) for c in contents)
    kw = {"shard_limit": limit, **limits} if limit else dict(limits)
    return effective.RenderInputs(sources=(src,), managed=mps, custom=tuple(custom),
                                  exceptions=tuple(exceptions), plugins=PLUGINS, **kw)


def _reload(outcome):
    return loader.load([RulesFile(k, v) for k, v in sorted(outcome.files.items())], plugins=PLUGINS)


def _rules(outcome):
    result = _reload(outcome)
    assert result.valid, [d.one_line() for d in result.errors]
    return result.ruleset.rules


KEYS = "Search Private Keys or Passwords"
DISABLE_KEYS = {"credential-access": (None, (KEYS,))}  # its one owner: one disable is enough


def test_disabled_rule_survives_upstream_update_and_new_tagged_rule_runs():
    v1 = effective.render(_inputs(V1, "1.0.0", choices=DISABLE_KEYS), NOW)
    v2 = effective.render(_inputs(V2, "2.0.0", choices=DISABLE_KEYS), NOW)
    for outcome in (v1, v2):
        assert outcome.publishable
        assert _rules(outcome)[KEYS].enabled is False
    assert _rules(v2)["Search GPG Private Keys"].enabled is True
    cred = ObjectRef("ManagedPolicy", "credential-access")
    assert v2.policy_rules[cred] == ("Read sensitive file untrusted", "Search GPG Private Keys")
    assert list(v2.files) == ["00-falco-rules-falco_rules.yaml", "padlock-policies.yaml"]
    assert v2.files["00-falco-rules-falco_rules.yaml"] == V2  # upstream verbatim


def test_rule_no_enabled_policy_selects_is_disabled_in_the_published_set():
    off = {"execution": (False, ())}  # the tactic policy that owns the rule
    rules = _rules(effective.render(_inputs(V1, "1.0.0", choices=off), NOW))
    assert rules["Terminal shell in container"].enabled is False
    assert rules[KEYS].enabled is True


def test_scoped_policy_wraps_the_condition_and_the_loader_accepts_it():
    off = {"execution": (False, ())}
    cp = CustomPolicyInput("web-shells", rules=("Terminal shell in container",), scope=Scope(include=("web",)))
    outcome = effective.render(_inputs(V1, "1.0.0", choices=off, custom=[cp]), NOW)
    rule = _rules(outcome)["Terminal shell in container"]
    assert rule.condition == (
        "(spawned_process and proc.name in (shell_binaries) or proc.name = ksh) and (k8s.ns.name in (web))"
    )
    assert rule.enabled is True


def test_namespaced_exception_naming_its_namespace_compiles_pinned():
    exc = ExceptionInput(ObjectRef("PolicyException", "nginx", "team-a"),
                         (PolicyTarget("ManagedPolicy", "execution", ("Terminal shell in container",)),),
                         ExceptionMatch(images=("nginx",)), "probe")
    outcome = effective.render(_inputs(V1, "1.0.0", exceptions=[exc]), NOW)
    compiled = _rules(outcome)["Terminal shell in container"].compiled_condition
    assert compiled.endswith("and not (container.image.repository in (nginx) and k8s.ns.name = team-a)"), compiled


def test_exception_reaching_into_another_namespace_is_excluded_and_cannot_match_it():
    exc = ExceptionInput(ObjectRef("PolicyException", "sneaky", "team-a"),
                         (PolicyTarget("ManagedPolicy", "execution"),),
                         ExceptionMatch(fields=("k8s.ns.name",), comps=("=",), values=(("team-b",),)), "x")
    outcome = effective.render(_inputs(V1, "1.0.0", exceptions=[exc]), NOW)
    assert outcome.publishable and exc.ref in outcome.excluded
    assert "team-b" not in outcome.files["padlock-policies.yaml"]
    assert "not (" not in _rules(outcome)["Terminal shell in container"].compiled_condition


def test_invalid_custom_policy_is_excluded_while_the_rest_publishes():
    bad = CustomPolicyInput("web", falco_rules=(
        "- rule: X\n  desc: d\n  condition: spawned_process and y\n  output: o %proc.name\n  priority: WARNING\n"))
    good = CustomPolicyInput("ok", falco_rules=(
        "- rule: Z\n  desc: d\n  condition: spawned_process and proc.name = z\n  output: o %proc.name\n"
        "  priority: WARNING\n"))
    outcome = effective.render(_inputs(V1, "1.0.0", custom=[bad, good]), NOW)
    assert outcome.publishable
    assert outcome.excluded == (ObjectRef("CustomPolicy", "web"),)
    assert [d.one_line() for d in outcome.errors] == [
        "CustomPolicy web: spec.falcoRules:3:34: rule \"X\": Undefined macro 'y' used in filter. [undefined-macro]"
    ]
    rules = _rules(outcome)
    assert "X" not in rules and rules["Z"].enabled is True


def test_custom_rule_redefining_an_upstream_rule_is_refused():
    clash = CustomPolicyInput("clash", falco_rules=(
        f"- rule: {KEYS}\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: WARNING\n"))
    outcome = effective.render(_inputs(V1, "1.0.0", custom=[clash]), NOW)
    assert outcome.excluded == (ObjectRef("CustomPolicy", "clash"),)
    assert outcome.errors[0].id == "redefines-upstream"
    assert _rules(outcome)[KEYS].condition.startswith("spawned_process and proc.name = grep")


def test_explicit_override_of_an_upstream_rule_is_allowed():
    tune = CustomPolicyInput("tune", rules=(KEYS,), falco_rules=(
        f"- rule: {KEYS}\n  condition: and not proc.pname = backup\n  override: {{condition: append}}\n"))
    outcome = effective.render(_inputs(V1, "1.0.0", custom=[tune]), NOW)
    assert outcome.excluded == ()
    assert _rules(outcome)[KEYS].condition.endswith("and not proc.pname = backup")


def test_exception_with_an_unknown_field_is_traced_to_its_object_and_excluded():
    bad = ExceptionInput(ObjectRef("ClusterPolicyException", "typo"), (PolicyTarget("ManagedPolicy", "execution"),),
                         ExceptionMatch(fields=("proc.nmae",), comps=("=",), values=(("x",),)), "typo")
    ok = ExceptionInput(ObjectRef("ClusterPolicyException", "fine"), (PolicyTarget("ManagedPolicy", "execution"),),
                        ExceptionMatch(process_names=("bash",)), "fine")
    outcome = effective.render(_inputs(V1, "1.0.0", exceptions=[bad, ok]), NOW)
    assert outcome.publishable
    assert outcome.excluded == (bad.ref,)
    assert outcome.by_object()[bad.ref][0].message.startswith("in the generated policy layer: padlock-policies.yaml:")
    assert "padlock_cpe_fine" in outcome.files["padlock-policies.yaml"]


def test_choices_on_rules_that_vanished_upstream_are_reported_not_emitted():
    choices = {"credential-access": (None, ("Gone Rule",))}
    outcome = effective.render(_inputs(V1, "1.0.0", choices=choices), NOW)
    assert "Gone Rule" not in outcome.files["padlock-policies.yaml"]
    assert [d.id for d in outcome.by_object()[ObjectRef("ManagedPolicy", "credential-access")]] == [
        "missing-disabled-rule"]


def test_render_is_byte_identical_for_the_same_inputs():
    exc = ExceptionInput(ObjectRef("PolicyException", "n", "a"), (PolicyTarget("ManagedPolicy", "execution"),),
                         ExceptionMatch(images=("nginx",)), "r")
    one = effective.render(_inputs(V2, "2.0.0", choices=DISABLE_KEYS, exceptions=[exc]), NOW)
    two = effective.render(_inputs(V2, "2.0.0", choices=DISABLE_KEYS, exceptions=[exc]), NOW,
                           effective.RenderCache())
    assert one.files == two.files and one.content_hash == two.content_hash
    cache = effective.RenderCache()
    warm = [effective.render(_inputs(V2, "2.0.0", choices=DISABLE_KEYS, exceptions=[exc]), NOW, cache)
            for _ in range(2)]
    assert warm[0].files == warm[1].files == one.files  # the cached (unchanged) re-render gives the same bytes
    assert [c.to_manifest() for c in one.configmaps] == [c.to_manifest() for c in two.configmaps]


def test_configmap_carries_hash_source_versions_and_shard_annotations():
    outcome = effective.render(_inputs(V1, "1.0.0"), NOW)
    (cm,) = outcome.configmaps
    manifest = cm.to_manifest()
    assert manifest["metadata"]["name"] == "padlock-rules" and manifest["metadata"]["namespace"] == "falco"
    assert manifest["metadata"]["annotations"] == {
        "padlock.dev/content-hash": effective.content_hash(outcome.files),
        "padlock.dev/source-versions": "falco-rules=1.0.0",
        "padlock.dev/shard-index": "0",
        "padlock.dev/shard-count": "1",
    }
    assert manifest["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "padlock"}
    assert manifest["data"] == outcome.files


def test_large_render_is_sharded_and_every_shard_set_loads_in_key_order():
    excs = [ExceptionInput(ObjectRef("PolicyException", f"e{i:03d}", "team"),
                           tuple(PolicyTarget("ManagedPolicy", p.name) for p in catalog.builtin().policies),
                           ExceptionMatch(images=(f"registry.example.com/app-{i}",)), "r") for i in range(60)]
    outcome = effective.render(_inputs(V1, "1.0.0", exceptions=excs, limit=6000, max_shards=20), NOW)
    assert outcome.publishable
    assert len(outcome.configmaps) >= 3
    assert any(k.startswith("padlock-policies_") for k in outcome.files)
    names = [c.name for c in outcome.configmaps]
    assert names == ["padlock-rules"] + [f"padlock-rules-{i}" for i in range(1, len(names))]
    merged: dict[str, str] = {}
    previous_last = ""
    for cm in outcome.configmaps:
        keys = list(cm.data)
        assert keys == sorted(keys) and keys[0] > previous_last
        previous_last = keys[-1]
        assert sum(len(k) + len(v.encode()) for k, v in cm.data.items()) <= 6000
        assert cm.annotations["padlock.dev/shard-count"] == str(len(names))
        assert cm.annotations["padlock.dev/content-hash"] == outcome.content_hash
        merged.update(cm.data)
    assert merged == outcome.files
    result = loader.load([RulesFile(k, merged[k]) for k in sorted(merged)], plugins=PLUGINS)
    assert result.valid, [d.one_line() for d in result.errors]
    compiled = result.ruleset.rules["Terminal shell in container"].compiled_condition
    assert compiled.count("k8s.ns.name = team") == 60


def test_broken_upstream_is_not_publishable_and_names_the_source():
    broken = V1.replace("fd.name = /etc/shadow", "fd.name = ")
    src = SourceInput("falco-rules", 0, "3.0.0", (("falco_rules.yaml", broken),))
    outcome = effective.render(effective.RenderInputs(sources=(src,), plugins=PLUGINS), NOW)
    assert not outcome.publishable and outcome.files == {} and outcome.configmaps == ()
    assert outcome.errors[0].ref == ObjectRef("RuleSource", "falco-rules")


def test_full_upstream_stable_incubating_sandbox_render_reloads_cleanly_with_scopes():
    upstream = upstream_rules_dir()
    rels = [("falco-rules", 10, "falco-rules-5.1.0/falco_rules.yaml"),
            ("falco-incubating-rules", 20, "falco-incubating-rules-6.0.1/falco-incubating_rules.yaml"),
            ("falco-sandbox-rules", 30, "falco-sandbox-rules-6.1.0/falco-sandbox_rules.yaml")]
    sources, rulesets = [], {}
    for name, order, rel in rels:
        text = (upstream / rel).read_text()
        sources.append(SourceInput(name, order, "x", ((rel.split("/")[1], text),)))
        rulesets[name] = loader.load([RulesFile(rel, text)], plugins=PLUGINS).ruleset
    contents = managed.build_managed(catalog.builtin(), rulesets, {n: "x" for n, _, _ in rels})
    scoped = Scope(include=("prod",), exclude=("kube-system",))
    mps = tuple(c.as_input(enabled=True, scope=scoped if c.name in ("incubating", "sandbox") else None)
                for c in contents)
    outcome = effective.render(effective.RenderInputs(sources=tuple(sources), managed=mps, plugins=PLUGINS), NOW)
    assert outcome.publishable, [d.one_line() for d in outcome.errors]
    rules = _rules(outcome)
    sandbox_rules = [n for n, r in rules.items() if "maturity_sandbox" in r.tags]
    assert sandbox_rules
    for name in sandbox_rules:
        original = rulesets["falco-sandbox-rules"].rules[name]
        if original.enabled:
            assert rules[name].condition == (
                f"({original.condition.strip()}) and (k8s.ns.name in (prod) and not k8s.ns.name in (kube-system))")
