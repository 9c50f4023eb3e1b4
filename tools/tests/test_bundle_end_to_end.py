"""`ryuzen local demo` to the end: every partner's bundle built, pulled, downloaded, verified;
then `ryuzen bundle verify` on what it wrote, as a partner would run it."""

from __future__ import annotations

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
    assert pull["outcomes"] == {"http_200": 9}  # key, list and URL for three partners


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
