"""Attestations: in-toto v1 Statements in DSSE envelopes, signed with ECDSA P-256/SHA-256.

The zero-PII certificate, the bundle manifest and the deletion receipt are all built
here, and one verifier checks every one of them offline with only the public key:

1. the envelope's signature over DSSE's pre-authentication encoding (PAE) of the payload,
2. the key id (SHA-256 of the public key's DER SubjectPublicKeyInfo),
3. then, given the files, each subject's SHA-256.

Signing goes through a ``Signer`` (``ryuzen_contracts.signing``): KMS in AWS, a key file
in the local stack. Both produce DER ECDSA signatures over the SHA-256 of the PAE.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
ZERO_PII_PREDICATE = "https://ryuzen.dev/attestations/zero-pii/v1"
BUNDLE_MANIFEST_PREDICATE = "https://ryuzen.dev/attestations/bundle-manifest/v1"
DELETION_PREDICATE = "https://ryuzen.dev/attestations/deletion/v1"

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class VerificationError(ValueError):
    """An attestation failed verification; the message says exactly which check failed."""


class Signer(Protocol):
    """Signs the SHA-256 digest of a message with an ECDSA P-256 key; returns a DER signature."""

    @property
    def key_id(self) -> str: ...

    def sign_digest(self, digest: bytes) -> bytes: ...


class Subject(BaseModel):
    """One attested artifact: its name, SHA-256 digest and optional in-toto annotations.

    ``annotations`` (a ResourceDescriptor field) carries counts about the artifact, such
    as a bundle file's ``bytes`` and ``rows``. Left out of the JSON when there are none,
    so statements without them keep the bytes they always had.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=1024)]
    digest: dict[str, Sha256Hex]
    annotations: dict[str, Annotated[int, Field(ge=0)]] | None = None

    @model_serializer(mode="wrap")
    def _without_empty_annotations(self, handler: SerializerFunctionWrapHandler) -> Any:
        document = handler(self)
        if isinstance(document, dict) and document.get("annotations") is None:
            document.pop("annotations", None)
        return document


class Statement(BaseModel):
    """An in-toto v1 Statement."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type_: str = Field(default=STATEMENT_TYPE, alias="_type")
    subject: Annotated[list[Subject], Field(min_length=1)]
    predicate_type: str = Field(alias="predicateType")
    predicate: dict[str, Any]

    def to_json_bytes(self) -> bytes:
        """Canonical-enough JSON (sorted keys, no spaces); the signature covers these bytes."""
        document = self.model_dump(mode="json", by_alias=True)
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


class EnvelopeSignature(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keyid: str
    sig: str


class Envelope(BaseModel):
    """A DSSE envelope."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    payload_type: str = Field(alias="payloadType")
    payload: str
    signatures: Annotated[list[EnvelopeSignature], Field(min_length=1)]

    def to_json_bytes(self) -> bytes:
        """The envelope as stored in S3 and in bundles."""
        return (
            json.dumps(self.model_dump(by_alias=True), indent=2, sort_keys=True).encode("utf-8")
            + b"\n"
        )


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def subject(
    name: str,
    data: bytes | None = None,
    *,
    sha256: str | None = None,
    annotations: Mapping[str, int] | None = None,
) -> Subject:
    """A Subject from the file's bytes, or from a SHA-256 computed while streaming it."""
    if (data is None) == (sha256 is None):
        raise ValueError("give either the data or its sha256")
    return Subject(
        name=name,
        digest={"sha256": sha256 if sha256 is not None else sha256_hex(data or b"")},
        annotations=dict(annotations) if annotations is not None else None,
    )


