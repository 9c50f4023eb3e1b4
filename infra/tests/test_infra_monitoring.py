"""The SCRUB_VIOLATION alarm counts what sanitize really logs: its metric filter is run
against a "sanitized" log line recorded from the sanitize handler.

The line is ``stages/sanitize/tests/events/sanitized_log_line.json``: sanitize's own tests
check that its live log line has that shape and those counts, so a renamed or dropped
field fails there, and a filter that stops matching it fails here. The recorded case is
the default ``onPii: redact`` with one redacted e-mail address: nothing is quarantined,
and the alarm must still count it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.tests.pulumi_harness import REPO_ROOT, ProgramRun

SANITIZED_LOG_LINE = REPO_ROOT / "stages/sanitize/tests/events/sanitized_log_line.json"
_COMPARISON = re.compile(
    r'^\$\.(?P<path>[A-Za-z0-9_.]+)\s*(?P<op>=|!=|>=|<=|>|<)\s*(?P<value>"[^"]*"|-?[0-9.]+)$'
)


def _select(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def matches(pattern: str, record: dict[str, Any]) -> bool:
    """Whether a CloudWatch Logs JSON filter pattern matches one JSON log event.

    Only the syntax the program uses: ``{ $.a.b OP value && ... }`` with a quoted string
    (exact) or a number. Anything else raises, so a new pattern gets a new evaluator here
    rather than a test that passes by accident.
    """
    body = pattern.strip()
    assert body.startswith("{") and body.endswith("}"), pattern
    for term in body[1:-1].split("&&"):
        found = _COMPARISON.match(term.strip())
        assert found, f"unsupported filter syntax: {term!r}"
        actual = _select(record, found["path"])
        op, text = found["op"], found["value"]
        if text.startswith('"'):
            assert op in ("=", "!="), term
            equal = isinstance(actual, str) and actual == text[1:-1]
            if equal != (op == "="):
                return False
            continue
        # A numeric comparison never matches a missing, textual or structured field.
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return False
        number = float(text)
        outcome = {
            "=": actual == number,
            "!=": actual != number,
            ">": actual > number,
            "<": actual < number,
            ">=": actual >= number,
            "<=": actual <= number,
        }[op]
        if not outcome:
            return False
    return True


def metric_value(selector: str, record: dict[str, Any]) -> float:
    assert selector.startswith("$."), selector
    value = _select(record, selector[2:])
    assert isinstance(value, int | float) and not isinstance(value, bool), selector
    return float(value)


@pytest.fixture(scope="module")
def sanitized_line() -> dict[str, Any]:
    return dict(json.loads(SANITIZED_LOG_LINE.read_text(encoding="utf-8")))


def _scrub_filters(run: ProgramRun) -> list[dict[str, Any]]:
    prefix = f"ryuzen-{run.stack}"
    sanitize_logs = run.named(f"{prefix}-sanitize-logs").outputs["name"]
    filters = [
        f.inputs
        for f in run.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
        if f.inputs["metricTransformation"]["name"] == "ScrubViolations"
    ]
    assert filters, "no ScrubViolations metric filter"
    assert {f["logGroupName"] for f in filters} == {sanitize_logs}
    return filters


def _metric(filters: list[dict[str, Any]], record: dict[str, Any]) -> float:
    """What one log event adds to the ScrubViolations metric."""
    return sum(
        metric_value(f["metricTransformation"]["value"], record)
        for f in filters
        if matches(f["pattern"], record)
    )


def test_the_recorded_line_is_a_redaction_without_a_quarantine(
    sanitized_line: dict[str, Any],
) -> None:
    # The case the alarm used to miss: with onPii: redact nothing is quarantined.
    assert sanitized_line["message"] == "sanitized"
    assert sanitized_line["quarantined"] == {}
    assert sanitized_line["redactions"] == {"EMAIL": 1}
    assert sanitized_line["scrub_violations"] == 1


def test_redacted_pii_counts_towards_the_scrub_violation_alarm(
    any_run: ProgramRun, sanitized_line: dict[str, Any]
) -> None:
    filters = _scrub_filters(any_run)
    assert _metric(filters, sanitized_line) == sanitized_line["scrub_violations"]
    # Every finding counts, redacted or quarantined, exactly once.
    many = {**sanitized_line, "quarantined": {"pii_in_identifier": 2}, "scrub_violations": 7}
    assert _metric(filters, many) == 7


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"scrub_violations": 0, "redactions": {}}, id="clean-object"),
        pytest.param({"message": "sanitize failed"}, id="other-line"),
        pytest.param({"scrub_violations": None}, id="no-count"),
    ],
)
def test_other_lines_add_nothing(
    dev_run: ProgramRun, sanitized_line: dict[str, Any], change: dict[str, Any]
) -> None:
    record = {k: v for k, v in {**sanitized_line, **change}.items() if v is not None}
    assert _metric(_scrub_filters(dev_run), record) == 0


def test_the_alarm_fires_on_the_hourly_sum_over_the_threshold(
    any_run: ProgramRun, request: pytest.FixtureRequest
) -> None:
    values = request.getfixturevalue(f"{any_run.stack}_values")
    threshold = values.get("ryuzen-telemetry:scrubViolationAlarmThreshold", 100)
    (alarm,) = [
        a.inputs
        for a in any_run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.inputs["metricName"] == "ScrubViolations"
    ]
    (metric_filter,) = _scrub_filters(any_run)
    assert alarm["namespace"] == metric_filter["metricTransformation"]["namespace"]
    assert (alarm["statistic"], alarm["period"], alarm["threshold"]) == ("Sum", 3600, threshold)
    assert alarm["comparisonOperator"] == "GreaterThanThreshold"
    assert alarm["alarmActions"] == [any_run.outputs["alarmTopicArn"]]


def test_the_sweep_alarms_on_working_months_that_outlived_their_delivery(
    any_run: ProgramRun,
) -> None:
    # The sweep's log line (ryuzen_cleanup.sweep_handler: "retention sweep done" with the
    # report's counts; its tests check the field) with two stale partner-months...
    prefix = f"ryuzen-{any_run.stack}"
    sweep_logs = any_run.named(f"{prefix}-cleanup-sweep-logs").outputs["name"]
    (stale,) = [
        f.inputs
        for f in any_run.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
        if f.inputs["metricTransformation"]["name"] == "StaleWorkingMonths"
    ]
    line = {
        "message": "retention sweep done",
        "raw_deleted": 0,
        "quarantine_deleted": 0,
        "stale_working_months": 2,
        "stale_months": ["acme 2026-09", "orbital 2026-10"],
    }
    # ...raises the metric by two; a clean sweep and other lines add nothing
    assert stale["logGroupName"] == sweep_logs
    assert matches(stale["pattern"], line)
    assert metric_value(stale["metricTransformation"]["value"], line) == 2
    assert not matches(stale["pattern"], {**line, "stale_working_months": 0})
    assert not matches(stale["pattern"], {**line, "message": "retention sweep failed"})
    (alarm,) = [
        a.inputs
        for a in any_run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.inputs["metricName"] == "StaleWorkingMonths"
    ]
    assert (alarm["metricName"], alarm["threshold"], alarm["period"]) == (
        "StaleWorkingMonths",
        0,
        3600,
    )
    sweep = any_run.named(f"{prefix}-cleanup-sweep-fn").inputs["environment"]["variables"]
    assert sweep["SANITIZED_BUCKET"] == any_run.outputs["buckets"]["sanitized"]
    assert sweep["ANALYTICS_BUCKET"] == any_run.outputs["buckets"]["analytics"]
