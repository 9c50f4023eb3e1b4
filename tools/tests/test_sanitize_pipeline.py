"""The local stack with the real ingest and sanitize stages: planted PII never gets through.

One in-process stack for the module: canary events (PII in free text, in identifiers and in
an unknown ``prompt`` field) and synthetic traffic with planted PII go in over HTTP; once
``raw-events`` is drained, everything sanitize wrote is read back and checked — with the
public key the stack published in ``state.json``, as a partner would.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from click.testing import Result
from pii_canaries import (
    ERROR_CODE_CANARY,
    VERSION_CANARY,
    canary_events,
    find_canaries,
)
from ryuzen_contracts.attestation import ZERO_PII_PREDICATE
from ryuzen_contracts.key_layout import parse_sanitized_key
from ryuzen_contracts.signing import generate_local_key
from ryuzen_sanitize.quarantine import ValueHasher, value_hasher_from_kms
from ryuzen_tools.cli import app
from ryuzen_tools.demo import DemoOptions, _Observed, _summary
from ryuzen_tools.local_stack.aws import LocalClients
from ryuzen_tools.local_stack.stack import LocalStack, LocalStackOptions
from ryuzen_tools.local_stack.state_file import read_state
from ryuzen_tools.local_stack.status import RawInventory, raw_inventory
from ryuzen_tools.sanitize_report import SanitizeReport, sanitize_report
from ryuzen_tools.synthetic import SyntheticEvents
from ryuzen_tools.traffic import SendOptions, SendResult, TrafficSender
from ryuzen_tools.verify_attestation import verify_attestation
from tools_support import REGION, unique
from typer.testing import CliRunner

PII_PREFIX = "upstream rejected request for "  # how the synthetic generator plants PII


@dataclass
class Drained:
    """What the stack held after draining, read while it still ran."""

    state: dict[str, Any]
    accepted_events: int
    accepted_batches: set[str]
    canaries: dict[str, dict[str, Any]]
    planted: list[str]
    sanitized: dict[str, bytes]
    quarantine: dict[str, bytes]
    raw_left: int
    audit_items: list[dict[str, Any]]
    report: SanitizeReport
    stages: dict[str, Any]
    public_key: bytes
    value_hasher: ValueHasher

    def parquet(self) -> dict[str, pl.DataFrame]:
        return {
            key: pl.read_parquet(io.BytesIO(body))
            for key, body in self.sanitized.items()
            if key.endswith(".parquet")
        }

    def certificates(self) -> dict[str, bytes]:
        return {k: v for k, v in self.sanitized.items() if k.endswith(".dsse.json")}

    def quarantine_records(self) -> list[dict[str, Any]]:
        return [
            json.loads(line)
            for body in self.quarantine.values()
            for line in gzip.decompress(body).splitlines()
        ]


def _send_canaries(api: str, key: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    response = httpx.post(
        f"{api}/v1/events",
        json=events,
        headers={"x-api-key": key, "Idempotency-Key": unique("canaries")},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


def _objects(s3: Any, bucket: str) -> dict[str, bytes]:
    listing = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for item in listing
    }


@pytest.fixture(scope="module")
def drained(project_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drained]:
    state_dir = tmp_path_factory.mktemp("pipeline-state")
    options = LocalStackOptions(
        project_dir=project_dir, state_dir=state_dir, resource_prefix=unique("pii")
    )
    with LocalStack(options) as stack:
        assert stack.config is not None and stack.clients is not None
        state = read_state(state_dir)  # what another process (a partner's tool) would read
        key = state["ingest_keys"]["edge-gateway"]

        # Given hand-built canary events and synthetic traffic with planted PII
        canaries = canary_events()
        answer = _send_canaries(state["api"], key, list(canaries.values()))
        generator = SyntheticEvents(stack.config, seed=23, pii_rate=0.3, malformed_rate=0.05)
        events = generator.take(1500)
        planted = sorted(
            {
                e.payload["outcome"]["error_message"].removeprefix(PII_PREFIX)
                for e in events
                if e.pii
            }
        )
        with TrafficSender(SendOptions(state["api"], key)) as sender:
            result = sender.send(
                [e.payload for e in events[start : start + 500]] for start in range(0, 1500, 500)
            )
        assert result.all_answered and result.batches_accepted == 3

        # When raw-events is drained
        assert stack.wait_until_drained(timeout_s=120)

        s3 = stack.clients.client("s3")
        buckets = state["buckets"]
        public_key = Path(state["public_key"]).read_bytes()
        audit = stack.clients.client("dynamodb").scan(TableName=state["tables"]["audit"])
        yield Drained(
            state=state,
            accepted_events=result.events_accepted + answer["accepted"],
            accepted_batches={*result.batch_ids, answer["batch_id"]},
            canaries=canaries,
            planted=planted,
            sanitized=_objects(s3, buckets["sanitized"]),
            quarantine=_objects(s3, buckets["quarantine"]),
            raw_left=raw_inventory(s3, buckets["raw"]).objects,
            audit_items=audit["Items"],
            report=sanitize_report(s3, buckets["sanitized"], buckets["quarantine"], public_key),
            stages=stack.counters_document()["stages"],
            public_key=public_key,
            value_hasher=value_hasher_from_kms(
                stack.clients.client("kms"), stack.ready["kms_keys"]["quarantine-hash"]
            ),
        )


def test_sanitize_ran_on_every_raw_object_and_raw_is_empty(drained: Drained) -> None:
    assert drained.state["consumers"]["raw-events"] == "sanitize"
    assert "raw-events" not in drained.state["waiting_for"]
    assert drained.raw_left == 0
    sanitize = drained.stages["sanitize"]
    assert sanitize["errors"] == 0
    assert sanitize["outcomes"]["messages_deleted"] == 4 + 1  # four batches, the s3:TestEvent
    assert drained.report.batches == drained.accepted_batches


def test_conservation_holds(drained: Drained) -> None:
    report = drained.report
    assert report.problems == []
    assert report.received == drained.accepted_events == 1500 + 4
    # counted independently of the certificates: Parquet rows and quarantine records
    rows = sum(frame.height for frame in drained.parquet().values())
    records = drained.quarantine_records()
    assert rows == report.sanitized
    assert len(records) == report.quarantined + report.unattributed
    assert rows + len(records) == drained.accepted_events


def test_no_canary_reaches_sanitized(drained: Drained) -> None:
    frames = drained.parquet()
    assert frames
    for key, frame in frames.items():
        # every string the frame holds, decoded, including attribute keys and values
        text = frame.write_ndjson()
        assert find_canaries(text) == [], key
        assert [value for value in drained.planted if value in text] == [], key
        # and the file's bytes: Parquet statistics keep min/max values uncompressed
        assert find_canaries(drained.sanitized[key]) == [], key
    for key, body in drained.certificates().items():
        payload = base64.b64decode(json.loads(body)["payload"])
        assert find_canaries(payload) == [], key


def test_free_text_pii_is_redacted_and_counted(drained: Drained) -> None:
    event_id = drained.canaries["redacted"]["event_id"]
    rows = pl.concat(list(drained.parquet().values())).filter(pl.col("event_id") == event_id)
    assert rows.height == 1
    message = rows["error_message"][0]
    for rule in ("EMAIL", "PHONE", "IPV4", "CREDIT_CARD", "AWS_ACCESS_KEY"):
        assert f"[REDACTED:{rule}]" in message
    attributes = {item["key"]: item["value"] for item in rows["attributes"][0]}
    assert attributes["contact"] == "reach me at [REDACTED:EMAIL]"
    assert attributes["callback"] == "phone [REDACTED:PHONE]"
    assert attributes["tier"] == "pro" and attributes["stream"] == "true"
    redactions = drained.report.redactions_by_rule
    assert redactions["EMAIL"] >= 2 and redactions["PHONE"] >= 2
    assert redactions["AWS_ACCESS_KEY"] >= 1


def test_quarantine_holds_reasons_and_hashes_never_values(drained: Drained) -> None:
    assert not [key for key in drained.quarantine if key.endswith(".raw.ndjson.gz")]
    for key, body in drained.quarantine.items():
        assert find_canaries(gzip.decompress(body)) == [], key
    records = {record["event_id"]: record for record in drained.quarantine_records()}

    version = records[drained.canaries["version"]["event_id"]]
    assert (version["reason"], version["field"], version["rule"]) == (
        "pii_in_identifier",
        "model.version",
        "PHONE",
    )
    # Keyed by the stack's KMS HMAC key: a phone number's plain SHA-256 would be reversed
    # by hashing every phone number.
    assert version["value_hmac_sha256"] == drained.value_hasher(VERSION_CANARY)
    assert version["value_hmac_sha256"] != hashlib.sha256(VERSION_CANARY.encode()).hexdigest()

    error_code = records[drained.canaries["error_code"]["event_id"]]
    assert error_code["reason"] == "pii_in_identifier"
    assert error_code["field"] == "outcome.error_code"
    assert error_code["value_hmac_sha256"] == drained.value_hasher(ERROR_CODE_CANARY)

    prompt = records[drained.canaries["prompt"]["event_id"]]
    assert (prompt["reason"], prompt["field"], prompt["value_hmac_sha256"]) == (
        "unknown_field",
        "prompt",
        None,
    )
    assert drained.report.quarantined_by_reason["pii_in_identifier"] >= 2


def test_the_audit_log_holds_no_canary(drained: Drained) -> None:
    assert drained.audit_items  # SCRUB_VIOLATION events were written
    assert find_canaries(json.dumps(drained.audit_items)) == []


def test_every_certificate_verifies_with_the_published_key(
    drained: Drained, tmp_path: Path
) -> None:
    certificates = drained.certificates()
    assert drained.report.certificates_verified == len(certificates) > 0
    for key, envelope in certificates.items():
        where = parse_sanitized_key(key)
        parquet_key = key.removesuffix(".certificate.dsse.json") + ".parquet"
        local = tmp_path / Path(parquet_key).name  # matched to the subject by basename
        local.write_bytes(drained.sanitized[parquet_key])
        verified = verify_attestation(
            envelope, drained.public_key, [local], predicate_type=ZERO_PII_PREDICATE
        )
        assert [item.name for item in verified.checked] == [parquet_key]
        predicate = verified.statement.predicate
        assert (predicate["partner"], predicate["month"], predicate["batch_id"]) == (
            where.partner,
            where.month,
            where.batch_id,
        )
        assert verified.key_id == drained.state["public_key_id"]


@dataclass
class CertificateFiles:
    certificate: Path
    parquet: Path
    public_key: Path


@pytest.fixture
def certificate_files(drained: Drained, tmp_path: Path) -> CertificateFiles:
    key, envelope = next(iter(drained.certificates().items()))
    parquet_key = key.removesuffix(".certificate.dsse.json") + ".parquet"
    files = CertificateFiles(
        tmp_path / Path(key).name,
        tmp_path / Path(parquet_key).name,
        Path(drained.state["public_key"]),
    )
    files.certificate.write_bytes(envelope)
    files.parquet.write_bytes(drained.sanitized[parquet_key])
    return files


def verify_cli(files: CertificateFiles, *extra: str) -> Result:
    return CliRunner().invoke(
        app,
        [
            "verify",
            "certificate",
            str(files.certificate),
            "--public-key",
            str(files.public_key),
            "--subject",
            str(files.parquet),
            *extra,
        ],
    )


def test_verify_certificate_accepts_a_good_certificate_and_its_parquet(
    certificate_files: CertificateFiles, drained: Drained
) -> None:
    shown = verify_cli(certificate_files)
    assert shown.exit_code == 0, shown.stderr
    batch_id = certificate_files.parquet.name.removesuffix(".parquet")
    for text in ("signature verified", batch_id, "rule set digest", "matches"):
        assert text in shown.stdout

    as_json = verify_cli(certificate_files, "--json")
    assert as_json.exit_code == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["ok"] is True
    assert document["key_id"] == drained.state["public_key_id"]
    assert document["certificate"]["batch_id"] == batch_id
    assert len(document["certificate"]["scrubber"]["ruleset_digest"]) == 64
    checked = [s for s in document["subjects"] if s["checked_file"]]
    assert [s["checked_file"] for s in checked] == [str(certificate_files.parquet)]


def _flip_a_byte(files: CertificateFiles, tmp_path: Path) -> str:
    data = bytearray(files.parquet.read_bytes())
    data[len(data) // 2] ^= 0x01
    files.parquet.write_bytes(bytes(data))
    return "does not match the attested"


def _tamper_with_the_envelope(files: CertificateFiles, tmp_path: Path) -> str:
    envelope = json.loads(files.certificate.read_bytes())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["counts"]["quarantined"] += 1
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    envelope["payload"] = base64.b64encode(payload).decode()
    files.certificate.write_text(json.dumps(envelope))
    return "signature does not verify with this public key"


def _use_another_key(files: CertificateFiles, tmp_path: Path) -> str:
    generate_local_key(tmp_path / "other.pem", tmp_path / "other.pub.pem")
    files.public_key = tmp_path / "other.pub.pem"
    return "no signature by key"


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(_flip_a_byte, id="flipped-byte-in-parquet"),
        pytest.param(_tamper_with_the_envelope, id="tampered-envelope"),
        pytest.param(_use_another_key, id="wrong-public-key"),
    ],
)
def test_verify_certificate_fails_with_the_reason(
    certificate_files: CertificateFiles, tmp_path: Path, spoil: Any
) -> None:
    reason = spoil(certificate_files, tmp_path)
    shown = verify_cli(certificate_files)
    assert shown.exit_code == 1
    assert reason in shown.stderr
    assert shown.stdout == ""
    as_json = verify_cli(certificate_files, "--json")
    assert as_json.exit_code == 1
    assert reason in json.loads(as_json.stdout)["error"]


@pytest.fixture
def copied(drained: Drained, aws: LocalClients) -> tuple[Any, str, str]:
    """What sanitize wrote, copied into fresh buckets of the session's moto server."""
    s3 = aws.client("s3")
    buckets = unique("copy-sanitized"), unique("copy-quarantine")
    for bucket, objects in zip(buckets, (drained.sanitized, drained.quarantine), strict=True):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        for key, body in objects.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)
    return s3, *buckets


