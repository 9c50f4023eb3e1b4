"""``LocalStack``: start moto, provision, serve the API, run the consumers; stop it all.

Used as a context manager by ``ryuzen local up``, ``ryuzen local demo`` and the tests.
Start order is moto → resources → signing key → presign proxy → environment → handlers →
HTTP → pollers and schedules → TTL expiry → state file; stop runs the reverse, so nothing
ever calls a component that already stopped.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from ryuzen_contracts.stack_config import StackConfig

from ryuzen_tools.local_stack.api_gateway import ApiGateway, Route
from ryuzen_tools.local_stack.aws import LocalClients
from ryuzen_tools.local_stack.counters_publisher import CountersPublisher
from ryuzen_tools.local_stack.environment import ProcessEnvironment, stage_environment
from ryuzen_tools.local_stack.event_source import SqsPoller
from ryuzen_tools.local_stack.lambda_runtime import Handler, StageRuntime
from ryuzen_tools.local_stack.moto_server import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, MotoServer
from ryuzen_tools.local_stack.presign_proxy import PresignProxy
from ryuzen_tools.local_stack.provision import (
    LocalStackResources,
    QueueSettings,
    provision,
)
from ryuzen_tools.local_stack.schedule import ScheduledInvoker
from ryuzen_tools.local_stack.signing_key import LocalSigningKey, create_signing_key
from ryuzen_tools.local_stack.stage_registry import (
    HTTP_STAGES,
    PENDING_CONSUMERS,
    SCHEDULED_STAGES,
    SQS_CONSUMERS,
    HttpStage,
    ScheduledStage,
    SqsConsumer,
    load_callable,
    load_handler,
)
from ryuzen_tools.local_stack.state_file import (
    DEFAULT_STATE_DIR,
    StackNotRunningError,
    environment_path,
    read_state,
    remove_state,
    write_json_atomically,
    write_state,
)
from ryuzen_tools.local_stack.status import queue_depth
from ryuzen_tools.local_stack.ttl_expiry import EXPIRY_INTERVAL_S, TtlExpirer
from ryuzen_tools.project_files import load_stack

log = logging.getLogger(__name__)


class StackAlreadyRunningError(RuntimeError):
    """The state directory already records a live stack."""


@dataclass(frozen=True)
class LocalStackOptions:
    """How to run the local stack. ``state_dir=None`` writes no state files (tests)."""

    stack: str = "dev"
    project_dir: Path | None = None
    api_port: int = 0
    aws_port: int = 0
    # Also where the attestation key pair is written (a temporary directory when None).
    state_dir: Path | None = DEFAULT_STATE_DIR
    max_receive_count: int = 3
    # Raised, per queue, to the timeout of the stage consuming it (provision.QueueSettings).
    visibility_timeout_s: int = 30
    poll_wait_s: int = 1
    # Resource names derive from this (default: the stack name); tests sharing one moto
    # backend use distinct values.
    resource_prefix: str | None = None
    http_stages: tuple[HttpStage, ...] = HTTP_STAGES
    consumers: tuple[SqsConsumer, ...] = SQS_CONSUMERS
    scheduled: tuple[ScheduledStage, ...] = SCHEDULED_STAGES
    # Seconds between runs of every scheduled stage (the retention sweep); None: each
    # stage's own interval from the registry.
    schedule_interval_s: float | None = None
    # Seconds between DynamoDB TTL passes (moto never expires items itself).
    ttl_interval_s: float = EXPIRY_INTERVAL_S
    # Handlers by stage name, instead of importing the registered ones (tests).
    handlers: Mapping[str, Handler] = field(default_factory=dict)


class LocalStack:
    """The whole pipeline on loopback. ``start()`` returns the ready document."""

    def __init__(self, options: LocalStackOptions | None = None) -> None:
        self.options = options or LocalStackOptions()
        self._moto = MotoServer(self.options.aws_port)
        self._environment = ProcessEnvironment()
        self._gateway: ApiGateway | None = None
        self._presign_proxy: PresignProxy | None = None
        self._pollers: list[SqsPoller] = []
        self._schedules: list[ScheduledInvoker] = []
        self._publisher: CountersPublisher | None = None
        self._ttl_expirer: TtlExpirer | None = None
        self.runtimes: dict[str, StageRuntime] = {}
        self.resources: LocalStackResources | None = None
        self.config: StackConfig | None = None
        self.clients: LocalClients | None = None
        self.ready: dict[str, Any] = {}
        # What the stages' handlers read (also written to DIR/environment.json).
        self.stage_environment: dict[str, str] = {}
        self.signing_key: LocalSigningKey | None = None
        self._wrote_state = False
        self._resets: list[Callable[[], Any]] = []
        self._key_temp_dir: Path | None = None

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> dict[str, Any]:
        """Start everything; on any failure stop what started and re-raise."""
        options = self.options
        state_dir = options.state_dir.resolve() if options.state_dir else None
        if state_dir is not None:
            _refuse_if_running(state_dir)
        config, region, stack_path = load_stack(options.project_dir, options.stack)
        self.config = config
        try:
            aws_url = self._moto.start()
            self.clients = LocalClients(aws_url, region)
            self.resources = provision(
                self.clients,
                config,
                stack=options.resource_prefix or options.stack,
                queue_settings=QueueSettings(
                    options.visibility_timeout_s,
                    options.max_receive_count,
                    {consumer.queue_role: consumer.timeout_s for consumer in options.consumers},
                ),
            )
            self.signing_key = create_signing_key(state_dir or self._temporary_key_dir())
            # Presigned bundle URLs point at the proxy: moto never checks their signatures.
            self._presign_proxy = PresignProxy(
                self.clients.client("s3"),
                bucket=self.resources.buckets["bundles"],
                region=region,
                access_key=FAKE_ACCESS_KEY,
                secret_key=FAKE_SECRET_KEY,
            )
            presign_url = self._presign_proxy.start()
            self.stage_environment = stage_environment(
                self.resources,
                config,
                aws_url,
                self.signing_key.private_key,
                public_key_file=self.signing_key.public_key,
                presign_endpoint_url=presign_url,
            )
            self._environment.apply(self.stage_environment)
            self._start_stages(region)
            self._ttl_expirer = TtlExpirer(
                self.clients.client("dynamodb"),
                self.resources.tables.values(),
                interval_s=options.ttl_interval_s,
            )
            self._ttl_expirer.start()
            api_url = self._gateway.url if self._gateway else ""
            self.ready = self._ready_document(api_url, aws_url, state_dir, stack_path)
            if state_dir is not None:
                self._publisher = CountersPublisher(state_dir, self.counters_document)
                self._publisher.start()
                self._wrote_state = True  # from here on, stop() removes what is written
                write_json_atomically(environment_path(state_dir), self.stage_environment)
                write_state(state_dir, self.ready)
        except BaseException:
            self.stop()
            raise
        log.info("local stack %s ready: api %s, aws %s", options.stack, api_url, aws_url)
        return self.ready

    def _temporary_key_dir(self) -> Path:
        # Without a state directory (tests) the key pair lives as long as the stack.
        self._key_temp_dir = Path(tempfile.mkdtemp(prefix="ryuzen-local-key-"))
        return self._key_temp_dir

    def _start_stages(self, region: str) -> None:
        assert self.resources is not None and self.clients is not None
        stack = self.resources.stack
        routes = []
        for stage in self.options.http_stages:
            # Entries sharing a name are one function behind several resources.
            runtime = self.runtimes.get(stage.name) or self._runtime(stage, region, stack)
            routes.append(
                Route(
                    stage.method,
                    stage.path,
                    runtime.invoke,
                    functools.partial(_count_status, runtime),
                )
            )
        for consumer in self.options.consumers:
            runtime = self._runtime(consumer, region, stack)
            queue = self.resources.queues[consumer.queue_role]
            self._pollers.append(
                SqsPoller(
                    runtime,
                    self.clients.client("sqs"),
                    queue_url=queue.url,
                    queue_arn=queue.arn,
                    region=region,
                    batch_size=consumer.batch_size,
                    wait_time_s=self.options.poll_wait_s,
                )
            )
        for scheduled in self.options.scheduled:
            self._schedules.append(
                ScheduledInvoker(
                    self._runtime(scheduled, region, stack),
                    interval_s=self._interval(scheduled),
                    region=region,
                    counted=scheduled.counted,
                )
            )
        if routes:
            keys = {key.value: key.id for key in self.resources.all_api_keys()}
            self._gateway = ApiGateway(routes, keys, region=region, port=self.options.api_port)
            self._gateway.start()
        for poller in self._pollers:
            poller.start()
        for schedule in self._schedules:
            schedule.start()

    def _interval(self, stage: ScheduledStage) -> float:
        return self.options.schedule_interval_s or stage.interval_s

    def _runtime(
        self, stage: HttpStage | SqsConsumer | ScheduledStage, region: str, stack: str
    ) -> StageRuntime:
        handler = self.options.handlers.get(stage.name)
        if handler is None:
            handler = load_handler(stage.handler)
            if stage.reset:
                reset = load_callable(stage.reset)
                reset()  # the environment changed: drop cached settings and clients
                self._resets.append(reset)
        runtime = StageRuntime(
            stage.name, handler, region=region, stack=stack, timeout_s=stage.timeout_s
        )
        self.runtimes[stage.name] = runtime
        return runtime

    def stop(self) -> None:
        """Stop schedules, pollers, the API, the counters publisher and moto; forget the state."""
        for schedule in self._schedules:
            schedule.stop()
        self._schedules = []
        for poller in self._pollers:
            poller.stop()
        self._pollers = []
        if self._gateway is not None:
            self._gateway.stop()
            self._gateway = None
        if self._presign_proxy is not None:
            self._presign_proxy.stop()
            self._presign_proxy = None
        if self._publisher is not None:
            self._publisher.stop()
            self._publisher = None
        if self._ttl_expirer is not None:
            self._ttl_expirer.stop()
            self._ttl_expirer = None
        if self._wrote_state and self.options.state_dir is not None:
            remove_state(self.options.state_dir.resolve())
            self._wrote_state = False
        self._moto.stop()
        for reset in self._resets:
            reset()
        self._resets = []
        self._environment.restore()
        if self._key_temp_dir is not None:
            shutil.rmtree(self._key_temp_dir, ignore_errors=True)
            self._key_temp_dir = None

    def counters_document(self) -> dict[str, Any]:
        """The ``stages.json`` document: per stage its trigger and counters."""
        triggers: dict[str, str] = {}
        for stage in self.options.http_stages:
            route = f"{stage.method} {stage.path}"
            known = triggers.get(stage.name)
            triggers[stage.name] = f"{known}, {route}" if known else f"http {route}"
        triggers.update({c.name: f"sqs {c.queue_role}" for c in self.options.consumers})
        triggers.update(
            {s.name: f"schedule every {self._interval(s):g} s" for s in self.options.scheduled}
        )
        return {
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "stages": {
                name: {"trigger": triggers.get(name), **runtime.counters()}
                for name, runtime in sorted(self.runtimes.items())
            },
        }

    def consumers_by_queue(self) -> dict[str, str | None]:
        """Per queue role, the stage consuming it (None: no consumer yet)."""
        assert self.resources is not None
        running = {consumer.queue_role: consumer.name for consumer in self.options.consumers}
        return {role: running.get(role) for role in sorted(self.resources.queues)}

    def wait_until_drained(self, timeout_s: float, poll_s: float = 0.5) -> bool:
        """Wait until every queue with a consumer is empty and has nothing in flight."""
        assert self.resources is not None and self.clients is not None
        sqs = self.clients.client("sqs")
        consumed = [role for role, stage in self.consumers_by_queue().items() if stage]
        deadline = time.monotonic() + timeout_s
        while True:
            depths = [queue_depth(sqs, self.resources.queues[role].url) for role in consumed]
            if all(sum(depth.values()) == 0 for depth in depths):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)

    def _ready_document(
        self, api_url: str, aws_url: str, state_dir: Path | None, stack_path: Path
    ) -> dict[str, Any]:
        resources = self.resources
        assert resources is not None and self.signing_key is not None
        consumers = self.consumers_by_queue()
        return {
            "ready": True,
            "stack": self.options.stack,
            "stack_file": str(stack_path),
            "api": api_url,
            "aws": aws_url,
            # where presigned bundle URLs point: verifies them, then streams from moto
            "presign_proxy": self._presign_proxy.url if self._presign_proxy else None,
            "region": resources.region,
            "ingest_keys": {owner: key.value for owner, key in resources.ingest_keys.items()},
            "partner_keys": {owner: key.value for owner, key in resources.partner_keys.items()},
            "api_key_ids": {
                "ingest": {owner: key.id for owner, key in resources.ingest_keys.items()},
                "partner": {owner: key.id for owner, key in resources.partner_keys.items()},
            },
            "buckets": dict(resources.buckets),
            "tables": dict(resources.tables),
            "queues": {
                role: {"name": q.name, "url": q.url, "dlq_name": q.dlq_name, "dlq_url": q.dlq_url}
                for role, q in resources.queues.items()
            },
            "consumers": consumers,
            "waiting_for": {
                role: PENDING_CONSUMERS[role]
                for role, stage in consumers.items()
                if stage is None and role in PENDING_CONSUMERS
            },
            "kms_keys": dict(resources.kms_keys),
            "event_bus": resources.event_bus,
            # EventBridge rules on the bus, by the queue each targets
            "event_rules": dict(resources.event_rules),
            "schedules": {s.name: {"every_s": self._interval(s)} for s in self.options.scheduled},
            "signing_key_id": resources.signing_key_id,
            # What the local stages actually sign with: verify certificates with this PEM.
            "public_key": str(self.signing_key.public_key),
            "public_key_id": self.signing_key.key_id,
            "state_dir": str(state_dir) if state_dir else None,
            "pid": os.getpid(),
        }


def _count_status(runtime: StageRuntime, status: int) -> None:
    runtime.count(f"http_{status}")


def _refuse_if_running(state_dir: Path) -> None:
    try:
        state = read_state(state_dir)
    except StackNotRunningError:
        return  # nothing recorded, or a stale file from a crash: overwrite it
    raise StackAlreadyRunningError(
        f"a local stack (pid {state.get('pid')}) already runs with state dir {state_dir}; "
        "stop it or choose another --state-dir"
    )
