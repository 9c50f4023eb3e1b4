"""The ingest Lambda's environment, read once at the handler edge.

The variable names are an interface: the Pulumi program and the local stack set them.

- ``RAW_BUCKET``: the RAW bucket.
- ``IDEMPOTENCY_TABLE``: the powertools idempotency table (``tables.idempotency_table_definition``).
- ``AUDIT_TABLE``: the TelemetryAudit table.
- ``STACK_CONFIG``: the stack configuration as ``StackConfig.to_json()`` wrote it.
- ``API_KEY_CLIENTS``: a JSON object mapping API Gateway ``apiKeyId`` → ingest client id.

This module imports pydantic (through the contracts), so the handler imports it on the
first request, not at cold-start import.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator
from ryuzen_contracts.api_keys import parse_api_key_map
from ryuzen_contracts.settings import StageSettings
from ryuzen_contracts.stack_config import StackConfig


class IngestSettings(StageSettings):
    """Settings of the ingest stage."""

    raw_bucket: str = Field(alias="RAW_BUCKET")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE")
    audit_table: str = Field(alias="AUDIT_TABLE")
    stack_config: StackConfig = Field(alias="STACK_CONFIG")
    api_key_clients: dict[str, str] = Field(alias="API_KEY_CLIENTS")

    @field_validator("stack_config", mode="before")
    @classmethod
    def _parse_stack_config(cls, value: Any) -> Any:
        if isinstance(value, str):
            return StackConfig.from_json(value)  # StackConfigError is a ValueError
        return value

    @field_validator("api_key_clients", mode="before")
    @classmethod
    def _parse_api_key_clients(cls, value: Any, info: ValidationInfo) -> dict[str, str]:
        # stack_config is declared first, so it is in info.data when it is valid; when it
        # is not, its own error is reported and the client ids cannot be checked.
        config = info.data.get("stack_config")
        known = None if config is None else [client.id for client in config.ingest_clients]
        return parse_api_key_map(value, identity="ingest client", known=known)
