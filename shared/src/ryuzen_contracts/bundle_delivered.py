"""The ``BundleDelivered`` event: a partner-month's bundle is uploaded and its checksum verified.

The bundle stage emits it on EventBridge (source ``ryuzen.telemetry``, detail-type
``BundleDelivered``); the cleanup stage acts on it; the infra program and the local stack
route it by the same two names. Stages never import each other, so the one shape all of
them agree on lives here.

The detail carries the object key and its digest, never a URL.
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ryuzen_contracts.key_layout import bundle_key, validate_month, validate_partner_id

EVENT_SOURCE = "ryuzen.telemetry"
DETAIL_TYPE = "BundleDelivered"


class BundleDelivered(BaseModel):
    """The event's detail: whose month, which bundle object, its SHA-256 and size."""

    # extra="ignore": a newer builder may add facts an older cleanup never reads.
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    partner: str
    month: str
    bundle_key: str
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    # ``bytes`` on the wire; ``size`` here so the builtin stays usable in this class.
    size: Annotated[int, Field(alias="bytes", ge=0)]

    @field_validator("partner")
    @classmethod
    def _partner(cls, value: str) -> str:
        return validate_partner_id(value)

    @field_validator("month")
    @classmethod
    def _month(cls, value: str) -> str:
        return validate_month(value)

    @model_validator(mode="after")
    def _key_is_this_months_bundle(self) -> BundleDelivered:
        # The key is recomputed, never trusted: an event naming another partner's bundle
        # must not let cleanup attribute a delivery to this partner-month.
        if self.bundle_key != bundle_key(self.partner, self.month):
            raise ValueError("bundle_key is not the bundle key of this partner-month")
        return self

    def detail_json(self) -> str:
        """The detail as EventBridge's ``Detail`` string (wire names, sorted keys)."""
        return json.dumps(self.model_dump(by_alias=True), sort_keys=True)

    @classmethod
    def for_bundle(cls, partner: str, month: str, sha256: str, size: int) -> BundleDelivered:
        """The detail for ``partner``'s ``month`` bundle at its one well-known key."""
        return cls(
            partner=partner,
            month=month,
            bundle_key=bundle_key(partner, month),
            sha256=sha256,
            size=size,
        )


def event_pattern() -> dict[str, list[str]]:
    """The EventBridge rule pattern that matches exactly this event."""
    return {"source": [EVENT_SOURCE], "detail-type": [DETAIL_TYPE]}
