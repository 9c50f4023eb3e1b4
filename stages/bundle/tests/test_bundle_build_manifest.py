"""The delivered bundle: its entries, manifest, signature, certificates and the empty month."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import struct
import zipfile
from datetime import datetime, timedelta

import polars as pl
import pytest
from bundle_build_stack import BundleStack
from bundle_build_support import MONTH, batch
from ryuzen_bundle import __version__
from ryuzen_bundle.daily_summary import SUMMARY_SCHEMA
from ryuzen_contracts.analytics_schema import ANALYTICS_SCHEMA_VERSION, analytics_schema_document
from ryuzen_contracts.attestation import (
    BUNDLE_MANIFEST_PREDICATE,
    Envelope,
    verify,
    verify_subjects,
)
from ryuzen_contracts.audit_log import AuditEventType
from ryuzen_contracts.bundle_state import BundleState
from ryuzen_contracts.key_layout import bundle_key

START = datetime.fromisoformat("2026-10-01T00:00:00+00:00")


def put_month(stack: BundleStack) -> dict[str, bytes]:
    """Three batches on three days (one re-sends 5 events of the first), with certificates."""
    first = batch(40, START + timedelta(days=2, hours=5), seed=1)
    second = batch(30, START + timedelta(days=9, hours=23, minutes=59), seed=2)
    resent = first.head(5).get_column("event_id").to_list()
    third = batch(
        25,
        START + timedelta(days=30, hours=23, minutes=59, seconds=59),
        seed=3,
        event_ids=resent + [f"00000000-0000-4000-8000-{i:012d}" for i in range(20)],
    )
    certificates = {}
    for data, quarantined in ((first, 2), (second, 0), (third, 5)):
        batch_id = stack.put_batch(data)
        certificates[batch_id] = stack.put_certificate(batch_id, quarantined)
    return certificates


def test_bundle_entries_manifest_and_signature(stack: BundleStack) -> None:
    # Given a month of three batches, one of which re-sends five events
    certificates = put_month(stack)

    # When the bundle is built
    report = stack.build()

    # Then the ZIP holds exactly the decided layout
    archive = stack.bundle_zip()
    names = archive.namelist()
    assert names[-2:] == ["manifest.json", "manifest.dsse.json"]
    assert set(names) == {
        "data/events/day=03/part-00000.parquet",
        "data/events/day=10/part-00000.parquet",
        "data/events/day=31/part-00000.parquet",
        "data/daily_summary.parquet",
        "report.html",
        "schema.json",
        "README.txt",
        *(f"certificates/{batch_id}.dsse.json" for batch_id in certificates),
        "manifest.json",
        "manifest.dsse.json",
    }
    # manifest.json is exactly the signed payload, and the signature verifies
    envelope_bytes = archive.read("manifest.dsse.json")
    envelope = Envelope.model_validate_json(envelope_bytes)
    assert base64.b64decode(envelope.payload) == archive.read("manifest.json")
    stmt = verify(
        envelope_bytes, stack.signer.public_key_pem(), predicate_type=BUNDLE_MANIFEST_PREDICATE
    )
    # every entry but the manifest pair is a subject, with its SHA-256
    subject_names = [item.name for item in stmt.subject]
    assert subject_names == names[:-2]
    verify_subjects(stmt, {name: archive.read(name) for name in subject_names})
    predicate = stmt.predicate
    assert predicate["partner"] == "acme" and predicate["month"] == MONTH
    assert predicate["schema_version"] == ANALYTICS_SCHEMA_VERSION
    assert predicate["builder"] == {"name": "ryuzen-bundle", "version": __version__}
    assert predicate["created_at"] == "2026-11-02T03:00:00.000Z"
    assert predicate["watermark"] == {"latest_received_at": "2026-10-31T23:59:59.000000Z"}
    assert predicate["counts"] == {
        "events": 90,
        "duplicates_removed": 5,
        "late_events": 0,
        "quarantined": 7,
    }
    assert predicate["empty"] is False
    # files lists exactly the subjects, with sizes and (Parquet only) rows
    assert [item["name"] for item in predicate["files"]] == subject_names
    for item in predicate["files"]:
        data = archive.read(item["name"])
        assert item["bytes"] == len(data)
        if item["name"].endswith(".parquet"):
            assert item["rows"] == pl.read_parquet(io.BytesIO(data)).height
        else:
            assert item["rows"] is None
    # ...and each subject carries the same counts as in-toto annotations
    for item, described in zip(predicate["files"], stmt.subject, strict=True):
        expected = {"bytes": item["bytes"]}
        if item["rows"] is not None:
            expected["rows"] = item["rows"]
        assert described.annotations == expected
    # certificates are the stored bytes, exactly; schema.json is the contract document
    for batch_id, body in certificates.items():
        assert archive.read(f"certificates/{batch_id}.dsse.json") == body
    assert archive.read("schema.json").decode() == analytics_schema_document()
    readme = archive.read("README.txt").decode()
    assert "90 events" in readme and "duplicates removed     5" in readme
    # and the report states the figures
    assert report.events == 90 and report.duplicates_removed == 5 and report.quarantined == 7


def test_object_checksums_state_audit_and_event(stack: BundleStack) -> None:
    put_month(stack)
    report = stack.build()
    body = stack.bundle_bytes()
    key = bundle_key("acme", MONTH)

    # The object's SHA-256 is the one reported, stored as metadata, state and audit
    assert hashlib.sha256(body).hexdigest() == report.sha256
    assert report.bytes == len(body)
    head = stack.s3.head_object(Bucket="bundles", Key=key, ChecksumMode="ENABLED")
    assert head["Metadata"]["sha256"] == report.sha256
    assert head["ContentType"] == "application/zip"
    assert re.fullmatch(r"[A-Za-z0-9+/]{43}=-1", report.checksum_sha256)
    state = stack.state()
    assert state is not None and state.state is BundleState.DELIVERED
    assert state.attributes["sha256"] == report.sha256
    assert state.attributes["checksum_verified"] is True
    assert state.attributes["bundle_key"] == key
    kinds = [event.event_type for event in stack.audit_events()]
    assert kinds == [AuditEventType.BUNDLE_CREATED, AuditEventType.BUNDLE_DELIVERED]
    for event in stack.audit_events():
        assert event.detail["bundle_key"] == key
        assert event.detail["sha256"] == report.sha256
        assert event.detail["bytes"] == report.bytes
        assert "://" not in json.dumps(event.detail)
    delivered = stack.audit_events()[1].detail
    assert delivered["checksum_verified"] is True
    assert delivered["checksum_sha256"] == report.checksum_sha256
    # and one BundleDelivered event went out on the bus
    (event,) = stack.delivered_events()
    assert event["source"] == "ryuzen.telemetry" and event["detail-type"] == "BundleDelivered"
    assert event["detail"] == {
        "partner": "acme",
        "month": MONTH,
        "bundle_key": key,
        "sha256": report.sha256,
        "bytes": report.bytes,
    }
    assert stack.open_uploads() == []


def _local_headers(body: bytes) -> list[tuple[int, bytes, bytes]]:
    """(flags, name, extra) of every local file header, read straight from the bytes."""
    headers = []
    offset = body.find(b"PK\x03\x04")
    while offset != -1:
        flags = struct.unpack_from("<H", body, offset + 6)[0]
        name_len, extra_len = struct.unpack_from("<HH", body, offset + 26)
        name = body[offset + 30 : offset + 30 + name_len]
        extra = body[offset + 30 + name_len : offset + 30 + name_len + extra_len]
        headers.append((flags, name, extra))
        offset = body.find(b"PK\x03\x04", offset + 30 + name_len + extra_len)
    return headers


def test_zip_is_streamed_stored_and_zip64(stack: BundleStack) -> None:
    put_month(stack)
    stack.build()
    body = stack.bundle_bytes()
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None
    for info in archive.infolist():
        assert info.compress_type == zipfile.ZIP_STORED
        assert info.flag_bits & 0x08, "sizes follow the data (written to a non-seekable stream)"
        assert info.date_time == (2026, 11, 2, 3, 0, 0)
    for flags, name, extra in _local_headers(body):
        assert flags & 0x08
        assert extra[:2] == b"\x01\x00", f"{name!r} has no zip64 extra field"


def test_report_is_self_contained(stack: BundleStack) -> None:
    put_month(stack)
    stack.build()
    html = stack.bundle_zip().read("report.html").decode()
    assert html.startswith("<!DOCTYPE html>")
    assert html.count("<svg") >= 5
    lowered = html.lower()
    for external in ("http://", "https://", "<script", "<link", "src=", "@import", "url("):
        assert external not in lowered
    assert "acme/titan-large" in html and "acme/swift-mini" in html


def test_empty_month_still_yields_a_bundle_that_says_so(stack: BundleStack) -> None:
    # Given a month with no events at all
    # When it is bundled
    report = stack.build()

    # Then a bundle is delivered, and every part of it says it holds nothing
    assert report.empty is True and report.events == 0
    archive = stack.bundle_zip()
    names = archive.namelist()
    assert not [name for name in names if name.startswith("data/events/")]
    assert set(names) == {
        "data/daily_summary.parquet",
        "report.html",
        "schema.json",
        "README.txt",
        "manifest.json",
        "manifest.dsse.json",
    }
    stmt = verify(archive.read("manifest.dsse.json"), stack.signer.public_key_pem())
    assert stmt.predicate["empty"] is True
    assert stmt.predicate["counts"] == {
        "events": 0,
        "duplicates_removed": 0,
        "late_events": 0,
        "quarantined": 0,
    }
    assert stmt.predicate["watermark"] == {"latest_received_at": None}
    summary = pl.read_parquet(io.BytesIO(archive.read("data/daily_summary.parquet")))
    assert summary.height == 0 and summary.schema == SUMMARY_SCHEMA
    assert "holds no events" in archive.read("README.txt").decode()
    assert "holds no events" in archive.read("report.html").decode()
    state = stack.state()
    assert state is not None and state.state is BundleState.DELIVERED


def test_certificates_of_other_months_and_partners_stay_out(stack: BundleStack) -> None:
    data = batch(10, START + timedelta(days=4), seed=9)
    batch_id = stack.put_batch(data)
    stack.put_certificate(batch_id, 1)
    stack.put_certificate(batch_id, 3, partner="orbital")
    stack.put_certificate(batch_id, 4, month="2026-09")
    stack.build()
    names = stack.bundle_zip().namelist()
    assert [n for n in names if n.startswith("certificates/")] == [
        f"certificates/{batch_id}.dsse.json"
    ]
    stmt = verify(stack.bundle_zip().read("manifest.dsse.json"), stack.signer.public_key_pem())
    assert stmt.predicate["counts"]["quarantined"] == 1


@pytest.mark.parametrize("late", [0, 3], ids=["no-late", "three-late"])
def test_late_events_are_counted(stack: BundleStack, late: int) -> None:
    data = batch(12, START + timedelta(days=1), seed=4).with_columns(
        (pl.int_range(pl.len()) < late).alias("late")
    )
    stack.put_batch(data)
    report = stack.build()
    assert report.late_events == late
