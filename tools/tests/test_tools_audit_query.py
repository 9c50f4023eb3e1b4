"""`ryuzen audit query` against moto: filters, GSI order, limit, pagination, formats, targets,
errors. The table comes from the contracts' definition, so it has the real GSI."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from ryuzen_contracts.audit_log import AuditEventType, AuditLog
from ryuzen_contracts.tables import audit_table_definition
from ryuzen_tools.audit_query import (
    CSV_COLUMNS,
    DEFAULT_PARTNER_WINDOW,
    AuditQueryError,
    QueryOptions,
    parse_duration,
    parse_types,
    query_events,
)
from ryuzen_tools.local_stack.aws import LocalClients
from tools_audit_support import (
    FAT_DETAIL,
    NOW,
    REGION,
    audit_event,
    json_ids,
    mocked_audit_table,
    ryuzen,
    write_all,
)
from tools_support import unique

E = AuditEventType


@pytest.fixture
def audit(monkeypatch: pytest.MonkeyPatch) -> Iterator[AuditLog]:
    with mocked_audit_table(monkeypatch) as log:
        yield log


@pytest.fixture
def mixed(audit: AuditLog) -> dict[str, str]:
    """Events of several types, partners and months; name -> event id."""
    events = {
        "acme_scrub": audit_event(E.SCRUB_VIOLATION, ago=timedelta(minutes=50), stage="sanitize"),
        "system_error": audit_event(E.ERROR, ago=timedelta(minutes=40), partner=None),
        "acme_created": audit_event(E.BUNDLE_CREATED, ago=timedelta(minutes=30)),
        "orbital_created": audit_event(
            E.BUNDLE_CREATED, ago=timedelta(minutes=20), partner="orbital"
        ),
        "acme_october_error": audit_event(E.ERROR, ago=timedelta(minutes=10), month="2026-10"),
        "acme_old_delivered": audit_event(E.BUNDLE_DELIVERED, ago=timedelta(days=3)),
    }
    write_all(audit, *events.values())
    return {name: event.event_id for name, event in events.items()}


def ids(mixed: dict[str, str], *names: str) -> list[str]:
    return [mixed[name] for name in names]


# --- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("90m", timedelta(minutes=90), id="minutes"),
        pytest.param("24h", timedelta(hours=24), id="hours"),
        pytest.param("7d", timedelta(days=7), id="days"),
        pytest.param(" 1h ", timedelta(hours=1), id="spaces"),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["24", "h", "0h", "-1h", "1.5h", "7w", "24 h", "1d2h", "99999d", "", "24H"]
)
def test_bad_durations_name_the_value(text: str) -> None:
    with pytest.raises(AuditQueryError, match=re.escape(repr(text))):
        parse_duration(text)


def test_types_are_case_insensitive_and_unknown_ones_named() -> None:
    assert parse_types(["error", "BUNDLE_CREATED"]) == (E.ERROR, E.BUNDLE_CREATED)
    with pytest.raises(AuditQueryError, match=r"'NOPE'.*BUNDLE_CREATED"):
        parse_types(["NOPE"])


def test_options_need_a_window_a_partner_or_a_month() -> None:
    with pytest.raises(AuditQueryError, match="nothing to query"):
        QueryOptions()


def test_the_window_of_each_kind_of_query() -> None:
    assert QueryOptions(recent=timedelta(hours=2)).since(NOW) == NOW - timedelta(hours=2)
    assert QueryOptions(partner="acme", month="2026-10").since(NOW) is None
    assert QueryOptions(month="2026-10").since(NOW) == datetime(2026, 10, 1, tzinfo=UTC)
    assert QueryOptions(partner="acme").since(NOW) == NOW - DEFAULT_PARTNER_WINDOW


# --- the reads ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param(
            {"recent": timedelta(hours=1)},
            [
                "acme_october_error",
                "orbital_created",
                "acme_created",
                "system_error",
                "acme_scrub",
            ],
            id="recent-every-type-newest-first",
        ),
        pytest.param(
            {"recent": timedelta(minutes=35)},
            ["acme_october_error", "orbital_created", "acme_created"],
            id="recent-window",
        ),
        pytest.param(
            {"recent": timedelta(hours=1), "types": (E.ERROR,)},
            ["acme_october_error", "system_error"],
            id="recent-one-type",
        ),
        pytest.param(
            {"recent": timedelta(days=7), "types": (E.BUNDLE_DELIVERED, E.SCRUB_VIOLATION)},
            ["acme_scrub", "acme_old_delivered"],
            id="recent-two-types",
        ),
        pytest.param(
            {"recent": timedelta(hours=1), "partner": "acme"},
            ["acme_october_error", "acme_created", "acme_scrub"],
            id="recent-partner",
        ),
        pytest.param(
            {"recent": timedelta(hours=1), "month": "2026-10"},
            ["acme_october_error"],
            id="recent-month",
        ),
        pytest.param(
            {"partner": "acme", "month": "2026-11"},
            ["acme_created", "acme_scrub", "acme_old_delivered"],
            id="partner-month-all-time",
        ),
        pytest.param(
            {"partner": "acme", "month": "2026-11", "recent": timedelta(hours=1)},
            ["acme_created", "acme_scrub"],
            id="partner-month-window",
        ),
        pytest.param(
            {"partner": "acme", "month": "2026-11", "types": (E.BUNDLE_DELIVERED,)},
            ["acme_old_delivered"],
            id="partner-month-type",
        ),
        pytest.param(
            {"recent": timedelta(hours=1), "limit": 2},
            ["acme_october_error", "orbital_created"],
            id="recent-limit",
        ),
        pytest.param(
            {"partner": "nimbus-ai", "month": "2026-11"},
            [],
            id="nothing",
        ),
        pytest.param(
            {"partner": "acme"},
            ["acme_october_error", "acme_created", "acme_scrub", "acme_old_delivered"],
            id="partner-alone",
        ),
        pytest.param(
            {"partner": "acme", "types": (E.ERROR,)},
            ["acme_october_error"],
            id="partner-alone-type",
        ),
        pytest.param(
            {"month": "2026-10"},
            ["acme_october_error"],
            id="month-alone",
        ),
    ],
)
def test_query_events(
    audit: AuditLog, mixed: dict[str, str], options: dict, expected: list[str]
) -> None:
    found = query_events(audit, QueryOptions(**options), NOW)

    assert [event.event_id for event in found] == ids(mixed, *expected)


def test_recent_reads_past_one_page_in_order(audit: AuditLog) -> None:
    # Given two types with ~1.2 MB each in the index: each needs a second page
    fat = [
        audit_event(E.ERROR if m % 2 else E.SCRUB_VIOLATION, ago=timedelta(minutes=m), **FAT_DETAIL)
        for m in range(1, 13)
    ]
    write_all(audit, *fat)

    found = query_events(audit, QueryOptions(recent=timedelta(hours=1), limit=100), NOW)

    assert [e.event_id for e in found] == [e.event_id for e in fat]  # m=1 is the newest


def test_partner_month_reads_past_one_page(audit: AuditLog) -> None:
    fat = [
        audit_event(E.SCRUB_VIOLATION, ago=timedelta(minutes=m), **FAT_DETAIL) for m in range(12)
    ]
    write_all(audit, *fat)

    found = query_events(audit, QueryOptions(partner="acme", month="2026-11"), NOW)

    assert [e.event_id for e in found] == [e.event_id for e in fat]


# --- the command -------------------------------------------------------------------------


def test_json_is_an_array_of_records(audit: AuditLog) -> None:
    written = audit_event(E.BUNDLE_CREATED, events=120, sha256="ab" * 32)
    write_all(audit, written)

    result = ryuzen("audit", "query", "--recent", "1h", "--format", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {
            "occurred_at": written.sk.split("#")[0],
            "event_type": "BUNDLE_CREATED",
            "partner": "acme",
            "month": "2026-11",
            "stage": "bundle",
            "event_id": written.event_id,
            "detail": {"events": 120, "sha256": "ab" * 32},
        }
    ]


def test_csv_has_a_header_and_compact_details(audit: AuditLog) -> None:
    scrub = audit_event(
        E.SCRUB_VIOLATION, stage="sanitize", redactions_by_rule={"EMAIL": 3, "IPV4": 1}
    )
    system = audit_event(E.ERROR, ago=timedelta(minutes=9), partner=None, error_type="Timeout")
    write_all(audit, scrub, system)

    result = ryuzen("audit", "query", "--recent", "1h", "--format", "csv")

    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == [
        "occurred_at",
        "event_type",
        "partner",
        "month",
        "stage",
        "event_id",
        "detail",
    ]
    assert [row[1:6] for row in rows[1:]] == [
        ["SCRUB_VIOLATION", "acme", "2026-11", "sanitize", scrub.event_id],
        ["ERROR", "", "", "bundle", system.event_id],
    ]
    assert rows[1][6] == '{"redactions_by_rule":{"EMAIL":3,"IPV4":1}}'


def test_table_shows_each_event_and_markup_stays_text(audit: AuditLog) -> None:
    write_all(
        audit,
        audit_event(E.ERROR, partner=None, error_type="[bold]Boom[/bold]"),
        audit_event(E.BUNDLE_DELIVERED, ago=timedelta(minutes=8), partner="orbital"),
    )

    result = ryuzen("audit", "query", "--recent", "1h")

    assert result.exit_code == 0, result.output
    assert "[bold]Boom[/bold]" in result.stdout  # printed as written, not styled away
    assert "SYSTEM" in result.stdout
    assert result.stdout.index("ERROR") < result.stdout.index("BUNDLE_DELIVERED")
    assert "orbital" in result.stdout


def test_filters_on_the_command_line(audit: AuditLog, mixed: dict[str, str]) -> None:
    assert json_ids(
        ryuzen("audit", "query", "--recent", "1h", "--type", "error", "--format", "json")
    ) == ids(mixed, "acme_october_error", "system_error")
    assert json_ids(
        ryuzen(
            "audit",
            "query",
            "--recent",
            "7d",
            "--type",
            "BUNDLE_CREATED",
            "--type",
            "BUNDLE_DELIVERED",
            "--partner",
            "acme",
            "--format",
            "json",
        )
    ) == ids(mixed, "acme_created", "acme_old_delivered")
    assert json_ids(
        ryuzen("audit", "query", "--partner", "acme", "--month", "2026-10", "--format", "json")
    ) == ids(mixed, "acme_october_error")


def test_limit_says_when_more_match(audit: AuditLog, mixed: dict[str, str]) -> None:
    result = ryuzen("audit", "query", "--recent", "1h", "--limit", "2", "--format", "json")

    assert json_ids(result) == ids(mixed, "acme_october_error", "orbital_created")
    assert "showing the newest 2; more match" in result.stderr

    exact = ryuzen("audit", "query", "--recent", "1h", "--limit", "5", "--format", "json")
    assert len(json_ids(exact)) == 5
    assert "more match" not in exact.stderr


def test_empty_results_say_so(audit: AuditLog) -> None:
    printed = {"json": "[]\n", "csv": ",".join(CSV_COLUMNS) + "\n", "table": ""}
    for output, stdout in printed.items():
        result = ryuzen("audit", "query", "--recent", "1h", "--format", output)

        assert result.exit_code == 0, result.output
        assert result.stdout == stdout
        assert result.stderr == "no audit events match\n"


def test_table_name_from_the_option_or_the_environment(
    audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)  # the same in-process moto
    ddb.create_table(**audit_table_definition("elsewhere-audit"))
    AuditLog(ddb, "elsewhere-audit").write(audit_event(E.ERROR))

    by_option = ryuzen("audit", "query", "--recent", "1h", "--table", "elsewhere-audit")
    monkeypatch.setenv("RYUZEN_AUDIT_TABLE", "elsewhere-audit")
    by_env = ryuzen("audit", "query", "--recent", "1h", "--format", "json")

    assert "ERROR" in by_option.stdout
    assert len(json_ids(by_env)) == 1


@pytest.mark.parametrize(
    ("args", "named"),
    [
        pytest.param(["--recent", "24x"], "'24x'", id="duration"),
        pytest.param(["--recent", "0d"], "'0d'", id="zero-duration"),
        pytest.param(["--partner", "ACME", "--month", "2026-11"], "'ACME'", id="partner"),
        pytest.param(["--partner", "acme", "--month", "2026-13"], "'2026-13'", id="month"),
        pytest.param(["--recent", "1h", "--month", "11/2026"], "'11/2026'", id="month-format"),
        pytest.param(["--recent", "1h", "--type", "DELETED"], "'DELETED'", id="type"),
        pytest.param([], "nothing to query", id="no-options"),
        pytest.param(
            ["--recent", "1h", "--local", "--endpoint", "http://127.0.0.1:1"],
            "exclude each other",
            id="two-targets",
        ),
    ],
)
def test_bad_values_are_one_line_and_exit_2(audit: AuditLog, args: list[str], named: str) -> None:
    result = ryuzen("audit", "query", *args)

    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("ryuzen audit query: ")
    assert named in line


def test_aws_without_a_region_is_exit_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))  # nor one from ~/.aws

    result = ryuzen("audit", "query", "--recent", "1h")

    assert result.exit_code == 1
    assert result.stderr.startswith("ryuzen audit query: You must specify a region")


def test_a_missing_table_is_exit_1(audit: AuditLog) -> None:
    result = ryuzen("audit", "query", "--recent", "1h", "--table", "no-such-table")

    assert result.exit_code == 1
    assert "cannot read the audit table" in result.stderr
    assert "ResourceNotFoundException" in result.stderr


# --- targets: an explicit endpoint, the local stack's state.json --------------------------


@pytest.fixture
def served_table(aws: LocalClients) -> tuple[str, AuditLog]:
    """An audit table on the session's moto server (a real HTTP endpoint): name and log."""
    name = unique("audit")
    ddb = aws.client("dynamodb")
    ddb.create_table(**audit_table_definition(name))
    return name, AuditLog(ddb, name)


