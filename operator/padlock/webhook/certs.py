"""TLS material for the admission webhook: a throwaway CA and a serving certificate, or provided files.

The API server calls webhooks only over HTTPS and checks the serving certificate against the
``caBundle`` of the webhook configuration, by SAN (Go never falls back to the common name). So the
serving certificate carries an IP SAN for every address it is reached on (``127.0.0.1`` in tests
and local runs) and DNS SANs for the in-cluster Service names (``padlock-webhook.padlock-system.svc``).

Called by ``padlock.webhook.setup`` at operator startup: ``ensure(cert_dir, sans)`` loads
``tls.crt``/``tls.key``/``ca.crt`` from a directory (a mounted Secret, same key names as a
``kubernetes.io/tls`` Secret) or, when they are missing, generates them there with ``cryptography``
(kopf's own generator needs the optional ``certbuilder`` package and makes no separate CA).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
CA_FILE = "ca.crt"

VALIDITY = datetime.timedelta(days=365)
"""Lifetime of generated certificates; a restart after expiry generates new ones."""


@dataclass(frozen=True)
class TlsFiles:
    """Paths handed to ``kopf.WebhookServer(certfile=, pkeyfile=, cafile=)``."""

    certfile: Path
    pkeyfile: Path
    cafile: Path

    def ca_pem(self) -> bytes:
        return self.cafile.read_bytes()


def service_sans(service: str, namespace: str) -> list[str]:
    """The DNS names the API server uses for a Service-based webhook ``clientConfig``."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def ensure(cert_dir: str | os.PathLike[str], sans: Sequence[str], *, now: datetime.datetime) -> TlsFiles:
    """Use the certificate in ``cert_dir`` if complete, valid at ``now`` and covering ``sans``; else make one.

    A provided certificate that misses a SAN is an error, not silently replaced: it usually means a
    wrong Secret is mounted, and replacing it would break the caBundle the chart installed.
    """
    directory = Path(cert_dir)
    files = TlsFiles(directory / CERT_FILE, directory / KEY_FILE, directory / CA_FILE)
    present = [p.exists() for p in (files.certfile, files.pkeyfile)]
    if all(present):
        cert = x509.load_pem_x509_certificate(files.certfile.read_bytes())
        missing = sorted(set(sans) - set(certificate_sans(cert)))
        if missing:
            raise ValueError(
                f"webhook certificate {files.certfile}: subjectAltName lacks {', '.join(missing)}; "
                f"the API server reaches the webhook by these names (delete the files to have Padlock "
                f"generate a matching certificate)"
            )
        if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
            raise ValueError(
                f"webhook certificate {files.certfile}: valid from {cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} "
                f"to {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}, not at {now:%Y-%m-%dT%H:%M:%SZ}"
            )
        if not files.cafile.exists():
            # A serving certificate without a separate CA file is taken as self-signed: it is its own CA.
            files = TlsFiles(files.certfile, files.pkeyfile, files.certfile)
        return files
    if any(present):
        raise ValueError(
            f"webhook certificate directory {directory}: found only one of {CERT_FILE} and {KEY_FILE}; "
            f"provide both or neither"
        )
    ca_pem, cert_pem, key_pem = generate(sans, now=now)
    directory.mkdir(parents=True, exist_ok=True)
    _write(files.cafile, ca_pem, 0o644)
    _write(files.certfile, cert_pem, 0o644)
    _write(files.pkeyfile, key_pem, 0o600)
    return files


def generate(sans: Sequence[str], *, now: datetime.datetime) -> tuple[bytes, bytes, bytes]:
    """Return (CA certificate, serving certificate, serving key) as PEM; the CA key is discarded.

    Discarding the CA key means nobody can mint another certificate the API server would trust for
    this webhook; a new CA comes with every generation, and the caBundle is re-published with it.
    """
    if not sans:
        raise ValueError("a webhook certificate needs at least one subjectAltName")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "padlock-webhook-ca")])
    start = now - datetime.timedelta(minutes=5)  # tolerate small clock skew with the API server
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    common_name = next((s for s in sans if not _is_ip(s)), sans[0])
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(list(_general_names(sans))), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return (
        ca_cert.public_bytes(serialization.Encoding.PEM),
        cert.public_bytes(serialization.Encoding.PEM),
        key_pem,
    )


def certificate_sans(cert: x509.Certificate) -> list[str]:
    """DNS names and IP addresses of a certificate, as strings."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [
        *ext.get_values_for_type(x509.DNSName),
        *(str(ip) for ip in ext.get_values_for_type(x509.IPAddress)),
    ]


def _general_names(sans: Iterable[str]) -> Iterable[x509.GeneralName]:
    seen: set[str] = set()
    for san in sans:
        if san in seen:
            continue
        seen.add(san)
        if _is_ip(san):
            yield x509.IPAddress(ipaddress.ip_address(san))
        else:
            yield x509.DNSName(san)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _write(path: Path, data: bytes, mode: int) -> None:
    # Write then rename, so kopf's file watcher never reads half a certificate.
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def usable(files: dict[str, bytes], sans: Sequence[str], *, now: datetime.datetime) -> bool:
    """Whether PEM ``tls.crt``/``ca.crt`` (a shared Secret's data) serve ``sans`` at ``now``, with a
    margin of a tenth of ``VALIDITY``, so a certificate about to expire is renewed at start."""
    try:
        cert = x509.load_pem_x509_certificate(files[CERT_FILE])
        x509.load_pem_x509_certificate(files[CA_FILE])
        serialization.load_pem_private_key(files[KEY_FILE], password=None)
    except (KeyError, ValueError):
        return False
    return (not set(sans) - set(certificate_sans(cert))
            and cert.not_valid_before_utc <= now < cert.not_valid_after_utc - VALIDITY / 10)


def write_files(cert_dir: str | os.PathLike[str], files: dict[str, bytes]) -> None:
    """Write a shared Secret's data into ``cert_dir`` under the names ``ensure`` reads."""
    directory = Path(cert_dir)
    directory.mkdir(parents=True, exist_ok=True)
    _write(directory / CA_FILE, files[CA_FILE], 0o644)
    _write(directory / CERT_FILE, files[CERT_FILE], 0o644)
    _write(directory / KEY_FILE, files[KEY_FILE], 0o600)
