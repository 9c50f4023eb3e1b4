"""Sanitize benchmark: ``nox -s bench -- sanitize`` (runs ``python bench/sanitize_bench.py``).

Sections (each a function returning a dict; ``main`` prints them and writes
``bench/results/sanitize.json``):

- (a) the whole sanitize transform (``ryuzen_sanitize.transform``): RAW gzip NDJSON
  bytes in, SANITIZED Parquet + quarantine + signed certificate bytes out, S3 excluded,
  over the same corpus cut into RAW objects of 5,000 events.
- (b) the PII scrubber against Microsoft Presidio's pattern recognizers on the same
  texts: throughput per core, recall per PII kind, event-level precision.

Polars runs on one thread (``POLARS_MAX_THREADS=1``, set before polars is imported) so
that both figures are per core. Prints figures only; asserts nothing about time.
"""

from __future__ import annotations

import os

# Per-core figures: pin polars' thread pool before anything imports polars.
os.environ.setdefault("POLARS_MAX_THREADS", "1")

import argparse
import json
import logging
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pii_corpus import PII_RULE_IDS, Labels, free_texts, generate

RESULTS = Path(__file__).resolve().parent / "results" / "sanitize.json"
_TOKEN = re.compile(r"[0-9A-Za-zÀ-ÿĀ-ž]+")


@dataclass(frozen=True)
class FlatTexts:
    """The corpus's free-text fields, flattened: ``texts[i]`` belongs to ``owner[i]``."""

    texts: list[str]
    owner: list[int]


def flatten(corpus: Sequence[tuple[dict[str, object], Labels]], events: Sequence[int]) -> FlatTexts:
    texts: list[str] = []
    owner: list[int] = []
    for index in events:
        for text in free_texts(corpus[index][0]):
            texts.append(text)
            owner.append(index)
    return FlatTexts(texts, owner)


def leaked(value: str, original: list[str], output: list[str]) -> bool:
    """Whether a planted value survives in an event's output: verbatim, or any of its
    words (three or more characters) as a whole word that the event's text did not hold
    elsewhere. So a half-redacted address, or a name with only its first word redacted,
    counts as leaked, while "example" from an untouched "hooks.example.com" does not."""
    if any(value in text for text in output):
        return True
    background = {word for text in original for word in _TOKEN.findall(text.replace(value, " "))}
    words = {word for text in output for word in _TOKEN.findall(text)}
    return any(
        len(word) >= 3 and word in words and word not in background
        for word in _TOKEN.findall(value)
    )


def _metrics(
    corpus: Sequence[tuple[dict[str, object], Labels]],
    events: Sequence[int],
    flagged: set[int],
    caught: dict[int, set[str]],
    weights: dict[int, float] | None = None,
) -> dict[str, object]:
    """Recall per kind (planted value caught), event precision (weighted if sampled)."""
    planted_per_kind = dict.fromkeys(PII_RULE_IDS, 0)
    caught_per_kind = dict.fromkeys(PII_RULE_IDS, 0)
    true_flagged = false_flagged = 0.0
    decoys = decoys_flagged = 0
    for index in events:
        labels = corpus[index][1]
        weight = 1.0 if weights is None else weights[index]
        for rule_id, value in labels.planted:
            planted_per_kind[rule_id] += 1
            caught_per_kind[rule_id] += value in caught.get(index, set())
        if index in flagged:
            if labels.rules:
                true_flagged += weight
            else:
                false_flagged += weight
        if labels.decoy:
            decoys += 1
            decoys_flagged += index in flagged
    recall = {
        kind: round(caught_per_kind[kind] / planted_per_kind[kind], 4)
        for kind in PII_RULE_IDS
        if planted_per_kind[kind]
    }
    total_flagged = true_flagged + false_flagged
    return {
        "recall_per_kind": recall,
        "planted_per_kind": planted_per_kind,
        "event_precision": round(true_flagged / total_flagged, 4) if total_flagged else None,
        "events_flagged": len(flagged),
        "decoy_events": decoys,
        "decoy_events_flagged": decoys_flagged,
    }


