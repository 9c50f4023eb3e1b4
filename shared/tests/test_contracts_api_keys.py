"""API key id → identity mappings: parsing from settings, and reading the key id of an event."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import Field, ValidationInfo, field_validator
from ryuzen_contracts.api_keys import api_key_id, identity_of, parse_api_key_map
from ryuzen_contracts.settings import SettingsError, StageSettings, settings_error_fields

PARTNERS = ["acme", "nimbus-ai"]
SECRET_LOOKING_KEY_ID = "k7f3a9d2e1"  # key ids are not secrets, but are never echoed


# --- parse_api_key_map ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(json.dumps({"k-1": "acme", "k-2": "nimbus-ai"}), id="json-text"),
        pytest.param({"k-1": "acme", "k-2": "nimbus-ai"}, id="parsed-mapping"),
    ],
)
def test_a_mapping_of_known_identities_is_parsed(value: object) -> None:
    assert parse_api_key_map(value, identity="partner", known=PARTNERS) == {
        "k-1": "acme",
        "k-2": "nimbus-ai",
    }


def test_an_empty_mapping_is_allowed() -> None:
    # A stack may have no partner keys yet: every pull is then 403, not a broken deploy.
    assert parse_api_key_map("{}", identity="partner", known=PARTNERS) == {}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("{not json", id="not-json"),
        pytest.param("[1, 2]", id="json-array"),
        pytest.param('"acme"', id="json-string"),
        pytest.param("null", id="json-null"),
        pytest.param(json.dumps({"k-1": 7}), id="number-value"),
        pytest.param(json.dumps({"k-1": ["acme"]}), id="list-value"),
        pytest.param(json.dumps({"k-1": ""}), id="empty-value"),
        pytest.param(json.dumps({"": "acme"}), id="empty-key-id"),
        pytest.param(["acme"], id="a-list"),
        pytest.param(None, id="none"),
    ],
)
def test_anything_but_an_object_of_texts_is_refused(value: object) -> None:
    with pytest.raises(ValueError) as refused:
        parse_api_key_map(value, identity="partner", known=PARTNERS)
    assert str(refused.value) == "must be a JSON object of apiKeyId to partner id"


def test_unknown_identities_are_named_sorted_and_key_ids_are_not() -> None:
    value = json.dumps({SECRET_LOOKING_KEY_ID: "initech", "k-2": "acme", "k-3": "globex"})
    with pytest.raises(ValueError) as refused:
        parse_api_key_map(value, identity="ingest client", known=["edge-gateway"])
    message = str(refused.value)
    assert message == "names ingest clients the stack does not have: acme, globex, initech"
    assert SECRET_LOOKING_KEY_ID not in message


def test_without_known_ids_only_the_shape_is_checked() -> None:
    assert parse_api_key_map('{"k": "anyone"}', identity="partner", known=None) == {"k": "anyone"}


# --- api_key_id and identity_of --------------------------------------------------------------


def proxy_event(identity: Any) -> dict[str, Any]:
    return {"httpMethod": "GET", "requestContext": {"requestId": "r-1", "identity": identity}}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        pytest.param(proxy_event({"apiKeyId": "k-1", "apiKey": "x"}), "k-1", id="gateway-event"),
        pytest.param(proxy_event({"apiKeyId": None}), None, id="no-key"),
        pytest.param(proxy_event({"apiKeyId": ""}), None, id="empty-key-id"),
        pytest.param(proxy_event({"apiKeyId": 12}), None, id="not-text"),
        pytest.param(proxy_event(None), None, id="identity-null"),
        pytest.param(proxy_event("k-1"), None, id="identity-not-an-object"),
        pytest.param({"requestContext": None}, None, id="context-null"),
        pytest.param({"requestContext": ["k-1"]}, None, id="context-not-an-object"),
        pytest.param({}, None, id="no-context"),
    ],
)
def test_the_api_key_id_of_an_event(event: dict[str, Any], expected: str | None) -> None:
    assert api_key_id(event) == expected


def test_identity_of_maps_known_key_ids_only() -> None:
    keys = {"k-1": "acme"}
    assert identity_of(keys, "k-1") == "acme"
    assert identity_of(keys, "k-2") is None
    assert identity_of(keys, None) is None


# --- in a stage's settings ----------------------------------------------------------------------


class PartnerKeySettings(StageSettings):
    """How a stage declares its mapping (the pull API's shape, with a plain partner list)."""

    partners: list[str] = Field(alias="PARTNERS")
    api_key_partners: dict[str, str] = Field(alias="API_KEY_PARTNERS")

    @field_validator("partners", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return value.split(",") if isinstance(value, str) else value

    @field_validator("api_key_partners", mode="before")
    @classmethod
    def _parse(cls, value: Any, info: ValidationInfo) -> dict[str, str]:
        return parse_api_key_map(value, identity="partner", known=info.data.get("partners"))


def test_a_bad_mapping_is_a_settings_error_naming_the_variable() -> None:
    environ = {
        "PARTNERS": "acme,nimbus-ai",
        "API_KEY_PARTNERS": json.dumps({SECRET_LOOKING_KEY_ID: "initech"}),
    }
    with pytest.raises(SettingsError) as refused:
        PartnerKeySettings.from_environ(environ)

    # Logged with its message (it says what to fix), which names no key id
    fields = settings_error_fields(refused.value)
    assert fields["error_type"] == "SettingsError"
    assert fields["error"].startswith("environment variable API_KEY_PARTNERS: ")
    assert fields["error"].endswith("names partners the stack does not have: initech")
    assert SECRET_LOOKING_KEY_ID not in repr(fields)


def test_other_errors_are_logged_without_their_message() -> None:
    try:
        raise ValueError(f"key {SECRET_LOOKING_KEY_ID} is odd")
    except ValueError as error:
        fields = settings_error_fields(error)
    assert set(fields) == {"error_type", "error_at"}
    assert SECRET_LOOKING_KEY_ID not in repr(fields)


def test_settings_parse_a_valid_mapping() -> None:
    settings = PartnerKeySettings.from_environ(
        {"PARTNERS": "acme", "API_KEY_PARTNERS": '{"k-1": "acme"}'}
    )
    assert settings.api_key_partners == {"k-1": "acme"}
