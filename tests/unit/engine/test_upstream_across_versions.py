"""Every upstream release stays valid under every supported Falco version that meets its requirements.

Covers, for each of the 33 vendored upstream files (``tests/data/upstream-rules``) and each supported
Falco release (``padlock.engine.versions.releases``, 0.40 to 0.44) whose engine meets the file's
``required_engine_version``: the file loads with no error, with that release's plugins (the container
plugin the release ships, none for 0.40 where the container fields are built in); and the rules Padlock
reports as running are exactly the manifest's, with the manifest's ``enabled`` flags. A regression in a
version table (an override key, a field of one catalog, a deprecation turned error) fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from padlock.engine import loader, versions
from padlock.engine.model import RulesFile
from rules_corpus import manifest, read_upstream


def _plugins(release: versions.Release) -> dict[str, str]:
    if release.container_fields_in_core or release.container_plugin is None:
        return {}
    return {"container": release.container_plugin}


def _combinations() -> list[Any]:
    out = []
    for entry in manifest()["files"]:
        req = entry["required_engine_version"]
        required = versions.normalise_engine_version(req)
        assert required is not None
        for release in versions.releases():
            if not versions.compatible(release.engine, required):
                continue
            plugin_req = entry["required_plugin_versions"] or []
            plugins = _plugins(release)
            if any(p["name"] not in plugins or not versions.compatible(plugins[p["name"]], p["version"])
                   for p in plugin_req):
                continue  # that Falco release does not ship the plugin version the file asks for
            out.append(pytest.param(entry, release, id=f"{entry['tag']} on Falco {release.falco}"))
    return out


COMBINATIONS = _combinations()


@pytest.mark.parametrize(("entry", "release"), COMBINATIONS)
def test_upstream_release_is_valid_and_runs_the_manifest_rules(entry: dict[str, Any], release: versions.Release) -> None:
    res = loader.load([RulesFile(entry["file"].split("/")[-1], read_upstream(entry["file"]))],
                      engine_version=release.engine, plugins=_plugins(release))
    assert res.valid, [d.one_line() for d in res.errors]
    running = {name: rule.enabled for name, rule in res.ruleset.rules.items()}
    assert running == {r["name"]: r["enabled"] for r in entry["rules"]}


def test_every_supported_release_judges_some_upstream_release() -> None:
    judged = {p.values[1].falco for p in COMBINATIONS}
    assert judged == {r.falco for r in versions.releases()}


def test_newer_releases_are_only_judged_by_engines_that_meet_them() -> None:
    newest = {p.values[0]["tag"] for p in COMBINATIONS if p.values[1].falco == "0.40.0"}
    assert "falco-rules-3.2.0" in newest
    assert "falco-rules-5.1.0" not in newest  # needs engine 0.57.0 and the container plugin
