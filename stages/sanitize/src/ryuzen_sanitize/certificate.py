"""The zero-PII certificate: one signed in-toto Statement per (RAW object, partner).

Its subjects are the SHA-256 of the SANITIZED Parquet it vouches for and of the RAW
object it came from; its predicate says which scrubber and rule set ran, what came in,
what went out, what was quarantined or redacted (counts only), that the independent
second scan found nothing, and the receipt window. A partner checks it offline with the
stack's public key (``ryuzen verify certificate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ryuzen_contracts.attestation import (
    ZERO_PII_PREDICATE,
    Envelope,
    Signer,
    sign,
    statement,
    subject,
)
from ryuzen_contracts.audit_log import iso_millis
from ryuzen_contracts.sanitized_schema import SANITIZED_SCHEMA_VERSION
from ryuzen_contracts.telemetry_event import SCHEMA_VERSION

from ryuzen_sanitize.scrubber import RULESET_VERSION, SCRUBBER_VERSION, ruleset_digest


@dataclass(frozen=True)
class CertificateFacts:
    """Everything a certificate states about one partner's share of one RAW object."""

    partner: str
    month: str
    batch_id: str
    raw_key: str
    raw_sha256: str
    sanitized_key: str
    sanitized_sha256: str
    received: int
    sanitized: int
    quarantined_by_reason: dict[str, int]
    redactions_by_rule: dict[str, int]
    second_scan_findings: int
    receipt_first: datetime
    receipt_last: datetime
    object_received: int
    object_unattributed: int


def certificate(facts: CertificateFacts, signer: Signer, issued_at: datetime) -> Envelope:
    """Build and sign the certificate. Refuses to certify anything that does not add up."""
    quarantined = sum(facts.quarantined_by_reason.values())
    if facts.received != facts.sanitized + quarantined:
        raise ValueError(
            f"conservation fails for {facts.partner}: {facts.received} received != "
            f"{facts.sanitized} sanitized + {quarantined} quarantined"
        )
    if facts.second_scan_findings:
        raise ValueError("a second scan with findings is never certified")
    predicate = {
        "partner": facts.partner,
        "month": facts.month,
        "batch_id": facts.batch_id,
        "scrubber": {
            "version": SCRUBBER_VERSION,
            "ruleset_version": RULESET_VERSION,
            "ruleset_digest": {"sha256": ruleset_digest()},
        },
        "schemas": {"telemetry_event": SCHEMA_VERSION, "sanitized": SANITIZED_SCHEMA_VERSION},
        "counts": {
            "received": facts.received,
            "sanitized": facts.sanitized,
            "quarantined": quarantined,
            "quarantined_by_reason": facts.quarantined_by_reason,
            "redactions_by_rule": facts.redactions_by_rule,
        },
        "object": {
            "received": facts.object_received,
            "unattributed_quarantined": facts.object_unattributed,
        },
        "second_scan": {
            "engine": "python-re",
            "findings": facts.second_scan_findings,
            "passed": True,
        },
        "receipt_window": {
            "first": iso_millis(facts.receipt_first),
            "last": iso_millis(facts.receipt_last),
        },
        "issued_at": iso_millis(issued_at),
    }
    subjects = [
        subject(facts.sanitized_key, sha256=facts.sanitized_sha256),
        subject(facts.raw_key, sha256=facts.raw_sha256),
    ]
    return sign(statement(subjects, ZERO_PII_PREDICATE, predicate), signer)
