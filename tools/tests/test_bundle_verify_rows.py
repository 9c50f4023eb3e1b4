"""`bundle verify` and row counts: the Parquet footer reader, and subject annotations.

The footer reader is checked against polars on files shaped like the bundle's (nested
columns, key-value metadata, many row groups, no rows); annotations (in-toto v1
``ResourceDescriptor.annotations``: ``bytes``, and ``rows`` for Parquet) are checked
against the manifest's ``files`` from the signed payload.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from bundle_zip_fixtures import BundleParts, write_zip
from ryuzen_contracts.attestation import Statement
from ryuzen_contracts.signing import LocalSigner, generate_local_key
from ryuzen_tools import bundle_verify
from ryuzen_tools.bundle_verify import VerificationError, verify_bundle_file
from ryuzen_tools.parquet_footer import footer_num_rows

PART = "data/events/day=01/part-00000.parquet"


def frame(rows: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_id": [f"e-{index}" for index in range(rows)],
            "cache_hit": [index % 3 == 0 for index in range(rows)],
            "latency_ms": [None if index % 7 == 0 else index / 3 for index in range(rows)],
            "attributes": [
                [{"key": "tier", "value": str(index), "type": "string"}] for index in range(rows)
            ],
        },
        schema={
            "event_id": pl.String,
            "cache_hit": pl.Boolean,
            "latency_ms": pl.Float64,
            "attributes": pl.List(
                pl.Struct({"key": pl.String, "value": pl.String, "type": pl.String})
            ),
        },
    )


def footer(body: bytes) -> bytes:
    length = int.from_bytes(body[-8:-4], "little")
    return body[-8 - length : -8]


@pytest.mark.parametrize(
    ("rows", "options"),
    [
        pytest.param(0, {}, id="empty"),
        pytest.param(1, {}, id="one-row"),
        pytest.param(5_000, {"row_group_size": 300}, id="many-row-groups"),
        pytest.param(70_000, {"compression": "zstd", "statistics": True}, id="large"),
        pytest.param(42, {"metadata": {"ryuzen.sanitized_rows": "42"}}, id="key-value-metadata"),
    ],
)
def test_the_footer_gives_the_rows_polars_reads(rows: int, options: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    frame(rows).write_parquet(buffer, **options)
    body = buffer.getvalue()
    assert footer_num_rows(footer(body)) == pl.read_parquet(io.BytesIO(body)).height == rows


@pytest.mark.parametrize("cut", [0, 1, 10], ids=["nothing", "first-byte", "in-the-schema"])
def test_a_footer_cut_before_its_row_count_is_refused(cut: int) -> None:
    buffer = io.BytesIO()
    frame(10).write_parquet(buffer)
    with pytest.raises(ValueError, match="truncated"):
        footer_num_rows(footer(buffer.getvalue())[:cut])


def test_a_footer_larger_than_the_chunks_kept_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given chunks far smaller than the footers (a footer larger than the last two chunks)
    directory = tmp_path / "keys"
    directory.mkdir()
    signer = generate_local_key(directory / "k.pem", directory / "k.pub.pem")
    monkeypatch.setattr(bundle_verify, "CHUNK_BYTES", 64)
    parts = BundleParts.typical(signer)
    path = write_zip(tmp_path / "b.zip", parts.signed(signer))

    # Then the rows are still checked (the genuine bundle verifies; a wrong count fails)
    assert verify_bundle_file(path, directory / "k.pub.pem").files == 8
    parts.rows[PART] = 11
    path = write_zip(tmp_path / "c.zip", parts.signed(signer))
    with pytest.raises(VerificationError, match="12 rows in its Parquet footer, the manifest"):
        verify_bundle_file(path, directory / "k.pub.pem")


def attested_with(
    signer: LocalSigner, annotations: dict[str, dict[str, Any]]
) -> dict[str, bundle_verify.Attested]:
    """The attested facts of the typical bundle's manifest, its subjects annotated."""
    parts = BundleParts.typical(signer)
    payload, _ = parts.manifest(signer)
    document = json.loads(payload)
    for item in document["subject"]:
        if item["name"] in annotations:
            item["annotations"] = annotations[item["name"]]
    return bundle_verify._attested_files(Statement.model_validate_json(payload), document)


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> LocalSigner:
    directory = tmp_path_factory.mktemp("keys")
    return generate_local_key(directory / "k.pem", directory / "k.pub.pem")


def test_annotations_agreeing_with_the_files_list_pass(signer: LocalSigner) -> None:
    size = len(BundleParts.typical(signer).entries[PART])
    attested = attested_with(signer, {PART: {"bytes": size, "rows": 12}, "README.txt": {}})
    assert (attested[PART].bytes, attested[PART].rows) == (size, 12)


@pytest.mark.parametrize(
    ("annotation", "reason"),
    [
        pytest.param(
            {"rows": 13},
            rf"^{PART}: its subject annotations say rows 13, the manifest's files say 12$",
            id="rows",
        ),
        pytest.param(
            {"bytes": 1},
            rf"^{PART}: its subject annotations say bytes 1, the manifest's files say \d+$",
            id="bytes",
        ),
        pytest.param({"rows": "12"}, r"annotations say rows '12'", id="rows-as-text"),
    ],
)
def test_a_tampered_annotation_is_refused(
    signer: LocalSigner, annotation: dict[str, Any], reason: str
) -> None:
    with pytest.raises(VerificationError, match=reason):
        attested_with(signer, {PART: annotation})


def test_annotations_that_are_not_a_mapping_are_refused(signer: LocalSigner) -> None:
    with pytest.raises(VerificationError, match="malformed subject annotations"):
        attested_with(signer, {PART: ["rows", 12]})  # type: ignore[dict-item]
