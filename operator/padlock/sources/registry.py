"""A small OCI registry client on top of ``oras`` (``oras.provider.Registry``), for reading rules artifacts.

Called by: ``padlock.sources.oci`` (read side) and ``padlock.devenv.artifacts`` (push side, through
``OrasRegistry``). It adds what the operator needs around oras-py:

- no hidden retries: oras-py's ``do_request`` retries any exception five times with sleeps of up to
  83 s (``oras.decorator.retry``), which would park an operator thread for minutes on a dead mirror;
  here one request gets one ``timeout`` and the flow decides when to retry (``SourceUnavailable``);
- credentials only from the pull secret the caller passes (never ``~/.docker/config.json`` of the
  operator's pod), with Basic challenges answered directly (oras-py only speaks Bearer tokens);
- a custom CA given as PEM text (from ``spec.oci.caConfigMap``), plain HTTP for mirrors;
- errors mapped onto ``padlock.sources.errors`` with the reference and the HTTP status;
- digests checked on every manifest and blob read, and size caps on every download.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from typing import Any

import oras.container
import oras.provider
import requests

from padlock.sources import transfer
from padlock.sources.errors import (
    AccessDenied,
    IntegrityError,
    SourceRejected,
    SourceUnavailable,
    SpecInvalid,
    VersionNotFound,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX])
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # the distribution spec's recommended manifest cap
MAX_CONFIG_BYTES = 1024 * 1024


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parse_repository(repository: str, *, source: str) -> tuple[str, str]:
    """``ghcr.io/falcosecurity/rules/falco-rules`` -> (``ghcr.io``, ``falcosecurity/rules/falco-rules``).

    The host is required: a RuleSource names exactly one registry, and guessing Docker Hub for a
    bare name would pull from somewhere the admin did not write down.
    """
    host, _, path = repository.strip().partition("/")
    if not path or not ("." in host or ":" in host or host == "localhost"):
        raise SpecInvalid(
            source,
            repository,
            "spec.oci.repository must start with a registry host "
            "(e.g. ghcr.io/falcosecurity/rules/falco-rules)",
        )
    if "@" in path or ":" in path:
        raise SpecInvalid(
            source,
            repository,
            "spec.oci.repository must not carry a tag or digest; use spec.oci.tag or spec.oci.semver",
        )
    if path != path.lower():
        raise SpecInvalid(source, repository, "spec.oci.repository path must be lower case")
    return host, path


def basic_credentials(docker_config: Mapping[str, Any] | None, host: str) -> str | None:
    """base64 ``user:password`` for ``host`` from a parsed ``.dockerconfigjson``, None when absent."""
    if not docker_config:
        return None
    auths = docker_config.get("auths")
    if not isinstance(auths, Mapping):
        return None
    # Docker writes keys as "host", "https://host" or the legacy "https://index.docker.io/v1/".
    for key, entry in auths.items():
        bare = str(key).removeprefix("https://").removeprefix("http://").split("/", 1)[0]
        if bare != host or not isinstance(entry, Mapping):
            continue
        if entry.get("auth"):
            return str(entry["auth"])
        if entry.get("username") is not None:
            pair = f"{entry.get('username')}:{entry.get('password', '')}"
            return base64.b64encode(pair.encode()).decode()
    return None


class _TimeoutSession(requests.Session):
    """A session that applies one timeout to every request, including oras' token requests."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)  # type: ignore[arg-type]


