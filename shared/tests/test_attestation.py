"""DSSE / in-toto attestations: round trip, tamper detection, KMS and local signers agree."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from ryuzen_contracts.attestation import (
    ZERO_PII_PREDICATE,
    Envelope,
    Statement,
    VerificationError,
    pae,
    sign,
    statement,
    subject,
    verify,
    verify_subjects,
)
from ryuzen_contracts.signing import KmsSigner, LocalSigner, generate_local_key

PARQUET = b"PAR1 pretend parquet bytes PAR1"
RAW = b"\x1f\x8b pretend gzip"


@pytest.fixture
def signer(tmp_path: Path) -> LocalSigner:
    return generate_local_key(tmp_path / "signing.pem", tmp_path / "signing.pub.pem")


def make_envelope(signer: LocalSigner) -> bytes:
    stmt = statement(
        [subject("sanitized/a.parquet", PARQUET), subject("raw/a.ndjson.gz", RAW)],
        ZERO_PII_PREDICATE,
        {"counts": {"received": 3, "sanitized": 2, "quarantined": 1}},
    )
    return sign(stmt, signer).to_json_bytes()


def test_round_trip_verifies_signature_and_subjects(signer: LocalSigner) -> None:
    envelope = make_envelope(signer)
    stmt = verify(envelope, signer.public_key_pem(), predicate_type=ZERO_PII_PREDICATE)
    assert stmt.predicate["counts"]["received"] == 3
    verify_subjects(stmt, {"sanitized/a.parquet": PARQUET, "raw/a.ndjson.gz": RAW})


def test_pae_matches_the_dsse_spec_example() -> None:
    # The DSSE spec's worked example: PAE("http://example.com/HelloWorld", "hello world").
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_private_key_file_is_owner_only(tmp_path: Path, signer: LocalSigner) -> None:
    assert (tmp_path / "signing.pem").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        pytest.param(
            lambda e: {**e, "payload": e["payload"][:-4] + "AAA="}, "signature", id="payload"
        ),
        pytest.param(
            lambda e: {
                **e,
                "signatures": [{**e["signatures"][0], "sig": base64.b64encode(b"x" * 70).decode()}],
            },
            "signature",
            id="signature",
        ),
        pytest.param(
            lambda e: {**e, "signatures": [{**e["signatures"][0], "keyid": "0" * 64}]},
            "no signature",
            id="keyid",
        ),
        pytest.param(
            lambda e: {**e, "payloadType": "text/plain"}, "payloadType", id="payload-type"
        ),
        pytest.param(lambda e: {**e, "extra": 1}, "not a DSSE envelope", id="extra-field"),
    ],
)
def test_tampered_envelope_fails_with_reason(signer: LocalSigner, tamper, reason: str) -> None:
    document = json.loads(make_envelope(signer))
    with pytest.raises(VerificationError, match=reason):
        verify(json.dumps(tamper(document)).encode(), signer.public_key_pem())


def test_one_flipped_byte_in_a_subject_fails(signer: LocalSigner) -> None:
    stmt = verify(make_envelope(signer), signer.public_key_pem())
    flipped = bytes([PARQUET[0] ^ 1]) + PARQUET[1:]
    with pytest.raises(VerificationError, match=r"sanitized/a.parquet: sha256"):
        verify_subjects(stmt, {"sanitized/a.parquet": flipped})
    with pytest.raises(VerificationError, match="not a subject"):
        verify_subjects(stmt, {"other.parquet": PARQUET})


def test_another_key_does_not_verify(signer: LocalSigner, tmp_path: Path) -> None:
    other = generate_local_key(tmp_path / "o.pem", tmp_path / "o.pub.pem")
    with pytest.raises(VerificationError, match="no signature by key"):
        verify(make_envelope(signer), other.public_key_pem())


def test_wrong_predicate_type_is_refused(signer: LocalSigner) -> None:
    with pytest.raises(VerificationError, match="predicateType"):
        verify(
            make_envelope(signer),
            signer.public_key_pem(),
            predicate_type="https://example.com/other",
        )


def test_kms_signer_produces_envelopes_the_offline_verifier_accepts() -> None:
    # moto's Sign hashes a DIGEST message again, so its signatures cannot verify; this
    # fake signs the digest the way real KMS does and checks the exact call KmsSigner makes.
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    key_id = "alias/ryuzen-signing"
    local = ec.generate_private_key(ec.SECP256R1())
    der = local.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    class RealKms:
        def get_public_key(self, KeyId: str) -> dict:
            assert KeyId == key_id
            return {"PublicKey": der}

        def sign(self, KeyId: str, Message: bytes, MessageType: str, SigningAlgorithm: str) -> dict:
            assert (MessageType, SigningAlgorithm, len(Message)) == ("DIGEST", "ECDSA_SHA_256", 32)
            return {"Signature": local.sign(Message, ec.ECDSA(utils.Prehashed(hashes.SHA256())))}

    signer = KmsSigner(RealKms(), key_id)
    stmt = statement([subject("a", b"a")], ZERO_PII_PREDICATE, {})
    envelope = sign(stmt, signer).to_json_bytes()
    pem = local.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert verify(envelope, pem).subject[0].name == "a"
    assert Envelope.model_validate_json(envelope).signatures[0].keyid == signer.key_id


def test_an_existing_key_file_is_made_owner_only(tmp_path: Path) -> None:
    private = tmp_path / "k.pem"
    private.write_bytes(b"old")
    private.chmod(0o644)
    generate_local_key(private, tmp_path / "k.pub.pem")
    assert private.stat().st_mode & 0o077 == 0


def test_subject_annotations_are_signed_and_absent_when_there_are_none() -> None:
    plain = subject("a.txt", b"a")
    annotated = subject("b.parquet", b"b", annotations={"bytes": 1, "rows": 7})

    stmt = statement([plain, annotated], "https://example.test/p/v1", {})
    document = json.loads(stmt.to_json_bytes())

    assert "annotations" not in document["subject"][0]  # old statements keep their bytes
    assert document["subject"][1]["annotations"] == {"bytes": 1, "rows": 7}
    assert Statement.model_validate_json(stmt.to_json_bytes()) == stmt
    with pytest.raises(ValueError):
        subject("c", b"c", annotations={"rows": -1})
