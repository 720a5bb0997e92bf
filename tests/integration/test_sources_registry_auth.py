"""Pull-secret credentials against a real registry that demands them (docker-registry with htpasswd).

Covers ``padlock.sources`` with ``docker_config`` (a parsed ``.dockerconfigjson``, as the flow reads
it from ``spec.oci.pullSecret``): no credentials and wrong credentials are refused as AccessDenied
naming the pull secret; the right ones resolve and fetch. The operator's own ``~/.docker/config.json``
is never consulted. The registry is started here because the session ``registry`` has no auth.
"""

from __future__ import annotations

import base64
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from padlock import sources
from padlock.api.rulesource import RuleSourceSpec
from padlock.devenv import artifacts, processes
from padlock.devenv import registry as devenv_registry
from padlock.sources.errors import AccessDenied

with warnings.catch_warnings():
    # crypt is deprecated (removed in 3.13) but is the one stdlib way to make the bcrypt hash
    # docker-registry's htpasswd needs; the project targets 3.11.
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

USER, PASSWORD = "robot", "s3cret-pull"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rules" / "v1" / "padlock_example_rules.yaml"


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = devenv_registry.find()
    workdir = tmp_path_factory.mktemp("auth-registry")
    # docker-registry's htpasswd wants bcrypt; glibc/libxcrypt's crypt() makes $2b$ hashes.
    hashed = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))  # cost 4: fast tests
    (workdir / "htpasswd").write_text(f"{USER}:{hashed}\n")
    port = processes.free_port()
    (workdir / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'storage'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: padlock-test-not-a-secret\n"
        f"auth:\n  htpasswd:\n    realm: padlock-test\n    path: {workdir / 'htpasswd'}\n"
    )
    log = (workdir / "registry.log").open("w")
    proc = subprocess.Popen(
        [str(binary), "serve", str(workdir / "config.yml")], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"docker-registry with auth did not start: {(workdir / 'registry.log').read_text()}"
                    )
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def docker_config(host: str, user: str, password: str) -> dict[str, object]:
    return {"auths": {host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}}}


def test_pull_secret_credentials_are_required_and_used(auth_registry: str) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    pushed = artifacts.push_rules_artifact(
        auth_registry, "private/example-rules", "1.0.0", {"rules.yaml": text}, auth=(USER, PASSWORD)
    )
    spec = RuleSourceSpec.model_validate(
        {"oci": {"repository": f"{auth_registry}/private/example-rules", "tag": "1", "plainHTTP": True}}
    )

    with pytest.raises(AccessDenied, match=r"HTTP 401\); check spec\.oci\.pullSecret"):
        sources.resolve("private", spec)
    with pytest.raises(AccessDenied):
        sources.resolve("private", spec, docker_config=docker_config(auth_registry, USER, "wrong"))
    with pytest.raises(AccessDenied):  # credentials for another registry are not sent here
        sources.resolve("private", spec, docker_config=docker_config("ghcr.io", USER, PASSWORD))

    good = docker_config(auth_registry, USER, PASSWORD)
    candidate = sources.resolve("private", spec, docker_config=good)
    assert (candidate.version, candidate.digest) == ("1.0.0", pushed.digest)
    assert sources.fetch("private", spec, candidate, docker_config=good).files[0].text == text
