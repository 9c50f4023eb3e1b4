"""``ryuzen bundle fetch|verify|verify-receipt`` (a partner's tools) and ``ryuzen local
bundle`` (the task).

Registered on the main app by ``cli.py``; kept apart so each command module stays one
concern. Reasons go to stderr in one unwrapped line; results are JSON on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from ryuzen_contracts.key_layout import validate_month, validate_partner_id

from ryuzen_tools.bundle_fetch import (
    BundleOffer,
    Downloaded,
    FetchError,
    download,
    download_receipt,
    request_bundle,
)
from ryuzen_tools.bundle_reports import bundle_report, byte_progress, receipt_report
from ryuzen_tools.bundle_verify import VerificationError, content_bytes, verify_bundle_file
from ryuzen_tools.console_reports import report_console
from ryuzen_tools.local_stack.bundle_task import run_bundle_task
from ryuzen_tools.local_stack.state_file import (
    DEFAULT_STATE_DIR,
    StackNotRunningError,
    read_environment,
)
from ryuzen_tools.receipt_verify import verify_receipt, verify_receipt_file
from ryuzen_tools.verify_attestation import read_input

bundle_app = typer.Typer(
    no_args_is_help=True,
    help="A partner's monthly bundle: fetch it; verify it and its deletion receipt offline.",
)
err = Console(stderr=True)

StateDirOption = Annotated[
    Path, typer.Option(help="Where the running stack records state.json and stages.json.")
]


def _fail(command: str, reason: str, *, as_json: bool = False, code: int = 1) -> typer.Exit:
    """Print ``command: FAILED: reason`` on stderr (and ``{"ok": false}`` with --json)."""
    err.print(
        f"{command}: FAILED: {reason}",
        style="red",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if as_json:
        print(json.dumps({"ok": False, "error": reason}, sort_keys=True))
    return typer.Exit(code)


@bundle_app.command("verify")
def bundle_verify(
    file: Annotated[Path, typer.Argument(help="The bundle ZIP.")],
    public_key: Annotated[
        Path, typer.Option("--public-key", help="PEM public key of the signing stack.")
    ],
    partner: Annotated[
        str | None, typer.Option(help="Fail unless the bundle is this partner's.")
    ] = None,
    month: Annotated[
        str | None, typer.Option(help="Fail unless the bundle is for YYYY-MM.")
    ] = None,
    receipt: Annotated[
        Path | None,
        typer.Option(
            "--receipt",
            help="Its deletion receipt: fail unless it verifies with the same key, for the "
            "bundle's partner and month, and follows this very bundle.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Verify a bundle offline: manifest signature, every file's size and SHA-256, the
    file list both ways, every certificate's signature, partner and month; with
    --receipt, then its deletion receipt against the verified bundle."""
    command = "ryuzen bundle verify"
    try:
        verified = verify_bundle_file(file, public_key, partner=partner, month=month)
    except VerificationError as error:
        raise _fail(command, str(error), as_json=as_json) from None
    facts = verified.to_dict()
    receipt_facts = None
    if receipt is not None:
        # The partner and month come from the verified manifest, not from the receipt.
        try:
            receipt_facts = verify_receipt_file(
                receipt,
                public_key,
                partner=verified.partner,
                month=verified.month,
                bundle_path=file,
            ).to_dict()
        except VerificationError as error:
            raise _fail(command, f"receipt {receipt}: {error}", as_json=as_json) from None
        facts["receipt"] = receipt_facts
    if as_json:
        print(json.dumps(facts, sort_keys=True))
        return
    console = report_console(sys.stdout)
    console.print(bundle_report(facts))
    if receipt_facts is not None:
        console.print(receipt_report(receipt_facts))


