"""Cosign key-based signatures (tag scheme ``sha256-<hex>.sig``) verify only for the right key and digest.

Covers ``padlock.sources.cosign``: signatures are made in the test with ``cryptography`` exactly as
cosign makes them (ECDSA P-256, SHA-256, ASN.1 DER, base64 in the layer annotation).
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from padlock.sources import cosign
from padlock.sources.errors import SignatureError, SpecInvalid

DIGEST = "sha256:" + "1" * 64
OTHER_DIGEST = "sha256:" + "2" * 64


def keypair() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem.decode()


def signed_layer(key: ec.EllipticCurvePrivateKey, digest: str) -> cosign.SignedLayer:
    payload = cosign.payload("127.0.0.1:5000/rules/falco-rules", digest)
    signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    return cosign.SignedLayer(payload, base64.b64encode(signature).decode())


def verify(pem: str, digest: str, layers: list[cosign.SignedLayer]) -> None:
    cosign.verify(pem, digest, layers, source="falco-rules", reference=f"reg/repo@{digest}")


def test_signature_by_the_key_over_the_digest_verifies() -> None:
    key, pem = keypair()
    verify(pem, DIGEST, [signed_layer(key, DIGEST)])


def test_one_good_signature_among_several_is_enough() -> None:
    key, pem = keypair()
    stranger, _ = keypair()
    verify(pem, DIGEST, [signed_layer(stranger, DIGEST), signed_layer(key, DIGEST)])


def test_signature_by_another_key_is_rejected() -> None:
    _, pem = keypair()
    stranger, _ = keypair()
    with pytest.raises(
        SignatureError, match=r"no cosign signature of sha256:1+ verifies with spec.verify.cosignPublicKey"
    ):
        verify(pem, DIGEST, [signed_layer(stranger, DIGEST)])


def test_valid_signature_of_another_digest_is_rejected() -> None:
    # A signature copied from another artifact: the crypto holds, the digest in the payload does not.
    key, pem = keypair()
    with pytest.raises(
        SignatureError, match=f"cosign signature is valid but signs {OTHER_DIGEST}, not {DIGEST}"
    ):
        verify(pem, DIGEST, [signed_layer(key, OTHER_DIGEST)])


def test_tampered_payload_is_rejected() -> None:
    key, pem = keypair()
    layer = signed_layer(key, OTHER_DIGEST)
    forged = cosign.SignedLayer(
        layer.payload.replace(OTHER_DIGEST.encode(), DIGEST.encode()), layer.signature_b64
    )
    with pytest.raises(SignatureError, match="verifies with"):
        verify(pem, DIGEST, [forged])


def test_missing_or_garbled_signature_annotation_is_rejected() -> None:
    key, pem = keypair()
    payload = signed_layer(key, DIGEST).payload
    with pytest.raises(SignatureError):
        verify(pem, DIGEST, [cosign.SignedLayer(payload, None), cosign.SignedLayer(payload, "not base64!")])


def test_no_signature_layers_is_rejected() -> None:
    _, pem = keypair()
    with pytest.raises(
        SignatureError, match=r"no cosign signature found .* sha256-1+\.sig has no signature layers"
    ):
        verify(pem, DIGEST, [])


def test_public_key_that_is_not_pem_is_a_spec_error() -> None:
    with pytest.raises(SpecInvalid, match=r"spec\.verify\.cosignPublicKey is not a PEM public key"):
        verify("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n", DIGEST, [])


def test_public_key_that_is_not_ecdsa_is_a_spec_error() -> None:
    pem = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(SpecInvalid, match="must be an ECDSA P-256"):
        verify(pem.decode(), DIGEST, [])


def test_signature_tag_follows_the_cosign_tag_scheme() -> None:
    assert cosign.signature_tag("sha256:abc") == "sha256-abc.sig"
