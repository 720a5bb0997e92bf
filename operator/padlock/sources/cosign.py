"""Cosign key-based signature checks in the tag-based scheme (``sha256-<hex>.sig``). Pure.

Called by: ``padlock.sources.oci`` after it has read the signature manifest and its payload layers,
and ``padlock.devenv.artifacts`` (``payload``, ``signature_tag``) to sign test artifacts the same way.

The scheme (cosign v2 "legacy" signatures, the one a registry without the OCI 1.1 referrers API
can hold, e.g. the Debian docker-registry): the signature of ``repo@sha256:<hex>`` is an OCI image
under the tag ``sha256-<hex>.sig``; each layer (media type ``application/vnd.dev.cosign.simplesigning.v1+json``)
is a simple-signing JSON payload whose ``critical.image.docker-manifest-digest`` names the signed
digest, and its annotation ``dev.cosignproject.cosign/signature`` holds the base64 ASN.1 ECDSA
signature over the payload bytes. The crypto is ``cryptography``'s; nothing is hand-rolled.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from padlock.sources.errors import SignatureError, SpecInvalid

SIMPLESIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE = "cosign container image signature"

# cosign pairs each curve with its hash (sigstore/sigstore pkg/signature/ecdsa.go).
_HASH_FOR_CURVE: dict[str, hashes.HashAlgorithm] = {
    "secp256r1": hashes.SHA256(),
    "secp384r1": hashes.SHA384(),
    "secp521r1": hashes.SHA512(),
}


@dataclass(frozen=True)
class SignedLayer:
    """One layer of a signature manifest: the payload bytes (digest already checked) and its signature."""

    payload: bytes
    signature_b64: str | None


def signature_tag(digest: str) -> str:
    """``sha256:<hex>`` -> ``sha256-<hex>.sig``."""
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart}.sig"


def payload(docker_reference: str, digest: str) -> bytes:
    """The simple-signing payload cosign signs for ``docker_reference@digest`` (compact JSON)."""
    body = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": None,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def load_public_key(pem: str, *, source: str, reference: str) -> ec.EllipticCurvePublicKey:
    """The ECDSA public key in ``spec.verify.cosignPublicKey``; ``SpecInvalid`` when it is not one."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise SpecInvalid(
            source, reference, f"spec.verify.cosignPublicKey is not a PEM public key: {exc}"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _HASH_FOR_CURVE:
        raise SpecInvalid(
            source,
            reference,
            "spec.verify.cosignPublicKey must be an ECDSA P-256, "
            "P-384 or P-521 public key (as made by 'cosign generate-key-pair')",
        )
    return key


def _signed_digest(data: bytes) -> str | None:
    try:
        body = json.loads(data)
        image = body["critical"]["image"]["docker-manifest-digest"]
        kind = body["critical"]["type"]
    except (ValueError, KeyError, TypeError):
        return None
    if kind != SIGNATURE_TYPE or not isinstance(image, str):
        return None
    return image


def verify(
    public_key_pem: str,
    digest: str,
    layers: Sequence[SignedLayer],
    *,
    source: str,
    reference: str,
) -> None:
    """Succeed when at least one layer is a valid signature, by this key, of exactly ``digest``.

    Raises ``SignatureError`` saying which check failed: no signature layers, no signature that
    verifies with the key, or a valid signature of a different digest (a signature copied from
    another artifact).
    """
    key = load_public_key(public_key_pem, source=source, reference=reference)
    algorithm = ec.ECDSA(_HASH_FOR_CURVE[key.curve.name])
    if not layers:
        raise SignatureError(
            source,
            reference,
            f"no cosign signature found for {digest} (tag {signature_tag(digest)} has no signature layers)",
        )
    wrong_digests: list[str] = []
    for layer in layers:
        if not layer.signature_b64:
            continue
        try:
            signature = base64.b64decode(layer.signature_b64, validate=True)
            key.verify(signature, layer.payload, algorithm)
        except (InvalidSignature, binascii.Error, ValueError):
            continue
        signed = _signed_digest(layer.payload)
        if signed == digest:
            return
        wrong_digests.append(signed or "<unreadable payload>")
    if wrong_digests:
        raise SignatureError(
            source, reference, f"cosign signature is valid but signs {wrong_digests[0]}, not {digest}"
        )
    raise SignatureError(
        source, reference, f"no cosign signature of {digest} verifies with spec.verify.cosignPublicKey"
    )
