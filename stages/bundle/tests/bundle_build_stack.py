"""The moto world the builder tests run in: S3 buckets, the audit table, an event bus
routed to a queue, a local signing key — and ``BundleStack``, which puts a month of
ANALYTICS data in place, runs the builder and reads back what it did.

A plain module, imported by name (``from bundle_build_stack import BundleStack``): a test
module importing ``conftest`` gets whichever conftest pytest loaded last when several
packages' tests run together. ``conftest.py`` only wraps this in fixtures.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import polars as pl
from bundle_build_support import MONTH, NOW, analytics_metadata, certificate, parquet_bytes
from ryuzen_bundle.bundle_builder import (
    BuildRequest,
    BuildTuning,
    BundleReport,
    BundleServices,
    BundleTarget,
    build_bundle,
)
from ryuzen_contracts.audit_log import AuditEvent, AuditLog
from ryuzen_contracts.bundle_state import BundleStateRecord, BundleStateStore
from ryuzen_contracts.key_layout import analytics_key, bundle_key, certificate_key
from ryuzen_contracts.signing import LocalSigner, generate_local_key
from ryuzen_contracts.stack_config import StackConfig
from ryuzen_contracts.tables import audit_table_definition

REGION = "eu-west-1"
ROOT = next(p for p in Path(__file__).resolve().parents if (p / "Pulumi.yaml").exists())
BUCKETS = {"analytics": "analytics", "sanitized": "sanitized", "bundles": "bundles"}
EVENT_BUS = "ryuzen-bus"


@dataclass
class BundleStack:
    """Clients of one mocked AWS, the builder's services over them, and read-back helpers."""

    s3: Any
    ddb: Any
    events: Any
    sqs: Any
    queue_url: str
    signer: LocalSigner
    config: StackConfig
    work_dir: Path
    audit: AuditLog = field(init=False)
    states: BundleStateStore = field(init=False)
    # (partner, month, batch id) -> the SANITIZED rows its analytics objects account for
    sanitized_rows: dict[tuple[str, str, str], int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.audit = AuditLog(self.ddb, "audit")
        self.states = BundleStateStore(self.ddb, "audit")

    @property
    def services(self) -> BundleServices:
        return BundleServices(self.s3, self.events, self.audit, self.states, self.signer)

    @property
    def target(self) -> BundleTarget:
        return BundleTarget(
            BUCKETS["analytics"], BUCKETS["sanitized"], BUCKETS["bundles"], EVENT_BUS, self.config
        )

    def tuning(self, **overrides: Any) -> BuildTuning:
        return BuildTuning(work_dir=self.work_dir, **overrides)

    # -- putting a month in place ------------------------------------------------------
    def put_batch(
        self,
        data: pl.DataFrame,
        partner: str = "acme",
        month: str = MONTH,
        *,
        duplicates_removed: int = 0,
        recorded: bool = True,
        certified: bool = True,
    ) -> str:
        """Write one batch's rows as the analytics stage would: one object per receipt day,
        each recording the batch's SANITIZED rows and in-batch duplicates (``recorded=False``:
        as an analytics stage that did not record them yet); and, unless ``certified`` is
        False, the batch's zero-PII certificate as sanitize would (nothing quarantined; a
        test's own ``put_certificate`` replaces it)."""
        batch_ids = data.get_column("batch_id").unique().to_list()
        assert len(batch_ids) == 1, "one batch per call"
        batch_id = str(batch_ids[0])
        sanitized = data.height + duplicates_removed
        metadata = analytics_metadata(sanitized, duplicates_removed) if recorded else None
        days = data.get_column("received_at").dt.day().unique().to_list()
        for day in days:
            part = data.filter(pl.col("received_at").dt.day() == day)
            self.s3.put_object(
                Bucket=BUCKETS["analytics"],
                Key=analytics_key(partner, month, day, batch_id),
                Body=parquet_bytes(part, metadata),
            )
        self.sanitized_rows[(partner, month, batch_id)] = sanitized
        if certified:
            self.put_certificate(batch_id, 0, partner=partner, month=month)
        return batch_id

    def put_certificate(
        self,
        batch_id: str,
        quarantined: int,
        sanitized: int | None = None,
        partner: str = "acme",
        month: str = MONTH,
    ) -> bytes:
        """A certificate for the batch; ``sanitized`` defaults to what ``put_batch`` wrote
        for it (0 when nothing was: every event quarantined)."""
        if sanitized is None:
            sanitized = self.sanitized_rows.get((partner, month, batch_id), 0)
        body = certificate(self.signer, partner, month, batch_id, quarantined, sanitized)
        self.s3.put_object(
            Bucket=BUCKETS["sanitized"], Key=certificate_key(partner, month, batch_id), Body=body
        )
        return body

    # -- building and reading back -------------------------------------------------------
    def build(
        self,
        partner: str = "acme",
        month: str = MONTH,
        *,
        tuning: BuildTuning | None = None,
        **request: Any,
    ) -> BundleReport:
        return build_bundle(
            self.services,
            self.target,
            BuildRequest(partner, month, **request),
            now=lambda: NOW,
            tuning=tuning or self.tuning(),
        )

    def bundle_bytes(self, partner: str = "acme", month: str = MONTH) -> bytes:
        key = bundle_key(partner, month)
        return bytes(self.s3.get_object(Bucket=BUCKETS["bundles"], Key=key)["Body"].read())

    def bundle_zip(self, partner: str = "acme", month: str = MONTH) -> zipfile.ZipFile:
        return zipfile.ZipFile(io.BytesIO(self.bundle_bytes(partner, month)))

    def state(self, partner: str = "acme", month: str = MONTH) -> BundleStateRecord | None:
        return self.states.get(partner, month)

    def audit_events(self, partner: str = "acme", month: str = MONTH) -> list[AuditEvent]:
        return self.audit.for_partner_month(partner, month)

    def delivered_events(self) -> list[dict[str, Any]]:
        """Every BundleDelivered event the bus routed to the test queue."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        return [json.loads(message["Body"]) for message in messages]

    def bundle_keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=BUCKETS["bundles"])
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def open_uploads(self) -> list[str]:
        listing = self.s3.list_multipart_uploads(Bucket=BUCKETS["bundles"])
        return [item["Key"] for item in listing.get("Uploads", [])]


def provision_resources(s3: Any, ddb: Any, events: Any, sqs: Any) -> str:
    """The buckets, the audit table, and the event bus whose BundleDelivered rule feeds a
    queue the tests read; returns that queue's URL."""
    for bucket in BUCKETS.values():
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    ddb.create_table(**audit_table_definition("audit"))
    events.create_event_bus(Name=EVENT_BUS)
    queue_url = str(sqs.create_queue(QueueName="bundle-delivered")["QueueUrl"])
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="bundle-delivered",
        EventBusName=EVENT_BUS,
        EventPattern=json.dumps(
            {"source": ["ryuzen.telemetry"], "detail-type": ["BundleDelivered"]}
        ),
    )
    events.put_targets(
        Rule="bundle-delivered", EventBusName=EVENT_BUS, Targets=[{"Id": "q", "Arn": queue_arn}]
    )
    return queue_url


def make_stack(config: StackConfig, tmp_path: Path) -> BundleStack:
    s3 = boto3.client("s3", region_name=REGION)
    ddb = boto3.client("dynamodb", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = provision_resources(s3, ddb, events, sqs)
    signer = generate_local_key(tmp_path / "key.pem", tmp_path / "key.pub.pem")
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    return BundleStack(s3, ddb, events, sqs, queue_url, signer, config, work_dir)
