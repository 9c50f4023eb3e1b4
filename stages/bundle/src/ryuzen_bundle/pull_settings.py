"""The pull Lambda's environment, read once at the handler edge.

The variable names are an interface: the Pulumi program and the local stack set them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator
from ryuzen_contracts.api_keys import parse_api_key_map
from ryuzen_contracts.settings import StageSettings
from ryuzen_contracts.stack_config import StackConfig

# An IAM role ARN in any partition (aws, aws-cn, aws-us-gov), path included.
_ROLE_ARN_PATTERN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+$"


class PullSettings(StageSettings):
    """The pull Lambda's environment (names are an interface: Pulumi and the local stack).

    - ``BUNDLES_BUCKET``: the partner bundle bucket.
    - ``AUDIT_TABLE``: the TelemetryAudit table, which holds each partner-month's bundle
      state; only a ``DELIVERED`` or ``CLEANED`` month is offered (``bundle_catalog``).
    - ``STACK_CONFIG``: the stack configuration (``presignedUrlTtlSeconds``, partner ids).
    - ``API_KEY_PARTNERS``: JSON ``{apiKeyId: partner id}``.
    - ``SIGNING_KMS_KEY_ID`` (AWS) or ``SIGNING_PUBLIC_KEY_FILE`` (local): the key whose
      public half is served; KMS wins when both are set, as for the signers.
    - ``PRESIGN_ENDPOINT_URL`` (optional): where presigned URLs point — the local stack's
      verifying proxy. Unset: ``AWS_ENDPOINT_URL``, else the regional S3 endpoint.
    - ``PRESIGN_ROLE_ARN`` (optional): a role to assume and sign URLs with, so their TTL
      is clamped to credentials whose expiry is known (``signing_role``). Unset: the
      function's own credentials sign.
    """

    bundles_bucket: str = Field(alias="BUNDLES_BUCKET")
    audit_table: str = Field(alias="AUDIT_TABLE")
    stack_config: StackConfig = Field(alias="STACK_CONFIG")
    api_key_partners: dict[str, str] = Field(alias="API_KEY_PARTNERS")
    signing_kms_key_id: str | None = Field(default=None, alias="SIGNING_KMS_KEY_ID")
    signing_public_key_file: Path | None = Field(default=None, alias="SIGNING_PUBLIC_KEY_FILE")
    presign_endpoint_url: str | None = Field(default=None, alias="PRESIGN_ENDPOINT_URL")
    presign_role_arn: str | None = Field(
        default=None, alias="PRESIGN_ROLE_ARN", pattern=_ROLE_ARN_PATTERN
    )

    @field_validator("stack_config", mode="before")
    @classmethod
    def _parse_stack_config(cls, value: Any) -> Any:
        return StackConfig.from_json(value) if isinstance(value, str) else value

    @field_validator("api_key_partners", mode="before")
    @classmethod
    def _parse_api_key_partners(cls, value: Any, info: ValidationInfo) -> dict[str, str]:
        # stack_config is declared first, so it is in info.data when it is valid; when it
        # is not, its own error is reported and the partner ids cannot be checked.
        config = info.data.get("stack_config")
        known = None if config is None else [partner.id for partner in config.partners]
        return parse_api_key_map(value, identity="partner", known=known)

    @model_validator(mode="after")
    def _one_public_key_source(self) -> PullSettings:
        if self.signing_kms_key_id is None and self.signing_public_key_file is None:
            raise ValueError("set SIGNING_KMS_KEY_ID or SIGNING_PUBLIC_KEY_FILE")
        return self
