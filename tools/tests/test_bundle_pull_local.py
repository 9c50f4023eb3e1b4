"""The bundle stage in the local stack: the task, the pull API, the verifying proxy.

One in-process stack with its real stages. Past months' bundles are put straight into the
bundle bucket (built to the bundle spec, signed with the stack's own key) and given the
bundle state the builder would have left (``BUILDING → BUILT → DELIVERED`` with a verified
SHA-256): the pull API only offers a ``DELIVERED`` or ``CLEANED`` month. Some of them are
then cleaned as cleanup leaves them: a deletion receipt made and stored by the cleanup
stage's own code beside the bundle, and ``CLEANED`` with its digest. The current
month gets real traffic, drained through sanitize and analytics, and is bundled by
`ryuzen local bundle` (the builder in a subprocess). Then the partner's tools
(`ryuzen bundle fetch --verify`) against it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from bundle_zip_fixtures import BundleParts, write_zip
from receipt_fixtures import deletion_facts
from ryuzen_cleanup.deletion_receipt import receipt, store_receipt
from ryuzen_contracts.bundle_state import BundleState, BundleStateStore
from ryuzen_contracts.key_layout import (
    bundle_key,
    deletion_receipt_key,
    month_of,
)
from ryuzen_contracts.signing import LocalSigner
from ryuzen_tools.cli import app
from ryuzen_tools.local_stack.stack import LocalStack, LocalStackOptions
from ryuzen_tools.local_stack.state_file import environment_path, read_environment
from ryuzen_tools.synthetic import SyntheticEvents
from ryuzen_tools.traffic import SendOptions, TrafficSender
from tools_support import unique
from typer.testing import CliRunner

CURRENT_MONTH = month_of(datetime.now(UTC))


@dataclass
class PullStack:
    stack: LocalStack
    ready: dict[str, Any]
    state_dir: Path
    bundles: dict[tuple[str, str], bytes]
    receipts: dict[tuple[str, str], bytes]

    def get(self, path: str, partner: str | None = "acme", **headers: str) -> httpx.Response:
        if partner is not None:
            headers["x-api-key"] = self.ready["partner_keys"][partner]
        return httpx.get(f"{self.ready['api']}{path}", headers=headers, timeout=30)


@pytest.fixture(scope="module")
def pulled(project_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PullStack]:
    state_dir = tmp_path_factory.mktemp("pull-state")
    work = tmp_path_factory.mktemp("pull-zips")
    options = LocalStackOptions(
        project_dir=project_dir, state_dir=state_dir, resource_prefix=unique("pull")
    )
    with LocalStack(options) as stack:
        ready = stack.ready
        assert stack.config is not None
        # this month's traffic for every partner, through sanitize and analytics
        generator = SyntheticEvents(stack.config, seed=11, pii_rate=0.0, malformed_rate=0.0)
        sending = SendOptions(ready["api"], ready["ingest_keys"]["edge-gateway"])
        with TrafficSender(sending) as sender:
            sent = sender.send([e.payload for e in batch] for batch in generator.batches(900, 300))
        assert sent.events_accepted == 900
        assert stack.wait_until_drained(120)
        signer = LocalSigner.from_file(state_dir / "signing-key.pem")
        s3 = stack.clients.client("s3")  # type: ignore[union-attr]
        states = BundleStateStore(
            stack.clients.client("dynamodb"),  # type: ignore[union-attr]
            ready["tables"]["audit"],
        )
        bundles, receipts = {}, {}
        # past months: never the current one, which the builder makes below
        past = (
            ("acme", "2026-10"),
            ("acme", "2026-09"),
            ("acme", "2026-06"),
            ("nimbus-ai", "2026-08"),
        )
        for partner, month in past:
            assert month != CURRENT_MONTH
            path = write_zip(
                work / f"{partner}-{month}.zip",
                BundleParts.typical(signer, partner, month).signed(signer),
            )
            data = path.read_bytes()
            sha256 = hashlib.sha256(data).hexdigest()
            s3.put_object(
                Bucket=ready["buckets"]["bundles"],
                Key=bundle_key(partner, month),
                Body=data,
                Metadata={"sha256": sha256},
            )
            deliver(states, partner, month, sha256)
            bundles[(partner, month)] = data
        # cleaned months; acme's 2026-06 receipt follows another bundle than the one served
        for partner, month, followed in (
            ("acme", "2026-10", None),
            ("nimbus-ai", "2026-08", None),
            ("acme", "2026-06", "e" * 64),
        ):
            followed = followed or hashlib.sha256(bundles[(partner, month)]).hexdigest()
            receipts[(partner, month)] = clean(
                s3, states, ready["buckets"], signer, partner, month, followed
            )
        # a bundle object whose month was never delivered is not offered
        s3.put_object(
            Bucket=ready["buckets"]["bundles"],
            Key=bundle_key("acme", "2026-07"),
            Body=b"half-built",
            Metadata={"sha256": hashlib.sha256(b"half-built").hexdigest()},
        )
        states.transition("acme", "2026-07", BundleState.BUILDING)
        yield PullStack(stack, ready, state_dir, bundles, receipts)


def deliver(states: BundleStateStore, partner: str, month: str, sha256: str) -> None:
    """The bundle states the builder leaves behind a delivered bundle (no event: no cleanup)."""
    states.transition(partner, month, BundleState.BUILDING)
    states.transition(partner, month, BundleState.BUILT, attributes={"sha256": sha256})
    states.transition(
        partner,
        month,
        BundleState.DELIVERED,
        attributes={"sha256": sha256, "checksum_verified": True},
    )


def clean(
    s3: Any,
    states: BundleStateStore,
    buckets: dict[str, str],
    signer: LocalSigner,
    partner: str,
    month: str,
    bundle_sha256: str,
) -> bytes:
    """What cleanup leaves behind a cleaned month: its signed receipt beside the bundle
    (the stage's own code), then ``CLEANED`` recording the receipt's digest."""
    facts = deletion_facts(
        partner,
        month,
        bundle_sha256,
        analytics_bucket=buckets["analytics"],
        sanitized_bucket=buckets["sanitized"],
        deleted=(5, 6),
        deleted_keys_sha256="d" * 64,
        deleted_at=datetime.now(UTC),
    )
    stored = store_receipt(
        s3, buckets["bundles"], partner, month, receipt(facts, signer), replacing=None
    )
    states.transition(
        partner, month, BundleState.CLEANED, attributes={"receipt_sha256": stored.sha256}
    )
    return stored.body


def test_the_stack_records_the_proxy_and_the_stage_environment(pulled: PullStack) -> None:
    assert pulled.ready["presign_proxy"].startswith("http://127.0.0.1:")
    environment = read_environment(pulled.state_dir)
    assert environment == pulled.stack.stage_environment
    assert environment["PRESIGN_ENDPOINT_URL"] == pulled.ready["presign_proxy"]
    assert environment["BUNDLES_BUCKET"] == pulled.ready["buckets"]["bundles"]
    assert json.loads(environment["API_KEY_PARTNERS"]) == {
        key_id: partner for partner, key_id in pulled.ready["api_key_ids"]["partner"].items()
    }
    assert environment_path(pulled.state_dir).stat().st_mode & 0o777 == 0o600


def test_a_partner_lists_its_own_delivered_months(pulled: PullStack) -> None:
    response = pulled.get("/v1/bundles")
    assert response.status_code == 200
    listed = [entry for entry in response.json()["bundles"] if entry["month"] != CURRENT_MONTH]
    # not 2026-07: its object is there, but the month is still BUILDING
    assert [entry["month"] for entry in listed] == ["2026-06", "2026-09", "2026-10"]
    assert [entry["cleaned"] for entry in listed] == [True, False, True]
    assert listed[2]["bytes"] == len(pulled.bundles[("acme", "2026-10")])
    assert listed[2]["sha256"] == hashlib.sha256(pulled.bundles[("acme", "2026-10")]).hexdigest()


def test_an_ingest_key_passes_the_gateway_but_is_no_partner(pulled: PullStack) -> None:
    ingest_key = next(iter(pulled.ready["ingest_keys"].values()))
    response = pulled.get("/v1/bundles", partner=None, **{"x-api-key": ingest_key})
    assert response.status_code == 403
    assert response.json()["error"] == "unknown_partner"


def test_no_key_is_refused_by_the_gateway(pulled: PullStack) -> None:
    response = pulled.get("/v1/bundles/2026-10", partner=None)
    assert response.status_code == 403
    assert response.json() == {"message": "Forbidden"}


def test_another_partners_month_is_the_same_404_as_a_missing_one(pulled: PullStack) -> None:
    theirs = pulled.get("/v1/bundles/2026-08")  # nimbus-ai's month
    missing = pulled.get("/v1/bundles/2030-01")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.content == missing.content
    assert pulled.get("/v1/bundles/2026-08", partner="nimbus-ai").status_code == 200


def test_a_month_that_is_not_delivered_is_the_same_404(pulled: PullStack) -> None:
    building = pulled.get("/v1/bundles/2026-07")
    assert building.status_code == 404
    assert building.content == pulled.get("/v1/bundles/2030-01").content


def test_an_invalid_month_is_400(pulled: PullStack) -> None:
    response = pulled.get("/v1/bundles/2026-13")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_month"


def test_the_signing_key_is_the_stacks_public_key(pulled: PullStack) -> None:
    response = pulled.get("/v1/keys/signing")
    assert response.status_code == 200
    assert response.content == Path(pulled.ready["public_key"]).read_bytes()


def test_the_url_goes_through_the_verifying_proxy(pulled: PullStack) -> None:
    offer = pulled.get("/v1/bundles/2026-10").json()
    assert offer["url"].startswith(pulled.ready["presign_proxy"] + "/")
    # Given the URL as issued, the bundle downloads
    downloaded = httpx.get(offer["url"], timeout=30)
    assert downloaded.status_code == 200
    assert downloaded.content == pulled.bundles[("acme", "2026-10")]
    assert hashlib.sha256(downloaded.content).hexdigest() == offer["sha256"]
    # and the same URL pointed at another partner's bundle is refused
    other = offer["url"].replace(
        quote(bundle_key("acme", "2026-10")), quote(bundle_key("nimbus-ai", "2026-08"))
    )
    assert other != offer["url"]
    refused = httpx.get(other, timeout=30)
    assert refused.status_code == 403
    assert b"SignatureDoesNotMatch" in refused.content


def test_a_cleaned_months_receipt_goes_through_the_verifying_proxy(pulled: PullStack) -> None:
    # Given acme's cleaned 2026-10, the API offers its receipt beside the bundle
    offer = pulled.get("/v1/bundles/2026-10").json()
    receipt = offer["receipt"]
    genuine = pulled.receipts[("acme", "2026-10")]
    assert receipt["sha256"] == hashlib.sha256(genuine).hexdigest()
    assert receipt["bytes"] == len(genuine)
    assert receipt["expires_at"] == offer["expires_at"]
    assert receipt["url"].startswith(pulled.ready["presign_proxy"] + "/")
    # and its URL, as issued, serves it through the proxy
    downloaded = httpx.get(receipt["url"], timeout=30)
    assert downloaded.status_code == 200
    assert downloaded.content == genuine
    # while the same URL pointed at another key is refused: another partner's receipt,
    # or this month's bundle (a receipt URL is no URL for the ZIP, and vice versa)
    own_key = quote(deletion_receipt_key("acme", "2026-10"))
    for other_key in (deletion_receipt_key("nimbus-ai", "2026-08"), bundle_key("acme", "2026-10")):
        other = receipt["url"].replace(own_key, quote(other_key))
        assert other != receipt["url"]
        refused = httpx.get(other, timeout=30)
        assert refused.status_code == 403
        assert b"SignatureDoesNotMatch" in refused.content
    bundle_as_receipt = offer["url"].replace(quote(bundle_key("acme", "2026-10")), own_key)
    assert httpx.get(bundle_as_receipt, timeout=30).status_code == 403
    # and nimbus-ai gets its own receipt, never acme's
    theirs = pulled.get("/v1/bundles/2026-08", partner="nimbus-ai").json()["receipt"]
    assert httpx.get(theirs["url"], timeout=30).content == pulled.receipts[("nimbus-ai", "2026-08")]


def test_a_month_not_cleaned_offers_no_receipt(pulled: PullStack) -> None:
    offer = pulled.get("/v1/bundles/2026-09").json()
    assert offer["receipt"] is None
    assert httpx.get(offer["url"], timeout=30).status_code == 200


def test_the_pull_api_is_one_function_with_its_own_counters(pulled: PullStack) -> None:
    pulled.get("/v1/keys/signing")
    counters = pulled.stack.counters_document()["stages"]["bundle-pull"]
    assert counters["trigger"] == (
        "http GET /v1/bundles, GET /v1/bundles/{month}, GET /v1/keys/signing"
    )
    assert counters["invocations"] >= 1
    assert counters["errors"] == 0
    assert counters["outcomes"].get("http_200", 0) >= 1


def fetch(pulled: PullStack, month: str, out: Path, *options: str, key: str | None = None) -> Any:
    """``ryuzen bundle fetch`` of ``month`` into ``out``, as acme unless ``key`` is given."""
    return CliRunner().invoke(
        app,
        [
            "bundle",
            "fetch",
            "--api",
            pulled.ready["api"],
            "--key",
            key if key is not None else pulled.ready["partner_keys"]["acme"],
            "--month",
            month,
            "--out",
            str(out),
            *options,
        ],
    )


def test_bundle_fetch_downloads_and_verifies(pulled: PullStack, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = fetch(pulled, "2026-10", out, "--verify", "--public-key", pulled.ready["public_key"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["ok"] is True
    path = Path(line["path"])
    assert path == out / "ryuzen-telemetry-acme-2026-10.zip"
    assert path.read_bytes() == pulled.bundles[("acme", "2026-10")]
    assert line["verified"]["partner"] == "acme" and line["verified"]["month"] == "2026-10"
    assert line["verified"]["certificates"] == 2
    # and, the month being cleaned, its deletion receipt beside the ZIP, verified for acme,
    # 2026-10 and this very ZIP
    kept = out / "ryuzen-telemetry-acme-2026-10.deletion-receipt.dsse.json"
    assert kept.read_bytes() == pulled.receipts[("acme", "2026-10")]
    assert line["receipt"]["path"] == str(kept)
    assert line["receipt"]["sha256"] == hashlib.sha256(kept.read_bytes()).hexdigest()
    checked = line["receipt"]["verified"]
    assert (checked["partner"], checked["month"]) == ("acme", "2026-10")
    assert checked["bundle_checked"] == str(path)
    assert "verified the deletion receipt" in result.stderr
    assert "X-Amz-Signature" not in result.output  # the URL is never printed
    assert not list(out.glob(".*.part"))


def test_bundle_fetch_of_a_month_not_cleaned_says_there_is_no_receipt_yet(
    pulled: PullStack, tmp_path: Path
) -> None:
    result = fetch(
        pulled, "2026-09", tmp_path, "--verify", "--public-key", pulled.ready["public_key"]
    )
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["verified"]["month"] == "2026-09"
    assert line["receipt"] is None
    assert "no deletion receipt for 2026-09" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ryuzen-telemetry-acme-2026-09.zip"]


def test_bundle_fetch_refuses_a_receipt_that_follows_another_bundle(
    pulled: PullStack, tmp_path: Path
) -> None:
    # acme's 2026-06 receipt is genuine (signed, acme, 2026-06) but names another bundle
    result = fetch(
        pulled, "2026-06", tmp_path, "--verify", "--public-key", pulled.ready["public_key"]
    )
    assert result.exit_code == 1
    stderr = " ".join(result.stderr.split())
    zip_path = tmp_path / "ryuzen-telemetry-acme-2026-06.zip"
    kept = tmp_path / "ryuzen-telemetry-acme-2026-06.deletion-receipt.dsse.json"
    assert f"ryuzen bundle fetch: FAILED: {kept}: {zip_path}: sha256" in stderr
    assert "does not match the attested eeeeeeeeeeeeeeee" in stderr


def test_bundle_fetch_without_verify_leaves_the_receipt(pulled: PullStack, tmp_path: Path) -> None:
    result = fetch(pulled, "2026-10", tmp_path)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["receipt"] is None
    assert "--verify also fetches and checks its deletion receipt" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["ryuzen-telemetry-acme-2026-10.zip"]


@pytest.mark.parametrize(
    ("month", "reason"),
    [
        pytest.param("2026-08", "404 not_found", id="another-partners-month"),
        pytest.param("2031-02", "404 not_found", id="missing-month"),
    ],
)
def test_bundle_fetch_reports_the_apis_refusal(
    pulled: PullStack, tmp_path: Path, month: str, reason: str
) -> None:
    result = fetch(pulled, month, tmp_path)
    assert result.exit_code == 1
    assert reason in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_bundle_fetch_needs_a_key_to_verify_with(pulled: PullStack, tmp_path: Path) -> None:
    result = fetch(pulled, "2026-10", tmp_path, "--verify", key="k")
    assert result.exit_code == 2
    assert "--verify needs --public-key" in result.stderr


# --- `ryuzen local bundle`: the builder against the running stack -----------------------


def local_bundle(pulled: PullStack, *options: str) -> Any:
    return CliRunner().invoke(
        app,
        ["local", "bundle", "--state-dir", str(pulled.state_dir), "--partner", "orbital", *options],
    )


def test_local_bundle_refuses_the_open_month_without_the_flag(pulled: PullStack) -> None:
    result = local_bundle(pulled, "--month", CURRENT_MONTH)
    assert result.exit_code == 3, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "refused"
    assert "--allow-open-month" in summary["reason"]


def test_local_bundle_builds_this_month_and_the_partner_fetches_it(
    pulled: PullStack, tmp_path: Path
) -> None:
    # When the task runs for orbital's open month
    built = local_bundle(pulled, "--month", CURRENT_MONTH, "--allow-open-month")
    assert built.exit_code == 0, built.output
    summary = json.loads(built.stdout.strip().splitlines()[-1])
    assert summary["status"] == "delivered"
    assert summary["bundle_key"] == bundle_key("orbital", CURRENT_MONTH)
    assert summary["events"] > 0

    # Then orbital sees it in its list, with the digest the task delivered
    listed = pulled.get("/v1/bundles", partner="orbital").json()["bundles"]
    assert {"month": CURRENT_MONTH, "sha256": summary["sha256"]}.items() <= listed[-1].items()
    # and no other partner can obtain it: acme (never built this month) gets the plain 404
    theirs = pulled.get(f"/v1/bundles/{CURRENT_MONTH}", partner="acme")
    assert theirs.status_code == 404
    assert theirs.content == pulled.get("/v1/bundles/2030-01", partner="acme").content
    acme_list = pulled.get("/v1/bundles").json()["bundles"]
    assert summary["sha256"] not in {entry["sha256"] for entry in acme_list}

    # and `ryuzen bundle fetch --verify` downloads and verifies it
    fetched = fetch(
        pulled,
        CURRENT_MONTH,
        tmp_path,
        "--verify",
        "--public-key",
        pulled.ready["public_key"],
        key=pulled.ready["partner_keys"]["orbital"],
    )
    assert fetched.exit_code == 0, fetched.output
    line = json.loads(fetched.stdout.strip().splitlines()[-1])
    assert line["sha256"] == summary["sha256"]
    verified = line["verified"]
    assert (verified["partner"], verified["month"]) == ("orbital", CURRENT_MONTH)
    assert verified["counts"]["events"] == summary["events"]
    assert verified["certificates"] == summary["certificates"] > 0

    # and building it again is refused: the month is delivered (or, once the cleanup
    # stage has had its BundleDelivered event, cleaned)
    again = local_bundle(pulled, "--month", CURRENT_MONTH, "--allow-open-month")
    assert again.exit_code == 3
    assert "is already DELIVERED" in again.stderr or "is already CLEANED" in again.stderr


def test_local_bundle_without_a_stack_names_the_state_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["local", "bundle", "--state-dir", str(tmp_path), "--partner", "acme"]
    )
    assert result.exit_code == 1
    assert "state.json" in result.stderr
