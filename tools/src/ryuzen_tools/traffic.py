"""The traffic sender: batches of events as gzip NDJSON to ``POST {api}/v1/events``.

Works against the local stack and a deployed one alike. Each batch carries its own
``Idempotency-Key``, generated once and reused on every retry of that batch, so a retry
after a timeout (when the first attempt may have been written) cannot duplicate it.
429 and 503 are retried after ``Retry-After`` (seconds or an HTTP date, capped), connection
errors and timeouts after exponential backoff with jitter, both a bounded number of times.
Any other answer — including 4xx rejections — is final and reported.
"""

from __future__ import annotations

import functools
import gzip
import json
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ryuzen_tools import __version__

EVENTS_PATH = "/v1/events"
RETRIED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class SendOptions:
    """Where and how to send."""

    api_url: str
    api_key: str
    concurrency: int = 4
    max_attempts: int = 5
    timeout_s: float = 30.0
    max_retry_after_s: float = 60.0
    backoff_base_s: float = 0.2
    gzip: bool = True


@dataclass
class BatchOutcome:
    """What happened to one batch after all its attempts."""

    events: int
    status: int | None = None  # None: no answer (connection failures on every attempt)
    accepted: int = 0
    batch_id: str | None = None
    error_code: str | None = None
    attempts: int = 0
    latencies_ms: list[float] = field(default_factory=list)


@dataclass
class SendResult:
    """Totals over every batch. ``all_answered`` is False when a batch never got an answer."""

    events_sent: int = 0
    events_accepted: int = 0
    events_rejected: int = 0
    batches_sent: int = 0
    batches_accepted: int = 0
    batches_rejected: int = 0
    batches_unanswered: int = 0
    requests: int = 0
    retries: int = 0
    status_codes: dict[str, int] = field(default_factory=dict)
    error_codes: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    batch_ids: list[str] = field(default_factory=list, repr=False)
    elapsed_s: float = 0.0

    @property
    def all_answered(self) -> bool:
        """Every batch got a final HTTP answer (accepted or not)."""
        return self.batches_unanswered == 0

    def add(self, outcome: BatchOutcome) -> None:
        """Fold one batch's outcome into the totals."""
        self.events_sent += outcome.events
        self.batches_sent += 1
        self.requests += outcome.attempts
        self.retries += max(0, outcome.attempts - 1)
        self.latencies_ms.extend(outcome.latencies_ms)
        if outcome.status is None:
            self.batches_unanswered += 1
            self.events_rejected += outcome.events
            _bump(self.error_codes, outcome.error_code or "no_answer")
            return
        _bump(self.status_codes, str(outcome.status))
        if outcome.status == 202:
            self.batches_accepted += 1
            self.events_accepted += outcome.accepted
            self.events_rejected += outcome.events - outcome.accepted
            if outcome.batch_id:
                self.batch_ids.append(outcome.batch_id)
        else:
            self.batches_rejected += 1
            self.events_rejected += outcome.events
            _bump(self.error_codes, f"{outcome.status} {outcome.error_code or 'unknown'}")

    def percentile_ms(self, percent: float) -> float | None:
        """Nearest-rank percentile of the per-request latencies."""
        return percentile(self.latencies_ms, percent)

    def summary(self) -> dict[str, Any]:
        """The JSON-ready result (``send`` prints it as its final line)."""
        document = {
            key: value
            for key, value in asdict(self).items()
            if key not in ("latencies_ms", "batch_ids")
        }
        document.update(
            {
                "distinct_batch_ids": len(set(self.batch_ids)),
                "latency_ms": {
                    name: _round(self.percentile_ms(p))
                    for name, p in (("p50", 50), ("p90", 90), ("p99", 99))
                },
                "events_per_s": round(self.events_sent / self.elapsed_s, 1)
                if self.elapsed_s
                else None,
                "elapsed_s": round(self.elapsed_s, 3),
                "all_answered": self.all_answered,
            }
        )
        return document


