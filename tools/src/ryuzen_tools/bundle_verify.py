"""Offline verification of a monthly partner bundle (a ZIP), with only the public key.

The bundle's ``manifest.dsse.json`` is a DSSE envelope around an in-toto Statement
(predicate ``BUNDLE_MANIFEST_PREDICATE``) whose subjects are every other entry of the ZIP
except ``manifest.json`` — which must be exactly the envelope's payload bytes. Checked, in
this order, each failure a ``VerificationError`` naming the check and the entry:

1. the ZIP is readable, entry names are unique, relative and free of ``..`` (a bundle is
   meant to be unpacked);
2. the manifest's signature, key id, statement type and predicate type; ``manifest.json``
   equals the signed payload; the predicate names a valid partner and month (and the
   expected ones, when given), and its ``files`` list is exactly the subjects;
3. no entry is missing from the manifest and no subject is missing from the ZIP;
4. every entry's size and SHA-256 — streamed in chunks, never a whole entry in memory,
   and stopped as soon as an entry grows past its attested size;
5. every certificate (``certificates/<batch_id>.dsse.json``) verifies as a zero-PII
   certificate with the same key and covers this partner and month (and its batch).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ryuzen_contracts.attestation import (
    BUNDLE_MANIFEST_PREDICATE,
    ZERO_PII_PREDICATE,
    Statement,
    VerificationError,
    verify,
)
from ryuzen_contracts.key_layout import InvalidKeyPart, validate_month, validate_partner_id

from ryuzen_tools.verify_attestation import read_input, verify_attestation

MANIFEST = "manifest.json"
MANIFEST_ENVELOPE = "manifest.dsse.json"
CERTIFICATES_DIR = "certificates/"
CERTIFICATE_SUFFIX = ".dsse.json"
CHUNK_BYTES = 1024 * 1024
# Envelopes are small JSON documents; anything larger is not one of ours.
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024

__all__ = ["BundleVerification", "VerificationError", "verify_bundle", "verify_bundle_file"]


@dataclass(frozen=True)
class BundleVerification:
    """What a verified bundle states."""

    path: str
    partner: str
    month: str
    key_id: str
    files: int
    bytes: int
    certificates: int
    empty: bool
    schema_version: Any
    builder: dict[str, Any]
    created_at: Any
    counts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready facts, ``ok: true``."""
        return {
            "ok": True,
            "path": self.path,
            "partner": self.partner,
            "month": self.month,
            "key_id": self.key_id,
            "files": self.files,
            "bytes": self.bytes,
            "certificates": self.certificates,
            "empty": self.empty,
            "schema_version": self.schema_version,
            "builder": self.builder,
            "created_at": self.created_at,
            "counts": self.counts,
        }


