"""verify_attestation: subject matching and every failure reason, on self-signed statements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ryuzen_contracts.attestation import (
    BUNDLE_MANIFEST_PREDICATE,
    ZERO_PII_PREDICATE,
    sign,
    statement,
    subject,
)
from ryuzen_contracts.signing import LocalSigner, generate_local_key
from ryuzen_tools.cli import app
from ryuzen_tools.verify_attestation import (
    VerificationError,
    verify_attestation,
    verify_files,
    zero_pii_summary,
)
from typer.testing import CliRunner

PARQUET = b"PAR1 pretend parquet PAR1"
RAW = b"pretend gzip"
ACME = "sanitized/partner=acme/month=2026-11/01KB0000000000000000000000.parquet"
NIMBUS = "sanitized/partner=nimbus-ai/month=2026-11/01KB0000000000000000000000.parquet"
RAW_KEY = "raw/2026/11/28/05/01KB0000000000000000000000.ndjson.gz"


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> LocalSigner:
    directory = tmp_path_factory.mktemp("key")
    return generate_local_key(directory / "key.pem", directory / "key.pub.pem")


def envelope(
    signer: LocalSigner, names: list[str], predicate_type: str = ZERO_PII_PREDICATE
) -> bytes:
    subjects = [subject(name, RAW if name == RAW_KEY else PARQUET) for name in names]
    predicate = {"partner": "acme", "month": "2026-11", "batch_id": "01KB0000000000000000000000"}
    return sign(statement(subjects, predicate_type, predicate), signer).to_json_bytes()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_file_matches_its_subject_by_basename(signer: LocalSigner, tmp_path: Path) -> None:
    local = write(tmp_path / "01KB0000000000000000000000.parquet", PARQUET)
    verified = verify_attestation(
        envelope(signer, [ACME, RAW_KEY]),
        signer.public_key_pem(),
        [local],
        predicate_type=ZERO_PII_PREDICATE,
    )
    assert [(c.name, c.path) for c in verified.checked] == [(ACME, str(local))]
    assert verified.key_id == signer.key_id
    assert [s["checked_file"] for s in verified.subjects()] == [str(local), None]


def test_a_file_matches_by_its_full_subject_name_when_basenames_collide(
    signer: LocalSigner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / NIMBUS, PARQUET)
    verified = verify_attestation(
        envelope(signer, [ACME, NIMBUS]),
        signer.public_key_pem(),
        [NIMBUS],
        predicate_type=ZERO_PII_PREDICATE,
    )
    assert [c.name for c in verified.checked] == [NIMBUS]


@pytest.mark.parametrize(
    ("names", "file_name", "reason"),
    [
        pytest.param(
            [ACME, NIMBUS],
            "01KB0000000000000000000000.parquet",
            "ambiguous, 2 subjects have the basename",
            id="ambiguous-basename",
        ),
        pytest.param([ACME], "other.parquet", "not a subject of this statement", id="no-match"),
    ],
)
def test_unmatched_files_are_refused_with_the_reason(
    signer: LocalSigner, tmp_path: Path, names: list[str], file_name: str, reason: str
) -> None:
    local = write(tmp_path / file_name, PARQUET)
    with pytest.raises(VerificationError, match=reason):
        verify_attestation(
            envelope(signer, names),
            signer.public_key_pem(),
            [local],
            predicate_type=ZERO_PII_PREDICATE,
        )


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        pytest.param("certificate", "cannot read the attestation", id="missing-certificate"),
        pytest.param("key", "cannot read the public key", id="missing-key"),
        pytest.param("subject", "cannot read it", id="missing-subject"),
        pytest.param("not-pem", "public key is not a PEM public key", id="not-a-key"),
        pytest.param("predicate", "predicateType is", id="a-bundle-manifest"),
        pytest.param("not-json", "not a DSSE envelope", id="not-an-envelope"),
    ],
)
def test_every_failure_names_its_check(
    signer: LocalSigner, tmp_path: Path, spoil: str, reason: str
) -> None:
    predicate = BUNDLE_MANIFEST_PREDICATE if spoil == "predicate" else ZERO_PII_PREDICATE
    certificate = write(tmp_path / "c.json", envelope(signer, [ACME], predicate))
    key = write(tmp_path / "key.pub.pem", signer.public_key_pem())
    parquet = write(tmp_path / "01KB0000000000000000000000.parquet", PARQUET)
    if spoil == "certificate":
        certificate.unlink()
    elif spoil == "key":
        key.unlink()
    elif spoil == "subject":
        parquet.unlink()
    elif spoil == "not-pem":
        key.write_bytes(b"not a key")
    elif spoil == "not-json":
        certificate.write_bytes(b"{")
    with pytest.raises(VerificationError, match=reason):
        verify_files(certificate, key, [parquet], predicate_type=ZERO_PII_PREDICATE)


def test_the_cli_names_the_ambiguity(signer: LocalSigner, tmp_path: Path) -> None:
    certificate = write(tmp_path / "c.json", envelope(signer, [ACME, NIMBUS]))
    key = write(tmp_path / "key.pub.pem", signer.public_key_pem())
    parquet = write(tmp_path / "01KB0000000000000000000000.parquet", PARQUET)
    shown = CliRunner().invoke(
        app,
        [
            "verify",
            "certificate",
            str(certificate),
            "--public-key",
            str(key),
            "--subject",
            str(parquet),
            "--json",
        ],
    )
    assert shown.exit_code == 1
    assert ACME in shown.stderr and NIMBUS in shown.stderr
    assert json.loads(shown.stdout)["ok"] is False


def test_without_subjects_only_the_signature_is_checked(
    signer: LocalSigner, tmp_path: Path
) -> None:
    certificate = write(tmp_path / "c.json", envelope(signer, [ACME, RAW_KEY]))
    key = write(tmp_path / "key.pub.pem", signer.public_key_pem())
    shown = CliRunner().invoke(
        app, ["verify", "certificate", str(certificate), "--public-key", str(key)]
    )
    assert shown.exit_code == 0, shown.stderr
    assert "not checked" in shown.stdout and "matches" not in shown.stdout


def test_the_summary_tolerates_a_sparse_predicate(signer: LocalSigner) -> None:
    verified = verify_attestation(
        envelope(signer, [ACME]), signer.public_key_pem(), predicate_type=ZERO_PII_PREDICATE
    )
    summary = zero_pii_summary(verified.statement)
    assert summary["partner"] == "acme"
    assert summary["counts"]["received"] is None
    assert summary["scrubber"]["ruleset_digest"] is None
