"""Deletion receipts as the cleanup stage writes them, for the tools' verifier tests."""

from __future__ import annotations

from datetime import UTC, datetime

from ryuzen_cleanup.deletion_receipt import DeletionFacts
from ryuzen_cleanup.prefix_deletion import Prefix
from ryuzen_contracts.key_layout import analytics_prefix, bundle_key, sanitized_prefix

ANALYTICS_BUCKET = "ryuzen-t-analytics"
SANITIZED_BUCKET = "ryuzen-t-sanitized"


def deletion_facts(
    partner: str,
    month: str,
    bundle_sha256: str,
    *,
    analytics_bucket: str = ANALYTICS_BUCKET,
    sanitized_bucket: str = SANITIZED_BUCKET,
    deleted: tuple[int, int] = (3, 4),
    deleted_keys_sha256: str = "b" * 64,
    deleted_at: datetime = datetime(2026, 11, 2, 1, 0, 0, tzinfo=UTC),
) -> DeletionFacts:
    """What cleanup states after deleting ``partner``'s ``month`` (``deleted``: objects
    from ANALYTICS and SANITIZED) following the bundle whose SHA-256 is ``bundle_sha256``."""
    return DeletionFacts(
        partner=partner,
        month=month,
        bundle_key=bundle_key(partner, month),
        bundle_sha256=bundle_sha256,
        proven_empty=(
            Prefix(analytics_bucket, analytics_prefix(partner, month)),
            Prefix(sanitized_bucket, sanitized_prefix(partner, month)),
        ),
        objects_deleted={analytics_bucket: deleted[0], sanitized_bucket: deleted[1]},
        deleted_keys_sha256=deleted_keys_sha256,
        deleted_at=deleted_at,
    )
