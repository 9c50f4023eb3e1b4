"""Signers for attestations: a KMS asymmetric key in AWS, a key file in the local stack.

Both sign the SHA-256 digest of DSSE's PAE with ECDSA P-256 and return a DER signature,
and both name themselves by the same key id (SHA-256 of the DER public key), so one
verifier (``attestation.verify``) checks signatures from either.

The local stack does not sign through moto's KMS: moto mishandles ``MessageType=DIGEST``
(it hashes the digest again), which would make its signatures fail real verification.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ryuzen_contracts.attestation import key_id_of


class LocalSigner:
    """Signs with an ECDSA P-256 private key held in a PEM file (local stack, tests)."""

    def __init__(self, private_key_pem: bytes) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("the signing key must be an ECDSA P-256 private key")
        self._key = key
        self._public_der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_file(cls, path: Path) -> LocalSigner:
        """Load the private key PEM at ``path``."""
        return cls(path.read_bytes())

    @property
    def key_id(self) -> str:
        """SHA-256 of the DER public key."""
        return key_id_of(self._public_der)

    def public_key_pem(self) -> bytes:
        """The public key, PEM-encoded, as partners receive it."""
        from cryptography.hazmat.primitives import serialization

        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign_digest(self, digest: bytes) -> bytes:
        """DER ECDSA signature over a precomputed SHA-256 digest."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, utils

        return self._key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


def generate_local_key(private_path: Path, public_path: Path) -> LocalSigner:
    """Create a new P-256 key pair: the private PEM readable by the owner only."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # O_CREAT's mode only applies to a new file: an existing key file keeps its old mode.
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    signer = LocalSigner(pem)
    public_path.write_bytes(signer.public_key_pem())
    return signer


class KmsSigner:
    """Signs through a KMS asymmetric key (``ECC_NIST_P256``, ``SIGN_VERIFY``)."""

    def __init__(self, kms: Any, key_id: str) -> None:
        self._kms = kms
        self._kms_key_id = key_id
        self._public_der: bytes | None = None

    def public_key_der(self) -> bytes:
        """The key's DER SubjectPublicKeyInfo, fetched once."""
        if self._public_der is None:
            self._public_der = bytes(self._kms.get_public_key(KeyId=self._kms_key_id)["PublicKey"])
        return self._public_der

    @property
    def key_id(self) -> str:
        """SHA-256 of the DER public key (not the KMS key id, which partners cannot check)."""
        return key_id_of(self.public_key_der())

    def sign_digest(self, digest: bytes) -> bytes:
        """DER ECDSA signature from KMS over a precomputed SHA-256 digest."""
        response = self._kms.sign(
            KeyId=self._kms_key_id,
            Message=digest,
            MessageType="DIGEST",
            SigningAlgorithm="ECDSA_SHA_256",
        )
        return bytes(response["Signature"])
