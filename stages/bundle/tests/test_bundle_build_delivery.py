"""The streamed multipart upload and its checksum read-back (``s3_delivery``)."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from bundle_build_stack import BundleStack
from ryuzen_bundle.s3_delivery import (
    MIN_PART_SIZE,
    PART_SIZE,
    ChecksumMismatch,
    MultipartUploadStream,
    PartChecksum,
    UploadedObject,
    _match,
    composite_sha256,
    part_size_for,
    store_sha256_metadata,
    verify_uploaded,
)
from ryuzen_contracts.pipeline_steps import step_of

MiB = 1 << 20


def upload(
    stack: BundleStack, data: bytes, key: str = "k.zip", chunk: int = 300_000
) -> UploadedObject:
    with MultipartUploadStream(
        stack.s3, "bundles", key, content_type="application/zip", part_size=MIN_PART_SIZE
    ) as stream:
        for start in range(0, len(data), chunk):
            stream.write(data[start : start + chunk])
        return stream.complete()


def test_parts_composite_and_whole_object_digest(stack: BundleStack) -> None:
    data = os.urandom(12 * MiB + 123)
    sent = upload(stack, data)
    assert [part.size for part in sent.parts] == [5 * MiB, 5 * MiB, 2 * MiB + 123]
    assert sent.bytes == len(data) and sent.sha256 == hashlib.sha256(data).hexdigest()
    digests = [hashlib.sha256(data[i : i + 5 * MiB]).digest() for i in range(0, len(data), 5 * MiB)]
    assert (
        sent.composite_b64 == base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode()
    )
    assert sent.composite_checksum.endswith("-3")
    stored = stack.s3.get_object(Bucket="bundles", Key="k.zip")["Body"].read()
    assert stored == data
    assert verify_uploaded(stack.s3, sent).checksum_type == "COMPOSITE"


def test_metadata_copy_then_read_back(stack: BundleStack) -> None:
    sent = upload(stack, os.urandom(6 * MiB))
    store_sha256_metadata(stack.s3, sent, content_type="application/zip")
    checked = verify_uploaded(stack.s3, sent, expect_metadata=True)
    # moto recomputes a full-object SHA-256 on CopyObject; AWS may report either form
    assert checked.checksum_type in ("FULL_OBJECT", "COMPOSITE")
    head = stack.s3.head_object(Bucket="bundles", Key="k.zip")
    assert head["Metadata"] == {"sha256": sent.sha256}
    assert head["ContentType"] == "application/zip"


def test_metadata_by_multipart_copy_above_the_copy_limit(stack: BundleStack) -> None:
    data = os.urandom(11 * MiB)
    sent = upload(stack, data)
    store_sha256_metadata(stack.s3, sent, content_type="application/zip", copy_limit=0)
    assert verify_uploaded(stack.s3, sent, expect_metadata=True).checksum_type == "COMPOSITE"
    assert stack.s3.get_object(Bucket="bundles", Key="k.zip")["Body"].read() == data
    assert stack.open_uploads() == []


def test_metadata_copy_refuses_an_object_someone_replaced(stack: BundleStack) -> None:
    sent = upload(stack, os.urandom(1000))
    stack.s3.put_object(Bucket="bundles", Key="k.zip", Body=b"another writer")
    # AWS refuses the copy (CopySourceIfMatch); moto ignores that condition and copies,
    # and then the copy's SHA-256 is not ours.
    with pytest.raises((ClientError, ChecksumMismatch)):
        store_sha256_metadata(stack.s3, sent, content_type="application/zip")


def test_a_replaced_object_fails_verification(stack: BundleStack) -> None:
    data = os.urandom(2000)
    sent = upload(stack, data)
    tampered = bytes(reversed(data))
    stack.s3.put_object(
        Bucket="bundles",
        Key="k.zip",
        Body=tampered,
        ChecksumAlgorithm="SHA256",
    )
    with pytest.raises(ChecksumMismatch):
        verify_uploaded(stack.s3, sent)


def test_a_failure_inside_the_stream_aborts_the_upload(stack: BundleStack) -> None:
    with (
        pytest.raises(RuntimeError, match="writer broke"),
        MultipartUploadStream(
            stack.s3, "bundles", "k.zip", content_type="application/zip", part_size=MIN_PART_SIZE
        ) as stream,
    ):
        stream.write(os.urandom(6 * MiB))
        raise RuntimeError("writer broke")
    assert stack.open_uploads() == []
    assert stack.bundle_keys() == []


def test_the_stream_cannot_seek_and_knows_its_position(stack: BundleStack) -> None:
    with MultipartUploadStream(stack.s3, "bundles", "k.zip", content_type="x") as stream:
        stream.write(b"abc")
        assert stream.tell() == 3 and not stream.seekable()
        with pytest.raises(OSError):
            stream.seek(0)
        stream.complete()
    with pytest.raises(ValueError):
        stream.write(b"after")


def test_part_sizes_double_every_two_thousand_parts() -> None:
    assert part_size_for(1) == PART_SIZE
    assert part_size_for(2000) == PART_SIZE
    assert part_size_for(2001) == 2 * PART_SIZE
    assert part_size_for(10_000) == 16 * PART_SIZE
    total = sum(part_size_for(n) for n in range(1, 10_001))
    assert total > 450 * (1 << 30)  # ~0.5 TB within S3's 10,000 parts
    with pytest.raises(ValueError):
        MultipartUploadStream(None, "b", "k", content_type="x", part_size=MIN_PART_SIZE - 1)


class SlowS3:
    """Records how many parts are in flight at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0
        self.fail_part: int | None = None

    def create_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {"UploadId": "u"}

    def upload_part(self, **kwargs: Any) -> dict[str, Any]:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        time.sleep(0.02)
        with self.lock:
            self.in_flight -= 1
        if kwargs["PartNumber"] == self.fail_part:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "x"}}, "UploadPart")
        return {"ETag": f'"{kwargs["PartNumber"]}"', "ChecksumSHA256": kwargs["ChecksumSHA256"]}

    def complete_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {"ETag": '"e-9"'}

    def abort_multipart_upload(self, **_: Any) -> None:
        pass


