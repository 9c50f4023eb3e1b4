"""What each stage may do in AWS: the IAM statements of every stage's role, and nothing more.

Read from the stages' code, call by call (the S3, DynamoDB, KMS, EventBridge and STS
calls each makes), and kept to the key patterns of ``ryuzen_contracts.key_layout``
(``tests/test_infra_key_layout_grants.py`` checks real keys against these patterns):

* ingest — RAW ``raw/*`` put; audit put; idempotency get/put/update/delete; the data key
  for RAW.
* sanitize — RAW ``raw/*`` get and delete (and list: a consumed object must read as
  404); SANITIZED ``sanitized/*`` put; QUARANTINE ``quarantine/*`` put; audit put; the
  data key for RAW and SANITIZED, the quarantine key; **sign**.
* analytics — SANITIZED ``sanitized/*`` get; ANALYTICS ``analytics/events/*`` put; audit
  put; the data key for both.
* bundle task — ANALYTICS and SANITIZED list and get under their prefixes; BUNDLES
  ``{p}/*`` put, get, attributes, abort; audit get/put (states); the data key to read, the
  bundles key; **sign**; ``events:PutEvents`` on its own bus.
* bundle pull — BUNDLES list (404 vs 403) and get (head) of ``{p}/*``; audit get
  (states); ``kms:GetPublicKey``; ``sts:AssumeRole`` on the presign role.
* cleanup — SANITIZED and ANALYTICS list and delete under their prefixes; BUNDLES
  receipts ``{p}/*/deletion-receipt.dsse.json`` get/put (and list); audit get/put; the
  bundles key; **sign**.
* sweep — RAW and QUARANTINE list and delete anything (the whole bucket is its job);
  audit put.

**sign** is ``kms:Sign`` and ``kms:GetPublicKey`` (the DSSE keyid) on the signing key.
No stage reads QUARANTINE, and only the bundle task and cleanup touch BUNDLES keys at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi_aws as aws

from infra.iam_statements import (
    S3_DELETE,
    S3_READ,
    S3_WRITE,
    Statement,
    allow,
    kms_through_s3,
    s3_list,
    s3_objects,
)
from infra.storage import Storage

RAW_KEYS = "raw/*"
SANITIZED_KEYS = "sanitized/*"
QUARANTINE_KEYS = "quarantine/*"
ANALYTICS_KEYS = "analytics/events/*"
RECEIPT_NAME = "deletion-receipt.dsse.json"

AUDIT_WRITE = ["dynamodb:PutItem"]
# Bundle states are items of the audit table, moved by conditional puts (bundle_state).
STATE_READ = ["dynamodb:GetItem"]
STATE_WRITE = ["dynamodb:GetItem", "dynamodb:PutItem"]
# powertools' DynamoDB persistence layer.
IDEMPOTENCY = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
BUNDLE_UPLOAD = [
    "s3:PutObject",  # multipart upload, its parts and the copy onto itself
    "s3:GetObject",  # HeadObject and the copy's source
    "s3:GetObjectAttributes",  # the composite checksum, read back
    "s3:AbortMultipartUpload",
]


@dataclass
class StageResources:
    """The resources the stages' permissions name."""

    storage: Storage
    audit_table: aws.dynamodb.Table
    idempotency_table: aws.dynamodb.Table
    signing_key: aws.kms.Key
    quarantine_hash_key: aws.kms.Key
    region: str
    partner_ids: Sequence[str]

    def bundle_keys(self, suffix: str = "*") -> list[str]:
        """Per-partner key patterns of the bundle bucket: ``{p}/<suffix>``."""
        return [f"{partner}/{suffix}" for partner in self.partner_ids]


def _sign(r: StageResources) -> Statement:
    # KmsSigner names its signatures by the SHA-256 of the public key (the DSSE keyid
    # partners can check), so it reads the public key once as well.
    return allow(["kms:Sign", "kms:GetPublicKey"], r.signing_key.arn, sid="SignAttestations")


def ingest(r: StageResources) -> list[Statement]:
    """Writes one RAW object per request; remembers Idempotency-Key answers."""
    raw = r.storage.buckets["raw"]
    return [
        s3_objects(raw, S3_WRITE, [RAW_KEYS], sid="WriteRaw"),
        kms_through_s3(r.storage.key_for("raw"), [raw], r.region, write=True, sid="EncryptRaw"),
        allow(AUDIT_WRITE, r.audit_table.arn, sid="WriteAudit"),
        allow(IDEMPOTENCY, r.idempotency_table.arn, sid="Idempotency"),
    ]


def sanitize(r: StageResources) -> list[Statement]:
    """Reads and deletes RAW; writes SANITIZED, certificates and quarantine; signs."""
    raw, sanitized = r.storage.buckets["raw"], r.storage.buckets["sanitized"]
    quarantine = r.storage.buckets["quarantine"]
    return [
        s3_objects(raw, [*S3_READ, *S3_DELETE], [RAW_KEYS], sid="ConsumeRaw"),
        # A RAW object already consumed must read as NoSuchKey (a finished redelivery),
        # which S3 only says to a caller allowed to list the bucket.
        s3_list(raw, None, sid="TellMissingRaw"),
        s3_objects(sanitized, S3_WRITE, [SANITIZED_KEYS], sid="WriteSanitized"),
        s3_objects(quarantine, S3_WRITE, [QUARANTINE_KEYS], sid="WriteQuarantine"),
        kms_through_s3(
            r.storage.key_for("raw"), [raw, sanitized], r.region, write=True, sid="WorkingData"
        ),
        kms_through_s3(
            r.storage.key_for("quarantine"), [quarantine], r.region, write=True, sid="QuarantineKey"
        ),
        allow(AUDIT_WRITE, r.audit_table.arn, sid="WriteAudit"),
        # The secret of the quarantined-value hash is this key's MAC of a fixed label.
        allow(["kms:GenerateMac"], r.quarantine_hash_key.arn, sid="HashQuarantinedValues"),
        _sign(r),
    ]


