"""The one process environment every in-process stage handler reads its settings from.

Lambda gives each function its own environment. Here all stages run in one process, so
they share ``os.environ``; that is safe because

* each stage's own settings have disjoint names (``RAW_BUCKET``, ``IDEMPOTENCY_TABLE``,
  ``API_KEY_CLIENTS`` ... — DESIGN's stage settings never reuse a name for another meaning);
* the names they do share (``AWS_ENDPOINT_URL``, region, credentials,
  ``POWERTOOLS_SERVICE_NAME``) have the same value for every stage of the local stack;
* the environment is set before any server or poller thread starts and not changed until
  they have all stopped, so no thread ever reads it mid-update.

Credentials are moto's fake ones, and any session token or profile is removed, so a
handler can never reach real AWS with a developer's credentials.

Sanitize, the bundle task and cleanup sign with the local key file (``SIGNING_KEY_FILE``),
never through moto's KMS: moto mishandles ``MessageType=DIGEST``, so its signatures would
not verify. ``SIGNING_KMS_KEY_ID`` is therefore removed too — the handler prefers KMS when it
is set, and a value left in a developer's shell must not switch the signer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from ryuzen_contracts.stack_config import StackConfig

from ryuzen_tools.local_stack.moto_server import FAKE_ACCESS_KEY, FAKE_SECRET_KEY
from ryuzen_tools.local_stack.provision import LocalStackResources

REMOVED_VARIABLES = (
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "SIGNING_KMS_KEY_ID",
)


def stage_environment(
    resources: LocalStackResources,
    config: StackConfig,
    endpoint_url: str,
    signing_key_file: Path,
    *,
    public_key_file: Path | None = None,
    presign_endpoint_url: str | None = None,
) -> dict[str, str]:
    """Every variable the stages read, with the local stack's values.

    Grouped by resource, each with the stages that read it. The pull handler's two
    (``SIGNING_PUBLIC_KEY_FILE``, ``PRESIGN_ENDPOINT_URL``) name things that exist only
    once the stack runs, so they are set only when given.
    """
    environment = {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_REGION": resources.region,
        "AWS_DEFAULT_REGION": resources.region,
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
        "POWERTOOLS_SERVICE_NAME": f"ryuzen-{resources.stack}-local",
        # every stage; the retention sweep reads STACK_CONFIG's retention
        "AUDIT_TABLE": resources.tables["audit"],
        "STACK_CONFIG": config.to_json(),
        # ingest writes RAW, sanitize consumes it, the sweep removes stragglers
        "RAW_BUCKET": resources.buckets["raw"],
        # ingest
        "IDEMPOTENCY_TABLE": resources.tables["idempotency"],
        "API_KEY_CLIENTS": json.dumps(resources.api_key_clients(), sort_keys=True),
        # sanitize writes it, analytics and the bundle task read it, cleanup empties it
        "SANITIZED_BUCKET": resources.buckets["sanitized"],
        # sanitize writes it, the sweep expires it
        "QUARANTINE_BUCKET": resources.buckets["quarantine"],
        "QUARANTINE_KMS_KEY_ID": resources.kms_keys["quarantine"],
        "QUARANTINE_HASH_KMS_KEY_ID": resources.kms_keys["quarantine-hash"],
        # sanitize, the bundle task and cleanup sign with it
        "SIGNING_KEY_FILE": str(signing_key_file),
        # analytics writes it, the bundle task reads it, cleanup empties it
        "ANALYTICS_BUCKET": resources.buckets["analytics"],
        # the bundle task delivers into it, the pull handler serves from it, cleanup puts
        # its deletion receipt beside each bundle
        "BUNDLES_BUCKET": resources.buckets["bundles"],
        # the bundle task announces BundleDelivered on it
        "EVENT_BUS_NAME": resources.event_bus,
        # the pull handler
        "API_KEY_PARTNERS": json.dumps(resources.api_key_partners(), sort_keys=True),
    }
    if public_key_file is not None and presign_endpoint_url is not None:
        # The pull handler serves the public key and signs its URLs for the verifying
        # proxy (presign_proxy.py), as moto never checks a presigned URL.
        environment["SIGNING_PUBLIC_KEY_FILE"] = str(public_key_file)
        environment["PRESIGN_ENDPOINT_URL"] = presign_endpoint_url
    return environment


class ProcessEnvironment:
    """Applies variables to ``os.environ`` and restores the previous values afterwards."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] | None = None

    def apply(
        self, values: Mapping[str, str], removed: tuple[str, ...] = REMOVED_VARIABLES
    ) -> None:
        """Set ``values`` and unset ``removed``; remember what was there."""
        names = [*values, *removed]
        self._saved = {name: os.environ.get(name) for name in names}
        for name in removed:
            os.environ.pop(name, None)
        os.environ.update(values)

    def restore(self) -> None:
        """Put back what ``apply`` replaced (no-op when nothing was applied)."""
        if self._saved is None:
            return
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved = None