def bench_scrubber(
    corpus: Sequence[tuple[dict[str, object], Labels]], events: Sequence[int] | None = None
) -> dict[str, object]:
    """(b) our scrubber: scrub + second scan over every free text of ``events``."""
    from ryuzen_sanitize.scrubber import ruleset_digest, scrub, second_scan

    chosen = range(len(corpus)) if events is None else events
    flat = flatten(corpus, chosen)
    series = pl.Series("text", flat.texts, dtype=pl.String)
    scrub(series.head(2_000))  # warm-up: imports, first regex compilations
    started = time.perf_counter()
    result = scrub(series)
    scrub_seconds = time.perf_counter() - started
    redacted = result.redacted.to_list()
    started = time.perf_counter()
    violations = second_scan(redacted)
    second_scan_seconds = time.perf_counter() - started

    originals: dict[int, list[str]] = {}
    outputs: dict[int, list[str]] = {}
    flagged: set[int] = set()
    for owner, text, out, hits in zip(
        flat.owner, flat.texts, redacted, result.rules_hit.to_list(), strict=True
    ):
        originals.setdefault(owner, []).append(text)
        outputs.setdefault(owner, []).append(out)
        if hits:
            flagged.add(owner)
    caught = {
        index: {
            value
            for _, value in corpus[index][1].planted
            if not leaked(value, originals.get(index, []), outputs.get(index, []))
        }
        for index in chosen
        if corpus[index][1].planted
    }
    figures = _metrics(corpus, chosen, flagged, caught)
    figures.update(
        texts=len(flat.texts),
        events=len(chosen),
        polars_threads=pl.thread_pool_size(),
        scrub_seconds=round(scrub_seconds, 3),
        texts_per_second_per_core=round(len(flat.texts) / scrub_seconds),
        events_per_second_per_core=round(len(chosen) / scrub_seconds),
        second_scan_seconds=round(second_scan_seconds, 3),
        second_scan_texts_per_second=round(len(flat.texts) / second_scan_seconds),
        second_scan_violations=len(violations),
        redactions=result.counts,
        ruleset_digest=ruleset_digest(),
    )
    return figures


def _presidio_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("presidio_analyzer") is not None


def _presidio_recognizers() -> list[object]:
    """Presidio's predefined pattern recognizers only: no NLP engine, no model download."""
    # tldextract (used by the email/URL recognizers) would try to fetch the public
    # suffix list; use its bundled snapshot instead: this benchmark runs offline.
    import tldextract
    import tldextract.tldextract

    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        MacAddressRecognizer,
        PhoneRecognizer,
        UrlRecognizer,
        UsSsnRecognizer,
    )

    return [
        EmailRecognizer(),
        PhoneRecognizer(),
        IpRecognizer(),
        CreditCardRecognizer(),
        UsSsnRecognizer(),
        IbanRecognizer(),
        UrlRecognizer(),
        MacAddressRecognizer(),
    ]


def presidio_sample(
    corpus: Sequence[tuple[dict[str, object], Labels]], clean_fraction: float, seed: int
) -> tuple[list[int], dict[int, float]]:
    """Every PII and decoy event plus a seeded fraction of the ordinary ones, with the
    inverse-probability weights that keep event precision unbiased."""
    rng = random.Random(seed ^ 0x5EED)
    events: list[int] = []
    weights: dict[int, float] = {}
    for index, (_, labels) in enumerate(corpus):
        if labels.rules or labels.decoy:
            events.append(index)
            weights[index] = 1.0
        elif rng.random() < clean_fraction:
            events.append(index)
            weights[index] = 1.0 / clean_fraction
    return events, weights


