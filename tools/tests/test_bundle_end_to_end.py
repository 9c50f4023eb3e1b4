"""`ryuzen local demo` to the end: every partner's bundle built, pulled, downloaded, verified,
then its month cleaned — trail complete, receipt verified, working prefixes empty; then
`ryuzen bundle verify` and `verify-receipt` on what it wrote, as a partner would run them."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from ryuzen_contracts.signing import generate_local_key
from ryuzen_tools.cli import app
from typer.testing import CliRunner

CLI = [sys.executable, "-m", "ryuzen_tools.cli"]


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, project_dir: Path) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("demo")
    out, state = root / "out", root / "state"
    completed = run_cli(
        "local",
        "demo",
        "--events",
        "1500",
        "--seed",
        "8",
        "--out",
        str(out),
        "--state-dir",
        str(state),
        "--project-dir",
        str(project_dir),
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "bundles (built" in completed.stdout
    assert "cleanup (delivered" in completed.stdout
    return out, state, json.loads((out / "summary.json").read_text())


def test_the_demo_delivers_and_verifies_every_partners_bundle(
    demo: tuple[Path, Path, dict],
) -> None:
    out, _, summary = demo
    assert summary["ok"] is True, summary["problems"]
    assert json.loads((out / "demo-summary.json").read_text()) == summary
    bundles = summary["bundles"]
    assert set(bundles["partners"]) == {"acme", "nimbus-ai", "orbital"}
    assert bundles["delivered"] == 3
    sanitized = summary["sanitize"]["sanitized_by_partner"]
    for partner, bundle in bundles["partners"].items():
        assert bundle["ok"] is True, bundle["error"]
        assert bundle["month"] == bundles["month"]
        path = out / bundle["path"]
        assert path.name == f"ryuzen-telemetry-{partner}-{bundle['month']}.zip"
        assert path.stat().st_size == bundle["bytes"]
        verified = bundle["verified"]
        assert (verified["partner"], verified["month"]) == (partner, bundle["month"])
        assert verified["certificates"] == bundle["certificates"] > 0
        # every sanitized event is in its partner's bundle, once
        counts = verified["counts"]
        assert counts["events"] + counts["duplicates_removed"] == sanitized[partner]
    # the pull API answered every partner, and nothing failed
    pull = summary["stages"]["bundle-pull"]
    assert pull["errors"] == 0
    # key, list and URL for three partners, then the URL again once cleaned (the receipt)
    assert pull["outcomes"] == {"http_200": 12}


def test_the_demo_ends_with_every_delivered_month_cleaned_and_proven(
    demo: tuple[Path, Path, dict],
) -> None:
    out, _, summary = demo
    cleanup = summary["cleanup"]
    month = summary["bundles"]["month"]
    assert cleanup["month"] == month
    assert cleanup["cleaned"] == 3
    for partner, entry in cleanup["partners"].items():
        assert entry["ok"] is True, entry["error"]
        assert entry["state"] == "CLEANED"
        # the audit trail is complete: created, delivered, deleted — in that order
        trail = entry["trail"]
        assert entry["trail_verdict"] == trail["verdict"] == "complete"
        steps = [event["event_type"] for event in trail["timeline"]]
        assert steps == ["BUNDLE_CREATED", "BUNDLE_DELIVERED", "TELEMETRY_DELETED"]
        # the receipt verified for this partner, month and the delivered bundle
        receipt = entry["receipt"]
        bundle = summary["bundles"]["partners"][partner]
        assert (receipt["partner"], receipt["month"]) == (partner, month)
        assert receipt["bundle"]["sha256"] == bundle["sha256"] == entry["bundle_sha256"]
        assert receipt["already_empty"] is False
        assert receipt["pulled_via_api"] is True  # as the partner gets it: pull API, proxy
        kept = out / receipt["path"]
        assert hashlib.sha256(kept.read_bytes()).hexdigest() == receipt["receipt_sha256"]
        # and the deletion event records that very receipt
        deleted = trail["timeline"][-1]["detail"]
        assert deleted["receipt_sha256"] == receipt["receipt_sha256"]
        # every object of the month went (the bundle's certificates say how many batches
        # were sanitized for the partner: each left a Parquet object and a certificate)
        assert receipt["objects_deleted_total"] == deleted["objects_deleted_total"] > 0
        assert deleted["objects_deleted"]["sanitized"] == 2 * bundle["certificates"]
        # and the listing proves the month's working prefixes empty
        assert entry["remaining_objects"] == {"sanitized": 0, "analytics": 0}
    # the whole working buckets are empty too: the demo's traffic is all of this month
    for role in ("raw", "sanitized", "analytics"):
        assert summary["buckets"][role]["objects"] == 0, role
    queue = summary["queues"]["bundle-delivered"]
    assert (queue["depth"], queue["in_flight"], queue["dlq"]) == (0, 0, 0)
    cleanup_stage = summary["stages"]["cleanup"]
    assert cleanup_stage["errors"] == 0
    assert cleanup_stage["outcomes"] == {"messages_deleted": 3}


def test_a_partner_verifies_a_demo_bundle_and_catches_a_tampered_copy(
    demo: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    out, state, summary = demo
    bundle = out / summary["bundles"]["partners"]["acme"]["path"]
    public_key = state / "signing-key.pub.pem"

    verified = run_cli(
        "bundle", "verify", str(bundle), "--public-key", str(public_key), "--json", timeout=60
    )
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["partner"] == "acme"

    # Given a copy with one Parquet part rewritten (a consistent ZIP, a different file)
    tampered = tmp_path / bundle.name
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.startswith("data/events/"):
                data = data[:-1] + bytes([data[-1] ^ 1])
                changed = info.filename
            target.writestr(info, data)
    # (in-process from here: one subprocess proved the command as installed)
    refused = CliRunner().invoke(
        app, ["bundle", "verify", str(tampered), "--public-key", str(public_key)]
    )
    assert refused.exit_code == 1
    assert f"{changed}: sha256" in refused.stderr

    # and another stack's key refuses the genuine bundle
    other = tmp_path / "other.pub.pem"
    generate_local_key(tmp_path / "other.pem", other)
    wrong_key = CliRunner().invoke(
        app, ["bundle", "verify", str(bundle), "--public-key", str(other)]
    )
    assert wrong_key.exit_code == 1
    assert "no signature by key" in wrong_key.stderr


def test_a_partner_verifies_the_deletion_receipt_against_its_bundle(
    demo: tuple[Path, Path, dict],
) -> None:
    out, state, summary = demo
    bundle = out / summary["bundles"]["partners"]["acme"]["path"]
    receipt = out / summary["cleanup"]["partners"]["acme"]["receipt"]["path"]
    month = summary["bundles"]["month"]
    public_key = state / "signing-key.pub.pem"
    command = ["bundle", "verify-receipt", str(receipt), "--public-key", str(public_key)]

    verified = run_cli(
        *command,
        "--partner",
        "acme",
        "--month",
        month,
        "--bundle",
        str(bundle),
        "--json",
        timeout=60,
    )
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["bundle_checked"] == str(bundle)

    # another partner's bundle is not the one this receipt follows
    other = out / summary["bundles"]["partners"]["orbital"]["path"]
    refused = CliRunner().invoke(app, [*command, "--bundle", str(other)])
    assert refused.exit_code == 1
    assert f"{other}: sha256" in refused.stderr
