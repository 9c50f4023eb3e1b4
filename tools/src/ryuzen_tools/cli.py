"""The ``ryuzen`` command line: ``local up|status|sweep|demo|bundle``, ``send``, ``scan``,
``verify``, ``bundle fetch|verify|verify-receipt``, ``audit query|trail``.

Thin on purpose: each command parses options, calls one function of the package and turns
its result into output and an exit code.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from ryuzen_contracts.attestation import ZERO_PII_PREDICATE
from ryuzen_contracts.settings import SettingsError
from ryuzen_contracts.stack_config import StackConfigError

from ryuzen_tools import __version__
from ryuzen_tools.audit_query import audit_app
from ryuzen_tools.audit_trail import trail_report
from ryuzen_tools.bundle_commands import bundle_app, local_bundle
from ryuzen_tools.bundle_reports import demo_bundles_table, demo_cleanup_table
from ryuzen_tools.console_reports import (
    certificate_report,
    demo_tables,
    event_progress,
    events_done,
    report_console,
    send_table,
)
from ryuzen_tools.demo import DemoOptions, run_demo
from ryuzen_tools.local_stack.stack import LocalStack, LocalStackOptions, StackAlreadyRunningError
from ryuzen_tools.local_stack.stage_registry import StageNotInstalledError
from ryuzen_tools.local_stack.state_file import (
    DEFAULT_STATE_DIR,
    StackNotRunningError,
    read_stage_counters,
    read_state,
    write_json_atomically,
)
from ryuzen_tools.local_stack.status import stack_status
from ryuzen_tools.local_stack.sweep_once import sweep_once
from ryuzen_tools.project_files import load_stack
from ryuzen_tools.stdout_guard import reserved_stdout
from ryuzen_tools.synthetic import NoModelsError, SyntheticEvents
from ryuzen_tools.traffic import SendOptions, TrafficSender, until_deadline
from ryuzen_tools.verify_attestation import VerificationError, verify_files, zero_pii_summary

app = typer.Typer(no_args_is_help=True, help="Ryuzen Telemetry tooling.", add_completion=False)
local_app = typer.Typer(no_args_is_help=True, help="The local stack on moto's embedded AWS.")
app.add_typer(local_app, name="local")
verify_app = typer.Typer(
    no_args_is_help=True, help="Verify signed attestations offline, with only the public key."
)
app.add_typer(verify_app, name="verify")
app.add_typer(bundle_app, name="bundle")
app.add_typer(audit_app, name="audit")
local_app.command("bundle")(local_bundle)

err = Console(stderr=True)

StackOption = Annotated[str, typer.Option(help="Stack name: reads Pulumi.<stack>.yaml.")]
StateDirOption = Annotated[
    Path, typer.Option(help="Where the running stack records state.json and stages.json.")
]
ProjectDirOption = Annotated[
    Path | None,
    typer.Option(help="Directory holding Pulumi.yaml (default: nearest at or above the cwd)."),
]
# OSError covers a missing stack file and a port already in use.
STARTUP_ERRORS = (StackAlreadyRunningError, StackConfigError, StageNotInstalledError, OSError)


def _version(value: bool) -> None:
    if value:
        print(f"ryuzen {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Ryuzen Telemetry tooling: the local stack, traffic, PII scan, attestation checks."""


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@local_app.command("up")
def up(
    stack: StackOption = "dev",
    port: Annotated[int, typer.Option(help="API port on 127.0.0.1; 0 picks a free one.")] = 0,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    aws_port: Annotated[int, typer.Option(help="moto's port; 0 picks a free one.")] = 0,
    project_dir: ProjectDirOption = None,
    max_receive_count: Annotated[
        int, typer.Option(help="Receives before SQS moves a message to its DLQ.")
    ] = 3,
    visibility_timeout: Annotated[
        int,
        typer.Option(
            help="Stage queues' visibility timeout, seconds (raised to a consumer's timeout)."
        ),
    ] = 30,
    sweep_interval: Annotated[
        float,
        typer.Option(min=1, help="Seconds between retention sweeps (hourly in AWS)."),
    ] = 60,
    log_level: Annotated[
        str, typer.Option(help="Log level of the stack's logs (on stderr).")
    ] = "INFO",
) -> None:
    """Start the local stack; print one JSON ready line on stdout; run until interrupted."""
    _configure_logging(log_level)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    options = LocalStackOptions(
        stack=stack,
        project_dir=project_dir,
        api_port=port,
        aws_port=aws_port,
        state_dir=state_dir,
        max_receive_count=max_receive_count,
        visibility_timeout_s=visibility_timeout,
        schedule_interval_s=sweep_interval,
    )
    with reserved_stdout() as stdout:
        local = LocalStack(options)
        try:
            ready = local.start()
        except STARTUP_ERRORS as error:
            err.print(f"[red]ryuzen local up: {error}")
            raise typer.Exit(1) from None
        try:
            stdout.write(json.dumps(ready, sort_keys=True) + "\n")
            stdout.flush()
            while not stop.wait(0.5):
                pass
            err.print("ryuzen local up: stopping")
        finally:
            local.stop()