def bench_presidio(
    corpus: Sequence[tuple[dict[str, object], Labels]],
    events: Sequence[int],
    weights: dict[int, float],
) -> dict[str, object]:
    """(b) baseline: Presidio pattern recognizers over every free text of ``events``."""
    recognizers = _presidio_recognizers()
    flat = flatten(corpus, events)
    for text in flat.texts[:200]:  # warm-up
        for recognizer in recognizers:
            recognizer.analyze(text, entities=recognizer.supported_entities, nlp_artifacts=None)
    findings: list[list[tuple[int, int, str]]] = []
    started = time.perf_counter()
    for text in flat.texts:
        found: list[tuple[int, int, str]] = []
        for recognizer in recognizers:
            for hit in recognizer.analyze(
                text, entities=recognizer.supported_entities, nlp_artifacts=None
            ):
                found.append((hit.start, hit.end, hit.entity_type))
        findings.append(found)
    seconds = time.perf_counter() - started

    # An event counts as flagged by any finding; a planted value counts as caught when a
    # finding overlaps it (lenient: a partial or differently-typed hit is credited).
    flagged: set[int] = set()
    flagged_without_url: set[int] = set()
    spans: dict[int, list[tuple[str, list[tuple[int, int, str]]]]] = {}
    for owner, text, found in zip(flat.owner, flat.texts, findings, strict=True):
        spans.setdefault(owner, []).append((text, found))
        if found:
            flagged.add(owner)
        if any(entity != "URL" for _, _, entity in found):
            flagged_without_url.add(owner)
    caught: dict[int, set[str]] = {}
    for index in events:
        for _, value in corpus[index][1].planted:
            for text, found in spans.get(index, []):
                start = text.find(value)
                end = start + len(value)
                if start >= 0 and any(s < end and start < e for s, e, _ in found):
                    caught.setdefault(index, set()).add(value)
    figures = _metrics(corpus, events, flagged, caught, weights)
    without_url = _metrics(corpus, events, flagged_without_url, caught, weights)
    figures.update(
        recognizers=[type(recognizer).__name__ for recognizer in recognizers],
        texts=len(flat.texts),
        events=len(events),
        seconds=round(seconds, 3),
        texts_per_second_per_core=round(len(flat.texts) / seconds),
        events_per_second_per_core=round(len(events) / seconds),
        event_precision_without_url_recognizer=without_url["event_precision"],
    )
    return figures


def _raw_objects(
    corpus: Sequence[tuple[dict[str, object], Labels]], per_object: int
) -> list[tuple[str, bytes]]:
    """The corpus as RAW objects exactly as ingest writes them (receipt + event text)."""
    import gzip
    from datetime import UTC, datetime, timedelta

    from ryuzen_contracts.ids import new_ulid
    from ryuzen_contracts.key_layout import raw_key
    from ryuzen_contracts.stack_config import load_stack_config

    config = load_stack_config(Path(__file__).resolve().parents[1] / "Pulumi.dev.yaml")
    objects = []
    for start in range(0, len(corpus), per_object):
        chunk = [event for event, _ in corpus[start : start + per_object]]
        newest = max(
            datetime.fromisoformat(str(e["occurred_at"]).replace("Z", "+00:00")) for e in chunk
        )
        received = (newest + timedelta(minutes=1)).astimezone(UTC)
        batch_id = new_ulid(received)
        lines = []
        for event in chunk:
            model = event["model"]
            partner = (
                config.partner_for_model(str(model["id"])) if isinstance(model, dict) else None
            )
            receipt = {
                "batch_id": batch_id,
                "received_at": received.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "client_id": "edge-gateway",
                "request_id": "bench",
                "partner": partner.id if partner else "acme",
                "schema": "ryuzen.raw.v1",
            }
            lines.append(
                '{"receipt":'
                + json.dumps(receipt, separators=(",", ":"))
                + ',"event":'
                + json.dumps(event)
                + "}"
            )
        body = gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1)
        objects.append((raw_key(received, batch_id), body))
    return objects


def bench_transform(
    corpus: Sequence[tuple[dict[str, object], Labels]], per_object: int = 5_000
) -> dict[str, object]:
    """(a) The whole sanitize transform over the corpus, per core (CPU time of this process)."""
    import tempfile

    from ryuzen_contracts.signing import generate_local_key
    from ryuzen_contracts.stack_config import load_stack_config
    from ryuzen_sanitize.transform import transform

    config = load_stack_config(Path(__file__).resolve().parents[1] / "Pulumi.dev.yaml")
    with tempfile.TemporaryDirectory() as keys:
        signer = generate_local_key(Path(keys) / "k.pem", Path(keys) / "k.pub.pem")
    objects = _raw_objects(corpus, per_object)
    transform(objects[0][1], objects[0][0], config, signer)  # warm-up: imports, regex compilation
    received = sanitized = quarantined = redactions = out_bytes = 0
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    for key, body in objects:
        result = transform(body, key, config, signer)
        received += result.received
        sanitized += sum(p.sanitized for p in result.partners)
        quarantined += len(result.rejections)
        redactions += sum(result.redactions_by_rule.values())
        out_bytes += sum(len(p.parquet) + len(p.certificate) for p in result.partners)
        out_bytes += sum(len(b) for b in result.quarantine_objects.values())
    cpu, wall = time.process_time() - cpu_started, time.perf_counter() - wall_started
    return {
        "raw_objects": len(objects),
        "events_per_object": per_object,
        "events": received,
        "sanitized": sanitized,
        "quarantined": quarantined,
        "conservation_holds": received == sanitized + quarantined,
        "redactions": redactions,
        "raw_bytes_in": sum(len(body) for _, body in objects),
        "bytes_out": out_bytes,
        "cpu_seconds": round(cpu, 3),
        "wall_seconds": round(wall, 3),
        "events_per_second_per_core": round(received / cpu),
    }