def content_bytes(zip_path: Path) -> int:
    """Uncompressed bytes of the entries the manifest attests (a progress bar's total)."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            return sum(
                info.file_size
                for info in archive.infolist()
                if info.filename not in (MANIFEST, MANIFEST_ENVELOPE) and not info.is_dir()
            )
    except (zipfile.BadZipFile, OSError):
        return 0  # verify_bundle says what is wrong with it


def verify_bundle_file(
    zip_path: Path,
    public_key_path: Path,
    *,
    partner: str | None = None,
    month: str | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> BundleVerification:
    """``verify_bundle`` with the public key read from a PEM file."""
    return verify_bundle(
        zip_path,
        read_input(public_key_path, "public key"),
        partner=partner,
        month=month,
        on_bytes=on_bytes,
    )


def verify_bundle(
    zip_path: Path,
    public_key_pem: bytes,
    *,
    partner: str | None = None,
    month: str | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> BundleVerification:
    """Verify the bundle at ``zip_path``; raise VerificationError naming the first failure.

    ``partner``/``month``: what the caller expects the bundle to be (e.g. the month it
    asked for). ``on_bytes`` is told how many bytes each hashed chunk held (progress).
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except FileNotFoundError:
        raise VerificationError(f"{zip_path}: no such file") from None
    except (zipfile.BadZipFile, OSError) as error:
        raise VerificationError(f"{zip_path}: not a readable ZIP ({error})") from None
    with archive:
        entries = _entries(archive)
        envelope = _read_small(archive, entries, MANIFEST_ENVELOPE)
        verified = verify_attestation(
            envelope, public_key_pem, predicate_type=BUNDLE_MANIFEST_PREDICATE
        )
        stmt = verified.statement
        _check_manifest_copy(archive, entries, envelope)
        predicate = stmt.predicate
        bundle_partner, bundle_month = _partner_and_month(predicate, "the manifest")
        if partner is not None and bundle_partner != partner:
            raise VerificationError(
                f"the manifest is for partner {bundle_partner!r}, expected {partner!r}"
            )
        if month is not None and bundle_month != month:
            raise VerificationError(f"the manifest is for month {bundle_month}, expected {month}")
        attested = _attested_files(stmt)
        _check_membership(entries, attested)
        total = 0
        for name, (sha256, size) in sorted(attested.items()):
            _check_entry(archive, entries[name], sha256, size, on_bytes)
            total += size
        certificates = [name for name in attested if _is_certificate(name)]
        for name in sorted(certificates):
            _check_certificate(archive, entries, name, public_key_pem, bundle_partner, bundle_month)
    return BundleVerification(
        path=str(zip_path),
        partner=bundle_partner,
        month=bundle_month,
        key_id=verified.key_id,
        files=len(attested),
        bytes=total,
        certificates=len(certificates),
        empty=bool(predicate.get("empty")),
        schema_version=predicate.get("schema_version"),
        builder=_mapping(predicate.get("builder")),
        created_at=predicate.get("created_at"),
        counts=_mapping(predicate.get("counts")),
    )


def _entries(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = info.filename
        if info.is_dir():
            continue
        path = PurePosixPath(name)
        if name.startswith("/") or "\\" in name or ".." in path.parts or not name:
            raise VerificationError(f"{name!r}: unsafe entry name in the ZIP")
        if name in entries:
            raise VerificationError(f"{name}: the ZIP holds this entry more than once")
        entries[name] = info
    return entries


def _read_small(archive: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo], name: str) -> bytes:
    info = entries.get(name)
    if info is None:
        raise VerificationError(f"{name}: missing from the ZIP")
    if info.file_size > MAX_ENVELOPE_BYTES:
        raise VerificationError(f"{name}: {info.file_size} bytes, too large for an envelope")
    try:
        with archive.open(info) as stream:
            return stream.read()  # at most file_size bytes, checked above
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError) as error:
        raise VerificationError(f"{name}: corrupted in the ZIP ({error})") from None


def _check_manifest_copy(
    archive: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo], envelope: bytes
) -> None:
    # verify() has decoded the payload once; decode it again here to compare bytes.
    payload = base64.b64decode(json.loads(envelope)["payload"])
    if _read_small(archive, entries, MANIFEST) != payload:
        raise VerificationError(
            f"{MANIFEST}: differs from the signed payload of {MANIFEST_ENVELOPE}"
        )


def _partner_and_month(predicate: dict[str, Any], what: str) -> tuple[str, str]:
    try:
        return (
            validate_partner_id(predicate.get("partner")),  # type: ignore[arg-type]
            validate_month(predicate.get("month")),  # type: ignore[arg-type]
        )
    except InvalidKeyPart as error:
        raise VerificationError(f"{what}: {error}") from None


