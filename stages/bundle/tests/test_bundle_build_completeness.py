"""The month is complete before it is signed: every certified batch is whole in ANALYTICS.

Cleanup deletes SANITIZED once a month is delivered, so a bundle signed while analytics
has not (fully) written a batch would lose that batch's events for good. Each certificate
states the batch's sanitized events; each ANALYTICS object records what analytics read
and dropped as duplicates. An incomplete month fails at ``check_complete`` before
anything is uploaded, and a retry once analytics has caught up delivers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from bundle_build_stack import BUCKETS, BundleStack
from bundle_build_support import MONTH, NOW, analytics_metadata, batch, parquet_bytes
from ryuzen_bundle.bundle_builder import BuildFailed, BuildRequest, BundleServices, build_bundle
from ryuzen_bundle.month_objects import IncompleteMonth, MonthObjectsError, analytics_facts
from ryuzen_contracts.audit_log import AuditEventType
from ryuzen_contracts.bundle_state import BundleState
from ryuzen_contracts.key_layout import analytics_key

DAY_4 = datetime(2026, 10, 4, 9, tzinfo=UTC)
DAY_12 = datetime(2026, 10, 12, 15, tzinfo=UTC)


class CountingS3:
    """The S3 client, counting the calls that would start an upload."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.uploads_started = 0

    def __getattr__(self, name: str) -> Any:
        if name == "create_multipart_upload":
            self.uploads_started += 1
        return getattr(self._client, name)


def build_counting(stack: BundleStack) -> tuple[CountingS3, Any]:
    s3 = CountingS3(stack.s3)
    services = BundleServices(s3, stack.events, stack.audit, stack.states, stack.signer)
    try:
        return s3, build_bundle(
            services,
            stack.target,
            BuildRequest("acme", MONTH),
            now=lambda: NOW,
            tuning=stack.tuning(),
        )
    except BuildFailed as failure:
        return s3, failure


def two_day_batch(n: int, seed: int) -> pl.DataFrame:
    """One batch whose rows were received on two days: two ANALYTICS objects."""
    data = batch(n, DAY_4, seed=seed)
    later = pl.int_range(pl.len()) >= n // 2
    return data.with_columns(
        pl.when(later)
        .then(pl.col("received_at") + timedelta(days=1))
        .otherwise(pl.col("received_at"))
        .alias("received_at")
    )


def assert_failed_before_upload(
    stack: BundleStack, s3: CountingS3, outcome: Any, reason: str
) -> None:
    assert isinstance(outcome, BuildFailed) and outcome.step == "check_complete"
    assert isinstance(outcome.error, IncompleteMonth)
    assert outcome.reason == reason
    state = stack.state()
    assert state is not None and state.state is BundleState.BUILDING
    errors = [e for e in stack.audit_events() if e.event_type is AuditEventType.ERROR]
    assert [dict(e.detail) for e in errors] == [
        {
            "step": "check_complete",
            "error": "IncompleteMonth",
            "reason": reason,
            "bundle_key": "acme/2026-10/ryuzen-telemetry-acme-2026-10.zip",
        }
    ]
    kinds = {e.event_type for e in stack.audit_events()}
    assert kinds == {AuditEventType.ERROR}
    assert s3.uploads_started == 0 and stack.bundle_keys() == [] and stack.open_uploads() == []


def test_a_complete_month_is_delivered(stack: BundleStack) -> None:
    # Given a batch over two days with 3 in-batch duplicates analytics dropped, a plain
    # batch, and a batch whose every event was quarantined (no ANALYTICS object at all)
    spanning = stack.put_batch(two_day_batch(10, seed=1), duplicates_removed=3)
    plain = stack.put_batch(batch(6, DAY_12, seed=2))
    stack.put_certificate(spanning, 0)
    stack.put_certificate(plain, 1)
    stack.put_certificate("01JDQ7Z8Y9X0W1V2T3S4R5Q6P7", 4)  # sanitized 0

    # When the bundle is built
    s3, report = build_counting(stack)

    # Then it is delivered with every event
    assert not isinstance(report, BuildFailed), report
    assert report.events == 16 and report.certificates == 3
    assert s3.uploads_started == 1


