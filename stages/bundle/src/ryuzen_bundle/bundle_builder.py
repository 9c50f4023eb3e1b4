"""Building, delivering and recording one partner-month's bundle.

``build_bundle`` is the whole job; the ECS task (``python -m ryuzen_bundle build``) and
the local stack call it with injected clients. The order is chosen so that the bundle
state only says ``DELIVERED`` once everything a delivery promises has happened, and the
audit trail only says ``BUNDLE_CREATED`` once the object it names is verified:

1. refusals, before anything is touched: unknown partner, a month that has not ended
   (unless ``allow_open_month``), a month already ``DELIVERED``/``CLEANED`` (unless
   ``force_rebuild``), and a ``CLEANED`` month whose telemetry is gone even then — its
   rebuild would replace the partner's bundle with an empty one;
2. state ``BUILDING``, a conditional write on the version the refusal rules were checked
   against: a concurrent build that got in between (even one still ``BUILDING``, which
   would otherwise look like a legal retry) makes this one lose here, before it touches
   anything in S3;
3. copy the month's ANALYTICS objects and certificates to local disk and deduplicate the
   events into day parts (``month_events``);
4. check the month is complete (``month_objects.check_complete``): every certificate
   with sanitized events has its batch in ANALYTICS, all of it. Cleanup deletes
   SANITIZED once the month is delivered, so a bundle signed over a partial month would
   lose the missing events for good;
5. summarize and render the report (``daily_summary``, ``report_html``);
6. stream the ZIP into a multipart upload (``bundle_zip``, ``s3_delivery``), manifest and
   its DSSE envelope last, and complete it;
7. read the checksum back, store the SHA-256 as object metadata, read it back again;
8. only then state ``BUILT`` and audit ``BUNDLE_CREATED`` — an object that failed its
   verification is never recorded as created;
9. audit ``BUNDLE_DELIVERED``, emit ``BundleDelivered``, and only then state
   ``DELIVERED`` (with ``sha256`` and ``checksum_verified``) — the commit point.

Every side effect runs as a named step (``pipeline_steps.step``: ``read_state``,
``mark_building``, ``work_dir``, ``list_analytics``, ``download_analytics``,
``fetch_certificates``, ``check_complete``, ``summarize``, ``start_upload``,
``write_zip``, ``upload_part``, ``sign_manifest``, ``complete_upload``,
``verify_upload``, ``store_metadata``, ``verify_metadata``, ``mark_built``,
``audit_created``, ``audit_delivered``, ``emit_event``, ``mark_delivered``). Any failure
other than a refusal writes an ``ERROR`` audit event (``failure_detail``: the step and
the error type, never a message that could hold a URL; an incomplete month adds a short
``reason`` of batch ids and counts) and leaves the state where it was, ``BUILDING`` or
``BUILT``; a multipart upload that did not complete is aborted. A failure after the
upload completed but before ``mark_built`` leaves the object in the bucket with the state
``BUILDING``: nothing serves or deletes a month on its object alone, and the retry
overwrites it.

The event is emitted *before* the last transition because a state of ``DELIVERED`` with
no event would never be cleaned up; the other way round, cleanup receiving the event
while the state is still ``BUILT`` must refuse (and be retried), which is what it does
for any month not ``DELIVERED``.
Every transition after the first expects the version this build wrote last, so a build
that lost a race stops instead of overwriting the winner's record. Each build stamps a
``build_id`` on its ``BUILDING`` record (carried through ``BUILT`` and ``DELIVERED``): when
a transition's write landed but its answer was lost (botocore's retry then meets the
build's own write as a conditional-check failure), the record read back is this build's
and the build goes on instead of reporting a failure over a state it did reach.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from ryuzen_contracts.analytics_schema import analytics_schema_document
from ryuzen_contracts.attestation import Signer
from ryuzen_contracts.audit_log import AuditEvent, AuditEventType, AuditLog, iso_millis
from ryuzen_contracts.bundle_delivered import BundleDelivered
from ryuzen_contracts.bundle_state import (
    FORCED,
    NO_VERSION,
    BundleState,
    BundleStateRecord,
    BundleStateStore,
    ConcurrentTransition,
    IllegalTransition,
)
from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.key_layout import (
    analytics_prefix,
    bundle_key,
    sanitized_prefix,
    validate_month,
    validate_partner_id,
)
from ryuzen_contracts.log_safety import error_fields
from ryuzen_contracts.pipeline_steps import failure_detail, step
from ryuzen_contracts.stack_config import StackConfig

from ryuzen_bundle.bundle_event import emit_bundle_delivered
from ryuzen_bundle.bundle_zip import BundleZip
from ryuzen_bundle.daily_summary import MonthFigures, summarize, write_summary
from ryuzen_bundle.manifest import (
    MANIFEST_DSSE_NAME,
    MANIFEST_NAME,
    BundleCounts,
    manifest_statement,
    sign_manifest,
    watermark_text,
)
from ryuzen_bundle.month_events import DedupTuning, MonthEvents, deduplicate_month
from ryuzen_bundle.month_objects import (
    AnalyticsFacts,
    AnalyticsObject,
    Certificate,
    IncompleteMonth,
    analytics_facts,
    check_complete,
    download_in_order,
    fetch_certificates,
    list_analytics,
)
from ryuzen_bundle.month_window import day_date, has_ended, month_start, next_month_start
from ryuzen_bundle.partner_readme import readme_text
from ryuzen_bundle.report_html import ReportFacts, render_report
from ryuzen_bundle.s3_delivery import (
    COPY_OBJECT_LIMIT,
    PART_SIZE,
    MultipartUploadStream,
    UploadedObject,
    VerifiedChecksum,
    store_sha256_metadata,
    verify_uploaded,
)

STAGE = "bundle"
ZIP_CONTENT_TYPE = "application/zip"
logger = Logger(service="ryuzen-bundle", child=True)


class BuildRefused(RuntimeError):  # noqa: N818 -- a refusal, not an error of the build
    """The build was not started: the request breaks a rule (the message says which).

    ``code`` names the rule for machines (the task's JSON summary carries it):
    ``invalid_request``, ``unknown_partner``, ``month_not_started``, ``month_open``,
    ``already_delivered``, ``already_cleaned``, ``cleaned_month_has_no_data`` or
    ``concurrent_build``.
    """

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class BuildFailed(RuntimeError):  # noqa: N818 -- reads as what happened
    """The build failed at ``step``; the state is where it was, or BUILDING or BUILT.

    The message names the step and the error type only: the error's own message can quote
    a URL or a key, and this one reaches the task's log.
    """

    def __init__(self, step: str, error: BaseException, reason: str | None = None) -> None:
        super().__init__(f"bundle build failed at step '{step}': {type(error).__name__}")
        self.step = step
        self.error = error
        self.reason = reason  # an incomplete month's batch ids and counts; else None


@dataclass(frozen=True)
class BundleTarget:
    """Where the builder reads and writes."""

    analytics_bucket: str
    sanitized_bucket: str
    bundles_bucket: str
    event_bus_name: str
    config: StackConfig


@dataclass(frozen=True)
class BundleServices:
    """Injected clients and the signer."""

    s3: Any
    events: Any
    audit: AuditLog
    states: BundleStateStore
    signer: Signer


@dataclass(frozen=True)
class BuildRequest:
    """One partner-month, and the two overrides of the refusal rules."""

    partner: str
    month: str
    allow_open_month: bool = False
    force_rebuild: bool = False


@dataclass(frozen=True)
class BuildTuning:
    """Performance knobs; the defaults suit a Fargate task with 0.5-1 GB of memory."""

    dedup: DedupTuning = field(default_factory=DedupTuning)
    part_size: int = PART_SIZE
    max_in_flight: int = 2
    download_workers: int = 6  # with certificate_workers, within botocore's 10 connections
    certificate_workers: int = 4
    copy_object_limit: int = COPY_OBJECT_LIMIT
    work_dir: Path | None = None  # None: the system temp directory


@dataclass(frozen=True)
class BundleReport:
    """What a delivered build did: the object, its digests and the month's counts."""

    partner: str
    month: str
    bundle_key: str
    bytes: int
    sha256: str
    checksum_sha256: str  # S3's composite form, "<base64>-<parts>"
    checksum_type: str  # what the final read-back reported: COMPOSITE or FULL_OBJECT
    parts: int
    events: int
    duplicates_removed: int
    late_events: int
    quarantined: int
    empty: bool
    files: int
    certificates: int
    watermark: str | None
    event_id: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the CLI prints it)."""
        return asdict(self)


def builder_version() -> str:
    """This package's version (one version string, read at run time)."""
    from ryuzen_bundle import __version__

    return __version__


