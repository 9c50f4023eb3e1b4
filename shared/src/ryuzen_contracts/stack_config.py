"""Stack configuration: the ``ryuzen-telemetry:`` namespace of ``Pulumi.<stack>.yaml``.

The Pulumi program, the local stack and the Lambdas all read the same model, so a
stack behaves the same wherever it runs. Invalid config is refused with a message that
names the offending entry (``partners[1] 'Acme': ...``), never silently corrected.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from ryuzen_contracts.ids import PARTNER_ID_PATTERN

NAMESPACE = "ryuzen-telemetry"

PartnerId = Annotated[str, Field(pattern=PARTNER_ID_PATTERN)]
ClientId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{2,63}$")]
# A prefix is matched against the start of ``model.id``: "acme/" or "acme/titan-".
ModelPrefix = Annotated[str, Field(min_length=2, max_length=64, pattern=r"^[a-z0-9][a-z0-9._/-]*$")]
# The Lambda functions the Pulumi program deploys, as ``functions:`` names them.
FunctionName = Literal["ingest", "sanitize", "analytics", "bundlePull", "cleanup", "sweep"]
# The only retention periods CloudWatch Logs accepts.
LogRetentionDays = Literal[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
]  # fmt: skip


class StackConfigError(ValueError):
    """The stack configuration is invalid; the message names every offending entry."""


class _ConfigModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class Partner(_ConfigModel):
    """A model provider: owns the model ids that start with one of its prefixes."""

    id: PartnerId
    model_prefixes: Annotated[list[ModelPrefix], Field(min_length=1, max_length=64)]
    bundle_retention_days: Annotated[int, Field(ge=1, le=3650)] = 90
    # [0-9], not \d: pydantic's regex engine treats \d as any Unicode digit.
    aws_account_id: Annotated[str, Field(pattern=r"^[0-9]{12}$")] | None = None
    # Deployment only: the API Gateway usage plan of the partner's pull key (requests per
    # second, burst, requests per day; no quota when null). A partner pulls one bundle a
    # month, so the defaults are small.
    pull_rate_limit: Annotated[float, Field(gt=0, le=1_000)] = 5.0
    pull_burst_limit: Annotated[int, Field(gt=0, le=5_000)] = 10
    pull_daily_quota: Annotated[int, Field(ge=1)] | None = 1_000


class IngestClient(_ConfigModel):
    """A model-serving client that sends telemetry, and the partners it may send for."""

    id: ClientId
    allowed_partners: Annotated[list[PartnerId], Field(min_length=1)]
    rate_limit: Annotated[float, Field(gt=0, le=10_000)] = 50.0
    burst_limit: Annotated[int, Field(gt=0, le=5_000)] = 100
    # Deployment only: requests per day in the client's usage plan; null means no quota.
    daily_quota: Annotated[int, Field(ge=1)] | None = None


class Retention(_ConfigModel):
    """How long working telemetry may live before a sweep deletes it."""

    raw_hours: Annotated[int, Field(ge=1, le=24)] = 2
    quarantine_days: Annotated[int, Field(ge=1, le=90)] = 14


class FunctionTuning(_ConfigModel):
    """Deployment only: one Lambda's size; a field left out takes the program's default."""

    memory_mb: Annotated[int, Field(ge=128, le=10_240)] | None = None
    timeout_seconds: Annotated[int, Field(ge=1, le=900)] | None = None
    # Null: the function draws on the account's unreserved concurrency.
    reserved_concurrency: Annotated[int, Field(ge=1, le=1_000)] | None = None


# Fargate's memory range (MiB) per CPU size (vCPU units), in 1 GiB steps.
_FARGATE_MEMORY = {1024: (2048, 8192), 2048: (4096, 16384), 4096: (8192, 30720)}


class BundleTask(_ConfigModel):
    """Deployment only: the Fargate task that builds a partner's monthly bundle."""

    cpu: Literal[1024, 2048, 4096] = 1024
    memory_mb: int = 4096
    # The month's objects are copied to local disk while the ZIP streams out.
    ephemeral_storage_gib: Annotated[int, Field(ge=21, le=200)] = 50

    @model_validator(mode="after")
    def _fargate_accepts_the_size(self) -> BundleTask:
        low, high = _FARGATE_MEMORY[self.cpu]
        if not (low <= self.memory_mb <= high and self.memory_mb % 1024 == 0):
            raise ValueError(
                f"memoryMb {self.memory_mb} does not fit cpu {self.cpu}: Fargate takes "
                f"{low}-{high} MiB in steps of 1024"
            )
        return self


