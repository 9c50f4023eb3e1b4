"""The demo's last round: every partner's bundle built, pulled, downloaded and verified.

Once the queues are drained, for the current month (still open, hence
``--allow-open-month``):

1. the bundle task runs for every partner, in parallel, as separate processes (as ECS
   tasks would), with the stack's environment (``bundle_task.py``);
2. each partner then acts as a partner would, over HTTP with its own API key: the signing
   key from ``GET /v1/keys/signing`` (it must be the stack's published key), the month in
   ``GET /v1/bundles`` with the digest the task reported, a presigned URL from
   ``GET /v1/bundles/{month}``, the download through that URL (the verifying proxy),
   checked against the announced size and SHA-256;
3. the ZIP is verified offline (``bundle_verify.py``) for that partner and month.

Each step's failure is recorded for the partner as a one-line reason; the demo's verdict
fails on any.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ryuzen_tools.bundle_fetch import (
    FetchError,
    download,
    list_bundles,
    request_bundle,
    signing_key,
)
from ryuzen_tools.bundle_verify import VerificationError, verify_bundle
from ryuzen_tools.local_stack.bundle_task import BundleTaskResult, run_bundle_task


@dataclass
class PartnerBundle:
    """What happened to one partner's bundle."""

    partner: str
    month: str
    task: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    bytes: int | None = None
    sha256: str | None = None
    verified: dict[str, Any] | None = None
    error: str | None = None
    task_s: float = 0.0
    pull_s: float = 0.0

    def to_dict(self, out_dir: Path | None) -> dict[str, Any]:
        """The summary's entry (``path`` relative to ``out_dir`` when it was kept)."""
        path = None
        if self.path is not None and out_dir is not None:
            path = str(self.path.relative_to(out_dir))
        return {
            "ok": self.error is None,
            "month": self.month,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "path": path,
            "events": self.task.get("events"),
            "files": self.task.get("files"),
            "certificates": self.task.get("certificates"),
            "task_s": round(self.task_s, 2),
            "pull_s": round(self.pull_s, 2),
            "verified": self.verified,
            "error": self.error,
        }


@dataclass(frozen=True)
class BundleRound:
    """Every partner's bundle, and how long building and pulling took."""

    month: str
    partners: dict[str, PartnerBundle]
    building_s: float
    pulling_s: float

    @property
    def problems(self) -> list[str]:
        """One line per partner whose bundle did not make it."""
        return [
            f"bundle of {bundle.partner} {bundle.month}: {bundle.error}"
            for bundle in self.partners.values()
            if bundle.error is not None
        ]

    def delivered_sha256(self) -> dict[str, str]:
        """``{partner: sha256}`` of every bundle its task delivered (pulled or not): the
        months whose BundleDelivered event cleanup receives."""
        return {
            partner: str(bundle.task["sha256"])
            for partner, bundle in sorted(self.partners.items())
            if bundle.task.get("status") == "delivered" and bundle.task.get("sha256")
        }

    def reconcile(self, sanitized_by_partner: Mapping[str, int]) -> list[str]:
        """Every sanitized event of a partner is in its bundle exactly once.

        The demo's synthetic events have unique ids and are all received this month, so
        a verified manifest's ``events + duplicates_removed`` must equal what sanitize
        certified for the partner (a month boundary crossed mid-demo would break this).
        """
        problems = []
        for name, bundle in sorted(self.partners.items()):
            if bundle.verified is None:
                continue
            counts = bundle.verified.get("counts") or {}
            events = int(counts.get("events") or 0)
            duplicates = int(counts.get("duplicates_removed") or 0)
            sanitized = sanitized_by_partner.get(name, 0)
            if events + duplicates != sanitized:
                problems.append(
                    f"bundle of {name}: {events} events + {duplicates} duplicates removed != "
                    f"{sanitized} events sanitized for {name}"
                )
        return problems

    def to_dict(self, out_dir: Path | None) -> dict[str, Any]:
        """The demo summary's ``bundles`` section."""
        return {
            "month": self.month,
            "building_s": round(self.building_s, 2),
            "pulling_s": round(self.pulling_s, 2),
            "partners": {
                partner: bundle.to_dict(out_dir)
                for partner, bundle in sorted(self.partners.items())
            },
            "delivered": sum(1 for bundle in self.partners.values() if bundle.error is None),
        }


def bundle_round(
    stage_environment: Mapping[str, str],
    ready: Mapping[str, Any],
    partners: list[str],
    month: str,
    bundle_dir: Path,
    *,
    timeout_s: float = 600.0,
) -> BundleRound:
    """Build every partner's bundle for ``month``, then pull and verify each into ``bundle_dir``."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, len(partners))) as pool:
        tasks = dict(
            zip(
                partners,
                pool.map(
                    lambda partner: run_bundle_task(
                        stage_environment,
                        partner,
                        month,
                        allow_open_month=True,
                        timeout_s=timeout_s,
                    ),
                    partners,
                ),
                strict=True,
            )
        )
    building_s = time.monotonic() - started
    results = {partner: _built(task, month) for partner, task in tasks.items()}
    published_key = Path(ready["public_key"]).read_bytes()
    pulling = time.monotonic()
    with httpx.Client(timeout=60) as client:
        for bundle in results.values():
            if bundle.error is None:
                began = time.monotonic()
                _pull(client, ready, bundle, published_key, bundle_dir)
                bundle.pull_s = time.monotonic() - began
    return BundleRound(month, results, building_s, time.monotonic() - pulling)


def _built(task: BundleTaskResult, month: str) -> PartnerBundle:
    bundle = PartnerBundle(task.partner, month, task=task.summary, task_s=task.seconds)
    if not task.delivered:
        bundle.error = f"the bundle task {task.reason()}"
    return bundle


def _pull(
    client: httpx.Client,
    ready: Mapping[str, Any],
    bundle: PartnerBundle,
    published_key: bytes,
    bundle_dir: Path,
) -> None:
    api, key = ready["api"], ready["partner_keys"][bundle.partner]
    try:
        served_key = signing_key(client, api, key)
        if served_key != published_key:
            bundle.error = "GET /v1/keys/signing does not serve the stack's published key"
            return
        listed = {entry.get("month"): entry for entry in list_bundles(client, api, key)}
        entry = listed.get(bundle.month)
        if entry is None or entry.get("sha256") != bundle.task.get("sha256"):
            bundle.error = "GET /v1/bundles does not list the delivered bundle"
            return
        offer = request_bundle(client, api, key, bundle.month)
        if offer.sha256 != bundle.task.get("sha256") or offer.bytes != bundle.task.get("bytes"):
            bundle.error = "the API's sha256/bytes differ from what the task delivered"
            return
        downloaded = download(client, offer, bundle_dir)
    except FetchError as error:
        bundle.error = str(error)
        return
    bundle.path, bundle.bytes, bundle.sha256 = downloaded.path, downloaded.bytes, downloaded.sha256
    try:
        verified = verify_bundle(
            downloaded.path, served_key, partner=bundle.partner, month=bundle.month
        )
    except VerificationError as error:
        bundle.error = f"verification failed: {error}"
        return
    bundle.verified = verified.to_dict()
    bundle.verified.pop("path", None)
