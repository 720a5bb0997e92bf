"""The Falco engine version an artifact needs, and the check against the cluster's engine. Pure.

Called by: the source modules, on the artifact config (OCI) or the rules text (HTTP, ConfigMap).
Versions are read and compared by ``padlock.engine.versions``, as the loader does, so the early gate
and the full check never disagree.
Mirrors falcosecurity/rules ``build/registry/requirements.go``: the requirement is the
``engine_version_semver`` entry of the config's ``requirements``; inside a rules file it is the
``- required_engine_version:`` line, where an integer N means ``0.N.0``. The full loader in
``padlock.engine`` checks the same thing again with the parsed file; this is the cheap early gate
that falcoctl's ``follow`` applies before pulling (and ``install`` forgets: rules issue #293).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from padlock.engine import versions
from padlock.sources.errors import EngineTooNew

ENGINE_KEY = "engine_version_semver"
_LINE = re.compile(r"^-\s*required_engine_version\s*:\s*['\"]?([^'\"#\s]+)['\"]?", re.MULTILINE)


def normalise(value: object) -> str | None:
    """``26`` or ``"26"`` -> ``0.26.0``; a semver string unchanged; None for anything unreadable."""
    return versions.normalise_engine_version(value)


def from_config(config: Mapping[str, Any]) -> str | None:
    """The engine requirement in an artifact config (``requirements: [{name, version}]``)."""
    requirements = config.get("requirements")
    if not isinstance(requirements, list):
        return None
    for entry in requirements:
        if isinstance(entry, Mapping) and entry.get("name") in (ENGINE_KEY, "engine_version"):
            return normalise(entry.get("version"))
    return None


def from_texts(texts: Iterable[str]) -> str | None:
    """The highest ``required_engine_version`` declared in the rules texts, None if none is."""
    found = (normalise(match.group(1)) for text in texts for match in _LINE.finditer(text))
    return versions.highest(v for v in found if v is not None)


def check_engine(
    requirement: str | None, engine_version: str | None, *, source: str, reference: str, version: str
) -> None:
    """Raise ``EngineTooNew`` when ``engine_version`` does not meet the artifact's requirement
    (``versions.compatible``, the loader's own test).

    Either side unknown or unreadable means no early verdict: the loader decides with the parsed files.
    """
    if requirement is None or engine_version is None:
        return
    if versions.parse(requirement) is None or versions.parse(engine_version) is None:
        return
    if not versions.compatible(engine_version, requirement):
        raise EngineTooNew(
            source,
            reference,
            f"version {version} requires Falco engine {requirement}, "
            f"but the cluster runs engine {engine_version}",
        )
