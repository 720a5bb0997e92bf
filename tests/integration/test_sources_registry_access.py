"""Registry access the session registry cannot show: pull-secret credentials and a private CA.

Covers ``padlock.sources`` against docker-registry instances started here with extra configuration:

- htpasswd auth: no credentials, wrong ones, and ones for another host are refused as AccessDenied
  naming the pull secret; the right ``docker_config`` (parsed ``.dockerconfigjson``) resolves and
  fetches. The operator's own ``~/.docker/config.json`` is never consulted.
- TLS with a private CA (as ``spec.oci.caConfigMap`` provides it): without the CA the check fails as
  retryable SourceUnavailable saying TLS verification failed; with ``ca_pem`` it resolves and fetches.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from padlock import sources
from padlock.api.rulesource import RuleSourceSpec
from padlock.devenv import artifacts, processes
from padlock.devenv import registry as devenv_registry
from padlock.sources.errors import AccessDenied, SourceUnavailable

with warnings.catch_warnings():
    # crypt is deprecated (removed in 3.13) but is the one stdlib way to make the bcrypt hash
    # docker-registry's htpasswd needs; the project targets 3.11.
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

USER, PASSWORD = "robot", "s3cret-pull"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rules" / "v1" / "padlock_example_rules.yaml"


def serve(workdir: Path, extra_config: str) -> Iterator[str]:
    """Run docker-registry on a free loopback port with ``extra_config`` appended; yield host:port."""
    binary = devenv_registry.find()
    port = processes.free_port()
    config = workdir / f"config-{port}.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'storage'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: padlock-test-not-a-secret\n{extra_config}"
    )
    log_path = workdir / f"registry-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([str(binary), "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"docker-registry did not start: {log_path.read_text()}")
                    time.sleep(0.1)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=20)


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("auth-registry")
    hashed = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))  # cost 4: fast tests
    (workdir / "htpasswd").write_text(f"{USER}:{hashed}\n")
    yield from serve(
        workdir, f"auth:\n  htpasswd:\n    realm: padlock-test\n    path: {workdir / 'htpasswd'}\n"
    )


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


def _certificates(workdir: Path) -> str:
    """A CA and a server certificate for 127.0.0.1 signed by it; returns the CA PEM."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "padlock test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    (workdir / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (workdir / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca.public_bytes(serialization.Encoding.PEM).decode()


def test_private_ca_is_needed_and_enough_for_a_tls_mirror(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    ca_pem = _certificates(tmp_path)
    # Publish over plain HTTP, then serve the same storage over TLS (artifacts pushes plain HTTP only).
    plain = serve(tmp_path, "")
    pushed = artifacts.push_rules_artifact(next(plain), "mirror/example-rules", "1.0.0", {"rules.yaml": text})
    plain.close()
    tls = serve(
        tmp_path, f"  tls:\n    certificate: {tmp_path / 'tls.crt'}\n    key: {tmp_path / 'tls.key'}\n"
    )
    host = next(tls)
    try:
        spec = RuleSourceSpec.model_validate(
            {"oci": {"repository": f"{host}/mirror/example-rules", "tag": "1"}}
        )
        with pytest.raises(
            SourceUnavailable, match=r"TLS verification failed .*spec\.oci\.caConfigMap"
        ) as caught:
            sources.resolve("mirror", spec, timeout=5)
        assert caught.value.retryable
        candidate = sources.resolve("mirror", spec, ca_pem=ca_pem)
        assert candidate.digest == pushed.digest
        assert sources.fetch("mirror", spec, candidate, ca_pem=ca_pem).files[0].text == text
    finally:
        tls.close()
