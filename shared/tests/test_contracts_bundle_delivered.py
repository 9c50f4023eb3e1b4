"""The BundleDelivered event's detail: what the bundle stage sends and cleanup trusts."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from ryuzen_contracts.bundle_delivered import (
    DETAIL_TYPE,
    EVENT_SOURCE,
    BundleDelivered,
    event_pattern,
)
from ryuzen_contracts.key_layout import bundle_key

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def test_the_detail_travels_under_its_wire_names() -> None:
    detail = BundleDelivered.for_bundle("acme", "2026-11", SHA, 482133)

    assert json.loads(detail.detail_json()) == {
        "partner": "acme",
        "month": "2026-11",
        "bundle_key": "acme/2026-11/ryuzen-telemetry-acme-2026-11.zip",
        "sha256": SHA,
        "bytes": 482133,
    }
    # ...and what was sent parses back to the same detail.
    assert BundleDelivered.model_validate_json(detail.detail_json()) == detail


def test_unknown_facts_from_a_newer_builder_are_ignored() -> None:
    wire = {**json.loads(BundleDelivered.for_bundle("acme", "2026-11", SHA, 1).detail_json())}
    wire["rows"] = 12

    assert BundleDelivered.model_validate(wire).size == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("partner", "Secret Co"),
        ("month", "2026-13"),
        ("sha256", "ABC"),
        ("bytes", -1),
        ("bundle_key", bundle_key("orbital", "2026-11")),  # another partner's bundle
    ],
)
def test_a_malformed_detail_is_refused(field: str, value: object) -> None:
    wire = json.loads(BundleDelivered.for_bundle("acme", "2026-11", SHA, 1).detail_json())
    wire[field] = value

    with pytest.raises(ValidationError):
        BundleDelivered.model_validate(wire)


def test_the_rule_pattern_names_the_source_and_detail_type() -> None:
    assert event_pattern() == {"source": [EVENT_SOURCE], "detail-type": [DETAIL_TYPE]}
    assert (EVENT_SOURCE, DETAIL_TYPE) == ("ryuzen.telemetry", "BundleDelivered")
