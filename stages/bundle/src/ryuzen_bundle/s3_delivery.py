"""Delivering the bundle to S3: a streamed multipart upload, then its checksum, read back.

**Streaming.** ``MultipartUploadStream`` is a write-only, non-seekable file object: the
ZIP writer writes into it, it buffers one part (8 MiB; doubled every 2,000 parts so the
10,000-part limit still allows ~0.5 TB), and sends each full part with ``UploadPart`` and
its own SHA-256 (``ChecksumAlgorithm=SHA256`` + ``ChecksumSHA256``), on a background
thread so the next part fills while the last one travels. At most ``max_in_flight``
parts are in flight: memory is ``(max_in_flight + 1) x part size`` whatever the bundle
size. The whole object's SHA-256 is computed as bytes go out.

**Checksums.** S3 stores a multipart SHA-256 as a *composite*: the SHA-256 of the
concatenated part digests, reported with a ``-N`` part-count suffix. After
``CompleteMultipartUpload`` the builder reads it back (``HeadObject`` with
``ChecksumMode=ENABLED`` and ``GetObjectAttributes``) and compares it with the composite
it computed from its own part digests; when S3 lists the parts (``ObjectParts``), each
part's checksum and size is compared too.

**The full-object SHA-256** is what partners, the manifest and the bundle state name.
Object metadata can only be set when an object is created, so the builder copies the
object onto itself with ``Metadata={"sha256": ...}``: ``CopyObject`` (up to 5 GiB) with
``ChecksumAlgorithm=SHA256``, whose reported checksum is compared like the others
(full-object or composite form, whichever S3 reports); above 5 GiB, a multipart copy
with the original part ranges, completed with the builder's part digests, which S3
checks against the parts it copied. Both copies are conditional on the uploaded ETag
(``CopySourceIfMatch``), so a concurrent writer's object is never relabelled. The
checksum, size and metadata are then read back once more.

**moto vs AWS.** moto (5.x) computes the composite correctly and reports a full-object
SHA-256 after ``CopyObject``, but it does not reject a part whose ``ChecksumSHA256`` is
wrong, does not return ``ObjectParts`` from ``GetObjectAttributes``, reports the
composite without its ``-N`` suffix or ``ChecksumType``, ignores ``CopySourceIfMatch``
and returns no checksum for ``UploadPartCopy``. So against moto the composite, size,
metadata and full-object digest are verified (a replaced object fails the copy's
checksum instead of its precondition); the per-part comparisons and S3's own rejection
of a corrupted part happen on AWS only. Both suffix forms are accepted.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ryuzen_contracts.pipeline_steps import step

PART_SIZE = 8 << 20
MIN_PART_SIZE = 5 << 20
MAX_PART_SIZE = 4 << 30
MAX_PARTS = 10_000
PARTS_PER_SIZE = 2_000
COPY_OBJECT_LIMIT = 5 << 30


class DeliveryError(RuntimeError):
    """The upload or its verification failed; the message says which check."""


class ChecksumMismatch(DeliveryError):  # noqa: N818 -- reads as what happened
    """S3 holds a checksum (or size, or metadata) that is not the one the builder computed."""


@dataclass(frozen=True)
class PartChecksum:
    """One uploaded part: number, size, base64 SHA-256 and ETag."""

    number: int
    size: int
    sha256_b64: str
    etag: str


@dataclass(frozen=True)
class UploadedObject:
    """What the builder sent: size, full SHA-256 (hex), every part's checksum, the ETag."""

    bucket: str
    key: str
    bytes: int
    sha256: str
    parts: tuple[PartChecksum, ...]
    etag: str

    @property
    def composite_b64(self) -> str:
        """SHA-256 of the concatenated raw part digests, base64 (S3's composite checksum)."""
        return composite_sha256([part.sha256_b64 for part in self.parts])

    @property
    def composite_checksum(self) -> str:
        """The composite as S3 reports it: ``<base64>-<part count>``."""
        return f"{self.composite_b64}-{len(self.parts)}"

    @property
    def sha256_b64(self) -> str:
        """The full-object SHA-256, base64 (S3's full-object form)."""
        return base64.b64encode(bytes.fromhex(self.sha256)).decode("ascii")


