"""Which version to run: tag and semver-range selection, pinning and manual approval. Pure.

Called by: ``padlock.sources.oci`` (with the tag list it read from the registry) and the other source
modules (``plan``). No I/O: tags, the tracked tag or range and the spec's choices come in, names come out.

Upstream's floating-tag scheme (falcosecurity/rules ``build/registry/tag.go``, ``ociTagsToUpdate``):
each release gets ``X.Y.Z``; ``X.Y`` when it is the newest patch of its minor; ``X`` when it is the
newest of its major; ``latest`` when it is the newest overall; a pre-release gets only its own tag.
So the exact tag a floating tag points at is one of the final ``X.Y.Z`` tags under its prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import semantic_version

# Exact release tags as upstream writes them: no "v" prefix, no build metadata.
_EXACT = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$")
_MAJOR = re.compile(r"^(0|[1-9]\d*)$")
_MINOR = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)$")


def parse_exact(tag: str) -> semantic_version.Version | None:
    """The version of an exact ``X.Y.Z`` (or ``X.Y.Z-pre``) tag, None for any other tag."""
    if not _EXACT.match(tag):
        return None
    return semantic_version.Version(tag)


def final_versions(tags: list[str] | tuple[str, ...]) -> list[tuple[semantic_version.Version, str]]:
    """Final (non-pre-release) exact tags, newest first."""
    found = [(v, t) for t in tags if (v := parse_exact(t)) is not None and not v.prerelease]
    return sorted(found, key=lambda item: item[0], reverse=True)


def floating_candidates(tags: list[str] | tuple[str, ...], floating: str) -> list[str]:
    """Exact tags that the floating tag ``floating`` may point at, newest first.

    ``5`` -> 5.*.*, ``5.1`` -> 5.1.*, ``latest`` or any other name -> every final tag. An exact tag
    is its own only candidate (pre-releases included, since naming one is deliberate).
    """
    if parse_exact(floating) is not None:
        return [floating] if floating in tags else []
    finals = final_versions(tags)
    if _MAJOR.match(floating):
        major = int(floating)
        return [t for v, t in finals if v.major == major]
    if m := _MINOR.match(floating):
        major, minor = int(m.group(1)), int(m.group(2))
        return [t for v, t in finals if v.major == major and v.minor == minor]
    return [t for _, t in finals]


def parse_range(expression: str) -> semantic_version.NpmSpec:
    """An npm-style range (``^5.0.0``, ``>=5.1.0 <6``, ``5.x``); ValueError with the reason if invalid."""
    try:
        return semantic_version.NpmSpec(expression)
    except ValueError as exc:
        raise ValueError(f"invalid semver range {expression!r}: {exc}") from exc


def highest_in_range(tags: list[str] | tuple[str, ...], expression: str) -> str | None:
    """The highest final ``X.Y.Z`` tag inside the range, None when none matches.

    Pre-releases are excluded even when the range would admit them: a release channel follows
    releases, and a pre-release is only ever adopted by pinning or approving it by name.
    """
    spec = parse_range(expression)
    for version, tag in final_versions(tags):
        if version in spec:
            return tag
    return None


@dataclass(frozen=True)
class Adoption:
    """What to run (``version``, None = nothing yet) and what else is on offer (``available``)."""

    version: str | None
    available: str | None


def plan(
    newest: str,
    *,
    pinned: str | None,
    manual: bool,
    approved: str | None,
    current: str | None,
) -> Adoption:
    """Apply ``pinnedVersion`` and ``updatePolicy`` to the newest version found.

    - ``pinnedVersion`` wins over everything: stay on it, or roll back to it.
    - ``Manual``: run ``approvedVersion`` when set, otherwise stay on the current version; a newer
      version only shows up as ``available``.
    - ``Automatic``: run the newest.
    ``available`` is set whenever the newest differs from the version to run, so status can say so.
    """
    if pinned:
        version: str | None = pinned
    elif manual:
        version = approved or current
    else:
        version = newest
    return Adoption(version=version, available=None if newest == version else newest)
