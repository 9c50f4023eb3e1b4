"""rich renderings of the CLI's results: progress bars, the send table, the demo summary."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console, Group
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
def event_progress(
    console: Console,
) -> Iterator[Callable[[str, int], Callable[[BatchOutcome], None]]]:
    """Yield a factory: ``(label, total events) -> per-batch callback`` advancing one bar."""
    progress = Progress(
        TextColumn("[bold]{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )

    def bar(label: str, total: int) -> Callable[[BatchOutcome], None]:
        task = progress.add_task(label, total=total)
        return lambda outcome: progress.advance(task, outcome.events)

    with progress:
        yield bar


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
    verdict = "[green]OK" if summary["ok"] else "[red]FAILED: " + "; ".join(summary["problems"])
    footer = Table.grid(padding=(0, 2))
    footer.add_row(
        "RAW",
        f"{raw['objects']} objects, {raw['events']} events, {raw['bytes']:,} bytes "
        f"for {summary['accepted_batch_ids']} accepted batches",
    )
    footer.add_row(
        "time",
        f"{summary['sending_s']} s sending ({summary['events_per_s']} events/s), "
        f"{summary['elapsed_s']} s in all",
    )
    footer.add_row("verdict", verdict)
    return Group(stages, traffic, storage, footer)


def _cells(*values: Any) -> list[str]:
    return [
        "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)
        for value in values
    ]


def _slash(values: Any) -> str:
    return " / ".join("-" if value is None else str(value) for value in values)
