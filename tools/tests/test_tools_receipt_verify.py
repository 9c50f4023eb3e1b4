"""`ryuzen bundle verify-receipt`: a genuine deletion receipt (made by the cleanup stage's own
code) verifies; every kind of tampered, foreign or mismatched receipt fails with its reason."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from receipt_fixtures import deletion_facts
from ryuzen_cleanup.deletion_receipt import receipt
from ryuzen_contracts.attestation import (
    DELETION_PREDICATE,
    ZERO_PII_PREDICATE,
    sign,
    statement,
    subject,
)
from ryuzen_contracts.key_layout import analytics_prefix, bundle_key, sanitized_prefix
from ryuzen_contracts.signing import LocalSigner, generate_local_key
from ryuzen_tools.cli import app
from ryuzen_tools.receipt_verify import VerificationError, verify_receipt, verify_receipt_file
from typer.testing import CliRunner

PARTNER, MONTH = "acme", "2026-11"
BUNDLE = b"PK pretend bundle zip"
BUNDLE_SHA256 = hashlib.sha256(BUNDLE).hexdigest()
BUNDLE_KEY = bundle_key(PARTNER, MONTH)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalSigner, Path]:
    directory = tmp_path_factory.mktemp("receipt-key")
    signer = generate_local_key(directory / "key.pem", directory / "key.pub.pem")
    return signer, directory / "key.pub.pem"


@pytest.fixture(scope="module")
def signer(keys: tuple[LocalSigner, Path]) -> LocalSigner:
    return keys[0]


def genuine(signer: LocalSigner) -> bytes:
    """A receipt as the cleanup stage writes it."""
    facts = deletion_facts(
        PARTNER,
        MONTH,
        BUNDLE_SHA256,
        deleted=(12, 24),
        deleted_keys_sha256="a" * 64,
        deleted_at=datetime(2026, 12, 1, 3, 15, 7, tzinfo=UTC),
    )
    return receipt(facts, signer).to_json_bytes()


def genuine_predicate(signer: LocalSigner) -> dict[str, Any]:
    envelope = json.loads(genuine(signer))
    return dict(json.loads(base64.b64decode(envelope["payload"]))["predicate"])


def resigned(
    signer: LocalSigner,
    change: Callable[[dict[str, Any]], None] = lambda predicate: None,
    *,
    subject_name: str = BUNDLE_KEY,
    subject_sha256: str = BUNDLE_SHA256,
    predicate_type: str = DELETION_PREDICATE,
) -> bytes:
    """The genuine predicate, changed, signed again with the genuine key: a receipt whose
    signature verifies, so only the checks of what it states can refuse it."""
    predicate = copy.deepcopy(genuine_predicate(signer))
    change(predicate)
    stmt = statement([subject(subject_name, sha256=subject_sha256)], predicate_type, predicate)
    return sign(stmt, signer).to_json_bytes()


def payload_changed(signer: LocalSigner) -> bytes:
    # The envelope keeps its signature; its payload now states 1 object instead of 36.
    envelope = json.loads(genuine(signer))
    document = json.loads(base64.b64decode(envelope["payload"]))
    document["predicate"]["objects_deleted_total"] = 1
    envelope["payload"] = base64.b64encode(json.dumps(document).encode()).decode()
    return json.dumps(envelope).encode()


def other_key(signer: LocalSigner, tmp_path: Path) -> bytes:
    other = generate_local_key(tmp_path / "other.pem", tmp_path / "other.pub.pem")
    return genuine(other)


def test_a_genuine_receipt_verifies_for_its_partner_month_and_bundle(
    signer: LocalSigner,
) -> None:
    envelope = genuine(signer)  # ECDSA signs randomized: each receipt's bytes differ
    verified = verify_receipt(
        envelope,
        signer.public_key_pem(),
        partner=PARTNER,
        month=MONTH,
        bundle_sha256=BUNDLE_SHA256,
    )
    facts = verified.to_dict()
    assert (facts["partner"], facts["month"]) == (PARTNER, MONTH)
    assert facts["bundle"] == {"key": BUNDLE_KEY, "sha256": BUNDLE_SHA256}
    assert facts["bundle_checked"] == "sha256"
    assert facts["objects_deleted_total"] == 36
    assert facts["already_empty"] is False
    assert facts["receipt_sha256"] == hashlib.sha256(envelope).hexdigest()
    assert facts["key_id"] == signer.key_id
    assert sorted(item["prefix"] for item in facts["prefixes_proven_empty"]) == [
        analytics_prefix(PARTNER, MONTH),
        sanitized_prefix(PARTNER, MONTH),
    ]


def _other_partners_prefix(predicate: dict[str, Any]) -> None:
    predicate["prefixes_proven_empty"][1]["prefix"] = sanitized_prefix("nimbus-ai", MONTH)


def _one_prefix_only(predicate: dict[str, Any]) -> None:
    del predicate["prefixes_proven_empty"][0]


def _bundle_of_another_month(predicate: dict[str, Any]) -> None:
    predicate["bundle"]["key"] = bundle_key(PARTNER, "2026-10")


@pytest.mark.parametrize(
    ("make", "expected", "reason"),
    [
        pytest.param(
            payload_changed, {}, "signature does not verify with this public key", id="payload"
        ),
        pytest.param(
            lambda signer: resigned(signer, predicate_type=ZERO_PII_PREDICATE),
            {},
            f"predicateType is '{ZERO_PII_PREDICATE}', expected '{DELETION_PREDICATE}'",
            id="a-certificate-not-a-receipt",
        ),
        pytest.param(
            genuine,
            {"partner": "nimbus-ai"},
            "the receipt is for partner 'acme', expected 'nimbus-ai'",
            id="another-partners-receipt",
        ),
        pytest.param(
            genuine,
            {"month": "2026-10"},
            "the receipt is for month 2026-11, expected 2026-10",
            id="another-months-receipt",
        ),
        pytest.param(
            genuine,
            {"bundle_sha256": "0" * 64},
            "the bundle: sha256 0000000000000000… does not match the attested",
            id="another-bundle",
        ),
        pytest.param(
            lambda signer: resigned(signer, lambda p: p.update(partner="ACME!")),
            {},
            "the receipt: invalid partner id",
            id="invalid-partner",
        ),
        pytest.param(
            lambda signer: resigned(signer, _bundle_of_another_month),
            {},
            f"the receipt's bundle is not {BUNDLE_KEY}, the bundle of its partner-month",
            id="bundle-of-another-month",
        ),
        pytest.param(
            lambda signer: resigned(signer, subject_name=bundle_key("nimbus-ai", MONTH)),
            {},
            f"the receipt's subject is not the one bundle {BUNDLE_KEY}",
            id="subject-is-another-bundle",
        ),
        pytest.param(
            lambda signer: resigned(signer, subject_sha256="1" * 64),
            {},
            "the receipt's bundle: sha256",
            id="subject-digest-is-not-the-bundles",
        ),
        pytest.param(
            lambda signer: resigned(signer, _other_partners_prefix),
            {},
            "not acme 2026-11's working prefixes",
            id="another-partners-prefix",
        ),
        pytest.param(
            lambda signer: resigned(signer, _one_prefix_only),
            {},
            "not acme 2026-11's working prefixes",
            id="a-prefix-left-out",
        ),
        pytest.param(
            lambda signer: resigned(signer, lambda p: p.update(objects_deleted_total=35)),
            {},
            "objects_deleted_total 35 is not the sum of objects_deleted",
            id="counts-do-not-add-up",
        ),
        pytest.param(
            lambda signer: resigned(
                signer, lambda p: p.update(objects_deleted={"ryuzen-t-sanitized": -1})
            ),
            {},
            "objects_deleted counts are malformed",
            id="negative-count",
        ),
    ],
)
def test_a_tampered_or_mismatched_receipt_fails_with_its_reason(
    signer: LocalSigner,
    make: Callable[[LocalSigner], bytes],
    expected: dict[str, str],
    reason: str,
) -> None:
    with pytest.raises(VerificationError) as raised:
        verify_receipt(make(signer), signer.public_key_pem(), **expected)
    assert reason in str(raised.value)


def test_a_receipt_signed_by_another_key_fails(signer: LocalSigner, tmp_path: Path) -> None:
    with pytest.raises(VerificationError, match="no signature by key"):
        verify_receipt(other_key(signer, tmp_path), signer.public_key_pem())


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_the_cli_verifies_a_receipt_against_the_bundle_zip(
    keys: tuple[LocalSigner, Path], tmp_path: Path
) -> None:
    signer, public_key = keys
    receipt_file = write(tmp_path / "deletion-receipt.dsse.json", genuine(signer))
    zip_file = write(tmp_path / "ryuzen-telemetry-acme-2026-11.zip", BUNDLE)
    common = ["bundle", "verify-receipt", str(receipt_file), "--public-key", str(public_key)]

    shown = CliRunner().invoke(app, [*common, "--partner", PARTNER, "--bundle", str(zip_file)])
    assert shown.exit_code == 0, shown.output
    assert "deletion receipt verified" in shown.stdout

    as_json = CliRunner().invoke(app, [*common, "--month", MONTH, "--json"])
    assert as_json.exit_code == 0, as_json.output
    facts = json.loads(as_json.stdout)
    assert facts["ok"] is True and facts["objects_deleted_total"] == 36
    assert facts == verify_receipt_file(receipt_file, public_key, month=MONTH).to_dict()


@pytest.mark.parametrize(
    ("extra", "code", "reason"),
    [
        pytest.param(["--partner", "orbital"], 1, "is for partner 'acme'", id="partner"),
        pytest.param(["--month", "2026-13"], 2, "invalid month '2026-13'", id="bad-month"),
        pytest.param(["--partner", "Nope!"], 2, "invalid partner id", id="bad-partner"),
        pytest.param(["--bundle", "OTHER"], 1, "OTHER: sha256", id="another-zip"),
        pytest.param(["--bundle", "MISSING"], 1, "MISSING: cannot read it", id="no-zip"),
    ],
)
def test_the_cli_exits_non_zero_with_the_precise_reason(
    keys: tuple[LocalSigner, Path], tmp_path: Path, extra: list[str], code: int, reason: str
) -> None:
    signer, public_key = keys
    receipt_file = write(tmp_path / "deletion-receipt.dsse.json", genuine(signer))
    write(tmp_path / "OTHER", b"another bundle")
    extra = [str(tmp_path / item) if item in ("OTHER", "MISSING") else item for item in extra]
    result = CliRunner().invoke(
        app,
        ["bundle", "verify-receipt", str(receipt_file), "--public-key", str(public_key), *extra],
    )
    assert result.exit_code == code
    assert "ryuzen bundle verify-receipt: FAILED: " in result.stderr
    assert reason in result.stderr


def test_the_cli_reports_a_tampered_receipt_as_json(
    keys: tuple[LocalSigner, Path], tmp_path: Path
) -> None:
    signer, public_key = keys
    tampered = write(tmp_path / "deletion-receipt.dsse.json", payload_changed(signer))
    result = CliRunner().invoke(
        app,
        ["bundle", "verify-receipt", str(tampered), "--public-key", str(public_key), "--json"],
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "ok": False,
        "error": "signature does not verify with this public key",
    }
