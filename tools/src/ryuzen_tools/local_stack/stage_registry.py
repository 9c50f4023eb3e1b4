"""Which stage runs on which trigger, and where its handler lives.

Handlers are named ``module:function`` and imported only when the stack starts, so the
tools package can be imported (and tested) without every stage installed, and a stage that
is not written yet is simply absent from the registry.

Ingest and the partner pull API are HTTP-driven; sanitize consumes ``raw-events``,
analytics ``sanitized-events``, cleanup ``bundle-delivered`` (the queue the stack's
``BundleDelivered`` rule targets); the retention sweep runs on a schedule.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ryuzen_tools.local_stack.lambda_runtime import Handler


@dataclass(frozen=True)
class HttpStage:
    """A stage behind the REST API: one method on one resource (``{name}`` templates allowed).

    Entries sharing a name are one function behind several resources.
    """

    name: str
    handler: str
    method: str
    path: str
    timeout_s: float = 29.0  # API Gateway's integration timeout
    # Forgets settings and clients the handler cached at module level, so a stack started
    # again in the same process (tests) does not reuse a previous stack's endpoint.
    reset: str | None = None


@dataclass(frozen=True)
class SqsConsumer:
    """A stage fed by an SQS queue (identified by its role, e.g. ``raw-events``)."""

    name: str
    handler: str
    queue_role: str
    batch_size: int = 10
    timeout_s: float = 60.0
    reset: str | None = None


@dataclass(frozen=True)
class ScheduledStage:
    """A stage invoked every ``interval_s`` seconds, as an EventBridge Scheduler rate does."""

    name: str
    handler: str
    interval_s: float
    timeout_s: float = 300.0
    reset: str | None = None
    # Numbers of the handler's answer added up into the stage's outcome counters.
    counted: tuple[str, ...] = ()


HTTP_STAGES: tuple[HttpStage, ...] = (
    HttpStage(
        "ingest",
        "ryuzen_ingest.ingest_handler:lambda_handler",
        "POST",
        "/v1/events",
        reset="ryuzen_ingest.ingest_handler:reset_runtime",
    ),
    # The partner pull API: one Lambda behind three GET resources, so one name (one warm
    # execution environment, one set of counters). Partner keys only: an ingest key
    # passes the gateway and gets 403 unknown_partner from the handler.
    *(
        HttpStage(
            "bundle-pull",
            "ryuzen_bundle.pull_handler:lambda_handler",
            "GET",
            path,
            reset="ryuzen_bundle.pull_handler:reset_runtime",
        )
        for path in ("/v1/bundles", "/v1/bundles/{month}", "/v1/keys/signing")
    ),
)

SQS_CONSUMERS: tuple[SqsConsumer, ...] = (
    # The largest RAW object ingest writes holds 5,000 events (<= 10 MiB inflated), which
    # sanitize takes ~2-5 s for on a laptop core; 5 objects an invocation and 120 s leave
    # a wide margin, and the queue's visibility timeout is raised to at least the timeout
    # (AWS refuses an event source mapping whose queue hides messages for less).
    SqsConsumer(
        "sanitize",
        "ryuzen_sanitize.sanitize_handler:lambda_handler",
        "raw-events",
        batch_size=5,
        timeout_s=120.0,
        reset="ryuzen_sanitize.sanitize_handler:reset_runtime",
    ),
    # A SANITIZED object holds at most one RAW object's events (5,000), which analytics
    # normalizes in well under a second: Lambda's defaults (10 messages, 60 s) are ample.
    SqsConsumer(
        "analytics",
        "ryuzen_analytics.analytics_handler:lambda_handler",
        "sanitized-events",
        batch_size=10,
        timeout_s=60.0,
        reset="ryuzen_analytics.analytics_handler:reset_runtime",
    ),
    # One BundleDelivered event an invocation, as the EventBridge rule invokes the function
    # in AWS; a month's deletion is a few thousand DeleteObjects keys at most, seconds.
    SqsConsumer(
        "cleanup",
        "ryuzen_cleanup.cleanup_handler:lambda_handler",
        "bundle-delivered",
        batch_size=1,
        timeout_s=60.0,
        reset="ryuzen_cleanup.cleanup_handler:reset_runtime",
    ),
)

SCHEDULED_STAGES: tuple[ScheduledStage, ...] = (
    # Hourly in AWS. Locally every minute by default (`ryuzen local up --sweep-interval`),
    # so a RAW straggler is seen soon; `ryuzen local sweep` runs one at once.
    ScheduledStage(
        "retention-sweep",
        "ryuzen_cleanup.sweep_handler:lambda_handler",
        interval_s=60.0,
        reset="ryuzen_cleanup.sweep_handler:reset_runtime",
        counted=("raw_deleted", "quarantine_deleted"),
    ),
)

# Queues whose consumer is not written yet, and who will consume them: shown by `demo`
# and `status` instead of a silent backlog.
PENDING_CONSUMERS: dict[str, str] = {}


class StageNotInstalledError(ImportError):
    """A registered stage's handler cannot be imported."""


def load_callable(reference: str) -> Callable[..., Any]:
    """Import ``module:function`` and return the function."""
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise StageNotInstalledError(f"cannot import {reference}: {error}") from error
    function = getattr(module, attribute, None)
    if not callable(function):
        raise StageNotInstalledError(f"{module_name} has no callable {attribute}")
    return function  # type: ignore[no-any-return]


def load_handler(reference: str) -> Handler:
    """Import a stage's ``lambda_handler(event, context)``."""
    return load_callable(reference)
