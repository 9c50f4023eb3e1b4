"""The quarantine value-hash key: a KMS HMAC key whose MAC of a fixed label is the secret.

Sanitize records, for each quarantined value, an HMAC-SHA256 under a per-stack secret
instead of a plain SHA-256 (which short values such as phone numbers or SSNs would not
survive: hashing every candidate reverses it). The secret is this key's ``GenerateMac``
of a fixed label (``ryuzen_sanitize.quarantine.VALUE_HASH_LABEL``), computed once per
container; the key material itself never leaves KMS. Only sanitize may ``GenerateMac``
with it, so only sanitize — and an operator granted the same — can hash a candidate
value to look it up.

HMAC keys cannot be rotated automatically; a new key is a new secret, and records name
theirs (``value_hash_key``), so a replacement is a deliberate step.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


class QuarantineHashKey(pulumi.ComponentResource):
    """The HMAC_256 key and its alias."""

    key: aws.kms.Key

    def __init__(
        self, name: str, protect: bool, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ryuzen:index:QuarantineHashKey", name, None, opts)
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"Ryuzen Telemetry {name}: keys the hash of quarantined values",
            customer_master_key_spec="HMAC_256",
            key_usage="GENERATE_VERIFY_MAC",
            deletion_window_in_days=30 if protect else 7,
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{name}",
            target_key_id=self.key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"key_arn": self.key.arn})