@bundle_app.command("verify-receipt")
def bundle_verify_receipt(
    file: Annotated[Path, typer.Argument(help="The receipt: deletion-receipt.dsse.json.")],
    public_key: Annotated[
        Path, typer.Option("--public-key", help="PEM public key of the signing stack.")
    ],
    partner: Annotated[
        str | None, typer.Option(help="Fail unless the receipt is for this partner.")
    ] = None,
    month: Annotated[
        str | None, typer.Option(help="Fail unless the receipt is for YYYY-MM.")
    ] = None,
    bundle: Annotated[
        Path | None,
        typer.Option("--bundle", help="The bundle ZIP: fail unless the receipt follows it."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Verify a deletion receipt offline: signature and predicate type, partner and month,
    the bundle it follows, and that the prefixes it proves empty are that month's."""
    command = "ryuzen bundle verify-receipt"
    try:
        if partner is not None:
            validate_partner_id(partner)
        if month is not None:
            validate_month(month)
    except ValueError as error:
        raise _fail(command, str(error), as_json=as_json, code=2) from None
    try:
        verified = verify_receipt_file(
            file, public_key, partner=partner, month=month, bundle_path=bundle
        )
    except VerificationError as error:
        raise _fail(command, str(error), as_json=as_json) from None
    facts = verified.to_dict()
    if as_json:
        print(json.dumps(facts, sort_keys=True))
    else:
        report_console(sys.stdout).print(receipt_report(facts))


@bundle_app.command("fetch")
def bundle_fetch(
    api: Annotated[str, typer.Option(help="API base URL, e.g. https://api.example.com/prod.")],
    key: Annotated[
        str, typer.Option(help="The partner's API key (x-api-key).", envvar="RYUZEN_API_KEY")
    ],
    month: Annotated[str, typer.Option(help="The month to fetch, YYYY-MM.")],
    out: Annotated[Path, typer.Option(help="Directory to write the bundle into.")],
    verify_it: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Verify the bundle after the download; once the month is cleaned, also "
            "fetch its deletion receipt beside it and verify that.",
        ),
    ] = False,
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="PEM public key to verify with (needed by --verify)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds without progress before failing.")] = 60,
) -> None:
    """Ask the API for the month's presigned URL, download with a progress bar (size and
    SHA-256 checked against the API's answer), then optionally verify — with the month's
    deletion receipt, when the API offers one. One JSON line on stdout; exit 1 with the
    reason on any failure."""
    command = "ryuzen bundle fetch"
    if verify_it and public_key is None:
        raise _fail(command, "--verify needs --public-key PEM", code=2)
    try:
        validate_month(month)
    except ValueError as error:
        raise _fail(command, str(error), code=2) from None
    try:
        with httpx.Client(timeout=timeout) as client:
            offer = request_bundle(client, api, key, month)
            # The receipt first: it is small, and its URL expires with the bundle's, which
            # a long download could outlast.
            receipt = _fetch_receipt(client, offer, out) if verify_it else None
            try:
                with byte_progress(err) as progress:
                    downloaded = download(client, offer, out, progress("download", offer.bytes))
            except BaseException:
                if receipt is not None:  # nothing of a failed fetch stays behind
                    receipt.path.unlink(missing_ok=True)
                raise
    except FetchError as error:
        raise _fail(command, str(error)) from None
    result: dict[str, Any] = {
        "ok": True,
        "path": str(downloaded.path),
        "month": month,
        "bytes": downloaded.bytes,
        "sha256": downloaded.sha256,
        "expires_at": offer.expires_at,
        "verified": None,
        "receipt": None,
    }
    if not verify_it:
        if offer.receipt is not None:
            err.print(f"{month} is cleaned: --verify also fetches and checks its deletion receipt")
        print(json.dumps(result, sort_keys=True))
        return
    assert public_key is not None
    try:
        with byte_progress(err) as progress:
            verified = verify_bundle_file(
                downloaded.path,
                public_key,
                month=month,
                on_bytes=progress("verify", content_bytes(downloaded.path)),
            )
    except VerificationError as error:
        raise _fail(command, f"{downloaded.path}: {error}") from None
    result["verified"] = verified.to_dict()
    err.print(f"verified {verified.files} files and {verified.certificates} certificates")
    if receipt is None:
        err.print(
            f"the API offers no deletion receipt for {month}: the month is not cleaned yet",
            markup=False,
        )
    else:
        try:
            checked = verify_receipt(
                read_input(receipt.path, "receipt"),
                read_input(public_key, "public key"),
                partner=verified.partner,
                month=month,
                bundle_sha256=downloaded.sha256,  # the ZIP as downloaded and verified
                bundle_label=str(downloaded.path),
            )
        except VerificationError as error:
            raise _fail(command, f"{receipt.path}: {error}") from None
        result["receipt"] = {
            "path": str(receipt.path),
            "bytes": receipt.bytes,
            "sha256": receipt.sha256,
            "verified": checked.to_dict(),
        }
        err.print(
            f"verified the deletion receipt: {checked.objects_deleted_total} objects deleted",
            markup=False,
        )
    print(json.dumps(result, sort_keys=True))


def _fetch_receipt(client: httpx.Client, offer: BundleOffer, out: Path) -> Downloaded | None:
    """The month's deletion receipt beside where the ZIP goes, when the API offers one."""
    if offer.receipt is None:
        return None
    out.mkdir(parents=True, exist_ok=True)
    return download_receipt(client, offer.receipt, out / offer.file_name())


def local_bundle(
    partner: Annotated[str, typer.Option(help="The partner whose bundle to build.")],
    month: Annotated[
        str | None, typer.Option(help="Receipt month YYYY-MM (default: the previous month).")
    ] = None,
    allow_open_month: Annotated[
        bool, typer.Option(help="Bundle a month that has not ended yet (e.g. the current one).")
    ] = False,
    force_rebuild: Annotated[
        bool, typer.Option(help="Rebuild a month already delivered (or cleaned).")
    ] = False,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    timeout: Annotated[float, typer.Option(help="Seconds the task may run.")] = 600,
) -> None:
    """Run the monthly bundle task (`python -m ryuzen_bundle build`) against the running
    stack; print its JSON summary. Exit 0 delivered, 1 failed, 3 refused."""
    command = "ryuzen local bundle"
    try:
        if month is not None:
            validate_month(month)
        environment = read_environment(state_dir)
    except StackNotRunningError as error:
        err.print(f"[red]{command}: {error}")
        raise typer.Exit(1) from None
    except ValueError as error:
        raise _fail(command, str(error), code=2) from None
    with err.status(f"building the bundle of {partner}"):
        result = run_bundle_task(
            environment,
            partner,
            month,
            allow_open_month=allow_open_month,
            force_rebuild=force_rebuild,
            timeout_s=timeout,
        )
    print(json.dumps(result.summary, sort_keys=True))
    if not result.delivered:
        reason = f"{partner} {result.month}: {result.reason()}"
        raise _fail(command, reason, code=result.exit_code if result.exit_code > 0 else 1)
    err.print(
        f"delivered {result.summary.get('bundle_key')}: {result.summary.get('bytes')} bytes, "
        f"{result.summary.get('events')} events, in {result.seconds:.1f} s",
        markup=False,
        highlight=False,
    )
