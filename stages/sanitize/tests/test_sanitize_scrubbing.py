"""Column-wise scrubbing of one object's frame: attribution to rows, partners and fields."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import polars as pl
import pytest
from raw_batches import RECEIVED_AT, event, raw_line
from ryuzen_contracts.attestation import verify
from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.key_layout import raw_key
from ryuzen_contracts.signing import generate_local_key
from ryuzen_contracts.stack_config import load_stack_config
from ryuzen_sanitize.transform import transform

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "Pulumi.yaml").exists())
CONFIG = load_stack_config(ROOT / "Pulumi.dev.yaml")


@pytest.fixture
def signer(tmp_path):
    return generate_local_key(tmp_path / "k.pem", tmp_path / "k.pub.pem")


def _run(items, signer, on_pii="redact"):
    batch = new_ulid(RECEIVED_AT)
    lines = [raw_line(json.dumps(doc), batch, partner) for doc, partner in items]
    body = gzip.compress(("\n".join(lines) + "\n").encode())
    config = CONFIG.model_copy(update={"on_pii": on_pii})
    return transform(body, raw_key(RECEIVED_AT, batch), config, signer)


def _rows(output):
    return pl.read_parquet(io.BytesIO(output.parquet)).to_dicts()


def test_redactions_are_attributed_to_the_partner_that_sent_them(signer) -> None:
    acme_mail = event(outcome={"status": "error", "error_message": "to a@example.com, b@x.org"})
    nimbus_ip = event("nimbus/cirrus-7b", attributes={"peer": "10.1.2.3", "tier": "gold"})
    result = _run([(acme_mail, "acme"), (event(), "acme"), (nimbus_ip, "nimbus-ai")], signer)

    by_partner = {output.partner: output for output in result.partners}
    assert by_partner["acme"].redactions_by_rule == {"EMAIL": 2}
    assert by_partner["nimbus-ai"].redactions_by_rule == {"IPV4": 1}
    certificate = verify(by_partner["nimbus-ai"].certificate, signer.public_key_pem())
    assert certificate.predicate["counts"]["redactions_by_rule"] == {"IPV4": 1}
    assert result.redactions_by_rule == {"EMAIL": 2, "IPV4": 1}


def test_redaction_rewrites_only_the_text_that_held_pii(signer) -> None:
    noisy = event(attributes={"peer": "10.1.2.3", "tier": "gold", "shard": 7, "stream": True})
    quiet = event(outcome={"status": "error", "error_message": "upstream timeout"})
    result = _run([(noisy, "acme"), (quiet, "acme")], signer)

    first, second = _rows(result.partners[0])
    assert [first["event_id"], second["event_id"]] == [noisy["event_id"], quiet["event_id"]]
    assert first["attributes"] == [
        {"key": "peer", "value": "[REDACTED:IPV4]", "type": "string"},
        {"key": "shard", "value": "7", "type": "int"},
        {"key": "stream", "value": "true", "type": "bool"},
        {"key": "tier", "value": "gold", "type": "string"},
    ]
    assert second["error_message"] == "upstream timeout"


def test_quarantine_mode_reports_the_first_field_in_event_order(signer) -> None:
    both = event(
        outcome={"status": "error", "error_message": "call +44 20 7946 0958"},
        attributes={"contact": "ops@example.com"},
    )
    named = event(attributes={"tier": "gold", "contact": "for user Maria Garcia"})
    result = _run([(both, "acme"), (named, "acme"), (event(), "acme")], signer, "quarantine")

    found = [(r.line, r.reason.value, r.field, r.rule) for r in result.rejections]
    assert found == [
        (1, "pii_in_text", "outcome.error_message", "PHONE"),
        (2, "pii_in_text", "attributes.contact", "PERSON_NAME"),
    ]
    assert result.partners[0].sanitized == 1
    assert result.partners[0].redactions_by_rule == {}


def test_pii_in_a_numeric_attribute_quarantines_with_the_wildcard_path(signer) -> None:
    card = event(attributes={"order": 4111111111111111, "tier": "gold"})
    result = _run([(card, "acme"), (event(), "acme")], signer)

    (rejection,) = result.rejections
    assert (rejection.reason.value, rejection.field, rejection.rule) == (
        "pii_in_identifier",
        "attributes.*",
        "CREDIT_CARD",
    )
    assert result.partners[0].sanitized == 1


@pytest.mark.parametrize(
    ("model_id", "rule"),
    [("acme/203.0.113.91", "IPV4"), ("acme/415-555-0143", "PHONE")],
)
def test_pii_as_the_model_name_is_found_behind_the_owner_prefix(signer, model_id, rule) -> None:
    hidden = event(model_id, model={"id": model_id, "version": "1.0"})
    result = _run([(hidden, "acme"), (event(), "acme")], signer)

    (rejection,) = result.rejections
    assert (rejection.reason.value, rejection.field, rejection.rule) == (
        "pii_in_identifier",
        "model.id",
        rule,
    )
    assert model_id.encode() not in result.partners[0].parquet
