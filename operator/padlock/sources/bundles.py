"""What a rules source hands back: a ``Candidate`` from the cheap check, a ``Bundle`` from the pull.

Called by: every source module builds these (a pull ends in ``engine_checked``); ``padlock.flows.sync_source``
reads them. Plain frozen data, no I/O. ``RulesFile`` is the rules core's type (``padlock.engine.model``)
and is not redefined here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from padlock.sources import requirements

if TYPE_CHECKING:
    from padlock.engine.model import RulesFile


@dataclass(frozen=True)
class Candidate:
    """The version a RuleSource should run now, found without downloading any rules.

    ``reference`` is immutable (``host/repo@sha256:...`` for OCI, the URL for HTTP,
    ``configmap:<ns>/<name>#<key>`` for a ConfigMap) so that ``fetch`` pulls exactly what was checked.
    """

    version: str
    """Version to adopt (``5.1.0``; for HTTP and ConfigMap sources see their modules)."""
    digest: str
    """``sha256:<hex>``: the OCI manifest digest, or the sha256 of the HTTP body / ConfigMap content."""
    reference: str
    """Immutable reference that ``fetch`` pulls."""
    engine_requirement: str | None
    """``engine_version_semver`` from the artifact config (``0.57.0``), when known without a download."""
    available_version: str | None = None
    """Newest version found upstream when it is not the one to adopt (Manual policy or pinned)."""


@dataclass(frozen=True)
class Bundle:
    """The verified rules files of one version of one RuleSource, ready for the rules core."""

    source: str
    """RuleSource name."""
    version: str
    digest: str
    files: tuple[RulesFile, ...]
    """Rules files in archive order (upstream artifacts hold exactly one), text verbatim."""
    engine_requirement: str | None
    """From the artifact config, else from the files' ``required_engine_version`` (highest wins)."""
    reference: str


def engine_checked(
    source: str, candidate: Candidate, files: Iterable[RulesFile], *, engine_requirement: str | None,
    engine_version: str | None, reference: str,
) -> Bundle:
    """The Bundle of ``candidate``'s pulled ``files``, once the cluster's engine can run them.

    Raises ``EngineTooNew`` when ``engine_requirement`` is newer than ``engine_version``; the last step
    of every source's ``fetch``.
    """
    requirements.check_engine(
        engine_requirement, engine_version, source=source, reference=reference, version=candidate.version
    )
    return Bundle(
        source=source,
        version=candidate.version,
        digest=candidate.digest,
        files=tuple(files),
        engine_requirement=engine_requirement,
        reference=reference,
    )
