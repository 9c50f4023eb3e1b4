"""The synthetic generator: reproducible, schema-valid unless deliberately malformed."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from ryuzen_contracts.stack_config import StackConfig, load_stack_config, stack_file
from ryuzen_contracts.telemetry_event import TelemetryEvent
from ryuzen_tools.synthetic import (
    MALFORMATIONS,
    NoModelsError,
    SyntheticEvents,
    models_for_partners,
)

NOW = datetime(2026, 11, 28, 5, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def config(project_dir: Path) -> StackConfig:
    return load_stack_config(stack_file(project_dir, "dev"))


def test_the_same_seed_gives_the_same_events(config: StackConfig) -> None:
    first = SyntheticEvents(config, seed=7, pii_rate=0.1, now=NOW).take(300)
    second = SyntheticEvents(config, seed=7, pii_rate=0.1, now=NOW).take(300)
    other = SyntheticEvents(config, seed=8, pii_rate=0.1, now=NOW).take(300)
    assert first == second
    assert [e.payload for e in first] != [e.payload for e in other]


def test_events_validate_against_the_contract_unless_malformed(config: StackConfig) -> None:
    events = SyntheticEvents(config, seed=1, pii_rate=0.05, malformed_rate=0.05, now=NOW).take(3000)
    malformed = Counter(e.malformed for e in events if e.malformed)
    assert set(malformed) == set(MALFORMATIONS)  # every kind of breakage shows up
    for event in events:
        # JSON round trip: what the wire carries is what sanitize will validate.
        wire = json.dumps(event.payload)
        if event.malformed is None:
            TelemetryEvent.model_validate_json(wire)
        else:
            with pytest.raises(ValidationError):
                TelemetryEvent.model_validate_json(wire)


def test_malformed_events_keep_an_envelope_ingest_accepts(config: StackConfig) -> None:
    events = SyntheticEvents(config, seed=2, malformed_rate=1.0, now=NOW).take(500)
    for event in events:
        assert isinstance(event.payload["event_id"], str)
        assert config.partner_for_model(event.payload["model"]["id"]) is not None


def test_the_mix_is_realistic(config: StackConfig) -> None:
    events = [
        e.payload for e in SyntheticEvents(config, seed=3, malformed_rate=0, now=NOW).take(5000)
    ]
    kinds = Counter(e["kind"] for e in events)
    statuses = Counter(e["outcome"]["status"] for e in events)
    partners = Counter(config.partner_for_model(e["model"]["id"]).id for e in events)  # type: ignore[union-attr]
    assert 0.7 < kinds["inference"] / len(events) < 0.9
    assert 0.85 < statuses["ok"] / len(events) < 0.95
    assert len(statuses) >= 5
    assert set(partners) == {p.id for p in config.partners}
    latencies = sorted(e["metrics"]["latency_ms"] for e in events if "metrics" in e)
    median, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    assert p99 > 3 * median  # a long right tail, as log-normal latencies have


def test_pii_goes_into_error_messages_only_when_asked(config: StackConfig) -> None:
    clean = SyntheticEvents(config, seed=4, pii_rate=0.0, now=NOW).take(1000)
    assert not any(e.pii for e in clean)
    dirty = SyntheticEvents(config, seed=4, pii_rate=0.5, now=NOW).take(1000)
    with_pii = [e for e in dirty if e.pii]
    assert 400 < len(with_pii) < 600
    assert any("@example.com" in e.payload["outcome"]["error_message"] for e in with_pii)
    assert all(e.payload["outcome"]["status"] != "ok" for e in with_pii)


def test_partners_restrict_the_models(config: StackConfig) -> None:
    events = SyntheticEvents(config, seed=5, partners=["nimbus-ai"], now=NOW).take(200)
    assert {config.partner_for_model(e.payload["model"]["id"]).id for e in events} == {"nimbus-ai"}  # type: ignore[union-attr]
    models = models_for_partners(config, ["nimbus-ai"])["nimbus-ai"]
    assert any(m.startswith("nimbus-labs/") for m in models)  # every prefix is used
    with pytest.raises(NoModelsError):
        models_for_partners(config, ["nobody"])


def test_batches_cover_the_total(config: StackConfig) -> None:
    sizes = [len(batch) for batch in SyntheticEvents(config, seed=6, now=NOW).batches(1234, 500)]
    assert sizes == [500, 500, 234]
