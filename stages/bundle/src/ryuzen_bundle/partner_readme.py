"""``README.txt``: a short plain-text guide to the bundle for the partner."""

from __future__ import annotations

from ryuzen_bundle.daily_summary import SUMMARY_COLUMNS_DOC
from ryuzen_bundle.manifest import BundleCounts


def readme_text(
    *, partner: str, month: str, counts: BundleCounts, watermark: str | None, certificates: int
) -> str:
    """The README for one partner-month."""
    if counts.events == 0:
        holding = f"This bundle holds no events: nothing was received for {partner} in {month}."
    else:
        holding = (
            f"This bundle holds {counts.events:,} events received for {partner} in {month} "
            f"(UTC), the latest received at {watermark}."
        )
    summary_columns = "\n".join(f"  {name:<38} {text}" for name, text in SUMMARY_COLUMNS_DOC)
    return f"""Ryuzen Telemetry monthly bundle — {partner} — {month}
{"=" * 60}

{holding}

Counts
  events                 {counts.events:,}
  duplicates removed     {counts.duplicates_removed:,} (same event_id sent more than once)
  late events            {counts.late_events:,} (occurred before the month, received in it)
  quarantined            {counts.quarantined:,} (rejected at sanitizing, per the certificates)
  certificates           {certificates:,}

Contents
  data/events/day=DD/part-NNNNN.parquet
      The month's events, one row per event_id, partitioned by receipt day (UTC).
      Columns and types: schema.json. When the same event_id arrived more than
      once, the copy received first is kept. An event retried across a month
      boundary can appear in two months' bundles.
  data/daily_summary.parquet
      Per model and receipt day:
{summary_columns}
  report.html
      The monthly performance report; opens offline in any browser.
  certificates/<batch_id>.dsse.json
      The signed zero-PII certificate of every ingest batch of the month, exactly
      as issued by the sanitize stage.
  schema.json
      The column contract of the event files.
  manifest.json, manifest.dsse.json
      The manifest (an in-toto v1 Statement) and its DSSE envelope, signed with
      ECDSA P-256 / SHA-256.

Verifying
  1. Check the signature of manifest.dsse.json with Ryuzen's public key (DSSE v1,
     payloadType application/vnd.in-toto+json). Its base64 payload is exactly
     manifest.json.
  2. Check the SHA-256 of every file in the ZIP against the manifest's subjects;
     the manifest lists every file except manifest.json and manifest.dsse.json.
  3. Optionally check each certificate's signature the same way.

No user content is ever collected: the events hold metrics, outcomes and
redacted bounded text, never prompts or completions.
"""
