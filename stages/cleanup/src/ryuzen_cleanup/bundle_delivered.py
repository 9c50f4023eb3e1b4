"""The ``BundleDelivered`` event: EventBridge's envelope around one delivered bundle's facts.

The bundle stage emits it (source ``ryuzen.telemetry``, detail-type ``BundleDelivered``,
detail ``{partner, month, bundle_key, sha256, bytes}``). In AWS an EventBridge rule invokes
the cleanup Lambda with the event itself; in the local stack the rule targets an SQS queue
and each message body is the same event JSON. The shape is declared again here instead of
imported because a stage never imports another stage; the two must change together.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ryuzen_contracts.key_layout import bundle_key, validate_month, validate_partner_id

EVENT_SOURCE = "ryuzen.telemetry"
DETAIL_TYPE = "BundleDelivered"


class InvalidBundleEvent(ValueError):  # noqa: N818 -- reads as what arrived
    """The event is not a well-formed ``BundleDelivered``; the message names fields, not values."""


class BundleDelivered(BaseModel):
    """What cleanup needs from the event: whose month, and which bundle was delivered."""

    # extra="ignore": the builder also sends ``bytes``, and may add facts cleanup never reads.
    model_config = ConfigDict(frozen=True, extra="ignore")

    partner: str
    month: str
    bundle_key: str
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]

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


class BundleDeliveredEvent(EventBridgeModel):
    """The EventBridge event, narrowed to ours by source and detail-type."""

    source: Literal["ryuzen.telemetry"]
    # EventBridge always sends the account; moto's rule-to-SQS delivery (the local stack)
    # leaves it out, and cleanup never reads it.
    account: str | None = None  # type: ignore[assignment]
    detail_type: Literal["BundleDelivered"] = Field(alias="detail-type")
    detail: BundleDelivered  # narrows EventBridgeModel's raw detail to ours


def parse_bundle_delivered(event: Mapping[str, Any] | str) -> BundleDelivered:
    """The detail of a ``BundleDelivered`` event given as a dict or as JSON (an SQS body).

    Raises InvalidBundleEvent naming the offending fields; never echoes their values,
    since an exception message ends up in logs.
    """
    if isinstance(event, str):
        try:
            event = json.loads(event)
        except ValueError:
            raise InvalidBundleEvent("the message body is not JSON") from None
    if not isinstance(event, Mapping):
        raise InvalidBundleEvent("the event is not a JSON object")
    try:
        return parse(event=dict(event), model=BundleDeliveredEvent).detail
    except ValidationError as error:
        fields = sorted(
            {
                ".".join(str(part) for part in problem["loc"]) or "event"
                for problem in error.errors(include_url=False, include_input=False)
            }
        )
        raise InvalidBundleEvent(f"not a BundleDelivered event: {', '.join(fields)}") from None
