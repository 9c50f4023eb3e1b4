"""The sender: retries honour Retry-After, idempotency keys survive retries, results add up."""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ryuzen_tools.traffic import (
    SendOptions,
    TrafficSender,
    encode_batch,
    percentile,
    retry_after_seconds,
    until_deadline,
)


class ScriptedServer:
    """A tiny HTTP server answering from a script of (status, headers, body) per request."""

    def __init__(self, script: list[tuple[int, dict[str, str], dict[str, object]]]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, object]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status, headers, payload = server.script.pop(0) if server.script else (202, {}, {})
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


ACCEPTED = (202, {}, {"batch_id": "01JDXYZ0000000000000000000", "accepted": 2})
EVENTS = [{"event_id": "a"}, {"event_id": "b"}]


@pytest.fixture
def sleeps() -> list[float]:
    return []


def sender(url: str, sleeps: list[float], **options: object) -> TrafficSender:
    return TrafficSender(SendOptions(api_url=url, api_key="k", **options), sleep=sleeps.append)  # type: ignore[arg-type]


def test_a_503_is_retried_after_retry_after_with_the_same_idempotency_key(
    sleeps: list[float],
) -> None:
    script = [(503, {"Retry-After": "3"}, {"error": "unavailable", "detail": "x"}), ACCEPTED]
    with ScriptedServer(script) as server, sender(server.url, sleeps) as client:
        result = client.send([EVENTS])
    assert sleeps == [3.0]
    assert result.events_accepted == 2
    assert result.requests == 2 and result.retries == 1
    first, second = server.requests
    assert first["headers"]["Idempotency-Key"] == second["headers"]["Idempotency-Key"]  # type: ignore[index]
    assert first["path"] == "/v1/events"
    assert first["headers"]["x-api-key"] == "k"  # type: ignore[index]
    lines = gzip.decompress(first["body"]).decode().splitlines()  # type: ignore[arg-type]
    assert [json.loads(line) for line in lines] == EVENTS


def test_a_429_with_an_http_date_waits_until_then(sleeps: list[float]) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    script = [(429, {"Retry-After": later}, {"message": "Too Many Requests"}), ACCEPTED]
    with ScriptedServer(script) as server, sender(server.url, sleeps) as client:
        result = client.send([EVENTS])
    assert len(sleeps) == 1 and 25 <= sleeps[0] <= 30
    assert result.batches_accepted == 1


def test_retry_after_is_capped(sleeps: list[float]) -> None:
    script = [(503, {"Retry-After": "3600"}, {}), ACCEPTED]
    with (
        ScriptedServer(script) as server,
        sender(server.url, sleeps, max_retry_after_s=5.0) as client,
    ):
        client.send([EVENTS])
    assert sleeps == [5.0]


def test_retries_are_bounded_and_the_last_answer_is_reported(sleeps: list[float]) -> None:
    script = [(503, {"Retry-After": "1"}, {"error": "unavailable"})] * 3
    with ScriptedServer(script) as server, sender(server.url, sleeps, max_attempts=3) as client:
        result = client.send([EVENTS])
    assert len(server.requests) == 3
    assert sleeps == [1.0, 1.0]
    assert result.all_answered  # an answer, even a refusal, is not a connection failure
    assert result.batches_rejected == 1
    assert result.error_codes == {"503 unavailable": 1}


def test_rejections_are_final_and_counted(sleeps: list[float]) -> None:
    script = [(400, {}, {"error": "invalid_json", "detail": "line 1"}), ACCEPTED]
    with ScriptedServer(script) as server, sender(server.url, sleeps, concurrency=1) as client:
        result = client.send([EVENTS, EVENTS])
    assert sleeps == []
    assert result.events_sent == 4 and result.events_accepted == 2 and result.events_rejected == 2
    assert result.error_codes == {"400 invalid_json": 1}
    assert result.status_codes == {"400": 1, "202": 1}


def test_connection_failures_are_retried_then_reported_unanswered(sleeps: list[float]) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with sender(f"http://127.0.0.1:{port}", sleeps, max_attempts=3) as client:
        result = client.send([EVENTS])
    assert len(sleeps) == 2 and all(0 < s <= 1 for s in sleeps)
    assert not result.all_answered
    assert result.batches_unanswered == 1
    assert result.error_codes == {"connection:ConnectError": 1}


def test_percentiles_use_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([], 50) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("0", 0.0), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_parsing(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header) == expected


def test_batches_are_ndjson() -> None:
    assert encode_batch(EVENTS, compress=False) == b'{"event_id":"a"}\n{"event_id":"b"}\n'


@pytest.fixture
def many_batches() -> Iterator[list[dict[str, str]]]:
    return iter([[{"event_id": str(i)}] for i in range(40)])


def test_concurrency_sends_every_batch_once(
    sleeps: list[float], many_batches: Iterator[list[dict[str, str]]]
) -> None:
    with ScriptedServer([]) as server, sender(server.url, sleeps, concurrency=8) as client:
        result = client.send(many_batches)
    assert result.batches_sent == len(server.requests) == 40
    keys = {r["headers"]["Idempotency-Key"] for r in server.requests}  # type: ignore[index]
    assert len(keys) == 40


def test_until_deadline_stops_pulling_batches_once_the_time_is_up(monkeypatch) -> None:
    clock = iter([0.0, 0.5, 0.9, 1.0, 5.0])
    monkeypatch.setattr("ryuzen_tools.traffic.time.monotonic", lambda: next(clock))
    batches = ([{"n": n}] for n in range(10))
    assert list(until_deadline(batches, deadline=1.0)) == [[{"n": 0}], [{"n": 1}], [{"n": 2}]]
