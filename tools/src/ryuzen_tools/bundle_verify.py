"""Offline verification of a monthly partner bundle (a ZIP), with only the public key.

The bundle's ``manifest.dsse.json`` is a DSSE envelope around an in-toto Statement
(predicate ``BUNDLE_MANIFEST_PREDICATE``) whose subjects are every other entry of the ZIP
except ``manifest.json`` — which must be exactly the envelope's payload bytes. Checked, in
this order, each failure a ``VerificationError`` naming the check and the entry:

1. the ZIP is readable, entry names are unique, relative and free of ``..`` (a bundle is
   meant to be unpacked);
2. the manifest's signature, key id, statement type and predicate type; ``manifest.json``
   equals the signed payload; the predicate names a valid partner and month (and the
   expected ones, when given), and its ``files`` list is exactly the subjects; a
   subject's in-toto ``annotations`` (``bytes``, and ``rows`` for Parquet), when it has
   them, agree with its ``files`` entry; every Parquet file has an attested row count;
3. no entry is missing from the manifest and no subject is missing from the ZIP;
4. every entry's size and SHA-256 — streamed in chunks, never a whole entry in memory,
   and stopped as soon as an entry grows past its attested size — and every Parquet
   entry's row count, read from its footer (``num_rows`` of the Thrift ``FileMetaData``,
   decoded here: no Parquet library, and only the footer's bytes kept);
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

from ryuzen_tools.parquet_footer import footer_num_rows
from ryuzen_tools.verify_attestation import read_input, verify_attestation

MANIFEST = "manifest.json"
MANIFEST_ENVELOPE = "manifest.dsse.json"
CERTIFICATES_DIR = "certificates/"
CERTIFICATE_SUFFIX = ".dsse.json"
CHUNK_BYTES = 1024 * 1024
# Envelopes are small JSON documents; anything larger is not one of ours.
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024
PARQUET_SUFFIX = ".parquet"
PARQUET_MAGIC = b"PAR1"
# A footer past this is not one a bundle writer makes (ours are kilobytes).
MAX_FOOTER_BYTES = 64 * 1024 * 1024

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
        payload = _check_manifest_copy(archive, entries, envelope)
        predicate = stmt.predicate
        bundle_partner, bundle_month = _partner_and_month(predicate, "the manifest")
        if partner is not None and bundle_partner != partner:
            raise VerificationError(
                f"the manifest is for partner {bundle_partner!r}, expected {partner!r}"
            )
        if month is not None and bundle_month != month:
            raise VerificationError(f"the manifest is for month {bundle_month}, expected {month}")
        attested = _attested_files(stmt, json.loads(payload))
        _check_membership(entries, attested)
        total = 0
        for name, facts in sorted(attested.items()):
            _check_entry(archive, entries[name], facts, on_bytes)
            total += facts.bytes
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
) -> bytes:
    """The signed payload, checked equal to ``manifest.json``."""
    # verify() has decoded the payload once; decode it again here to compare bytes.
    payload = base64.b64decode(json.loads(envelope)["payload"])
    if _read_small(archive, entries, MANIFEST) != payload:
        raise VerificationError(
            f"{MANIFEST}: differs from the signed payload of {MANIFEST_ENVELOPE}"
        )
    return payload


def _partner_and_month(predicate: dict[str, Any], what: str) -> tuple[str, str]:
    try:
        return (
            validate_partner_id(predicate.get("partner")),  # type: ignore[arg-type]
            validate_month(predicate.get("month")),  # type: ignore[arg-type]
        )
    except InvalidKeyPart as error:
        raise VerificationError(f"{what}: {error}") from None


@dataclass(frozen=True)
class Attested:
    """What the manifest states of one file."""

    sha256: str
    bytes: int
    rows: int | None  # attested for every Parquet file


def _count(value: Any) -> int | None:
    """``value`` when it is a count (an int, not a bool, >= 0), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _annotations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each subject's in-toto ``annotations``, from the signed payload itself.

    Read from the JSON, not the parsed Statement, so the check never depends on which
    fields the contracts' model keeps.
    """
    found: dict[str, dict[str, Any]] = {}
    for item in document.get("subject") or []:
        if not isinstance(item, dict) or "annotations" not in item:
            continue
        annotations = item["annotations"]
        if not isinstance(annotations, dict):
            raise VerificationError(f"{item.get('name')!r:.80}: malformed subject annotations")
        found[str(item.get("name"))] = annotations
    return found


def _attested_files(stmt: Statement, document: dict[str, Any]) -> dict[str, Attested]:
    """Each file's SHA-256 (subjects), bytes and rows (the predicate's ``files``), with the
    subjects' annotations (``document``: the signed payload) checked against them."""
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
    sizes: dict[str, tuple[int, int | None]] = {}
    for entry in files:
        fields = entry if isinstance(entry, dict) else {}
        name, size, rows = (
            fields.get("name"),
            _count(fields.get("bytes")),
            _count(fields.get("rows")),
        )
        if (
            not isinstance(name, str)
            or size is None
            or (rows is None and fields.get("rows") is not None)
        ):
            raise VerificationError(
                f"the manifest's files list has a malformed entry: {entry!r:.80}"
            )
        if name in sizes:
            raise VerificationError(f"{name}: listed twice in the manifest's files")
        sizes[name] = (size, rows)
    if set(sizes) != set(subjects):
        only_files = sorted(set(sizes) - set(subjects))
        only_subjects = sorted(set(subjects) - set(sizes))
        raise VerificationError(
            "the manifest's files and subjects differ: "
            f"files only {only_files}, subjects only {only_subjects}"
        )
    annotations = _annotations(document)
    attested = {}
    for name, sha256 in subjects.items():
        size, rows = sizes[name]
        for key, stated in (("bytes", size), ("rows", rows)):
            if key in annotations.get(name, {}) and annotations[name][key] != stated:
                raise VerificationError(
                    f"{name}: its subject annotations say {key} "
                    f"{annotations[name][key]!r:.24}, the manifest's files say {stated}"
                )
        if name.endswith(PARQUET_SUFFIX) and rows is None:
            raise VerificationError(f"{name}: the manifest gives no row count for this Parquet")
        attested[name] = Attested(sha256, size, rows)
    return attested