def bench_contract_floor(
    corpus: Sequence[tuple[dict[str, object], Labels]], per_object: int = 5_000
) -> dict[str, object]:
    """The floor under (a): only what every line must pay before any scrubbing — JSON
    parsing and ``TelemetryEvent`` validation — on the same RAW objects, per core. The
    transform cannot run faster than this on this machine, so (a) is read against it."""
    import gc
    import gzip

    from ryuzen_contracts.telemetry_event import TelemetryEvent

    objects = _raw_objects(corpus, per_object)
    texts = [
        line
        for _, body in objects
        for line in gzip.decompress(body).decode("utf-8").split("\n")
        if line
    ]
    decoder = json.JSONDecoder()
    gc.disable()  # as the transform does for each object
    started = time.process_time()
    documents = [decoder.decode(text) for text in texts]
    parse_cpu = time.process_time() - started
    started = time.process_time()
    for document in documents:
        TelemetryEvent.model_validate(document["event"])
    validate_cpu = time.process_time() - started
    gc.enable()
    return {
        "events": len(texts),
        "json_parse_events_per_second_per_core": round(len(texts) / parse_cpu),
        "contract_validation_events_per_second_per_core": round(len(texts) / validate_cpu),
        "parse_plus_validation_events_per_second_per_core": round(
            len(texts) / (parse_cpu + validate_cpu)
        ),
    }


def transform_ceiling(floor: dict[str, object], scrubber: dict[str, object]) -> dict[str, object]:
    """The fastest the transform could run on this machine, from parts measured in this run.

    Every event must be parsed, validated, scrubbed and scanned a second time (the
    certificate's proof): the sum of those per-event costs bounds the transform even if
    building the frame, the Parquet and the certificates cost nothing.
    """
    events = int(scrubber["events"])  # type: ignore[call-overload]
    scans = float(scrubber["scrub_seconds"]) + float(scrubber["second_scan_seconds"])  # type: ignore[arg-type]
    scan_us = scans / events * 1e6
    parse_us = 1e6 / int(floor["json_parse_events_per_second_per_core"])  # type: ignore[call-overload]
    validate_us = 1e6 / int(floor["contract_validation_events_per_second_per_core"])  # type: ignore[call-overload]
    return {
        "microseconds_per_event": {
            "json_parse": round(parse_us, 2),
            "contract_validation": round(validate_us, 2),
            "scrub_plus_second_scan": round(scan_us, 2),
        },
        "budget_at_100k_events_per_second_us": 10.0,
        "scans_only_events_per_second_per_core": round(1e6 / scan_us),
        "parse_plus_scans_events_per_second_per_core": round(1e6 / (parse_us + scan_us)),
        "parse_validate_scans_events_per_second_per_core": round(
            1e6 / (parse_us + validate_us + scan_us)
        ),
    }


def _print_section(title: str, figures: dict[str, object]) -> None:
    print(f"\n== {title}")
    for key, value in figures.items():
        if isinstance(value, dict):
            print(f"  {key}:")
            for inner_key, inner_value in value.items():
                print(f"    {inner_key:<18} {inner_value}")
        else:
            print(f"  {key:<40} {value}")


