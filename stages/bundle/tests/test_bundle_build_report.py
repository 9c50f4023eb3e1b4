"""``report.html`` and its charts: self-contained, escaped, honest about what it shows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
from bundle_build_support import frame, row
from ryuzen_bundle.daily_summary import summarize
from ryuzen_bundle.report_html import ReportFacts, render_report
from ryuzen_bundle.svg_charts import Series, line_chart, stacked_bar_chart

FACTS = ReportFacts("acme", "2026-10", "2026-11-02T03:00:00.000Z", "0.1.0", 4, 2)


def figures_for(tmp_path: Path, models: list[str]):
    received = datetime(2026, 10, 7, 12, tzinfo=UTC)
    rows = [
        row(received_at=received + timedelta(days=i % 3), batch_id="01J0", model_id=model)
        for i, model in enumerate(models * 5)
    ]
    days = []
    data = frame(rows).with_columns(pl.col("received_at").dt.date().alias("d"))
    for (day,), part in data.group_by("d"):
        path = tmp_path / f"{day}.parquet"
        part.drop("d").write_parquet(path)
        days.append((day, [path]))
    return summarize(sorted(days))


def test_labels_are_escaped(tmp_path: Path) -> None:
    html = render_report(FACTS, figures_for(tmp_path, ["acme/<b>bold</b>&x"]))
    assert "<b>bold</b>" not in html
    assert "acme/&lt;b&gt;bold&lt;/b&gt;&amp;x" in html


def test_many_models_fold_into_other(tmp_path: Path) -> None:
    models = [f"acme/m{i:02d}" for i in range(11)]
    html = render_report(FACTS, figures_for(tmp_path, models))
    assert "other models" in html
    assert "3 more are in the tables" in html
    for model in models:  # every model is in the table
        assert model in html


def test_charts_handle_gaps_and_zeros() -> None:
    labels = [f"{d:02d}" for d in range(1, 32)]
    values: list[float | None] = [None] * 31
    values[4] = 3.0  # a single point is drawn as a dot
    svg = line_chart("t", labels, [Series("a", values, "#000")], "ms")
    assert "<circle" in svg and "<polyline" not in svg
    assert stacked_bar_chart("t", labels, [Series("a", [0.0] * 31, "#000")]).count("<rect") == 2


def test_empty_month_report_says_so() -> None:
    html = render_report(FACTS, summarize([]))
    assert "This bundle holds no events" in html
    assert "<svg" not in html
    assert date(2026, 10, 1).isoformat() not in html