@pytest.mark.parametrize(
    ("lag", "reason"),
    [
        pytest.param("missing", "{plain}: no object (6 sanitized)", id="missing-object"),
        pytest.param(
            "one-day-missing", "{spanning}: 5 rows + 3 duplicates of 13 sanitized", id="short"
        ),
        pytest.param(
            "stale-object", "{plain}: 6 rows + 0 duplicates of 9 sanitized", id="stale-object"
        ),
    ],
)
def test_an_incomplete_month_fails_before_anything_is_uploaded(
    stack: BundleStack, lag: str, reason: str
) -> None:
    # Given a month whose certificates state more than ANALYTICS holds
    spanning_data = two_day_batch(10, seed=1)
    spanning = stack.put_batch(spanning_data, duplicates_removed=3)
    plain_data = batch(6, DAY_12, seed=2)
    plain = stack.put_batch(plain_data)
    stack.put_certificate(spanning, 0)
    stack.put_certificate(plain, 1)
    plain_key = analytics_key("acme", MONTH, 12, plain)
    second_day_key = analytics_key("acme", MONTH, 5, spanning)
    if lag == "missing":  # analytics has not processed the batch yet
        removed = {plain_key: stack.s3.get_object(Bucket=BUCKETS["analytics"], Key=plain_key)}
    elif lag == "one-day-missing":  # analytics wrote the first day's object, then stopped
        key = second_day_key
        removed = {key: stack.s3.get_object(Bucket=BUCKETS["analytics"], Key=key)}
    else:  # sanitize re-ran the batch with more events; analytics has the old object
        stack.put_certificate(plain, 1, sanitized=9)
        removed = {}
    saved = {key: answer["Body"].read() for key, answer in removed.items()}
    for key in saved:
        stack.s3.delete_object(Bucket=BUCKETS["analytics"], Key=key)

    # When the bundle is built
    s3, outcome = build_counting(stack)

    # Then it fails at check_complete, saying which batch, and nothing was uploaded
    expected = "1 of 2 certified batches incomplete in ANALYTICS: " + reason.format(
        plain=plain, spanning=spanning
    )
    assert_failed_before_upload(stack, s3, outcome, expected)

    # And once analytics has caught up, the retry delivers the whole month
    for key, body in saved.items():
        stack.s3.put_object(Bucket=BUCKETS["analytics"], Key=key, Body=body)
    if lag == "stale-object":
        grown = pl.concat([plain_data, batch(3, DAY_12, seed=3, batch_id=plain)])
        stack.put_batch(grown)
    report = stack.build()
    assert report.events == 16 + (3 if lag == "stale-object" else 0)
    final = stack.state()
    assert final is not None and final.state is BundleState.DELIVERED


def test_objects_written_before_analytics_recorded_counts_are_held_to_a_bound(
    stack: BundleStack,
) -> None:
    # Given objects without the counts: 8 rows of a batch certified with 10 sanitized
    # events (in-batch duplicates can explain 2) and 5 rows certified with 4
    within = stack.put_batch(batch(8, DAY_4, seed=1), recorded=False)
    beyond = stack.put_batch(batch(5, DAY_12, seed=2), recorded=False)
    stack.put_certificate(within, 0, sanitized=10)
    stack.put_certificate(beyond, 0, sanitized=4)

    # When the bundle is built, the batch holding more rows than certified fails it
    s3, outcome = build_counting(stack)
    assert_failed_before_upload(
        stack,
        s3,
        outcome,
        f"1 of 2 certified batches incomplete in ANALYTICS: {beyond}: 5 rows of 4 sanitized",
    )

    # And with that certificate right, 0 < rows <= sanitized is accepted for both
    stack.put_certificate(beyond, 0, sanitized=5)
    assert stack.build().events == 13


def test_many_incomplete_batches_are_counted_and_a_few_named(stack: BundleStack) -> None:
    batch_ids = [f"01JDQ7Z8Y9X0W1V2T3S4R5Q6P{i}" for i in range(5)]
    for batch_id in batch_ids:
        stack.put_certificate(batch_id, 0, sanitized=2)
    _, outcome = build_counting(stack)
    assert isinstance(outcome, BuildFailed) and outcome.reason is not None
    assert outcome.reason.startswith("5 of 5 certified batches incomplete in ANALYTICS: ")
    assert outcome.reason.endswith("; and 2 more")
    assert outcome.reason.count("no object (2 sanitized)") == 3


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param({"ryuzen.sanitized_rows": "3"}, id="half-recorded"),
        pytest.param(analytics_metadata(3) | {"ryuzen.duplicates_removed": "-1"}, id="negative"),
        pytest.param(analytics_metadata(3) | {"ryuzen.sanitized_rows": "²"}, id="not-ascii"),
    ],
)
def test_malformed_recorded_counts_are_refused(tmp_path: Any, metadata: dict[str, str]) -> None:
    path = tmp_path / "object.parquet"
    path.write_bytes(parquet_bytes(batch(3, DAY_4, seed=1), metadata))
    with pytest.raises(MonthObjectsError, match="malformed ryuzen row counts"):
        analytics_facts(path)


def test_events_no_certificate_covers_never_reach_a_partner(stack: BundleStack) -> None:
    # Given a certified batch and a batch whose certificate is missing (sanitize's
    # certificate write was lost, or the object came from elsewhere)
    certified = stack.put_batch(batch(6, DAY_4, seed=1))
    orphan = stack.put_batch(batch(4, DAY_12, seed=2), certified=False)

    # When the bundle is built, it fails before anything is uploaded, naming the batch
    s3, outcome = build_counting(stack)
    assert_failed_before_upload(
        stack,
        s3,
        outcome,
        f"1 batches in ANALYTICS without a certificate: {orphan}: 4 rows",
    )

    # And once the certificate is there, the whole month is delivered
    stack.put_certificate(orphan, 0)
    assert stack.build().events == 10
    assert certified != orphan
