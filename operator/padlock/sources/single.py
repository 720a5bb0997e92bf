"""Version choice for sources that serve one version at a time (HTTP URL, ConfigMap key). Pure.

Called by: ``padlock.sources.http`` and ``padlock.sources.configmap``. Such a source cannot go back
to an older version by itself, so ``pinnedVersion`` and ``Manual`` can only say "stay where you are":
the candidate is then the current version and digest the caller passed in (unchanged, so nothing is
pulled), with the new content reported as ``available_version``.
"""

from __future__ import annotations

import re

from padlock.sources import selection
from padlock.sources.bundles import Candidate
from padlock.sources.errors import ApprovalRequired, VersionNotFound
from padlock.sources.ports import RuleSourceSpecLike

_VERSION_IN_NAME = re.compile(r"(?<![0-9.])(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+?)?)(?=\.(?:tar\.gz|tgz|ya?ml)$|$)")


def content_version(name: str, digest: str) -> str:
    """``falco-rules-5.1.0.tar.gz`` -> ``5.1.0``; without a version in the name, ``sha256-<12 hex>``."""
    match = _VERSION_IN_NAME.search(name)
    return match.group(1) if match else f"sha256-{digest.removeprefix('sha256:')[:12]}"


def adopt(
    source: str,
    spec: RuleSourceSpecLike,
    *,
    found_version: str,
    found_digest: str,
    reference: str,
    engine_requirement: str | None,
    current_version: str | None,
    current_digest: str | None,
) -> Candidate:
    """The candidate for a one-version source, after ``pinnedVersion`` and ``updatePolicy``."""
    plan = selection.plan(
        found_version,
        pinned=spec.pinned_version,
        manual=spec.update_policy == "Manual",
        approved=spec.approved_version,
        current=current_version,
    )
    if plan.version is None:
        raise ApprovalRequired(source, reference, found_version)
    if plan.version == found_version:
        return Candidate(found_version, found_digest, reference, engine_requirement, plan.available)
    if plan.version == current_version and current_digest:
        return Candidate(current_version, current_digest, reference, None, plan.available)
    raise VersionNotFound(
        source,
        reference,
        f"version {plan.version} is not what this source serves "
        f"(it serves {found_version}); a URL or ConfigMap holds one version at a time",
    )
