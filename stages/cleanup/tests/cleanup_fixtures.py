"""Test helpers: a month of working objects, bundle states, events, and S3 clients that fail.

Built here from the contracts' key layout rather than by running the other stages: a
stage's tests run in a venv holding only that stage and the contracts.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ryuzen_cleanup.bundle_delivered import BundleDelivered
from ryuzen_cleanup.delete_old_telemetry import (
    CleanupReport,
    CleanupServices,
    CleanupTarget,
    clean_partner_month,
)
from ryuzen_cleanup.prefix_deletion import RetryPolicy
from ryuzen_contracts.audit_log import AuditEvent, AuditLog
from ryuzen_contracts.bundle_state import BundleState, BundleStateStore, ConcurrentTransition
from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.key_layout import (
    analytics_key,
    bundle_key,
    certificate_key,
    deletion_receipt_key,
    quarantine_key,
    raw_key,
    sanitized_key,
)
from ryuzen_contracts.signing import LocalSigner
from ryuzen_contracts.tables import audit_table_definition

EVENTS = Path(__file__).parent / "events"
REGION = "eu-west-1"
PARTNER = "acme"
MONTH = "2026-11"
NOW = datetime(2026, 12, 1, 3, 15, tzinfo=UTC)
# Hyphenated like real bucket names: they are not valid audit-detail keys, roles are.
BUCKETS = {
    "raw": "ryuzen-test-raw",
    "sanitized": "ryuzen-test-sanitized",
    "quarantine": "ryuzen-test-quarantine",
    "analytics": "ryuzen-test-analytics",
    "bundles": "ryuzen-test-bundles",
}
AUDIT_TABLE = "ryuzen-test-audit"
NO_WAIT = RetryPolicy(sleep=lambda _seconds: None)


def bundle_sha256(partner: str, month: str) -> str:
    """A stand-in bundle digest, distinct per partner-month."""
    return hashlib.sha256(f"bundle {partner} {month}".encode()).hexdigest()


def delivered(
    partner: str = PARTNER, month: str = MONTH, sha256: str | None = None
) -> BundleDelivered:
    """The detail of a ``BundleDelivered`` event."""
    return BundleDelivered(
        partner=partner,
        month=month,
        bundle_key=bundle_key(partner, month),
        sha256=sha256 or bundle_sha256(partner, month),
        size=482133,
    )


def eventbridge_event(
    partner: str = PARTNER, month: str = MONTH, detail: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The EventBridge event as the rule delivers it (tests/events/bundle_delivered.json),
    for ``partner``'s ``month``, with ``detail`` overriding any of its fields."""
    event = json.loads((EVENTS / "bundle_delivered.json").read_text(encoding="utf-8"))
    event["detail"].update(
        partner=partner,
        month=month,
        bundle_key=bundle_key(partner, month),
        sha256=bundle_sha256(partner, month),
    )
    event["detail"].update(detail or {})
    return dict(event)


def sqs_batch(*bodies: str) -> dict[str, Any]:
    """An SQS batch whose message bodies are ``bodies`` (message ids m0, m1, ...)."""
    template = json.loads((EVENTS / "sqs_batch.json").read_text(encoding="utf-8"))
    record = template["Records"][0]
    template["Records"] = [
        {**copy.deepcopy(record), "messageId": f"m{i}", "body": body}
        for i, body in enumerate(bodies)
    ]
    return dict(template)


