"""S3 event notifications as SQS delivers them to the event-driven stages.

One parser for every stage fed by S3 (sanitize, analytics): S3's ``s3:TestEvent`` (sent
when a notification is configured) names no object, only ``ObjectCreated:*`` records
count, and keys arrive URL-encoded with ``+`` for spaces, so ``unquote_plus`` decodes them.
"""

from __future__ import annotations

import json
from urllib.parse import unquote_plus


def s3_keys(message_body: str, bucket: str) -> list[str]:
    """The URL-decoded object keys an S3 notification names in ``bucket``; [] for a test event."""
    notification = json.loads(message_body)
    if notification.get("Event") == "s3:TestEvent":
        return []
    keys = []
    for record in notification.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        if record["s3"]["bucket"]["name"] != bucket:
            continue
        keys.append(unquote_plus(record["s3"]["object"]["key"]))
    return keys
