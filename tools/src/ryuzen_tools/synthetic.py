"""Synthetic TelemetryEvent v1 traffic: a realistic mix, reproducible with a seed.

Models are derived from each partner's model prefixes in the stack config, so events route
to real partners. Kinds, outcomes and channels follow fixed weights; latencies and token
counts are log-normal (a long right tail, as real serving has). Two deliberate departures:

* **malformed** events (``malformed_rate``) keep a valid ``event_id`` and ``model.id`` — ingest
  only checks the envelope and accepts them — but break the contract in a way sanitize must
  quarantine: an unknown field such as ``prompt``, an out-of-range number, a bad timestamp,
  a wrong type;
* **PII** (``pii_rate``) puts synthetic e-mail addresses, phone numbers, IPs or card numbers
  into ``outcome.error_message``; such events are still schema-valid — finding PII in
  bounded free text is the scrubber's job, not the schema's.

Everything except the clock anchor (``now``) comes from one ``random.Random(seed)``, so a
seed reproduces the same events with the same offsets from ``now``.
"""

from __future__ import annotations

import math
import random
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ryuzen_contracts.stack_config import StackConfig
from ryuzen_contracts.telemetry_event import (
    MAX_DURATION_MS,
    MAX_TOKENS,
    MODEL_ID_PATTERN,
    SCHEMA_VERSION,
)

_MODEL_ID_RE = re.compile(MODEL_ID_PATTERN)
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_MODEL_NAMES = ("titan-large", "swift-mini", "core-v2", "vision-pro", "code-7b")
_MODEL_VERSIONS = ("2026-09-01", "2026-10-15", "1.2.0")
_REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "ap-southeast-2")
_SDKS = (("ryuzen-py", "1.4.2"), ("ryuzen-js", "0.9.7"), ("ryuzen-go", "1.1.0"))
_TIERS = ("free", "pro", "enterprise")

# (status, weight, http statuses, error codes, finish reason)
_OUTCOMES: tuple[tuple[str, float, tuple[int, ...], tuple[str, ...], str | None], ...] = (
    ("ok", 0.90, (200,), (), "stop"),
    ("error", 0.04, (500, 502, 400), ("upstream_error", "invalid_request", "internal"), "error"),
    ("timeout", 0.025, (504,), ("timeout",), None),
    ("rate_limited", 0.02, (429,), ("rate_limited",), None),
    ("cancelled", 0.01, (499,), ("client_cancelled",), "cancelled"),
    ("filtered", 0.005, (200,), ("content_filtered",), "content_filter"),
)
_CHANNELS = (
    ("sync", 0.4),
    ("stream", 0.3),
    ("batch", 0.1),
    ("webhook", 0.1),
    ("websocket", 0.05),
    ("grpc", 0.05),
)
MALFORMATIONS = (
    "unknown_field",
    "out_of_range",
    "bad_timestamp",
    "wrong_type",
    "ttft_over_latency",
)
PII_KINDS = ("email", "phone", "ipv4", "card")


@dataclass(frozen=True)
class SyntheticEvent:
    """One generated event; ``malformed`` says how it breaks the contract (None: it does not)."""

    payload: dict[str, Any]
    malformed: str | None = None
    pii: str | None = None


class NoModelsError(ValueError):
    """No valid model id can be derived for the requested partners."""


def models_for_partners(
    config: StackConfig, partners: Iterable[str] | None = None
) -> dict[str, list[str]]:
    """Per partner, model ids that start with one of its prefixes and match the contract."""
    wanted = set(partners) if partners is not None else {p.id for p in config.partners}
    catalog: dict[str, list[str]] = {}
    for partner in config.partners:
        if partner.id not in wanted:
            continue
        models = []
        for prefix in partner.model_prefixes:
            for name in _MODEL_NAMES[:3]:
                candidate = _model_id(prefix, name)
                if _MODEL_ID_RE.match(candidate) and config.partner_for_model(candidate) == partner:
                    models.append(candidate)
        if models:
            catalog[partner.id] = models
    unknown = wanted - {p.id for p in config.partners}
    if unknown or not catalog:
        raise NoModelsError(
            f"no model ids for partners {sorted(wanted)} (unknown: {sorted(unknown)})"
        )
    return catalog


