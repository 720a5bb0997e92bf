"""The one exception tree every rules source raises.

Called by: ``padlock.sources`` modules raise these; ``padlock.flows.sync_source`` catches them and
turns them into a RuleSource condition, an Event and a retry decision. Nothing else is raised for
bad input or an unreachable upstream, so a flow needs exactly one ``except SourceError``.

::

    SourceError                      base: names the RuleSource, the reference and the problem
    ├── SourceUnavailable            retry later: network error, timeout, 5xx, 408/429
    ├── SourceRejected               permanent for this spec/version: retrying gives the same answer
    │   ├── SpecInvalid              the RuleSource spec cannot be acted on (bad repository, no source)
    │   ├── VersionNotFound          pinned/approved version, tag or range matches nothing; 404
    │   ├── AccessDenied             401/403 with the credentials we have
    │   ├── IntegrityError           digest mismatch, digest not in verify.digests, bad sha256
    │   ├── SignatureError           cosign signature missing, not matching the key or the digest
    │   ├── ArchiveRejected          hostile or malformed archive, non-UTF-8 rules file, too big
    │   └── EngineTooNew             the artifact needs a newer Falco engine than the cluster runs
    └── ApprovalRequired             updatePolicy Manual and nothing approved or installed yet

Messages start lower case and have no final period, following the project's diagnostic style:
``RuleSource falco-rules: 127.0.0.1:5000/rules/falco-rules:5: digest sha256:ab.. is not in verify.digests``.
"""

from __future__ import annotations


class SourceError(Exception):
    """Base of every error raised by ``padlock.sources``."""

    #: CamelCase reason for the RuleSource condition (``Degraded``/``Ready``) and Events.
    reason = "SourceError"
    #: Whether the same request may succeed later without a spec change.
    retryable = False

    def __init__(self, source: str, reference: str, problem: str) -> None:
        self.source = source
        self.reference = reference
        self.problem = problem
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The form used in conditions, Events and logs."""
        where = f"{self.reference}: " if self.reference else ""
        return f"RuleSource {self.source}: {where}{self.problem}"


class SourceUnavailable(SourceError):
    """The upstream could not be reached or answered with a server error: retry later."""

    reason = "SourceUnavailable"
    retryable = True


class SourceRejected(SourceError):
    """The upstream answered, and the answer cannot be used: retrying the same version is pointless."""

    reason = "SourceRejected"


class SpecInvalid(SourceRejected):
    """The RuleSource spec itself cannot be acted on."""

    reason = "SpecInvalid"


class VersionNotFound(SourceRejected):
    """No tag, version or object matches what the spec asks for."""

    reason = "VersionNotFound"


class AccessDenied(SourceRejected):
    """The registry or server refused our credentials (or the lack of them)."""

    reason = "AccessDenied"


class IntegrityError(SourceRejected):
    """Content does not match its digest, its expected sha256 or the digest pins."""

    reason = "DigestMismatch"


class SignatureError(SourceRejected):
    """A cosign signature is missing, malformed, or does not verify."""

    reason = "SignatureInvalid"


class ArchiveRejected(SourceRejected):
    """A rules archive or file is hostile, malformed or over a limit."""

    reason = "ArchiveRejected"


class EngineTooNew(SourceRejected):
    """The artifact requires a newer Falco engine than the one the cluster runs."""

    reason = "EngineTooNew"


class ApprovalRequired(SourceError):
    """``updatePolicy: Manual`` found a version, and nothing is approved or installed yet.

    Not a failure: the flow shows ``available_version`` in ``status.availableVersion`` and waits for
    ``spec.approvedVersion``.
    """

    reason = "AwaitingApproval"

    def __init__(self, source: str, reference: str, available_version: str) -> None:
        self.available_version = available_version
        super().__init__(
            source,
            reference,
            f"version {available_version} is available and waits for approval "
            f"(set spec.approvedVersion: {available_version!r})",
        )