@pytest.mark.parametrize("max_in_flight", [1, 2, 3])
def test_parts_in_flight_are_bounded(max_in_flight: int) -> None:
    fake = SlowS3()
    with MultipartUploadStream(
        fake, "b", "k", content_type="x", part_size=MIN_PART_SIZE, max_in_flight=max_in_flight
    ) as stream:
        block = b"\0" * MiB
        for _ in range(45):
            stream.write(block)
        sent = stream.complete()
    assert len(sent.parts) == 9
    assert fake.most <= max_in_flight


def test_a_failed_part_surfaces_as_itself() -> None:
    fake = SlowS3()
    fake.fail_part = 1
    stream = MultipartUploadStream(fake, "b", "k", content_type="x", part_size=MIN_PART_SIZE)
    # The part's own error, whether a later write or complete() finds it (timing decides)
    with pytest.raises(ClientError) as raised, stream:
        for _ in range(40):
            stream.write(b"\0" * MiB)
        stream.complete()
    assert step_of(raised.value) == "upload_part"


def sent_object(parts: int = 3) -> UploadedObject:
    chunks = [bytes([n]) * 10 for n in range(parts)]
    return UploadedObject(
        "b",
        "k",
        10 * parts,
        hashlib.sha256(b"".join(chunks)).hexdigest(),
        tuple(
            PartChecksum(n + 1, 10, base64.b64encode(hashlib.sha256(c).digest()).decode(), "e")
            for n, c in enumerate(chunks)
        ),
        '"e-3"',
    )


@pytest.mark.parametrize(
    ("reported", "kind", "expected"),
    [
        pytest.param("{composite}-3", None, "COMPOSITE", id="aws-composite"),
        pytest.param("{composite}", "COMPOSITE", "COMPOSITE", id="typed-composite"),
        pytest.param("{composite}", None, "COMPOSITE", id="moto-composite"),
        pytest.param("{full}", "FULL_OBJECT", "FULL_OBJECT", id="full-object"),
        pytest.param("{full}", None, "FULL_OBJECT", id="untyped-full-object"),
        pytest.param("{composite}-2", None, None, id="wrong-part-count"),
        pytest.param("{full}-3", None, None, id="full-with-suffix"),
        pytest.param("{composite}", "FULL_OBJECT", None, id="composite-typed-full"),
        pytest.param("AAAA", None, None, id="other"),
        pytest.param("", None, None, id="missing"),
    ],
)
def test_checksum_forms(reported: str, kind: str | None, expected: str | None) -> None:
    sent = sent_object()
    value = reported.format(composite=sent.composite_b64, full=sent.sha256_b64)
    if expected is None:
        with pytest.raises(ChecksumMismatch):
            _match(value, kind, sent, "test")
    else:
        assert _match(value, kind, sent, "test") == expected


class AwsLikeS3:
    """HeadObject/GetObjectAttributes as AWS answers them for a composite upload."""

    def __init__(self, sent: UploadedObject, wrong_part: int | None = None) -> None:
        self.sent = sent
        self.wrong_part = wrong_part

    def head_object(self, **_: Any) -> dict[str, Any]:
        return {
            "ContentLength": self.sent.bytes,
            "ChecksumSHA256": self.sent.composite_checksum,
            "ChecksumType": "COMPOSITE",
            "Metadata": {},
        }

    def _part(self, part: PartChecksum) -> dict[str, Any]:
        checksum = "AAAA" if part.number == self.wrong_part else part.sha256_b64
        return {"PartNumber": part.number, "Size": part.size, "ChecksumSHA256": checksum}

    def get_object_attributes(self, **kwargs: Any) -> dict[str, Any]:
        # Two pages: the first part, then the rest.
        marker = kwargs.get("PartNumberMarker")
        parts = self.sent.parts[:1] if marker is None else self.sent.parts[1:]
        listing = {
            "TotalPartsCount": len(self.sent.parts),
            "Parts": [self._part(p) for p in parts],
            "IsTruncated": marker is None,
            "NextPartNumberMarker": 1,
        }
        return {
            "ObjectSize": self.sent.bytes,
            "Checksum": {"ChecksumSHA256": self.sent.composite_b64, "ChecksumType": "COMPOSITE"},
            "ObjectParts": listing,
        }


def test_every_listed_part_is_compared() -> None:
    sent = sent_object()
    assert verify_uploaded(AwsLikeS3(sent), sent).parts_checked == 3
    with pytest.raises(ChecksumMismatch, match="part 3"):
        verify_uploaded(AwsLikeS3(sent, wrong_part=3), sent)


def test_composite_of_known_digests() -> None:
    digest = base64.b64encode(hashlib.sha256(b"a").digest()).decode()
    expected = base64.b64encode(hashlib.sha256(hashlib.sha256(b"a").digest()).digest()).decode()
    assert composite_sha256([digest]) == expected