def check_request(
    services: BundleServices, target: BundleTarget, request: BuildRequest, now: datetime
) -> BundleStateRecord | None:
    """Apply the refusal rules; return the month's current state record."""
    try:
        validate_partner_id(request.partner)
        validate_month(request.month)
    except ValueError as error:
        raise BuildRefused(str(error), "invalid_request") from None
    if target.config.partner(request.partner) is None:
        raise BuildRefused(
            f"unknown partner {request.partner!r} (not in the stack config)", "unknown_partner"
        )
    if now < month_start(request.month):
        raise BuildRefused(f"{request.month} has not started yet", "month_not_started")
    if not request.allow_open_month and not has_ended(request.month, now):
        ends = iso_millis(next_month_start(request.month))
        raise BuildRefused(
            f"{request.month} has not ended (it ends {ends}); "
            "pass --allow-open-month to bundle it anyway",
            "month_open",
        )
    # "read_state": the month's record and, for a CLEANED month, whether data remains.
    with step("read_state"):
        current = services.states.get(request.partner, request.month)
        cleaned = current is not None and current.state is BundleState.CLEANED
        has_data = (
            cleaned and request.force_rebuild and _month_has_data(services.s3, target, request)
        )
    if current is not None and current.state in FORCED and not request.force_rebuild:
        raise BuildRefused(
            f"{request.partner} {request.month} is already {current.state}; "
            "pass --force-rebuild to build and deliver it again",
            f"already_{current.state.value.lower()}",
        )
    if cleaned and not has_data:
        # Cleanup deleted the month's telemetry after delivery: a rebuild now would sign
        # an empty bundle and overwrite the partner's delivered one with it.
        raise BuildRefused(
            f"{request.partner} {request.month} is CLEANED and its telemetry is gone; "
            "a rebuild would replace the delivered bundle with an empty one",
            "cleaned_month_has_no_data",
        )
    return current


