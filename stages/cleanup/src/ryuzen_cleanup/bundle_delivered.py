"""Parse the ``BundleDelivered`` event as cleanup receives it.

In AWS an EventBridge rule invokes the cleanup Lambda with the event itself; in the local
stack the rule targets an SQS queue and each message body is the same event JSON. The
detail's shape (``ryuzen_contracts.bundle_delivered``) is shared with the bundle stage
that emits it; this module adds only EventBridge's envelope.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import ValidationError, field_validator
from ryuzen_contracts.bundle_delivered import DETAIL_TYPE, EVENT_SOURCE, BundleDelivered

__all__ = ["BundleDelivered", "InvalidBundleEvent", "parse_bundle_delivered"]


class InvalidBundleEvent(ValueError):  # noqa: N818 -- reads as what arrived
    """The event is not a well-formed ``BundleDelivered``; the message names fields, not values."""


class BundleDeliveredEvent(EventBridgeModel):
    """The EventBridge event, narrowed to ours by source and detail-type."""

    # EventBridge always sends the account; moto's rule-to-SQS delivery (the local stack)
    # leaves it out, and cleanup never reads it.
    account: str | None = None  # type: ignore[assignment]
    detail: BundleDelivered  # narrows EventBridgeModel's raw detail to ours

    @field_validator("source")
    @classmethod
    def _ours(cls, value: str) -> str:
        if value != EVENT_SOURCE:
            raise ValueError("not the telemetry pipeline's event source")
        return value

    @field_validator("detail_type")
    @classmethod
    def _bundle_delivered(cls, value: str) -> str:
        if value != DETAIL_TYPE:
            raise ValueError("not a BundleDelivered detail-type")
        return value


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
