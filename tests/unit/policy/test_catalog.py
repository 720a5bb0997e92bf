"""Policy catalog: the shipped catalog, its format's validation, and merging an artifact's catalog.

Covers: every MITRE tactic used upstream has a policy; tactic policies start enabled over stable rules,
incubating/sandbox start disabled; bad catalogs give errors naming file, field path and problem; an
artifact catalog replaces and extends policies; an invalid artifact catalog leaves the built-in one.
"""

from __future__ import annotations

import yaml

from padlock.devenv.paths import upstream_rules_dir
from padlock.policy import catalog

UPSTREAM = upstream_rules_dir()


def _upstream_tactics() -> set[str]:
    tactics: set[str] = set()
    for rel in ("falco-rules-5.1.0/falco_rules.yaml", "falco-incubating-rules-6.0.1/falco-incubating_rules.yaml",
                "falco-sandbox-rules-6.1.0/falco-sandbox_rules.yaml"):
        for item in yaml.load((UPSTREAM / rel).read_text(), Loader=yaml.CSafeLoader):
            tactics.update(t for t in item.get("tags", []) if t.startswith("mitre_"))
    return tactics


def test_every_upstream_mitre_tactic_has_a_policy():
    selected = {t for p in catalog.builtin().policies for t in p.select.tags_any}
    missing = _upstream_tactics() - selected
    assert not missing, f"no catalog policy for {sorted(missing)}"


def test_tactic_policies_select_stable_rules_and_start_enabled_maturity_groups_start_disabled():
    by_name = {p.name: p for p in catalog.builtin().policies}
    assert by_name["credential-access"].select.tags_any == ("mitre_credential_access",)
    assert by_name["credential-access"].select.maturity == ("stable",)
    assert by_name["credential-access"].default_enabled is True
    assert by_name["stable-other"].select.maturity == ("stable",)
    assert by_name["stable-other"].default_enabled is True
    assert "stable-threat-detection" not in by_name  # the superset of the tactic policies is gone
    assert by_name["incubating"].default_enabled is False
    assert by_name["sandbox"].default_enabled is False


def test_selector_requires_every_given_criterion():
    sel = catalog.Selector(tags_any=("mitre_execution",), tags_all=("container",), maturity=("stable",),
                           sources=("falco-rules",))
    assert sel.matches(["maturity_stable", "container", "mitre_execution"], "falco-rules")
    assert not sel.matches(["maturity_incubating", "container", "mitre_execution"], "falco-rules")
    assert not sel.matches(["maturity_stable", "mitre_execution"], "falco-rules")
    assert not sel.matches(["maturity_stable", "container", "mitre_execution"], "other-source")


BAD = """\
apiVersion: padlock.dev/catalog/v1
name: vendor
version: 2.0.0
policies:
  - name: Bad_Name
    displayName: x
    description: y
    select: {tagsAny: [a]}
  - name: ok-name
    displayName: x
    description: y
    select: {maturity: [beta]}
  - name: no-criteria
    displayName: x
    description: y
    select: {sources: [falco-rules]}
  - name: typo
    displayName: x
    description: y
    defaultEnabled: "yes"
    select: {tagsAny: [a], tagz: [b]}
"""


def test_invalid_catalog_reports_file_field_and_problem():
    parsed, problems = catalog.parse(BAD, "bundle/padlock-catalog.yaml")
    assert parsed is None
    assert [p.one_line() for p in problems] == [
        "bundle/padlock-catalog.yaml: policies[0].name: 'Bad_Name' is not a valid Kubernetes object name [invalid-catalog]",
        'bundle/padlock-catalog.yaml: policies[1].select.maturity[0]: unknown maturity "beta" (expected one of stable, incubating, sandbox, deprecated) [invalid-catalog]',
        "bundle/padlock-catalog.yaml: policies[2].select: must give at least one of tagsAny, tagsAll, maturity [invalid-catalog]",
        "bundle/padlock-catalog.yaml: policies[3].defaultEnabled: must be true or false [invalid-catalog]",
        "bundle/padlock-catalog.yaml: policies[3].select.tagz: unknown key [invalid-catalog]",
    ]


def test_catalog_that_is_not_yaml_is_reported_with_its_line():
    parsed, problems = catalog.parse("policies: [\n  {name: a\n", "c.yaml")
    assert parsed is None
    assert problems[0].origin == "c.yaml" and problems[0].path.startswith("line ")


OVERLAY = """\
apiVersion: padlock.dev/catalog/v1
name: vendor
version: 2.0.0
policies:
  - name: credential-access
    displayName: Credential access (vendor)
    description: Vendor's take, incubating included.
    defaultEnabled: true
    select: {tagsAny: [mitre_credential_access], maturity: [stable, incubating]}
  - name: aws
    displayName: AWS
    description: Rules about AWS.
    select: {tagsAny: [aws]}
"""


def test_artifact_catalog_replaces_same_names_and_adds_new_ones():
    base = catalog.builtin()
    merged, problems = catalog.from_bundle(base, [("falco_rules.yaml", "[]"), ("padlock-catalog.yaml", OVERLAY)])
    assert problems == []
    names = [p.name for p in merged.policies]
    assert names == [p.name for p in base.policies] + ["aws"]
    cred = next(p for p in merged.policies if p.name == "credential-access")
    assert cred.select.maturity == ("stable", "incubating")
    assert (cred.catalog_name, cred.catalog_version) == ("vendor", "2.0.0")
    assert merged.version == "2.0.0+vendor.2.0.0"
    assert merged.assignment == catalog.FIRST_MATCH  # the built-in catalog's mode stays in force


def test_invalid_artifact_catalog_keeps_the_builtin_catalog_and_says_why():
    base = catalog.builtin()
    merged, problems = catalog.from_bundle(base, [("padlock-catalog.yaml", BAD)], "falco-rules 5.2.0: ")
    assert merged == base
    assert problems and problems[0].origin == "falco-rules 5.2.0: padlock-catalog.yaml"
