"""Settings of the bundle task, read from the environment once, at the edge."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from ryuzen_contracts.attestation import Signer
from ryuzen_contracts.aws_clients import make_client
from ryuzen_contracts.settings import StageSettings
from ryuzen_contracts.signing import KmsSigner, LocalSigner


class BundleSettings(StageSettings):
    """Environment of the bundle builder (ECS task, or the local stack)."""

    analytics_bucket: str = Field(alias="ANALYTICS_BUCKET")
    sanitized_bucket: str = Field(alias="SANITIZED_BUCKET")
    bundles_bucket: str = Field(alias="BUNDLES_BUCKET")
    audit_table: str = Field(alias="AUDIT_TABLE")
    stack_config: str = Field(alias="STACK_CONFIG")
    event_bus_name: str = Field(alias="EVENT_BUS_NAME")
    signing_kms_key_id: str | None = Field(default=None, alias="SIGNING_KMS_KEY_ID")
    signing_key_file: str | None = Field(default=None, alias="SIGNING_KEY_FILE")
    # Fargate's ephemeral storage, when it is not the system temp directory.
    work_dir: str | None = Field(default=None, alias="BUNDLE_WORK_DIR")


def make_signer(settings: BundleSettings) -> Signer:
    """KMS in AWS, the local key file in the local stack (the same rule as sanitize)."""
    if settings.signing_kms_key_id:
        return KmsSigner(make_client("kms"), settings.signing_kms_key_id)
    if settings.signing_key_file:
        return LocalSigner.from_file(Path(settings.signing_key_file))
    raise RuntimeError("set SIGNING_KMS_KEY_ID (AWS) or SIGNING_KEY_FILE (local stack)")
