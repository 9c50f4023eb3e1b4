"""The pull Lambda's environment, read once at the handler edge.

The variable names are an interface: the Pulumi program and the local stack set them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator
from ryuzen_contracts.settings import StageSettings
from ryuzen_contracts.stack_config import StackConfig


class PullSettings(StageSettings):
    """The pull Lambda's environment (names are an interface: Pulumi and the local stack).

    - ``BUNDLES_BUCKET``: the partner bundle bucket.
    - ``STACK_CONFIG``: the stack configuration (``presignedUrlTtlSeconds``, partner ids).
    - ``API_KEY_PARTNERS``: JSON ``{apiKeyId: partner id}``.
    - ``SIGNING_KMS_KEY_ID`` (AWS) or ``SIGNING_PUBLIC_KEY_FILE`` (local): the key whose
      public half is served; KMS wins when both are set, as for the signers.
    - ``PRESIGN_ENDPOINT_URL`` (optional): where presigned URLs point — the local stack's
      verifying proxy. Unset: ``AWS_ENDPOINT_URL``, else the regional S3 endpoint.
    """

    bundles_bucket: str = Field(alias="BUNDLES_BUCKET")
    stack_config: StackConfig = Field(alias="STACK_CONFIG")
    api_key_partners: dict[str, str] = Field(alias="API_KEY_PARTNERS")
    signing_kms_key_id: str | None = Field(default=None, alias="SIGNING_KMS_KEY_ID")
    signing_public_key_file: Path | None = Field(default=None, alias="SIGNING_PUBLIC_KEY_FILE")
    presign_endpoint_url: str | None = Field(default=None, alias="PRESIGN_ENDPOINT_URL")

    @field_validator("stack_config", mode="before")
    @classmethod
    def _parse_stack_config(cls, value: Any) -> Any:
        return StackConfig.from_json(value) if isinstance(value, str) else value

    @field_validator("api_key_partners", mode="before")
    @classmethod
    def _parse_api_key_partners(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError("must be a JSON object of apiKeyId to partner id") from None
            if not isinstance(value, dict):
                raise ValueError("must be a JSON object of apiKeyId to partner id")
        return value

    @field_validator("api_key_partners")
    @classmethod
    def _partners_exist(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        config = info.data.get("stack_config")
        if config is None:
            return value  # STACK_CONFIG's own error is reported
        known = {partner.id for partner in config.partners}
        unknown = sorted({partner for partner in value.values() if partner not in known})
        if unknown:
            raise ValueError(f"names partners the stack does not have: {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _one_public_key_source(self) -> PullSettings:
        if self.signing_kms_key_id is None and self.signing_public_key_file is None:
            raise ValueError("set SIGNING_KMS_KEY_ID or SIGNING_PUBLIC_KEY_FILE")
        return self
