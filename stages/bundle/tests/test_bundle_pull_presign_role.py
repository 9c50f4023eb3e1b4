"""``PRESIGN_ROLE_ARN``: URLs signed with an assumed role, clamped to its credentials' expiry.

moto's STS answers ``AssumeRole`` with real temporary credentials and an ``Expiration``
(``DurationSeconds`` after the call). The runtime's clock is frozen and moved by the
tests, so "the credentials are about to expire" is a matter of moving it forward; the
expected TTL is computed from the Expiration STS really returned.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from bundle_pull_fixtures import CONFIGURED_TTL, PullWorld, pull_world, url_query
from ryuzen_bundle.presign import SAFETY_MARGIN
from ryuzen_bundle.signing_role import (
    ADVISORY_REFRESH_SECONDS,
    MANDATORY_REFRESH_SECONDS,
    SESSION_NAME,
    session_duration,
)

ROLE_ARN = "arn:aws:iam::123456789012:role/ryuzen-dev-bundle-presign"
MONTH_PATH = "/v1/bundles/2026-10"


class FrozenClock:
    """The runtime's clock: it stands still until a test moves it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class AssumeRoleCalls:
    """What the pull runtime asked moto's STS, and the credentials it got back."""

    params: list[dict[str, Any]] = field(default_factory=list)
    credentials: list[dict[str, Any]] = field(default_factory=list)

    def record_params(self, params: dict[str, Any], **_: Any) -> None:
        self.params.append(dict(params))

    def record_answer(self, parsed: dict[str, Any], **_: Any) -> None:
        if "Credentials" in parsed:
            self.credentials.append(parsed["Credentials"])


@dataclass
class RoleWorld:
    world: PullWorld
    clock: FrozenClock
    calls: AssumeRoleCalls

    def url(self) -> dict[str, str]:
        """Ask for acme's 2026-10 bundle; the presigned URL's query."""
        answer = self.world.call(MONTH_PATH)
        assert answer.status == 200, answer.body
        return url_query(answer.json()["url"])

    def expected_ttl(self, credentials: dict[str, Any]) -> int:
        """The clamp, from the Expiration STS returned and the (whole-second) clock."""
        moment = self.clock.now.replace(microsecond=0)
        remaining = credentials["Expiration"] - moment - SAFETY_MARGIN
        return min(CONFIGURED_TTL, int(remaining.total_seconds()))


@pytest.fixture
def role(tmp_path: Path) -> Iterator[RoleWorld]:
    clock = FrozenClock()
    calls = AssumeRoleCalls()
    with pull_world(tmp_path, environ={"PRESIGN_ROLE_ARN": ROLE_ARN}, clock=clock) as world:
        events = world.runtime.sts.meta.events
        events.register("provide-client-params.sts.AssumeRole", calls.record_params)
        events.register("after-call.sts.AssumeRole", calls.record_answer)
        world.put_bundle("acme", "2026-10")
        yield RoleWorld(world, clock, calls)


def sts_unavailable(**_: Any) -> Any:
    raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "AssumeRole")


# --- the role and its session ---------------------------------------------------------------


def test_urls_are_signed_with_the_assumed_roles_credentials(role: RoleWorld) -> None:
    query = role.url()

    # One AssumeRole, for the configured role, a session named after the stage, and a
    # duration that covers the configured TTL
    assert role.calls.params == [
        {"RoleArn": ROLE_ARN, "RoleSessionName": SESSION_NAME, "DurationSeconds": CONFIGURED_TTL}
    ]
    (assumed,) = role.calls.credentials
    assert query["X-Amz-Credential"].startswith(assumed["AccessKeyId"] + "/")
    assert query["X-Amz-Security-Token"] == assumed["SessionToken"]
    # A fresh 15-minute session still clamps a 15-minute TTL by the safety margin.
    assert int(query["X-Amz-Expires"]) == role.expected_ttl(assumed)
    assert int(query["X-Amz-Expires"]) < CONFIGURED_TTL


