"""RuleSource ``spec.http``: a rules file (``.yaml``/``.yml``) or archive (``.tar.gz``/``.tgz``) at a URL.

Called by: ``padlock.sources.resolve`` / ``padlock.sources.fetch``. Synchronous, one request per
call, no retries (the flow retries on ``SourceUnavailable``).

``resolve``: with ``spec.http.sha256`` the content is fixed by the spec, so a HEAD request only
confirms the URL answers and the digest is the expected sha256; without it the body is downloaded
(capped) and its sha256 is the digest. ``fetch`` downloads (capped), checks the sha256 against the
spec and the candidate, then unpacks with ``archives`` limits. The version is taken from the file
name (``falco-rules-5.1.0.tar.gz`` -> ``5.1.0``), else ``sha256-<12 hex>``.
"""

from __future__ import annotations

import hashlib
import posixpath
import urllib.parse

import requests

from padlock.sources import archives, bundles, requirements, single
from padlock.sources.bundles import Bundle, Candidate
from padlock.sources.errors import (
    AccessDenied,
    ArchiveRejected,
    IntegrityError,
    SourceRejected,
    SourceUnavailable,
    SpecInvalid,
    VersionNotFound,
)
from padlock.sources.ports import HttpSourceSpec, RuleSourceSpecLike

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")


def _file_name(url: str) -> str:
    return posixpath.basename(urllib.parse.urlsplit(url).path)


def _kind(source: str, url: str) -> str:
    name = _file_name(url).lower()
    if name.endswith(ARCHIVE_SUFFIXES):
        return "archive"
    if name.endswith(archives.RULES_SUFFIXES):
        return "file"
    raise SpecInvalid(source, url, "spec.http.url must name a .tar.gz, .tgz, .yaml or .yml file")


def _expected(source: str, spec: HttpSourceSpec) -> str | None:
    if not spec.sha256:
        return None
    value = spec.sha256.strip().lower().removeprefix("sha256:")
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise SpecInvalid(source, spec.url, "spec.http.sha256 must be 64 hex digits")
    return value


def _request(source: str, method: str, url: str, timeout: float) -> requests.Response:
    try:
        response = requests.request(method, url, timeout=timeout, stream=True, allow_redirects=True)
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise SourceUnavailable(
            source, url, f"cannot reach {urllib.parse.urlsplit(url).netloc}: {type(exc).__name__}"
        ) from exc
    except requests.exceptions.RequestException as exc:
        raise SourceUnavailable(source, url, f"request failed: {exc}") from exc
    status = response.status_code
    if status == 200 or (method == "HEAD" and status in (405, 501)):
        return response
    response.close()
    if status in (401, 403):
        raise AccessDenied(source, url, f"server refused access (HTTP {status})")
    if status == 404:
        raise VersionNotFound(source, url, "not found (HTTP 404)")
    if status in (408, 429) or status >= 500:
        raise SourceUnavailable(source, url, f"server answered HTTP {status}")
    raise SourceRejected(source, url, f"server answered HTTP {status}")


def _download(source: str, url: str, limits: archives.Limits, timeout: float) -> bytes:
    response = _request(source, "GET", url, timeout)
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > limits.max_compressed_bytes:
                raise ArchiveRejected(
                    source, url, f"download is larger than {limits.max_compressed_bytes} bytes"
                )
            chunks.append(chunk)
    except requests.exceptions.RequestException as exc:
        raise SourceUnavailable(source, url, f"download broke off: {exc}") from exc
    finally:
        response.close()
    return b"".join(chunks)


def resolve(
    source: str,
    spec: RuleSourceSpecLike,
    *,
    current_version: str | None = None,
    current_digest: str | None = None,
    limits: archives.Limits = archives.DEFAULT_LIMITS,
    timeout: float = 30.0,
) -> Candidate:
    """The digest of what the URL serves: the spec's sha256 after a HEAD, else the body's sha256."""
    http = spec.http
    if http is None:
        raise SpecInvalid(source, "", "spec.http is not set")
    _kind(source, http.url)
    expected = _expected(source, http)
    if expected is not None:
        _request(source, "HEAD", http.url, timeout).close()
        digest = f"sha256:{expected}"
    else:
        digest = "sha256:" + hashlib.sha256(_download(source, http.url, limits, timeout)).hexdigest()
    return single.adopt(
        source,
        spec,
        found_version=single.content_version(_file_name(http.url), digest),
        found_digest=digest,
        reference=http.url,
        engine_requirement=None,
        current_version=current_version,
        current_digest=current_digest,
    )


def fetch(
    source: str,
    spec: RuleSourceSpecLike,
    candidate: Candidate,
    *,
    engine_version: str | None = None,
    limits: archives.Limits = archives.DEFAULT_LIMITS,
    timeout: float = 30.0,
) -> Bundle:
    """Download, check the sha256 (spec and candidate), unpack safely."""
    from padlock.core.model import RulesFile  # the rules core's type; imported here to keep layers loose

    http = spec.http
    if http is None:
        raise SpecInvalid(source, "", "spec.http is not set")
    url = http.url
    kind = _kind(source, url)
    expected = _expected(source, http)
    data = _download(source, url, limits, timeout)
    actual = hashlib.sha256(data).hexdigest()
    if expected is not None and actual != expected:
        raise IntegrityError(source, url, f"download has sha256 {actual}, but spec.http.sha256 is {expected}")
    if f"sha256:{actual}" != candidate.digest:
        # Without a pinned sha256 this is a race with a publisher, not tampering: check again later.
        raise SourceUnavailable(
            source,
            url,
            f"download has sha256 {actual}, not the checked {candidate.digest} "
            "(the content changed since the check)",
        )
    if kind == "archive":
        extracted = archives.extract_rules(data, limits=limits, source=source, reference=url)
    else:
        name = _file_name(url)
        extracted = (
            archives.ExtractedFile(
                name, archives.decode_rules_text(name, data, source=source, reference=url)
            ),
        )
    files = tuple(RulesFile(f.name, f.text) for f in extracted)
    return bundles.engine_checked(
        source, candidate, files, engine_requirement=requirements.from_texts(f.text for f in files),
        engine_version=engine_version, reference=url,
    )
