"""The presigned URL's TTL: the configured TTL, clamped to the signing credentials' lifetime."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.credentials import Credentials
from bundle_pull_fixtures import (
    CONFIGURED_TTL,
    expiring_credentials,
    pull_world,
    static_credentials,
    url_query,
)
from ryuzen_bundle.presign import (
    MIN_TTL_SECONDS,
    SAFETY_MARGIN,
    CredentialsExpiringError,
    clamp_ttl,
    presign_get,
    signing_credentials,
)

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
MARGIN = int(SAFETY_MARGIN.total_seconds())


@pytest.mark.parametrize(
    ("configured", "expires_in", "expected"),
    [
        pytest.param(900, None, 900, id="no-visible-expiry"),
        pytest.param(900, 3600, 900, id="credentials-outlive-the-ttl"),
        pytest.param(900, 900 + MARGIN, 900, id="exactly-enough"),
        pytest.param(900, 600, 600 - MARGIN, id="credentials-expire-first"),
        pytest.param(43_200, 7200, 7200 - MARGIN, id="long-ttl-clamped"),
        pytest.param(900, MIN_TTL_SECONDS + MARGIN, MIN_TTL_SECONDS, id="just-enough"),
    ],
)
def test_the_ttl_is_the_smaller_of_configured_and_remaining(
    configured: int, expires_in: int | None, expected: int
) -> None:
    expires_at = None if expires_in is None else NOW + timedelta(seconds=expires_in)
    assert clamp_ttl(configured, expires_at, NOW) == expected


@pytest.mark.parametrize(
    "expires_in",
    [
        pytest.param(MIN_TTL_SECONDS + MARGIN - 1, id="under-the-minimum"),
        pytest.param(MARGIN, id="only-the-margin"),
        pytest.param(-10, id="already-expired"),
    ],
)
def test_credentials_about_to_expire_sign_nothing(expires_in: int) -> None:
    with pytest.raises(CredentialsExpiringError):
        clamp_ttl(900, NOW + timedelta(seconds=expires_in), NOW)


def test_refreshable_credentials_show_their_expiry() -> None:
    frozen = signing_credentials(expiring_credentials(300))
    assert frozen.access_key == "ASIATEMPORARY"
    assert frozen.token == "temporary-session-token"
    assert frozen.expires_at is not None
    assert frozen.expires_at.tzinfo is not None
    left = (frozen.expires_at - datetime.now(UTC)).total_seconds()
    assert 290 < left <= 300


def test_plain_credentials_show_none() -> None:
    frozen = signing_credentials(Credentials("AKID", "secret", "token"))
    assert frozen.expires_at is None
    assert (frozen.access_key, frozen.secret_key, frozen.token) == ("AKID", "secret", "token")


def test_no_credentials_at_all_sign_nothing() -> None:
    with pytest.raises(CredentialsExpiringError):
        signing_credentials(None)


def test_credentials_whose_refresh_fails_sign_nothing() -> None:
    credentials = expiring_credentials(-5)  # expired: botocore must refresh, and that fails
    credentials._refresh_using = _failing_refresh  # type: ignore[attr-defined]
    with pytest.raises(CredentialsExpiringError, match="cannot be refreshed"):
        signing_credentials(credentials)


def _failing_refresh() -> dict[str, str]:
    raise RuntimeError("sts unreachable")


def test_presign_get_reports_the_expiry_it_signed_for() -> None:
    presigned = presign_get(
        signing_credentials(static_credentials()),
        bucket="b",
        key="acme/2026-10/x.zip",
        configured_ttl_seconds=600,
        region="eu-west-1",
        endpoint_url="http://127.0.0.1:9",
    )
    query = url_query(presigned.url)
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert presigned.ttl_seconds == int(query["X-Amz-Expires"]) == 600
    # expires_at never promises more than the URL gives
    assert presigned.expires_at <= signed_at + timedelta(seconds=600)
    assert signed_at + timedelta(seconds=600) - presigned.expires_at < timedelta(seconds=2)


# --- through the handler --------------------------------------------------------------------


def test_credentials_expiring_soon_clamp_the_url(tmp_path: Path) -> None:
    # Given the role's temporary credentials expire in 5 minutes and the stack says 15
    with pull_world(tmp_path, credentials=expiring_credentials(300)) as world:
        world.put_bundle("acme", "2026-10")
        before = datetime.now(UTC).replace(microsecond=0)

        # When acme asks for its bundle
        answer = world.call("/v1/bundles/2026-10")

    # Then the URL lives 5 minutes minus the margin, signed by those very credentials
    assert answer.status == 200
    body = answer.json()
    query = url_query(body["url"])
    ttl = int(query["X-Amz-Expires"])
    assert 300 - MARGIN - 3 <= ttl <= 300 - MARGIN
    assert ttl < CONFIGURED_TTL
    assert query["X-Amz-Credential"].startswith("ASIATEMPORARY/")
    assert query["X-Amz-Security-Token"] == "temporary-session-token"
    expires_at = datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before + timedelta(seconds=ttl) <= expires_at <= before + timedelta(seconds=ttl + 2)
    assert expires_at < before + timedelta(seconds=300)  # dies before the credentials do


def test_credentials_with_a_long_life_keep_the_configured_ttl(tmp_path: Path) -> None:
    with pull_world(tmp_path, credentials=expiring_credentials(6 * 3600)) as world:
        world.put_bundle("acme", "2026-10")
        body = world.call("/v1/bundles/2026-10").json()
    assert url_query(body["url"])["X-Amz-Expires"] == str(CONFIGURED_TTL)


def test_credentials_expiring_within_the_margin_answer_503(tmp_path: Path) -> None:
    with pull_world(tmp_path, credentials=expiring_credentials(MARGIN + 5)) as world:
        world.put_bundle("acme", "2026-10")
        answer = world.call("/v1/bundles/2026-10")
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "5"
    assert json.loads(answer.body) == {
        "error": "unavailable",
        "detail": "the signing credentials are being renewed; retry shortly",
    }
