"""Signing presigned URLs with an assumed role, so the TTL clamp has an expiry to work with.

Lambda hands a function its role's credentials as environment variables without an
expiry (``presign.py``), so the clamp to the credentials' remaining lifetime never
applies there. With ``PRESIGN_ROLE_ARN`` set, the pull handler assumes that role through
STS instead and signs with the temporary credentials it gets back, whose ``Expiration``
STS states.

The credentials are botocore ``RefreshableCredentials``: botocore keeps them and assumes
the role again once they are inside the refresh window below, under a lock, so a warm
execution environment calls STS once per session rather than once per request. Nothing
is fetched until the first URL is signed, so an STS failure surfaces where the handler
already turns credential trouble into a 503 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.credentials import DeferredRefreshableCredentials

SESSION_NAME = "ryuzen-bundle-pull"  # shows in CloudTrail as the assumed role's session
STS_MIN_DURATION_SECONDS = 900
# The pull function's own credentials are a role session, so assuming a second role is
# "role chaining", for which STS refuses a DurationSeconds over one hour whatever the
# role's MaxSessionDuration. A longer configured TTL is clamped to the session instead.
ROLE_CHAINING_MAX_DURATION_SECONDS = 3600
# botocore's defaults (refresh from 15 minutes before expiry, must refresh at 10) would
# refresh a 15-minute session on every request. Here: try again from 5 minutes before
# expiry, keeping the old credentials if STS fails; from 2 minutes on, a failed refresh
# is an error (the handler's 503). Reused credentials thus still give a URL of about
# 4 minutes (``presign.SAFETY_MARGIN`` is taken off).
ADVISORY_REFRESH_SECONDS = 5 * 60
MANDATORY_REFRESH_SECONDS = 2 * 60


def session_duration(configured_ttl_seconds: int) -> int:
    """DurationSeconds: long enough for the configured TTL, within what STS allows."""
    return min(
        max(STS_MIN_DURATION_SECONDS, configured_ttl_seconds), ROLE_CHAINING_MAX_DURATION_SECONDS
    )


class AssumedRoleCredentials(DeferredRefreshableCredentials):
    """botocore's deferred refreshable credentials with this module's refresh window."""

    # RefreshableCredentials takes advisory_timeout/mandatory_timeout arguments that set
    # these two attributes; its deferred subclass does not take them, so they are set here.
    _advisory_refresh_timeout = ADVISORY_REFRESH_SECONDS
    _mandatory_refresh_timeout = MANDATORY_REFRESH_SECONDS


def assumed_role_credentials(
    sts: Any,
    role_arn: str,
    *,
    duration_seconds: int,
    session_name: str = SESSION_NAME,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AssumedRoleCredentials:
    """Credentials of ``role_arn``, assumed through the ``sts`` client on first use.

    ``clock`` (aware datetimes) decides when they are due for a refresh; tests move it.
    """

    def assume() -> dict[str, str]:
        response = sts.assume_role(
            RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=duration_seconds
        )
        credentials = response["Credentials"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    return AssumedRoleCredentials(assume, "sts-assume-role", time_fetcher=clock)
