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


class IngestClient(_ConfigModel):
    """A model-serving client that sends telemetry, and the partners it may send for."""

    id: ClientId
    allowed_partners: Annotated[list[PartnerId], Field(min_length=1)]
    rate_limit: Annotated[float, Field(gt=0, le=10_000)] = 50.0
    burst_limit: Annotated[int, Field(gt=0, le=5_000)] = 100


class Retention(_ConfigModel):
    """How long working telemetry may live before a sweep deletes it."""

    raw_hours: Annotated[int, Field(ge=1, le=24)] = 2
    quarantine_days: Annotated[int, Field(ge=1, le=90)] = 14


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
