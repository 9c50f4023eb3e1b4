"""``ryuzen audit query|trail``: read the ``TelemetryAudit`` table as an operator.

Also runnable as ``python -m ryuzen_tools.audit_query [query|trail] ...`` (``query`` when
no command is named). The reading
itself is ``ryuzen_contracts.audit_log`` (``query_partner_month`` for one partner-month,
``query_recent`` through the event-type GSI); this module picks the read from the options,
finds the table (AWS, the local stack's ``state.json``, or an explicit endpoint) and prints
the events as a table, a JSON array or CSV. Every bad value is a one-line message naming
it and exit 2; a table that cannot be read is exit 1.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.table import Table
from rich.text import Text
from ryuzen_contracts.audit_log import AuditEvent, AuditEventType, AuditLog, iso_millis
from ryuzen_contracts.aws_clients import make_client
from ryuzen_contracts.key_layout import validate_month, validate_partner_id

from ryuzen_tools.audit_trail import read_trail, trail_report
from ryuzen_tools.console_reports import report_console
from ryuzen_tools.local_stack.aws import local_client
from ryuzen_tools.local_stack.provision import resource_name
from ryuzen_tools.local_stack.state_file import DEFAULT_STATE_DIR, StackNotRunningError, read_state

_DURATION_RE = re.compile(r"^([1-9][0-9]{0,5})([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
# Items expire after 400 days (AuditLog's TTL); a longer window only risks a date overflow.
MAX_RECENT = timedelta(days=3660)
CSV_COLUMNS = ("occurred_at", "event_type", "partner", "month", "stage", "event_id", "detail")
NO_MATCH = "no audit events match"
# --partner alone: the window read through the GSI when no --recent narrows it.
DEFAULT_PARTNER_WINDOW = timedelta(days=31)

err = Console(stderr=True)


class AuditQueryError(ValueError):
    """An option value the query cannot use; the message names the value."""


class OutputFormat(StrEnum):
    """How ``ryuzen audit query`` prints events."""

    table = "table"
    json = "json"
    csv = "csv"


class TrailFormat(StrEnum):
    """How ``ryuzen audit trail`` prints the trail."""

    table = "table"
    json = "json"


@dataclass(frozen=True)
class AuditTarget:
    """Where the audit table is: AWS (default), the local stack, or an explicit endpoint."""

    local: bool = False
    state_dir: Path = DEFAULT_STATE_DIR
    endpoint: str | None = None
    region: str | None = None
    table: str | None = None
    stack: str = "dev"


@dataclass(frozen=True)
class QueryOptions:
    """What to read. ``partner`` with ``month`` reads that partition; otherwise the GSI.

    The GSI read needs a window: ``recent``; or, for ``month`` alone, from the start of
    that month (a month's events are written from then on); or, for ``partner`` alone,
    the last ``DEFAULT_PARTNER_WINDOW``.
    """

    recent: timedelta | None = None
    partner: str | None = None
    month: str | None = None
    types: tuple[AuditEventType, ...] = field(default_factory=tuple)
    limit: int = 100

    def __post_init__(self) -> None:
        # Without a window the GSI read would walk every event ever written.
        if self.recent is None and self.partner is None and self.month is None:
            raise AuditQueryError("nothing to query: give --recent DURATION, --partner or --month")

    def since(self, now: datetime) -> datetime | None:
        """The oldest time to read; None reads the whole partner-month partition."""
        if self.recent is not None:
            return now - self.recent
        if self.partner is not None and self.month is not None:
            return None
        if self.month is not None:
            return datetime.strptime(self.month, "%Y-%m").replace(tzinfo=UTC)
        return now - DEFAULT_PARTNER_WINDOW


def parse_duration(text: str) -> timedelta:
    """``90m``, ``24h``, ``7d`` as a timedelta; AuditQueryError naming ``text`` otherwise."""
    match = _DURATION_RE.fullmatch(text.strip())
    if match is None:
        raise AuditQueryError(
            f"invalid duration {text!r:.40} (expected a positive number and m, h or d: "
            "90m, 24h, 7d)"
        )
    duration = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if duration > MAX_RECENT:
        raise AuditQueryError(f"duration {text!r} is longer than {MAX_RECENT.days} days")
    return duration


def parse_types(names: list[str]) -> tuple[AuditEventType, ...]:
    """Event type names (any case) as AuditEventType; AuditQueryError naming an unknown one."""
    types = []
    for name in names:
        try:
            types.append(AuditEventType(name.strip().upper()))
        except ValueError:
            known = ", ".join(kind.value for kind in AuditEventType)
            raise AuditQueryError(f"unknown event type {name!r:.40} (one of {known})") from None
    return tuple(types)


def open_audit_log(target: AuditTarget) -> AuditLog:
    """An AuditLog on the target's table.

    The local stack and an explicit endpoint get the fake ``testing`` credentials: a
    loopback endpoint must never receive a developer's real AWS credentials
    (``local_stack.aws``). AWS gets the standard credential chain and region.
    """
    if target.local and target.endpoint:
        raise AuditQueryError("--local and --endpoint exclude each other")
    if target.local:
        state = read_state(target.state_dir)
        client = local_client("dynamodb", state["aws"], state["region"])
        # Always the stack's own table: a RYUZEN_AUDIT_TABLE meant for AWS must not
        # redirect a local read to a table the stack never created.
        return AuditLog(client, state["tables"]["audit"])
    table = target.table or resource_name(target.stack, "audit")
    if target.endpoint:
        if not target.region:
            raise AuditQueryError(f"--endpoint {target.endpoint} needs --region (or AWS_REGION)")
        return AuditLog(local_client("dynamodb", target.endpoint, target.region), table)
    return AuditLog(make_client("dynamodb", region=target.region), table)


def query_events(audit: AuditLog, options: QueryOptions, now: datetime) -> list[AuditEvent]:
    """The events ``options`` select, newest first, at most ``options.limit``."""
    since = options.since(now)
    if options.partner is not None and options.month is not None:
        return list(
            audit.query_partner_month(
                options.partner,
                options.month,
                types=options.types,
                since=since,
                limit=options.limit,
            )
        )
    assert since is not None  # only a partner-month partition is read without a window
    return list(
        audit.query_recent(
            since,
            types=options.types,
            limit=options.limit,
            partner=options.partner,
            month=options.month,
        )
    )


def event_record(event: AuditEvent) -> dict[str, Any]:
    """One event as plain JSON values (a JSON array element, a CSV row)."""
    return {
        "occurred_at": iso_millis(event.occurred_at),
        "event_type": event.event_type.value,
        "partner": event.partner,
        "month": event.month,
        "stage": event.stage,
        "event_id": event.event_id,
        "detail": event.detail,
    }


def compact_detail(detail: dict[str, Any]) -> str:
    """A detail map on one line: JSON without spaces, keys sorted."""
    return json.dumps(detail, separators=(",", ":"), sort_keys=True)


def events_table(events: list[AuditEvent]) -> Table:
    """Events for a terminal, one row each."""
    table = Table(title="audit events (newest first)", show_header=True)
    for column in ("time (UTC)", "type", "partner", "month", "stage", "detail"):
        # the detail folds onto more lines rather than lose its end to an ellipsis
        table.add_column(column, overflow="fold" if column == "detail" else "ellipsis")
    for event in events:
        table.add_row(
            iso_millis(event.occurred_at),
            event.event_type.value,
            event.partner or "SYSTEM",
            event.month or "",
            event.stage,
            Text(compact_detail(event.detail)),  # Text: a "[" in a detail is not rich markup
        )
    return table


def write_events(events: list[AuditEvent], output: OutputFormat, stream: Any) -> None:
    """Print ``events`` on ``stream`` as a table, a JSON array or CSV with a header."""
    if output is OutputFormat.json:
        stream.write(json.dumps([event_record(e) for e in events], sort_keys=True) + "\n")
    elif output is OutputFormat.csv:
        writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for event in events:
            writer.writerow({**event_record(event), "detail": compact_detail(event.detail)})
    else:
        report_console(stream).print(events_table(events))


# --- the commands -------------------------------------------------------------------------

audit_app = typer.Typer(
    no_args_is_help=True, help="Read the audit table: recent events, a partner-month's trail."
)

LocalOption = Annotated[
    bool, typer.Option("--local", help="Read the running local stack (its state.json).")
]
StateDirOption = Annotated[
    Path, typer.Option(help="The local stack's state directory (with --local).")
]
EndpointOption = Annotated[
    str | None,
    typer.Option(help="A local DynamoDB endpoint (moto's server); fake credentials are sent."),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        help="AWS region (default: the AWS configuration).",
        envvar=["AWS_REGION", "AWS_DEFAULT_REGION"],
    ),
]
TableOption = Annotated[
    str | None,
    typer.Option(
        help="Audit table name (default: ryuzen-{stack}-audit; --local reads state.json's).",
        envvar="RYUZEN_AUDIT_TABLE",
    ),
]
StackOption = Annotated[str, typer.Option(help="Stack whose default table name to use.")]


def _fail(command: str, reason: str, code: int) -> NoReturn:
    """One unwrapped line on stderr (values are never rich markup), then exit ``code``."""
    err.print(f"{command}: {reason}", style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _open(command: str, target: AuditTarget) -> AuditLog:
    try:
        return open_audit_log(target)
    except AuditQueryError as error:
        _fail(command, str(error), 2)
    except StackNotRunningError as error:
        _fail(command, str(error), 1)
    except BotoCoreError as error:  # no region, a malformed endpoint, ...
        _fail(command, str(error), 1)


@audit_app.command("query")
def query(
    recent: Annotated[
        str | None, typer.Option(help="Events of the last DURATION (90m, 24h, 7d), newest first.")
    ] = None,
    partner: Annotated[str | None, typer.Option(help="Only this partner's events.")] = None,
    month: Annotated[str | None, typer.Option(help="Only this receipt month, YYYY-MM.")] = None,
    event_type: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only this event type (repeatable), e.g. ERROR."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most N events.")] = 100,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table, json (an array) or csv.")
    ] = OutputFormat.table,
    local: LocalOption = False,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    endpoint: EndpointOption = None,
    region: RegionOption = None,
    table: TableOption = None,
    stack: StackOption = "dev",
) -> None:
    """Audit events, newest first: one partner-month, or every event of a recent window.

    --partner P --month M reads that partner-month (narrowed by --recent and --type);
    otherwise the event-type index is read over --recent, narrowed by the other filters.
    Without --recent, --month M alone reads from the start of M, and --partner P alone
    the last 31 days.
    """
    command = "ryuzen audit query"
    try:
        options = QueryOptions(
            recent=parse_duration(recent) if recent is not None else None,
            partner=validate_partner_id(partner) if partner is not None else None,
            month=validate_month(month) if month is not None else None,
            types=parse_types(event_type or []),
            # One more than shown: tells whether --limit cut the answer short.
            limit=limit + 1,
        )
    except ValueError as error:  # AuditQueryError and the contracts' InvalidKeyPart
        _fail(command, str(error), 2)
    audit = _open(command, AuditTarget(local, state_dir, endpoint, region, table, stack))
    try:
        events = query_events(audit, options, datetime.now(UTC))
    except (BotoCoreError, ClientError) as error:
        _fail(command, f"cannot read the audit table: {error}", 1)
    shown = events[:limit]
    if shown or output is not OutputFormat.table:  # "[]" and a bare CSV header stay parseable
        write_events(shown, output, sys.stdout)
    if not shown:
        err.print(NO_MATCH, highlight=False)
    elif len(events) > limit:
        err.print(f"showing the newest {limit}; more match (raise --limit)", highlight=False)


@audit_app.command("trail")
def trail(
    partner: Annotated[str, typer.Option(help="The partner.")],
    month: Annotated[str, typer.Option(help="The receipt month, YYYY-MM.")],
    output: Annotated[
        TrailFormat, typer.Option("--format", help="table, or json: one document.")
    ] = TrailFormat.table,
    local: LocalOption = False,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    endpoint: EndpointOption = None,
    region: RegionOption = None,
    table: TableOption = None,
    stack: StackOption = "dev",
) -> None:
    """A partner-month's lifecycle as a timeline, and a one-line verdict.

    Scrub-violation totals, then BUNDLE_CREATED, BUNDLE_DELIVERED, TELEMETRY_DELETED (and
    the month's ERROR events); the verdict is complete or the first missing step. Exit 0
    complete, 1 when a step is missing.
    """
    command = "ryuzen audit trail"
    try:
        validate_partner_id(partner)
        validate_month(month)
    except ValueError as error:
        _fail(command, str(error), 2)
    audit = _open(command, AuditTarget(local, state_dir, endpoint, region, table, stack))
    try:
        found = read_trail(audit, partner, month)
    except (BotoCoreError, ClientError) as error:
        _fail(command, f"cannot read the audit table: {error}", 1)
    if output is TrailFormat.json:
        print(json.dumps(found.to_dict(), sort_keys=True))
    else:
        if not found.timeline and not found.scrub_violations["events"]:
            err.print(NO_MATCH, highlight=False)
        report_console(sys.stdout).print(trail_report(found))
    if not found.complete:
        raise typer.Exit(1)


def main(argv: list[str]) -> None:
    """``python -m ryuzen_tools.audit_query``: ``query`` unless ``trail`` is named."""
    if not argv or argv[0] not in {"query", "trail", "--help"}:
        argv = ["query", *argv]
    audit_app(args=argv, prog_name="python -m ryuzen_tools.audit_query")


if __name__ == "__main__":
    main(sys.argv[1:])