def statement(
    subjects: list[Subject], predicate_type: str, predicate: Mapping[str, Any]
) -> Statement:
    """An in-toto v1 Statement over ``subjects``."""
    return Statement(subject=subjects, predicate_type=predicate_type, predicate=dict(predicate))


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is actually signed."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign(stmt: Statement, signer: Signer) -> Envelope:
    """Wrap ``stmt`` in a DSSE envelope signed by ``signer``."""
    payload = stmt.to_json_bytes()
    digest = hashlib.sha256(pae(PAYLOAD_TYPE, payload)).digest()
    signature = signer.sign_digest(digest)
    return Envelope(
        payload_type=PAYLOAD_TYPE,
        payload=base64.b64encode(payload).decode("ascii"),
        signatures=[
            EnvelopeSignature(keyid=signer.key_id, sig=base64.b64encode(signature).decode("ascii"))
        ],
    )


def key_id_of(public_key_der: bytes) -> str:
    """The key id every Ryuzen signature names: SHA-256 of the DER SubjectPublicKeyInfo."""
    return sha256_hex(public_key_der)


def verify(
    envelope_bytes: bytes, public_key_pem: bytes, *, predicate_type: str | None = None
) -> Statement:
    """Check a DSSE envelope's signature with the PEM public key; return its Statement.

    Raises VerificationError naming the failed check. Subjects are checked separately
    with ``verify_subjects`` once the caller has the files.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        envelope = Envelope.model_validate_json(envelope_bytes)
    except ValidationError as error:
        raise VerificationError(f"not a DSSE envelope: {error.error_count()} problem(s)") from None
    if envelope.payload_type != PAYLOAD_TYPE:
        raise VerificationError(f"unexpected payloadType {envelope.payload_type!r:.60}")
    try:
        payload = base64.b64decode(envelope.payload, validate=True)
    except ValueError:
        raise VerificationError("payload is not valid base64") from None
    try:
        public_key = serialization.load_pem_public_key(public_key_pem)
    except ValueError:
        raise VerificationError("public key is not a PEM public key") from None
    if (
        not isinstance(public_key, ec.EllipticCurvePublicKey)
        or public_key.curve.name != "secp256r1"
    ):
        raise VerificationError("public key is not an ECDSA P-256 key")
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected_key_id = key_id_of(der)
    message = pae(envelope.payload_type, payload)
    for entry in envelope.signatures:
        if entry.keyid != expected_key_id:
            continue
        try:
            public_key.verify(
                base64.b64decode(entry.sig, validate=True), message, ec.ECDSA(hashes.SHA256())
            )
        except (InvalidSignature, ValueError):
            raise VerificationError("signature does not verify with this public key") from None
        break
    else:
        raise VerificationError(f"no signature by key {expected_key_id[:16]}… in the envelope")
    try:
        stmt = Statement.model_validate_json(payload)
    except ValidationError:
        raise VerificationError("payload is not an in-toto v1 Statement") from None
    if stmt.type_ != STATEMENT_TYPE:
        raise VerificationError(f"unexpected statement _type {stmt.type_!r:.60}")
    if predicate_type is not None and stmt.predicate_type != predicate_type:
        raise VerificationError(
            f"predicateType is {stmt.predicate_type!r:.80}, expected {predicate_type!r}"
        )
    return stmt


def verify_subjects(stmt: Statement, files: Mapping[str, bytes]) -> None:
    """Check that every given file is a subject of ``stmt`` with the same SHA-256."""
    verify_subject_digests(stmt, {name: sha256_hex(data) for name, data in files.items()})


def verify_subject_digests(stmt: Statement, digests: Mapping[str, str]) -> None:
    """Like ``verify_subjects`` for files hashed while streaming (a bundle never fits in memory)."""
    by_name = {item.name: item.digest.get("sha256") for item in stmt.subject}
    for name, actual in digests.items():
        if name not in by_name:
            raise VerificationError(f"{name}: not a subject of this statement")
        if actual != by_name[name]:
            raise VerificationError(
                f"{name}: sha256 {actual[:16]}… does not match "
                f"the attested {str(by_name[name])[:16]}…"
            )
