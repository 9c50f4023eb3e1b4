"""Stage settings: read once at the edge; a missing or empty variable is named at start."""

from __future__ import annotations

import pytest
from pydantic import Field
from ryuzen_contracts.settings import SettingsError, StageSettings


class IngestSettings(StageSettings):
    raw_bucket: str = Field(alias="RAW_BUCKET")
    audit_table: str = Field(alias="AUDIT_TABLE")
    max_events: int = Field(alias="MAX_EVENTS", default=5000)
    idempotency_table: str | None = Field(alias="IDEMPOTENCY_TABLE", default=None)


FULL = {"RAW_BUCKET": "ryuzen-raw", "AUDIT_TABLE": "TelemetryAudit", "MAX_EVENTS": "100"}


def test_reads_aliased_variables() -> None:
    settings = IngestSettings.from_environ({**FULL, "UNRELATED": "x"})

    assert settings.raw_bucket == "ryuzen-raw"
    assert settings.audit_table == "TelemetryAudit"
    assert settings.max_events == 100
    assert settings.idempotency_table is None


def test_defaults_apply_when_optional_variables_are_absent() -> None:
    settings = IngestSettings.from_environ({"RAW_BUCKET": "b", "AUDIT_TABLE": "t"})

    assert settings.max_events == 5000


def test_values_are_stripped() -> None:
    assert IngestSettings.from_environ({**FULL, "RAW_BUCKET": "  b  "}).raw_bucket == "b"


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FULL.items():
        monkeypatch.setenv(name, value)

    assert IngestSettings.from_environ().raw_bucket == "ryuzen-raw"


@pytest.mark.parametrize("missing", ["RAW_BUCKET", "AUDIT_TABLE"])
def test_a_missing_variable_is_named(missing: str) -> None:
    environ = {name: value for name, value in FULL.items() if name != missing}

    with pytest.raises(SettingsError, match=f"missing environment variable {missing}"):
        IngestSettings.from_environ(environ)


def test_every_missing_variable_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        IngestSettings.from_environ({})

    assert "RAW_BUCKET" in str(caught.value)
    assert "AUDIT_TABLE" in str(caught.value)
    assert "MAX_EVENTS" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("RAW_BUCKET", "", id="empty-required"),
        pytest.param("RAW_BUCKET", "   ", id="blank-required"),
        pytest.param("IDEMPOTENCY_TABLE", "", id="empty-optional"),
        pytest.param("MAX_EVENTS", "", id="empty-int"),
        pytest.param("MAX_EVENTS", "many", id="not-an-int"),
    ],
)
def test_empty_or_invalid_values_are_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"environment variable {name}"):
        IngestSettings.from_environ({**FULL, name: value})


def test_settings_error_does_not_echo_values() -> None:
    # Settings may hold secrets (an API key ARN, a signing key path): never repeat the value.
    with pytest.raises(SettingsError) as caught:
        IngestSettings.from_environ({**FULL, "MAX_EVENTS": "s3cr3t-value"})

    assert "s3cr3t-value" not in str(caught.value)


def test_validation_alias_names_the_variable_too() -> None:
    class Settings(StageSettings):
        bucket: str = Field(validation_alias="BUNDLE_BUCKET")

    assert Settings.from_environ({"BUNDLE_BUCKET": "b"}).bucket == "b"
    with pytest.raises(SettingsError, match="BUNDLE_BUCKET"):
        Settings.from_environ({})


def test_unaliased_fields_use_their_name() -> None:
    class Settings(StageSettings):
        region: str

    assert Settings.from_environ({"region": "eu-west-1"}).region == "eu-west-1"
    with pytest.raises(SettingsError, match="missing environment variable region"):
        Settings.from_environ({"REGION": "eu-west-1"})


def test_settings_are_frozen() -> None:
    settings = IngestSettings.from_environ(FULL)

    with pytest.raises(ValueError, match="frozen"):
        settings.raw_bucket = "other"  # type: ignore[misc]