def _model_id(prefix: str, name: str) -> str:
    if prefix.endswith("/"):
        return prefix + name
    if "/" in prefix:  # "acme/titan-" style: complete the name
        return prefix + ("" if prefix[-1] in "-_.:" else "-") + name.replace("-", "")
    return prefix + ("x" if prefix[-1] in "-_." else "") + "/" + name


class SyntheticEvents:
    """A reproducible stream of synthetic events for some or all of a stack's partners."""

    def __init__(
        self,
        config: StackConfig,
        *,
        seed: int | None = None,
        partners: Iterable[str] | None = None,
        pii_rate: float = 0.0,
        malformed_rate: float = 0.02,
        now: datetime | None = None,
    ) -> None:
        if not 0 <= pii_rate <= 1 or not 0 <= malformed_rate <= 1:
            raise ValueError("pii_rate and malformed_rate must be between 0 and 1")
        self._rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
        self._now = (now or datetime.now(UTC)).astimezone(UTC)
        catalog = models_for_partners(config, partners)
        # Zipf-like traffic: the first partner and each partner's first model get the most.
        self._models = [m for models in catalog.values() for m in models]
        self._model_weights = [
            1 / (p_index + 1) / (m_index + 1)
            for p_index, models in enumerate(catalog.values())
            for m_index, _ in enumerate(models)
        ]
        self._medians = {model: self._rng.uniform(300, 1500) for model in self._models}
        self._pii_rate = pii_rate
        self._malformed_rate = malformed_rate

    def take(self, count: int) -> list[SyntheticEvent]:
        """The next ``count`` events."""
        return [self.next_event() for _ in range(count)]

    def batches(self, total: int, batch_size: int) -> Iterator[list[SyntheticEvent]]:
        """``total`` events in batches of at most ``batch_size``."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        left = total
        while left > 0:
            size = min(batch_size, left)
            yield self.take(size)
            left -= size

    def next_event(self) -> SyntheticEvent:
        """One event: valid, or malformed with the reason, possibly with PII."""
        rng = self._rng
        model = rng.choices(self._models, self._model_weights)[0]
        kind = "inference" if rng.random() < 0.8 else "delivery"
        status, http_statuses, error_codes, finish = self._outcome()
        pii = rng.choice(PII_KINDS) if rng.random() < self._pii_rate else None
        if pii and status == "ok":
            status, http_statuses, error_codes, finish = (
                "error",
                (502,),
                ("upstream_error",),
                "error",
            )
        payload: dict[str, Any] = {
            "event_id": self._event_id(),
            "schema_version": SCHEMA_VERSION,
            "kind": kind,
            "occurred_at": self._occurred_at(),
            "model": {"id": model, "version": rng.choice(_MODEL_VERSIONS)},
            "region": rng.choice(_REGIONS),
            "outcome": self._outcome_section(status, http_statuses, error_codes, finish, pii),
            "client": dict(zip(("sdk", "sdk_version"), rng.choice(_SDKS), strict=True)),
            "attributes": {"tier": rng.choice(_TIERS), "stream": rng.random() < 0.3},
        }
        if kind == "inference" or rng.random() < 0.5:
            payload["metrics"] = self._metrics(model, status)
        if kind == "delivery":
            payload["delivery"] = self._delivery(status)
        malformed = None
        if rng.random() < self._malformed_rate:
            malformed = rng.choice(MALFORMATIONS)
            self._malform(payload, malformed)
        return SyntheticEvent(payload, malformed, pii)

    def _outcome(self) -> tuple[str, tuple[int, ...], tuple[str, ...], str | None]:
        status, _, http_statuses, error_codes, finish = self._rng.choices(
            _OUTCOMES, [outcome[1] for outcome in _OUTCOMES]
        )[0]
        if status == "ok":
            finish = self._rng.choices(("stop", "length", "tool_calls"), (0.85, 0.1, 0.05))[0]
        return status, http_statuses, error_codes, finish

    def _outcome_section(
        self,
        status: str,
        http_statuses: tuple[int, ...],
        error_codes: tuple[str, ...],
        finish: str | None,
        pii: str | None,
    ) -> dict[str, Any]:
        rng = self._rng
        outcome: dict[str, Any] = {"status": status, "http_status": rng.choice(http_statuses)}
        if error_codes:
            outcome["error_code"] = rng.choice(error_codes)
            outcome["error_message"] = (
                f"{outcome['error_code'].replace('_', ' ')} after {rng.randint(1, 30)} s"
            )
        if pii:
            outcome["error_message"] = f"upstream rejected request for {self._pii_value(pii)}"
        if finish:
            outcome["finish_reason"] = finish
        return outcome

    def _metrics(self, model: str, status: str) -> dict[str, Any]:
        rng = self._rng
        if status == "timeout":
            latency = rng.uniform(30_000, 60_000)
        else:
            latency = _lognormal(rng, self._medians[model], 0.6)
        latency = round(min(latency, MAX_DURATION_MS), 3)
        metrics: dict[str, Any] = {
            "latency_ms": latency,
            "ttft_ms": round(latency * rng.uniform(0.05, 0.5), 3),
            "input_tokens": min(int(_lognormal(rng, 400, 1.0)), MAX_TOKENS),
            "output_tokens": min(
                int(_lognormal(rng, 150 if status == "ok" else 5, 0.9)), MAX_TOKENS
            ),
            "retries": rng.choices((0, 1, 2, 3), (0.92, 0.05, 0.02, 0.01))[0],
            "cache_hit": rng.random() < 0.15,
        }
        return metrics

    def _delivery(self, status: str) -> dict[str, Any]:
        rng = self._rng
        attempts = 1 if rng.random() < 0.9 else rng.randint(2, 4)
        delivered = status == "ok" and rng.random() < 0.97
        return {
            "channel": rng.choices([c for c, _ in _CHANNELS], [w for _, w in _CHANNELS])[0],
            "attempts": attempts,
            "delivered": delivered,
            "bytes": int(_lognormal(rng, 4_000, 1.2)) if delivered else 0,
        }

    def _malform(self, payload: dict[str, Any], how: str) -> None:
        rng = self._rng
        metrics = payload.setdefault("metrics", {"latency_ms": 100.0})
        if how == "unknown_field":
            field, value = rng.choice(
                (
                    ("prompt", "synthetic prompt text (never real user data)"),
                    ("messages", [{"role": "user", "content": "synthetic message"}]),
                    ("completion", "synthetic completion text"),
                )
            )
            payload[field] = value
        elif how == "out_of_range":
            target = rng.choice(("latency", "tokens", "http_status", "retries"))
            if target == "latency":
                metrics["latency_ms"] = rng.choice((-5.0, MAX_DURATION_MS * 10))
                metrics.pop("ttft_ms", None)
            elif target == "tokens":
                metrics["input_tokens"] = MAX_TOKENS + 1
            elif target == "http_status":
                payload["outcome"]["http_status"] = 700
            else:
                metrics["retries"] = 1000
        elif how == "bad_timestamp":
            payload["occurred_at"] = rng.choice(
                ("yesterday", "2026-13-45T99:00:00Z", "2026-11-28T05:00:00+02:00", 1764300000)
            )
        elif how == "wrong_type":
            metrics["latency_ms"] = str(metrics["latency_ms"])
            metrics.pop("ttft_ms", None)
        else:  # ttft_over_latency
            metrics["ttft_ms"] = round(float(metrics["latency_ms"]) * 2 + 1, 3)

    def _pii_value(self, kind: str) -> str:
        rng = self._rng
        if kind == "email":
            return f"user{rng.randint(1, 99_999)}@example.com"
        if kind == "phone":
            return f"+1 415-555-{rng.randint(0, 9999):04d}"
        if kind == "ipv4":
            return f"203.0.113.{rng.randint(1, 254)}"
        return rng.choice(("4111 1111 1111 1111", "5555-5555-5555-4444"))

    def _event_id(self) -> str:
        rng = self._rng
        if rng.random() < 0.8:
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))
        value = (int(self._now.timestamp() * 1000) << 80) | rng.getrandbits(80)
        return "".join(_CROCKFORD[(value >> (5 * i)) & 0x1F] for i in reversed(range(26)))

    def _occurred_at(self) -> str:
        rng = self._rng
        # Mostly the last five minutes; 1% arrive late, up to two days old.
        seconds = rng.uniform(0, 300) if rng.random() < 0.99 else rng.uniform(3600, 48 * 3600)
        moment = self._now - timedelta(seconds=seconds)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(median), sigma)
