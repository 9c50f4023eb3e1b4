"""Writing the bundle ZIP as a stream: entries go out a chunk at a time, each one hashed.

The ZIP is written to a non-seekable stream (the multipart upload), so ``zipfile`` puts
each entry's sizes and CRC in a data descriptor after its bytes, and every entry is
opened with ``force_zip64=True``: sizes are unknown until the end, and an entry past
4 GiB must already have its zip64 header. Entries are ``ZIP_STORED`` — Parquet is
already compressed, and the rest is small. Nothing is ever whole in memory: a file is
copied in 1 MiB chunks, and the SHA-256 the manifest names is computed on the way out.
"""

from __future__ import annotations

import hashlib
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol, cast

from ryuzen_bundle.manifest import FileEntry

_CHUNK = 1 << 20


class WritableStream(Protocol):
    """What the ZIP is written to: a write-only stream that knows its position."""

    def write(self, data: bytes, /) -> int: ...

    def tell(self) -> int: ...

    def flush(self) -> None: ...


class BundleZip:
    """Entries written so far, in order, with their sizes, digests and row counts."""

    def __init__(self, stream: WritableStream, created_at: datetime) -> None:
        # zipfile probes seek() and, refused, writes data descriptors (see module doc).
        self._zip = zipfile.ZipFile(
            cast(IO[bytes], stream), mode="w", compression=zipfile.ZIP_STORED, allowZip64=True
        )
        # Every entry carries the build time (UTC), not the machine's local clock.
        self._date_time = created_at.astimezone(UTC).timetuple()[:6]
        self.entries: list[FileEntry] = []
        self._names: set[str] = set()

    def _info(self, name: str) -> zipfile.ZipInfo:
        if name in self._names or name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"bad or duplicate ZIP entry name {name!r:.120}")
        self._names.add(name)
        info = zipfile.ZipInfo(name, date_time=self._date_time)
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        return info

    def add_file(self, name: str, path: Path, rows: int | None = None) -> FileEntry:
        """Copy the file at ``path`` into the ZIP as ``name``."""
        digest = hashlib.sha256()
        size = 0
        with (
            path.open("rb") as source,
            self._zip.open(self._info(name), "w", force_zip64=True) as out,
        ):
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        return self._record(FileEntry(name, size, digest.hexdigest(), rows))

    def add_bytes(self, name: str, data: bytes, rows: int | None = None) -> FileEntry:
        """Write a small in-memory file (README, schema, report, manifest) as ``name``."""
        with self._zip.open(self._info(name), "w", force_zip64=True) as out:
            out.write(data)
        return self._record(FileEntry(name, len(data), hashlib.sha256(data).hexdigest(), rows))

    def _record(self, entry: FileEntry) -> FileEntry:
        self.entries.append(entry)
        return entry

    def close(self) -> None:
        """Write the central directory (zip64 end records when needed)."""
        self._zip.close()

    def discard(self) -> None:
        """Give up on the archive without writing its central directory.

        For a build that failed mid-ZIP: its upload is being aborted, and a ZipFile left
        open would try to write the directory into that stream later, from ``__del__``.
        """
        self._zip.fp = None  # zipfile's close() then writes nothing