def test_the_report_names_a_spoiled_parquet_and_a_lost_quarantine_object(
    drained: Drained, copied: tuple[Any, str, str]
) -> None:
    s3, sanitized, quarantine = copied
    assert sanitize_report(s3, sanitized, quarantine, drained.public_key).problems == []

    # Given one Parquet object with a flipped byte and one quarantine object gone
    parquet_key = next(key for key in drained.sanitized if key.endswith(".parquet"))
    data = bytearray(drained.sanitized[parquet_key])
    data[len(data) // 2] ^= 0x01
    s3.put_object(Bucket=sanitized, Key=parquet_key, Body=bytes(data))
    s3.delete_object(Bucket=quarantine, Key=next(iter(drained.quarantine)))

    # Then the report says exactly what is wrong
    problems = sanitize_report(s3, sanitized, quarantine, drained.public_key).problems
    assert any(parquet_key in p and "does not match the attested" in p for p in problems)
    assert any("quarantine holds" in p for p in problems)
    assert len(problems) == 2, problems


def test_the_demo_verdict_fails_when_raw_is_left_or_conservation_breaks(
    drained: Drained,
) -> None:
    result = SendResult(events_sent=1504, events_accepted=drained.accepted_events)
    result.batch_ids = sorted(drained.accepted_batches)
    stages = {"sanitize": {"invocations": 1, "errors": 0, "outcomes": {}}}

    def verdict(raw_objects: int, raw_events: int) -> dict[str, Any]:
        observed = _Observed(
            RawInventory(raw_objects, 10 * raw_objects, ["k"] * raw_objects, []),
            raw_events,
            drained.report,
            {},
            {},
            stages,
            True,
        )
        phases = {"sending": 1.0, "draining": 1.0, "checking": 1.0}
        return _summary(DemoOptions(events=1504), {"c": result}, observed, phases, 3.0)

    assert verdict(0, 0)["ok"] is True
    left = verdict(1, 500)
    assert left["ok"] is False and left["conservation"]["holds"] is False
    assert any("RAW still holds 1 batches" in p for p in left["problems"])

    result.events_accepted += 1  # one accepted event that sanitize never accounted for
    lost = verdict(0, 0)
    assert lost["ok"] is False and lost["conservation"]["holds"] is False