def _print_comparison(ours: dict[str, object], presidio: dict[str, object]) -> dict[str, object]:
    ours_recall = ours["recall_per_kind"]
    theirs_recall = presidio["recall_per_kind"]
    assert isinstance(ours_recall, dict) and isinstance(theirs_recall, dict)
    print("\n== (b) comparison on the Presidio sample (same texts)")
    print(f"  {'kind':<18} {'scrubber':>9} {'presidio':>9}")
    for kind in PII_RULE_IDS:
        print(f"  {kind:<18} {ours_recall.get(kind, '-'):>9} {theirs_recall.get(kind, '-'):>9}")
    ratio = float(ours["texts_per_second_per_core"]) / float(presidio["texts_per_second_per_core"])
    precision = (str(ours["event_precision"]), str(presidio["event_precision"]))
    print(f"  {'event precision':<18} {precision[0]:>9} {precision[1]:>9}")
    print(
        f"  {'texts/s per core':<18} {ours['texts_per_second_per_core']!s:>9} "
        f"{presidio['texts_per_second_per_core']!s:>9}"
    )
    print(f"  speed ratio scrubber/presidio: {ratio:.1f}x")
    return {"speed_ratio_same_texts": round(ratio, 1)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument(
        "--presidio-clean-fraction",
        type=float,
        default=0.05,
        help="share of ordinary events in the Presidio sample (all PII and decoy events are in it)",
    )
    parser.add_argument("--skip-presidio", action="store_true")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    corpus = generate(args.events, args.seed)
    pii_events = sum(1 for _, labels in corpus if labels.rules)
    decoy_events = sum(1 for _, labels in corpus if labels.decoy)
    corpus_figures: dict[str, object] = {
        "events": len(corpus),
        "seed": args.seed,
        "pii_events": pii_events,
        "decoy_events": decoy_events,
        "generate_seconds": round(time.perf_counter() - started, 2),
        "contract_check": _contract_check(corpus),
    }
    _print_section("corpus", corpus_figures)
    results: dict[str, object] = {"corpus": corpus_figures}

    transform_figures = bench_transform(corpus)
    _print_section(
        "(a) whole sanitize transform (RAW bytes -> Parquet + quarantine + certificates)",
        transform_figures,
    )
    results["transform"] = transform_figures
    floor = bench_contract_floor(corpus)
    floor["transform_share_of_floor"] = round(
        int(transform_figures["events_per_second_per_core"])  # type: ignore[call-overload]
        / int(floor["parse_plus_validation_events_per_second_per_core"]),  # type: ignore[call-overload]
        3,
    )
    _print_section("(a) floor: per-line JSON parse + TelemetryEvent validation only", floor)
    results["contract_floor"] = floor

    ours = bench_scrubber(corpus)
    _print_section("(b) scrubber, whole corpus (polars, 1 thread)", ours)
    results["scrubber"] = ours
    ceiling = transform_ceiling(floor, ours)
    _print_section(
        "(a) ceiling: parse + validation + scrub + second scan, everything else free", ceiling
    )
    results["transform_ceiling"] = ceiling

    if not args.skip_presidio and not _presidio_installed():
        print(
            "\nPresidio is not installed in this environment: skipping the baseline "
            "(install the root 'bench' dependency group: uv sync --group bench)."
        )
    elif not args.skip_presidio:
        events, weights = presidio_sample(corpus, args.presidio_clean_fraction, args.seed)
        print(
            f"\nPresidio is measured on a seeded sample: all {pii_events} PII and "
            f"{decoy_events} decoy events plus {args.presidio_clean_fraction:.0%} of the "
            "ordinary ones (precision re-weighted to the full corpus)."
        )
        presidio = bench_presidio(corpus, events, weights)
        _print_section("(b) Presidio pattern recognizers, sample", presidio)
        ours_sample = bench_scrubber(corpus, events)
        _print_section("(b) scrubber on the same sample", ours_sample)
        results["presidio"] = presidio
        results["scrubber_on_presidio_sample"] = ours_sample
        results["comparison"] = _print_comparison(ours_sample, presidio)

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"\nwrote {RESULTS}")
    return 0


def _contract_check(corpus: Sequence[tuple[dict[str, object], Labels]], sample: int = 2_000) -> str:
    """Validate a spread of events against TelemetryEvent v1 (the corpus must be real v1)."""
    try:
        from ryuzen_contracts.telemetry_event import TelemetryEvent
    except ImportError:  # pragma: no cover - contracts are in the workspace
        return "skipped (ryuzen_contracts not importable)"
    step = max(1, len(corpus) // sample)
    checked = [corpus[i][0] for i in range(0, len(corpus), step)] + [
        event for event, labels in corpus if labels.rules or labels.decoy
    ]
    for event in checked:
        TelemetryEvent.model_validate(event)
    return f"{len(checked)} events valid TelemetryEvent v1"


if __name__ == "__main__":
    raise SystemExit(main())
