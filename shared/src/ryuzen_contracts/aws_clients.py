"""The one AWS client factory: standard retries, SigV4, and the endpoint of the stack.

Called at a handler's edge (never at import time) and injected into the logic. When
``AWS_ENDPOINT_URL`` is set — the local stack, moto's server — every client talks to that
endpoint and S3 uses path-style addressing, which a loopback endpoint needs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from botocore.config import Config

DEFAULT_MAX_ATTEMPTS = 5


def client_config(
    service: str, *, endpoint_url: str | None, max_attempts: int = DEFAULT_MAX_ATTEMPTS
) -> Config:
    """The botocore Config every Ryuzen client uses (``max_attempts`` includes the first call)."""
    options: dict[str, Any] = {
        # total_max_attempts counts the first call, like AWS_MAX_ATTEMPTS; botocore's
        # "max_attempts" key counts retries only, which made 5 attempts into 6.
        "retries": {"mode": "standard", "total_max_attempts": max_attempts},
        "connect_timeout": 5,
        "read_timeout": 30,
    }
    if service == "s3":
        options["signature_version"] = "s3v4"
        options["s3"] = {"addressing_style": "path" if endpoint_url else "auto"}
    return Config(**options)


def make_client(
    service: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    environ: Mapping[str, str] | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> Any:
    """A boto3 client for ``service``; the endpoint defaults to ``AWS_ENDPOINT_URL``."""
    import boto3  # deferred: importing boto3 costs a Lambda ~100 ms of cold start

    env = os.environ if environ is None else environ
    endpoint = endpoint_url or env.get("AWS_ENDPOINT_URL") or None
    # Any: boto3-stubs only types client() for a literal service name, and ours is a str.
    session: Any = boto3.session.Session()
    return session.client(
        service,
        region_name=region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        endpoint_url=endpoint,
        config=client_config(service, endpoint_url=endpoint, max_attempts=max_attempts),
    )