class OrasRegistry(oras.provider.Registry):  # type: ignore[misc]
    """``oras.provider.Registry`` without retry loops, with pull-secret credentials and Basic auth."""

    session: requests.Session

    def __init__(
        self, host: str, *, plain_http: bool, tls_verify: bool | str, timeout: float, basic_auth: str | None
    ) -> None:
        super().__init__(hostname=host, insecure=plain_http, tls_verify=tls_verify)
        session = _TimeoutSession(timeout)
        session.cookies.set_policy(self.session.cookies.get_policy())
        self.session = session
        self.auth.session = session
        # A non-empty config stops oras from loading the pod's ~/.docker/config.json.
        self.auth._auth_config = {"auths": {}}
        self._basic = basic_auth
        if basic_auth:
            self.auth._basic_auth = basic_auth

    def _send(
        self, method: str, url: str, headers: dict[str, str], data: Any, json_body: Any, stream: bool
    ) -> requests.Response:
        response: requests.Response = self.session.request(
            method, url, data=data, json=json_body, headers=headers, stream=stream, verify=self._tls_verify
        )
        return response

    def do_request(
        self,
        url: str,
        method: str = "GET",
        data: Any = None,
        headers: dict[str, str] | None = None,
        json: Any = None,
        stream: bool = False,
    ) -> requests.Response:
        headers = dict(headers or {})
        if getattr(self.auth, "token", None):
            headers["Authorization"] = f"Bearer {self.auth.token}"
        response = self._send(method, url, headers, data, json, stream)
        if response.status_code not in (401, 403):
            return response
        challenge = response.headers.get("Www-Authenticate", "")
        if challenge.lower().startswith("basic"):
            if not self._basic or headers.get("Authorization") == f"Basic {self._basic}":
                return response
            headers["Authorization"] = f"Basic {self._basic}"
            return self._send(method, url, headers, data, json, stream)
        if not challenge.lower().startswith("bearer"):
            return response
        self.auth.token = None
        headers, changed = self.auth.authenticate_request(response, headers)
        if not changed:
            return response
        return self._send(method, url, headers, data, json, stream)


