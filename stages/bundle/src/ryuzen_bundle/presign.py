"""Presigned bundle URLs whose lifetime never outlives the credentials that sign them.

A SigV4 presigned URL stops working when the credentials that signed it expire, whatever
its ``X-Amz-Expires`` says: a URL signed by a Lambda role's temporary credentials with a
15-minute TTL, minted 5 minutes before those credentials expire, would fail after 5
minutes while promising 15. So the TTL is the smaller of the configured TTL and the
signing credentials' remaining lifetime, minus a safety margin for clock skew.

Where the remaining lifetime comes from (botocore's credential objects):

* ``RefreshableCredentials`` (assume-role, container/ECS, IMDS, SSO, and environment
  credentials when ``AWS_CREDENTIAL_EXPIRATION`` is set) carry their expiry in
  ``_expiry_time`` — private, but the only place botocore keeps it. They are frozen first
  (``get_frozen_credentials`` refreshes them when they are in botocore's refresh window),
  then the expiry is read, and the URL is signed with exactly those frozen credentials.
* Plain ``Credentials`` show no expiry. Lambda hands its role's credentials to the
  function as environment variables without ``AWS_CREDENTIAL_EXPIRATION``, so with them
  the configured TTL is used unclamped. That is why the pull handler signs with an
  assumed role's ``RefreshableCredentials`` when ``PRESIGN_ROLE_ARN`` is set
  (``signing_role.py``): their expiry is the one STS stated.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Subtracted from the credentials' remaining lifetime: the URL must die before they do,
# also on a client whose clock runs a little behind ours.
SAFETY_MARGIN = timedelta(seconds=60)
# Below this there is no point in handing out a URL: the caller should retry once the
# credentials have been refreshed.
MIN_TTL_SECONDS = 30
# SigV4 query auth refuses more than 7 days.
MAX_SIGV4_EXPIRES = 7 * 24 * 3600


class CredentialsExpiringError(RuntimeError):
    """The signing credentials expire too soon to sign a useful URL."""


@dataclass(frozen=True)
class SigningCredentials:
    """One frozen set of credentials and, when known, when they expire (UTC)."""

    access_key: str
    secret_key: str
    token: str | None
    expires_at: datetime | None


@dataclass(frozen=True)
class PresignedUrl:
    """A presigned GET and the moment it stops working."""

    url: str
    expires_at: datetime
    ttl_seconds: int


def signing_credentials(credentials: Any) -> SigningCredentials:
    """Freeze botocore credentials and read their expiry (None when they show none)."""
    if credentials is None:
        raise CredentialsExpiringError("no AWS credentials are available to sign with")
    try:
        frozen = credentials.get_frozen_credentials()
    except Exception as error:  # botocore raises when a mandatory refresh fails
        raise CredentialsExpiringError(
            f"the signing credentials cannot be refreshed ({type(error).__name__})"
        ) from None
    # Only RefreshableCredentials (and subclasses) keep an expiry; read it after freezing
    # so it belongs to the credentials that will sign.
    expiry = getattr(credentials, "_expiry_time", None)
    if isinstance(expiry, datetime):
        expiry = expiry.replace(tzinfo=UTC) if expiry.tzinfo is None else expiry.astimezone(UTC)
    else:
        expiry = None
    return SigningCredentials(frozen.access_key, frozen.secret_key, frozen.token, expiry)


def clamp_ttl(configured_seconds: int, expires_at: datetime | None, now: datetime) -> int:
    """The TTL to sign with: ``min(configured, expiry - now - margin)``.

    Raises CredentialsExpiringError when that leaves less than ``MIN_TTL_SECONDS``.
    """
    ttl = min(configured_seconds, MAX_SIGV4_EXPIRES)
    if expires_at is not None:
        remaining = int((expires_at - now - SAFETY_MARGIN).total_seconds())
        ttl = min(ttl, remaining)
    if ttl < MIN_TTL_SECONDS:
        raise CredentialsExpiringError(
            f"the signing credentials expire too soon ({ttl} s left after the safety margin)"
        )
    return ttl


def presign_get(
    credentials: SigningCredentials,
    *,
    bucket: str,
    key: str,
    configured_ttl_seconds: int,
    region: str | None,
    endpoint_url: str | None,
    now: datetime | None = None,
) -> PresignedUrl:
    """A SigV4 presigned ``GetObject`` URL for ``bucket``/``key``, clamped as described above.

    ``endpoint_url`` is where the URL points (the local stack's verifying proxy); None
    means the regional S3 endpoint.
    """
    # SigV4 timestamps have one-second resolution; start from a whole second so the
    # expires_at we report is never later than the URL's own expiry.
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    ttl = clamp_ttl(configured_ttl_seconds, credentials.expires_at, moment)
    client = _presigning_client(
        credentials.access_key, credentials.secret_key, credentials.token, region, endpoint_url
    )
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=ttl
    )
    return PresignedUrl(url=str(url), expires_at=moment + timedelta(seconds=ttl), ttl_seconds=ttl)


@functools.lru_cache(maxsize=4)
def _presigning_client(
    access_key: str, secret_key: str, token: str | None, region: str | None, endpoint: str | None
) -> Any:
    # One client per set of credentials: making a client costs tens of milliseconds, and
    # temporary credentials change only every few hours.
    import boto3  # deferred: a cold start that only lists bundles does not pay for it
    from ryuzen_contracts.aws_clients import client_config

    session: Any = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=token,
        region_name=region,
    )
    return session.client(
        "s3", endpoint_url=endpoint, config=client_config("s3", endpoint_url=endpoint)
    )


def rfc3339(moment: datetime) -> str:
    """``2026-11-28T12:00:00Z``: UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
