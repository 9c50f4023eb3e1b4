"""The row count of a Parquet file, from its footer alone, with no Parquet library.

A Parquet file ends with its ``FileMetaData`` (Thrift, compact protocol), the metadata's
length (4 bytes, little-endian) and ``PAR1``. ``num_rows`` is field 3 of that struct,
after the version (1) and the schema list (2), so finding it means walking — skipping —
whatever precedes it. Only the compact protocol's generic encoding is needed for that;
``bundle verify`` uses it to check a bundle's Parquet entries against their attested rows
while it streams them, keeping only the footer's bytes (a partner's verifier should not
need polars or pyarrow, and an entry never sits whole in memory).
"""

from __future__ import annotations

from collections.abc import Iterator

_T_TRUE, _T_FALSE, _T_BYTE, _T_I16, _T_I32, _T_I64 = 1, 2, 3, 4, 5, 6
_T_DOUBLE, _T_BINARY, _T_LIST, _T_SET, _T_MAP, _T_STRUCT = 7, 8, 9, 10, 11, 12
_NUM_ROWS_FIELD = 3  # FileMetaData: 1 version, 2 schema, 3 num_rows (i64), 4 row_groups...
_MAX_DEPTH = 64


class _Compact:
    """A reader of Thrift's compact protocol over one footer's bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def byte(self) -> int:
        if self.position >= len(self.data):
            raise ValueError("truncated")
        value = self.data[self.position]
        self.position += 1
        return value

    def skip_bytes(self, count: int) -> None:
        if count < 0 or self.position + count > len(self.data):
            raise ValueError("truncated")
        self.position += count

    def varint(self) -> int:
        result = shift = 0
        while True:
            value = self.byte()
            result |= (value & 0x7F) << shift
            if not value & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise ValueError("varint too long")

    def zigzag(self) -> int:
        value = self.varint()
        return (value >> 1) ^ -(value & 1)

    def fields(self) -> Iterator[tuple[int, int]]:
        """``(field id, type)`` of each field of the struct at the position, to its stop."""
        last = 0
        while header := self.byte():
            kind, delta = header & 0x0F, header >> 4
            last = last + delta if delta else self.zigzag()
            yield last, kind

    def skip(self, kind: int, depth: int = 0, *, element: bool = False) -> None:
        """Skip one value of ``kind`` (a collection's booleans take a byte each)."""
        if depth > _MAX_DEPTH:
            raise ValueError("nested too deep")
        if kind in (_T_TRUE, _T_FALSE):
            if element:
                self.skip_bytes(1)
        elif kind == _T_BYTE:
            self.skip_bytes(1)
        elif kind in (_T_I16, _T_I32, _T_I64):
            self.varint()
        elif kind == _T_DOUBLE:
            self.skip_bytes(8)
        elif kind == _T_BINARY:
            self.skip_bytes(self.varint())
        elif kind in (_T_LIST, _T_SET):
            header = self.byte()
            count = header >> 4 if header >> 4 != 15 else self.varint()
            for _ in range(count):
                self.skip(header & 0x0F, depth + 1, element=True)
        elif kind == _T_MAP:
            count = self.varint()
            types = self.byte() if count else 0
            for _ in range(count):
                self.skip(types >> 4, depth + 1, element=True)
                self.skip(types & 0x0F, depth + 1, element=True)
        elif kind == _T_STRUCT:
            for _, field_kind in self.fields():
                self.skip(field_kind, depth + 1)
        else:
            raise ValueError(f"unknown compact type {kind}")


def footer_num_rows(footer: bytes) -> int:
    """``FileMetaData.num_rows`` of a serialized Parquet footer (the bytes before its length
    and the closing ``PAR1``); ValueError when it is truncated, malformed or has none."""
    reader = _Compact(footer)
    for field_id, kind in reader.fields():
        if field_id == _NUM_ROWS_FIELD and kind == _T_I64:
            rows = reader.zigzag()
            if rows < 0:
                raise ValueError("negative num_rows")
            return rows
        reader.skip(kind)
    raise ValueError("no num_rows")
