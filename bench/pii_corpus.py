"""A seeded, labelled corpus of TelemetryEvent v1 events for the sanitize benchmark.

``generate(n, seed)`` returns ``[(event_dict, Labels), ...]``: about 2% of the events
carry PII (every kind the scrubber knows, planted in realistic sentences in
``outcome.error_message`` or a string ``attributes`` value), about 3% carry only hard
negatives ("decoys": timestamps, UUIDs, versions, build ids, request ids, latencies,
paths ...), the rest are ordinary error and delivery events. Every planted value is
recorded, so recall can be measured per kind and precision per event.

The same seed always gives the same corpus (one ``random.Random``; no global state).
"""

from __future__ import annotations

import base64
import json
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

PII_RATE = 0.02
DECOY_RATE = 0.03

# Partner prefixes from Pulumi.dev.yaml (acme/, nimbus/, nimbus-labs/, orbital/).
MODELS = (
    ("acme/titan-large", "2024-06-01"),
    ("acme/titan-mini", "2025-01-15"),
    ("nimbus/cirrus-7b", "1.4.2"),
    ("nimbus-labs/stratus-70b", "0.9.0-rc.1"),
    ("orbital/apogee-v2", "2025.03"),
)
REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-2", "eu-central-1")
SDKS = (("ryuzen-python", "1.8.3"), ("ryuzen-node", "2.1.0"), ("ryuzen-go", "0.7.12"))


@dataclass(frozen=True)
class Labels:
    """What was planted in one event.

    ``rules``: the rule ids whose PII is in the event; ``decoy``: it carries hard
    negatives; ``planted``: ``(rule id, literal)`` pairs, each literal being the exact
    text that must not survive scrubbing.
    """

    rules: frozenset[str]
    decoy: bool
    planted: tuple[tuple[str, str], ...]


# --- value makers (each returns the literal that must be redacted) -------------------

FIRST = (
    "Maria", "Omar", "Wei", "Aisha", "John", "Priya", "Lukas", "Sofia", "Mateo", "Chloé",
    "Hiroshi", "Fatima", "Liam", "Zoë", "Björn", "Ana", "Kwame", "Elena", "Jean-Luc", "Siobhan",
)  # fmt: skip
LAST = (
    "Garcia", "Khan", "Zhang", "Okafor", "Smith", "Patel", "Müller", "Rossi", "Fernández",
    "O'Brien", "Tanaka", "Haddad", "Nguyen", "van der Berg", "Kowalski", "Dubois", "Silva",
    "McDonald", "Johansson", "Mensah",
)  # fmt: skip
EMAIL_DOMAINS = ("example.com", "mail.example.org", "corp.example.co.uk", "example.de")


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _alnum(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def make_email(rng: random.Random) -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = (
        rng.choice(["{f}.{l}", "{f}{n}", "{fi}{l}", "{f}_{l}+alerts"])
        .format(f=first, l=last, fi=first[0], n=rng.randint(1, 99))
        .lower()
    )
    local = "".join(c for c in local if c.isascii() and (c.isalnum() or c in "._+"))
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def make_phone(rng: random.Random) -> str:
    area, exch, line = rng.randint(201, 989), rng.randint(200, 999), _digits(rng, 4)
    shapes = [
        f"+1 ({area}) {exch}-{line}",
        f"+1-{area}-{exch}-{line}",
        f"+1.{area}.{exch}.{line}",
        f"+1{area}{exch}{line}",
        f"({area}) {exch}-{line}",
        f"{area}-{exch}-{line}",
        f"{area}.{exch}.{line}",
        f"1-{area}-{exch}-{line}",
        f"+44 20 {_digits(rng, 4)} {_digits(rng, 4)}",
        f"+44 (0)20 {_digits(rng, 4)} {_digits(rng, 4)}",
        f"+49 30 {_digits(rng, 6)}",
        f"+49-89-{_digits(rng, 7)}",
        f"+33 1 {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)}",
        f"+81 3-{_digits(rng, 4)}-{_digits(rng, 4)}",
        f"+91 98{_digits(rng, 3)} {_digits(rng, 5)}",
        f"+55 11 9{_digits(rng, 4)}-{_digits(rng, 4)}",
    ]
    return rng.choice(shapes)


def make_ipv4(rng: random.Random) -> str:
    first = rng.choice([10, 172, 192, rng.randint(11, 126), rng.randint(128, 223)])
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def make_ipv6(rng: random.Random) -> str:
    groups = [_hex(rng, 4) for _ in range(8)]
    shapes = [
        ":".join(groups),
        f"2001:db8::{_hex(rng, 4)}:{_hex(rng, 3)}",
        f"fe80::{_hex(rng, 3)}:{_hex(rng, 4)}:{_hex(rng, 4)}:{_hex(rng, 4)}",
        f"[2001:db8:{_hex(rng, 2)}::{rng.randint(1, 999)}]:{rng.randint(1024, 65535)}",
        f"2a02:{_hex(rng, 4)}:{_hex(rng, 4)}::{_hex(rng, 2)}",
        f"::ffff:10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
    ]
    return rng.choice(shapes)


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + _digits(rng, length - len(prefix) - 1)
    for check in string.digits:
        candidate = body + check
        total = 0
        for i, ch in enumerate(reversed(candidate)):
            v = int(ch) * (2 if i % 2 else 1)
            total += v - 9 if v > 9 else v
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


def make_card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("37", 15),
                                 ("6011", 16), ("4", 13)])  # fmt: skip
    number = _luhn_complete(prefix, length, rng)
    sep = rng.choice(["", " ", "-"])
    if not sep or length == 13:
        return number
    if length == 15:
        return sep.join([number[:4], number[4:10], number[10:]])
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


