"""No payload in logs, and no polars on the cold-start path."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.stub import Stubber
from ryuzen_ingest import ingest_handler

CANARY = "CANARY-7f3b9d1e-payload-must-not-leak"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record at DEBUG (ours, powertools', botocore's), however it is formatted."""
    ingest_handler.logger.setLevel(logging.DEBUG)
    with caplog.at_level(logging.DEBUG):
        yield caplog
    ingest_handler.logger.setLevel(logging.INFO)


def canary_events(model_id: str = "acme/titan-2") -> list[dict[str, Any]]:
    return [
        {
            "event_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "model": {"id": model_id},
            "outcome": {"error_message": CANARY},
            "attributes": {"note": CANARY},
        }
    ]


def test_no_log_line_ever_holds_the_payload(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
    s3: Any,
    debug_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    good = json.dumps(canary_events())
    headers = {"Idempotency-Key": CANARY, "User-Agent": CANARY}
    answers = [
        # accepted, then replayed
        call(api_event(good, headers=headers)),
        call(api_event(good, headers=headers)),
        # same key, other body
        call(api_event(good.replace("titan-2", "titan-3"), headers=headers)),
        # refused for its content
        call(api_event(good + CANARY, headers=headers)),
        call(api_event(json.dumps(canary_events(f"{CANARY}/model")))),
        call(api_event(json.dumps(canary_events("acme/x")), api_key_id="k2batch0001")),
        call(api_event(good, api_key_id=CANARY)),
        call(api_event(good, content_type=CANARY)),
    ]
    # refused because S3 failed
    with Stubber(s3) as stubber:
        stubber.add_client_error("put_object", service_error_code="SlowDown", http_status_code=503)
        answers.append(call(api_event(good)))

    assert [answer["statusCode"] for answer in answers] == [
        202,
        202,
        422,
        400,
        400,
        403,
        403,
        415,
        503,
    ]
    for answer in answers:
        assert CANARY not in json.dumps(answer)
    captured = capfd.readouterr()
    assert CANARY not in captured.out and CANARY not in captured.err
    assert debug_logs.records, "expected log records to inspect"
    for record in debug_logs.records:
        assert CANARY not in repr(record.__dict__)
        assert CANARY not in record.getMessage()


def test_handler_import_does_not_load_polars_or_boto3() -> None:
    # A fresh interpreter: the test process itself has imported boto3 and moto.
    script = (
        "import sys\n"
        "import ryuzen_ingest.ingest_handler\n"
        "cold = {name for name in ('polars', 'boto3', 'pydantic') if name in sys.modules}\n"
        "import ryuzen_ingest.settings, ryuzen_ingest.idempotency\n"
        "from ryuzen_ingest.idempotency import IdempotencyGuard\n"
        "print(sorted(cold), 'polars' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["[]", "False"], result.stdout + result.stderr
