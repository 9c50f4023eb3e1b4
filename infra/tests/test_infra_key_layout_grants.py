"""The IAM key patterns and S3 notification filters cover the keys the contracts' key
layout really makes, and nothing of another kind."""

from __future__ import annotations

from datetime import UTC, date, datetime
from fnmatch import fnmatchcase

import pytest
from ryuzen_contracts import key_layout

from infra import stage_permissions as grants
from infra.tests.pulumi_harness import ProgramRun

BATCH = "01JD3Z8Q4W5XKQ6Y7Z8A9B0C1D"
WHEN = datetime(2026, 10, 31, 23, 59, tzinfo=UTC)
PARTNER, MONTH = "acme", "2026-10"

KEYS = {
    "raw": key_layout.raw_key(WHEN, BATCH),
    "sanitized": key_layout.sanitized_key(PARTNER, MONTH, BATCH),
    "certificate": key_layout.certificate_key(PARTNER, MONTH, BATCH),
    "quarantine": key_layout.quarantine_key(date(2026, 10, 31), BATCH),
    "quarantine-raw": key_layout.quarantine_raw_key(date(2026, 10, 31), BATCH),
    "analytics": key_layout.analytics_key(PARTNER, MONTH, 31, BATCH),
    "bundle": key_layout.bundle_key(PARTNER, MONTH),
    "receipt": key_layout.deletion_receipt_key(PARTNER, MONTH),
}


@pytest.mark.parametrize(
    ("pattern", "matching"),
    [
        pytest.param(grants.RAW_KEYS, {"raw"}, id="raw"),
        pytest.param(grants.SANITIZED_KEYS, {"sanitized", "certificate"}, id="sanitized"),
        pytest.param(grants.QUARANTINE_KEYS, {"quarantine", "quarantine-raw"}, id="quarantine"),
        pytest.param(grants.ANALYTICS_KEYS, {"analytics"}, id="analytics"),
        pytest.param(f"{PARTNER}/*", {"bundle", "receipt"}, id="partner-prefix"),
        pytest.param(f"{PARTNER}/*/{grants.RECEIPT_NAME}", {"receipt"}, id="receipt"),
        pytest.param(f"{PARTNER}/*/ryuzen-telemetry-{PARTNER}-*.zip", {"bundle"}, id="archive"),
    ],
)
def test_patterns_match_exactly_their_kind_of_key(pattern: str, matching: set[str]) -> None:
    # IAM's "*" spans "/" like fnmatch's does.
    assert {kind for kind, key in KEYS.items() if fnmatchcase(key, pattern)} == matching


def test_another_partners_keys_are_outside_the_partner_patterns() -> None:
    other = key_layout.bundle_key("acme-labs", MONTH)
    assert not fnmatchcase(other, f"{PARTNER}/*")  # the trailing "/" keeps prefixes apart


def test_notifications_fire_for_the_objects_the_next_stage_consumes(any_run: ProgramRun) -> None:
    filters = {
        n.inputs["bucket"]: n.inputs["queues"][0]
        for n in any_run.of_type("aws:s3/bucketNotification:BucketNotification")
    }
    buckets = any_run.outputs["buckets"]

    def fires(bucket: str, key: str) -> bool:
        rule = filters[buckets[bucket]]
        return key.startswith(rule["filterPrefix"]) and key.endswith(rule.get("filterSuffix", ""))

    assert fires("raw", KEYS["raw"])
    assert fires("sanitized", KEYS["sanitized"])
    # A certificate is written beside each Parquet file; it is no work for analytics.
    assert not fires("sanitized", KEYS["certificate"])
