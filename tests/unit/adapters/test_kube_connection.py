"""``load_connection``: the one way the operator and every CLI command find the API server.

Covers: a kubeconfig file's current context, a named ``--context`` in it, and a ``--context`` alone
picking that context from the default kubeconfig (``$KUBECONFIG``) with its server and bearer token.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from padlock.adapters.kube.client import load_connection


def _kubeconfig(path: Path) -> Path:
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "one",
        "clusters": [{"name": n, "cluster": {"server": f"https://{n}.example:6443/", "insecure-skip-tls-verify": True}}
                     for n in ("one", "two")],
        "users": [{"name": n, "user": {"token": f"token-{n}"}} for n in ("one", "two")],
        "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in ("one", "two")],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_kubeconfig_file_gives_its_current_context(tmp_path: Path) -> None:
    connection = load_connection(str(_kubeconfig(tmp_path / "config")))
    assert (connection.server, connection.token, connection.verify) == ("https://one.example:6443", "token-one", False)


def test_a_named_context_of_the_kubeconfig_file_is_used(tmp_path: Path) -> None:
    connection = load_connection(str(_kubeconfig(tmp_path / "config")), "two")
    assert (connection.server, connection.token) == ("https://two.example:6443", "token-two")


def test_a_context_alone_names_a_context_of_the_default_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kubernetes.config.kube_config

    # the kubernetes package reads $KUBECONFIG once, at import (a CLI process starts afresh)
    monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(_kubeconfig(tmp_path / "config")))
    connection = load_connection(context="two")
    assert (connection.server, connection.token) == ("https://two.example:6443", "token-two")
