"""Searching stored artifacts for canaries, through every encoding they are stored in.

An object is searched as raw bytes and then decoded layer by layer: gzip members are
inflated, ZIP members opened, Parquet files read (every value of every column, nested
attributes included, as JSON text), and a DSSE envelope's base64 payload decoded.
Compressed bytes (a zstd Parquet page, a deflated ZIP member) hide text from a byte
search; the decoded layers do not. Every comparison is case-insensitive.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import json
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

PARQUET_MAGIC = b"PAR1"
ZIP_MAGIC = b"PK\x03\x04"
GZIP_MAGIC = b"\x1f\x8b"
MAX_DEPTH = 4


@dataclass(frozen=True)
class Hit:
    """A needle found in one layer of one artifact."""

    where: str
    needle: str


def layers(name: str, data: bytes, depth: int = 0) -> Iterator[tuple[str, str]]:
    """``(where, text)`` for the artifact and everything decodable inside it."""
    yield name, data.decode("utf-8", errors="replace")
    yield f"{name} (latin-1)", data.decode("latin-1")
    if depth >= MAX_DEPTH:
        return
    if data.startswith(GZIP_MAGIC):
        try:
            inner = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            inner = None
        if inner is not None:
            yield from layers(f"{name} [gunzip]", inner, depth + 1)
    if data.startswith(ZIP_MAGIC):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                yield f"{name} [zip member name]", member
                yield from layers(f"{name}!{member}", archive.read(member), depth + 1)
    if data.startswith(PARQUET_MAGIC) and data.endswith(PARQUET_MAGIC):
        frame = pl.read_parquet(io.BytesIO(data))
        yield f"{name} [parquet schema]", json.dumps(list(frame.schema))
        rows = frame.to_dicts()
        yield f"{name} [parquet values]", json.dumps(rows, default=str, ensure_ascii=False)
    document = _json_document(data)
    if isinstance(document, dict) and isinstance(document.get("payload"), str):
        try:
            payload = base64.b64decode(document["payload"], validate=True)
        except (binascii.Error, ValueError):
            payload = None
        if payload is not None:
            yield from layers(f"{name} [dsse payload]", payload, depth + 1)


def _json_document(data: bytes) -> Any:
    if data[:1] not in (b"{", b"["):
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def search_text(where: str, text: str, needles: Iterable[str]) -> list[Hit]:
    """The needles found in ``text`` (case-insensitive)."""
    haystack = text.lower()
    return [Hit(where, needle) for needle in dict.fromkeys(needles) if needle.lower() in haystack]


def search_artifacts(artifacts: Mapping[str, bytes], needles: Iterable[str]) -> list[Hit]:
    """Every needle found in any layer of any artifact."""
    wanted = list(needles)
    hits: list[Hit] = []
    for name, data in artifacts.items():
        for where, text in layers(name, data):
            hits += search_text(where, text, wanted)
    return hits


def bucket_objects(s3: Any, bucket: str) -> dict[str, bytes]:
    """Every object of a bucket, by ``bucket/key``."""
    objects: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            objects[f"{bucket}/{item['Key']}"] = body
    return objects


def table_items(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of a DynamoDB table (low-level attribute values)."""
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        items += page["Items"]
    return items


def items_text(items: list[dict[str, Any]]) -> str:
    """A table scan as searchable text (binary attributes decoded as well)."""
    return json.dumps(items, default=_decode_binary, ensure_ascii=False)


def _decode_binary(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return repr(value)
