"""The embedded moto server lets go of what was deleted (a long-running stack must not grow).

moto keeps every model instance it creates in class-level lists; the local stack's
server releases them regularly, so a deleted S3 object becomes garbage while the
objects still stored stay readable.
"""

from __future__ import annotations

import gc
import threading
import time
import uuid
import weakref
from collections.abc import Iterator

import pytest
from moto.s3.models import s3_backends
from ryuzen_tools.local_stack.aws import LocalClients
from ryuzen_tools.local_stack.lambda_runtime import LOCAL_ACCOUNT_ID
from ryuzen_tools.local_stack.moto_server import MotoServer
from tools_support import REGION


@pytest.fixture
def fast_release() -> Iterator[LocalClients]:
    server = MotoServer(port=0, release_every_s=0.05)
    clients = LocalClients(server.start(), REGION)
    yield clients
    server.stop()


def _stored_key(bucket: str, key: str) -> object:
    return s3_backends[LOCAL_ACCOUNT_ID]["aws"].buckets[bucket].keys[key]


def _wait_until_gone(ref: weakref.ref[object], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        gc.collect()
        if ref() is None:
            return True
        time.sleep(0.05)
    return False


def test_a_deleted_object_is_released_and_a_stored_one_stays(
    fast_release: LocalClients,
) -> None:
    s3 = fast_release.client("s3")
    bucket = f"memory-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=bucket, Key="kept", Body=b"still here")
    s3.put_object(Bucket=bucket, Key="deleted", Body=b"x" * 100_000)
    deleted = weakref.ref(_stored_key(bucket, "deleted"))

    s3.delete_object(Bucket=bucket, Key="deleted")

    assert _wait_until_gone(deleted), "moto still holds the deleted key and its bytes"
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"still here"


def test_the_releaser_stops_with_the_server() -> None:
    before = set(threading.enumerate())  # the session's own server has a releaser too
    server = MotoServer(port=0, release_every_s=0.05)
    server.start()
    server.stop()
    left = [t for t in threading.enumerate() if t not in before]
    assert not [t for t in left if t.name == "moto-release-tracked"]
