"""`ryuzen bundle verify`: a genuine bundle passes; every kind of tampering fails precisely."""

from __future__ import annotations

import base64
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bundle_zip_fixtures import BATCH_A, BundleParts, certificate, parquet, signing_keys, write_zip
from ryuzen_contracts.attestation import ZERO_PII_PREDICATE, sign, statement, subject
from ryuzen_contracts.signing import LocalSigner
from ryuzen_tools.bundle_verify import VerificationError, verify_bundle, verify_bundle_file
from ryuzen_tools.cli import app
from typer.testing import CliRunner


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalSigner, Path, LocalSigner]:
    """The stack's signer and its public key file, and an unrelated signer."""
    return signing_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def signer(keys: tuple[LocalSigner, Path, LocalSigner]) -> LocalSigner:
    return keys[0]


@pytest.fixture
def public_key(keys: tuple[LocalSigner, Path, LocalSigner]) -> Path:
    return keys[1]


def test_a_genuine_bundle_verifies(tmp_path: Path, signer: LocalSigner, public_key: Path) -> None:
    parts = BundleParts.typical(signer)
    path = write_zip(tmp_path / "b.zip", parts.signed(signer))
    seen: list[int] = []
    result = verify_bundle_file(
        path, public_key, partner="acme", month="2026-10", on_bytes=seen.append
    )
    assert (result.partner, result.month) == ("acme", "2026-10")
    assert result.files == len(parts.entries) == 8
    assert result.certificates == 2
    assert result.bytes == sum(len(data) for data in parts.entries.values()) == sum(seen)
    assert result.key_id == signer.key_id
    assert result.counts["events"] == 20
    assert result.empty is False


def test_an_empty_month_verifies(tmp_path: Path, signer: LocalSigner, public_key: Path) -> None:
    parts = BundleParts("acme", "2026-10", {"README.txt": b"no events\n", "schema.json": b"{}"})
    path = write_zip(tmp_path / "b.zip", parts.signed(signer))
    assert verify_bundle_file(path, public_key).certificates == 0


Tamper = Callable[[BundleParts, LocalSigner, LocalSigner], list[tuple[str, bytes]]]