@dataclass(frozen=True)
class VerifiedChecksum:
    """What a read-back confirmed: the checksum form S3 reported and how many parts."""

    checksum_type: str  # COMPOSITE or FULL_OBJECT
    parts_checked: int


def composite_sha256(part_digests_b64: list[str]) -> str:
    """S3's composite SHA-256 (base64, no suffix) of parts with these base64 digests."""
    joined = b"".join(base64.b64decode(item) for item in part_digests_b64)
    return base64.b64encode(hashlib.sha256(joined).digest()).decode("ascii")


def part_size_for(number: int, base: int = PART_SIZE) -> int:
    """Size of part ``number`` (1-based): ``base``, doubled every 2,000 parts."""
    return min(MAX_PART_SIZE, base << ((number - 1) // PARTS_PER_SIZE))


class MultipartUploadStream:
    """A write-only, non-seekable stream whose bytes become one S3 object (see module doc)."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        *,
        content_type: str,
        part_size: int = PART_SIZE,
        max_in_flight: int = 2,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part size {part_size} is below S3's 5 MiB minimum")
        self._s3 = s3
        self.bucket = bucket
        self.key = key
        self._content_type = content_type
        self._base = part_size
        self._buffer = bytearray()
        self._written = 0
        self._digest = hashlib.sha256()
        self._upload_id: str | None = None
        self._futures: list[Future[PartChecksum]] = []
        self._slots = threading.BoundedSemaphore(max(1, max_in_flight))
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, max_in_flight), thread_name_prefix="bundle-put"
        )
        self._finished = False

    # -- file-object protocol (what zipfile needs) ------------------------------------
    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._written

    def seek(self, offset: int, whence: int = 0) -> int:
        # zipfile probes seek(); refusing it makes zipfile write data descriptors.
        raise io.UnsupportedOperation("a multipart upload stream cannot seek")

    def flush(self) -> None:
        pass  # parts leave when full; the last one leaves on complete()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Buffer ``data``; send every full part. Returns the bytes accepted (all of them)."""
        if self._upload_id is None or self._finished:
            raise ValueError("the upload is not open")
        view = memoryview(data).cast("B")
        self._digest.update(view)
        self._buffer += view
        self._written += len(view)
        while len(self._buffer) >= (size := part_size_for(len(self._futures) + 1, self._base)):
            # One copy out of the buffer (slicing the bytearray first would make two).
            with memoryview(self._buffer) as whole, whole[:size] as head:
                body = bytes(head)
            del self._buffer[:size]
            self._send(body)
        return len(view)

    # -- upload lifecycle ------------------------------------------------------------
    def start(self) -> MultipartUploadStream:
        """Create the multipart upload (SHA-256 checksums, ZIP content type)."""
        with step("start_upload"):
            response = self._s3.create_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                ContentType=self._content_type,
                ChecksumAlgorithm="SHA256",
            )
        self._upload_id = response["UploadId"]
        return self

    def _send(self, body: bytes) -> None:
        number = len(self._futures) + 1
        if number > MAX_PARTS:
            raise DeliveryError(f"the bundle needs more than {MAX_PARTS} parts")
        self._raise_failed_part()
        self._slots.acquire()
        try:
            future = self._pool.submit(self._upload_part, number, body)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        self._futures.append(future)

    def _upload_part(self, number: int, body: bytes) -> PartChecksum:
        checksum = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
        with step("upload_part"):
            response = self._s3.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
            )
            echoed = response.get("ChecksumSHA256")
            if echoed is not None and echoed != checksum:
                raise ChecksumMismatch(f"part {number}: S3 computed {echoed}, we sent {checksum}")
        return PartChecksum(number, len(body), checksum, response["ETag"])

    def _raise_failed_part(self) -> None:
        # The part's own error, type and step kept: whether it surfaces here (at a later
        # write) or in complete() depends only on timing, and must not change what is
        # reported.
        for future in self._futures:
            if future.done() and future.exception() is not None:
                future.result()

    def complete(self) -> UploadedObject:
        """Send the last part, complete the upload, return what was sent."""
        if self._upload_id is None or self._finished:
            raise ValueError("the upload is not open")
        if self._buffer or not self._futures:
            body = bytes(self._buffer)
            self._buffer = bytearray()
            self._send(body)
        parts = tuple(future.result() for future in self._futures)
        with step("complete_upload"):
            response = self._s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={
                    "Parts": [
                        {"PartNumber": p.number, "ETag": p.etag, "ChecksumSHA256": p.sha256_b64}
                        for p in parts
                    ]
                },
            )
        self._finished = True
        self._pool.shutdown(wait=True)
        return UploadedObject(
            self.bucket,
            self.key,
            self._written,
            self._digest.hexdigest(),
            parts,
            str(response.get("ETag", "")),
        )

    def abort(self) -> None:
        """Give up: stop sending, and have S3 discard every part received so far."""
        if self._finished:
            return
        self._finished = True
        for future in self._futures:
            future.cancel()
        self._pool.shutdown(wait=True)
        self._buffer = bytearray()
        if self._upload_id is not None:
            self._s3.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self._upload_id
            )

    def __enter__(self) -> MultipartUploadStream:
        return self.start()

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if error is not None:
            # The original failure is the one worth reporting; an abort that fails leaves
            # parts that the bucket's lifecycle rule for incomplete uploads removes.
            with contextlib.suppress(Exception):
                self.abort()


