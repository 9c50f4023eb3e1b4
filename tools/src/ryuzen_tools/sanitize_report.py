"""What the sanitize stage did, read back from what it wrote: certificates and quarantine.

The demo takes its evidence from the artifacts, not from the stage's own counters. Every
certificate in SANITIZED is verified with the stack's published public key — signature,
predicate type, that it sits under the key of the partner, month and batch it names, and
its Parquet subject against the Parquet actually stored (the RAW subject cannot be
checked: sanitize deleted that object) — and its counts are summed. Every quarantine
record is counted by reason. Conservation is then checked per batch and in total:
``received = sanitized + quarantined + unattributed`` (lines no partner can be named for
appear in every certificate of their object, so they are counted once per batch).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ryuzen_contracts.attestation import ZERO_PII_PREDICATE, VerificationError, verify
from ryuzen_contracts.key_layout import InvalidKeyPart, parse_sanitized_key, sanitized_key

from ryuzen_tools.verify_attestation import check_subject_digest

RAW_LINES_SUFFIX = ".raw.ndjson.gz"
_WORKERS = 8  # S3 reads against loopback moto are latency-bound: overlap them


@dataclass
class _Certified:
    """One certificate: its predicate once the signature verified, and what failed, if any.

    A certificate whose signature verified still counts towards conservation when its
    Parquet does not match (the counts are the signer's; the object beside it is wrong);
    one whose signature failed does not (nothing it says can be trusted).
    """

    key: str
    batch_id: str
    predicate: dict[str, Any] | None
    failure: str | None = None


@dataclass
class SanitizeReport:
    """Totals over every certificate and quarantine record, and what did not add up."""

    certificates: int = 0
    certificates_verified: int = 0
    parquet_objects: int = 0
    quarantine_objects: int = 0
    quarantine_raw_line_objects: int = 0
    quarantine_records: int = 0
    received: int = 0
    sanitized: int = 0
    quarantined: int = 0
    unattributed: int = 0
    batches: set[str] = field(default_factory=set)
    sanitized_by_partner: Counter[str] = field(default_factory=Counter)
    quarantined_by_reason: Counter[str] = field(default_factory=Counter)
    redactions_by_rule: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready totals (the demo summary's ``sanitize`` section)."""
        return {
            "objects_processed": len(self.batches),
            "certificates": self.certificates,
            "certificates_verified": self.certificates_verified,
            "parquet_objects": self.parquet_objects,
            "events_received": self.received,
            "events_sanitized": self.sanitized,
            "events_quarantined": self.quarantined + self.unattributed,
            "events_unattributed": self.unattributed,
            "sanitized_by_partner": dict(sorted(self.sanitized_by_partner.items())),
            "quarantined_by_reason": dict(sorted(self.quarantined_by_reason.items())),
            "redactions_by_rule": dict(sorted(self.redactions_by_rule.items())),
            "quarantine_objects": self.quarantine_objects,
            "quarantine_records": self.quarantine_records,
            "quarantine_raw_line_objects": self.quarantine_raw_line_objects,
            "problems": list(self.problems),
        }


def _keys(s3: Any, bucket: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            yield item["Key"]


def _read(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _check_certificate(s3: Any, bucket: str, key: str, public_key_pem: bytes) -> _Certified:
    where = parse_sanitized_key(key)
    try:
        stmt = verify(_read(s3, bucket, key), public_key_pem, predicate_type=ZERO_PII_PREDICATE)
        predicate = stmt.predicate
        stated = (predicate.get("partner"), predicate.get("month"), predicate.get("batch_id"))
        if stated != (where.partner, where.month, where.batch_id):
            raise VerificationError(f"it certifies {stated}, not the object it sits beside")
    except VerificationError as error:
        return _Certified(key, where.batch_id, None, f"certificate {key}: {error}")
    parquet_key = sanitized_key(where.partner, where.month, where.batch_id)
    try:
        parquet_sha256 = hashlib.sha256(_read(s3, bucket, parquet_key)).hexdigest()
        check_subject_digest(stmt, parquet_key, parquet_sha256, parquet_key)
    except (VerificationError, s3.exceptions.NoSuchKey) as error:
        return _Certified(key, where.batch_id, predicate, f"certificate {key}: {error}")
    return _Certified(key, where.batch_id, predicate)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _add_certificates(
    report: SanitizeReport, certified: list[_Certified]
) -> dict[str, tuple[int, int]]:
    """Sum the certificates into ``report``; per batch, the object's received and unattributed."""
    objects: dict[str, tuple[int, int]] = {}
    per_batch: Counter[str] = Counter()
    for item in certified:
        report.batches.add(item.batch_id)
        if item.failure is not None:
            report.problems.append(item.failure)
        if item.predicate is None:
            continue
        if item.failure is None:
            report.certificates_verified += 1
        counts = item.predicate.get("counts") or {}
        report.sanitized += _int(counts.get("sanitized"))
        report.quarantined += _int(counts.get("quarantined"))
        report.sanitized_by_partner[str(item.predicate.get("partner"))] += _int(
            counts.get("sanitized")
        )
        report.redactions_by_rule.update(
            {str(rule): _int(n) for rule, n in (counts.get("redactions_by_rule") or {}).items()}
        )
        per_batch[item.batch_id] += _int(counts.get("received"))
        whole = item.predicate.get("object") or {}
        facts = (_int(whole.get("received")), _int(whole.get("unattributed_quarantined")))
        if objects.setdefault(item.batch_id, facts) != facts:
            report.problems.append(f"batch {item.batch_id}: certificates disagree on the object")
    for batch_id, (object_received, unattributed) in objects.items():
        if per_batch[batch_id] + unattributed != object_received:
            report.problems.append(
                f"batch {batch_id}: partners received {per_batch[batch_id]} + {unattributed} "
                f"unattributed != {object_received} lines in the object"
            )
    return objects


def _add_quarantine(report: SanitizeReport, s3: Any, bucket: str) -> Counter[str]:
    """Count quarantine records into ``report``; return unattributed records per batch."""
    unattributed: Counter[str] = Counter()
    for key in _keys(s3, bucket):
        if key.endswith(RAW_LINES_SUFFIX):
            report.quarantine_raw_line_objects += 1
            continue
        report.quarantine_objects += 1
        for line in gzip.decompress(_read(s3, bucket, key)).splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            report.quarantine_records += 1
            report.quarantined_by_reason[str(record.get("reason"))] += 1
            batch_id = str(record.get("batch_id"))
            report.batches.add(batch_id)
            if record.get("partner") is None:
                unattributed[batch_id] += 1
    return unattributed


def sanitize_report(
    s3: Any, sanitized_bucket: str, quarantine_bucket: str, public_key_pem: bytes
) -> SanitizeReport:
    """Verify and sum everything sanitize wrote to SANITIZED and QUARANTINE."""
    report = SanitizeReport()
    certificate_keys, parquet_keys = [], set()
    for key in _keys(s3, sanitized_bucket):
        try:
            parsed = parse_sanitized_key(key)
        except InvalidKeyPart:
            report.problems.append(f"unexpected object {key} in SANITIZED")
            continue
        if parsed.is_certificate:
            certificate_keys.append(key)
        else:
            parquet_keys.add(key)
    report.certificates = len(certificate_keys)
    report.parquet_objects = len(parquet_keys)
    with ThreadPoolExecutor(_WORKERS) as pool:
        certified = list(
            pool.map(
                lambda key: _check_certificate(s3, sanitized_bucket, key, public_key_pem),
                certificate_keys,
            )
        )
    objects = _add_certificates(report, certified)
    certified_parquet = {
        sanitized_key(p.partner, p.month, p.batch_id)
        for p in map(parse_sanitized_key, certificate_keys)
    }
    uncertified = sorted(parquet_keys - certified_parquet)
    report.problems += [f"{key} has no certificate" for key in uncertified]

    unattributed_records = _add_quarantine(report, s3, quarantine_bucket)
    # An object none of whose lines names a partner has no certificate: its quarantine
    # records are all the evidence there is.
    for batch_id, count in unattributed_records.items():
        objects.setdefault(batch_id, (count, count))
    for batch_id, (received, unattributed) in objects.items():
        report.received += received
        report.unattributed += unattributed
        if unattributed_records[batch_id] != unattributed:
            report.problems.append(
                f"batch {batch_id}: certificates count {unattributed} unattributed lines, "
                f"quarantine holds {unattributed_records[batch_id]}"
            )
    attributed_records = report.quarantine_records - sum(unattributed_records.values())
    if attributed_records != report.quarantined:
        report.problems.append(
            f"certificates count {report.quarantined} quarantined events, quarantine holds "
            f"{attributed_records} records naming a partner"
        )
    if report.received != report.sanitized + report.quarantined + report.unattributed:
        report.problems.append(
            f"{report.received} received != {report.sanitized} sanitized + "
            f"{report.quarantined} quarantined + {report.unattributed} unattributed"
        )
    return report
