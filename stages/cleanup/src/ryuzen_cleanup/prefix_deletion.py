"""Deleting every object under an S3 prefix, and proving afterwards that none is left.

``DeleteObjects`` takes at most 1,000 keys and answers 200 even when some keys failed:
the failures come back in the response's ``Errors``. Whole-call failures (throttling,
5xx) are retried by botocore's standard retry mode in the client; the per-key errors are
retried here, a bounded number of times with exponential backoff, and then the deletion
fails loudly instead of reporting success over objects that still exist.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

MAX_KEYS_PER_DELETE = 1000  # DeleteObjects' own limit

logger = Logger(service="ryuzen-cleanup", child=True)


class DeletionIncomplete(RuntimeError):  # noqa: N818 -- reads as what happened
    """Some keys still failed to delete after every attempt (retrying the event may help)."""


class PrefixNotEmpty(RuntimeError):  # noqa: N818 -- reads as what happened
    """A prefix still holds objects after its deletion (retrying the event deletes them)."""


@dataclass(frozen=True)
class Prefix:
    """One prefix of one bucket. Never empty and always ending in ``/``: a prefix of ``""``
    (or of ``"sanitized/partner=acme"``, which also matches ``acme-eu``) would reach
    objects that are not this partner-month's."""

    bucket: str
    prefix: str

    def __post_init__(self) -> None:
        if not self.bucket or not self.prefix.endswith("/") or self.prefix == "/":
            raise ValueError("a deletion prefix names a bucket and a non-empty '.../' prefix")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently the keys a ``DeleteObjects`` response reports are retried."""

    attempts: int = 5  # including the first call
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): 0.2, 0.4, 0.8 ..."""
        return float(min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))


class KeyDigest:
    """SHA-256 over the sorted, newline-joined list of keys, fed one key at a time.

    Keys must arrive in ascending order — S3 lists in UTF-8 binary order, the same order
    as Python's ``sorted`` for ``str`` — so a month's key list never has to be held in
    memory. A key out of order raises rather than produce a digest of some other list.
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._last: str | None = None
        self.count = 0

    def add(self, key: str) -> None:
        """Append ``key``; it must sort after every key added before."""
        if self._last is not None and key <= self._last:
            raise ValueError("keys reached the digest out of order")
        if self.count:
            self._hash.update(b"\n")
        self._hash.update(key.encode("utf-8"))
        self._last = key
        self.count += 1

    def hexdigest(self) -> str:
        """The digest of the keys added so far (of ``b""`` when none)."""
        return self._hash.hexdigest()


def delete_keys(s3: Any, bucket: str, keys: Sequence[str], policy: RetryPolicy) -> None:
    """Delete up to 1,000 ``keys`` of ``bucket``, retrying those reported in ``Errors``.

    Raises DeletionIncomplete (naming the error codes and how many keys, never the keys)
    when some still fail after ``policy.attempts`` calls.
    """
    if len(keys) > MAX_KEYS_PER_DELETE:
        raise ValueError(f"DeleteObjects takes at most {MAX_KEYS_PER_DELETE} keys")
    pending = list(keys)
    codes: list[str] = []
    for attempt in range(1, policy.attempts + 1):
        if not pending:
            return
        response = s3.delete_objects(
            Bucket=bucket,
            # Quiet: the response lists only the failures, which is all this needs.
            Delete={"Objects": [{"Key": key} for key in pending], "Quiet": True},
        )
        errors = response.get("Errors") or []
        failed = {error.get("Key") for error in errors}
        pending = [key for key in pending if key in failed]
        if not pending:
            return
        codes = sorted({str(error.get("Code", "unknown")) for error in errors})
        logger.warning(
            "DeleteObjects reported per-key errors",
            extra={"bucket": bucket, "failed": len(pending), "codes": codes, "attempt": attempt},
        )
        if attempt < policy.attempts:
            policy.sleep(policy.delay(attempt))
    raise DeletionIncomplete(
        f"{len(pending)} object(s) of {bucket} still failed after {policy.attempts} "
        f"DeleteObjects attempts ({', '.join(codes)})"
    )


def delete_prefix(s3: Any, target: Prefix, digest: KeyDigest, policy: RetryPolicy) -> int:
    """Delete every object under ``target``, a listed page (<= 1,000 keys) at a time.

    Each page is fully deleted before the next is listed (S3's continuation token points
    past the last key listed, so deleting the page does not disturb it) and its keys go
    to ``digest`` in listing order. Returns how many objects were deleted.
    """
    paginator = s3.get_paginator("list_objects_v2")
    deleted = 0
    pages = paginator.paginate(
        Bucket=target.bucket,
        Prefix=target.prefix,
        PaginationConfig={"PageSize": MAX_KEYS_PER_DELETE},
    )
    for page in pages:
        keys = [str(item["Key"]) for item in page.get("Contents", [])]
        # S3 only lists keys under the prefix; checked anyway, as a key outside it is
        # exactly the mistake this stage must never make.
        if any(not key.startswith(target.prefix) for key in keys):
            raise RuntimeError(f"listing of {target.bucket} returned a key outside the prefix")
        if not keys:
            continue
        delete_keys(s3, target.bucket, keys, policy)
        for key in keys:
            digest.add(key)
        deleted += len(keys)
    return deleted


def is_empty(s3: Any, target: Prefix) -> bool:
    """True when a fresh listing finds no object under ``target``."""
    listing = s3.list_objects_v2(Bucket=target.bucket, Prefix=target.prefix, MaxKeys=1)
    return not listing.get("Contents")


def prove_empty(s3: Any, targets: Iterable[Prefix]) -> None:
    """List each prefix again; raise PrefixNotEmpty naming those that still hold objects."""
    still_full = [f"{t.bucket}/{t.prefix}" for t in targets if not is_empty(s3, t)]
    if still_full:
        raise PrefixNotEmpty(f"objects remain under {', '.join(still_full)}")