def _changed_byte(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    entries = parts.signed(signer)
    data = bytearray(entries["data/events/day=01/part-00000.parquet"])
    data[100] ^= 0x01
    entries["data/events/day=01/part-00000.parquet"] = bytes(data)
    return entries


def _extra_file(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    return {**parts.signed(signer), "data/events/day=03/part-00000.parquet": b"PAR1 smuggled"}


def _missing_file(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    entries = parts.signed(signer)
    del entries["data/events/day=02/part-00000.parquet"]
    return entries


def _missing_certificate(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    entries = parts.signed(signer)
    del entries[f"certificates/{BATCH_A}.dsse.json"]
    return entries


def _swapped_certificate(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    # another partner's genuine certificate in place of ours (the manifest's digest differs)
    entries = parts.signed(signer)
    entries[f"certificates/{BATCH_A}.dsse.json"] = certificate(
        signer, "nimbus-ai", "2026-10", BATCH_A
    )
    return entries


def _swapped_and_resigned(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    # the same, by someone holding the signing key who also re-signed the manifest: only
    # the certificate's own partner gives it away
    parts.entries[f"certificates/{BATCH_A}.dsse.json"] = certificate(
        signer, "nimbus-ai", "2026-10", BATCH_A
    )
    return parts.signed(signer)


def _other_month_certificate(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    parts.entries[f"certificates/{BATCH_A}.dsse.json"] = certificate(
        signer, "acme", "2026-09", BATCH_A
    )
    return parts.signed(signer)


def _certificate_of_another_batch(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    parts.entries[f"certificates/{BATCH_A}.dsse.json"] = certificate(
        signer, "acme", "2026-10", "01JDQ7Z8Y9X0W1V2T3S4R5Q6P9"
    )
    return parts.signed(signer)


def _certificate_by_another_key(parts: BundleParts, signer: LocalSigner, other: LocalSigner) -> Any:
    parts.entries[f"certificates/{BATCH_A}.dsse.json"] = certificate(
        other, "acme", "2026-10", BATCH_A
    )
    return parts.signed(signer)


def _manifest_by_another_key(parts: BundleParts, signer: LocalSigner, other: LocalSigner) -> Any:
    return parts.signed(other)


def _forged_manifest_signature(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    entries = parts.signed(signer)
    envelope = json.loads(entries["manifest.dsse.json"])
    signature = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    signature[-1] ^= 0x01
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(signature)).decode()
    entries["manifest.dsse.json"] = json.dumps(envelope).encode()
    return entries


def _edited_payload(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    # the payload rewritten (a file's digest swapped for the tampered file's) after signing
    entries = _changed_byte(parts, signer, _)
    envelope = json.loads(entries["manifest.dsse.json"])
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["predicate"]["counts"]["events"] = 1_000_000
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    entries["manifest.dsse.json"] = json.dumps(envelope).encode()
    return entries


def _manifest_copy_differs(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    entries = parts.signed(signer)
    entries["manifest.json"] = entries["manifest.json"].replace(b'"events":20', b'"events":21')
    return entries


def _missing_manifest(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    entries = parts.signed(signer)
    del entries["manifest.dsse.json"]
    return entries


def _manifest_as_certificate(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    stmt = statement(
        [subject(name, data) for name, data in parts.entries.items()],
        ZERO_PII_PREDICATE,
        parts.predicate(),
    )
    return {
        "manifest.json": stmt.to_json_bytes(),
        "manifest.dsse.json": sign(stmt, signer).to_json_bytes(),
        **parts.entries,
    }


def _files_differ_from_subjects(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    predicate = parts.predicate()
    predicate["files"] = predicate["files"][1:]
    payload, envelope = parts.manifest(signer, predicate)
    return {"manifest.json": payload, "manifest.dsse.json": envelope, **parts.entries}


def _size_differs(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    predicate = parts.predicate()
    predicate["files"][0]["bytes"] += 1
    payload, envelope = parts.manifest(signer, predicate)
    return {"manifest.json": payload, "manifest.dsse.json": envelope, **parts.entries}


def _parquet_with_other_rows(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    # another valid Parquet file in place of a day's part, the manifest re-signed over its
    # digest and size but still stating the part's rows: the footer gives it away
    parts.entries["data/events/day=01/part-00000.parquet"] = parquet(13, "smuggled")
    return parts.signed(signer)


def _parquet_without_rows(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    del parts.rows["data/events/day=02/part-00000.parquet"]
    return parts.signed(signer)


def _parquet_that_is_not(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    parts.entries["data/daily_summary.parquet"] = b"PAR1 not really a Parquet file"
    return parts.signed(signer)


def _parquet_footer_garbled(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    data = bytearray(parts.entries["data/daily_summary.parquet"])
    length = int.from_bytes(data[-8:-4], "little")
    data[-8 - length] = 0x1D  # FileMetaData's first field header: a type Thrift lacks
    parts.entries["data/daily_summary.parquet"] = bytes(data)
    return parts.signed(signer)


def _unsafe_name(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    return {**parts.signed(signer), "../evil.txt": b"x"}


def _duplicate_entry(parts: BundleParts, signer: LocalSigner, _: LocalSigner) -> Any:
    entries = list(parts.signed(signer).items())
    return [*entries, ("README.txt", b"a second README\n")]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        pytest.param(
            _changed_byte,
            r"data/events/day=01/part-00000\.parquet: sha256 [0-9a-f]{16}… does not match",
            id="changed-byte",
        ),
        pytest.param(
            _extra_file,
            r"data/events/day=03/part-00000\.parquet: in the ZIP but not in the manifest",
            id="extra-file",
        ),
        pytest.param(
            _missing_file,
            r"data/events/day=02/part-00000\.parquet: in the manifest but missing from the ZIP",
            id="missing-file",
        ),
        pytest.param(
            _missing_certificate,
            rf"certificates/{BATCH_A}\.dsse\.json: in the manifest but missing",
            id="missing-certificate",
        ),
        pytest.param(
            _swapped_certificate,
            # another partner's envelope differs in size, or else in digest
            rf"certificates/{BATCH_A}\.dsse\.json: "
            r"(sha256 .* does not match|\d+ bytes in the ZIP, the manifest says \d+)",
            id="swapped-certificate",
        ),
        pytest.param(
            _swapped_and_resigned,
            rf"certificates/{BATCH_A}\.dsse\.json: certifies partner 'nimbus-ai', "
            r"the bundle is 'acme''s",
            id="swapped-certificate-resigned-manifest",
        ),
        pytest.param(
            _other_month_certificate,
            r"certifies month '2026-09', the bundle is for 2026-10",
            id="certificate-of-another-month",
        ),
        pytest.param(
            _certificate_of_another_batch,
            r"certifies batch .*, not the one it is named for",
            id="certificate-of-another-batch",
        ),
        pytest.param(
            _certificate_by_another_key,
            rf"certificates/{BATCH_A}\.dsse\.json: no signature by key",
            id="certificate-by-another-key",
        ),
        pytest.param(_manifest_by_another_key, r"^no signature by key", id="manifest-other-key"),
        pytest.param(
            _forged_manifest_signature,
            r"^signature does not verify with this public key",
            id="bad-manifest-signature",
        ),
        pytest.param(
            _edited_payload,
            r"^signature does not verify with this public key",
            id="edited-manifest-payload",
        ),
        pytest.param(
            _manifest_copy_differs,
            r"manifest\.json: differs from the signed payload",
            id="manifest-copy-differs",
        ),
        pytest.param(
            _missing_manifest, r"manifest\.dsse\.json: missing from the ZIP", id="no-manifest"
        ),
        pytest.param(
            _manifest_as_certificate, r"predicateType is .*zero-pii", id="wrong-predicate-type"
        ),
        pytest.param(
            _files_differ_from_subjects,
            r"the manifest's files and subjects differ",
            id="files-list-differs",
        ),
        pytest.param(_size_differs, r"bytes in the ZIP, the manifest says", id="size-differs"),
        pytest.param(
            _parquet_with_other_rows,
            r"^data/events/day=01/part-00000\.parquet: 13 rows in its Parquet footer, "
            r"the manifest says 12$",
            id="parquet-with-other-rows",
        ),
        pytest.param(
            _parquet_without_rows,
            r"^data/events/day=02/part-00000\.parquet: the manifest gives no row count",
            id="parquet-without-rows",
        ),
        pytest.param(
            _parquet_that_is_not,
            r"^data/daily_summary\.parquet: not a Parquet file \(no footer\)$",
            id="parquet-that-is-not",
        ),
        pytest.param(
            _parquet_footer_garbled,
            r"^data/daily_summary\.parquet: unreadable Parquet footer$",
            id="parquet-footer-garbled",
        ),
        pytest.param(_unsafe_name, r"'\.\./evil\.txt': unsafe entry name", id="unsafe-name"),
        pytest.param(
            _duplicate_entry, r"README\.txt: the ZIP holds this entry more than once", id="dup"
        ),
    ],
)
def test_tampering_fails_with_a_precise_reason(
    tmp_path: Path,
    keys: tuple[LocalSigner, Path, LocalSigner],
    tamper: Tamper,
    reason: str,
) -> None:
    signer, public_key, other = keys
    path = write_zip(tmp_path / "b.zip", tamper(BundleParts.typical(signer), signer, other))
    with pytest.raises(VerificationError, match=reason):
        verify_bundle_file(path, public_key)


def test_a_flipped_byte_in_the_zip_file_is_caught(
    tmp_path: Path, signer: LocalSigner, public_key: Path
) -> None:
    # Given a genuine bundle whose stored (compressed) bytes are damaged in transit
    path = write_zip(tmp_path / "b.zip", BundleParts.typical(signer).signed(signer))
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("data/events/day=01/part-00000.parquet")
    raw = bytearray(path.read_bytes())
    raw[info.header_offset + 30 + len(info.filename) + 5] ^= 0xFF  # inside its data
    path.write_bytes(bytes(raw))
    # Then verification names that entry
    with pytest.raises(VerificationError, match=r"data/events/day=01/part-00000\.parquet: "):
        verify_bundle_file(path, public_key)


def test_the_expected_partner_and_month_are_checked(
    tmp_path: Path, signer: LocalSigner, public_key: Path
) -> None:
    path = write_zip(tmp_path / "b.zip", BundleParts.typical(signer).signed(signer))
    with pytest.raises(VerificationError, match="for month 2026-10, expected 2026-11"):
        verify_bundle_file(path, public_key, month="2026-11")
    with pytest.raises(VerificationError, match="partner 'acme', expected 'orbital'"):
        verify_bundle_file(path, public_key, partner="orbital")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(None, "no such file", id="absent"),
        pytest.param(b"not a zip at all", "not a readable ZIP", id="not-a-zip"),
    ],
)
def test_a_file_that_is_no_zip_fails(
    tmp_path: Path, public_key: Path, content: bytes | None, reason: str
) -> None:
    path = tmp_path / "b.zip"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(VerificationError, match=reason):
        verify_bundle(path, public_key.read_bytes())


# --- the command ----------------------------------------------------------------------------


def test_the_command_prints_the_facts_as_json(
    tmp_path: Path, signer: LocalSigner, public_key: Path
) -> None:
    path = write_zip(tmp_path / "b.zip", BundleParts.typical(signer).signed(signer))
    result = CliRunner().invoke(
        app, ["bundle", "verify", str(path), "--public-key", str(public_key), "--json"]
    )
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["ok"] is True
    assert facts["partner"] == "acme" and facts["month"] == "2026-10"
    assert facts["files"] == 8 and facts["certificates"] == 2


def test_the_command_prints_a_table_without_json(
    tmp_path: Path, signer: LocalSigner, public_key: Path
) -> None:
    path = write_zip(tmp_path / "b.zip", BundleParts.typical(signer).signed(signer))
    result = CliRunner().invoke(
        app, ["bundle", "verify", str(path), "--public-key", str(public_key)]
    )
    assert result.exit_code == 0, result.output
    assert "verified" in result.stdout and "acme" in result.stdout


def test_the_command_exits_1_with_the_reason(
    tmp_path: Path, keys: tuple[LocalSigner, Path, LocalSigner]
) -> None:
    signer, public_key, other = keys
    path = write_zip(tmp_path / "b.zip", _extra_file(BundleParts.typical(signer), signer, other))
    result = CliRunner().invoke(
        app, ["bundle", "verify", str(path), "--public-key", str(public_key), "--json"]
    )
    assert result.exit_code == 1
    assert "FAILED" in result.stderr
    assert "day=03/part-00000.parquet: in the ZIP but not in the manifest" in result.stderr
    assert json.loads(result.stdout) == {
        "ok": False,
        "error": "data/events/day=03/part-00000.parquet: in the ZIP but not in the manifest",
    }
