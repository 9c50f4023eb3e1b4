"""The local stack's attestation key: an ECDSA P-256 key pair in PEM files.

In AWS, certificates are signed by a KMS asymmetric key. Locally they are signed with a
key file instead, because moto's KMS mishandles ``MessageType=DIGEST`` (it hashes the
digest again) and its signatures would not verify. Every ``start`` makes a new key pair —
a new moto backend holds no certificate signed by an older one — with the private key
readable by the owner only; the public key is what ``ryuzen verify`` and partners use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ryuzen_contracts.signing import generate_local_key

PRIVATE_KEY_FILE = "signing-key.pem"
PUBLIC_KEY_FILE = "signing-key.pub.pem"


@dataclass(frozen=True)
class LocalSigningKey:
    """Where the key pair lives (absolute paths) and the key id its signatures name."""

    private_key: Path
    public_key: Path
    key_id: str


def create_signing_key(directory: Path) -> LocalSigningKey:
    """A fresh key pair in ``directory`` (created 0700 when missing), replacing any old one."""
    directory = directory.resolve()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_key = directory / PRIVATE_KEY_FILE
    public_key = directory / PUBLIC_KEY_FILE
    # generate_local_key opens with O_CREAT, which keeps the mode of a file that already
    # exists: remove a previous run's key so the new one is created with mode 0600.
    private_key.unlink(missing_ok=True)
    signer = generate_local_key(private_key, public_key)
    return LocalSigningKey(private_key, public_key, signer.key_id)
