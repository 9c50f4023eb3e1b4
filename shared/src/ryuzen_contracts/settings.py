"""Stage settings: read from the environment once, at the handler edge.

Each stage subclasses ``StageSettings`` with the variables it needs, spelled as the
environment spells them (``raw_bucket: str = Field(alias="RAW_BUCKET")``). A missing
or empty variable fails at start with its name, not later with a ``KeyError`` deep in
the logic.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from ryuzen_contracts.log_safety import error_fields

# Enough for every problem of a misconfigured stage, short enough for one log line.
_MESSAGE_LIMIT = 500


class SettingsError(RuntimeError):
    """A required environment variable is missing or invalid; the message names it."""


def settings_error_fields(error: BaseException) -> dict[str, str]:
    """Log fields for a failure to read a stage's settings.

    ``log_safety.error_fields`` (type and place), plus the message when it is a
    SettingsError: ``from_environ`` builds that message from variable names and what is
    wrong with them, leaving pydantic's input values out, so the operator reads what to
    fix. Any other error's message could quote a value, and is left out.
    """
    fields = error_fields(error)
    if isinstance(error, SettingsError):
        fields["error"] = str(error)[:_MESSAGE_LIMIT]
    return fields


class StageSettings(BaseModel):
    """Base for every stage's settings model."""

    model_config = ConfigDict(
        frozen=True, extra="ignore", str_strip_whitespace=True, str_min_length=1
    )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Build the settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        wanted = {_env_name(name, field) for name, field in cls.model_fields.items()}
        try:
            return cls.model_validate({key: env[key] for key in wanted if key in env})
        except ValidationError as error:
            problems = []
            for problem in error.errors(include_url=False, include_input=False):
                name = ".".join(str(part) for part in problem["loc"])
                if not name:  # a model-level validator: its message names the variables
                    problems.append(str(problem["msg"]).removeprefix("Value error, "))
                elif problem["type"] == "missing":
                    problems.append(f"missing environment variable {name}")
                else:
                    problems.append(f"environment variable {name}: {problem['msg']}")
            raise SettingsError("; ".join(problems)) from None


def _env_name(name: str, field: FieldInfo) -> str:
    # Field(alias=...) or Field(validation_alias=...): either names the variable.
    if field.alias:
        return field.alias
    if isinstance(field.validation_alias, str):
        return field.validation_alias
    return name