@dataclass
class CleanupStack:
    """moto S3 + DynamoDB with the stage's buckets and the audit table, and shortcuts."""

    s3: Any
    ddb: Any
    signer: LocalSigner
    audit: AuditLog = field(init=False)
    states: BundleStateStore = field(init=False)

    def __post_init__(self) -> None:
        self.audit = AuditLog(self.ddb, AUDIT_TABLE)
        self.states = BundleStateStore(self.ddb, AUDIT_TABLE)

    @property
    def target(self) -> CleanupTarget:
        return CleanupTarget(BUCKETS["sanitized"], BUCKETS["analytics"], BUCKETS["bundles"])

    def services(self, s3: Any = None, states: Any = None) -> CleanupServices:
        return CleanupServices(s3 or self.s3, self.audit, states or self.states, self.signer)

    def clean(
        self, event: BundleDelivered | None = None, *, s3: Any = None, states: Any = None
    ) -> CleanupReport:
        return clean_partner_month(
            self.services(s3, states),
            self.target,
            event or delivered(),
            now=lambda: NOW,
            policy=NO_WAIT,
        )

    # -- putting objects in place --------------------------------------------------------
    def put(self, role: str, key: str, body: bytes = b"x") -> str:
        self.s3.put_object(Bucket=BUCKETS[role], Key=key, Body=body)
        return key

    def put_month(self, partner: str = PARTNER, month: str = MONTH, batches: int = 2) -> set[str]:
        """A partner-month's working objects as sanitize and analytics leave them."""
        keys = set()
        for _ in range(batches):
            batch_id = new_ulid(NOW)
            keys.add(self.put("sanitized", sanitized_key(partner, month, batch_id)))
            keys.add(self.put("sanitized", certificate_key(partner, month, batch_id)))
            keys.add(self.put("analytics", analytics_key(partner, month, 3, batch_id)))
        return keys

    def put_bystanders(self) -> dict[str, set[str]]:
        """Objects cleanup must never touch: other partners, other months, other buckets."""
        batch_id = new_ulid(NOW)
        return {
            "sanitized": {
                self.put("sanitized", sanitized_key("acme-eu", MONTH, batch_id)),
                self.put("sanitized", sanitized_key(PARTNER, "2026-12", batch_id)),
            },
            "analytics": {
                self.put("analytics", analytics_key("nimbus-ai", MONTH, 3, batch_id)),
                self.put("analytics", analytics_key(PARTNER, "2026-10", 31, batch_id)),
            },
            "raw": {self.put("raw", raw_key(NOW, batch_id))},
            "quarantine": {self.put("quarantine", quarantine_key(NOW.date(), batch_id))},
            "bundles": {self.put("bundles", bundle_key(PARTNER, MONTH), b"zip")},
        }

    def keys(self, role: str) -> set[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        return {
            item["Key"]
            for page in paginator.paginate(Bucket=BUCKETS[role])
            for item in page.get("Contents", [])
        }

    def receipt_bytes(self, partner: str = PARTNER, month: str = MONTH) -> bytes:
        key = deletion_receipt_key(partner, month)
        return bytes(self.s3.get_object(Bucket=BUCKETS["bundles"], Key=key)["Body"].read())

    # -- bundle states ---------------------------------------------------------------------
    def move_to(
        self,
        state: BundleState,
        partner: str = PARTNER,
        month: str = MONTH,
        sha256: str | None = None,
    ) -> None:
        """Walk the month's bundle state up to ``state`` as the builder does."""
        path = [BundleState.BUILDING, BundleState.BUILT, BundleState.DELIVERED]
        for step in path[: path.index(state) + 1]:
            attributes: dict[str, str | int | bool] = {}
            if step is BundleState.DELIVERED:
                attributes = {
                    "sha256": sha256 or bundle_sha256(partner, month),
                    "checksum_verified": True,
                }
            self.states.transition(partner, month, step, attributes=attributes, now=NOW)

    def events(self, partner: str = PARTNER, month: str = MONTH) -> list[AuditEvent]:
        return self.audit.for_partner_month(partner, month)


def fresh_stack(moto_aws: tuple[Any, Any, Any], signer: LocalSigner) -> CleanupStack:
    """Empty buckets and audit table (also called per hypothesis example)."""
    mock, s3, ddb = moto_aws
    mock.reset()
    for bucket in BUCKETS.values():
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    ddb.create_table(**audit_table_definition(AUDIT_TABLE))
    return CleanupStack(s3, ddb, signer)


class FlakyDeletes:
    """An S3 client whose ``DeleteObjects`` reports chosen keys as failed, without deleting them.

    ``fail(attempt, keys)`` returns the keys to fail on that call (1-based across calls);
    every other call and every other key goes to the real (moto) client.
    """

    def __init__(self, s3: Any, fail: Callable[[int, list[str]], set[str]]) -> None:
        self._s3 = s3
        self._fail = fail
        self.calls: list[int] = []  # keys per DeleteObjects call

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def delete_objects(self, *, Bucket: str, Delete: dict[str, Any]) -> dict[str, Any]:
        keys = [entry["Key"] for entry in Delete["Objects"]]
        self.calls.append(len(keys))
        failing = self._fail(len(self.calls), keys)
        passing = [key for key in keys if key not in failing]
        if passing:
            self._s3.delete_objects(
                Bucket=Bucket, Delete={"Objects": [{"Key": k} for k in passing], "Quiet": True}
            )
        return {
            "Errors": [
                {"Key": key, "Code": "SlowDown", "Message": "Please reduce your request rate."}
                for key in keys
                if key in failing
            ]
        }


class FailingPut:
    """An S3 client whose ``PutObject`` to one key raises, as a crash at that moment would."""

    def __init__(self, s3: Any, key: str) -> None:
        self._s3 = s3
        self._key = key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def put_object(self, **kwargs: Any) -> Any:
        if kwargs["Key"] == self._key:
            raise ConnectionError("simulated crash before the receipt was written")
        return self._s3.put_object(**kwargs)


class FailingTransition:
    """A state store whose transitions raise, as a crash before the commit point would."""

    def __init__(self, states: BundleStateStore) -> None:
        self._states = states

    def get(self, partner: str, month: str) -> Any:
        return self._states.get(partner, month)

    def transition(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("simulated crash before the state write")


class LambdaContext:
    """The attributes of a Lambda context that powertools' logger reads."""

    function_version = "$LATEST"
    memory_limit_in_mb = 256
    aws_request_id = "request-1"
    log_stream_name = "stream"

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class RacedTransition:
    """A state store where another run commits ``CLEANED`` just before this one's write."""

    def __init__(self, states: BundleStateStore) -> None:
        self._states = states

    def get(self, partner: str, month: str) -> Any:
        return self._states.get(partner, month)

    def transition(self, partner: str, month: str, to: BundleState, **kwargs: Any) -> Any:
        self._states.transition(partner, month, to, **kwargs)  # the other run wins
        raise ConcurrentTransition(f"bundle {partner} {month}: state changed")
