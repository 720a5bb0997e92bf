"""A small synchronous Kubernetes REST client used by the operator's flows and the CLI.

Why not the generated ``kubernetes.client`` APIs: the operator needs exact control over patch content
types (server-side apply, merge patches on ``/status``), plain ``dict`` bodies in and out, and
resourceVersion-aware replaces. The official package is still used to *load* credentials (kubeconfig,
exec plugins, in-cluster service account), so every auth form it supports works here too; the same
credentials are handed to kopf (``connection_info``) so the operator has one identity.

Flows call these methods from worker threads (``asyncio.to_thread``); one ``urllib3.PoolManager`` is
thread-safe.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import urllib3

JSON = dict[str, Any]

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class ApiError(Exception):
    """A non-2xx answer from the API server, with its HTTP status and the Status object's message."""

    def __init__(self, method: str, path: str, status: int, reason: str, message: str) -> None:
        super().__init__(f"{method} {path}: {status} {reason}: {message}")
        self.method = method
        self.path = path
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


@dataclass(frozen=True)
class Connection:
    """Where and how to reach the API server (loaded from a kubeconfig or the in-cluster account)."""

    server: str
    ca_path: str | None
    token: str | None
    cert_path: str | None
    key_path: str | None
    verify: bool
    username: str | None = None
    """The kubeconfig user entry's name (for logs only)."""


def load_connection(kubeconfig: str | None = None, context: str | None = None) -> Connection:
    """Credentials from ``kubeconfig`` (and ``context``), else in-cluster, else the default kubeconfig.

    The one way the operator and every CLI command find the API server. A ``context`` alone names a
    context of the default kubeconfig, so it skips the in-cluster account.
    """
    import kubernetes.client
    import kubernetes.config

    cfg = kubernetes.client.Configuration()
    if kubeconfig or context:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=cfg)
    else:
        try:
            kubernetes.config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                context=context, client_configuration=cfg)
    # kubernetes >= 36 keeps the bearer token under "BearerToken"; older releases under "authorization".
    header = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix("authorization")
    token = header.split(" ", 1)[-1] if header else None
    return Connection(
        server=cfg.host.rstrip("/"),
        ca_path=cfg.ssl_ca_cert,
        token=token,
        cert_path=cfg.cert_file,
        key_path=cfg.key_file,
        verify=bool(cfg.verify_ssl),
    )


class KubeClient:
    """JSON over HTTPS to one API server. Methods take API paths (see ``resources``) and return dicts."""

    def __init__(self, connection: Connection, *, timeout: float = 30.0) -> None:
        self.connection = connection
        kwargs: dict[str, Any] = {
            "timeout": urllib3.Timeout(connect=10.0, read=timeout),
            # 429/503 come back while a new CRD's watch cache initialises or under API priority and
            # fairness; the request was not processed, so retrying (also a POST) is safe.
            "retries": urllib3.Retry(
                total=8, connect=3, read=0, redirect=0, status=8, status_forcelist=(429, 503),
                allowed_methods=None, backoff_factor=0.2, backoff_max=3.0, raise_on_status=False,
            ),
            "maxsize": 8,
        }
        if connection.server.startswith("https"):
            if connection.verify:
                kwargs["cert_reqs"] = ssl.CERT_REQUIRED
                if connection.ca_path:
                    kwargs["ca_certs"] = connection.ca_path
            else:
                kwargs["cert_reqs"] = ssl.CERT_NONE
            if connection.cert_path:
                kwargs["cert_file"] = connection.cert_path
                kwargs["key_file"] = connection.key_path
        self._pool = urllib3.PoolManager(**kwargs)

    # -- verbs ---------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> JSON:
        url = self.connection.server + path
        if params:
            url += "?" + urlencode(params)
        headers = {"Accept": "application/json"}
        if self.connection.token:
            headers["Authorization"] = f"Bearer {self.connection.token}"
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode()
        resp = self._pool.request(method, url, body=data, headers=headers)
        text = resp.data.decode("utf-8", errors="replace")
        payload: Any = {}
        if text:
            try:
                payload = json.loads(text)
            except ValueError:
                payload = {"message": text}
        if resp.status >= 400:
            message = payload.get("message", text) if isinstance(payload, dict) else text
            reason = payload.get("reason", resp.reason or "") if isinstance(payload, dict) else ""
            raise ApiError(method, path, resp.status, str(reason), str(message))
        return payload if isinstance(payload, dict) else {"items": payload}

    def get(self, path: str, **params: str) -> JSON:
        return self.request("GET", path, params=params or None)

    def get_or_none(self, path: str) -> JSON | None:
        try:
            return self.get(path)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    def list(self, path: str, **params: str) -> list[JSON]:
        items: list[JSON] = self.get(path, **params).get("items") or []
        return items

    def create(self, path: str, body: JSON) -> JSON:
        return self.request("POST", path, body=body)

    def replace(self, path: str, body: JSON) -> JSON:
        return self.request("PUT", path, body=body)

    def merge_patch(self, path: str, body: JSON) -> JSON:
        return self.request("PATCH", path, body=body, content_type=MERGE_PATCH)

    def apply(self, path: str, body: JSON, *, field_manager: str, force: bool = True) -> JSON:
        """Server-side apply ``body`` (JSON is valid YAML) as ``field_manager``."""
        params = {"fieldManager": field_manager}
        if force:
            params["force"] = "true"
        return self.request("PATCH", path, body=body, params=params, content_type=APPLY_PATCH)

    def delete(self, path: str) -> JSON | None:
        try:
            return self.request("DELETE", path)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise


def q(name: str) -> str:
    """Quote one path segment (object names are DNS names, but be safe)."""
    return quote(name, safe="")
