"""rich renderings for bundles: a byte progress bar, a verified bundle, the demo's bundles."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table


@contextmanager
def byte_progress(console: Console) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """Yield a factory: ``(label, total bytes) -> callback(bytes done)`` advancing one bar."""
    progress = Progress(
        TextColumn("[bold]{task.description:<12}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
    )

    def bar(label: str, total: int) -> Callable[[int], None]:
        task = progress.add_task(label, total=total)
        return lambda amount: progress.advance(task, amount)

    with progress:
        yield bar


def bundle_report(facts: dict[str, Any]) -> Table:
    """A verified bundle (``BundleVerification.to_dict()``, plus download facts if any)."""
    table = Table(title="bundle verified", show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    builder = facts.get("builder") or {}
    rows: list[tuple[str, Any]] = [
        ("file", facts.get("path")),
        ("partner", facts.get("partner")),
        ("month", facts.get("month")),
        ("signed by key", facts.get("key_id")),
        ("created at", facts.get("created_at")),
        ("builder", f"{builder.get('name', '-')} {builder.get('version', '')}".strip()),
        ("schema version", facts.get("schema_version")),
        ("files checked", facts.get("files")),
        ("bytes checked", facts.get("bytes")),
        ("certificates verified", facts.get("certificates")),
        ("empty month", facts.get("empty")),
    ]
    counts = facts.get("counts") or {}
    rows += [(f"{name.replace('_', ' ')}", value) for name, value in sorted(counts.items())]
    for name, value in rows:
        table.add_row(name, "-" if value is None else escape(str(value)))
    return table


def demo_bundles_table(bundles: dict[str, Any]) -> Table:
    """Per partner: the bundle built, pulled through the API, downloaded and verified."""
    table = Table(title="bundles (built → pulled → downloaded → verified)")
    for column in ("partner", "month", "bytes", "files", "certificates", "events", "verified"):
        table.add_column(column, justify="left" if column in ("partner", "month") else "right")
    for partner, bundle in sorted((bundles.get("partners") or {}).items()):
        verified = bundle.get("verified") or {}
        counts = verified.get("counts") or {}
        table.add_row(
            escape(partner),
            escape(str(bundle.get("month", "-"))),
            str(bundle.get("bytes", "-")),
            str(verified.get("files", "-")),
            str(verified.get("certificates", "-")),
            str(counts.get("events", "-")),
            "[green]yes" if bundle.get("ok") else f"[red]no: {escape(str(bundle.get('error')))}",
        )
    return table