@local_app.command("status")
def status(state_dir: StateDirOption = DEFAULT_STATE_DIR) -> None:
    """Print the running stack's queues, buckets and stage counters as JSON."""
    try:
        state = read_state(state_dir)
    except StackNotRunningError as error:
        err.print(f"[red]ryuzen local status: {error}")
        raise typer.Exit(1) from None
    try:
        report = stack_status(state, read_stage_counters(state_dir))
    except (BotoCoreError, ClientError) as error:
        err.print(f"[red]ryuzen local status: the stack in {state_dir} does not answer: {error}")
        raise typer.Exit(1) from None
    print(json.dumps(report, indent=2, sort_keys=True))


@local_app.command("sweep")
def sweep(state_dir: StateDirOption = DEFAULT_STATE_DIR) -> None:
    """Run one retention sweep against the running stack now: RAW older than the stack's
    rawHours (each an ERROR audit event) and quarantine older than quarantineDays go.
    Prints the counts as one JSON line."""
    command = "ryuzen local sweep"
    try:
        counts = sweep_once(state_dir, datetime.now(UTC))
    except (StackNotRunningError, SettingsError) as error:
        err.print(f"[red]{command}: {error}")
        raise typer.Exit(1) from None
    except (BotoCoreError, ClientError) as error:
        err.print(f"[red]{command}: the stack in {state_dir} does not answer: {error}")
        raise typer.Exit(1) from None
    print(json.dumps(counts, sort_keys=True))
    err.print(
        f"deleted {counts['raw_deleted']} RAW objects older than "
        f"{counts['raw_retention_hours']} h (each audited as an ERROR) and "
        f"{counts['quarantine_deleted']} quarantine objects older than "
        f"{counts['quarantine_retention_days']} days"
    )
    if counts.get("stale_working_months"):
        err.print(
            f"[yellow]{counts['stale_working_months']} partner-months of working telemetry "
            "(SANITIZED/ANALYTICS) outlived their month by over a week: a bundle build or a "
            "cleanup stopped (not deleted: only a delivered bundle releases them)"
        )


@local_app.command("demo")
def demo(
    stack: StackOption = "dev",
    events: Annotated[int, typer.Option(min=1, help="Synthetic events to send.")] = 20_000,
    out: Annotated[
        Path | None,
        typer.Option(help="Write DIR/summary.json (also as demo-summary.json) and DIR/bundles/."),
    ] = None,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    project_dir: ProjectDirOption = None,
    batch: Annotated[int, typer.Option(min=1, max=5000, help="Events per request.")] = 500,
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 4,
    seed: Annotated[int | None, typer.Option(help="Make the events reproducible.")] = None,
    pii_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.01,
    malformed_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.02,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the queues to drain.")] = 300,
    bundles: Annotated[
        bool,
        typer.Option(
            help="Then build, pull and verify every partner's bundle of this month, and prove "
            "its cleanup."
        ),
    ] = True,
    cleanup_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for cleanup of every delivered month.")
    ] = 120,
    log_level: Annotated[str, typer.Option(help="Log level (stderr).")] = "WARNING",
) -> None:
    """Start the stack, send synthetic traffic, wait for the queues, print what each stage did;
    then build every partner's bundle, pull it through the partner API and verify it; then
    wait for cleanup, print each month's audit trail, verify each deletion receipt and
    prove the month's working prefixes empty."""
    _configure_logging(log_level)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", log_level.upper())
    signal.signal(signal.SIGTERM, _interrupt)  # unwind like Ctrl-C: the stack stops cleanly
    options = DemoOptions(
        stack=stack,
        project_dir=project_dir,
        events=events,
        batch_size=batch,
        concurrency=concurrency,
        seed=seed,
        pii_rate=pii_rate,
        malformed_rate=malformed_rate,
        state_dir=state_dir,
        drain_timeout_s=timeout,
        bundles=bundles,
        out_dir=out,
        cleanup_timeout_s=cleanup_timeout,
    )
    with reserved_stdout() as stdout:
        try:
            with event_progress(err) as progress:
                result = run_demo(options, progress)
        except STARTUP_ERRORS as error:
            err.print(f"[red]ryuzen local demo: {error}")
            raise typer.Exit(1) from None
        summary = result.summary
        console = report_console(stdout)
        console.print(demo_tables(summary))
        if summary.get("bundles"):
            console.print(demo_bundles_table(summary["bundles"]))
        for trail in result.trails:
            console.print(trail_report(trail))
        if summary.get("cleanup"):
            console.print(demo_cleanup_table(summary["cleanup"]))
    if out is not None:
        path = out / "summary.json"
        write_json_atomically(path, summary)
        write_json_atomically(out / "demo-summary.json", summary)  # the 0.2 name, kept
        err.print(f"summary written to {path}")
    if not summary["ok"]:
        raise typer.Exit(1)


