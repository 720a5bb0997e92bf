"""padlock.webhook.certs: generated certificates are trusted by a client for each SAN, provided ones are checked."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from padlock.webhook import certs

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


async def _handshake(files: certs.TlsFiles, server_hostname: str) -> bytes:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(files.certfile, files.pkeyfile)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cafile=str(files.cafile))
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname=server_hostname
        )
        data = await reader.read()
        writer.close()
        return data
    finally:
        server.close()
        await server.wait_closed()


def test_generated_certificate_is_trusted_via_the_ca_for_ip_and_service_names(tmp_path: Path) -> None:
    sans = ["127.0.0.1", *certs.service_sans("padlock-webhook", "padlock-system")]
    # Generated for real time here: the TLS stack checks validity against the system clock.
    files = certs.ensure(tmp_path, sans, now=datetime.datetime.now(datetime.UTC))
    assert asyncio.run(_handshake(files, "127.0.0.1")) == b"ok"
    assert asyncio.run(_handshake(files, "padlock-webhook.padlock-system.svc")) == b"ok"


def test_a_name_not_in_the_certificate_is_refused_by_the_client(tmp_path: Path) -> None:
    files = certs.ensure(tmp_path, ["127.0.0.1"], now=datetime.datetime.now(datetime.UTC))
    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(_handshake(files, "evil.example"))


def test_serving_certificate_has_ip_and_dns_sans_and_the_ca_is_separate(tmp_path: Path) -> None:
    files = certs.ensure(tmp_path, ["127.0.0.1", "padlock-webhook.padlock-system.svc"], now=NOW)
    cert = x509.load_pem_x509_certificate(files.certfile.read_bytes())
    ca = x509.load_pem_x509_certificate(files.cafile.read_bytes())
    assert sorted(certs.certificate_sans(cert)) == ["127.0.0.1", "padlock-webhook.padlock-system.svc"]
    assert cert.issuer == ca.subject != cert.subject
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_before_utc < NOW < cert.not_valid_after_utc
    assert (files.pkeyfile.stat().st_mode & 0o777) == 0o600


def test_existing_certificate_is_reused_not_regenerated(tmp_path: Path) -> None:
    first = certs.ensure(tmp_path, ["127.0.0.1"], now=NOW)
    before = first.certfile.read_bytes()
    second = certs.ensure(tmp_path, ["127.0.0.1"], now=NOW)
    assert second.certfile.read_bytes() == before


def test_provided_certificate_missing_a_san_is_an_error_naming_the_file_and_the_san(tmp_path: Path) -> None:
    certs.ensure(tmp_path, ["127.0.0.1"], now=NOW)
    with pytest.raises(ValueError, match=r"tls\.crt: subjectAltName lacks padlock-webhook\.x\.svc"):
        certs.ensure(tmp_path, ["127.0.0.1", "padlock-webhook.x.svc"], now=NOW)


def test_expired_provided_certificate_is_an_error(tmp_path: Path) -> None:
    certs.ensure(tmp_path, ["127.0.0.1"], now=NOW)
    with pytest.raises(ValueError, match="not at 2028"):
        certs.ensure(tmp_path, ["127.0.0.1"], now=NOW + datetime.timedelta(days=800))


def test_half_provided_key_pair_is_an_error(tmp_path: Path) -> None:
    (tmp_path / certs.CERT_FILE).write_text("x")
    with pytest.raises(ValueError, match=r"only one of tls\.crt and tls\.key"):
        certs.ensure(tmp_path, ["127.0.0.1"], now=NOW)


def test_a_provided_certificate_without_a_ca_file_is_published_as_its_own_bundle(tmp_path: Path) -> None:
    _ca, cert, key = certs.generate(["127.0.0.1"], now=NOW)
    (tmp_path / certs.CERT_FILE).write_bytes(cert)
    (tmp_path / certs.KEY_FILE).write_bytes(key)
    files = certs.ensure(tmp_path, ["127.0.0.1"], now=NOW)
    assert files.cafile == files.certfile
