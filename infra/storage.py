"""Storage: every bucket of the stack, its KMS keys, and the guards each bucket gets.

Seven buckets (DESIGN §5): RAW, SANITIZED, ANALYTICS, QUARANTINE, partner BUNDLES,
ARTIFACTS (the Lambda zips) and the Athena results. Each one gets, as the separate
resources pulumi-aws 7 wants:

* SSE-KMS by default with an S3 Bucket Key (one KMS call per bucket and data key, not
  per object, and the encryption context every role's KMS grant is scoped by);
* all four public-access blocks, and ``BucketOwnerEnforced`` (ACLs off: the bucket
  policy and IAM are the only ways in);
* a bucket policy that refuses anything but TLS 1.2+;
* lifecycle backstops: RAW 1 day (S3 counts whole days; the hourly sweep and sanitize
  itself delete far sooner), QUARANTINE its retention days, SANITIZED/ANALYTICS a long
  backstop for a month that never gets delivered, BUNDLES one rule per partner prefix
  with that partner's retention plus a bucket-wide backstop (below), Athena results a
  week; abandoned multipart uploads go after a day everywhere.

The BUNDLES backstop expires every object after the longest retention of any partner in
the stack config. Removing a partner removes its own rule, and without the backstop its
bundles and receipts under ``{p}/`` would never expire (DESIGN §5); with it they go at
the latest after that many days. It never cuts a configured partner's retention short:
where expiration rules overlap, S3 applies the shortest, which is the partner's own.

Versioning stays off (no ``BucketVersioning`` resource): on a working bucket a delete
must really delete, and the retention promises hold only if no old version survives.

Keys: QUARANTINE has its own (DESIGN §5: quarantined lines are the only place a raw
value may survive, so its key can be revoked or scheduled for deletion alone); partner
BUNDLES have their own (the one key partners' roles may decrypt with); every other
bucket shares the working-data key. The key policies are AWS's default (the account
root, so IAM decides); who may use which key is in each role's policy, through S3 only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
from ryuzen_contracts.stack_config import Partner

# bucket role -> the key that encrypts it
BUCKET_KEYS = {
    "raw": "data",
    "sanitized": "data",
    "analytics": "data",
    "quarantine": "quarantine",
    "bundles": "bundles",
    "artifacts": "data",
    "athena": "data",
}
RAW_BACKSTOP_DAYS = 1
ATHENA_RESULTS_DAYS = 7
ABANDONED_UPLOAD_DAYS = 1
BUNDLE_BACKSTOP_RULE = "bundle-backstop"


@dataclass
class StorageArgs:
    """What storage needs from the stack config."""

    partners: Sequence[Partner]
    quarantine_days: int
    working_backstop_days: int
    # True outside dev: keys, the bundle bucket and their data survive a mistaken destroy.
    protect: bool


class Storage(pulumi.ComponentResource):
    """The stack's buckets and their KMS keys."""

    buckets: dict[str, aws.s3.Bucket]
    keys: dict[str, aws.kms.Key]

    def __init__(
        self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ryuzen:index:Storage", name, None, opts)
        self.keys = {
            purpose: aws.kms.Key(
                f"{name}-{purpose}-key",
                description=f"Ryuzen Telemetry {name}: SSE-KMS of the {purpose} buckets",
                enable_key_rotation=True,
                deletion_window_in_days=30 if args.protect else 7,
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
            for purpose in sorted(set(BUCKET_KEYS.values()))
        }
        self.buckets = {}
        for role, key in BUCKET_KEYS.items():
            # Only the bundle bucket holds what cannot be rebuilt (delivered bundles and
            # deletion receipts); every other bucket may be emptied by a destroy in dev.
            keep = args.protect and role == "bundles"
            bucket = aws.s3.Bucket(
                f"{name}-{role}",
                force_destroy=not args.protect,
                opts=pulumi.ResourceOptions(parent=self, protect=keep),
            )
            self._guard(f"{name}-{role}", bucket, self.keys[key])
            self._lifecycle(f"{name}-{role}", bucket, self._rules(role, args))
            self.buckets[role] = bucket
        self.register_outputs(
            {
                "buckets": {role: bucket.bucket for role, bucket in self.buckets.items()},
                "keys": {purpose: key.arn for purpose, key in self.keys.items()},
            }
        )

    def key_for(self, role: str) -> aws.kms.Key:
        """The KMS key that encrypts the ``role`` bucket."""
        return self.keys[BUCKET_KEYS[role]]

    def _guard(self, name: str, bucket: aws.s3.Bucket, key: aws.kms.Key) -> None:
        # S3 refuses concurrent configuration changes of one bucket now and then
        # (OperationAborted), so each guard waits for the one before it.
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": key.arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[encryption]),
        )
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(tls_only_policy),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ownership]),
        )

    def _lifecycle(self, name: str, bucket: aws.s3.Bucket, rules: list[Any]) -> None:
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                {
                    "id": "abandoned-uploads",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "abort_incomplete_multipart_upload": {
                        "days_after_initiation": ABANDONED_UPLOAD_DAYS
                    },
                },
                *rules,
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    @staticmethod
    def _rules(role: str, args: StorageArgs) -> list[Any]:
        def expire(rule_id: str, prefix: str, days: int) -> dict[str, Any]:
            return {
                "id": rule_id,
                "status": "Enabled",
                "filter": {"prefix": prefix},
                "expiration": {"days": days},
            }

        if role == "raw":
            return [expire("raw-backstop", "", RAW_BACKSTOP_DAYS)]
        if role == "quarantine":
            return [expire("quarantine-retention", "", args.quarantine_days)]
        if role in ("sanitized", "analytics"):
            return [expire("undelivered-backstop", "", args.working_backstop_days)]
        if role == "athena":
            return [expire("query-results", "", ATHENA_RESULTS_DAYS)]
        if role == "bundles":
            # One rule per partner, on its own prefix: onboarding adds it, removal drops it.
            # The backstop outlives every one of them (see the module docstring).
            return [
                *(
                    expire(
                        f"bundle-retention-{partner.id}",
                        f"{partner.id}/",
                        partner.bundle_retention_days,
                    )
                    for partner in args.partners
                ),
                expire(BUNDLE_BACKSTOP_RULE, "", bundle_backstop_days(args.partners)),
            ]
        return []  # artifacts: keyed by content hash; a deployed function may need any


def bundle_backstop_days(partners: Sequence[Partner]) -> int:
    """Days after which the bundle bucket's backstop expires any object: the longest
    retention of a configured partner (a removed partner's bundles go by then too)."""
    return max(partner.bundle_retention_days for partner in partners)


def tls_only_policy(bucket_arn: str) -> str:
    """Deny every S3 action on the bucket over plain HTTP or TLS older than 1.2."""
    resources = [bucket_arn, f"{bucket_arn}/*"]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": resources,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                {
                    "Sid": "DenyOutdatedTls",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": resources,
                    "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
                },
            ],
        }
    )
