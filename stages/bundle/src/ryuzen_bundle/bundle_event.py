"""The ``BundleDelivered`` EventBridge event: what the cleanup stage waits for."""

from __future__ import annotations

import json
from typing import Any

EVENT_SOURCE = "ryuzen.telemetry"
DETAIL_TYPE = "BundleDelivered"


class EventNotDelivered(RuntimeError):  # noqa: N818 -- reads as what happened
    """EventBridge refused the event (``FailedEntryCount`` > 0 or an entry error)."""


def bundle_delivered_detail(
    *, partner: str, month: str, bundle_key: str, sha256: str, size: int
) -> dict[str, Any]:
    """The event's detail: the object key and its digest, never a URL."""
    return {
        "partner": partner,
        "month": month,
        "bundle_key": bundle_key,
        "sha256": sha256,
        "bytes": size,
    }


def emit_bundle_delivered(events: Any, event_bus_name: str, detail: dict[str, Any]) -> str:
    """Put one ``BundleDelivered`` event on ``event_bus_name``; return its event id."""
    response = events.put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": DETAIL_TYPE,
                "Detail": json.dumps(detail, sort_keys=True),
                "EventBusName": event_bus_name,
            }
        ]
    )
    entries = response.get("Entries") or [{}]
    if (
        response.get("FailedEntryCount", 0)
        or "ErrorCode" in entries[0]
        or not entries[0].get("EventId")
    ):
        raise EventNotDelivered(
            f"PutEvents refused BundleDelivered: {entries[0].get('ErrorCode', 'no event id')}"
        )
    return str(entries[0]["EventId"])
