"""``python -m ryuzen_bundle build``: one JSON line on stdout, and an exit status that says
delivered (0), failed (1), bad arguments (2) or refused (3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bundle_build_stack import EVENT_BUS, REGION, BundleStack
from bundle_build_support import MONTH, NOW, batch
from ryuzen_bundle.command_line import main
from ryuzen_contracts.bundle_state import BundleState


def environment(stack: BundleStack, tmp_path: Path) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "ANALYTICS_BUCKET": "analytics",
        "SANITIZED_BUCKET": "sanitized",
        "BUNDLES_BUCKET": "bundles",
        "AUDIT_TABLE": "audit",
        "STACK_CONFIG": stack.config.to_json(),
        "EVENT_BUS_NAME": EVENT_BUS,
        "SIGNING_KEY_FILE": str(tmp_path / "key.pem"),
        "BUNDLE_WORK_DIR": str(stack.work_dir),
    }


def run(
    stack: BundleStack,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *argv: str,
    environ: dict[str, str] | None = None,
) -> tuple[int, dict[str, object]]:
    code = main(list(argv), environ=environ or environment(stack, tmp_path), now=lambda: NOW)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, "stdout carries exactly one JSON line"
    return code, json.loads(lines[0])


def test_build_prints_the_summary_and_exits_zero(
    stack: BundleStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.put_batch(batch(7, datetime(2026, 10, 4, tzinfo=UTC), seed=1))
    # --month defaults to the previous UTC month of the clock (2026-11-02 → 2026-10)
    code, summary = run(stack, tmp_path, capsys, "build", "--partner", "acme")
    assert code == 0
    assert summary["status"] == "delivered"
    assert summary["month"] == MONTH and summary["events"] == 7
    assert summary["bundle_key"] == "acme/2026-10/ryuzen-telemetry-acme-2026-10.zip"
    assert len(str(summary["sha256"])) == 64
    assert "://" not in json.dumps(summary)
    state = stack.state()
    assert state is not None and state.state is BundleState.DELIVERED


def test_refusals_exit_three(
    stack: BundleStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, summary = run(stack, tmp_path, capsys, "build", "--partner", "acme", "--month", "2026-11")
    assert code == 3 and summary["status"] == "refused" and summary["code"] == "month_open"
    assert "--allow-open-month" in str(summary["reason"])
    code, summary = run(
        stack,
        tmp_path,
        capsys,
        "build",
        "--partner",
        "acme",
        "--month",
        "2026-11",
        "--allow-open-month",
    )
    assert code == 0
    code, summary = run(
        stack,
        tmp_path,
        capsys,
        "build",
        "--partner",
        "acme",
        "--month",
        "2026-11",
        "--allow-open-month",
    )
    assert code == 3 and "already DELIVERED" in str(summary["reason"])
    assert summary["code"] == "already_delivered"
    code, summary = run(
        stack,
        tmp_path,
        capsys,
        "build",
        "--partner",
        "acme",
        "--month",
        "2026-11",
        "--allow-open-month",
        "--force-rebuild",
    )
    assert code == 0


def test_a_failed_build_exits_one_and_names_the_step(
    stack: BundleStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {**environment(stack, tmp_path), "EVENT_BUS_NAME": "no-such-bus"}
    code, summary = run(stack, tmp_path, capsys, "build", "--partner", "acme", environ=env)
    assert code == 1
    assert summary == {
        "partner": "acme",
        "month": MONTH,
        "status": "failed",
        "step": "emit_event",
        "error": "ResourceNotFoundException",
    }
    state = stack.state()
    assert state is not None and state.state is BundleState.BUILT


def test_missing_settings_exit_one_with_their_names(
    stack: BundleStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(stack, tmp_path)
    del env["BUNDLES_BUCKET"], env["SIGNING_KEY_FILE"]
    code, summary = run(stack, tmp_path, capsys, "build", "--partner", "acme", environ=env)
    assert code == 1 and summary["status"] == "error"
    assert "BUNDLES_BUCKET" in str(summary["error"])
    assert stack.state() is None


def test_bad_arguments_exit_two(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["build"])
    assert exit_.value.code == 2
    assert "--partner" in capsys.readouterr().err


def test_python_dash_m_runs_the_command_line() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "ryuzen_bundle", "build", "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert completed.returncode == 0
    assert "--allow-open-month" in completed.stdout and "--force-rebuild" in completed.stdout


def test_a_cleaned_month_with_no_telemetry_left_is_refused_with_three(
    stack: BundleStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a delivered month that cleanup has emptied and marked CLEANED
    assert run(stack, tmp_path, capsys, "build", "--partner", "acme")[0] == 0
    stack.states.transition("acme", MONTH, BundleState.CLEANED)

    # When an operator forces a rebuild, it is refused like the other rules
    code, summary = run(stack, tmp_path, capsys, "build", "--partner", "acme", "--force-rebuild")
    assert code == 3
    assert summary["status"] == "refused" and summary["code"] == "cleaned_month_has_no_data"
    assert "would replace the delivered bundle with an empty one" in str(summary["reason"])
    state = stack.state()
    assert state is not None and state.state is BundleState.CLEANED


def test_an_incomplete_month_exits_one_with_the_reason(
    stack: BundleStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a certificate whose batch analytics has not written yet
    stack.put_certificate("01JDQ7Z8Y9X0W1V2T3S4R5Q6P7", 0, sanitized=4)

    code, summary = run(stack, tmp_path, capsys, "build", "--partner", "acme")

    assert code == 1
    assert summary == {
        "partner": "acme",
        "month": MONTH,
        "status": "failed",
        "step": "check_complete",
        "error": "IncompleteMonth",
        "reason": "1 of 1 certified batches incomplete in ANALYTICS: "
        "01JDQ7Z8Y9X0W1V2T3S4R5Q6P7: no object (4 sanitized)",
    }
    state = stack.state()
    assert state is not None and state.state is BundleState.BUILDING
