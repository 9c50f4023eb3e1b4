"""``Idempotency-Key``: a retried request gets the first answer and writes nothing new.

Built on aws-lambda-powertools' idempotency utility with its DynamoDB persistence layer:

- the record key is the pair (client id, header value), so two clients can never collide;
- the payload hash is the SHA-256 of the media type and the inflated body, so the same
  key with another body is refused (``idempotency_key_reused``, 422) instead of answered;
- powertools stores an answer only when the wrapped call returns, and deletes its
  in-progress record when the call raises: rejections and 503s are never remembered;
- a concurrent duplicate finds the in-progress record and gets 409 with ``Retry-After``;
- each call to the store runs as a named step (``idempotency_start``, ``idempotency_read``,
  ``idempotency_complete``, ``idempotency_release``), so a 503 from the store logs where.

powertools' idempotency imports boto3 and jmespath, so this module imports it on the
first request that carries a key, not at cold start.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from ryuzen_contracts.pipeline_steps import UNKNOWN_STEP, step, step_of

from ryuzen_ingest.responses import ErrorCode, IngestError, unavailable

EXPIRES_AFTER_SECONDS = 24 * 60 * 60
# A stable record prefix, independent of the Lambda's name, so a renamed or redeployed
# function still recognises keys it answered before.
KEY_PREFIX = "ryuzen-ingest.events"
# API Gateway's integration timeout; the in-progress lock expires after it when the
# caller cannot tell the real remaining time.
DEFAULT_REMAINING_MILLIS = 29_000
IN_PROGRESS_RETRY_AFTER = 2
# Applied with fullmatch: a bare "$" would also accept a trailing newline.
_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")

logger = Logger(service="ryuzen-ingest", child=True)


def check_idempotency_key(value: str | None) -> str | None:
    """The header value when it is 1-255 visible ASCII characters; None when absent."""
    if value is None:
        return None
    if not _KEY_RE.fullmatch(value):
        raise IngestError(
            400,
            ErrorCode.INVALID_IDEMPOTENCY_KEY,
            "Idempotency-Key must be 1-255 visible ASCII characters",
        )
    return value


class _Replayed:
    """Marks an answer that came from the idempotency store rather than from this call."""

    __slots__ = ("response",)

    def __init__(self, response: Any) -> None:
        self.response = response


class _RemainingTime:
    """What powertools reads from the Lambda context, for callers without a real one."""

    def __init__(self, context: object) -> None:
        self._context = context

    def get_remaining_time_in_millis(self) -> int:
        remaining = getattr(self._context, "get_remaining_time_in_millis", None)
        if callable(remaining):
            return int(remaining())
        return DEFAULT_REMAINING_MILLIS


def _call_operation(
    *, request: dict[str, str], operation: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    # powertools hashes ``request`` (the key and the payload hash), never the events.
    return operation()


def _stepped_persistence(dynamodb: Any, table_name: str) -> Any:
    """powertools' DynamoDB layer, each of its four store calls run as a named step."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    class StepNamedPersistence(DynamoDBPersistenceLayer):
        def _put_record(self, data_record: Any) -> None:
            with step("idempotency_start"):
                super()._put_record(data_record)

        def _get_record(self, idempotency_key: Any) -> Any:
            with step("idempotency_read"):
                return super()._get_record(idempotency_key)

        def _update_record(self, data_record: Any) -> None:
            with step("idempotency_complete"):
                super()._update_record(data_record)

        def _delete_record(self, data_record: Any) -> None:
            with step("idempotency_release"):
                super()._delete_record(data_record)

    return StepNamedPersistence(table_name=table_name, boto3_client=dynamodb)


def failed_step(error: BaseException) -> str:
    """The step ``error`` or the first of its causes escaped from (powertools wraps them)."""
    current: BaseException | None = error
    while current is not None:
        if (name := step_of(current)) != UNKNOWN_STEP:
            return name
        current = current.__cause__
    return UNKNOWN_STEP


class IdempotencyGuard:
    """Runs an operation at most once per (client, Idempotency-Key) within the expiry."""

    def __init__(
        self, dynamodb: Any, table_name: str, *, expires_after_seconds: int = EXPIRES_AFTER_SECONDS
    ) -> None:
        from aws_lambda_powertools.utilities.idempotency import (
            IdempotencyConfig,
            idempotent_function,
        )

        self._config = IdempotencyConfig(
            event_key_jmespath="[client_id, key]",
            payload_validation_jmespath="payload_sha256",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=expires_after_seconds,
            hash_function="sha256",
            response_hook=lambda response, _record: _Replayed(response),
        )
        persistence = _stepped_persistence(dynamodb, table_name)
        self._run = idempotent_function(
            _call_operation,
            data_keyword_argument="request",
            persistence_store=persistence,
            config=self._config,
            key_prefix=KEY_PREFIX,
        )

    def run(
        self,
        *,
        client_id: str,
        key: str,
        payload_sha256: str,
        context: object,
        operation: Callable[[], dict[str, Any]],
    ) -> tuple[dict[str, Any], bool]:
        """``(answer, replayed)``: the operation's answer, or the stored one for a retry."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyInconsistentStateError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        self._config.register_lambda_context(_RemainingTime(context))  # type: ignore[arg-type]
        request = {"client_id": client_id, "key": key, "payload_sha256": payload_sha256}
        completed: list[dict[str, Any]] = []

        def tracked() -> dict[str, Any]:
            answer = operation()
            completed.append(answer)
            return answer

        try:
            result = self._run(request=request, operation=tracked)
        except IdempotencyValidationError:
            raise IngestError(
                422,
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was already used with a different body",
            ) from None
        except (IdempotencyAlreadyInProgressError, IdempotencyInconsistentStateError):
            raise IngestError(
                409,
                ErrorCode.IDEMPOTENCY_IN_PROGRESS,
                "a request with this Idempotency-Key is still in progress",
                retry_after=IN_PROGRESS_RETRY_AFTER,
            ) from None
        except IdempotencyPersistenceLayerError as error:
            where = failed_step(error)
            cause = type(error.__cause__ or error).__name__
            if completed:
                # The batch is in RAW; only remembering the answer failed. A 503 would make
                # the client retry and store the batch twice, so the answer stands.
                logger.warning(
                    "idempotency record not completed",
                    extra={"stored": True, "step": where, "error_type": cause},
                )
                return completed[0], False
            logger.error("idempotency store failed", extra={"step": where, "error_type": cause})
            with step(where):  # the 503 carries the step to the request's log line
                raise unavailable("the idempotency store is unavailable; retry later") from None
        if isinstance(result, _Replayed):
            return result.response, True
        return result, False
