"""What the cleanup Lambdas are built from: their settings, their clients and their signer.

Two functions, two environments: the ``BundleDelivered`` handler never needs RAW or
quarantine, and the sweep never needs the bundle bucket or a signing key, so each role
(and each environment) carries only what its Lambda uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from pydantic import Field, model_validator
from ryuzen_contracts.attestation import Signer
from ryuzen_contracts.aws_clients import make_client
from ryuzen_contracts.settings import StageSettings
from ryuzen_contracts.signing import KmsSigner, LocalSigner
from ryuzen_contracts.stack_config import Retention, StackConfig


class CleanupSettings(StageSettings):
    """Environment of the ``BundleDelivered`` handler (``cleanup_handler``)."""

    sanitized_bucket: str = Field(alias="SANITIZED_BUCKET")
    analytics_bucket: str = Field(alias="ANALYTICS_BUCKET")
    bundles_bucket: str = Field(alias="BUNDLES_BUCKET")
    audit_table: str = Field(alias="AUDIT_TABLE")
    signing_kms_key_id: str | None = Field(default=None, alias="SIGNING_KMS_KEY_ID")
    signing_key_file: str | None = Field(default=None, alias="SIGNING_KEY_FILE")

    @model_validator(mode="after")
    def _a_signer_is_configured(self) -> Self:
        # Checked at start, not at the first receipt: by then the objects are gone.
        if not (self.signing_kms_key_id or self.signing_key_file):
            raise ValueError("set SIGNING_KMS_KEY_ID (AWS) or SIGNING_KEY_FILE (local stack)")
        return self


class SweepSettings(StageSettings):
    """Environment of the retention sweep (``sweep_handler``, or the local stack)."""

    raw_bucket: str = Field(alias="RAW_BUCKET")
    quarantine_bucket: str = Field(alias="QUARANTINE_BUCKET")
    audit_table: str = Field(alias="AUDIT_TABLE")
    stack_config: str = Field(alias="STACK_CONFIG")
    # Looked at (never deleted from) for partner-months that outlived their month;
    # unset, that check is skipped.
    sanitized_bucket: str | None = Field(default=None, alias="SANITIZED_BUCKET")
    analytics_bucket: str | None = Field(default=None, alias="ANALYTICS_BUCKET")

    def retention(self) -> Retention:
        """``retention`` of the stack config (``rawHours``, ``quarantineDays``)."""
        return StackConfig.from_json(self.stack_config).retention


@dataclass(frozen=True)
class Clients:
    """The boto3 clients the cleanup functions take (injected; tests pass moto's)."""

    s3: Any
    dynamodb: Any

    @classmethod
    def from_environment(cls) -> Clients:
        """Standard-retry clients for the stack's endpoint (``ryuzen_contracts.aws_clients``)."""
        return cls(s3=make_client("s3"), dynamodb=make_client("dynamodb"))


def make_signer(settings: CleanupSettings) -> Signer:
    """KMS in AWS, the local key file in the local stack: the rule sanitize and bundle use.

    KMS wins when both are set, as in the other stages, so a stray key file on a deployed
    function can never switch receipts to a key partners do not trust.
    """
    if settings.signing_kms_key_id:
        return KmsSigner(make_client("kms"), settings.signing_kms_key_id)
    if settings.signing_key_file:
        return LocalSigner.from_file(Path(settings.signing_key_file))
    raise RuntimeError("set SIGNING_KMS_KEY_ID (AWS) or SIGNING_KEY_FILE (local stack)")