def _month_has_data(s3: Any, target: BundleTarget, request: BuildRequest) -> bool:
    """Whether anything of the partner-month is left in ANALYTICS or SANITIZED."""
    for bucket, prefix in (
        (target.analytics_bucket, analytics_prefix(request.partner, request.month)),
        (target.sanitized_bucket, sanitized_prefix(request.partner, request.month)),
    ):
        if s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0):
            return True
    return False


def _audit(
    audit: AuditLog,
    kind: AuditEventType,
    request: BuildRequest,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    audit.write(
        AuditEvent(
            event_type=kind,
            stage=STAGE,
            partner=request.partner,
            month=request.month,
            occurred_at=now,
            detail=detail,
        )
    )


def _failed(audit: AuditLog, request: BuildRequest, error: BaseException) -> BuildFailed:
    """Log and audit a failure (step and error type, never a message); the error to raise.

    An incomplete month also says why, in its own words: batch ids and counts only.
    """
    failure: dict[str, str] = failure_detail(error)
    if isinstance(error, IncompleteMonth):
        failure["reason"] = error.reason
    logger.error("bundle build failed", extra={**error_fields(error), **failure})
    try:
        _audit(
            audit,
            AuditEventType.ERROR,
            request,
            {**failure, "bundle_key": bundle_key(request.partner, request.month)},
            datetime.now(UTC),
        )
    except Exception as audit_error:  # the audit trail must not mask the original failure
        logger.error("could not write the ERROR audit event", extra=error_fields(audit_error))
    return BuildFailed(failure["step"], error, failure.get("reason"))


def _transition(
    states: BundleStateStore,
    request: BuildRequest,
    to: BundleState,
    *,
    build_id: str,
    expected_version: int,
    attributes: dict[str, str | int | bool],
    now: datetime,
    force: bool = False,
) -> BundleStateRecord:
    """Move the month to ``to`` from ``expected_version``; raise as the store does.

    A write that failed may still have landed: its answer was lost (a timeout or a 5xx
    after the commit), and botocore's retry then met this build's own write — as a
    ``ConcurrentTransition``, or as the same error again. So on any failure the record is
    read back, and when it is this build's (``to``, one version on, this ``build_id``) the
    transition happened and is returned; otherwise the original error is raised.
    """
    try:
        return states.transition(
            request.partner,
            request.month,
            to,
            force=force,
            attributes=attributes,
            now=now,
            expected_version=expected_version,
        )
    except Exception as error:
        try:
            stored = states.get(request.partner, request.month)
        except Exception:
            raise error from None  # the read-back failing says nothing new
        if (
            stored is not None
            and stored.state is to
            and stored.version == expected_version + 1
            and stored.attributes.get("build_id") == build_id
        ):
            logger.warning(
                "the state write landed; only its answer was lost",
                extra={"partner": request.partner, "month": request.month, "state": to.value},
            )
            return stored
        raise


@dataclass
class _Build:
    """The state of one build in progress (what the steps hand each other)."""

    request: BuildRequest
    target: BundleTarget
    services: BundleServices
    tuning: BuildTuning
    created_at: datetime
    work: Path
    key: str
    certificates: list[Certificate] = field(default_factory=list)
    events: MonthEvents = field(default_factory=MonthEvents)
    figures: MonthFigures | None = None
    summary_path: Path | None = None
    report: bytes = b""

    @property
    def counts(self) -> BundleCounts:
        assert self.figures is not None
        return BundleCounts(
            events=self.events.events,
            duplicates_removed=self.events.duplicates_removed,
            late_events=self.figures.late_events,
            quarantined=sum(item.quarantined for item in self.certificates),
        )


def _prepare(build: _Build) -> None:
    """Copy the month to disk, deduplicate, summarize, render the report."""
    s3, target, request = build.services.s3, build.target, build.request
    # Certificates (thousands of small objects) download beside the events, not before.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bundle-certs") as background:
        certificates = background.submit(
            fetch_certificates,
            s3,
            target.sanitized_bucket,
            request.partner,
            request.month,
            build.work / "certificates",
            workers=build.tuning.certificate_workers,
        )
        with step("list_analytics"):
            objects = list_analytics(s3, target.analytics_bucket, request.partner, request.month)
        facts: dict[str, AnalyticsFacts] = {}
        with step("download_analytics"):
            build.events = deduplicate_month(
                _noting_facts(
                    download_in_order(
                        s3,
                        target.analytics_bucket,
                        objects,
                        build.work / "analytics",
                        workers=build.tuning.download_workers,
                    ),
                    facts,
                ),
                sum(item.size for item in objects),
                build.work / "spill",
                build.work / "events",
                build.tuning.dedup,
            )
        with step("fetch_certificates"):
            build.certificates = certificates.result()
    with step("check_complete"):
        check_complete(build.certificates, objects, facts)
    with step("summarize"):
        _summarize(build)


def _noting_facts(
    downloads: Iterable[tuple[AnalyticsObject, Path]], facts: dict[str, AnalyticsFacts]
) -> Iterator[tuple[AnalyticsObject, Path]]:
    """Pass the downloads on, noting each file's footer facts (rows, what analytics read)."""
    for item, path in downloads:
        facts[item.key] = analytics_facts(path)
        yield item, path


def _summarize(build: _Build) -> None:
    """The daily summary (to disk) and the HTML report of the deduplicated month."""
    request = build.request
    days: dict[int, list[Path]] = {}
    for part in build.events.parts:
        days.setdefault(part.day, []).append(part.path)
    build.figures = summarize(
        [(day_date(request.month, day), paths) for day, paths in sorted(days.items())]
    )
    if build.figures.events != build.events.events:
        raise RuntimeError(
            f"the summary counts {build.figures.events} events, "
            f"the parts hold {build.events.events}"
        )
    build.summary_path = build.work / "daily_summary.parquet"
    write_summary(build.figures.summary, build.summary_path)
    build.report = render_report(
        ReportFacts(
            partner=request.partner,
            month=request.month,
            created_at=iso_millis(build.created_at),
            builder_version=builder_version(),
            duplicates_removed=build.events.duplicates_removed,
            quarantined=build.counts.quarantined,
        ),
        build.figures,
    ).encode("utf-8")


def _write_zip(build: _Build, stream: MultipartUploadStream) -> None:
    """Every entry, then the manifest over them and its signed envelope."""
    archive = BundleZip(stream, build.created_at)
    try:
        _write_entries(build, archive)
    except BaseException:
        archive.discard()
        raise
    archive.close()


def _write_entries(build: _Build, archive: BundleZip) -> None:
    """The month's files, the report, schema and README, certificates, then the manifest."""
    assert build.figures is not None and build.summary_path is not None
    request = build.request
    for part in build.events.parts:
        archive.add_file(part.name, part.path, rows=part.rows)
    archive.add_file(
        "data/daily_summary.parquet", build.summary_path, rows=build.figures.summary.height
    )
    archive.add_bytes("report.html", build.report)
    archive.add_bytes("schema.json", analytics_schema_document().encode("utf-8"))
    watermark = watermark_text(build.figures.latest_received_at)
    archive.add_bytes(
        "README.txt",
        readme_text(
            partner=request.partner,
            month=request.month,
            counts=build.counts,
            watermark=watermark,
            certificates=len(build.certificates),
        ).encode("utf-8"),
    )
    for certificate in build.certificates:
        archive.add_file(f"certificates/{certificate.batch_id}.dsse.json", certificate.path)
    stmt = manifest_statement(
        partner=request.partner,
        month=request.month,
        builder_version=builder_version(),
        created_at=build.created_at,
        latest_received_at=build.figures.latest_received_at,
        counts=build.counts,
        files=list(archive.entries),
    )
    with step("sign_manifest"):
        manifest, envelope = sign_manifest(stmt, build.services.signer)
    archive.add_bytes(MANIFEST_NAME, manifest)
    archive.add_bytes(MANIFEST_DSSE_NAME, envelope)


def build_bundle(
    services: BundleServices,
    target: BundleTarget,
    request: BuildRequest,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    tuning: BuildTuning | None = None,
) -> BundleReport:
    """Build, deliver, verify and record the bundle of ``request``'s partner-month.

    Raises BuildRefused (nothing was touched) or BuildFailed (the state where it was, or
    BUILDING or BUILT — never DELIVERED; an ERROR audit event written).
    """
    tuning = tuning or BuildTuning()
    started = time.monotonic()
    created_at = now()
    build_id = new_ulid(created_at)
    try:
        current = check_request(services, target, request, created_at)
        with step("mark_building"):
            record = _transition(
                services.states,
                request,
                BundleState.BUILDING,
                build_id=build_id,
                expected_version=current.version if current is not None else NO_VERSION,
                force=request.force_rebuild and current is not None and current.state in FORCED,
                attributes={
                    "builder_version": builder_version(),
                    "started_at": iso_millis(created_at),
                    "build_id": build_id,
                },
                now=created_at,
            )
    except BuildRefused:
        raise
    except (IllegalTransition, ConcurrentTransition) as error:
        # Chained, so a caller can tell a lost race from a rule.
        raise BuildRefused(str(error), "concurrent_build") from error
    except Exception as error:  # the state could not be read or written: nothing touched
        raise _failed(services.audit, request, error) from error
    logger.info("building", extra={"partner": request.partner, "month": request.month})
    key = bundle_key(request.partner, request.month)

    try:
        # "work_dir": creating or removing the local work directory; inner steps name the rest.
        with (
            step("work_dir"),
            tempfile.TemporaryDirectory(prefix="ryuzen-bundle-", dir=tuning.work_dir) as tmp,
        ):
            build = _Build(request, target, services, tuning, created_at, Path(tmp), key)
            _prepare(build)
            counts = build.counts

            with MultipartUploadStream(
                services.s3,
                target.bundles_bucket,
                key,
                content_type=ZIP_CONTENT_TYPE,
                part_size=tuning.part_size,
                max_in_flight=tuning.max_in_flight,
            ) as stream:
                with step("write_zip"):
                    _write_zip(build, stream)
                sent: UploadedObject = stream.complete()
            files = len(build.certificates) + len(build.events.parts) + 6

        # The object is verified before anything records it: a BUILT state or a
        # BUNDLE_CREATED event always names an object whose checksum was read back.
        with step("verify_upload"):
            verify_uploaded(services.s3, sent)
        with step("store_metadata"):
            store_sha256_metadata(
                services.s3,
                sent,
                content_type=ZIP_CONTENT_TYPE,
                copy_limit=tuning.copy_object_limit,
            )
        with step("verify_metadata"):
            verified: VerifiedChecksum = verify_uploaded(services.s3, sent, expect_metadata=True)

        with step("mark_built"):
            record = _transition(
                services.states,
                request,
                BundleState.BUILT,
                build_id=build_id,
                expected_version=record.version,
                attributes={
                    "bundle_key": key,
                    "bytes": sent.bytes,
                    "sha256": sent.sha256,
                    "events": counts.events,
                },
                now=now(),
            )
        object_facts: dict[str, Any] = {
            "bundle_key": key,
            "bytes": sent.bytes,
            "sha256": sent.sha256,
        }
        with step("audit_created"):
            _audit(
                services.audit,
                AuditEventType.BUNDLE_CREATED,
                request,
                {
                    **object_facts,
                    "events": counts.events,
                    "duplicates_removed": counts.duplicates_removed,
                    "late_events": counts.late_events,
                    "quarantined": counts.quarantined,
                    "files": files,
                    "parts": len(sent.parts),
                },
                now(),
            )

        with step("audit_delivered"):
            _audit(
                services.audit,
                AuditEventType.BUNDLE_DELIVERED,
                request,
                {
                    **object_facts,
                    "checksum_sha256": sent.composite_checksum,
                    "checksum_type": verified.checksum_type,
                    "checksum_verified": True,
                    "parts_verified": verified.parts_checked,
                },
                now(),
            )
        with step("emit_event"):
            event_id = emit_bundle_delivered(
                services.events,
                target.event_bus_name,
                BundleDelivered(
                    partner=request.partner,
                    month=request.month,
                    bundle_key=key,
                    sha256=sent.sha256,
                    size=sent.bytes,
                ),
            )
        with step("mark_delivered"):
            delivered_at = now()
            _transition(
                services.states,
                request,
                BundleState.DELIVERED,
                build_id=build_id,
                expected_version=record.version,
                attributes={
                    "sha256": sent.sha256,
                    "checksum_verified": True,
                    "checksum_sha256": sent.composite_checksum,
                    "delivered_at": iso_millis(delivered_at),
                },
                now=delivered_at,
            )
    except Exception as error:
        raise _failed(services.audit, request, error) from error

    report = BundleReport(
        partner=request.partner,
        month=request.month,
        bundle_key=key,
        bytes=sent.bytes,
        sha256=sent.sha256,
        checksum_sha256=sent.composite_checksum,
        checksum_type=verified.checksum_type,
        parts=len(sent.parts),
        events=counts.events,
        duplicates_removed=counts.duplicates_removed,
        late_events=counts.late_events,
        quarantined=counts.quarantined,
        empty=counts.events == 0,
        files=files,
        certificates=len(build.certificates),
        watermark=watermark_text(build.figures.latest_received_at if build.figures else None),
        event_id=event_id,
        seconds=round(time.monotonic() - started, 3),
    )
    logger.info("delivered", extra={k: v for k, v in report.to_dict().items() if k != "sha256"})
    return report
