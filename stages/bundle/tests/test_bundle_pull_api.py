"""The partner pull API: who may call it, what each route answers, and partner isolation."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError
from bundle_pull_fixtures import (
    ACME_KEY_ID,
    BUCKET,
    CONFIGURED_TTL,
    INGEST_KEY_ID,
    NIMBUS_KEY_ID,
    PRESIGN_ENDPOINT,
    REGION,
    PullWorld,
    proxy_event,
    pull_environ,
    pull_world,
    url_query,
)
from moto import mock_aws
from ryuzen_bundle import pull_handler
from ryuzen_bundle.pull_handler import PullRuntime, handle
from ryuzen_bundle.pull_settings import PullSettings
from ryuzen_contracts.bundle_state import BundleState
from ryuzen_contracts.key_layout import bundle_key
from ryuzen_contracts.settings import SettingsError


@pytest.fixture
def world(tmp_path: Path) -> Iterator[PullWorld]:
    with pull_world(tmp_path) as built:
        yield built


# --- who may call -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/bundles", "/v1/bundles/2026-10", "/v1/keys/signing"])
@pytest.mark.parametrize(
    "key_id",
    [
        pytest.param(None, id="no-key"),
        pytest.param(INGEST_KEY_ID, id="ingest-key"),
        pytest.param("", id="empty-key-id"),
    ],
)
def test_only_a_partner_key_is_served(world: PullWorld, path: str, key_id: str | None) -> None:
    world.put_bundle("acme", "2026-10")
    answer = world.call(path, key_id=key_id)
    assert answer.status == 403
    assert answer.json() == {
        "error": "unknown_partner",
        "detail": "this API key does not belong to a partner",
    }


def test_an_event_without_identity_is_refused(world: PullWorld) -> None:
    event = proxy_event("/v1/bundles")
    del event["requestContext"]["identity"]
    answer = handle(event, world.runtime)
    assert answer["statusCode"] == 403
    assert json.loads(answer["body"])["error"] == "unknown_partner"


# --- GET /v1/bundles ----------------------------------------------------------------------


def test_the_list_holds_the_partners_months_only(world: PullWorld) -> None:
    # Given two acme months, one nimbus month, and objects that are not bundles
    october = world.put_bundle("acme", "2026-10")
    september = world.put_bundle("acme", "2026-09", b"x" * 12345)
    world.put_bundle("nimbus-ai", "2026-10")
    world.s3.put_object(Bucket=BUCKET, Key="acme/2026-10/notes.txt", Body=b"stray")
    world.s3.put_object(Bucket=BUCKET, Key="acme/2026-08/ryuzen-telemetry-acme-2026-08.zip")
    world.s3.put_object(Bucket=BUCKET, Key="acme-old/2026-10/x.zip", Body=b"other prefix")

    # When acme lists its bundles
    answer = world.call("/v1/bundles")

    # Then it sees its two complete bundles, oldest first, with size, digest and time
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert body["partner"] == "acme"
    assert [entry["month"] for entry in body["bundles"]] == ["2026-09", "2026-10"]
    first, second = body["bundles"]
    assert set(first) == {"month", "bytes", "sha256", "created_at", "cleaned"}
    assert first["bytes"] == len(september) == 12345
    assert (
        first["sha256"]
        == world.s3.head_object(Bucket=BUCKET, Key=bundle_key("acme", "2026-09"))["Metadata"][
            "sha256"
        ]
    )
    assert second["bytes"] == len(october)
    created = datetime.strptime(second["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(created - datetime.now(UTC)) < timedelta(minutes=5)
    assert first["cleaned"] is second["cleaned"] is False


def test_created_at_is_when_the_bundle_was_delivered_and_stays_so(world: PullWorld) -> None:
    # Given a bundle delivered at a known moment, its state recording that time
    delivered = datetime(2026, 11, 1, 3, 4, 5, 678000, tzinfo=UTC)
    data = world.put_bundle("acme", "2026-10", delivered_at=delivered)
    key = bundle_key("acme", "2026-10")
    listed_first = world.call("/v1/bundles").json()["bundles"]

    # When the object is later rewritten in place (a metadata self-copy, as the builder's
    # own does: a new LastModified) and cleanup moves the month to CLEANED
    world.s3.copy_object(
        Bucket=BUCKET,
        Key=key,
        CopySource={"Bucket": BUCKET, "Key": key},
        Metadata={"sha256": hashlib.sha256(data).hexdigest(), "note": "copied"},
        MetadataDirective="REPLACE",
    )
    world.states.transition("acme", "2026-10", BundleState.CLEANED)
    listed_later = world.call("/v1/bundles").json()["bundles"]

    # Then created_at is the delivery time both times, not the object's LastModified
    assert listed_first[0]["created_at"] == listed_later[0]["created_at"] == "2026-11-01T03:04:05Z"
    assert world.s3.head_object(Bucket=BUCKET, Key=key)["LastModified"] > delivered
    assert (listed_first[0]["cleaned"], listed_later[0]["cleaned"]) == (False, True)


def test_a_state_without_a_delivery_time_shows_the_objects_time(world: PullWorld) -> None:
    # A DELIVERED state that records no delivered_at (not one the builder wrote)
    data = world.put_bundle("acme", "2026-10", state=BundleState.BUILT)
    world.states.transition(
        "acme",
        "2026-10",
        BundleState.DELIVERED,
        attributes={"sha256": hashlib.sha256(data).hexdigest(), "checksum_verified": True},
    )
    modified = world.s3.head_object(Bucket=BUCKET, Key=bundle_key("acme", "2026-10"))[
        "LastModified"
    ]
    (entry,) = world.call("/v1/bundles").json()["bundles"]
    assert entry["created_at"] == modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_another_partner_sees_only_its_own(world: PullWorld) -> None:
    world.put_bundle("acme", "2026-10")
    world.put_bundle("nimbus-ai", "2026-07")
    body = world.call("/v1/bundles", key_id=NIMBUS_KEY_ID).json()
    assert body == {
        "partner": "nimbus-ai",
        "bundles": [
            {
                "month": "2026-07",
                "bytes": len(world.uploaded[("nimbus-ai", "2026-07")]),
                "sha256": body["bundles"][0]["sha256"],
                "created_at": body["bundles"][0]["created_at"],
                "cleaned": False,
            }
        ],
    }


def test_an_empty_list_is_an_empty_array(world: PullWorld) -> None:
    world.put_bundle("nimbus-ai", "2026-10")
    assert world.call("/v1/bundles").json() == {"partner": "acme", "bundles": []}


def test_the_list_pages_through_many_objects(world: PullWorld) -> None:
    for month in range(1, 13):
        world.put_bundle("acme", f"2025-{month:02d}", b"z")
    world.s3.put_object(Bucket=BUCKET, Key="acme/2025-01/padding", Body=b"")
    assert len(world.call("/v1/bundles").json()["bundles"]) == 12


# --- GET /v1/bundles/{month} --------------------------------------------------------------


def test_a_month_answers_a_presigned_url_for_its_bundle(world: PullWorld) -> None:
    data = world.put_bundle("acme", "2026-10")
    before = datetime.now(UTC).replace(microsecond=0)
    answer = world.call("/v1/bundles/2026-10")
    assert answer.status == 200
    body = answer.json()
    assert set(body) == {"url", "expires_at", "sha256", "bytes", "receipt"}
    assert body["receipt"] is None  # delivered, not cleaned: no deletion receipt yet
    assert body["bytes"] == len(data)
    assert (
        body["sha256"]
        == world.s3.head_object(Bucket=BUCKET, Key=bundle_key("acme", "2026-10"))["Metadata"][
            "sha256"
        ]
    )
    url = urlsplit(body["url"])
    # path-style through the presign endpoint, for exactly this bucket and key
    assert f"{url.scheme}://{url.netloc}" == PRESIGN_ENDPOINT
    assert unquote(url.path) == f"/{BUCKET}/{bundle_key('acme', '2026-10')}"
    query = url_query(body["url"])
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == str(CONFIGURED_TTL)  # static credentials: no clamp
    assert query["X-Amz-Credential"].startswith(f"AKIDSTATIC/{before:%Y%m%d}/{REGION}/s3/")
    expires_at = datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before + timedelta(seconds=CONFIGURED_TTL) <= expires_at
    assert expires_at <= before + timedelta(seconds=CONFIGURED_TTL + 2)


def test_the_url_downloads_the_bundle(world: PullWorld) -> None:
    # moto does not check signatures (the local stack's proxy does): the key is what counts
    data = world.put_bundle("acme", "2026-10")
    body = world.call("/v1/bundles/2026-10").json()
    path = unquote(urlsplit(body["url"]).path)
    bucket, key = path.lstrip("/").split("/", 1)
    assert world.s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data


def test_another_partners_month_is_the_same_404_as_a_missing_month(world: PullWorld) -> None:
    # Given nimbus has a bundle for 2026-10, acme has none, and nobody has 2026-11
    world.put_bundle("nimbus-ai", "2026-10")

    # When acme asks for both months
    theirs = handle(proxy_event("/v1/bundles/2026-10"), world.runtime)
    missing = handle(proxy_event("/v1/bundles/2026-11"), world.runtime)

    # Then the answers are identical: nothing tells acme that nimbus has 2026-10
    assert theirs["statusCode"] == missing["statusCode"] == 404
    assert theirs["body"] == missing["body"]
    assert theirs["headers"] == missing["headers"]
    assert json.loads(theirs["body"]) == {
        "error": "not_found",
        "detail": "no bundle is available for this month",
    }
    # and nimbus itself gets its bundle
    assert world.call("/v1/bundles/2026-10", key_id=NIMBUS_KEY_ID).status == 200


@pytest.mark.parametrize(
    "sha256",
    [pytest.param("", id="no-digest"), pytest.param("not-a-digest", id="bad-digest")],
)
def test_a_bundle_without_the_builders_digest_is_not_offered(world: PullWorld, sha256: str) -> None:
    world.put_bundle("acme", "2026-10", sha256=sha256)
    assert world.call("/v1/bundles/2026-10").status == 404
    assert world.call("/v1/bundles").json()["bundles"] == []


# --- availability follows the bundle state -------------------------------------------------

NOT_FOUND = {"error": "not_found", "detail": "no bundle is available for this month"}


def rebuilding(world: PullWorld, partner: str, month: str) -> None:
    """A delivered month whose forced rebuild has started (its object is being replaced)."""
    world.put_bundle(partner, month)
    world.states.transition(partner, month, BundleState.BUILDING, force=True)


@pytest.mark.parametrize(
    "put",
    [
        pytest.param(lambda w, p, m: w.put_bundle(p, m, state=None), id="no-state"),
        pytest.param(lambda w, p, m: w.put_bundle(p, m, state=BundleState.BUILDING), id="BUILDING"),
        pytest.param(lambda w, p, m: w.put_bundle(p, m, state=BundleState.BUILT), id="BUILT"),
        pytest.param(rebuilding, id="forced-rebuild-in-progress"),
    ],
)
def test_a_month_not_delivered_is_neither_listed_nor_served(world: PullWorld, put: Any) -> None:
    # Given acme's 2026-10 object carries the builder's digest, but the month's state does
    # not say DELIVERED (or CLEANED); 2026-09 is delivered
    put(world, "acme", "2026-10")
    world.put_bundle("acme", "2026-09")

    # When acme lists its bundles and asks for that month, and for one that does not exist
    listed = world.call("/v1/bundles").json()
    undelivered = handle(proxy_event("/v1/bundles/2026-10"), world.runtime)
    missing = handle(proxy_event("/v1/bundles/2031-01"), world.runtime)

    # Then the month is not listed, and answers exactly like a missing month
    assert [entry["month"] for entry in listed["bundles"]] == ["2026-09"]
    assert undelivered["statusCode"] == missing["statusCode"] == 404
    assert undelivered["body"] == missing["body"]
    assert undelivered["headers"] == missing["headers"]
    assert json.loads(undelivered["body"]) == NOT_FOUND


def test_a_month_becomes_available_when_it_is_delivered(world: PullWorld) -> None:
    data = world.put_bundle("acme", "2026-10", state=BundleState.BUILT)
    assert world.call("/v1/bundles/2026-10").status == 404

    world.states.transition(
        "acme",
        "2026-10",
        BundleState.DELIVERED,
        attributes={"sha256": hashlib.sha256(data).hexdigest(), "checksum_verified": True},
    )

    listed = world.call("/v1/bundles").json()["bundles"]
    assert [(entry["month"], entry["bytes"]) for entry in listed] == [("2026-10", len(data))]
    answer = world.call("/v1/bundles/2026-10")
    assert answer.status == 200
    assert answer.json()["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_cleaned_month_is_still_served(world: PullWorld) -> None:
    # Cleanup deleted the month's working telemetry; the bundle itself stays downloadable.
    data = world.put_bundle("acme", "2026-10", state=BundleState.CLEANED)

    listed = world.call("/v1/bundles").json()["bundles"]
    answer = world.call("/v1/bundles/2026-10")

    assert [entry["month"] for entry in listed] == ["2026-10"]
    assert answer.status == 200
    assert answer.json()["bytes"] == len(data)


def test_a_delivered_state_without_an_object_is_404(world: PullWorld) -> None:
    world.put_bundle("acme", "2026-10")
    world.s3.delete_object(Bucket=BUCKET, Key=bundle_key("acme", "2026-10"))
    assert world.call("/v1/bundles/2026-10").json() == NOT_FOUND
    assert world.call("/v1/bundles").json()["bundles"] == []


def test_another_partners_delivered_state_does_not_make_a_month_available(
    world: PullWorld,
) -> None:
    # nimbus-ai's 2026-10 is delivered; acme has an object for 2026-10 but no state of its own
    world.put_bundle("nimbus-ai", "2026-10")
    world.put_bundle("acme", "2026-10", state=None)
    assert world.call("/v1/bundles/2026-10").json() == NOT_FOUND
    assert world.call("/v1/bundles/2026-10", key_id=NIMBUS_KEY_ID).status == 200


@pytest.mark.parametrize(
    "month",
    [
        pytest.param("2026-13", id="month-13"),
        pytest.param("2026-00", id="month-00"),
        pytest.param("2026-1", id="one-digit"),
        pytest.param("26-10", id="short-year"),
        pytest.param("2026_10", id="underscore"),
        pytest.param("2026-10-01", id="a-day"),
        pytest.param("latest", id="word"),
        pytest.param("..%2Fnimbus-ai", id="traversal"),
        pytest.param("\uff12\uff10\uff12\uff16-10", id="fullwidth-digits"),
    ],
)
def test_an_invalid_month_is_400(world: PullWorld, month: str) -> None:
    answer = world.call(f"/v1/bundles/{month}")
    assert answer.status == 400
    assert answer.json() == {"error": "invalid_month", "detail": "the month must be YYYY-MM"}


def test_an_invalid_month_from_an_unknown_key_is_still_403(world: PullWorld) -> None:
    assert world.call("/v1/bundles/2026-13", key_id=INGEST_KEY_ID).status == 403


def test_the_month_comes_from_the_path_when_the_event_has_no_resource(world: PullWorld) -> None:
    world.put_bundle("acme", "2026-10")
    event = proxy_event("/v1/bundles/2026-10", resource="", path_parameters=None)
    assert handle(event, world.runtime)["statusCode"] == 200


# --- GET /v1/keys/signing -----------------------------------------------------------------


def test_the_signing_key_is_the_public_pem(world: PullWorld) -> None:
    answer = world.call("/v1/keys/signing")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/x-pem-file"
    assert answer.body.encode() == world.public_key_file.read_bytes()
    assert answer.body.startswith("-----BEGIN PUBLIC KEY-----")


def test_with_kms_the_signing_key_is_the_kms_keys_public_half(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    with mock_aws():
        kms = boto3.client("kms", region_name=REGION)
        key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"][
            "KeyId"
        ]
        environ = pull_environ(tmp_path / "absent.pem")
        del environ["SIGNING_PUBLIC_KEY_FILE"]
        environ["SIGNING_KMS_KEY_ID"] = key_id
        runtime = PullRuntime(PullSettings.from_environ(environ), kms=kms)
        answer = handle(proxy_event("/v1/keys/signing"), runtime)
        der = kms.get_public_key(KeyId=key_id)["PublicKey"]
    assert answer["statusCode"] == 200
    loaded = serialization.load_pem_public_key(answer["body"].encode())
    assert (
        loaded.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == der
    )


def test_an_unreadable_key_file_is_503(world: PullWorld) -> None:
    world.public_key_file.unlink()
    answer = world.call("/v1/keys/signing")
    assert answer.status == 503
    assert answer.json()["error"] == "unavailable"


# --- routing, failures, settings ----------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_only_get_is_allowed(world: PullWorld, method: str) -> None:
    answer = world.call("/v1/bundles", method=method)
    assert answer.status == 405
    assert answer.headers["Allow"] == "GET"


def test_an_unknown_resource_is_404(world: PullWorld) -> None:
    answer = world.call("/v1/other", resource="/v1/other")
    assert answer.status == 404
    assert answer.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("client", "operation", "path"),
    [
        pytest.param("s3", "head_object", "/v1/bundles/2026-10", id="s3-head"),
        pytest.param("s3", "list_objects_v2", "/v1/bundles", id="s3-list"),
        pytest.param("dynamodb", "get_item", "/v1/bundles/2026-10", id="state-get"),
        pytest.param("dynamodb", "get_item", "/v1/bundles", id="state-get-in-list"),
    ],
)
def test_a_storage_failure_is_503_with_retry_after(
    world: PullWorld, monkeypatch: pytest.MonkeyPatch, client: str, operation: str, path: str
) -> None:
    world.put_bundle("acme", "2026-10")

    def throttled(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow"}}, operation)

    monkeypatch.setattr(getattr(world.runtime, client), operation, throttled)
    answer = world.call(path)
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "5"
    assert answer.json() == {
        "error": "unavailable",
        "detail": "the bundle store is unavailable; retry later",
    }


def test_logs_carry_no_url_signature_or_key_value(
    world: PullWorld, caplog: pytest.LogCaptureFixture
) -> None:
    world.put_bundle("acme", "2026-10")
    with caplog.at_level(logging.DEBUG, logger="ryuzen-bundle-pull"):
        body = world.call("/v1/bundles/2026-10").json()
    # every record of the handler's logger with every extra field it carries (botocore's
    # own DEBUG log does print signatures; Lambda runs it at WARNING)
    output = "\n".join(
        f"{record.getMessage()} {record.__dict__}"
        for record in caplog.records
        if record.name == "ryuzen-bundle-pull"
    )
    assert "presigned URL issued" in output
    assert url_query(body["url"])["X-Amz-Signature"] not in output
    assert "X-Amz-" not in output and body["url"] not in output
    assert "secret-value-never-logged" not in output
    assert ACME_KEY_ID not in output  # the key id is not needed in the logs either


def test_misconfigured_settings_answer_500_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("BUNDLES_BUCKET", "STACK_CONFIG", "API_KEY_PARTNERS", "SIGNING_KMS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUDIT_TABLE", "audit")
    pull_handler.reset_runtime()
    try:
        with caplog.at_level(logging.ERROR, logger="ryuzen-bundle-pull"):
            answer = pull_handler.lambda_handler(proxy_event("/v1/bundles"), None)
    finally:
        pull_handler.reset_runtime()
    assert answer["statusCode"] == 500
    assert json.loads(answer["body"]) == {
        "error": "internal_error",
        "detail": "the bundle API is misconfigured",
    }
    # The operator reads which variables to fix (a SettingsError quotes no value).
    (record,) = [r for r in caplog.records if r.getMessage() == "pull settings are invalid"]
    assert record.error_type == "SettingsError"  # type: ignore[attr-defined]
    assert "missing environment variable BUNDLES_BUCKET" in record.error  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            {"API_KEY_PARTNERS": json.dumps({ACME_KEY_ID: "initech"})},
            "names partners the stack does not have: initech",
            id="unknown-partner",
        ),
        pytest.param(
            {"API_KEY_PARTNERS": "[1, 2]"},
            "must be a JSON object of apiKeyId to partner id",
            id="not-an-object",
        ),
        pytest.param(
            {"SIGNING_PUBLIC_KEY_FILE": None},
            "set SIGNING_KMS_KEY_ID or SIGNING_PUBLIC_KEY_FILE",
            id="no-key-source",
        ),
        pytest.param({"BUNDLES_BUCKET": None}, "BUNDLES_BUCKET", id="no-bucket"),
        pytest.param({"AUDIT_TABLE": None}, "AUDIT_TABLE", id="no-state-table"),
        pytest.param(
            {"PRESIGN_ROLE_ARN": "arn:aws:s3:::not-a-role"}, "PRESIGN_ROLE_ARN", id="not-a-role-arn"
        ),
    ],
)
def test_settings_errors_name_the_variable(
    tmp_path: Path, change: dict[str, str | None], message: str
) -> None:
    environ: dict[str, Any] = {**pull_environ(tmp_path / "k.pem"), **change}
    environ = {name: value for name, value in environ.items() if value is not None}
    with pytest.raises(SettingsError, match=message):
        PullSettings.from_environ(environ)


def test_the_handler_reads_its_settings_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pull_world(tmp_path) as world:
        world.put_bundle("acme", "2026-10")
        for name, value in pull_environ(world.public_key_file).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        monkeypatch.delenv("SIGNING_KMS_KEY_ID", raising=False)
        pull_handler.reset_runtime()
        try:
            answer = pull_handler.lambda_handler(proxy_event("/v1/bundles/2026-10"), None)
        finally:
            pull_handler.reset_runtime()
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["bytes"] == len(world.uploaded[("acme", "2026-10")])
