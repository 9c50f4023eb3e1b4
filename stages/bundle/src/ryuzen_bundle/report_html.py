"""``report.html``: the month's performance report, one self-contained file.

Everything is inline — styles and SVG charts, no script, no fonts, no links to fetch —
so it opens offline in any browser, straight out of the ZIP. It is drawn from the daily
summary alone (a few rows per model and day), never from the events. Monthly figures
per model are event-weighted from the daily rows; percentiles cannot be combined across
days, so the model table shows the spread of the daily medians instead of inventing a
monthly one.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import polars as pl

from ryuzen_bundle.daily_summary import ERROR_STATUSES, MonthFigures
from ryuzen_bundle.month_window import day_date, days_in
from ryuzen_bundle.svg_charts import OTHER_COLOUR, PALETTE, Series, line_chart, stacked_bar_chart

_TOP_MODELS = len(PALETTE)
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1000px;color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem}
.meta{color:#555;font-size:.9rem}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.6rem .9rem;min-width:9rem}
.card b{display:block;font-size:1.3rem}
.empty{border:2px solid #E69F00;border-radius:6px;padding:1rem;background:#fff8e6}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border-bottom:1px solid #e5e5e5;padding:.25rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}
.chart{width:100%;height:auto;max-width:760px;display:block;margin:.5rem 0}
.note{color:#666;font-size:.8rem}
"""


@dataclass(frozen=True)
class ReportFacts:
    """What the report states besides the figures."""

    partner: str
    month: str
    created_at: str
    builder_version: str
    duplicates_removed: int
    quarantined: int


def _count(value: int | float | None) -> str:
    return "&ndash;" if value is None else f"{value:,.0f}"


def _ms(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:,.1f}"


def _share(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value * 100:.2f}%"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _per_day(frame: pl.DataFrame, column: str, month: str) -> list[float | None]:
    by_day = dict(
        zip(frame.get_column("day").to_list(), frame.get_column(column).to_list(), strict=True)
    )
    return [by_day.get(day_date(month, day)) for day in range(1, days_in(month) + 1)]


def _charts(figures: MonthFigures, month: str) -> str:
    summary = figures.summary
    labels = [f"{day:02d}" for day in range(1, days_in(month) + 1)]
    ranking = (
        summary.group_by("model_id")
        .agg(pl.col("events").sum())
        .sort(["events", "model_id"], descending=[True, False])
    )
    models = ranking.get_column("model_id").to_list()
    top = models[:_TOP_MODELS]
    colours = dict(zip(top, PALETTE, strict=False))

    def model_series(column: str) -> list[Series]:
        return [
            Series(
                model,
                _per_day(summary.filter(pl.col("model_id") == model), column, month),
                colours[model],
            )
            for model in top
        ]

    event_series = model_series("events")
    if len(models) > len(top):
        rest = (
            summary.filter(~pl.col("model_id").is_in(top))
            .group_by("day")
            .agg(pl.col("events").sum())
        )
        event_series.append(Series("other models", _per_day(rest, "events", month), OTHER_COLOUR))
    charts = [
        ("Events per receipt day", stacked_bar_chart("Events per day", labels, event_series)),
        (
            "Latency p50 (ms)",
            line_chart("Latency p50 (ms)", labels, model_series("latency_ms_p50"), "ms"),
        ),
        (
            "Latency p99 (ms)",
            line_chart("Latency p99 (ms)", labels, model_series("latency_ms_p99"), "ms"),
        ),
        (
            "Time to first token p50 (ms)",
            line_chart("TTFT p50 (ms)", labels, model_series("ttft_ms_p50"), "ms"),
        ),
        (
            "Error rate (status not ok)",
            line_chart("Error rate", labels, model_series("error_rate"), "%"),
        ),
        (
            "Output tokens per second p50",
            line_chart("Tokens/s p50", labels, model_series("tokens_per_second_p50"), ""),
        ),
    ]
    note = (
        f'<p class="note">Charts show the {len(top)} models with the most events; '
        f"{len(models) - len(top)} more are in the tables and the daily summary.</p>"
        if len(models) > len(top)
        else ""
    )
    return note + "".join(f"<h2>{escape(title)}</h2>{svg}" for title, svg in charts)


