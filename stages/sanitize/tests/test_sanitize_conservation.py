"""Property: on any mix of good and bad lines, received = sanitized + quarantined, and
nothing the transform writes holds a planted canary."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from raw_batches import RECEIVED_AT, event, raw_line
from ryuzen_contracts.attestation import verify
from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.key_layout import raw_key
from ryuzen_contracts.signing import generate_local_key
from ryuzen_contracts.stack_config import load_stack_config
from ryuzen_sanitize.transform import transform

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "Pulumi.yaml").exists())
CONFIG = load_stack_config(ROOT / "Pulumi.dev.yaml")
CANARY = "canary.person@example.net"


def _good(partner_model: tuple[str, str]) -> tuple[str, str]:
    partner, model = partner_model
    return json.dumps(event(model)), partner


def _with_pii(partner_model: tuple[str, str]) -> tuple[str, str]:
    partner, model = partner_model
    noisy = event(
        model, outcome={"status": "error", "error_message": f"bounce for {CANARY} at 10.2.3.4"}
    )
    return json.dumps(noisy), partner


LINES = st.one_of(
    st.sampled_from([("acme", "acme/titan-large"), ("nimbus-ai", "nimbus/cirrus-7b")]).map(_good),
    st.sampled_from([("acme", "acme/titan-large"), ("orbital", "orbital/o-2")]).map(_with_pii),
    st.just(('{"truncated": ', "acme")),
    st.just(('{"a": 1, "a": 2}', "acme")),
    st.just((json.dumps({**event(), "prompt": CANARY}), "acme")),
    st.just((json.dumps(event("zephyr/x")), "orbital")),
    st.just((json.dumps({**event(), "metrics": {"latency_ms": -5.0}}), "nimbus-ai")),
    st.just(
        (json.dumps(event("acme/x", model={"id": "acme/x", "version": "415-555-0132"})), "acme")
    ),
    st.text(max_size=40).map(lambda text: (json.dumps(text), "acme")),
    # A lone surrogate escape is valid JSON but no Unicode: it must fail its own line,
    # never the object (it cannot be written as UTF-8).
    st.just((json.dumps(event(outcome={"status": "error", "error_message": "x\ud800"})), "acme")),
    st.just((json.dumps(event(attributes={"note": "\udfff"})), "nimbus-ai")),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    items=st.lists(LINES, min_size=1, max_size=30), on_pii=st.sampled_from(["redact", "quarantine"])
)
def test_conservation_and_no_canary_on_any_mix(tmp_path_factory, items, on_pii) -> None:
    keys = tmp_path_factory.mktemp("keys")
    signer = generate_local_key(keys / "k.pem", keys / "k.pub.pem")
    config = CONFIG.model_copy(update={"on_pii": on_pii})
    batch = new_ulid(RECEIVED_AT)
    lines = [raw_line(text, batch, partner) for text, partner in items]
    body = gzip.compress(("\n".join(lines) + "\n").encode())

    result = transform(body, raw_key(RECEIVED_AT, batch), config, signer)

    sanitized = sum(output.sanitized for output in result.partners)
    assert result.received == len(items) == sanitized + len(result.rejections)
    for output in result.partners:
        frame = pl.read_parquet(io.BytesIO(output.parquet))
        assert frame.height == output.sanitized
        assert CANARY.encode() not in output.parquet and CANARY not in str(frame.to_dicts())
        counts = verify(output.certificate, signer.public_key_pem()).predicate["counts"]
        assert counts["received"] == counts["sanitized"] + counts["quarantined"]
    for body_out in result.quarantine_objects.values():
        assert CANARY.encode() not in gzip.decompress(body_out)
