"""The sanitize transform: RAW bytes in, SANITIZED Parquet, quarantine and certificates out.

A pure function of its inputs (no S3, no DynamoDB): the stage writes what it returns,
the benchmark times it, and the tests can inspect every byte. It fails closed — if the
independent second scan finds anything, or the counts do not add up, it raises before
anything could be written.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl
from ryuzen_contracts.attestation import Signer, sha256_hex
from ryuzen_contracts.key_layout import (
    certificate_key,
    month_of,
    parse_raw_key,
    quarantine_key,
    quarantine_raw_key,
    sanitized_key,
    validate_partner_id,
)
from ryuzen_contracts.stack_config import StackConfig

from ryuzen_sanitize import quarantine
from ryuzen_sanitize.certificate import CertificateFacts, certificate
from ryuzen_sanitize.raw_lines import inflate, parse_line, split_lines
from ryuzen_sanitize.sanitized_frame import string_values, to_frame, to_parquet
from ryuzen_sanitize.scrubber import second_scan
from ryuzen_sanitize.scrubbing import scrub_frame
from ryuzen_sanitize.validation import Rejection, validate_lines


class SecondScanError(RuntimeError):
    """The independent second scan found PII in output that was about to be written."""


class ConservationError(RuntimeError):
    """received != sanitized + quarantined: something was lost or double counted."""


@dataclass(frozen=True)
class PartnerOutput:
    """One partner's share of a RAW object: its Parquet and the certificate vouching for it."""

    partner: str
    parquet_key: str
    parquet: bytes
    certificate_key: str
    certificate: bytes
    received: int
    sanitized: int
    quarantined_by_reason: dict[str, int]
    quarantined_by_rule: dict[str, int]
    redactions_by_rule: dict[str, int]


@dataclass(frozen=True)
class TransformResult:
    """Everything sanitizing one RAW object produces, ready to be written."""

    batch_id: str
    month: str
    received_at: datetime
    received: int
    partners: list[PartnerOutput]
    rejections: list[Rejection]
    quarantine_objects: dict[str, bytes] = field(default_factory=dict)

    @property
    def quarantined_by_reason(self) -> dict[str, int]:
        """Rejections per reason over the whole object."""
        return quarantine.counts_by_reason(self.rejections)

    @property
    def redactions_by_rule(self) -> dict[str, int]:
        """Redactions per rule over the whole object."""
        totals: Counter[str] = Counter()
        for output in self.partners:
            totals.update(output.redactions_by_rule)
        return dict(sorted(totals.items()))


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    # Parsing a batch allocates hundreds of thousands of small dicts; each allocation
    # burst triggers the cyclic collector, which then walks every live object again.
    # Nothing here builds reference cycles, so pausing it for one object is safe and
    # takes about 40% off the transform (reference counting still frees everything).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _split_by_partner(frame: pl.DataFrame, partners: list[str]) -> dict[str, pl.DataFrame]:
    """Each partner's rows, in order; a partner whose events were all rejected gets an
    empty frame (its certificate still accounts for what it sent)."""
    parts = frame.partition_by("partner", as_dict=True, maintain_order=True)
    return {partner: parts.get((partner,), frame.clear()) for partner in partners}


def transform(
    body: bytes,
    key: str,
    config: StackConfig,
    signer: Signer,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    *,
    value_hasher: quarantine.ValueHasher | None = None,
) -> TransformResult:
    """Sanitize one RAW object's bytes (stored at ``key``); raise rather than produce bad output.

    ``value_hasher`` keys the hash of each quarantined value (none recorded without it).
    """
    with _cyclic_gc_paused():
        return _transform(body, key, config, signer, now, value_hasher)


def _transform(
    body: bytes,
    key: str,
    config: StackConfig,
    signer: Signer,
    now: Callable[[], datetime],
    value_hasher: quarantine.ValueHasher | None,
) -> TransformResult:
    raw_key = parse_raw_key(key)
    raw_sha256 = sha256_hex(body)
    numbered = split_lines(inflate(body))
    lines = [parse_line(number, text) for number, text in numbered]
    accepted, rejected = validate_lines(lines, config)

    receipts = [line.receipt.received_at for line in lines if line.receipt is not None]
    received_at = min(receipts) if receipts else raw_key.received_hour
    month = month_of(received_at)
    lines_per_partner = Counter(line.receipt.partner for line in lines if line.receipt is not None)
    for partner in lines_per_partner:
        validate_partner_id(partner)

    # One frame and one scrub for the whole object: the scrubber's cost is mostly fixed
    # per call, so doing it per partner (or per event) would multiply it.
    outcome = scrub_frame(to_frame(accepted), [item.line for item in accepted], config.on_pii)
    findings = second_scan(string_values(outcome.frame))
    if findings:
        rules = dict(Counter(rule for _, rule in findings))
        raise SecondScanError(f"second scan found PII in batch {raw_key.batch_id}: {rules}")
    rejections = sorted([*rejected, *outcome.rejected], key=lambda r: r.line)
    frames = _split_by_partner(outcome.frame, sorted(lines_per_partner))

    sanitized_total = sum(frame.height for frame in frames.values())
    if len(lines) != sanitized_total + len(rejections):
        raise ConservationError(
            f"batch {raw_key.batch_id}: {len(lines)} received != {sanitized_total} sanitized "
            f"+ {len(rejections)} quarantined"
        )

    unattributed = sum(1 for r in rejections if r.partner is None)
    partners = []
    for partner, frame in frames.items():
        redactions = outcome.redactions.get(partner, {})
        parquet = to_parquet(frame)
        parquet_key = sanitized_key(partner, month, raw_key.batch_id)
        by_reason = quarantine.counts_by_reason(rejections, partner)
        facts = CertificateFacts(
            partner=partner,
            month=month,
            batch_id=raw_key.batch_id,
            raw_key=key,
            raw_sha256=raw_sha256,
            sanitized_key=parquet_key,
            sanitized_sha256=sha256_hex(parquet),
            received=lines_per_partner[partner],
            sanitized=frame.height,
            quarantined_by_reason=by_reason,
            redactions_by_rule=redactions,
            second_scan_findings=0,
            receipt_first=min(receipts),
            receipt_last=max(receipts),
            object_received=len(lines),
            object_unattributed=unattributed,
        )
        envelope = certificate(facts, signer, issued_at=now())
        partners.append(
            PartnerOutput(
                partner=partner,
                parquet_key=parquet_key,
                parquet=parquet,
                certificate_key=certificate_key(partner, month, raw_key.batch_id),
                certificate=envelope.to_json_bytes(),
                received=lines_per_partner[partner],
                sanitized=frame.height,
                quarantined_by_reason=by_reason,
                quarantined_by_rule=quarantine.counts_by_rule(rejections, partner),
                redactions_by_rule=redactions,
            )
        )

    quarantine_objects: dict[str, bytes] = {}
    if rejections:
        day = received_at.date()
        records = quarantine.records_object(rejections, raw_key.batch_id, value_hasher)
        quarantine_objects[quarantine_key(day, raw_key.batch_id)] = records
        if config.quarantine_raw_lines:
            raw_lines = quarantine.raw_lines_object(rejections, dict(numbered))
            quarantine_objects[quarantine_raw_key(day, raw_key.batch_id)] = raw_lines

    return TransformResult(
        batch_id=raw_key.batch_id,
        month=month,
        received_at=received_at,
        received=len(lines),
        partners=partners,
        rejections=rejections,
        quarantine_objects=quarantine_objects,
    )
