"""Writes ``bench/RESULTS.md``: every benchmark figure beside its baseline, as a ratio.

``nox -s bench`` runs this after the benchmarks; it reads ``bench/results/<name>.json``
(whatever exists — a benchmark not run yet is listed as such) and describes the machine.
Each baseline is measured by the same benchmark in the same run, so a ratio compares
figures taken on the same machine at the same moment, never against a remembered number.

    uv run python bench/results_report.py
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
REPORT = HERE / "RESULTS.md"

Row = tuple[str, str, str, str]  # figure, ours, baseline, ratio


def machine() -> list[str]:
    """One line per fact about the machine the figures were taken on."""
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kib = int(meminfo.read_text().split("MemTotal:", 1)[1].split()[0])
        memory = f"{total_kib / 2**20:.1f} GiB"
    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores; memory {memory}",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
    ]


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def _ratio(ours: float, baseline: float, *, higher_is_better: bool = True) -> str:
    if not baseline or not ours:
        return "-"
    ratio = ours / baseline
    if round(ratio, 2) == 1:
        return "1.00x (equal)"
    better = ratio > 1 if higher_is_better else ratio < 1
    return f"{ratio:.2f}x {'(better)' if better else '(worse)'}"


def ingest_rows(data: dict[str, Any]) -> list[Row]:
    floor = data.get("floor_parse_and_gzip", {}).get("events_per_second", 0)
    rows: list[Row] = []
    for name, figures in data["throughput"].items():
        ours = figures["events_per_second"]
        rows.append(
            (
                f"ingest `{name}` events/s (1 thread)",
                _number(ours),
                f"{_number(floor)} (json.loads + gzip only)" if floor else "-",
                _ratio(ours, floor),
            )
        )
    for name, figures in data.get("cold_import", {}).items():
        rows.append(
            (
                f"cold import of the handler ({name}), ms",
                _number(figures["handler_process_ms"]),
                f"{_number(figures['python_baseline_ms'])} (bare python)",
                _ratio(
                    figures["handler_process_ms"],
                    figures["python_baseline_ms"],
                    higher_is_better=False,
                ),
            )
        )
    return rows


def sanitize_rows(data: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    transform = data["transform"]["events_per_second_per_core"]
    floor = data.get("contract_floor", {}).get("parse_plus_validation_events_per_second_per_core")
    rows.append(
        (
            "sanitize transform events/s per core (target 100,000)",
            _number(transform),
            f"{_number(floor)} (JSON parse + contract validation only)" if floor else "-",
            _ratio(transform, floor) if floor else "-",
        )
    )
    ceiling = data.get("transform_ceiling")
    if ceiling:
        rows.append(
            (
                "sanitize ceiling events/s per core: parse + validate + scrub + second scan",
                _number(ceiling["parse_validate_scans_events_per_second_per_core"]),
                f"{_number(ceiling['scans_only_events_per_second_per_core'])} "
                "(scrub + second scan alone)",
                _ratio(
                    ceiling["parse_validate_scans_events_per_second_per_core"],
                    ceiling["scans_only_events_per_second_per_core"],
                ),
            )
        )
    ours, presidio = data.get("scrubber_on_presidio_sample"), data.get("presidio")
    if ours and presidio:
        rows.append(
            (
                "scrubber events/s per core, Presidio's sample (target 25x)",
                _number(ours["events_per_second_per_core"]),
                f"{_number(presidio['events_per_second_per_core'])} (Presidio patterns)",
                _ratio(ours["events_per_second_per_core"], presidio["events_per_second_per_core"]),
            )
        )
        rows.append(
            (
                "event precision (target 0.95)",
                f"{ours['event_precision']}",
                f"{presidio['event_precision']} (Presidio)",
                _ratio(ours["event_precision"], presidio["event_precision"]),
            )
        )
        for kind, recall in ours["recall_per_kind"].items():
            theirs = presidio["recall_per_kind"].get(kind)
            rows.append(
                (
                    f"recall {kind}",
                    f"{recall}",
                    "not detected by Presidio" if theirs is None else f"{theirs} (Presidio)",
                    _ratio(recall, theirs) if theirs else "-",
                )
            )
    return rows


def bundle_rows(data: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for month in data["months"]:
        events, builder, naive = month["unique_events"], month["builder"], month["naive_floor"]
        label = f"{events:,} events"
        rows.append(
            (
                f"bundle build wall s, {label} (target <= 1.5x)",
                _number(builder["wall_seconds"]),
                f"{_number(naive['wall_seconds'])} (polars unique + zip -0)",
                _ratio(builder["wall_seconds"], naive["wall_seconds"], higher_is_better=False),
            )
        )
        rows.append(
            (
                f"bundle build peak RSS MiB, {label} (target <= 300)",
                _number(builder["peak_rss_mib"]),
                f"{_number(naive['peak_rss_mib'])} (naive floor)",
                _ratio(builder["peak_rss_mib"], naive["peak_rss_mib"], higher_is_better=False),
            )
        )
    return rows


def end_to_end_rows(data: dict[str, Any]) -> list[Row]:
    ours = data["pipeline"]["events_per_second"]
    baseline = data["in_process"]["events_per_second"]
    return [
        (
            "end-to-end events/s through the local stack (ingest -> analytics)",
            _number(ours),
            f"{_number(baseline)} (same stages called in-process, no stack)",
            _ratio(ours, baseline),
        )
    ]


def soak_rows(data: dict[str, Any]) -> list[Row]:
    memory, reconciliation = data["memory"], data["reconciliation"]
    rows: list[Row] = [
        (
            f"accepted events/s over {data['sending_seconds']:.0f} s of load",
            _number(data["accepted_events_per_second"]),
            "-",
            "-",
        ),
        (
            "request latency p50 / p99 ms (worst round)",
            f"{max(data['latency_ms_p50_per_round'])} / {max(data['latency_ms_p99_per_round'])}",
            "-",
            "-",
        ),
        (
            "every accepted event sanitized or quarantined exactly once",
            str(reconciliation["exactly_once_every_round"]),
            f"{reconciliation['sanitized']:,} + {reconciliation['quarantined']:,}",
            "-",
        ),
        (
            "RSS trend after warm-up, MiB per round (growth trend)",
            f"{memory['slope_mib_per_round_after_warm_up']} ({memory['growth_trend']})",
            f"after each round: {memory['rss_mib_after_each_round']}",
            "-",
        ),
    ]
    return rows


SECTIONS: dict[str, tuple[str, Callable[[dict[str, Any]], list[Row]]]] = {
    "ingest": ("Ingest", ingest_rows),
    "sanitize": ("Sanitize (vs Presidio)", sanitize_rows),
    "bundle": ("Bundle (vs the naive floor)", bundle_rows),
    "e2e": ("End to end through the local stack", end_to_end_rows),
    "soak": ("Load and soak on the local stack", soak_rows),
}


def render(results_dir: Path = RESULTS_DIR) -> str:
    """The Markdown report of every result file in ``results_dir``."""
    lines = [
        "# Benchmark results",
        "",
        "Written by `nox -s bench` (`bench/results_report.py`) from `bench/results/*.json`.",
        "Every baseline was measured by the same benchmark in the same run; the ratio is",
        "ours / baseline (for times and memory, lower is better).",
        "",
        "## Machine",
        "",
        *machine(),
        "",
    ]
    for name, (title, rows_of) in SECTIONS.items():
        path = results_dir / f"{name}.json"
        lines += [f"## {title}", ""]
        if not path.exists():
            lines += [f"Not run yet: `nox -s bench -- {name}`.", ""]
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        measured = data.get("measured_at") or datetime.fromtimestamp(
            path.stat().st_mtime, UTC
        ).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines += [
            f"Measured {measured} (`bench/results/{name}.json`).",
            "",
            "| figure | ours | baseline (same run) | ratio |",
            "|---|---:|---|---|",
        ]
        lines += [
            f"| {figure} | {ours} | {base} | {ratio} |"
            for figure, ours, base, ratio in rows_of(data)
        ]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    REPORT.write_text(render(), encoding="utf-8")
    print(f"written to {REPORT.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
