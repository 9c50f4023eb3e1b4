"""rich renderings of the CLI's results: progress bars, the send table, the demo summary,
a verified certificate."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console, Group
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ryuzen_tools.traffic import BatchOutcome, SendResult


@contextmanager
def event_progress(console: Console) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """Yield a factory: ``(label, total) -> advance(amount)`` for one bar each (events sent,
    months cleaned); one rich display holds them all, as rich allows only one at a time."""
    progress = Progress(
        TextColumn("[bold]{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )

    def bar(label: str, total: int) -> Callable[[int], None]:
        task = progress.add_task(label, total=total)
        return lambda amount: progress.advance(task, amount)

    with progress:
        yield bar


def events_done(advance: Callable[[int], None]) -> Callable[[BatchOutcome], None]:
    """A sender's per-batch callback advancing a bar by the batch's events."""
    return lambda outcome: advance(outcome.events)


def report_console(stream: TextIO) -> Console:
    """A console on ``stream``; 120 columns when it is not a terminal (files, pipes)."""
    return Console(file=stream, width=None if stream.isatty() else 120)


def send_table(result: SendResult) -> Table:
    """The traffic generator's result as a two-column table."""
    summary = result.summary()
    table = Table(title="ryuzen send", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows: list[tuple[str, Any]] = [
        ("events sent", result.events_sent),
        ("events accepted", result.events_accepted),
        ("events rejected", result.events_rejected),
        ("batches sent", result.batches_sent),
        ("batches accepted", result.batches_accepted),
        ("batches rejected", result.batches_rejected),
        ("batches without answer", result.batches_unanswered),
        ("HTTP requests", result.requests),
        ("retries", result.retries),
        ("latency p50 / p90 / p99 ms", _slash(summary["latency_ms"].values())),
        ("events/s", summary["events_per_s"]),
        ("elapsed s", summary["elapsed_s"]),
    ]
    rows += [(f"status {code}", count) for code, count in sorted(result.status_codes.items())]
    rows += [(f"error {code}", count) for code, count in sorted(result.error_codes.items())]
    for name, value in rows:
        table.add_row(name, "-" if value is None else str(value))
    return table


def demo_tables(summary: dict[str, Any]) -> Group:
    """The demo summary: stages, traffic per client, queues and buckets, verdict."""
    stages = Table(title="stages")
    for column in ("stage", "trigger", "invocations", "errors", "outcomes"):
        stages.add_column(
            column, justify="right" if column in ("invocations", "errors") else "left"
        )
    for name, counters in summary["stages"].items():
        outcomes = ", ".join(f"{key} {value}" for key, value in counters["outcomes"].items())
        stages.add_row(
            name,
            counters.get("trigger") or "",
            str(counters["invocations"]),
            str(counters["errors"]),
            outcomes,
        )

    traffic = Table(title="traffic")
    columns = (
        "client",
        "events",
        "accepted",
        "rejected",
        "batches",
        "accepted b.",
        "p50 ms",
        "p99 ms",
    )
    for column in columns:
        traffic.add_column(column, justify="left" if column == "client" else "right")
    for client, result in summary["clients"].items():
        traffic.add_row(
            client,
            *_cells(
                result["events_sent"],
                result["events_accepted"],
                result["events_rejected"],
                result["batches_sent"],
                result["batches_accepted"],
                result["latency_ms"]["p50"],
                result["latency_ms"]["p99"],
            ),
        )
    totals = summary["totals"]
    traffic.add_row(
        "[bold]total",
        *_cells(
            totals["events_sent"],
            totals["events_accepted"],
            totals["events_rejected"],
            totals["batches_sent"],
            totals["batches_accepted"],
            totals["latency_ms"]["p50"],
            totals["latency_ms"]["p99"],
        ),
    )

    storage = Table(title="queues and buckets")
    for column in ("resource", "contents", "consumer"):
        storage.add_column(column)
    for role, queue in summary["queues"].items():
        consumer = queue["consumer"] or f"waiting for {queue.get('waiting_for', 'a consumer')}"
        storage.add_row(
            f"queue {role}",
            f"{queue['depth']} waiting, {queue['in_flight']} in flight, {queue['dlq']} in DLQ",
            consumer,
        )
    for role, bucket in summary["buckets"].items():
        storage.add_row(
            f"bucket {role}", f"{bucket['objects']} objects, {bucket['bytes']:,} bytes", ""
        )
    raw = summary["raw"]
    conservation = summary["conservation"]
    verdict = "[green]OK" if summary["ok"] else "[red]FAILED: " + "; ".join(summary["problems"])
    footer = Table.grid(padding=(0, 2))
    footer.add_row(
        "RAW",
        f"{raw['objects']} objects, {raw['events']} events left after draining "
        f"({summary['accepted_batch_ids']} batches accepted)",
    )
    footer.add_row(
        "conservation",
        f"{conservation['accepted']:,} accepted = {conservation['sanitized']:,} sanitized + "
        f"{conservation['quarantined']:,} quarantined"
        + (" [green]holds" if conservation["holds"] else " [red]does not hold"),
    )
    footer.add_row(
        "time",
        f"{summary['sending_s']} s sending ({summary['events_per_s']} events/s), "
        f"{summary['draining_s']} s draining, {summary['checking_s']} s checking, "
        f"{summary['elapsed_s']} s in all",
    )
    footer.add_row("verdict", verdict)
    return Group(stages, traffic, sanitize_table(summary["sanitize"]), storage, footer)


def sanitize_table(report: dict[str, Any]) -> Table:
    """What sanitize did, as read back from its certificates and quarantine records."""
    table = Table(title="sanitize (from certificates and quarantine)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows: list[tuple[str, Any]] = [
        ("RAW objects processed", report["objects_processed"]),
        ("events received", report["events_received"]),
        ("events sanitized", report["events_sanitized"]),
        ("events quarantined", report["events_quarantined"]),
        (
            "certificates verified",
            f"{report['certificates_verified']:,} of {report['certificates']:,}",
        ),
    ]
    rows += [
        (f"  sanitized for {partner}", count)
        for partner, count in report["sanitized_by_partner"].items()
    ]
    rows += [
        (f"  quarantined: {reason}", count)
        for reason, count in report["quarantined_by_reason"].items()
    ]
    rows += [(f"  redacted: {rule}", count) for rule, count in report["redactions_by_rule"].items()]
    for name, value in rows:
        table.add_row(name, *_cells(value))
    return table


def certificate_report(verified: dict[str, Any]) -> Group:
    """A verified zero-PII certificate: what it states and what was checked."""
    facts = verified["certificate"]
    counts = facts["counts"]
    table = Table(title="zero-PII certificate: signature verified", show_header=False)
    table.add_column("field")
    table.add_column("value")
    rows: list[tuple[str, Any]] = [
        ("partner", facts["partner"]),
        ("month", facts["month"]),
        ("batch", facts["batch_id"]),
        ("issued at", facts["issued_at"]),
        ("signed by key", verified["key_id"]),
        ("received", counts["received"]),
        ("sanitized", counts["sanitized"]),
        ("quarantined", counts["quarantined"]),
        ("quarantined by reason", _pairs(counts["quarantined_by_reason"])),
        ("redactions by rule", _pairs(counts["redactions_by_rule"])),
        (
            "scrubber",
            f"{facts['scrubber']['version']} (rule set {facts['scrubber']['ruleset_version']})",
        ),
        ("rule set digest", f"sha256:{facts['scrubber']['ruleset_digest']}"),
    ]
    for name, value in rows:
        table.add_row(name, "-" if value is None else escape(str(value)))
    subjects = Table(title="subjects")
    for column in ("subject", "sha256", "local file", "digest"):
        subjects.add_column(column, overflow="fold")  # names matter: wrap, never elide
    for item in verified["subjects"]:
        checked = item["checked_file"]
        subjects.add_row(
            escape(item["name"]),
            f"{str(item['sha256'])[:16]}…",
            escape(checked) if checked else "-",
            "[green]matches" if checked else "[yellow]not checked",
        )
    return Group(table, subjects)


def _pairs(mapping: Any) -> str:
    if not isinstance(mapping, dict) or not mapping:
        return "none"
    return ", ".join(f"{key} {value}" for key, value in sorted(mapping.items()))


def _cells(*values: Any) -> list[str]:
    return [
        "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)
        for value in values
    ]


def _slash(values: Any) -> str:
    return " / ".join("-" if value is None else str(value) for value in values)