def _check_membership(entries: dict[str, zipfile.ZipInfo], attested: dict[str, Attested]) -> None:
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
    attested: Attested,
    on_bytes: Callable[[int], None] | None,
) -> None:
    name, size, sha256 = info.filename, attested.bytes, attested.sha256
    if info.file_size != size:
        raise VerificationError(
            f"{name}: {info.file_size} bytes in the ZIP, the manifest says {size}"
        )
    digest = hashlib.sha256()
    seen = 0
    # The last two chunks: a Parquet footer is read from them (or, past them, again).
    tail: list[bytes] = [b"", b""]
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(CHUNK_BYTES):
                seen += len(chunk)
                if seen > size:  # a lying header: stop before hashing a bomb
                    raise VerificationError(f"{name}: larger than the {size} bytes attested")
                digest.update(chunk)
                tail = [tail[1], chunk]
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
    if attested.rows is not None and name.endswith(PARQUET_SUFFIX):
        rows = _parquet_rows(archive, info, b"".join(tail))
        if rows != attested.rows:
            raise VerificationError(
                f"{name}: {rows} rows in its Parquet footer, the manifest says {attested.rows}"
            )


def _parquet_rows(archive: zipfile.ZipFile, info: zipfile.ZipInfo, tail: bytes) -> int:
    """``num_rows`` from the footer of the Parquet entry ``info`` (``tail``: its last bytes)."""
    name = info.filename
    if info.file_size < 12 or tail[-4:] != PARQUET_MAGIC:
        raise VerificationError(f"{name}: not a Parquet file (no footer)")
    length = int.from_bytes(tail[-8:-4], "little")
    if length > min(info.file_size - 12, MAX_FOOTER_BYTES):
        raise VerificationError(f"{name}: its Parquet footer length is impossible")
    if length + 8 <= len(tail):
        footer = tail[len(tail) - 8 - length : -8]
    else:  # a footer larger than the chunks kept: read it again (it was hashed already)
        try:
            with archive.open(info) as stream:
                stream.seek(info.file_size - 8 - length)
                footer = stream.read(length)
        except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError) as error:
            raise VerificationError(f"{name}: corrupted in the ZIP ({error})") from None
    try:
        return footer_num_rows(footer)
    except ValueError:
        raise VerificationError(f"{name}: unreadable Parquet footer") from None


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
