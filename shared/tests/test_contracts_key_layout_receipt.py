"""The deletion receipt's key: beside the bundle, in its partner-month, never elsewhere."""

from __future__ import annotations

from typing import Any

import pytest
from ryuzen_contracts.key_layout import (
    InvalidKeyPart,
    bundle_key,
    bundle_prefix,
    deletion_receipt_key,
)


def test_deletion_receipt_key_format() -> None:
    assert deletion_receipt_key("acme", "2026-11") == "acme/2026-11/deletion-receipt.dsse.json"


def test_the_receipt_sits_beside_the_bundle() -> None:
    receipt = deletion_receipt_key("nimbus-ai", "2026-12")

    assert receipt.startswith(bundle_prefix("nimbus-ai", "2026-12"))
    assert receipt.rsplit("/", 1)[0] == bundle_key("nimbus-ai", "2026-12").rsplit("/", 1)[0]
    assert receipt != bundle_key("nimbus-ai", "2026-12")


@pytest.mark.parametrize(
    ("partner", "month"),
    [
        pytest.param("../acme", "2026-11", id="traversal-partner"),
        pytest.param("Acme", "2026-11", id="upper-case-partner"),
        pytest.param("acme", "2026-13", id="month-13"),
        pytest.param("acme", "2026-11/..", id="traversal-month"),
        pytest.param("acme", "2026-11\n", id="trailing-newline"),
        pytest.param(None, "2026-11", id="none-partner"),
    ],
)
def test_hostile_parts_never_reach_a_receipt_key(partner: Any, month: Any) -> None:
    with pytest.raises(InvalidKeyPart):
        deletion_receipt_key(partner, month)
