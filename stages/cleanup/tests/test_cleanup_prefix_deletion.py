"""Deleting a prefix: batches of 1,000, pagination, per-key errors retried, proof of emptiness."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from cleanup_fixtures import BUCKETS, CleanupStack, FlakyDeletes
from ryuzen_cleanup.prefix_deletion import (
    DeletionIncomplete,
    KeyDigest,
    Prefix,
    PrefixNotEmpty,
    RetryPolicy,
    delete_keys,
    delete_prefix,
    prove_empty,
)

PREFIX = "sanitized/partner=acme/month=2026-11/"


def put_many(stack: CleanupStack, count: int, prefix: str = PREFIX) -> list[str]:
    keys = [f"{prefix}{index:05d}.parquet" for index in range(count)]
    for key in keys:
        stack.s3.put_object(Bucket=BUCKETS["sanitized"], Key=key, Body=b"")
    return keys


def record_delete_sizes(s3: Any) -> list[int]:
    """Keys per DeleteObjects request, recorded by a botocore hook on the real client."""
    sizes: list[int] = []

    def before(params: dict[str, Any], **_: Any) -> None:
        sizes.append(len(params["Delete"]["Objects"]))

    s3.meta.events.register("provide-client-params.s3.DeleteObjects", before)
    return sizes


def no_wait() -> tuple[RetryPolicy, list[float]]:
    waits: list[float] = []
    return RetryPolicy(sleep=waits.append), waits


def test_more_than_a_thousand_objects_go_in_batches_of_a_thousand(stack: CleanupStack) -> None:
    # Given 2,001 objects under the prefix and a few beside it...
    keys = put_many(stack, 2_001)
    beside = put_many(stack, 3, "sanitized/partner=acme/month=2026-12/")
    sizes = record_delete_sizes(stack.s3)
    digest = KeyDigest()

    # ...all 2,001 go, three DeleteObjects calls of at most 1,000 keys each...
    deleted = delete_prefix(stack.s3, Prefix(BUCKETS["sanitized"], PREFIX), digest, no_wait()[0])

    assert deleted == 2_001
    assert sizes == [1_000, 1_000, 1]
    assert stack.keys("sanitized") == set(beside)
    # ...and the digest is over exactly the sorted, newline-joined deleted keys.
    assert digest.count == 2_001
    assert digest.hexdigest() == hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()


def test_per_key_errors_are_retried_until_they_succeed(stack: CleanupStack) -> None:
    # Given keys of which every seventh is reported as SlowDown on its first two attempts...
    keys = put_many(stack, 50)
    stubborn = set(keys[::7])
    attempts: dict[str, int] = {}

    def fail(_call: int, batch: list[str]) -> set[str]:
        for key in batch:
            attempts[key] = attempts.get(key, 0) + 1
        return {key for key in batch if key in stubborn and attempts[key] <= 2}

    flaky = FlakyDeletes(stack.s3, fail)
    policy, waits = no_wait()

    deleted = delete_prefix(flaky, Prefix(BUCKETS["sanitized"], PREFIX), KeyDigest(), policy)

    # ...only the failed keys are sent again, with exponential backoff, until all are gone.
    assert deleted == 50
    assert stack.keys("sanitized") == set()
    assert flaky.calls == [50, len(stubborn), len(stubborn)]
    assert waits == [0.2, 0.4]


def test_keys_that_keep_failing_fail_the_deletion(stack: CleanupStack) -> None:
    keys = put_many(stack, 10)
    flaky = FlakyDeletes(stack.s3, lambda _call, batch: {keys[3], keys[4]} & set(batch))
    policy, waits = no_wait()

    with pytest.raises(DeletionIncomplete) as raised:
        delete_keys(flaky, BUCKETS["sanitized"], keys, policy)

    assert len(flaky.calls) == policy.attempts
    assert len(waits) == policy.attempts - 1
    assert stack.keys("sanitized") == {keys[3], keys[4]}
    # The message counts and names error codes; it never lists keys.
    assert "2 object(s)" in str(raised.value) and "SlowDown" in str(raised.value)
    assert keys[3] not in str(raised.value)


def test_backoff_is_bounded() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=2.0)

    assert [policy.delay(attempt) for attempt in range(1, 6)] == [0.5, 1.0, 2.0, 2.0, 2.0]


def test_more_than_a_thousand_keys_in_one_call_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 1000"):
        delete_keys(object(), "bucket", [f"k{i}" for i in range(1_001)], RetryPolicy())


def test_a_prefix_that_is_not_empty_is_reported(stack: CleanupStack) -> None:
    put_many(stack, 1)
    full = Prefix(BUCKETS["sanitized"], PREFIX)
    empty = Prefix(BUCKETS["analytics"], "analytics/events/partner=acme/month=2026-11/")

    prove_empty(stack.s3, [empty])
    with pytest.raises(PrefixNotEmpty, match="month=2026-11"):
        prove_empty(stack.s3, [empty, full])


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param("", id="whole-bucket"),
        pytest.param("/", id="slash"),
        pytest.param("sanitized/partner=acme", id="no-trailing-slash-matches-acme-eu"),
    ],
)
def test_a_prefix_that_could_reach_other_objects_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        Prefix("bucket", prefix)


def test_the_digest_refuses_keys_out_of_order() -> None:
    digest = KeyDigest()
    digest.add("a")
    digest.add("b")

    with pytest.raises(ValueError, match="out of order"):
        digest.add("a")
    assert KeyDigest().hexdigest() == hashlib.sha256(b"").hexdigest()
