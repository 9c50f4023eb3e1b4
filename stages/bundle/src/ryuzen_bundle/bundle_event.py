"""Put the ``BundleDelivered`` event (shape in the contracts) on the stack's event bus."""

from __future__ import annotations

from typing import Any

from ryuzen_contracts.bundle_delivered import DETAIL_TYPE, EVENT_SOURCE, BundleDelivered


class EventNotDelivered(RuntimeError):  # noqa: N818 -- reads as what happened
    """EventBridge refused the event (``FailedEntryCount`` > 0 or an entry error)."""


def emit_bundle_delivered(events: Any, event_bus_name: str, detail: BundleDelivered) -> str:
    """Put one ``BundleDelivered`` event on ``event_bus_name``; return its event id."""
    response = events.put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": DETAIL_TYPE,
                "Detail": detail.detail_json(),
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