def _match(
    reported: str | None, reported_type: str | None, sent: UploadedObject, where: str
) -> str:
    """Compare a checksum S3 reported with ours; return its form (COMPOSITE or FULL_OBJECT)."""
    if not reported:
        raise ChecksumMismatch(f"{where}: S3 reported no SHA-256 checksum")
    digest, suffixed, count = reported.partition("-")
    if suffixed or reported_type == "COMPOSITE":
        if digest != sent.composite_b64 or (suffixed and count != str(len(sent.parts))):
            raise ChecksumMismatch(
                f"{where}: composite {reported} is not ours ({sent.composite_checksum})"
            )
        return "COMPOSITE"
    if reported_type == "FULL_OBJECT" or digest == sent.sha256_b64:
        if digest != sent.sha256_b64:
            raise ChecksumMismatch(f"{where}: SHA-256 {reported} is not ours ({sent.sha256_b64})")
        return "FULL_OBJECT"
    # moto reports a composite without its suffix or type.
    if digest != sent.composite_b64:
        raise ChecksumMismatch(
            f"{where}: SHA-256 {reported} matches neither our composite nor ours"
        )
    return "COMPOSITE"


def _object_parts(s3: Any, sent: UploadedObject, first: dict[str, Any]) -> int:
    """Compare every part S3 lists with ours; return how many were compared (0: none listed)."""
    listing = first.get("ObjectParts") or {}
    if not listing.get("Parts"):
        return 0
    if listing.get("TotalPartsCount") not in (None, len(sent.parts)):
        raise ChecksumMismatch(
            f"S3 holds {listing.get('TotalPartsCount')} parts, we sent {len(sent.parts)}"
        )
    checked = 0
    while True:
        for part in listing.get("Parts", []):
            ours = sent.parts[int(part["PartNumber"]) - 1]
            if (
                part.get("ChecksumSHA256") != ours.sha256_b64
                or int(part.get("Size", ours.size)) != ours.size
            ):
                raise ChecksumMismatch(f"part {ours.number}: S3 holds another checksum or size")
            checked += 1
        if not listing.get("IsTruncated"):
            return checked
        listing = (
            s3.get_object_attributes(
                Bucket=sent.bucket,
                Key=sent.key,
                ObjectAttributes=["ObjectParts"],
                MaxParts=1000,
                PartNumberMarker=listing["NextPartNumberMarker"],
            ).get("ObjectParts")
            or {}
        )


