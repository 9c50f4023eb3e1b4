"""The registry runs sanitize on raw-events, and the environment gives it every setting."""

from __future__ import annotations

from pathlib import Path

from ryuzen_contracts.stack_config import load_stack_config, stack_file
from ryuzen_ingest.settings import IngestSettings
from ryuzen_sanitize.sanitize_handler import SanitizeSettings, lambda_handler, reset_runtime
from ryuzen_tools.local_stack.environment import REMOVED_VARIABLES, stage_environment
from ryuzen_tools.local_stack.event_source import MAX_BATCH_SIZE
from ryuzen_tools.local_stack.provision import LocalStackResources, QueueSettings
from ryuzen_tools.local_stack.stage_registry import (
    PENDING_CONSUMERS,
    SQS_CONSUMERS,
    load_callable,
    load_handler,
)


def test_sanitize_consumes_raw_events() -> None:
    consumers = {consumer.queue_role: consumer for consumer in SQS_CONSUMERS}
    sanitize = consumers["raw-events"]
    assert sanitize.name == "sanitize"
    assert load_handler(sanitize.handler) is lambda_handler
    assert sanitize.reset is not None and load_callable(sanitize.reset) is reset_runtime
    assert "raw-events" not in PENDING_CONSUMERS
    assert PENDING_CONSUMERS == {}


def test_sanitize_has_room_for_the_largest_raw_objects() -> None:
    # ingest writes at most 5,000 events an object; sanitize needs a few seconds for one
    sanitize = next(c for c in SQS_CONSUMERS if c.name == "sanitize")
    assert 1 <= sanitize.batch_size <= MAX_BATCH_SIZE
    assert sanitize.timeout_s >= 120
    assert sanitize.timeout_s / sanitize.batch_size >= 10  # seconds per object, worst case


def test_a_consumed_queue_hides_messages_at_least_as_long_as_its_consumer_runs() -> None:
    settings = QueueSettings(30, 3, {"raw-events": 120.0, "other": 0.5})
    assert settings.visibility_for("raw-events") == 120
    assert settings.visibility_for("other") == 30
    assert settings.visibility_for("sanitized-events") == 30


def resources() -> LocalStackResources:
    return LocalStackResources(
        stack="t",
        region="eu-west-1",
        buckets={
            role: f"ryuzen-t-{role}" for role in ("raw", "sanitized", "analytics", "quarantine")
        },
        queues={},
        tables={"audit": "ryuzen-t-audit", "idempotency": "ryuzen-t-idempotency"},
        kms_keys={"data": "k-data", "quarantine": "k-quarantine", "signing": "k-signing"},
    )


def test_the_environment_gives_each_stage_all_its_settings(project_dir: Path) -> None:
    config = load_stack_config(stack_file(project_dir, "dev"))
    key_file = Path("/state/signing-key.pem")
    environ = stage_environment(resources(), config, "http://127.0.0.1:1", key_file)

    sanitize = SanitizeSettings.from_environ(environ)
    assert sanitize.sanitized_bucket == "ryuzen-t-sanitized"
    assert sanitize.quarantine_bucket == "ryuzen-t-quarantine"
    assert sanitize.quarantine_kms_key_id == "k-quarantine"
    assert sanitize.signing_key_file == str(key_file)
    # the local stack signs with the key file; a KMS key id would switch the signer to
    # moto's KMS, whose digest signatures do not verify
    assert sanitize.signing_kms_key_id is None
    assert "SIGNING_KMS_KEY_ID" in REMOVED_VARIABLES

    assert IngestSettings.from_environ(environ).raw_bucket == sanitize.raw_bucket