def make_ssn(rng: random.Random) -> str:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


_IBAN_SHAPES = {"DE": "8n", "GB": "4a14n", "FR": "23n", "NL": "4a10n", "ES": "20n", "IT": "1a22n"}


def make_iban(rng: random.Random) -> str:
    country = rng.choice(list(_IBAN_SHAPES))
    shape = _IBAN_SHAPES[country]
    bban = ""
    for count, kind in ((int(part[:-1]), part[-1]) for part in _split_shape(shape)):
        alphabet = string.ascii_uppercase if kind == "a" else string.digits
        bban += "".join(rng.choice(alphabet) for _ in range(count))
    if country == "DE":
        bban += _digits(rng, 10)
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    compact = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        return compact
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def _split_shape(shape: str) -> list[str]:
    parts, current = [], ""
    for ch in shape:
        current += ch
        if ch.isalpha():
            parts.append(current)
            current = ""
    return parts


def make_aws_key(rng: random.Random) -> str:
    return rng.choice(["AKIA", "ASIA"]) + _alnum(rng, 16, string.ascii_uppercase + "234567")


def _b64url(data: dict[str, object]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_jwt(rng: random.Random) -> str:
    header = _b64url({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"})
    payload = _b64url({"sub": _hex(rng, 12), "iat": rng.randint(1_700_000_000, 1_800_000_000)})
    return f"{header}.{payload}.{_alnum(rng, 43, string.ascii_letters + string.digits + '-_')}"


def make_api_token(rng: random.Random) -> str:
    return rng.choice([
        "sk-" + _alnum(rng, 48),
        "sk-proj-" + _alnum(rng, 56, string.ascii_letters + string.digits + "_-"),
        "ghp_" + _alnum(rng, 36),
        f"xoxb-{_digits(rng, 12)}-{_digits(rng, 13)}-{_alnum(rng, 24)}",
        "glpat-" + _alnum(rng, 20),
    ])  # fmt: skip


def make_bearer_token(rng: random.Random) -> str:
    return _alnum(rng, rng.randint(24, 64), string.ascii_letters + string.digits + "-_.")


def make_basic_credentials(rng: random.Random) -> str:
    user = rng.choice(["svc-export", "maria", "admin"])
    return base64.b64encode(f"{user}:{_alnum(rng, 14)}".encode()).decode()


def make_secret(rng: random.Random) -> str:
    return rng.choice([_hex(rng, 32), _alnum(rng, 40), _alnum(rng, 24) + "/" + _alnum(rng, 15)])


def make_mac(rng: random.Random) -> str:
    octets = [_hex(rng, 2) for _ in range(6)]
    if rng.random() < 0.5:
        octets = [o.upper() for o in octets]
    shape = rng.choice(["colon", "dash", "cisco"])
    if shape == "colon":
        return ":".join(octets)
    if shape == "dash":
        return "-".join(octets)
    joined = "".join(octets).lower()
    return ".".join(joined[i : i + 4] for i in range(0, 12, 4))


def make_name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def make_address(rng: random.Random) -> str:
    n = rng.randint(1, 2500)
    return rng.choice([
        f"{n} Pennsylvania Avenue NW, Washington, DC 20500",
        f"{n} Evergreen Terrace",
        f"{n}B Baker Street",
        f"{n} Fifth Ave, Suite {rng.randint(100, 4000)}, New York, NY 10118",
        f"{n} Oak St, Springfield, IL 62704",
        f"{n} Martin Luther King Jr Blvd",
        f"{n} W Main Street Apt {rng.randint(1, 40)}",
        f"{rng.randint(1, 10)} Downing Street, London SW1A 2AA",
        f"Hauptstraße {rng.randint(1, 200)}, 10115 Berlin",
        f"Berliner Straße {rng.randint(1, 200)}a",
        f"Kerkstraat {rng.randint(1, 300)}, 1017 GC Amsterdam",
        f"{rng.randint(1, 99)} rue de la Paix, 75002 Paris",
        f"Calle Mayor {rng.randint(1, 99)}, 28013 Madrid",
        f"Via Roma {rng.randint(1, 99)}, 00184 Roma",
        f"Rua Augusta {rng.randint(1, 300)}, 1100-053 Lisboa",
        f"Storgatan {rng.randint(1, 80)}, 111 22 Stockholm",
    ])  # fmt: skip


def make_url_credentials(rng: random.Random) -> str:
    user = rng.choice(["admin", "svc_export", "maria.garcia", "deploy"])
    return f"{user}:{_alnum(rng, rng.randint(8, 20))}"


def make_url_token(rng: random.Random) -> str:
    return _alnum(rng, rng.randint(20, 64), string.ascii_letters + string.digits + "-_")


# (rule id, value maker, sentence templates with {v}); a template may add context
# around the value (a port, a scheme) that is not itself the planted literal.
PII_KINDS: tuple[tuple[str, Callable[[random.Random], str], tuple[str, ...]], ...] = (
    ("EMAIL", make_email, (
        "delivery webhook rejected for {v}",
        "notify {v} failed: mailbox full",
        "invalid recipient <{v}> in batch",
        "SMTP 550 user unknown ({v})",
    )),
    ("PHONE", make_phone, (
        "SMS fallback to {v} failed",
        "callback number {v} unreachable",
        "voice OTP to {v} timed out after 30000ms",
        "phone: {v}",
    )),
    ("IPV4", make_ipv4, (
        "upstream refused connection from {v}:8443",
        "client_ip={v} rate limited",
        "X-Forwarded-For: {v} rejected by WAF",
        "TLS handshake failed with {v}",
    )),
    ("IPV6", make_ipv6, (
        "upstream refused connection from {v}",
        "client address {v} blocked",
        "dial tcp {v}: connection reset by peer",
    )),
    ("CREDIT_CARD", make_card, (
        "payment declined for card {v}",
        "tokenization failed: pan={v}",
        "card {v} expired",
    )),
    ("SSN", make_ssn, ("kyc check failed for ssn {v}", "identity mismatch: {v} on file")),
    ("IBAN", make_iban, ("SEPA payout to {v} rejected", "invalid beneficiary account {v}")),
    ("AWS_ACCESS_KEY", make_aws_key, (
        "InvalidAccessKeyId: The AWS Access Key Id {v} does not exist",
        "assume role failed for key {v}",
    )),
    ("JWT", make_jwt, ("token verification failed: {v}", "expired id_token {v}")),
    ("API_TOKEN", make_api_token, (
        "401 from provider: invalid api key {v}",
        "upstream auth failed with {v}",
        "leaked credential {v} revoked",
    )),
    ("BEARER_TOKEN", make_bearer_token, (
        "Authorization: Bearer {v} rejected",
        "401 Unauthorized (Bearer {v})",
    )),
    ("BEARER_TOKEN", make_basic_credentials, (
        "proxy auth failed: Authorization: Basic {v}",
    )),
    ("SECRET", make_secret, (
        "token={v} expired",
        "api_key: {v} is invalid",
        "client_secret={v} rotated",
        "aws_secret_access_key={v}",
    )),
    ("MAC_ADDRESS", make_mac, ("device {v} not registered", "DHCP lease for {v} expired")),
    ("PERSON_NAME", make_name, (
        "retry for user {v} failed",
        "customer: {v}",
        "refund requested by {v}",
        "escalated on behalf of customer {v}",
        "cardholder {v} declined 3DS",
    )),
    ("STREET_ADDRESS", make_address, (
        "shipping label failed for {v}",
        "geocode lookup failed: {v}",
        "address validation error ({v})",
    )),
    ("URL_CREDENTIALS", make_url_credentials, (
        "connect failed: postgres://{v}@db-3.internal:5432/app",
        "pull from https://{v}@registry.example.com/v2/ denied",
    )),
    ("URL_TOKEN", make_url_token, (
        "GET https://api.example.com/v1/export?token={v}&format=csv returned 403",
        "presigned URL expired: https://bucket.s3.amazonaws.com/o.json?X-Amz-Signature={v}",
        "callback https://hooks.example.com/cb?id=42&access_token={v} failed",
    )),
)  # fmt: skip
PII_RULE_IDS = tuple(dict.fromkeys(kind for kind, _, _ in PII_KINDS))

# --- decoys and ordinary messages ----------------------------------------------------


def _decoy(rng: random.Random) -> str:
    u = uuid.UUID(int=rng.getrandbits(128), version=4)
    choices = [
        f"retry at 2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:35:14Z",
        f"scheduled 2026-11-28 {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:14",
        f"request {u} failed",
        f"sdk 1.{rng.randint(0, 40)}.{rng.randint(0, 9)} deprecated",
        "client v2.0.0-rc.1 incompatible",
        f"build 10.0.19045.{rng.randint(1000, 9999)}",
        f"version 1.0.{rng.randint(0, 9)}.{rng.randint(10, 99)}",
        f"agent v1.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 99)} outdated",
        f"req_{_hex(rng, 16)} timed out",
        f"trace {_hex(rng, 32)} span {_hex(rng, 16)}",
        f"upstream latency {rng.randint(100, 9999)}ms exceeds budget",
        f"p99={rng.randint(100, 999)}.{rng.randint(0, 9)} p50={rng.randint(10, 99)}.5",
        "model titan-large-2024-06-01 unavailable",
        "POST /v1/chat/completions returned HTTP 503",
        f"listening on port {rng.randint(1024, 65535)}",
        f"queue wait 00:0{rng.randint(0, 9)}:{rng.randint(10, 59)}",
        f"batch of {rng.randint(1, 9)},{rng.randint(100, 999)} tokens truncated",
        f"max_tokens={rng.choice([256, 1024, 4096, 100000])} exceeds context",
        f"token limit exceeded: {rng.randint(8000, 9000)} > 8192",
        "user admin not found",
        "customer: unknown tier",
        "Bearer token expired",
        f"epoch {rng.randint(1_700_000_000_000, 1_799_999_999_999)} out of range",
        f"commit {_hex(rng, 40)}",
        "std::vector allocation failed in add::cafe",
        "Chrome/120.0.6099.109 unsupported",
        "bound to 0.0.0.0:8080 and 127.0.0.1:9090",
        f"retrying in {rng.randint(1, 60)}s (attempt {rng.randint(1, 5)}/5)",
        f"arn:aws:lambda:eu-west-1:111122223333:function:sanitize-{_hex(rng, 6)}",
        "netmask 255.255.255.0 applied",
        f"idempotency window 00:15:00 for batch {rng.randint(10_000, 99_999)}",
        "sk-learn-compat-layer-v2 not installed",
        f"cache key user:{rng.randint(1000, 9999)}:profile evicted",
        f"shard 3 of 12, offset {rng.randint(10**6, 10**9)}",
    ]
    return rng.choice(choices)


ORDINARY = (
    "model overloaded, retry later",
    "context length exceeded",
    "upstream timeout",
    "rate limit exceeded for tier pro",
    "stream closed by client",
    "content filter triggered",
    "invalid request: temperature must be <= 2",
    "service unavailable",
    "tool call schema mismatch",
    "webhook endpoint returned 500",
    "connection reset",
    "TLS certificate expired for hooks.example.com",
)


def _ordinary_attributes(rng: random.Random) -> dict[str, object]:
    attributes: dict[str, object] = {
        "route": rng.choice(["/v1/chat/completions", "/v1/embeddings", "/v1/responses"]),
        "tier": rng.choice(["free", "pro", "enterprise"]),
    }
    if rng.random() < 0.5:
        attributes["request_id"] = f"req_{_hex(rng, 16)}"
    if rng.random() < 0.3:
        attributes["stream"] = rng.random() < 0.5
    if rng.random() < 0.3:
        attributes["shard"] = rng.randint(0, 63)
    return attributes


def _event(rng: random.Random, start: datetime, index: int) -> dict[str, object]:
    model_id, model_version = rng.choice(MODELS)
    sdk, sdk_version = rng.choice(SDKS)
    occurred = start + timedelta(seconds=index * 3 + rng.randint(0, 2))
    kind = "inference" if rng.random() < 0.8 else "delivery"
    status = rng.choice(["ok", "ok", "error", "error", "timeout", "rate_limited"])
    latency = round(rng.uniform(20, 30_000), 1)
    event: dict[str, object] = {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "schema_version": "1.0",
        "kind": kind,
        "occurred_at": occurred.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": {"id": model_id, "version": model_version},
        "region": rng.choice(REGIONS),
        "outcome": {"status": status},
        "client": {"sdk": sdk, "sdk_version": sdk_version},
        "attributes": _ordinary_attributes(rng),
    }
    if kind == "inference":
        event["metrics"] = {
            "latency_ms": latency,
            "ttft_ms": round(latency * rng.uniform(0.05, 0.9), 1),
            "input_tokens": rng.randint(1, 50_000),
            "output_tokens": rng.randint(0, 4_000),
            "retries": rng.randint(0, 3),
        }
    else:
        event["delivery"] = {
            "channel": rng.choice(["sync", "stream", "webhook"]),
            "attempts": rng.randint(1, 5),
            "delivered": status == "ok",
        }
    if status != "ok":
        outcome = event["outcome"]
        assert isinstance(outcome, dict)
        outcome["http_status"] = rng.choice([429, 500, 502, 503, 504])
        outcome["error_code"] = rng.choice(["upstream_error", "timeout", "rate_limited"])
        outcome["error_message"] = rng.choice(ORDINARY)
    return event


_FREE_TEXT_KEYS = ("note", "retry_reason", "upstream_detail", "debug")


def _place(rng: random.Random, event: dict[str, object], sentence: str, first: bool) -> None:
    """Put ``sentence`` in the error message (70%) or a free string attribute value.

    The first sentence planted in an event may replace an ordinary message or follow it;
    later ones are always appended, so nothing planted is overwritten.
    """
    outcome = event["outcome"]
    attributes = event["attributes"]
    assert isinstance(outcome, dict) and isinstance(attributes, dict)
    free_keys = [key for key in _FREE_TEXT_KEYS if key not in attributes]
    if rng.random() < 0.7 or not free_keys:
        outcome["status"] = "error"
        outcome.setdefault("http_status", 502)
        outcome.setdefault("error_code", "upstream_error")
        previous = outcome.get("error_message")
        keep = previous and (not first or rng.random() < 0.3)
        message = f"{previous}; {sentence}" if keep else sentence
        outcome["error_message"] = message
    else:
        attributes[rng.choice(free_keys)] = sentence


def generate(n: int, seed: int) -> list[tuple[dict[str, object], Labels]]:
    """``n`` TelemetryEvent v1 dicts with their labels, deterministic in ``seed``."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    corpus: list[tuple[dict[str, object], Labels]] = []
    for index in range(n):
        event = _event(rng, start, index)
        draw = rng.random()
        planted: list[tuple[str, str]] = []
        decoy = False
        if draw < PII_RATE:
            kinds = [rng.choice(PII_KINDS)]
            if rng.random() < 0.1:
                kinds.append(rng.choice(PII_KINDS))
            for rule_id, make, templates in kinds:
                value = make(rng)
                _place(rng, event, rng.choice(templates).format(v=value), first=not planted)
                planted.append((rule_id, value))
        elif draw < PII_RATE + DECOY_RATE:
            decoy = True
            for count in range(rng.randint(1, 2)):
                _place(rng, event, _decoy(rng), first=count == 0)
        labels = Labels(
            rules=frozenset(rule_id for rule_id, _ in planted),
            decoy=decoy,
            planted=tuple(planted),
        )
        corpus.append((event, labels))
    return corpus


def free_texts(event: dict[str, object]) -> list[str]:
    """The bounded free-text fields the scrubber sees: error message, string attributes."""
    texts: list[str] = []
    outcome = event.get("outcome")
    if isinstance(outcome, dict) and isinstance(outcome.get("error_message"), str):
        texts.append(outcome["error_message"])
    attributes = event.get("attributes")
    if isinstance(attributes, dict):
        texts.extend(value for value in attributes.values() if isinstance(value, str))
    return texts