def test_endpoint_target(served_table: tuple[str, AuditLog], moto_url: str) -> None:
    table, audit = served_table
    written = audit_event(E.TELEMETRY_DELETED, stage="cleanup")
    audit.write(written)

    result = ryuzen(
        "audit",
        "query",
        *("--endpoint", moto_url, "--region", REGION, "--table", table),
        *("--partner", "acme", "--month", "2026-11", "--format", "json"),
    )

    assert json_ids(result) == [written.event_id]


def test_endpoint_needs_a_region(monkeypatch: pytest.MonkeyPatch, moto_url: str) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)

    result = ryuzen("audit", "query", "--recent", "1h", "--endpoint", moto_url)

    assert result.exit_code == 2
    assert f"--endpoint {moto_url} needs --region" in result.stderr


def test_local_target_reads_state_json(
    served_table: tuple[str, AuditLog],
    moto_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a state.json as `ryuzen local up` writes it (this process stands in for the
    # stack's pid) naming the endpoint, the region and a table no default would find
    table, audit = served_table
    state = {"aws": moto_url, "region": REGION, "tables": {"audit": table}, "pid": os.getpid()}
    (tmp_path / "state.json").write_text(json.dumps(state))
    written = audit_event(E.ERROR, partner=None)
    audit.write(written)

    args = ("audit", "query", "--local", "--state-dir", str(tmp_path), "--recent", "1h")
    result = ryuzen(*args, "--format", "json")

    assert json_ids(result) == [written.event_id]
    # the stack's table, even when the environment names another one for AWS
    monkeypatch.setenv("RYUZEN_AUDIT_TABLE", "ryuzen-prod-audit")
    assert json_ids(ryuzen(*args, "--format", "json")) == [written.event_id]


def test_local_target_without_a_stack(tmp_path: Path) -> None:
    result = ryuzen("audit", "query", "--local", "--state-dir", str(tmp_path), "--recent", "1h")

    assert result.exit_code == 1
    assert "no local stack is running" in result.stderr


@pytest.mark.parametrize("command", [["query"], []], ids=["query", "query-by-default"])
def test_runnable_as_a_module(command: list[str]) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "ryuzen_tools.audit_query", *command, "--recent", "2w"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 2
    assert "invalid duration '2w'" in completed.stderr


def test_the_module_runs_a_trail_when_named() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "ryuzen_tools.audit_query", "trail", "--partner", "ACME"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 2
    assert "--month" in completed.stderr  # trail's own options, not query's
