"""boto3 clients for the local stack's own use (provisioning, pollers, status).

They use the contracts' client configuration (retries, path-style S3) but always the fake
``testing`` credentials: a tool talking to a loopback moto endpoint must never pick up, and
send, a developer's real AWS credentials from the default chain.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from ryuzen_contracts.aws_clients import client_config

from ryuzen_tools.local_stack.moto_server import FAKE_ACCESS_KEY, FAKE_SECRET_KEY


def local_client(service: str, endpoint_url: str, region: str) -> Any:
    """A boto3 client for ``service`` on the local endpoint, with fake credentials."""
    session = boto3.session.Session(
        aws_access_key_id=FAKE_ACCESS_KEY,
        aws_secret_access_key=FAKE_SECRET_KEY,
        region_name=region,
    )
    return session.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint_url,
        config=client_config(service, endpoint_url=endpoint_url),
    )


class LocalClients:
    """Clients created on first use, one per service, for one endpoint and region.

    boto3 clients are thread-safe once created; creating them is not, hence the lock.
    """

    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        """The client for ``service`` (``"s3"``, ``"sqs"``, ...)."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = local_client(service, self.endpoint_url, self.region)
            return self._clients[service]
