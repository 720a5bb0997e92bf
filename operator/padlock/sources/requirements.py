"""The Falco engine version an artifact needs, and the check against the cluster's engine. Pure.

Called by: the source modules, on the artifact config (OCI) or the rules text (HTTP, ConfigMap).
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

import semantic_version

from padlock.sources.errors import EngineTooNew

ENGINE_KEY = "engine_version_semver"
_LINE = re.compile(r"^-\s*required_engine_version\s*:\s*['\"]?([^'\"#\s]+)['\"]?", re.MULTILINE)


def normalise(value: object) -> str | None:
    """``26`` or ``"26"`` -> ``0.26.0``; a semver string unchanged; None for anything unreadable."""
    text = str(value).strip()
    if text.isdigit():
        return f"0.{int(text)}.0"
    try:
        semantic_version.Version(text)
    except ValueError:
        return None
    return text


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
    best: semantic_version.Version | None = None
    for text in texts:
        for match in _LINE.finditer(text):
            value = normalise(match.group(1))
            if value is not None and (best is None or semantic_version.Version(value) > best):
                best = semantic_version.Version(value)
    return str(best) if best is not None else None


def check_engine(
    requirement: str | None, engine_version: str | None, *, source: str, reference: str, version: str
) -> None:
    """Raise ``EngineTooNew`` when the artifact needs a newer engine than ``engine_version``.

    Either side unknown means no early verdict: the loader decides with the parsed files.
    """
    if requirement is None or engine_version is None:
        return
    try:
        needed = semantic_version.Version(requirement)
        running = semantic_version.Version(engine_version)
    except ValueError:
        return
    if needed > running:
        raise EngineTooNew(
            source,
            reference,
            f"version {version} requires Falco engine {requirement}, "
            f"but the cluster runs engine {engine_version}",
        )
