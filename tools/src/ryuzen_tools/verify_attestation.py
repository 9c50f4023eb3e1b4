"""Offline verification of Ryuzen attestations: signature, predicate type, subject files.

Every Ryuzen attestation (zero-PII certificate, bundle manifest, deletion receipt) is an
in-toto Statement in a DSSE envelope, so one function checks any of them:

1. ``ryuzen_contracts.attestation.verify`` — the envelope's signature with the PEM public
   key, the key id, the Statement type and the expected predicate type;
2. each local file the caller names, matched to a subject by name, against the subject's
   SHA-256. Files are hashed as a stream (a monthly bundle does not have to fit in memory),
   which is why this does not hand whole files to ``attestation.verify_subjects``.

Every failure is a ``VerificationError`` whose message says exactly which check failed.
Reading the summary of a verified statement is per kind (``zero_pii_summary``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ryuzen_contracts.attestation import (
    Statement,
    VerificationError,
    key_id_of,
    verify,
)

__all__ = [
    "CheckedSubject",
    "VerificationError",
    "VerifiedAttestation",
    "check_subject_digest",
    "file_sha256",
    "match_subject",
    "verify_attestation",
    "verify_files",
    "zero_pii_summary",
]


@dataclass(frozen=True)
class CheckedSubject:
    """A subject whose digest was checked, and the local file it was checked against."""

    name: str
    sha256: str
    path: str


@dataclass(frozen=True)
class VerifiedAttestation:
    """A statement whose signature verified, and the subject files that matched it."""

    statement: Statement
    key_id: str
    checked: list[CheckedSubject] = field(default_factory=list)

    def subjects(self) -> list[dict[str, Any]]:
        """Every subject with its digest and, when one was given, the file checked."""
        files = {item.name: item.path for item in self.checked}
        return [
            {
                "name": item.name,
                "sha256": item.digest.get("sha256"),
                "checked_file": files.get(item.name),
            }
            for item in self.statement.subject
        ]


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read as a stream; VerificationError when it cannot be read."""
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as error:
        raise VerificationError(f"{path}: cannot read it ({error.strerror or error})") from None


def read_input(path: Path, what: str) -> bytes:
    """The bytes of an input file; VerificationError naming it when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise VerificationError(
            f"cannot read the {what} {path} ({error.strerror or error})"
        ) from None


def match_subject(stmt: Statement, given: str) -> str:
    """The subject a local file stands for.

    A subject is matched by its exact name (the path as given), else — subjects are named
    by their S3 key — by the file's basename, when exactly one subject has that basename.
    """
    names = [item.name for item in stmt.subject]
    candidates = {given, PurePosixPath(Path(given).as_posix()).as_posix()}
    for name in names:
        if name in candidates:
            return name
    basename = Path(given).name
    same_basename = [name for name in names if PurePosixPath(name).name == basename]
    if len(same_basename) == 1:
        return same_basename[0]
    if not same_basename:
        raise VerificationError(
            f"{given}: not a subject of this statement (no subject is named {given!r} or "
            f"has the basename {basename!r}; subjects: {', '.join(names)})"
        )
    raise VerificationError(
        f"{given}: ambiguous, {len(same_basename)} subjects have the basename {basename!r} "
        f"({', '.join(same_basename)}); pass the file under its full subject name"
    )


def check_subject_digest(stmt: Statement, name: str, sha256: str, label: str) -> None:
    """Raise unless subject ``name`` of ``stmt`` has SHA-256 ``sha256`` (``label``: the file)."""
    attested = next((item.digest for item in stmt.subject if item.name == name), None)
    if attested is None:
        raise VerificationError(f"{label}: not a subject of this statement")
    expected = attested.get("sha256")
    if expected is None:
        raise VerificationError(f"{label}: the statement gives no sha256 for subject {name}")
    if sha256 != expected:
        raise VerificationError(
            f"{label}: sha256 {sha256[:16]}… does not match the attested {expected[:16]}… "
            f"of subject {name}"
        )


def _key_id(public_key_pem: bytes) -> str:
    from cryptography.hazmat.primitives import serialization

    public_key = serialization.load_pem_public_key(public_key_pem)
    return key_id_of(
        public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def verify_attestation(
    envelope_bytes: bytes,
    public_key_pem: bytes,
    subject_files: Sequence[str | Path] = (),
    *,
    predicate_type: str,
) -> VerifiedAttestation:
    """Verify the envelope, then every given file against the subject it matches."""
    stmt = verify(envelope_bytes, public_key_pem, predicate_type=predicate_type)
    checked = []
    for given in subject_files:
        label = str(given)
        name = match_subject(stmt, label)
        sha256 = file_sha256(Path(given))
        check_subject_digest(stmt, name, sha256, label)
        checked.append(CheckedSubject(name=name, sha256=sha256, path=label))
    return VerifiedAttestation(stmt, _key_id(public_key_pem), checked)


def verify_files(
    envelope_path: Path,
    public_key_path: Path,
    subject_files: Sequence[Path] = (),
    *,
    predicate_type: str,
) -> VerifiedAttestation:
    """``verify_attestation`` on files: the envelope, the PEM public key, the subjects."""
    return verify_attestation(
        read_input(envelope_path, "attestation"),
        read_input(public_key_path, "public key"),
        subject_files,
        predicate_type=predicate_type,
    )


def zero_pii_summary(stmt: Statement) -> dict[str, Any]:
    """The facts a zero-PII certificate states (tolerant of missing predicate fields)."""
    predicate = stmt.predicate
    counts = _mapping(predicate.get("counts"))
    scrubber = _mapping(predicate.get("scrubber"))
    return {
        "partner": predicate.get("partner"),
        "month": predicate.get("month"),
        "batch_id": predicate.get("batch_id"),
        "issued_at": predicate.get("issued_at"),
        "counts": {
            name: counts.get(name)
            for name in (
                "received",
                "sanitized",
                "quarantined",
                "quarantined_by_reason",
                "redactions_by_rule",
            )
        },
        "object": _mapping(predicate.get("object")),
        "scrubber": {
            "version": scrubber.get("version"),
            "ruleset_version": scrubber.get("ruleset_version"),
            "ruleset_digest": _mapping(scrubber.get("ruleset_digest")).get("sha256"),
        },
        "second_scan": _mapping(predicate.get("second_scan")),
        "receipt_window": _mapping(predicate.get("receipt_window")),
    }


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
