"""The fault-injection harness: the chosen call fails, every other call is untouched."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from ryuzen_contracts.fault_injection import CRASH, Fault, SimulatedCrash, inject, remove
from ryuzen_contracts.pipeline_steps import failure_detail, step, step_of

REGION = "eu-west-1"
BUCKET = "fault-injection"


@pytest.fixture
def s3(fake_aws_env):
    # Inside this package's session-wide moto mock when it is active (mocks nest and share
    # state), so the bucket is created fresh and removed again.
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield client
        for key in _keys(client):
            client.delete_object(Bucket=BUCKET, Key=key)
        client.delete_bucket(Bucket=BUCKET)


def _keys(s3) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_only_the_chosen_call_fails_and_nothing_of_it_happens(s3) -> None:
    faults = inject(s3, [Fault("PutObject", "SlowDown", call=2)])
    s3.put_object(Bucket=BUCKET, Key="one", Body=b"1")
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=BUCKET, Key="two", Body=b"2")
    s3.put_object(Bucket=BUCKET, Key="three", Body=b"3")

    assert caught.value.response["Error"]["Code"] == "SlowDown"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert sorted(_keys(s3)) == ["one", "three"]
    assert faults.fired == [("PutObject", 2)]
    assert faults.calls["PutObject"] == 3 and faults.calls["ListObjectsV2"] == 1


def test_times_fails_consecutive_calls_then_recovers(s3) -> None:
    inject(s3, [Fault("PutObject", "InternalError", call=1, times=2)])
    for _ in range(2):
        with pytest.raises(ClientError):
            s3.put_object(Bucket=BUCKET, Key="k", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"x")
    assert _keys(s3) == ["k"]


def test_crash_is_not_an_aws_error(s3) -> None:
    inject(s3, [Fault("DeleteObject", CRASH)])
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"x")
    with pytest.raises(SimulatedCrash):
        s3.delete_object(Bucket=BUCKET, Key="k")
    assert _keys(s3) == ["k"]


def test_remove_restores_the_client(s3) -> None:
    faults = inject(s3, [Fault("PutObject", "SlowDown", times=100)])
    remove(s3, faults)
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"x")
    assert _keys(s3) == ["k"] and faults.fired == []


def test_fault_numbers_count_from_one() -> None:
    with pytest.raises(ValueError, match="count from 1"):
        Fault("PutObject", call=0)


def test_a_step_names_where_a_failure_happened_and_keeps_its_type() -> None:
    with pytest.raises(ValueError) as caught, step("write_sanitized"):
        raise ValueError("secret value ops@example.com")
    detail = failure_detail(caught.value)
    assert detail == {"step": "write_sanitized", "error": "ValueError"}
    assert "ops@example.com" not in str(detail)


def test_the_innermost_step_wins_and_untagged_failures_say_unknown() -> None:
    with pytest.raises(KeyError) as caught, step("outer"), step("inner"):
        raise KeyError("k")
    assert step_of(caught.value) == "inner"
    assert failure_detail(RuntimeError("x")) == {"step": "unknown", "error": "RuntimeError"}


def test_a_modeled_error_is_raised_as_the_clients_own_class(s3) -> None:
    inject(s3, [Fault("GetObject", "NoSuchKey")])
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=BUCKET, Key="k")


def test_a_hook_counts_only_matching_calls_and_can_fail_after_landing(s3) -> None:
    from ryuzen_contracts.fault_injection import Hook, Installed

    landed = Installed(s3, Hook("s3", Fault("PutObject", "InternalError"), {"Key": "b"}, True))
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"1")  # not counted: another key
    with pytest.raises(ClientError):
        s3.put_object(Bucket=BUCKET, Key="b", Body=b"2")
    landed.remove()

    # the write went through before its answer was "lost"
    assert sorted(_keys(s3)) == ["a", "b"]
    assert landed.fired == [("PutObject", 1)] and landed.raised == ["ClientError"]


def test_a_rival_acts_just_before_the_call_which_then_goes_through(s3) -> None:
    from ryuzen_contracts.fault_injection import Hook, Installed

    def rival() -> None:
        s3.put_object(Bucket=BUCKET, Key="rival", Body=b"first")

    hook = Installed(s3, Hook("s3", Fault("PutObject"), {"Key": "mine"}, rival=rival))
    s3.put_object(Bucket=BUCKET, Key="mine", Body=b"second")
    hook.remove()
    assert sorted(_keys(s3)) == ["mine", "rival"] and hook.fired == [("PutObject", 1)]
