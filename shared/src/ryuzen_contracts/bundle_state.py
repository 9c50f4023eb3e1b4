"""The bundle state of one partner-month: ``BUILDING → BUILT → DELIVERED → CLEANED``.

One item per partner-month in the audit table (``sk = STATE#BUNDLE``, no ``event_type``,
so it never shows in the event-type index). Every transition is a conditional write on
the state *and* a version number read just before, so two writers racing on the same
month cannot both win, and no state is ever skipped. Cleanup trusts ``DELIVERED`` only
because reaching it requires a verified SHA-256 checksum.

The read just before the write only protects that one write. A caller that decided
what to do from an *earlier* read (the builder checks its refusal rules, then starts)
passes ``expected_version`` — the version it read, ``NO_VERSION`` for a month that had no
state — so a writer that got in between makes it lose instead of silently continuing
from a state it never saw (``BUILDING → BUILDING`` is a legal retry, so the state alone
cannot tell).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ryuzen_contracts.audit_log import iso_millis, partner_month_pk

STATE_SK = "STATE#BUNDLE"
# The version of a month that has no state item yet (stored versions start at 1).
NO_VERSION = 0
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class BundleState(StrEnum):
    """Where a partner-month's bundle is in its life."""

    BUILDING = "BUILDING"
    BUILT = "BUILT"
    DELIVERED = "DELIVERED"
    CLEANED = "CLEANED"


# A crashed build may be retried (BUILDING → BUILDING, BUILT → BUILDING); nothing else
# goes backwards except an explicit forced rebuild of a delivered or cleaned month.
ALLOWED: Mapping[BundleState | None, frozenset[BundleState]] = {
    None: frozenset({BundleState.BUILDING}),
    BundleState.BUILDING: frozenset({BundleState.BUILDING, BundleState.BUILT}),
    BundleState.BUILT: frozenset({BundleState.BUILDING, BundleState.DELIVERED}),
    BundleState.DELIVERED: frozenset({BundleState.CLEANED}),
    BundleState.CLEANED: frozenset(),
}
FORCED: frozenset[BundleState] = frozenset({BundleState.DELIVERED, BundleState.CLEANED})


class IllegalTransition(RuntimeError):  # noqa: N818 -- public name, kept
    """The requested transition is not allowed from the current state."""


class ConcurrentTransition(RuntimeError):  # noqa: N818 -- public name, kept
    """Another writer changed the state between our read and our conditional write."""


@dataclass(frozen=True)
class BundleStateRecord:
    """The stored state of one partner-month's bundle."""

    partner: str
    month: str
    state: BundleState
    version: int
    updated_at: str
    attributes: dict[str, str | int | bool] = field(default_factory=dict)


class BundleStateStore:
    """Reads and moves bundle states. Takes an injected low-level DynamoDB client."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._ddb = dynamodb
        self._table = table_name

    def get(self, partner: str, month: str) -> BundleStateRecord | None:
        """The current record, read consistently, or None when the month has no bundle yet."""
        response = self._ddb.get_item(
            TableName=self._table,
            Key={"pk": {"S": partner_month_pk(partner, month)}, "sk": {"S": STATE_SK}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return None if item is None else _record(partner, month, item)

    def transition(
        self,
        partner: str,
        month: str,
        to: BundleState,
        *,
        force: bool = False,
        attributes: Mapping[str, str | int | bool] | None = None,
        now: datetime | None = None,
        expected_version: int | None = None,
    ) -> BundleStateRecord:
        """Move the partner-month to ``to``; raise IllegalTransition or ConcurrentTransition.

        ``expected_version``: the version the caller's decision rests on (``NO_VERSION``:
        the month had no state). When the stored version differs, ConcurrentTransition is
        raised and nothing is written; when it matches, the conditional write is on it.
        None: only the version read here, just before the write, is checked.
        """
        # A plain string ("DELIVERED") compares equal to the member but fails the identity
        # checks below, which skipped the checksum requirement; normalise it first.
        to = BundleState(to)
        if expected_version is not None and expected_version < NO_VERSION:
            raise ValueError(f"expected_version must be >= {NO_VERSION}, not {expected_version}")
        attrs = dict(attributes or {})
        current = self.get(partner, month)
        current_state = current.state if current else None
        current_version = current.version if current else NO_VERSION
        # Checked before the state machine: a stale caller lost a race, whatever it asks for.
        if expected_version is not None and expected_version != current_version:
            raise ConcurrentTransition(
                f"bundle {partner} {month}: expected version {expected_version}, found "
                f"{current_state or 'NEW'} v{current_version} (another writer got in first)"
            )
        allowed = ALLOWED[current_state]
        if to not in allowed and not (
            force and to is BundleState.BUILDING and current_state in FORCED
        ):
            raise IllegalTransition(
                f"bundle {partner} {month}: {current_state or 'NEW'} → {to} is not allowed"
                + (
                    " (use force to rebuild)"
                    if current_state in FORCED and to is BundleState.BUILDING
                    else ""
                )
            )
        if to is BundleState.DELIVERED:
            _require_verified_checksum(partner, month, attrs)
        if to is BundleState.BUILDING:
            merged = attrs  # a (re)build starts from a clean slate
        else:
            merged = {**(current.attributes if current else {}), **attrs}
        version = current_version + 1
        record = BundleStateRecord(
            partner, month, to, version, iso_millis(now or datetime.now(UTC)), merged
        )
        item = {
            "pk": {"S": partner_month_pk(partner, month)},
            "sk": {"S": STATE_SK},
            "state": {"S": to.value},
            "version": {"N": str(version)},
            "updated_at": {"S": record.updated_at},
            "attributes": {"M": {key: _attribute(value) for key, value in merged.items()}},
        }
        if current is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "#state = :state AND #version = :version",
                "ExpressionAttributeNames": {"#state": "state", "#version": "version"},
                "ExpressionAttributeValues": {
                    ":state": {"S": current.state.value},
                    ":version": {"N": str(current.version)},
                },
            }
        try:
            self._ddb.put_item(TableName=self._table, Item=item, **condition)
        except self._ddb.exceptions.ConditionalCheckFailedException:
            raise ConcurrentTransition(
                f"bundle {partner} {month}: state changed while moving "
                f"{current_state or 'NEW'} → {to}"
            ) from None
        return record


def _require_verified_checksum(partner: str, month: str, attrs: Mapping[str, Any]) -> None:
    sha256 = attrs.get("sha256")
    if (
        not isinstance(sha256, str)
        or not _SHA256_RE.fullmatch(sha256)
        or attrs.get("checksum_verified") is not True
    ):
        raise IllegalTransition(
            f"bundle {partner} {month}: DELIVERED needs a verified SHA-256 checksum "
            "(attributes sha256=<64 hex> and checksum_verified=True)"
        )


def _attribute(value: str | int | bool) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    return {"S": str(value)}


def _record(partner: str, month: str, item: Mapping[str, Any]) -> BundleStateRecord:
    attributes: dict[str, str | int | bool] = {}
    for key, value in item.get("attributes", {}).get("M", {}).items():
        if "BOOL" in value:
            attributes[key] = bool(value["BOOL"])
        elif "N" in value:
            attributes[key] = int(value["N"])
        else:
            attributes[key] = str(value["S"])
    return BundleStateRecord(
        partner=partner,
        month=month,
        state=BundleState(item["state"]["S"]),
        version=int(item["version"]["N"]),
        updated_at=item["updated_at"]["S"],
        attributes=attributes,
    )