def _model_table(figures: MonthFigures) -> str:
    weighted = [
        (pl.col(f"status_rate_{status}") * pl.col("events")).sum() / pl.col("events").sum()
        for status in ERROR_STATUSES
    ]
    months = (
        figures.summary.group_by("model_id")
        .agg(
            pl.col("events").sum(),
            ((pl.col("error_rate") * pl.col("events")).sum() / pl.col("events").sum()).alias(
                "error_rate"
            ),
            *(
                expr.alias(f"status_rate_{status}")
                for expr, status in zip(weighted, ERROR_STATUSES, strict=True)
            ),
            pl.col("input_tokens_sum").sum(),
            pl.col("output_tokens_sum").sum(),
            pl.col("latency_ms_p50").min().alias("p50_min"),
            pl.col("latency_ms_p50").median().alias("p50_median"),
            pl.col("latency_ms_p50").max().alias("p50_max"),
            pl.len().alias("days"),
        )
        .sort(["events", "model_id"], descending=[True, False])
    )
    rows = [
        [
            escape(row["model_id"] or ""),
            _count(row["events"]),
            str(row["days"]),
            _share(row["error_rate"]),
            *(_share(row[f"status_rate_{status}"]) for status in ERROR_STATUSES),
            _count(row["input_tokens_sum"]),
            _count(row["output_tokens_sum"]),
            f"{_ms(row['p50_min'])} / {_ms(row['p50_median'])} / {_ms(row['p50_max'])}",
        ]
        for row in months.iter_rows(named=True)
    ]
    headers = [
        "model",
        "events",
        "days",
        "error rate",
        *ERROR_STATUSES,
        "input tokens",
        "output tokens",
        "daily latency p50 min / median / max (ms)",
    ]
    return _table(headers, rows)


def _day_table(figures: MonthFigures) -> str:
    rows = [
        [
            row["day"].isoformat(),
            _count(row["events"]),
            _share(row["error_rate"]),
            _ms(row["latency_ms_p50"]),
            _ms(row["latency_ms_p90"]),
            _ms(row["latency_ms_p99"]),
            _ms(row["ttft_ms_p50"]),
            _ms(row["ttft_ms_p99"]),
            _ms(row["tokens_per_second_p50"]),
        ]
        for row in figures.day_totals.iter_rows(named=True)
    ]
    headers = [
        "day",
        "events",
        "error rate",
        "latency p50",
        "p90",
        "p99",
        "TTFT p50",
        "TTFT p99",
        "tokens/s p50",
    ]
    return _table(headers, rows)


def render_report(facts: ReportFacts, figures: MonthFigures) -> str:
    """The report as one HTML document."""
    watermark = (
        figures.latest_received_at.isoformat() if figures.latest_received_at is not None else "none"
    )
    cards = [
        ("events", _count(figures.events)),
        ("models", _count(figures.summary.get_column("model_id").n_unique())),
        ("duplicates removed", _count(facts.duplicates_removed)),
        ("late events", _count(figures.late_events)),
        ("quarantined (certificates)", _count(facts.quarantined)),
    ]
    title = f"Ryuzen Telemetry — {facts.partner} — {facts.month}"
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">Monthly performance report. Receipt month {escape(facts.month)} (UTC); '
        f"latest receipt included: {escape(watermark)}. Built {escape(facts.created_at)} by "
        f"ryuzen-bundle {escape(facts.builder_version)}.</p>",
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b>{value}</b>{escape(label)}</div>' for label, value in cards
        )
        + "</div>",
    ]
    if figures.events == 0:
        body.append(
            '<div class="empty"><b>This bundle holds no events.</b> Nothing was received for '
            f"{escape(facts.partner)} in {escape(facts.month)} (after deduplication).</div>"
        )
    else:
        body += [
            "<h2>Models this month</h2>",
            _model_table(figures),
            _charts(figures, facts.month),
            "<h2>Every model, per day</h2>",
            _day_table(figures),
        ]
    body.append(
        '<p class="note">Days are receipt days (UTC). Percentiles are exact, linearly '
        "interpolated, nulls ignored; error rate is the share of events whose status is not "
        "'ok'. Figures come from data/daily_summary.parquet in this bundle.</p>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