@pytest.mark.parametrize(
    ("configured", "duration"),
    [
        pytest.param(60, 900, id="short-ttl-gets-the-sts-minimum"),
        pytest.param(900, 900, id="default"),
        pytest.param(1800, 1800, id="longer-ttl"),
        pytest.param(43_200, 3600, id="role-chaining-caps-at-an-hour"),
    ],
)
def test_the_session_lasts_the_configured_ttl_within_sts_limits(
    configured: int, duration: int
) -> None:
    assert session_duration(configured) == duration


def test_without_a_role_sts_is_never_used(tmp_path: Path) -> None:
    with pull_world(tmp_path) as world:
        world.put_bundle("acme", "2026-10")
        query = url_query(world.call(MONTH_PATH).json()["url"])
        assert world.runtime.sts is None  # not even a client was made
    assert query["X-Amz-Credential"].startswith("AKIDSTATIC/")


# --- the clamp, the cache and the refresh ------------------------------------------------------


def test_near_expiry_assumed_credentials_clamp_the_ttl(role: RoleWorld) -> None:
    # Given the role was assumed for 15 minutes, and 10 of them have passed
    role.url()
    role.clock.advance(600)

    # When acme asks again (still outside the refresh window: no new session)
    query = role.url()

    # Then the URL lives only what is left of the session, minus the margin (~4 minutes)
    (assumed,) = role.calls.credentials
    ttl = int(query["X-Amz-Expires"])
    assert ttl == role.expected_ttl(assumed)
    assert ttl <= 300 - int(SAFETY_MARGIN.total_seconds()) + 1
    assert query["X-Amz-Credential"].startswith(assumed["AccessKeyId"] + "/")


def test_assumed_credentials_are_reused_between_requests(role: RoleWorld) -> None:
    keys = []
    for _ in range(3):
        keys.append(role.url()["X-Amz-Credential"].split("/")[0])
        role.clock.advance(120)

    assert len(role.calls.params) == 1
    assert len(set(keys)) == 1


def test_credentials_are_refreshed_shortly_before_they_expire(role: RoleWorld) -> None:
    # Given a session assumed at t=0 for 900 s
    first = role.url()["X-Amz-Credential"].split("/")[0]

    # When a request comes once less than the refresh window is left
    role.clock.advance(900 - ADVISORY_REFRESH_SECONDS + 10)
    query = role.url()

    # Then the role was assumed again, and the URL is signed with the new session
    assert len(role.calls.params) == 2
    renewed = role.calls.credentials[1]
    assert renewed["AccessKeyId"] != first
    assert query["X-Amz-Credential"].startswith(renewed["AccessKeyId"] + "/")
    assert int(query["X-Amz-Expires"]) == role.expected_ttl(renewed)


def test_an_sts_failure_in_the_advisory_window_keeps_the_old_credentials(
    role: RoleWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    role.url()
    monkeypatch.setattr(role.world.runtime.sts, "assume_role", sts_unavailable)
    role.clock.advance(900 - ADVISORY_REFRESH_SECONDS + 10)

    query = role.url()

    (assumed,) = role.calls.credentials
    assert query["X-Amz-Credential"].startswith(assumed["AccessKeyId"] + "/")
    assert int(query["X-Amz-Expires"]) == role.expected_ttl(assumed)


def test_an_sts_failure_when_a_refresh_is_mandatory_is_503(
    role: RoleWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    role.url()
    monkeypatch.setattr(role.world.runtime.sts, "assume_role", sts_unavailable)
    role.clock.advance(900 - MANDATORY_REFRESH_SECONDS + 10)

    answer = role.world.call(MONTH_PATH)

    assert answer.status == 503
    assert answer.headers["Retry-After"] == "5"
    assert answer.json()["error"] == "unavailable"


def test_an_sts_failure_on_first_use_is_503_and_the_next_request_retries(
    role: RoleWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(role.world.runtime.sts, "assume_role", sts_unavailable)
        failed = role.world.call(MONTH_PATH)
    assert failed.status == 503
    assert failed.json() == {
        "error": "unavailable",
        "detail": "the signing credentials are being renewed; retry shortly",
    }

    query = role.url()
    (assumed,) = role.calls.credentials
    assert query["X-Amz-Credential"].startswith(assumed["AccessKeyId"] + "/")