class RegistryClient:
    """Read-only access to one repository for one RuleSource; use as a context manager."""

    def __init__(
        self,
        repository: str,
        *,
        source: str,
        plain_http: bool = False,
        docker_config: Mapping[str, Any] | None = None,
        ca_pem: str | None = None,
        timeout: float = 30.0,
        download_seconds: float = 120.0,
    ) -> None:
        self.source = source
        self.download_seconds = download_seconds
        self.host, self.path = parse_repository(repository, source=source)
        self.repository = f"{self.host}/{self.path}"
        self._ca_file: str | None = None
        tls_verify: bool | str = True
        if ca_pem:
            # requests wants a path; the file lives only as long as this client.
            fd, self._ca_file = tempfile.mkstemp(prefix="padlock-ca-", suffix=".pem")
            with os.fdopen(fd, "w") as handle:
                handle.write(ca_pem)
            tls_verify = self._ca_file
        self.oras = OrasRegistry(
            self.host,
            plain_http=plain_http,
            tls_verify=tls_verify,
            timeout=timeout,
            basic_auth=basic_credentials(docker_config, self.host),
        )
        self._container = oras.container.Container(self.path, registry=self.host)

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.oras.session.close()
        if self._ca_file:
            os.unlink(self._ca_file)
            self._ca_file = None

    def _url(self, suffix: str) -> str:
        return f"{self.oras.prefix}://{self.host}/v2/{self.path}/{suffix}"

    def _request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        reference: str,
        headers: dict[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        try:
            response = self.oras.do_request(url, method, headers=headers or {}, stream=stream)
        except requests.exceptions.SSLError as exc:
            raise SourceUnavailable(
                self.source,
                reference,
                f"TLS verification failed for {self.host} (set spec.oci.caConfigMap for a private CA): {exc}",
            ) from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise SourceUnavailable(
                self.source, reference, f"cannot reach registry {self.host}: {type(exc).__name__}"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise SourceUnavailable(self.source, reference, f"request to {self.host} failed: {exc}") from exc
        status = response.status_code
        if status in (200, 201, 202):
            return response
        response.close()
        if status in (401, 403):
            raise AccessDenied(
                self.source,
                reference,
                f"registry refused access to {what} (HTTP {status}); check spec.oci.pullSecret",
            )
        if status == 404:
            raise VersionNotFound(self.source, reference, f"{what} not found (HTTP 404)")
        if status in (408, 429) or status >= 500:
            raise SourceUnavailable(self.source, reference, f"registry answered HTTP {status} for {what}")
        raise SourceRejected(self.source, reference, f"registry answered HTTP {status} for {what}")

    def _read_capped(self, response: requests.Response, cap: int, *, what: str, reference: str) -> bytes:
        try:
            return transfer.read_capped(response, cap=cap, deadline=self.download_seconds)
        except transfer.TooLarge:
            raise SourceRejected(self.source, reference, f"{what} is larger than {cap} bytes") from None
        except transfer.TooSlow:
            raise SourceUnavailable(self.source, reference, f"download of {what} did not finish within "
                                    f"{self.download_seconds:g} s") from None
        except requests.exceptions.RequestException as exc:
            raise SourceUnavailable(self.source, reference, f"download of {what} broke off: {exc}") from exc

    def tags(self) -> list[str]:
        """All tags of the repository (following ``Link`` pagination)."""
        url = self._url("tags/list")
        found: list[str] = []
        pages = 0
        while url:
            pages += 1
            if pages > 100:  # a registry that links in a circle must not hang the operator
                raise SourceRejected(self.source, self.repository, "tag list pagination does not end")
            response = self._request("GET", url, what="tag list", reference=self.repository)
            try:
                body = json.loads(
                    self._read_capped(
                        response, MAX_MANIFEST_BYTES, what="tag list", reference=self.repository
                    )
                )
            except ValueError as exc:
                raise SourceRejected(self.source, self.repository, f"tag list is not JSON: {exc}") from exc
            found.extend(str(t) for t in (body.get("tags") or []))
            link = response.links.get("next", {}).get("url")
            url = f"{self.oras.prefix}://{self.host}{link}" if link and link.startswith("/") else (link or "")
        return found

    def manifest_digest(self, ref: str) -> str:
        """Digest of the manifest at a tag, by HEAD (no body), falling back to GET when not sent."""
        reference = self.ref(ref)
        response = self._request(
            "HEAD",
            self._url(f"manifests/{ref}"),
            what=f"manifest {ref}",
            reference=reference,
            headers={"Accept": MANIFEST_ACCEPT},
        )
        digest = response.headers.get("Docker-Content-Digest")
        if digest and digest.startswith("sha256:"):
            return digest
        return self.manifest(ref)[1]

    def manifest(self, ref: str) -> tuple[dict[str, Any], str, bytes]:
        """(parsed manifest, its digest, raw bytes) at a tag or digest; a digest ref is verified."""
        reference = self.ref(ref)
        response = self._request(
            "GET",
            self._url(f"manifests/{ref}"),
            what=f"manifest {ref}",
            reference=reference,
            headers={"Accept": MANIFEST_ACCEPT},
            stream=True,
        )
        raw = self._read_capped(response, MAX_MANIFEST_BYTES, what=f"manifest {ref}", reference=reference)
        digest = sha256_digest(raw)
        if ref.startswith("sha256:") and digest != ref:
            raise IntegrityError(self.source, reference, f"manifest content has digest {digest}, not {ref}")
        try:
            manifest = json.loads(raw)
        except ValueError as exc:
            raise SourceRejected(self.source, reference, f"manifest is not JSON: {exc}") from exc
        if not isinstance(manifest, dict):
            raise SourceRejected(self.source, reference, "manifest is not a JSON object")
        return manifest, digest, raw

    def blob(self, digest: str, cap: int, *, what: str) -> bytes:
        """A blob's bytes, refused beyond ``cap`` bytes and verified against its digest."""
        reference = self.ref(digest)
        if not isinstance(digest, str) or not digest.startswith("sha256:"):
            raise SourceRejected(self.source, self.repository, f"{what} has unsupported digest {digest!r}")
        response = self._request(
            "GET", self._url(f"blobs/{digest}"), what=what, reference=reference, stream=True
        )
        data = self._read_capped(response, cap, what=what, reference=reference)
        actual = sha256_digest(data)
        if actual != digest:
            raise IntegrityError(self.source, reference, f"{what} has digest {actual}, not {digest}")
        return data

    def ref(self, tag_or_digest: str) -> str:
        """The printable reference ``host/path:tag`` or ``host/path@sha256:...``."""
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"{self.repository}{sep}{tag_or_digest}"
