"""The program: read the stack config, check the artifacts, compose the components.

``__main__.py`` calls ``main()``; the tests call it too, under Pulumi's mocks, which is
why the composition lives here rather than in ``__main__.py`` itself. Nothing below
reads ``pulumi.Config`` or the environment but ``read_stack_config``, and nothing is
created until the stack config, the artifacts and the Lambda environments have all been
checked — a bad stack file (or, outside dev, a usage plan without a daily quota) or a
missing build fails ``pulumi up`` before any change.

Each function's environment spells the variables its stage's settings model reads
(``*settings*.py`` in each stage; the same names the local stack sets in
``ryuzen_tools.local_stack.environment``); ``tests/test_infra_stage_contracts.py`` holds
the two side by side.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi.runtime import config as runtime_config
from ryuzen_contracts.stack_config import FunctionName, StackConfig, StackConfigError

from infra import stage_permissions as permissions
from infra.api_keys import ApiKeys, ApiKeysArgs
from infra.artifacts import LambdaCode, load_artifacts
from infra.audit import Audit, AuditArgs
from infra.build_artifacts import DIST_DIR, REPO_ROOT
from infra.bundle_service import SCRATCH, BundleService, BundleServiceArgs
from infra.catalog import Catalog, CatalogArgs, load_schema
from infra.cleanup import Cleanup, CleanupArgs
from infra.ingest_api import IngestApi, IngestApiArgs
from infra.lambda_environment import check_known_size
from infra.monitoring import Monitoring, MonitoringArgs
from infra.network import Network, NetworkArgs
from infra.partner_access import PartnerAccess, PartnerAccessArgs
from infra.quarantine_hash import QuarantineHashKey
from infra.queues import StageQueue, StageQueueArgs
from infra.signing import SIGNER_TAG, Signing, SigningArgs
from infra.stage_function import StageFunction, StageFunctionArgs
from infra.storage import Storage, StorageArgs

NAMESPACE = "ryuzen-telemetry"
# The one stack that is not production: no deletion protection by default, and usage
# plans without a daily quota allowed.
DEV_STACK = "dev"
SCHEMA_FILE = REPO_ROOT / "shared" / "schema" / "analytics-events.v1.json"

# (memory MiB, timeout s) per function, unless the stack config's `functions:` says
# otherwise. Ingest answers inside API Gateway's 29 s; the polars stages need memory for
# a 10 MiB batch and its frames; cleanup may page through many thousands of objects.
FUNCTION_DEFAULTS: dict[FunctionName, tuple[int, int]] = {
    "ingest": (512, 28),
    "sanitize": (2048, 300),
    "analytics": (2048, 300),
    "bundlePull": (512, 10),
    "cleanup": (1024, 600),
    "sweep": (512, 600),
}
HANDLERS: dict[FunctionName, tuple[str, str]] = {
    "ingest": ("ingest", "ryuzen_ingest.ingest_handler.lambda_handler"),
    "sanitize": ("sanitize", "ryuzen_sanitize.sanitize_handler.lambda_handler"),
    "analytics": ("analytics", "ryuzen_analytics.analytics_handler.lambda_handler"),
    "bundlePull": ("bundle", "ryuzen_bundle.pull_handler.lambda_handler"),
    "cleanup": ("cleanup", "ryuzen_cleanup.cleanup_handler.lambda_handler"),
    "sweep": ("cleanup", "ryuzen_cleanup.sweep_handler.lambda_handler"),
}


def read_stack_config() -> StackConfig:
    """The stack's ``ryuzen-telemetry:`` config through the contracts model.

    ``pulumi.Config`` answers one named key at a time, and the model must see every key
    of the namespace so that a misspelt one is refused (``extra="forbid"``), exactly as
    the local stack refuses it in the same file. So the namespace is read whole from the
    runtime's config, where the engine puts what ``pulumi.Config`` reads (the only other
    config the program relies on is the AWS provider's own ``aws:region``): each value a
    string, objects and numbers JSON-encoded. Raises ``StackConfigError`` with the
    contracts' message.
    """
    everything = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    values = {
        key: _decode(value)
        for key, value in everything.items()
        if isinstance(key, str) and key.startswith(f"{NAMESPACE}:")
    }
    return StackConfig.from_pulumi_values(values)


def _decode(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value  # a plain string (onPii: redact)


def function_tuning(config: StackConfig, function: FunctionName) -> tuple[int, int, int | None]:
    """(memory MiB, timeout s, reserved concurrency) of ``function``: config over defaults."""
    memory, timeout = FUNCTION_DEFAULTS[function]
    tuning = config.functions.get(function)
    if tuning is None:
        return memory, timeout, None
    return (
        tuning.memory_mb or memory,
        tuning.timeout_seconds or timeout,
        tuning.reserved_concurrency,
    )


def check_quotas(config: StackConfig, stack: str) -> None:
    """Outside dev, every ingest client and partner needs a daily quota in its usage plan.

    An API key without a quota can send (or pull) without bound until someone notices the
    bill; in dev that is a convenience, elsewhere a stack file that forgot it. The contracts
    allow a null quota (they serve dev too), so the program refuses it here, before any
    resource, naming each entry the way the contracts' messages do.
    """
    if stack == DEV_STACK:
        return
    problems = [
        f"ingestClients[{index}] '{client.id}': dailyQuota is required outside dev"
        for index, client in enumerate(config.ingest_clients)
        if client.daily_quota is None
    ] + [
        f"partners[{index}] '{partner.id}': pullDailyQuota is required outside dev"
        for index, partner in enumerate(config.partners)
        if partner.pull_daily_quota is None
    ]
    if problems:
        raise StackConfigError(
            f"stack '{stack}': " + "; ".join(problems) + " (requests per day of its usage plan)"
        )


def _check_environments(config: StackConfig) -> None:
    stack_json = config.to_runtime_json()
    clients = {f"{i:010d}": c.id for i, c in enumerate(config.ingest_clients)}
    partners = {f"{i:010d}": p.id for i, p in enumerate(config.partners)}
    check_known_size("ingest", {"STACK_CONFIG": stack_json, "API_KEY_CLIENTS": json.dumps(clients)})
    check_known_size(
        "bundlePull", {"STACK_CONFIG": stack_json, "API_KEY_PARTNERS": json.dumps(partners)}
    )
    for function in ("sanitize", "sweep"):
        check_known_size(function, {"STACK_CONFIG": stack_json})


def main(dist: Path | None = None) -> dict[str, Any]:
    """Compose the stack; return (and export) its outputs."""
    config = read_stack_config()
    stack = pulumi.get_stack()
    check_quotas(config, stack)
    prefix = f"ryuzen-{stack}"
    protect = (
        config.deletion_protection
        if config.deletion_protection is not None
        else (stack != DEV_STACK)
    )
    artifacts = load_artifacts(dist or DIST_DIR)
    schema = load_schema(SCHEMA_FILE)
    _check_environments(config)

    account_id = aws.get_caller_identity().account_id
    region = aws.get_region().region
    partition = aws.get_partition().partition
    zones = aws.get_availability_zones(state="available").names[:2]
    partner_ids = [partner.id for partner in config.partners]
    stack_json = config.to_runtime_json()

    storage = Storage(
        f"{prefix}-storage",
        StorageArgs(
            partners=config.partners,
            quarantine_days=config.retention.quarantine_days,
            working_backstop_days=config.working_data_backstop_days,
            protect=protect,
        ),
    )
    buckets = storage.buckets
    audit = Audit(f"{prefix}-audit", AuditArgs(protect=protect))
    signing = Signing(
        f"{prefix}-signing",
        SigningArgs(account_id, partition, signer_tag_value=prefix, protect=protect),
    )
    keys = ApiKeys(f"{prefix}-keys", ApiKeysArgs(config.ingest_clients, config.partners))
    code = LambdaCode(f"{prefix}-code", artifacts.lambdas, buckets["artifacts"])
    quarantine_hash = QuarantineHashKey(f"{prefix}-quarantine-hash", protect=protect)
    resources = permissions.StageResources(
        storage,
        audit.audit_table,
        audit.idempotency_table,
        signing.key,
        quarantine_hash.key,
        region,
        partner_ids,
    )
    signer_tags = {SIGNER_TAG: prefix}
    retention_days = config.log_retention_days

    def function_args(function: FunctionName, **overrides: Any) -> StageFunctionArgs:
        stage, handler = HANDLERS[function]
        memory, timeout, reserved = function_tuning(config, function)
        return StageFunctionArgs(
            description=f"Ryuzen Telemetry {stack}: {function}",
            code=code.objects[stage],
            code_hash=artifacts.lambdas[stage].code_hash,
            handler=handler,
            memory_mb=memory,
            timeout_seconds=timeout,
            reserved_concurrency=reserved,
            log_retention_days=retention_days,
            **overrides,
        )

    raw_events = StageQueue(
        f"{prefix}-raw-events",
        StageQueueArgs(
            buckets["raw"], "raw/", ".ndjson.gz", function_tuning(config, "sanitize")[1], account_id
        ),
    )
    sanitized_events = StageQueue(
        f"{prefix}-sanitized-events",
        # Only the Parquet: a certificate beside it is no work for analytics.
        StageQueueArgs(
            buckets["sanitized"],
            "sanitized/",
            ".parquet",
            function_tuning(config, "analytics")[1],
            account_id,
        ),
    )

    ingest = StageFunction(
        f"{prefix}-ingest",
        function_args(
            "ingest",
            environment={
                "RAW_BUCKET": buckets["raw"].bucket,
                "IDEMPOTENCY_TABLE": audit.idempotency_table.name,
                "AUDIT_TABLE": audit.audit_table.name,
                "STACK_CONFIG": stack_json,
                "API_KEY_CLIENTS": keys.client_map(),
            },
            statements=permissions.ingest(resources),
        ),
    )
    sanitize = StageFunction(
        f"{prefix}-sanitize",
        function_args(
            "sanitize",
            environment={
                "RAW_BUCKET": buckets["raw"].bucket,
                "SANITIZED_BUCKET": buckets["sanitized"].bucket,
                "QUARANTINE_BUCKET": buckets["quarantine"].bucket,
                "QUARANTINE_KMS_KEY_ID": storage.key_for("quarantine").arn,
                "QUARANTINE_HASH_KMS_KEY_ID": quarantine_hash.key.arn,
                "AUDIT_TABLE": audit.audit_table.name,
                "STACK_CONFIG": stack_json,
                "SIGNING_KMS_KEY_ID": signing.key.arn,
            },
            statements=permissions.sanitize(resources),
            queue=raw_events.queue,
            role_tags=signer_tags,
        ),
    )
    analytics = StageFunction(
        f"{prefix}-analytics",
        function_args(
            "analytics",
            environment={
                "SANITIZED_BUCKET": buckets["sanitized"].bucket,
                "ANALYTICS_BUCKET": buckets["analytics"].bucket,
                "AUDIT_TABLE": audit.audit_table.name,
            },
            statements=permissions.analytics(resources),
            queue=sanitized_events.queue,
        ),
    )

    # The presign role trusts the pull function's role and the function's environment
    # names the presign role: PartnerAccess makes both roles, the function comes after.
    access = PartnerAccess(
        f"{prefix}-access",
        PartnerAccessArgs(
            config.partners, buckets["bundles"], storage.key_for("bundles"), region, partition
        ),
    )
    pull = StageFunction(
        f"{prefix}-bundle-pull",
        function_args(
            "bundlePull",
            environment={
                "BUNDLES_BUCKET": buckets["bundles"].bucket,
                "AUDIT_TABLE": audit.audit_table.name,
                "STACK_CONFIG": stack_json,
                "API_KEY_PARTNERS": keys.partner_map(),
                "SIGNING_KMS_KEY_ID": signing.key.arn,
                "PRESIGN_ROLE_ARN": access.presign_role.arn,
            },
            statements=permissions.bundle_pull(resources, access.presign_role),
            role=access.pull_role,
        ),
    )
    api = IngestApi(
        f"{prefix}-api",
        IngestApiArgs(
            ingest_function=ingest.function,
            pull_function=pull.function,
            api_keys=keys,
            clients=config.ingest_clients,
            partners=config.partners,
            log_retention_days=retention_days,
            stack=stack,
            manage_account=config.manage_api_gateway_account,
            account_id=account_id,
            region=region,
            partition=partition,
        ),
    )

    network = Network(f"{prefix}-network", NetworkArgs(zones, region))
    bundle = BundleService(
        f"{prefix}-bundle",
        BundleServiceArgs(
            image_context=artifacts.bundle_image,
            partners=config.partners,
            task=config.bundle_task,
            environment={
                "ANALYTICS_BUCKET": buckets["analytics"].bucket,
                "SANITIZED_BUCKET": buckets["sanitized"].bucket,
                "BUNDLES_BUCKET": buckets["bundles"].bucket,
                "AUDIT_TABLE": audit.audit_table.name,
                "STACK_CONFIG": stack_json,
                "SIGNING_KMS_KEY_ID": signing.key.arn,
                "BUNDLE_WORK_DIR": SCRATCH,
            },
            permissions=resources,
            network=network,
            log_retention_days=retention_days,
            signer_tag_value=prefix,
            account_id=account_id,
            region=region,
            protect=protect,
        ),
    )
    cleanup = Cleanup(
        f"{prefix}-cleanup",
        CleanupArgs(
            delivered=function_args(
                "cleanup",
                environment={
                    "SANITIZED_BUCKET": buckets["sanitized"].bucket,
                    "ANALYTICS_BUCKET": buckets["analytics"].bucket,
                    "BUNDLES_BUCKET": buckets["bundles"].bucket,
                    "AUDIT_TABLE": audit.audit_table.name,
                    "SIGNING_KMS_KEY_ID": signing.key.arn,
                },
                statements=permissions.cleanup(resources),
                role_tags=signer_tags,
            ),
            sweep=function_args(
                "sweep",
                environment={
                    "RAW_BUCKET": buckets["raw"].bucket,
                    "QUARANTINE_BUCKET": buckets["quarantine"].bucket,
                    "SANITIZED_BUCKET": buckets["sanitized"].bucket,
                    "ANALYTICS_BUCKET": buckets["analytics"].bucket,
                    "AUDIT_TABLE": audit.audit_table.name,
                    "STACK_CONFIG": stack_json,
                },
                statements=permissions.sweep(resources),
            ),
            event_bus=bundle.event_bus,
            account_id=account_id,
        ),
    )
    catalog = Catalog(
        f"{prefix}-catalog",
        CatalogArgs(
            schema=schema,
            database_name=prefix.replace("-", "_"),
            partner_ids=partner_ids,
            analytics_bucket=buckets["analytics"],
            results_bucket=buckets["athena"],
            results_key=storage.key_for("athena"),
            bytes_scanned_cutoff=config.athena_bytes_scanned_cutoff,
            protect=protect,
        ),
    )
    monitoring = Monitoring(
        f"{prefix}-monitoring",
        MonitoringArgs(
            metric_namespace=f"Ryuzen/{stack}",
            alarm_email=config.alarm_email,
            dead_letter_queues={
                "sanitize": raw_events.dead_letter_queue,
                "analytics": sanitized_events.dead_letter_queue,
                "cleanup": cleanup.dead_letter_queue,
                "bundle-schedule": bundle.dead_letter_queue,
            },
            functions={
                "ingest": ingest.function,
                "sanitize": sanitize.function,
                "analytics": analytics.function,
                "bundle-pull": pull.function,
                "cleanup": cleanup.delivered.function,
                "sweep": cleanup.sweep.function,
            },
            raw_queue=raw_events.queue,
            rest_api=api.rest_api,
            stage_name=api.stage.stage_name,
            sanitize_logs=sanitize.log_group,
            sweep_logs=cleanup.sweep.log_group,
            bundle_cluster=bundle.cluster,
            scrub_violation_threshold=config.scrub_violation_alarm_threshold,
            account_id=account_id,
        ),
    )

    outputs: dict[str, Any] = {
        "apiUrl": api.url,
        "buckets": {role: bucket.bucket for role, bucket in buckets.items()},
        "signingPublicKeyPem": signing.public_key_pem,
        "signingKeyArn": signing.key.arn,
        "partnerRoleArns": {p: role.arn for p, role in access.partner_roles.items()},
        "presignRoleArn": access.presign_role.arn,
        "apiKeyIds": {
            "ingestClients": {c: key.id for c, key in keys.clients.items()},
            "partners": {p: key.id for p, key in keys.partners.items()},
        },
        "auditTable": audit.audit_table.name,
        "bundleCluster": bundle.cluster.name,
        "bundleSchedules": {p: s.name for p, s in bundle.schedules.items()},
        "glueDatabase": catalog.database.name,
        "athenaWorkgroup": catalog.workgroup.name,
        "alarmTopicArn": monitoring.topic.arn,
    }
    for name, value in outputs.items():
        pulumi.export(name, value)
    return outputs
