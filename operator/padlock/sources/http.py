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

from padlock.sources import archives, bundles, requirements, single, transfer
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


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _redirect_allowed(spec: HttpSourceSpec | None, original: str, target: str) -> str | None:
    """None when following ``original`` -> ``target`` is allowed, else why not.

    Same scheme, host and port: allowed. Anything else only when ``spec.http.allowedRedirectHosts``
    lists the target's ``host`` or ``host:port``; never from https down to http.
    """
    o_scheme, o_host, o_port = _origin(original)
    t_scheme, t_host, t_port = _origin(target)
    if t_scheme not in ("http", "https"):
        return f"redirect to {t_scheme or 'a relative'} URL {target} is not followed"
    if o_scheme == "https" and t_scheme == "http":
        return f"redirect from https to plain http ({target}) is refused"
    if (o_host, o_port) == (t_host, t_port):
        return None
    allowed = {h.lower() for h in (getattr(spec, "allowed_redirect_hosts", None) or [])}
    if t_host in allowed or f"{t_host}:{t_port}" in allowed:
        return None
    return (f"redirect to another server ({t_host}:{t_port}) is refused; list it in "
            "spec.http.allowedRedirectHosts to allow it")


def _request(source: str, method: str, url: str, timeout: float, *, spec: HttpSourceSpec | None = None,
             max_redirects: int = archives.DEFAULT_LIMITS.max_redirects) -> requests.Response:
    target = url
    for _hop in range(max_redirects + 1):
        try:
            response = requests.request(method, target, timeout=timeout, stream=True, allow_redirects=False)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise SourceUnavailable(
                source, url, f"cannot reach {urllib.parse.urlsplit(target).netloc}: {type(exc).__name__}"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise SourceUnavailable(source, url, f"request failed: {exc}") from exc
        status = response.status_code
        if status in (301, 302, 303, 307, 308) and response.headers.get("Location"):
            response.close()
            nxt = urllib.parse.urljoin(target, response.headers["Location"])
            why = _redirect_allowed(spec, url, nxt)
            if why is not None:
                raise SourceRejected(source, url, why)
            target = nxt
            continue
        break
    else:
        raise SourceRejected(source, url, f"more than {max_redirects} redirects (a redirect loop?)")
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


def _download(source: str, url: str, limits: archives.Limits, timeout: float,
              spec: HttpSourceSpec | None = None) -> bytes:
    response = _request(source, "GET", url, timeout, spec=spec, max_redirects=limits.max_redirects)
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limits.max_compressed_bytes:
        response.close()
        raise ArchiveRejected(source, url, f"server announces {declared} bytes, over the limit of "
                                           f"{limits.max_compressed_bytes} bytes")
    try:
        return transfer.read_capped(response, cap=limits.max_compressed_bytes, deadline=limits.download_seconds)
    except transfer.TooLarge:
        raise ArchiveRejected(
            source, url, f"download is larger than {limits.max_compressed_bytes} bytes"
        ) from None
    except transfer.TooSlow:
        raise SourceUnavailable(
            source, url, f"download did not finish within {limits.download_seconds:g} s"
        ) from None
    except requests.exceptions.RequestException as exc:
        raise SourceUnavailable(source, url, f"download broke off: {exc}") from exc


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
        _request(source, "HEAD", http.url, timeout, spec=http, max_redirects=limits.max_redirects).close()
        digest = f"sha256:{expected}"
    else:
        digest = "sha256:" + hashlib.sha256(_download(source, http.url, limits, timeout, http)).hexdigest()
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
    from padlock.engine.model import RulesFile  # the rules core's type; imported here to keep layers loose

    http = spec.http
    if http is None:
        raise SpecInvalid(source, "", "spec.http is not set")
    url = http.url
    kind = _kind(source, url)
    expected = _expected(source, http)
    data = _download(source, url, limits, timeout, http)
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
