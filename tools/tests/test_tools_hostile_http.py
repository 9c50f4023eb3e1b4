"""Hostile input over HTTP against the local stack on loopback (issue 7 §2).

One in-process stack for the module — the real ingest stage behind the local API
Gateway, the real sanitize stage on ``raw-events`` — and the table of
``tools_hostile_requests.CASES``, sent over real HTTP (httpx) or a raw socket. Every
request carries its own canary. After each one:

* the answer has the expected status and machine-readable code, and never echoes the
  canary;
* a rejected request stored nothing: no RAW object, no audit item, no idempotency record
  appeared for it;
* the server still answers the next good request with 202.

Some hostile inputs are valid at the envelope level by design (ingest checks only the
envelope): those are 202, and the last test checks that sanitize quarantined them with
the expected reason. It also checks, once the queue is drained, that sanitize saw exactly
the accepted batches (so no rejected request ever reached RAW, even briefly) and that no
captured output (stdout, stderr, every log record, the stages' powertools lines at DEBUG),
no audit item, no idempotency record and no SANITIZED or quarantine object holds any
canary: quarantine keeps reasons and hashes only.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from ryuzen_tools.local_stack.stack import LocalStack, LocalStackOptions
from ryuzen_tools.local_stack.stage_registry import SQS_CONSUMERS
from ryuzen_tools.local_stack.status import queue_depth
from ryuzen_tools.sanitize_report import sanitize_report
from tools_canary_search import bucket_objects, items_text, search_artifacts, table_items
from tools_hostile_requests import (
    CASES,
    Answer,
    Case,
    HttpCall,
    Keys,
    Sent,
    dumps,
    good_batch,
    post,
    send_http,
    send_wire,
)
from tools_output_capture import OutputCapture
from tools_support import unique


@dataclass
class HostileStack:
    stack: LocalStack
    ready: dict[str, Any]
    keys: Keys
    capture: OutputCapture
    client: httpx.Client
    sent: Sent = field(default_factory=Sent)
    canaries: dict[str, str] = field(default_factory=dict)

    @property
    def s3(self) -> Any:
        return self.stack.clients.client("s3")  # type: ignore[union-attr]

    @property
    def dynamodb(self) -> Any:
        return self.stack.clients.client("dynamodb")  # type: ignore[union-attr]

    def canary(self, case: Case) -> str:
        # Lower-case letters and digits: valid in an id, a version, a header and a key.
        value = f"hx{len(self.canaries):02d}{unique('c')[2:]}"
        self.canaries[case.id] = value
        return value

    def raw_batches(self) -> set[str]:
        listing = self.s3.list_objects_v2(Bucket=self.ready["buckets"]["raw"])
        return {Path(item["Key"]).name.split(".")[0] for item in listing.get("Contents", [])}

    def audit_batches(self) -> dict[tuple[str, str], str | None]:
        """Audit items by (pk, sk): the batch each names (None: it names none)."""
        items = table_items(self.dynamodb, self.ready["tables"]["audit"])
        return {
            (item["pk"]["S"], item["sk"]["S"]): _batch_of(item)
            for item in items
            if "pk" in item and "sk" in item
        }

    def idempotency_records(self) -> int:
        return len(table_items(self.dynamodb, self.ready["tables"]["idempotency"]))

    def send(self, call: HttpCall) -> Answer:
        return send_http(self.client, self.ready["api"], call)

    def send_good(self) -> None:
        answer = self.send(post(self.keys, dumps(good_batch())))
        assert answer.status == 202, answer.text
        self.sent.good.append(json.loads(answer.text)["batch_id"])


def _batch_of(item: dict[str, Any]) -> str | None:
    detail = item.get("detail", {}).get("M", {})
    batch = detail.get("batch_id", {}).get("S")
    return batch if isinstance(batch, str) else None


@pytest.fixture(scope="module")
def hostile(project_dir: Path) -> Iterator[HostileStack]:
    options = LocalStackOptions(
        project_dir=project_dir,
        state_dir=None,
        resource_prefix=unique("hostile"),
        # ingest over HTTP and sanitize on raw-events: what decides what is stored
        consumers=tuple(c for c in SQS_CONSUMERS if c.name == "sanitize"),
        scheduled=(),
    )
    with OutputCapture() as capture, LocalStack(options) as stack:
        capture.rescan()  # the stages' loggers exist now
        ready = stack.ready
        keys = Keys(
            ingest=ready["ingest_keys"]["edge-gateway"],
            nimbus_only=ready["ingest_keys"]["batch-runner"],
            partner=ready["partner_keys"]["acme"],
        )
        with httpx.Client(timeout=60) as client:
            yield HostileStack(stack, ready, keys, capture, client)


@pytest.fixture
def output(hostile: HostileStack, capfd: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """Everything captured so far (this test's stdout and stderr included)."""

    def captured() -> str:
        out, err = capfd.readouterr()
        hostile.capture.record(out + err)
        return hostile.capture.text()

    yield captured
    captured()


def test_the_table_is_at_least_40_hostile_requests() -> None:
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_hostile_request_is_refused_or_accepted_as_documented_and_leaves_nothing_behind(
    hostile: HostileStack, case: Case, output: Callable[[], str]
) -> None:
    canary = hostile.canary(case)
    if case.setup is not None:  # e.g. the first use of an Idempotency-Key
        first = hostile.send(case.setup(hostile.keys, canary))
        assert first.status == 202, first.text
        hostile.sent.good.append(json.loads(first.text)["batch_id"])
    raw_before = hostile.raw_batches()
    audit_before = hostile.audit_batches()
    idempotency_before = hostile.idempotency_records()

    # When the hostile request is sent
    call = case.build(hostile.keys, canary)
    if isinstance(call, HttpCall):
        answer = hostile.send(call)
    else:  # a raw socket; a good request is answered while it stalls
        answer = send_wire(hostile.ready["api"], call, during_pause=hostile.send_good)

    # Then it gets its status and machine-readable code, without an echo of the payload
    assert (answer.status, answer.code) == (case.status, case.code), answer.text[:300]
    assert canary not in answer.text.lower()
    if answer.status == 202:
        hostile.sent.by_case[case.id] = json.loads(answer.text)["batch_id"]
    else:
        # and nothing of a rejected request is stored: sanitize only ever removes RAW
        # objects, so a new one would be this request's
        assert hostile.raw_batches() <= raw_before | hostile.sent.all()
        new_audit = {k: v for k, v in hostile.audit_batches().items() if k not in audit_before}
        assert all(batch in hostile.sent.all() for batch in new_audit.values()), new_audit
        assert hostile.idempotency_records() == idempotency_before

    # and the server still answers the next good request
    hostile.send_good()
    assert canary not in output().lower()


def test_afterwards_only_accepted_batches_were_stored_and_no_canary_is_anywhere(
    hostile: HostileStack, output: Callable[[], str]
) -> None:
    stack, ready, sent = hostile.stack, hostile.ready, hostile.sent
    assert len(hostile.canaries) == len(CASES), "run the whole table (no -k) for this test"
    # Given every request of the table sent, and raw-events drained
    assert stack.wait_until_drained(timeout_s=120)

    # Then sanitize consumed exactly the accepted batches: none from a rejected request
    # ever reached RAW, even for an instant (every RAW object leaves a certificate or a
    # quarantine record behind)
    assert hostile.raw_batches() == set()
    report = sanitize_report(
        hostile.s3,
        ready["buckets"]["sanitized"],
        ready["buckets"]["quarantine"],
        Path(ready["public_key"]).read_bytes(),
    )
    assert report.problems == []
    assert report.batches == sent.all()
    counters = stack.counters_document()["stages"]
    assert counters["ingest"]["errors"] == counters["sanitize"]["errors"] == 0
    assert counters["ingest"]["outcomes"]["http_202"] == len(sent.good) + len(sent.by_case)
    sqs = stack.clients.client("sqs")  # type: ignore[union-attr]
    for role, queue in ready["queues"].items():
        assert sum(queue_depth(sqs, queue["dlq_url"]).values()) == 0, role

    # and each input valid at the envelope level was quarantined for its reason
    quarantine = bucket_objects(hostile.s3, ready["buckets"]["quarantine"])
    records: dict[str, list[dict[str, Any]]] = {}
    for body in quarantine.values():
        for line in gzip.decompress(body).splitlines():
            record = json.loads(line)
            records.setdefault(record["batch_id"], []).append(record)
    for case in CASES:
        batch = sent.by_case.get(case.id)
        if case.quarantined:
            assert batch is not None, case.id
            (record,) = records[batch]
            assert record["reason"] == case.quarantined, case.id
            if case.field is not None:
                assert record["field"] == case.field, case.id
        elif case.sanitized:
            assert batch is not None and batch not in records, case.id
    assert set(records) <= set(sent.by_case.values())  # good batches are clean

    # and no canary is in any log line, audit item, idempotency record or stored object
    needles = list(hostile.canaries.values())
    artifacts = {
        **bucket_objects(hostile.s3, ready["buckets"]["sanitized"]),
        **quarantine,
        "captured output": output().encode(),
        "audit table": items_text(table_items(hostile.dynamodb, ready["tables"]["audit"])).encode(),
        "idempotency table": items_text(
            table_items(hostile.dynamodb, ready["tables"]["idempotency"])
        ).encode(),
    }
    assert search_artifacts(artifacts, needles) == []
    # the capture did see the stages' logs (a capture of nothing would prove nothing)
    text = output()
    assert '"service":"ryuzen-ingest"' in text and "request rejected" in text
    assert '"service":"ryuzen-sanitize"' in text
