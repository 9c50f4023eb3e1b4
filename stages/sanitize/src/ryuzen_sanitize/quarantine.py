"""PII-safe quarantine records.

A record says which line failed, why, in which field and by which rule, and carries a
keyed hash of the offending value — never the value itself, so quarantine can be read by
operators without exposing what it guards. The raw lines are kept only when the stack
asks for it (``quarantineRawLines``), under their own key and the quarantine bucket's
own KMS key.

Why keyed: the values quarantined are mostly short and structured (phone numbers, SSNs,
card numbers), and a plain SHA-256 of one is reversed by hashing every candidate. The
hash is HMAC-SHA256 under a per-stack secret that only exists inside KMS: the stack's
HMAC key (``HMAC_256``) MACs a fixed label once per container, and that MAC is the
secret. Equal values still give equal hashes within a stack, so an operator with
``kms:GenerateMac`` on the key can tell whether a known value was quarantined, and
nobody without it can. Without a key configured, no value hash is recorded at all.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ryuzen_sanitize.validation import Rejection

# What the stack's KMS HMAC key MACs to give the value-hash secret. Versioned: a new
# label is a new secret, and the records say which one hashed them (``value_hash_key``).
VALUE_HASH_LABEL = b"ryuzen-telemetry/quarantine-value-hash/v1"


@dataclass(frozen=True)
class ValueHasher:
    """HMAC-SHA256 of quarantined values under one secret (never printed)."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < 32:
            raise ValueError("the value-hash secret must be at least 32 bytes")

    def __call__(self, value: str) -> str:
        return hmac.new(self.secret, value.encode("utf-8"), hashlib.sha256).hexdigest()

    @property
    def key_id(self) -> str:
        """A short public name of the secret: records hashed under the same one compare."""
        return hmac.new(self.secret, b"key-id", hashlib.sha256).hexdigest()[:16]


def value_hasher_from_kms(kms: Any, key_id: str) -> ValueHasher:
    """The stack's hasher: the secret is KMS's MAC of ``VALUE_HASH_LABEL`` under ``key_id``.

    One ``GenerateMac`` call per container; the HMAC key itself never leaves KMS.
    """
    response = kms.generate_mac(KeyId=key_id, Message=VALUE_HASH_LABEL, MacAlgorithm="HMAC_SHA_256")
    return ValueHasher(bytes(response["Mac"]))


def record(rejection: Rejection, batch_id: str, hasher: ValueHasher | None) -> dict[str, Any]:
    """The quarantine record of one rejected event (no value hash without a hasher)."""
    value_hash = hasher(rejection.value) if hasher is not None and rejection.value else None
    return {
        "batch_id": batch_id,
        "line": rejection.line,
        "event_id": rejection.event_id,
        "partner": rejection.partner,
        "reason": rejection.reason.value,
        "field": rejection.field,
        "rule": rejection.rule,
        "value_hmac_sha256": value_hash,
        "value_hash_key": hasher.key_id if hasher is not None and value_hash else None,
    }


def _gzip_ndjson(documents: list[dict[str, Any]]) -> bytes:
    text = "".join(
        json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n" for doc in documents
    )
    # mtime=0: the same rejections always give the same bytes, so a redelivery rewrites
    # an identical object.
    return gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)


def records_object(rejections: list[Rejection], batch_id: str, hasher: ValueHasher | None) -> bytes:
    """The gzip NDJSON quarantine object of one RAW batch."""
    return _gzip_ndjson([record(rejection, batch_id, hasher) for rejection in rejections])


def raw_lines_object(rejections: list[Rejection], lines: Mapping[int, str]) -> bytes:
    """The gzip NDJSON of the rejected raw lines themselves ``{line, raw}``."""
    return _gzip_ndjson(
        [{"line": r.line, "raw": lines[r.line]} for r in rejections if r.line in lines]
    )


def counts_by_reason(rejections: list[Rejection], partner: str | None = None) -> dict[str, int]:
    """How many rejections per reason code (for one partner, or all)."""
    chosen = [r for r in rejections if partner is None or r.partner == partner]
    return dict(sorted(Counter(r.reason.value for r in chosen).items()))


def counts_by_rule(rejections: list[Rejection], partner: str | None = None) -> dict[str, int]:
    """How many PII-driven rejections per scrubber rule id."""
    chosen = [r for r in rejections if r.rule and (partner is None or r.partner == partner)]
    return dict(sorted(Counter(r.rule for r in chosen if r.rule).items()))