def _attested_files(stmt: Statement) -> dict[str, tuple[str, int]]:
    """``{name: (sha256, bytes)}`` from the subjects and the predicate's ``files``."""
    subjects: dict[str, str] = {}
    for item in stmt.subject:
        if item.name in subjects:
            raise VerificationError(f"{item.name}: a subject of the manifest more than once")
        if item.name in (MANIFEST, MANIFEST_ENVELOPE):
            raise VerificationError(f"{item.name}: the manifest cannot attest itself")
        sha256 = item.digest.get("sha256")
        if sha256 is None:
            raise VerificationError(f"{item.name}: the manifest gives no sha256 for it")
        subjects[item.name] = sha256
    files = stmt.predicate.get("files")
    if not isinstance(files, list):
        raise VerificationError("the manifest's predicate has no files list")
    sizes: dict[str, int] = {}
    for entry in files:
        name = entry.get("name") if isinstance(entry, dict) else None
        size = entry.get("bytes") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not isinstance(size, int) or size < 0:
            raise VerificationError(
                f"the manifest's files list has a malformed entry: {entry!r:.80}"
            )
        if name in sizes:
            raise VerificationError(f"{name}: listed twice in the manifest's files")
        sizes[name] = size
    if set(sizes) != set(subjects):
        only_files = sorted(set(sizes) - set(subjects))
        only_subjects = sorted(set(subjects) - set(sizes))
        raise VerificationError(
            "the manifest's files and subjects differ: "
            f"files only {only_files}, subjects only {only_subjects}"
        )
    return {name: (subjects[name], sizes[name]) for name in subjects}


def _check_membership(
    entries: dict[str, zipfile.ZipInfo], attested: dict[str, tuple[str, int]]
) -> None:
    in_zip = set(entries) - {MANIFEST, MANIFEST_ENVELOPE}
    missing = sorted(set(attested) - in_zip)
    if missing:
        raise VerificationError(
            f"{missing[0]}: in the manifest but missing from the ZIP"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    extra = sorted(in_zip - set(attested))
    if extra:
        raise VerificationError(
            f"{extra[0]}: in the ZIP but not in the manifest"
            + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
        )


def _check_entry(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    sha256: str,
    size: int,
    on_bytes: Callable[[int], None] | None,
) -> None:
    name = info.filename
    if info.file_size != size:
        raise VerificationError(
            f"{name}: {info.file_size} bytes in the ZIP, the manifest says {size}"
        )
    digest = hashlib.sha256()
    seen = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(CHUNK_BYTES):
                seen += len(chunk)
                if seen > size:  # a lying header: stop before hashing a bomb
                    raise VerificationError(f"{name}: larger than the {size} bytes attested")
                digest.update(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError) as error:
        raise VerificationError(f"{name}: corrupted in the ZIP ({error})") from None
    if seen != size:
        raise VerificationError(f"{name}: {seen} bytes read, the manifest says {size}")
    actual = digest.hexdigest()
    if actual != sha256:
        raise VerificationError(
            f"{name}: sha256 {actual[:16]}… does not match the manifest's {sha256[:16]}…"
        )


def _is_certificate(name: str) -> bool:
    return name.startswith(CERTIFICATES_DIR) and name.endswith(CERTIFICATE_SUFFIX)


_BATCH_FROM_NAME = re.compile(r"certificates/([0-9A-Z]{26})\.dsse\.json")


def _check_certificate(
    archive: zipfile.ZipFile,
    entries: dict[str, zipfile.ZipInfo],
    name: str,
    public_key_pem: bytes,
    partner: str,
    month: str,
) -> None:
    try:
        stmt = verify(
            _read_small(archive, entries, name), public_key_pem, predicate_type=ZERO_PII_PREDICATE
        )
    except VerificationError as error:
        raise VerificationError(f"{name}: {error}") from None
    cert_partner = stmt.predicate.get("partner")
    cert_month = stmt.predicate.get("month")
    if cert_partner != partner:
        raise VerificationError(
            f"{name}: certifies partner {cert_partner!r:.40}, the bundle is {partner!r}'s"
        )
    if cert_month != month:
        raise VerificationError(
            f"{name}: certifies month {cert_month!r:.20}, the bundle is for {month}"
        )
    named = _BATCH_FROM_NAME.fullmatch(name)
    batch_id = stmt.predicate.get("batch_id")
    if named is not None and batch_id is not None and batch_id != named.group(1):
        raise VerificationError(
            f"{name}: certifies batch {batch_id!r:.40}, not the one it is named for"
        )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