@app.command("send")
def send(
    api: Annotated[str, typer.Option(help="API base URL; events go to {api}/v1/events.")],
    key: Annotated[
        str, typer.Option(help="API key (x-api-key) of an ingest client.", envvar="RYUZEN_API_KEY")
    ],
    events: Annotated[int, typer.Option(min=1)] = 10_000,
    batch: Annotated[int, typer.Option(min=1, max=5000, help="Events per request.")] = 500,
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 4,
    pii_rate: Annotated[float, typer.Option(min=0, max=1, help="Share of events with PII.")] = 0.0,
    malformed_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.02,
    seed: Annotated[int | None, typer.Option(help="Make the events reproducible.")] = None,
    partner: Annotated[
        list[str] | None,
        typer.Option(help="Only models of this partner (repeatable; default: all)."),
    ] = None,
    max_attempts: Annotated[int, typer.Option(min=1, max=20, help="Attempts per batch.")] = 5,
    duration: Annotated[
        float | None,
        typer.Option(
            min=1, help="Stop starting new batches after this many seconds (--events caps it)."
        ),
    ] = None,
    stack: StackOption = "dev",
    project_dir: ProjectDirOption = None,
) -> None:
    """Send synthetic events; print a table and a final JSON line of the result."""
    try:
        config = load_stack(project_dir, stack)[0]
        generator = SyntheticEvents(
            config,
            seed=seed,
            partners=partner or None,
            pii_rate=pii_rate,
            malformed_rate=malformed_rate,
        )
    except (*STARTUP_ERRORS, NoModelsError) as error:
        err.print(f"[red]ryuzen send: {error}")
        raise typer.Exit(2) from None
    batches: Iterator[list[dict[str, Any]]] = (
        [e.payload for e in chunk] for chunk in generator.batches(events, batch)
    )
    if duration is not None:
        batches = until_deadline(batches, time.monotonic() + duration)
    options = SendOptions(
        api_url=api, api_key=key, concurrency=concurrency, max_attempts=max_attempts
    )
    with TrafficSender(options) as sender, event_progress(err) as progress:
        result = sender.send(batches, on_batch_done=events_done(progress("events", events)))
    report_console(sys.stdout).print(send_table(result))
    summary: dict[str, Any] = result.summary()
    print(json.dumps(summary, sort_keys=True))
    if not result.all_answered:
        err.print("[red]ryuzen send: some batches got no answer after retries")
        raise typer.Exit(1)


class ScanFormat(StrEnum):
    """Output formats of ``ryuzen scan``."""

    ndjson = "ndjson"


@app.command("scan")
def scan(
    file: Annotated[Path, typer.Argument(help="NDJSON file of v1 events to scan.")],
    output_format: Annotated[
        ScanFormat, typer.Option("--format", help="Findings format (stdout).")
    ] = ScanFormat.ndjson,
) -> None:
    """Dry-run PII scan: one NDJSON finding per line (offsets, never values), summary on stderr."""
    # The sanitize stage owns the scanner (its rule set is the one that runs in the
    # pipeline); imported here, not at the top, so other commands do not load polars.
    from ryuzen_sanitize import scan_file

    code = scan_file.main(["scan", "--format", output_format.value, "--", str(file)])
    raise typer.Exit(code)


@verify_app.command("certificate")
def verify_certificate(
    file: Annotated[Path, typer.Argument(help="The certificate: a DSSE envelope (JSON).")],
    public_key: Annotated[
        Path, typer.Option("--public-key", help="PEM public key of the signing stack.")
    ],
    subject: Annotated[
        list[Path] | None,
        typer.Option(
            "--subject",
            help="A local file the certificate covers (repeatable): matched to a subject by "
            "its full name or by a basename only one subject has.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Verify a zero-PII certificate's signature and the digests of the given files."""
    try:
        verified = verify_files(file, public_key, subject or [], predicate_type=ZERO_PII_PREDICATE)
    except VerificationError as error:
        # One unwrapped line, the reason as the verifier said it (values never markup).
        err.print(
            f"ryuzen verify certificate: FAILED: {error}",
            style="red",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        if as_json:
            print(json.dumps({"ok": False, "error": str(error)}, sort_keys=True))
        raise typer.Exit(1) from None
    result = {
        "ok": True,
        "predicate_type": verified.statement.predicate_type,
        "key_id": verified.key_id,
        "subjects": verified.subjects(),
        "certificate": zero_pii_summary(verified.statement),
    }
    if as_json:
        print(json.dumps(result, sort_keys=True))
    else:
        report_console(sys.stdout).print(certificate_report(result))


if __name__ == "__main__":
    app()
