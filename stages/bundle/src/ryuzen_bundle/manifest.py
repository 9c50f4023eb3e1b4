"""The bundle manifest: an in-toto v1 Statement over every file of the bundle, and its DSSE.

``manifest.json`` holds exactly ``Statement.to_json_bytes()`` — the bytes the DSSE
envelope in ``manifest.dsse.json`` signs (its base64-decoded ``payload``). Subjects are
every entry of the ZIP except those two, named by their path in the ZIP; the predicate's
``files`` lists exactly the same entries, in ZIP order, with their sizes and (Parquet
only) row counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ryuzen_contracts.analytics_schema import ANALYTICS_SCHEMA_VERSION
from ryuzen_contracts.attestation import (
    BUNDLE_MANIFEST_PREDICATE,
    Envelope,
    Signer,
    Statement,
    sign,
    statement,
    subject,
)
from ryuzen_contracts.audit_log import iso_millis

BUILDER_NAME = "ryuzen-bundle"
MANIFEST_NAME = "manifest.json"
MANIFEST_DSSE_NAME = "manifest.dsse.json"


@dataclass(frozen=True)
class FileEntry:
    """One file written into the ZIP, as the manifest describes it."""

    name: str
    bytes: int
    sha256: str
    rows: int | None = None


@dataclass(frozen=True)
class BundleCounts:
    """The month's counts, as the manifest states them."""

    events: int
    duplicates_removed: int
    late_events: int
    quarantined: int


def watermark_text(latest_received_at: datetime | None) -> str | None:
    """The latest receipt time included, RFC 3339 UTC to the microsecond (None: empty)."""
    if latest_received_at is None:
        return None
    if latest_received_at.tzinfo is None:
        raise ValueError("the watermark must be a UTC time")
    return latest_received_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def manifest_statement(
    *,
    partner: str,
    month: str,
    builder_version: str,
    created_at: datetime,
    latest_received_at: datetime | None,
    counts: BundleCounts,
    files: list[FileEntry],
) -> Statement:
    """The manifest Statement over ``files`` (every entry but the manifest and its envelope)."""
    names = [entry.name for entry in files]
    if MANIFEST_NAME in names or MANIFEST_DSSE_NAME in names or len(set(names)) != len(names):
        raise ValueError("manifest subjects must be unique and exclude the manifest itself")
    predicate = {
        "partner": partner,
        "month": month,
        "schema_version": ANALYTICS_SCHEMA_VERSION,
        "builder": {"name": BUILDER_NAME, "version": builder_version},
        "created_at": iso_millis(created_at),
        "watermark": {"latest_received_at": watermark_text(latest_received_at)},
        "counts": {
            "events": counts.events,
            "duplicates_removed": counts.duplicates_removed,
            "late_events": counts.late_events,
            "quarantined": counts.quarantined,
        },
        "empty": counts.events == 0,
        "files": [{"name": e.name, "bytes": e.bytes, "rows": e.rows} for e in files],
    }
    subjects = [
        subject(entry.name, sha256=entry.sha256, annotations=_annotations(entry)) for entry in files
    ]
    return statement(subjects, BUNDLE_MANIFEST_PREDICATE, predicate)


def _annotations(entry: FileEntry) -> dict[str, int]:
    """A subject's in-toto annotations: its size, and its row count when it is Parquet."""
    counts = {"bytes": entry.bytes}
    if entry.rows is not None:
        counts["rows"] = entry.rows
    return counts


def sign_manifest(stmt: Statement, signer: Signer) -> tuple[bytes, bytes]:
    """``(manifest.json bytes, manifest.dsse.json bytes)``: the payload and its envelope."""
    envelope: Envelope = sign(stmt, signer)
    return stmt.to_json_bytes(), envelope.to_json_bytes()