def analytics(r: StageResources) -> list[Statement]:
    """Reads SANITIZED Parquet; writes ANALYTICS Parquet."""
    sanitized, analytics_ = r.storage.buckets["sanitized"], r.storage.buckets["analytics"]
    return [
        s3_objects(sanitized, S3_READ, [SANITIZED_KEYS], sid="ReadSanitized"),
        s3_objects(analytics_, S3_WRITE, [ANALYTICS_KEYS], sid="WriteAnalytics"),
        kms_through_s3(
            r.storage.key_for("sanitized"),
            [sanitized, analytics_],
            r.region,
            write=True,
            sid="WorkingData",
        ),
        allow(AUDIT_WRITE, r.audit_table.arn, sid="WriteAudit"),
    ]


def bundle_task(r: StageResources, event_bus: aws.cloudwatch.EventBus) -> list[Statement]:
    """Reads a partner-month; uploads, verifies and records its bundle; announces it."""
    sanitized, analytics_ = r.storage.buckets["sanitized"], r.storage.buckets["analytics"]
    bundles = r.storage.buckets["bundles"]
    return [
        s3_list(analytics_, [ANALYTICS_KEYS], sid="ListMonthAnalytics"),
        s3_objects(analytics_, S3_READ, [ANALYTICS_KEYS], sid="ReadMonthAnalytics"),
        s3_list(sanitized, [SANITIZED_KEYS], sid="ListMonthCertificates"),
        s3_objects(sanitized, S3_READ, [SANITIZED_KEYS], sid="ReadMonthCertificates"),
        s3_objects(bundles, BUNDLE_UPLOAD, r.bundle_keys(), sid="DeliverBundle"),
        kms_through_s3(
            r.storage.key_for("analytics"),
            [analytics_, sanitized],
            r.region,
            write=False,
            sid="ReadWorkingData",
        ),
        kms_through_s3(
            r.storage.key_for("bundles"), [bundles], r.region, write=True, sid="EncryptBundles"
        ),
        allow(STATE_WRITE + AUDIT_WRITE, r.audit_table.arn, sid="StatesAndAudit"),
        allow(["events:PutEvents"], event_bus.arn, sid="AnnounceDelivery"),
        _sign(r),
    ]


def bundle_pull(r: StageResources, presign_role: aws.iam.Role) -> list[Statement]:
    """Lists and heads the caller's bundles; signs URLs as the presign role; serves the key."""
    bundles = r.storage.buckets["bundles"]
    return [
        # A month whose object has expired (bundle retention) must read as 404, not 403.
        s3_list(bundles, None, sid="ListBundles"),
        s3_objects(bundles, S3_READ, r.bundle_keys(), sid="HeadBundles"),
        allow(STATE_READ, r.audit_table.arn, sid="ReadStates"),
        allow(["kms:GetPublicKey"], r.signing_key.arn, sid="ServePublicKey"),
        allow(["sts:AssumeRole"], presign_role.arn, sid="SignAsPresignRole"),
    ]


def cleanup(r: StageResources) -> list[Statement]:
    """Deletes one partner-month's working objects; stores the signed receipt."""
    sanitized, analytics_ = r.storage.buckets["sanitized"], r.storage.buckets["analytics"]
    bundles = r.storage.buckets["bundles"]
    return [
        s3_list(sanitized, [SANITIZED_KEYS], sid="ListMonthSanitized"),
        s3_objects(sanitized, S3_DELETE, [SANITIZED_KEYS], sid="DeleteMonthSanitized"),
        s3_list(analytics_, [ANALYTICS_KEYS], sid="ListMonthAnalytics"),
        s3_objects(analytics_, S3_DELETE, [ANALYTICS_KEYS], sid="DeleteMonthAnalytics"),
        # A month without a receipt yet must read as NoSuchKey, not AccessDenied.
        s3_list(bundles, None, sid="TellMissingReceipt"),
        s3_objects(
            bundles, [*S3_READ, *S3_WRITE], r.bundle_keys(f"*/{RECEIPT_NAME}"), sid="StoreReceipt"
        ),
        kms_through_s3(
            r.storage.key_for("bundles"), [bundles], r.region, write=True, sid="EncryptReceipt"
        ),
        allow(STATE_WRITE + AUDIT_WRITE, r.audit_table.arn, sid="StatesAndAudit"),
        _sign(r),
    ]


def sweep(r: StageResources) -> list[Statement]:
    """Deletes RAW and quarantine objects past retention, whatever their key; lists the
    partner-month folders of SANITIZED and ANALYTICS (never their objects) to count the
    months that outlived their delivery."""
    raw, quarantine = r.storage.buckets["raw"], r.storage.buckets["quarantine"]
    sanitized, analytics_ = r.storage.buckets["sanitized"], r.storage.buckets["analytics"]
    return [
        s3_list(raw, None, sid="ListRaw"),
        s3_objects(raw, S3_DELETE, ["*"], sid="DeleteExpiredRaw"),
        s3_list(quarantine, None, sid="ListQuarantine"),
        s3_objects(quarantine, S3_DELETE, ["*"], sid="DeleteExpiredQuarantine"),
        s3_list(sanitized, [SANITIZED_KEYS], sid="ListSanitizedMonths"),
        s3_list(analytics_, [ANALYTICS_KEYS], sid="ListAnalyticsMonths"),
        allow(AUDIT_WRITE, r.audit_table.arn, sid="WriteAudit"),
    ]
