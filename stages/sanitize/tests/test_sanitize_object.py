"""The whole sanitize transform against moto: outputs, quarantine reasons, certificates, faults."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from raw_batches import RECEIVED_AT, event, raw_object
from ryuzen_contracts.attestation import ZERO_PII_PREDICATE, verify, verify_subjects
from ryuzen_contracts.audit_log import AuditEventType
from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.key_layout import certificate_key, sanitized_key
from ryuzen_sanitize import transform as pipeline
from ryuzen_sanitize.sanitize_object import sanitize_object
from ryuzen_sanitize.transform import ConservationError, SecondScanError

MONTH = "2026-11"
CANARY_EMAIL = "maria.canary@example.org"


def run(stack, items: list, batch_id: str | None = None, **kwargs: Any):
    batch_id = batch_id or new_ulid(RECEIVED_AT)
    key = stack.put_raw(raw_object(items, batch_id), batch_id)
    return (
        key,
        batch_id,
        sanitize_object(stack.s3, stack.audit, stack.signer, stack.target, key, **kwargs),
    )


def test_clean_batch_is_written_certified_and_raw_deleted(stack) -> None:
    # Given three valid events for two partners
    items = [(event(), "acme"), (event(), "acme"), (event("nimbus/cirrus-7b"), "nimbus-ai")]
    raw_body = raw_object(items, batch := new_ulid(RECEIVED_AT))
    key = stack.put_raw(raw_body, batch)

    # When the object is sanitized
    report = sanitize_object(stack.s3, stack.audit, stack.signer, stack.target, key)

    # Then each partner has Parquet and a certificate that verifies against both inputs
    assert report.sanitized == {"acme": 2, "nimbus-ai": 1}
    assert stack.keys("raw") == []
    for partner, rows in (("acme", 2), ("nimbus-ai", 1)):
        parquet_key = sanitized_key(partner, MONTH, batch)
        parquet = stack.read("sanitized", parquet_key)
        assert stack.parquet(parquet_key).height == rows
        envelope = stack.read("sanitized", certificate_key(partner, MONTH, batch))
        statement = verify(envelope, stack.public_key, predicate_type=ZERO_PII_PREDICATE)
        verify_subjects(statement, {parquet_key: parquet, key: raw_body})
        counts = statement.predicate["counts"]
        assert counts["received"] == counts["sanitized"] == rows
        assert statement.predicate["second_scan"]["findings"] == 0
        assert len(statement.predicate["scrubber"]["ruleset_digest"]["sha256"]) == 64
    assert stack.keys("quarantine") == []


def test_parquet_has_the_explicit_schema(stack) -> None:
    _, batch, _ = run(stack, [(event(), "acme")])
    frame = stack.parquet(sanitized_key("acme", MONTH, batch))
    assert frame.schema["occurred_at"].time_zone == "UTC"
    assert frame.schema["http_status"].is_integer()
    row = frame.row(0, named=True)
    assert row["model_id"] == "acme/titan-large"
    assert {a["key"]: (a["value"], a["type"]) for a in row["attributes"]} == {
        "stream": ("true", "bool"),
        "tier": ("gold", "string"),
    }


def _ok() -> dict[str, Any]:
    return event()


@pytest.mark.parametrize(
    ("payload", "partner", "reason", "field"),
    [
        pytest.param('{"event_id": "x", "model": ', "acme", "invalid_json", None, id="truncated"),
        pytest.param('{"a": NaN}', "acme", "invalid_json", None, id="nan"),
        pytest.param(
            json.dumps(_ok())[:-1] + ', "kind": "delivery"}',
            "acme",
            "duplicate_key",
            "kind",
            id="duplicate-key",
        ),
        pytest.param(
            {**_ok(), "prompt": "tell me a secret"}, "acme", "unknown_field", "prompt", id="prompt"
        ),
        pytest.param({**_ok(), "messages": []}, "acme", "unknown_field", "messages", id="messages"),
        pytest.param(
            {**_ok(), "metrics": {"latency_ms": 1.0, "completion": "x"}},
            "acme",
            "unknown_field",
            "metrics.completion",
            id="nested-unknown",
        ),
        pytest.param(
            {**_ok(), "metrics": {"latency_ms": -1.0}},
            "acme",
            "schema_violation",
            "metrics.latency_ms",
            id="negative-latency",
        ),
        pytest.param({**_ok(), "kind": "chat"}, "acme", "schema_violation", "kind", id="bad-enum"),
        pytest.param(
            event("zephyr/unknown-model"), "acme", "unknown_model", "model.id", id="unknown-model"
        ),
        pytest.param(
            event("nimbus/cirrus-7b"),
            "acme",
            "unknown_model",
            "model.id",
            id="model-of-another-partner",
        ),
        pytest.param(
            {
                **_ok(),
                "occurred_at": (RECEIVED_AT - timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "acme",
            "clock_skew",
            "occurred_at",
            id="too-old",
        ),
        pytest.param(
            {
                **_ok(),
                "occurred_at": (RECEIVED_AT + timedelta(minutes=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "acme",
            "clock_skew",
            "occurred_at",
            id="future",
        ),
        pytest.param(
            {**_ok(), "model": {"id": "acme/titan-large", "version": "415-555-0132"}},
            "acme",
            "pii_in_identifier",
            "model.version",
            id="phone-in-version",
        ),
        pytest.param(
            {**_ok(), "outcome": {"status": "error", "error_code": "AKIAIOSFODNN7EXAMPLE"}},
            "acme",
            "pii_in_identifier",
            "outcome.error_code",
            id="aws-key-in-error-code",
        ),
        pytest.param(
            {**_ok(), "attributes": {"order_id": 4111111111111111}},
            "acme",
            "pii_in_identifier",
            "attributes.*",
            id="card-number-as-an-integer-attribute",
        ),
    ],
)
def test_each_bad_event_is_quarantined_with_its_reason(
    stack, payload, partner, reason, field
) -> None:
    good = event()
    _, batch, report = run(stack, [(good, "acme"), (payload, partner)])
    assert report.quarantined_by_reason == {reason: 1}
    (record,) = stack.quarantine_records()
    assert (record["reason"], record["field"], record["line"], record["batch_id"]) == (
        reason,
        field,
        2,
        batch,
    )
    assert stack.parquet(sanitized_key("acme", MONTH, batch)).get_column("event_id").to_list() == [
        good["event_id"]
    ]


def test_duplicate_event_id_within_the_object(stack) -> None:
    first = event()
    _, _, report = run(
        stack, [(first, "acme"), ({**event(), "event_id": first["event_id"]}, "acme")]
    )
    assert report.quarantined_by_reason == {"duplicate_event_id": 1}
    assert report.sanitized == {"acme": 1}


def test_pii_in_free_text_is_redacted_and_audited(stack) -> None:
    noisy = event(outcome={"status": "error", "error_message": f"mail to {CANARY_EMAIL} bounced"})
    _, batch, report = run(stack, [(noisy, "acme")])
    message = stack.parquet(sanitized_key("acme", MONTH, batch)).get_column("error_message")[0]
    assert CANARY_EMAIL not in message and "[REDACTED:EMAIL]" in message
    assert report.redactions_by_rule == {"EMAIL": 1}
    (violation,) = [e for e in stack.audit.for_partner_month("acme", MONTH)]
    assert violation.event_type is AuditEventType.SCRUB_VIOLATION
    assert violation.detail["redactions_by_rule"] == {"EMAIL": 1}
    assert CANARY_EMAIL not in json.dumps(violation.model_dump(mode="json"))


def test_on_pii_quarantine_sends_the_whole_event_to_quarantine(stack) -> None:
    stack.target = type(stack.target)(
        **{
            **stack.target.__dict__,
            "config": stack.target.config.model_copy(update={"on_pii": "quarantine"}),
        }
    )
    noisy = event(outcome={"status": "error", "error_message": f"mail to {CANARY_EMAIL} bounced"})
    _, batch, report = run(stack, [(noisy, "acme"), (event(), "acme")])
    assert report.quarantined_by_reason == {"pii_in_text": 1}
    (record,) = stack.quarantine_records()
    assert (record["field"], record["rule"]) == ("outcome.error_message", "EMAIL")
    assert stack.parquet(sanitized_key("acme", MONTH, batch)).height == 1


def test_quarantine_never_holds_the_raw_value(stack) -> None:
    bad = {**event(), "prompt": CANARY_EMAIL}
    pii_id = {**event(), "model": {"id": "acme/titan-large", "version": "415-555-0132"}}
    run(stack, [(bad, "acme"), (pii_id, "acme")])
    for key in stack.keys("quarantine"):
        assert CANARY_EMAIL.encode() not in stack.read("quarantine", key)
    records = stack.quarantine_records()
    assert [r["value_hmac_sha256"] is not None for r in records] == [False, True]
    assert all("415-555-0132" not in json.dumps(r) for r in records)
    # Keyed: the plain SHA-256 of the value (brute-forceable for a phone number) is absent.
    plain = hashlib.sha256(b"415-555-0132").hexdigest()
    assert records[1]["value_hmac_sha256"] == stack.target.value_hasher("415-555-0132")
    assert all(plain not in json.dumps(r) for r in records)


def test_second_scan_finding_fails_closed(stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a scrubber bug: the independent second scan still sees PII in the output
    monkeypatch.setattr(pipeline, "second_scan", lambda texts: [(0, "EMAIL")])
    batch = new_ulid(RECEIVED_AT)
    key = stack.put_raw(raw_object([(event(), "acme")], batch), batch)
    # Then nothing is written and the RAW object stays for redelivery
    with pytest.raises(SecondScanError):
        sanitize_object(stack.s3, stack.audit, stack.signer, stack.target, key)
    assert stack.keys("sanitized") == [] and stack.keys("quarantine") == []
    assert stack.keys("raw") == [key]


def test_conservation_violation_fails_before_any_write(
    stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pipeline.scrub_frame

    def losing(frame, lines, on_pii):
        outcome = real(frame, lines, on_pii)
        return type(outcome)(outcome.frame.slice(1), outcome.rejected, outcome.redactions)

    monkeypatch.setattr(pipeline, "scrub_frame", losing)
    batch = new_ulid(RECEIVED_AT)
    key = stack.put_raw(raw_object([(event(), "acme"), (event(), "acme")], batch), batch)
    with pytest.raises(ConservationError):
        sanitize_object(stack.s3, stack.audit, stack.signer, stack.target, key)
    assert stack.keys("sanitized") == [] and stack.keys("raw") == [key]


def test_crash_before_raw_delete_is_healed_by_redelivery(
    stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    noisy = event(outcome={"status": "error", "error_message": f"mail to {CANARY_EMAIL} bounced"})
    batch = new_ulid(RECEIVED_AT)
    key = stack.put_raw(raw_object([(noisy, "acme"), ({"bad": 1}, "acme")], batch), batch)
    real_delete = stack.s3.delete_object

    def crash(**kwargs):
        raise RuntimeError("crash between the SANITIZED write and the RAW delete")

    monkeypatch.setattr(stack.s3, "delete_object", crash)
    with pytest.raises(RuntimeError):
        sanitize_object(stack.s3, stack.audit, stack.signer, stack.target, key)
    first_keys = stack.keys("sanitized")
    monkeypatch.setattr(stack.s3, "delete_object", real_delete)

    # When the same S3 event is delivered again, and once more after success
    sanitize_object(stack.s3, stack.audit, stack.signer, stack.target, key)
    again = sanitize_object(stack.s3, stack.audit, stack.signer, stack.target, key)

    # Then the same keys hold the same rows, RAW is gone, and the audit counted once
    assert stack.keys("sanitized") == first_keys
    assert again.already_done
    assert stack.keys("raw") == []
    assert len(stack.audit.for_partner_month("acme", MONTH)) == 1
    assert len(stack.quarantine_records()) == 1


def test_raw_lines_kept_only_when_configured(stack) -> None:
    config = stack.target.config.model_copy(update={"quarantine_raw_lines": True})
    stack.target = type(stack.target)(**{**stack.target.__dict__, "config": config})
    _, batch, _ = run(stack, [({**event(), "prompt": "hello"}, "acme")])
    raw_keys = [k for k in stack.keys("quarantine") if k.endswith(".raw.ndjson.gz")]
    assert len(raw_keys) == 1 and batch in raw_keys[0]


def test_lines_with_a_foreign_receipt_are_quarantined_unattributed(stack) -> None:
    # Given a RAW line whose receipt names a partner id that could never reach a key
    batch = new_ulid(RECEIVED_AT)
    body = raw_object([(event(), "acme"), (event(), "acme")], batch)
    text = gzip.decompress(body).decode()
    text = text.replace('"partner":"acme"', '"partner":"NOT A PARTNER"', 1)
    key = stack.put_raw(gzip.compress(text.encode()), batch)

    # When it is sanitized, the line is quarantined without a partner and the rest goes on
    report = sanitize_object(stack.s3, stack.audit, stack.signer, stack.target, key)
    assert report.sanitized == {"acme": 1}
    assert report.quarantined_by_reason == {"invalid_json": 1}
    (record,) = stack.quarantine_records()
    assert record["partner"] is None
    envelope = stack.read("sanitized", certificate_key("acme", MONTH, batch))
    predicate = verify(envelope, stack.public_key).predicate
    assert predicate["object"] == {"received": 2, "unattributed_quarantined": 1}
    assert stack.keys("raw") == []