def verify_uploaded(
    s3: Any, sent: UploadedObject, *, expect_metadata: bool = False
) -> VerifiedChecksum:
    """Read the stored object's checksum, size (and metadata) back; raise on any difference."""
    head = s3.head_object(Bucket=sent.bucket, Key=sent.key, ChecksumMode="ENABLED")
    if int(head["ContentLength"]) != sent.bytes:
        raise ChecksumMismatch(f"S3 holds {head['ContentLength']} bytes, we sent {sent.bytes}")
    kind = _match(head.get("ChecksumSHA256"), head.get("ChecksumType"), sent, "HeadObject")
    if expect_metadata and (head.get("Metadata") or {}).get("sha256") != sent.sha256:
        raise ChecksumMismatch("the object's sha256 metadata is not the SHA-256 we computed")
    attributes = s3.get_object_attributes(
        Bucket=sent.bucket,
        Key=sent.key,
        ObjectAttributes=["Checksum", "ObjectParts", "ObjectSize"],
        MaxParts=1000,
    )
    if int(attributes.get("ObjectSize", sent.bytes)) != sent.bytes:
        raise ChecksumMismatch(
            f"GetObjectAttributes: {attributes['ObjectSize']} bytes, not {sent.bytes}"
        )
    checksum = attributes.get("Checksum") or {}
    _match(
        checksum.get("ChecksumSHA256"), checksum.get("ChecksumType"), sent, "GetObjectAttributes"
    )
    parts_checked = _object_parts(s3, sent, attributes) if kind == "COMPOSITE" else 0
    return VerifiedChecksum(kind, parts_checked)


def store_sha256_metadata(
    s3: Any, sent: UploadedObject, *, content_type: str, copy_limit: int = COPY_OBJECT_LIMIT
) -> None:
    """Copy the object onto itself with ``Metadata={"sha256": <hex>}`` (see module doc)."""
    source = {"Bucket": sent.bucket, "Key": sent.key}
    condition = {"CopySourceIfMatch": sent.etag} if sent.etag else {}
    if sent.bytes <= copy_limit:
        response = s3.copy_object(
            Bucket=sent.bucket,
            Key=sent.key,
            CopySource=source,
            MetadataDirective="REPLACE",
            Metadata={"sha256": sent.sha256},
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
            **condition,
        )
        result = response.get("CopyObjectResult") or {}
        if result.get("ChecksumSHA256"):
            _match(result["ChecksumSHA256"], result.get("ChecksumType"), sent, "CopyObject")
        return
    upload = s3.create_multipart_upload(
        Bucket=sent.bucket,
        Key=sent.key,
        ContentType=content_type,
        Metadata={"sha256": sent.sha256},
        ChecksumAlgorithm="SHA256",
    )
    upload_id = upload["UploadId"]
    try:
        completed = []
        start = 0
        for part in sent.parts:
            response = s3.upload_part_copy(
                Bucket=sent.bucket,
                Key=sent.key,
                UploadId=upload_id,
                PartNumber=part.number,
                CopySource=source,
                CopySourceRange=f"bytes={start}-{start + part.size - 1}",
                **condition,
            )
            result = response["CopyPartResult"]
            copied = result.get("ChecksumSHA256")
            if copied is not None and copied != part.sha256_b64:
                raise ChecksumMismatch(f"copied part {part.number}: S3 computed another SHA-256")
            completed.append(
                {
                    "PartNumber": part.number,
                    "ETag": result["ETag"],
                    "ChecksumSHA256": part.sha256_b64,
                }
            )
            start += part.size
        s3.complete_multipart_upload(
            Bucket=sent.bucket,
            Key=sent.key,
            UploadId=upload_id,
            MultipartUpload={"Parts": completed},
        )
    except BaseException:
        s3.abort_multipart_upload(Bucket=sent.bucket, Key=sent.key, UploadId=upload_id)
        raise
