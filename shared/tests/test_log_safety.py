"""Error log fields name the type and place of an error, never its message."""

from __future__ import annotations

from ryuzen_contracts.log_safety import error_fields


def test_error_fields_hold_no_message() -> None:
    try:
        raise ValueError("value maria@example.org is invalid")
    except ValueError as error:
        fields = error_fields(error)
    assert fields["error_type"] == "ValueError"
    assert fields["error_at"].startswith("test_log_safety.py:")
    assert "maria" not in repr(fields)


def test_an_unraised_error_has_no_location() -> None:
    assert error_fields(RuntimeError("x")) == {"error_type": "RuntimeError"}
