"""The registry runs each stage on its trigger, and the environment gives each its settings."""

from __future__ import annotations

from pathlib import Path

from ryuzen_bundle.pull_settings import PullSettings
from ryuzen_cleanup import cleanup_handler, sweep_handler
from ryuzen_cleanup.cleanup_settings import CleanupSettings, SweepSettings
from ryuzen_cleanup.retention_sweep import SweepReport
from ryuzen_contracts.stack_config import load_stack_config, stack_file
from ryuzen_ingest.settings import IngestSettings
from ryuzen_sanitize.sanitize_handler import SanitizeSettings, lambda_handler, reset_runtime
from ryuzen_tools.local_stack.environment import REMOVED_VARIABLES, stage_environment
from ryuzen_tools.local_stack.event_source import MAX_BATCH_SIZE
from ryuzen_tools.local_stack.provision import (
    BUCKET_ROLES,
    EVENT_ROUTES,
    LocalStackResources,
    QueueSettings,
)
from ryuzen_tools.local_stack.stage_registry import (
    PENDING_CONSUMERS,
    SCHEDULED_STAGES,
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


def test_cleanup_consumes_bundle_delivered_one_event_at_a_time() -> None:
    consumers = {consumer.queue_role: consumer for consumer in SQS_CONSUMERS}
    cleanup = consumers["bundle-delivered"]
    assert cleanup.name == "cleanup"
    assert load_handler(cleanup.handler) is cleanup_handler.lambda_handler
    # its runtime caches settings and clients: a restarted stack must drop them
    assert cleanup.reset is not None
    assert load_callable(cleanup.reset) is cleanup_handler.reset_runtime
    # as the EventBridge rule invokes it in AWS: one event an invocation
    assert cleanup.batch_size == 1
    # every queue an event route feeds has its consumer
    assert {route.queue_role for route in EVENT_ROUTES} <= set(consumers)


def test_the_retention_sweep_runs_on_a_schedule() -> None:
    (sweep,) = SCHEDULED_STAGES
    assert sweep.name == "retention-sweep"
    assert load_handler(sweep.handler) is sweep_handler.lambda_handler
    assert sweep.reset is not None and load_callable(sweep.reset) is sweep_handler.reset_runtime
    assert sweep.interval_s == 60
    # the counted names are numbers the handler answers with
    answer = SweepReport(
        raw_deleted=1, quarantine_deleted=2, raw_retention_hours=2, quarantine_retention_days=14
    ).as_dict()
    assert {name: answer[name] for name in sweep.counted} == {
        "raw_deleted": 1,
        "quarantine_deleted": 2,
    }


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
        buckets={role: f"ryuzen-t-{role}" for role in BUCKET_ROLES},
        queues={},
        tables={"audit": "ryuzen-t-audit", "idempotency": "ryuzen-t-idempotency"},
        kms_keys={
            "data": "k-data",
            "quarantine": "k-quarantine",
            "quarantine-hash": "k-quarantine-hash",
            "signing": "k-signing",
        },
        event_bus="ryuzen-t-events",
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

    # cleanup: the working buckets it empties, the bundle bucket its receipts go to (the
    # same variable the bundle stage reads, set whether or not the pull API is wired)
    cleanup = CleanupSettings.from_environ(environ)
    assert (cleanup.sanitized_bucket, cleanup.analytics_bucket, cleanup.bundles_bucket) == (
        "ryuzen-t-sanitized",
        "ryuzen-t-analytics",
        "ryuzen-t-bundles",
    )
    assert cleanup.audit_table == "ryuzen-t-audit"
    assert cleanup.signing_key_file == str(key_file) and cleanup.signing_kms_key_id is None

    sweep = SweepSettings.from_environ(environ)
    assert (sweep.raw_bucket, sweep.quarantine_bucket) == ("ryuzen-t-raw", "ryuzen-t-quarantine")
    assert sweep.retention() == config.retention


def test_the_pull_handler_gets_its_key_and_proxy_only_when_they_exist(project_dir: Path) -> None:
    config = load_stack_config(stack_file(project_dir, "dev"))
    key_file = Path("/state/signing-key.pem")
    without = stage_environment(resources(), config, "http://127.0.0.1:1", key_file)
    assert "SIGNING_PUBLIC_KEY_FILE" not in without
    assert "PRESIGN_ENDPOINT_URL" not in without

    environ = stage_environment(
        resources(),
        config,
        "http://127.0.0.1:1",
        key_file,
        public_key_file=Path("/state/signing-key.pub.pem"),
        presign_endpoint_url="http://127.0.0.1:2",
    )
    pull = PullSettings.from_environ(environ)
    assert pull.bundles_bucket == "ryuzen-t-bundles"
    assert pull.signing_public_key_file == Path("/state/signing-key.pub.pem")
    assert pull.presign_endpoint_url == "http://127.0.0.1:2"
    assert environ["EVENT_BUS_NAME"] == "ryuzen-t-events"
