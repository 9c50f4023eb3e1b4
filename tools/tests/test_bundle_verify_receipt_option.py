"""`ryuzen bundle verify ZIP --receipt FILE`: the bundle as before, then its deletion receipt
(made by the cleanup stage's own code) with the same key, for the partner and month of the
verified manifest and the ZIP's own SHA-256; any mismatch fails with its reason."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from bundle_zip_fixtures import BundleParts, signing_keys, write_zip
from click.testing import Result
from receipt_fixtures import deletion_facts
from ryuzen_cleanup.deletion_receipt import receipt
from ryuzen_contracts.signing import LocalSigner
from ryuzen_tools.cli import app
from typer.testing import CliRunner


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalSigner, Path, LocalSigner]:
    """The stack's signer and its public key file, and an unrelated signer."""
    return signing_keys(tmp_path_factory.mktemp("keys"))


def make_bundle(directory: Path, signer: LocalSigner, partner: str, month: str) -> Path:
    parts = BundleParts.typical(signer, partner, month)
    return write_zip(directory / f"ryuzen-telemetry-{partner}-{month}.zip", parts.signed(signer))


def make_receipt(
    path: Path, signer: LocalSigner, partner: str, month: str, bundle_sha256: str
) -> Path:
    """A receipt as the cleanup stage writes it, for ``partner``/``month`` after the bundle
    whose SHA-256 is ``bundle_sha256``."""
    facts = deletion_facts(partner, month, bundle_sha256)
    path.write_bytes(receipt(facts, signer).to_json_bytes())
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify(*args: str | Path) -> Result:
    return CliRunner().invoke(app, ["bundle", "verify", *map(str, args)])


def test_a_bundle_and_its_receipt_verify_together(
    tmp_path: Path, keys: tuple[LocalSigner, Path, LocalSigner]
) -> None:
    signer, public_key, _ = keys
    zip_path = make_bundle(tmp_path, signer, "acme", "2026-10")
    receipt_path = make_receipt(tmp_path / "r.json", signer, "acme", "2026-10", sha256_of(zip_path))

    result = verify(zip_path, "--public-key", public_key, "--receipt", receipt_path, "--json")

    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert (facts["partner"], facts["month"]) == ("acme", "2026-10")
    checked = facts["receipt"]
    assert (checked["partner"], checked["month"]) == ("acme", "2026-10")
    assert checked["bundle_checked"] == str(zip_path)
    assert checked["bundle"]["sha256"] == sha256_of(zip_path)
    assert checked["receipt_sha256"] == sha256_of(receipt_path)
    # the human report shows both
    shown = verify(zip_path, "--public-key", public_key, "--receipt", receipt_path)
    assert shown.exit_code == 0
    assert "objects deleted" in shown.stdout.lower()


def test_without_receipt_the_answer_is_as_before(
    tmp_path: Path, keys: tuple[LocalSigner, Path, LocalSigner]
) -> None:
    signer, public_key, _ = keys
    zip_path = make_bundle(tmp_path, signer, "acme", "2026-10")
    result = verify(zip_path, "--public-key", public_key, "--json")
    assert result.exit_code == 0
    assert "receipt" not in json.loads(result.stdout)


Maker = Callable[[Path, Path, tuple[LocalSigner, Path, LocalSigner]], Path]


def other_partner(tmp: Path, zip_path: Path, keys: tuple[LocalSigner, Path, LocalSigner]) -> Path:
    # a genuine receipt of nimbus-ai's 2026-10, naming this very ZIP's digest
    return make_receipt(tmp / "r.json", keys[0], "nimbus-ai", "2026-10", sha256_of(zip_path))


def other_month(tmp: Path, zip_path: Path, keys: tuple[LocalSigner, Path, LocalSigner]) -> Path:
    return make_receipt(tmp / "r.json", keys[0], "acme", "2026-09", sha256_of(zip_path))


def other_bundle(tmp: Path, zip_path: Path, keys: tuple[LocalSigner, Path, LocalSigner]) -> Path:
    # acme's 2026-10 receipt, but after a different bundle (a rebuild's, say)
    return make_receipt(tmp / "r.json", keys[0], "acme", "2026-10", "c" * 64)


def other_key(tmp: Path, zip_path: Path, keys: tuple[LocalSigner, Path, LocalSigner]) -> Path:
    return make_receipt(tmp / "r.json", keys[2], "acme", "2026-10", sha256_of(zip_path))


def tampered(tmp: Path, zip_path: Path, keys: tuple[LocalSigner, Path, LocalSigner]) -> Path:
    path = make_receipt(tmp / "r.json", keys[0], "acme", "2026-10", sha256_of(zip_path))
    envelope = json.loads(path.read_bytes())
    envelope["signatures"][0]["sig"] = envelope["signatures"][0]["sig"][::-1]
    path.write_text(json.dumps(envelope))
    return path


def missing(tmp: Path, zip_path: Path, keys: tuple[LocalSigner, Path, LocalSigner]) -> Path:
    return tmp / "absent.json"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(other_partner, "is for partner 'nimbus-ai', expected 'acme'", id="partner"),
        pytest.param(other_month, "is for month 2026-09, expected 2026-10", id="month"),
        pytest.param(
            other_bundle,
            "ryuzen-telemetry-acme-2026-10.zip: sha256",
            id="another-bundle",
        ),
        pytest.param(other_key, "no signature by key", id="another-key"),
        pytest.param(
            tampered, "signature does not verify with this public key", id="tampered-signature"
        ),
        pytest.param(missing, "cannot read the receipt", id="missing-file"),
    ],
)
def test_a_receipt_that_does_not_follow_this_bundle_fails_with_its_reason(
    tmp_path: Path, keys: tuple[LocalSigner, Path, LocalSigner], make: Maker, reason: str
) -> None:
    signer, public_key, _ = keys
    zip_path = make_bundle(tmp_path, signer, "acme", "2026-10")
    receipt_path = make(tmp_path, zip_path, keys)

    result = verify(zip_path, "--public-key", public_key, "--receipt", receipt_path, "--json")

    assert result.exit_code == 1
    stderr = " ".join(result.stderr.split())
    assert f"ryuzen bundle verify: FAILED: receipt {receipt_path}: " in stderr
    assert reason in stderr
    line = json.loads(result.stdout)
    assert line["ok"] is False and reason in line["error"]


def test_a_bad_bundle_fails_before_the_receipt_is_read(
    tmp_path: Path, keys: tuple[LocalSigner, Path, LocalSigner]
) -> None:
    _, public_key, other = keys
    # a bundle signed by another key: its failure is the bundle's, whatever the receipt
    zip_path = make_bundle(tmp_path, other, "acme", "2026-10")
    result = verify(zip_path, "--public-key", public_key, "--receipt", tmp_path / "absent.json")
    assert result.exit_code == 1
    assert "no signature by key" in result.stderr
    assert "receipt" not in result.stderr
