"""rich renderings for bundles: a byte progress bar, a verified bundle, a verified deletion
receipt, the demo's bundles and their cleanup."""

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


def receipt_report(facts: dict[str, Any]) -> Table:
    """A verified deletion receipt (``ReceiptVerification.to_dict()``)."""
    table = Table(title="deletion receipt verified", show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    bundle = facts.get("bundle") or {}
    rows: list[tuple[str, Any]] = [
        ("partner", facts.get("partner")),
        ("month", facts.get("month")),
        ("signed by key", facts.get("key_id")),
        ("receipt sha256", facts.get("receipt_sha256")),
        ("deleted at", facts.get("deleted_at")),
        ("bundle", bundle.get("key")),
        ("bundle sha256", bundle.get("sha256")),
        ("bundle checked against", facts.get("bundle_checked") or "not given"),
        ("objects deleted", facts.get("objects_deleted_total")),
        ("already empty", facts.get("already_empty")),
        ("deleted keys sha256", facts.get("deleted_keys_sha256")),
    ]
    rows += [
        (f"  in {bucket}", count) for bucket, count in sorted(facts["objects_deleted"].items())
    ]
    rows += [
        ("proven empty", f"{item['bucket']}/{item['prefix']}")
        for item in facts.get("prefixes_proven_empty") or []
    ]
    if facts.get("supersedes"):
        rows.append(("supersedes", facts["supersedes"]))
    for name, value in rows:
        table.add_row(name, "-" if value is None else escape(str(value)))
    return table


def demo_cleanup_table(cleanup: dict[str, Any]) -> Table:
    """Per partner-month: cleaned, receipt verified, working prefixes listed empty, trail."""
    table = Table(title="cleanup (delivered → cleaned → receipt verified → prefixes empty)")
    columns = ("partner", "month", "state", "deleted", "receipt", "left", "trail", "ok")
    for column in columns:
        table.add_column(column, justify="right" if column in ("deleted", "left") else "left")
    for partner, entry in sorted((cleanup.get("partners") or {}).items()):
        receipt = entry.get("receipt") or {}
        remaining = entry.get("remaining_objects") or {}
        table.add_row(
            escape(partner),
            escape(str(entry.get("month", "-"))),
            escape(str(entry.get("state") or "-")),
            str(receipt.get("objects_deleted_total", "-")),
            f"sha256:{str(receipt['receipt_sha256'])[:12]}…" if receipt else "-",
            str(sum(remaining.values())) if remaining else "-",
            escape(str(entry.get("trail_verdict") or "-")),
            "[green]yes" if entry.get("ok") else f"[red]no: {escape(str(entry.get('error')))}",
        )
    return table