class StackConfig(_ConfigModel):
    """Everything one stack needs to know about partners, clients and retention."""

    partners: Annotated[list[Partner], Field(min_length=1)]
    ingest_clients: list[IngestClient] = Field(default_factory=list)
    retention: Retention = Field(default_factory=Retention)
    presigned_url_ttl_seconds: Annotated[int, Field(ge=60, le=43_200)] = 900
    on_pii: Literal["redact", "quarantine"] = "redact"
    # Keep rejected raw lines in quarantine (under its own KMS key) for forensics. Off by
    # default: the quarantine records alone (reason, field, rule, value hash) hold no values.
    quarantine_raw_lines: bool = False

    # Deployment only (the Pulumi program; the stages never read these, and
    # ``to_runtime_json`` leaves them out). Each default is safe for a production stack.
    functions: dict[FunctionName, FunctionTuning] = Field(default_factory=dict)
    bundle_task: BundleTask = Field(default_factory=BundleTask)
    # Where alarms are mailed (an SNS email subscription); null: subscribe by hand.
    alarm_email: (
        Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None
    ) = None
    log_retention_days: LogRetentionDays = 30
    # Lifecycle backstop of SANITIZED and ANALYTICS: cleanup deletes a month once its
    # bundle is delivered, so this only catches a month that never was. It must outlast a
    # month plus the bundle run and its retries, hence at least 45 days.
    working_data_backstop_days: Annotated[int, Field(ge=45, le=730)] = 100
    # Athena cancels a query of the workgroup past this many bytes scanned (min 10 MiB).
    athena_bytes_scanned_cutoff: Annotated[int, Field(ge=10_485_760)] = 10 * 2**30
    # Deletion protection of tables and (not force-destroyed) buckets; null: on for every
    # stack but one named "dev".
    deletion_protection: bool | None = None
    # SCRUB_VIOLATION-class quarantines per hour above which the alarm fires.
    scrub_violation_alarm_threshold: Annotated[int, Field(ge=1)] = 100
    # API Gateway's CloudWatch role is one setting per account and region: let only one
    # stack there manage it (false on the others).
    manage_api_gateway_account: bool = True

    @model_validator(mode="after")
    def _entries_are_consistent(self) -> StackConfig:
        problems = [
            *_duplicates("partners", [p.id for p in self.partners]),
            *_duplicates("ingestClients", [c.id for c in self.ingest_clients]),
            *_overlapping_prefixes(self.partners),
            *_unknown_partners(self.ingest_clients, {p.id for p in self.partners}),
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def partner_for_model(self, model_id: str) -> Partner | None:
        """The partner owning ``model_id``, or None.

        Prefixes never overlap, so at most one partner matches.
        """
        for partner in self.partners:
            if any(model_id.startswith(prefix) for prefix in partner.model_prefixes):
                return partner
        return None

    def partner(self, partner_id: str) -> Partner | None:
        """The partner with this id, or None."""
        return next((p for p in self.partners if p.id == partner_id), None)

    def client(self, client_id: str) -> IngestClient | None:
        """The ingest client with this id, or None."""
        return next((c for c in self.ingest_clients if c.id == client_id), None)

    def to_json(self) -> str:
        """Compact JSON in the stack-file spelling (camelCase), for a Lambda environment."""
        return self.model_dump_json(by_alias=True, exclude_defaults=False)

    def to_runtime_json(self) -> str:
        """What the stages read, as short as ``from_json`` can take it back.

        Lambda allows 4 KB for a function's whole environment, ``STACK_CONFIG`` included,
        so the Pulumi program deploys this form: default values and the deployment-only
        fields (``DEPLOYMENT_FIELDS``) are left out. ``from_json`` restores the defaults,
        so every field a stage reads comes back equal.
        """
        return self.model_dump_json(
            by_alias=True, exclude_defaults=True, exclude=_runtime_exclusions()
        )

    @classmethod
    def from_json(cls, text: str) -> StackConfig:
        """Parse the JSON that ``to_json`` wrote, with the same error messages as a stack file."""
        # Parsed first so the error messages can name entries by id, as for a stack file.
        try:
            values = json.loads(text)
        except ValueError as error:
            raise StackConfigError(f"config: not valid JSON ({error})") from None
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise StackConfigError(
                _describe(error, values if isinstance(values, Mapping) else {})
            ) from None

    @classmethod
    def from_pulumi_values(cls, values: Mapping[str, Any]) -> StackConfig:
        """Build from ``ryuzen-telemetry:``-namespaced keys, or bare keys as pulumi.Config gives."""
        prefix = f"{NAMESPACE}:"
        plain = {str(key).removeprefix(prefix): value for key, value in values.items()}
        try:
            return cls.model_validate(plain)
        except ValidationError as error:
            raise StackConfigError(_describe(error, plain)) from None


# Fields only the Pulumi program reads, per model: never in a stage's STACK_CONFIG.
DEPLOYMENT_FIELDS: dict[str, frozenset[str]] = {
    "stack": frozenset(
        {
            "functions",
            "bundle_task",
            "alarm_email",
            "log_retention_days",
            "working_data_backstop_days",
            "athena_bytes_scanned_cutoff",
            "deletion_protection",
            "scrub_violation_alarm_threshold",
            "manage_api_gateway_account",
        }
    ),
    "partners": frozenset({"pull_rate_limit", "pull_burst_limit", "pull_daily_quota"}),
    "ingest_clients": frozenset({"daily_quota"}),
}


def _runtime_exclusions() -> dict[str, Any]:
    exclusions: dict[str, Any] = dict.fromkeys(DEPLOYMENT_FIELDS["stack"], True)
    for section in ("partners", "ingest_clients"):
        exclusions[section] = {"__all__": dict.fromkeys(DEPLOYMENT_FIELDS[section], True)}
    return exclusions


def stack_file(project_dir: Path, stack: str) -> Path:
    """The path of ``Pulumi.<stack>.yaml`` in ``project_dir``."""
    return project_dir / f"Pulumi.{stack}.yaml"


def load_stack_config(path: Path) -> StackConfig:
    """Read the ``ryuzen-telemetry:`` keys of a Pulumi stack file."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise StackConfigError(f"{path}: not valid YAML ({error})") from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise StackConfigError(f"{path}: no 'config:' mapping")
    # YAML keys need not be strings (``1: x``); those are never ours.
    ours = {
        key: value
        for key, value in config.items()
        if isinstance(key, str) and key.startswith(f"{NAMESPACE}:")
    }
    try:
        return StackConfig.from_pulumi_values(ours)
    except StackConfigError as error:
        raise StackConfigError(f"{path}: {error}") from None


def _duplicates(section: str, ids: list[str]) -> list[str]:
    seen: set[str] = set()
    problems = []
    for index, entry_id in enumerate(ids):
        if entry_id in seen:
            problems.append(f"{section}[{index}] '{entry_id}': duplicate id")
        seen.add(entry_id)
    return problems


def _overlapping_prefixes(partners: list[Partner]) -> list[str]:
    # Two partners must never be able to claim the same model id: a prefix of one
    # partner may not start with (or be the start of) a prefix of another.
    owned = [(p.id, prefix) for p in partners for prefix in p.model_prefixes]
    problems = []
    for i, (owner_a, prefix_a) in enumerate(owned):
        for owner_b, prefix_b in owned[i + 1 :]:
            if owner_a != owner_b and (
                prefix_a.startswith(prefix_b) or prefix_b.startswith(prefix_a)
            ):
                problems.append(
                    f"partners '{owner_a}' and '{owner_b}': model prefixes "
                    f"'{prefix_a}' and '{prefix_b}' overlap"
                )
    return problems


def _unknown_partners(clients: list[IngestClient], partner_ids: set[str]) -> list[str]:
    return [
        f"ingestClients[{index}] '{client.id}': unknown partner '{partner_id}'"
        for index, client in enumerate(clients)
        for partner_id in client.allowed_partners
        if partner_id not in partner_ids
    ]


def _describe(error: ValidationError, values: Mapping[str, Any]) -> str:
    """One line per problem, naming the entry by section, index and (when readable) its id."""
    lines = []
    for problem in error.errors(include_url=False, include_input=False):
        location = list(problem["loc"])
        where = ".".join(str(part) for part in location) or "config"
        if len(location) >= 2 and isinstance(location[1], int):
            section, index = str(location[0]), location[1]
            entries = values.get(section)
            entry_id = None
            if (
                isinstance(entries, list)
                and index < len(entries)
                and isinstance(entries[index], dict)
            ):
                entry_id = entries[index].get("id")
            rest = ".".join(str(part) for part in location[2:])
            where = f"{section}[{index}]" + (f" '{entry_id}'" if entry_id is not None else "")
            where += f" {rest}" if rest else ""
        message = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(
            message
            if where == "config" and problem["type"] == "value_error"
            else f"{where}: {message}"
        )
    return "; ".join(lines)