def percentile(values: list[float], percent: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def until_deadline(
    batches: Iterable[list[dict[str, Any]]], deadline: float
) -> Iterator[list[dict[str, Any]]]:
    """The batches until ``time.monotonic()`` passes ``deadline`` (a bounded-time run).

    Checked as each batch is pulled, which ``TrafficSender.send`` does only when a slot is
    free: every batch already started is still sent and answered.
    """
    for batch in batches:
        if time.monotonic() >= deadline:
            return
        yield batch


def encode_batch(events: list[dict[str, Any]], *, compress: bool = True) -> bytes:
    """NDJSON, one compact event per line, gzip-compressed unless ``compress`` is False."""
    body = "".join(json.dumps(event, separators=(",", ":")) + "\n" for event in events).encode()
    return gzip.compress(body, compresslevel=6) if compress else body


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait per a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


class TrafficSender:
    """Sends batches with bounded concurrency; one instance per API key."""

    def __init__(
        self,
        options: SendOptions,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options
        self._sleep = sleep
        self._jitter = random.Random()  # noqa: S311 - retry jitter, not secrets
        self._url = options.api_url.rstrip("/") + EVENTS_PATH
        self._client = httpx.Client(
            timeout=httpx.Timeout(options.timeout_s, connect=5.0),
            limits=httpx.Limits(
                max_connections=options.concurrency, max_keepalive_connections=options.concurrency
            ),
            transport=transport,
            headers={"User-Agent": f"ryuzen-send/{__version__}"},
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> TrafficSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(
        self,
        batches: Iterable[list[dict[str, Any]]],
        *,
        on_batch_done: Callable[[BatchOutcome], None] | None = None,
    ) -> SendResult:
        """Send every batch; return the totals. Batches are generated lazily as slots free up."""
        result = SendResult()
        lock = threading.Lock()
        # At most two batches per worker are encoded and waiting: memory stays flat however
        # many events are sent.
        slots = threading.BoundedSemaphore(self.options.concurrency * 2)
        started = time.monotonic()

        def finished(future: Future[BatchOutcome], events: int) -> None:
            try:
                outcome = future.result()
            except Exception as error:  # a bug, not an HTTP outcome: count the batch as lost
                outcome = BatchOutcome(events=events, error_code=f"sender:{type(error).__name__}")
            finally:
                slots.release()
            with lock:
                result.add(outcome)
            if on_batch_done is not None:
                on_batch_done(outcome)

        with ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="send") as pool:
            for batch in batches:
                slots.acquire()
                body = encode_batch(batch, compress=self.options.gzip)
                future = pool.submit(self.send_batch, body, len(batch))
                future.add_done_callback(functools.partial(finished, events=len(batch)))
        result.elapsed_s = time.monotonic() - started
        return result

    def send_batch(self, body: bytes, events: int) -> BatchOutcome:
        """POST one encoded batch with retries; never raises for HTTP or connection trouble."""
        headers = {
            "x-api-key": self.options.api_key,
            "Content-Type": "application/x-ndjson",
            "Idempotency-Key": str(uuid.uuid4()),
        }
        if self.options.gzip:
            headers["Content-Encoding"] = "gzip"
        outcome = BatchOutcome(events=events)
        for attempt in range(1, self.options.max_attempts + 1):
            outcome.attempts = attempt
            last = attempt == self.options.max_attempts
            started = time.monotonic()
            try:
                response = self._client.post(self._url, content=body, headers=headers)
            except httpx.TransportError as error:
                outcome.error_code = f"connection:{type(error).__name__}"
                if not last:
                    self._sleep(self._backoff(attempt))
                continue
            outcome.latencies_ms.append((time.monotonic() - started) * 1000)
            if response.status_code in RETRIED_STATUSES and not last:
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                self._sleep(
                    min(wait, self.options.max_retry_after_s)
                    if wait is not None
                    else self._backoff(attempt)
                )
                continue
            return _answered(outcome, response)
        return outcome

    def _backoff(self, attempt: int) -> float:
        ceiling = min(10.0, self.options.backoff_base_s * 2.0 ** (attempt - 1))
        return ceiling * self._jitter.uniform(0.5, 1.0)


def _answered(outcome: BatchOutcome, response: httpx.Response) -> BatchOutcome:
    outcome.status = response.status_code
    outcome.error_code = None
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return outcome
    if response.status_code == 202:
        accepted = document.get("accepted")
        outcome.accepted = accepted if isinstance(accepted, int) else outcome.events
        batch_id = document.get("batch_id")
        outcome.batch_id = batch_id if isinstance(batch_id, str) else None
    else:
        code = document.get("error") or document.get("message")
        outcome.error_code = str(code)[:64] if code else None
    return outcome


def _bump(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
