"""The task's command line: ``python -m ryuzen_bundle build --partner P [--month YYYY-MM]``.

Thin on purpose: parse arguments, read settings once, build clients once, call
``build_bundle``. Standard output carries exactly one JSON line — the summary — so a
scheduler or the local stack can read the result; logs go to standard error.

Exit status: 0 delivered; 1 the build failed (state left at BUILDING or BUILT, an ERROR
audit event written; ``reason`` added when the month is incomplete) or the settings are
incomplete; 2 bad arguments; 3 refused (nothing was touched: unknown partner, open month,
month already delivered or cleaned, a cleaned month with no telemetry left) — the
summary's ``code`` names the rule (``BuildRefused``), ``reason`` says it in words.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from ryuzen_contracts.audit_log import AuditLog
from ryuzen_contracts.aws_clients import make_client
from ryuzen_contracts.bundle_state import BundleStateStore
from ryuzen_contracts.settings import SettingsError
from ryuzen_contracts.stack_config import StackConfig, StackConfigError

from ryuzen_bundle.bundle_builder import (
    BuildFailed,
    BuildRefused,
    BuildRequest,
    BuildTuning,
    BundleServices,
    BundleTarget,
    build_bundle,
)
from ryuzen_bundle.bundle_settings import BundleSettings, make_signer
from ryuzen_bundle.month_window import previous_month

EXIT_DELIVERED, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3


def parser() -> argparse.ArgumentParser:
    """The argument parser (``build`` is the only command)."""
    root = argparse.ArgumentParser(
        prog="python -m ryuzen_bundle", description="Ryuzen Telemetry monthly partner bundles."
    )
    commands = root.add_subparsers(dest="command", required=True)
    build = commands.add_parser(
        "build", help="build, deliver and record one partner-month's bundle"
    )
    build.add_argument("--partner", required=True, help="partner id, as in the stack config")
    build.add_argument("--month", help="receipt month YYYY-MM (default: the previous UTC month)")
    build.add_argument(
        "--allow-open-month",
        action="store_true",
        help="bundle a month that has not ended yet (the local demo)",
    )
    build.add_argument(
        "--force-rebuild",
        action="store_true",
        help="rebuild and re-deliver a month already DELIVERED or CLEANED "
        "(a CLEANED month only while its telemetry is still there: an empty rebuild "
        "would replace the delivered bundle)",
    )
    return root


def _emit(document: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, sort_keys=True) + "\n")
    sys.stdout.flush()


def main(
    argv: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Run the command line; return the exit status."""
    args = parser().parse_args(list(argv))
    Logger(service="ryuzen-bundle", stream=sys.stderr)  # the parent of every module logger
    month = args.month or previous_month(now())
    base = {"partner": args.partner, "month": month}
    try:
        settings = BundleSettings.from_environ(environ)
        config = StackConfig.from_json(settings.stack_config)
        ddb = make_client("dynamodb", environ=environ)
        services = BundleServices(
            s3=make_client("s3", environ=environ),
            events=make_client("events", environ=environ),
            audit=AuditLog(ddb, settings.audit_table),
            states=BundleStateStore(ddb, settings.audit_table),
            signer=make_signer(settings),
        )
    except (SettingsError, StackConfigError, RuntimeError, OSError, ValueError) as error:
        print(f"ryuzen-bundle: cannot start: {error}", file=sys.stderr)
        _emit({**base, "status": "error", "error": str(error)[:500]})
        return EXIT_FAILED
    target = BundleTarget(
        analytics_bucket=settings.analytics_bucket,
        sanitized_bucket=settings.sanitized_bucket,
        bundles_bucket=settings.bundles_bucket,
        event_bus_name=settings.event_bus_name,
        config=config,
    )
    request = BuildRequest(args.partner, month, args.allow_open_month, args.force_rebuild)
    tuning = BuildTuning(work_dir=Path(settings.work_dir) if settings.work_dir else None)
    try:
        report = build_bundle(services, target, request, now=now, tuning=tuning)
    except BuildRefused as refusal:
        print(f"ryuzen-bundle: refused: {refusal}", file=sys.stderr)
        _emit({**base, "status": "refused", "code": refusal.code, "reason": str(refusal)})
        return EXIT_REFUSED
    except BuildFailed as failure:
        # The step and the error type (BuildFailed's message): never the error's message.
        print(f"ryuzen-bundle: {failure}", file=sys.stderr)
        summary = {
            **base,
            "status": "failed",
            "step": failure.step,
            "error": type(failure.error).__name__,
        }
        if failure.reason is not None:
            summary["reason"] = failure.reason  # batch ids and counts only
        _emit(summary)
        return EXIT_FAILED
    _emit({"status": "delivered", **report.to_dict()})
    return EXIT_DELIVERED
