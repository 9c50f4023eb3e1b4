"""PII canaries of every scrubber rule, and events that plant them everywhere text can go.

Each canary is a value one rule of ``ryuzen_sanitize.scrubber.rules`` detects (the kinds
and shapes of ``bench/pii_corpus.py``), carrying a per-run token where the value allows
one, so a hit can only come from this run. Free-text canaries go into every free-text
position (``outcome.error_message`` and string ``attributes`` values), where sanitize
redacts them; identifier canaries go into identifier positions (``model.id``,
``model.version``, ``region``, ``outcome.error_code``, ``client.sdk``,
``client.sdk_version``, an attribute key, a numeric attribute), where a hit quarantines
the whole event as ``pii_in_identifier``.

``needles()`` is what must never be found outside quarantine: each canary literal and
its distinctive fragments, each as is, lower case and JSON-escaped.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# One model per partner of Pulumi.dev.yaml: every partner gets sanitized rows (a bundle).
PARTNER_MODELS = {
    "acme": "acme/titan-large",
    "nimbus-ai": "nimbus/cirrus-7b",
    "orbital": "orbital/apogee-v2",
}


@dataclass(frozen=True)
class TextCanary:
    """A free-text canary: ``sentence`` holds ``literal``; ``fragments`` are parts of it
    that must not survive either (a partial redaction would leave them)."""

    rule: str
    literal: str
    sentence: str
    fragments: tuple[str, ...] = ()


@dataclass(frozen=True)
class IdentifierCanary:
    """A canary in an identifier position: the event must be quarantined for ``rule``."""

    name: str
    field: str  # the quarantine record's field path
    rule: str
    value: str | int
    fragments: tuple[str, ...] = ()


def _luhn(prefix: str, length: int) -> str:
    body = prefix + "".join(secrets.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        digits = [int(ch) for ch in reversed(body + check)]
        doubled = [
            d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(digits)
        ]
        total = sum(doubled)
        if total % 10 == 0:
            return body + check
    raise AssertionError("unreachable")


def _b64url(document: dict[str, Any]) -> str:
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class CanarySet:
    """Every canary of one run (a fresh token and card numbers each time)."""

    def __init__(self) -> None:
        alphabet = string.ascii_lowercase + string.digits
        # Starts with letters: the token alone can never look like a number or an id.
        self.token = "qz" + "".join(secrets.choice(alphabet) for _ in range(10))
        tok, upper = self.token, self.token.upper()
        card = _luhn("4", 16)
        self.card_number = int(_luhn("4", 16))  # < 2**53: a valid integer attribute
        basic = base64.b64encode(f"svc-export:{tok}Pw".encode()).decode()
        jwt = (
            f"{_b64url({'alg': 'HS256', 'typ': 'JWT'})}."
            f"{_b64url({'sub': tok, 'iat': 1764300000})}.{tok}Sig0xQ9v2LmN7pR4tW"
        )
        self.text = (
            TextCanary("EMAIL", f"ryz.{tok}@example.org", "delivery webhook rejected for {v}"),
            TextCanary("PHONE", "+44 20 7946 0958", "SMS fallback to {v} failed", ("7946 0958",)),
            TextCanary("IPV4", "203.0.113.58", "upstream refused connection from {v}:8443"),
            TextCanary("IPV6", "2001:db8:4f2a::9c1e", "dial tcp {v}: connection reset by peer"),
            TextCanary(
                "CREDIT_CARD",
                " ".join(card[i : i + 4] for i in range(0, 16, 4)),
                "payment declined for card {v}",
                (card,),
            ),
            TextCanary("SSN", "536-22-8714", "kyc check failed for ssn {v}"),
            TextCanary(
                "IBAN",
                "DE89 3704 0044 0532 0130 00",
                "SEPA payout to {v} rejected",
                ("DE89370400440532013000", "0532 0130"),
            ),
            TextCanary(
                "AWS_ACCESS_KEY",
                f"AKIA{upper}ABCD",
                "InvalidAccessKeyId: The AWS Access Key Id {v} does not exist",
            ),
            TextCanary("JWT", jwt, "token verification failed: {v}", (jwt.split(".")[1],)),
            TextCanary(
                "API_TOKEN", f"ghp_{tok}A1b2C3d4E5f6G7h8I9j0K1l2", "upstream auth failed with {v}"
            ),
            TextCanary("BEARER_TOKEN", f"{tok}.Bearer-7Xk2", "Authorization: Bearer {v} rejected"),
            TextCanary("BEARER_TOKEN", basic, "proxy auth failed: Authorization: Basic {v}"),
            TextCanary("SECRET", f"{tok}Zq81xLw0", "client_secret={v} rotated"),
            TextCanary("MAC_ADDRESS", "3c:22:fb:9a:41:7e", "device {v} not registered"),
            TextCanary(
                "PERSON_NAME", "Quillon Vexmarch", "retry for user {v} failed", ("Vexmarch",)
            ),
            TextCanary(
                "STREET_ADDRESS", "1742 Quenby Street", "shipping label failed for {v}", ("Quenby",)
            ),
            TextCanary(
                "STREET_ADDRESS",
                "Zollernstraße 17, 10115 Berlin",
                "geocode lookup failed: {v}",
                ("Zollernstraße",),
            ),
            TextCanary(
                "URL_CREDENTIALS",
                f"svc_export:{tok}Pw9",
                "connect failed: postgres://{v}@db-3.internal:5432/app",
            ),
            TextCanary(
                "URL_TOKEN",
                f"{tok}Xy72LqTk",
                "GET https://api.example.com/v1/export?token={v}&format=csv returned 403",
            ),
        )
        self.identifiers = (
            IdentifierCanary("model-id", "model.id", "SSN", "acme/536-22-8716"),
            IdentifierCanary("model-version", "model.version", "PHONE", "415-555-0132"),
            IdentifierCanary("region", "region", "SSN", "536-22-8715"),
            IdentifierCanary(
                "error-code", "outcome.error_code", "AWS_ACCESS_KEY", f"AKIA{upper}WXYZ"
            ),
            IdentifierCanary("sdk", "client.sdk", "PHONE", "415-555-0177"),
            IdentifierCanary("sdk-version", "client.sdk_version", "IPV4", "198.51.100.23"),
            IdentifierCanary("attribute-key", "attributes.*", "CREDIT_CARD", f"card.{card}"),
            IdentifierCanary("numeric-attribute", "attributes.*", "CREDIT_CARD", self.card_number),
        )

    def free_text_events(self) -> list[dict[str, Any]]:
        """Per canary and partner: one event with it in ``error_message``, one with it in
        string attribute values (one key of their own, and beside a plain value)."""
        events = []
        for index, canary in enumerate(self.text):
            sentence = canary.sentence.format(v=canary.literal)
            model = list(PARTNER_MODELS.values())[index % len(PARTNER_MODELS)]
            events.append(
                event(
                    model,
                    outcome={
                        "status": "error",
                        "http_status": 502,
                        "error_code": "upstream_error",
                        "error_message": sentence,
                    },
                )
            )
            events.append(
                event(
                    model,
                    attributes={"tier": "pro", "upstream_detail": sentence, "note": sentence},
                )
            )
        # Every partner gets at least one clean event as well.
        events += [event(model) for model in PARTNER_MODELS.values()]
        return events

    def identifier_events(self) -> dict[str, dict[str, Any]]:
        """One event per identifier canary, by canary name."""
        events = {}
        for canary in self.identifiers:
            document = event("acme/titan-large")
            value = canary.value
            if canary.field == "model.id":
                document["model"] = {"id": value, "version": "2026-10-15"}
            elif canary.field == "model.version":
                document["model"] = {"id": "acme/titan-large", "version": value}
            elif canary.field == "region":
                document["region"] = value
            elif canary.field == "outcome.error_code":
                document["outcome"] = {"status": "error", "http_status": 500, "error_code": value}
            elif canary.field == "client.sdk":
                document["client"] = {"sdk": value, "sdk_version": "1.4.2"}
            elif canary.field == "client.sdk_version":
                document["client"] = {"sdk": "ryuzen-py", "sdk_version": value}
            elif isinstance(value, int):
                document["attributes"] = {"tier": "pro", "order_id": value}
            else:
                document["attributes"] = {"tier": "pro", str(value): True}
            events[canary.name] = document
        return events

    def identifier_text(self, canary: IdentifierCanary) -> str:
        """The text form the scrubber checks and the quarantine record hashes."""
        return str(canary.value)

    def needles(self) -> list[str]:
        """Every string that must not be found outside quarantine, in its obvious encodings."""
        values: list[str] = [self.token]
        for text in self.text:
            values += [text.literal, *text.fragments]
        for identifier in self.identifiers:
            values += [str(identifier.value), *identifier.fragments]
        values.append(str(self.card_number))
        return encodings(values)


def encodings(values: list[str]) -> list[str]:
    """Each value as is, lower case and JSON-escaped (both ASCII-only and not), deduplicated."""
    found: dict[str, None] = {}
    for value in values:
        for variant in (
            value,
            value.lower(),
            json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1],
            json.dumps(value.lower())[1:-1],
        ):
            found.setdefault(variant, None)
    return list(found)


def event(model_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid v1 inference event of ``model_id`` (occurred a minute ago)."""
    occurred = datetime.now(UTC) - timedelta(minutes=1)
    document: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "schema_version": "1.0",
        "kind": "inference",
        "occurred_at": occurred.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "model": {"id": model_id, "version": "2026-10-15"},
        "region": "eu-west-1",
        "metrics": {"latency_ms": 812.5, "ttft_ms": 120.0, "input_tokens": 512, "output_tokens": 8},
        "outcome": {"status": "ok", "http_status": 200},
        "client": {"sdk": "ryuzen-py", "sdk_version": "1.4.2"},
        "attributes": {"tier": "pro"},
    }
    document.update(overrides)
    return document
