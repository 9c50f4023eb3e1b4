"""Bundle ZIPs built by the tests, following the bundle spec, signed with a local key.

The builder (``ryuzen_bundle``) makes the real ones; these let ``bundle verify`` and the
pull path be tested without running the pipeline, and be tampered with precisely.
"""

from __future__ import annotations

import hashlib
import io
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from ryuzen_contracts.attestation import (
    BUNDLE_MANIFEST_PREDICATE,
    ZERO_PII_PREDICATE,
    Signer,
    sign,
    statement,
    subject,
)
from ryuzen_contracts.signing import LocalSigner, generate_local_key

BATCH_A = "01JDQ7Z8Y9X0W1V2T3S4R5Q6P7"
BATCH_B = "01JDQ7Z8Y9X0W1V2T3S4R5Q6P8"


def signing_keys(directory: Path) -> tuple[LocalSigner, Path, LocalSigner]:
    """A stack's signer and its public key file in ``directory``, and an unrelated signer."""
    signer = generate_local_key(directory / "k.pem", directory / "k.pub.pem")
    other = generate_local_key(directory / "o.pem", directory / "o.pub.pem")
    return signer, directory / "k.pub.pem", other


def parquet(rows: int, label: str = "") -> bytes:
    """A real Parquet file of ``rows`` rows (``bundle verify`` reads every footer)."""
    frame = pl.DataFrame(
        {
            "event_id": [f"{label}-{index:08d}" for index in range(rows)],
            "latency_ms": [float(index) * 1.5 for index in range(rows)],
        },
        schema={"event_id": pl.String, "latency_ms": pl.Float64},
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd")
    return buffer.getvalue()


def certificate(signer: Signer, partner: str, month: str, batch_id: str) -> bytes:
    """A zero-PII certificate for one batch of ``partner`` in ``month``."""
    stmt = statement(
        [
            subject(
                f"sanitized/partner={partner}/month={month}/{batch_id}.parquet",
                f"parquet {batch_id}".encode(),
            )
        ],
        ZERO_PII_PREDICATE,
        {
            "partner": partner,
            "month": month,
            "batch_id": batch_id,
            "counts": {"received": 10, "sanitized": 10, "quarantined": 0},
        },
    )
    return sign(stmt, signer).to_json_bytes()


@dataclass
class BundleParts:
    """The entries of a bundle before the manifest is signed; tests change them freely."""

    partner: str = "acme"
    month: str = "2026-10"
    entries: dict[str, bytes] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    @classmethod
    def typical(cls, signer: Signer, partner: str = "acme", month: str = "2026-10") -> BundleParts:
        parts = cls(partner, month)
        parts.entries = {
            "README.txt": b"Ryuzen Telemetry bundle\n",
            "schema.json": b'{"type": "object"}\n',
            "report.html": b"<html><body>report</body></html>\n",
            "data/daily_summary.parquet": parquet(2, "summary"),
            "data/events/day=01/part-00000.parquet": parquet(12, "day one"),
            "data/events/day=02/part-00000.parquet": parquet(8, "day two"),
            f"certificates/{BATCH_A}.dsse.json": certificate(signer, partner, month, BATCH_A),
            f"certificates/{BATCH_B}.dsse.json": certificate(signer, partner, month, BATCH_B),
        }
        parts.rows = {
            "data/daily_summary.parquet": 2,
            "data/events/day=01/part-00000.parquet": 12,
            "data/events/day=02/part-00000.parquet": 8,
        }
        return parts

    def predicate(self) -> dict[str, Any]:
        return {
            "partner": self.partner,
            "month": self.month,
            "schema_version": 1,
            "builder": {"name": "ryuzen-bundle", "version": "0.1.0"},
            "created_at": "2026-11-01T00:05:00Z",
            "watermark": {"latest_received_at": "2026-10-31T23:59:58Z"},
            "counts": {"events": 20, "duplicates_removed": 1, "late_events": 2, "quarantined": 0},
            "empty": False,
            "files": [
                {"name": name, "bytes": len(data), "rows": self.rows.get(name)}
                for name, data in sorted(self.entries.items())
            ],
        }

    def manifest(
        self, signer: Signer, predicate: dict[str, Any] | None = None
    ) -> tuple[bytes, bytes]:
        """``(manifest.json, manifest.dsse.json)`` over the current entries."""
        stmt = statement(
            [subject(name, data) for name, data in sorted(self.entries.items())],
            BUNDLE_MANIFEST_PREDICATE,
            predicate or self.predicate(),
        )
        return stmt.to_json_bytes(), sign(stmt, signer).to_json_bytes()

    def signed(self, signer: Signer) -> dict[str, bytes]:
        """Every entry of the ZIP: the current entries and the two manifest files."""
        payload, envelope = self.manifest(signer)
        return {"manifest.json": payload, "manifest.dsse.json": envelope, **self.entries}


def write_zip(path: Path, entries: dict[str, bytes] | list[tuple[str, bytes]]) -> Path:
    """Write the entries (deflated) in the given order; a list may repeat a name."""
    items = list(entries.items()) if isinstance(entries, dict) else entries
    buffer = io.BytesIO()
    with (
        warnings.catch_warnings(),  # zipfile warns about a repeated name; tests want one
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        warnings.simplefilter("ignore", UserWarning)
        for name, data in items:
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    return path


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
