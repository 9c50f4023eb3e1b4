"""Validators: checksums and range checks that keep the scrubber's precision high."""

from __future__ import annotations

import re

import pytest
from ryuzen_sanitize.scrubber import RULES
from ryuzen_sanitize.scrubber.validators import (
    IBAN_LENGTHS,
    iban_ok,
    looks_opaque,
    luhn_ok,
    validate,
)


def _rule(key: str):  # type: ignore[no-untyped-def]
    return next(rule for rule in RULES if rule.key == key)


def _verdict(key: str, text: str) -> str | None:
    """What rule ``key`` would redact in ``text`` (first validated match), or None."""
    rule = _rule(key)
    for match in rule.python_regex.finditer(text):
        span = validate(rule.validator, match)
        if span is not None:
            return text[span[0] : span[1]]
    return None


@pytest.mark.parametrize(
    ("digits", "ok"),
    [
        pytest.param("4111111111111111", True, id="visa-test"),
        pytest.param("5555555555554444", True, id="mc-test"),
        pytest.param("378282246310005", True, id="amex-test"),
        pytest.param("79927398713", True, id="wikipedia"),
        pytest.param("4111111111111112", False, id="off-by-one"),
        pytest.param("79927398710", False, id="wikipedia-bad"),
        pytest.param("0", True, id="zero"),
    ],
)
def test_luhn(digits: str, ok: bool) -> None:
    assert luhn_ok(digits) is ok


@pytest.mark.parametrize(
    ("iban", "ok"),
    [
        pytest.param("DE89370400440532013000", True, id="de"),
        pytest.param("GB82WEST12345698765432", True, id="gb"),
        pytest.param("FR1420041010050500013M02606", True, id="fr-letters"),
        pytest.param("NL91ABNA0417164300", True, id="nl"),
        pytest.param("NO9386011117947", True, id="no-shortest"),
        pytest.param("DE89370400440532013001", False, id="bad-check"),
        pytest.param("DE8937040044053201300", False, id="short"),
        pytest.param("XX89370400440532013000", False, id="unknown-country"),
        pytest.param("GB82WEST1234569876543", False, id="gb-short"),
    ],
)
def test_iban_mod97(iban: str, ok: bool) -> None:
    assert iban_ok(iban) is ok


def test_iban_lengths_are_plausible() -> None:
    assert all(15 <= length <= 34 for length in IBAN_LENGTHS.values())
    assert all(re.fullmatch("[A-Z]{2}", country) for country in IBAN_LENGTHS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("from 10.12.0.7", "10.12.0.7", id="private"),
        pytest.param("from 10.12.0.7:8443", "10.12.0.7:8443", id="port"),
        pytest.param("from 223.255.255.254", "223.255.255.254", id="top-unicast"),
        pytest.param("from 224.0.0.1", None, id="multicast"),
        pytest.param("from 127.0.0.1", None, id="loopback"),
        pytest.param("from 0.1.2.3", None, id="this-network"),
        pytest.param("from 10.0.0.256", None, id="octet-256"),
        pytest.param("v10.1.2.3", None, id="v-prefix"),
        pytest.param("build: 10.1.2.3", None, id="build-colon"),
        pytest.param("app_version=10.1.2.3", None, id="compound-version"),
        pytest.param("10.1.2.3.4", None, id="five-parts"),
        pytest.param("10.1.2.3-rc1", None, id="prerelease"),
    ],
)
def test_ipv4_ranges_and_context(text: str, expected: str | None) -> None:
    assert _verdict("IPV4/address", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("x 2001:db8::1 y", "2001:db8::1", id="compressed"),
        pytest.param("x ::1 y", None, id="loopback"),
        pytest.param("x :: y", None, id="unspecified"),
        pytest.param("x 05:35:14 y", None, id="time"),
        pytest.param("x 00:1a:2b:3c:4d:5e y", None, id="mac"),
        pytest.param("x beef::cafe y", None, id="two-hex-words"),
        pytest.param("x fe80::1 y", "fe80::1", id="two-groups-with-digit"),
        pytest.param("x [2001:db8::1 y", None, id="unclosed-bracket"),
    ],
)
def test_ipv6(text: str, expected: str | None) -> None:
    assert _verdict("IPV6/address", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("536-22-1234", "536-22-1234", id="valid"),
        pytest.param("000-22-1234", None, id="area-000"),
        pytest.param("666-22-1234", None, id="area-666"),
        pytest.param("900-22-1234", None, id="area-900"),
        pytest.param("536-00-1234", None, id="group-00"),
        pytest.param("536-22-0000", None, id="serial-0000"),
        pytest.param("536-22-1234-5", None, id="longer-id"),
    ],
)
def test_ssn(text: str, expected: str | None) -> None:
    assert _verdict("SSN/formatted", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("4111 1111 1111 1111", "4111 1111 1111 1111", id="visa"),
        pytest.param("1764308114000", None, id="epoch-ms-luhn-or-not"),
        pytest.param("9111111111111111", None, id="no-network"),
        pytest.param("411111111111111", None, id="visa-wrong-length"),
        pytest.param("+4222222222222", None, id="phone-lead"),
        pytest.param("4111-1111 1111 1111", None, id="mixed-separators"),
    ],
)
def test_payment_card(text: str, expected: str | None) -> None:
    assert _verdict("CREDIT_CARD/pan", text) == expected


@pytest.mark.parametrize(
    ("value", "opaque"),
    [
        pytest.param("8f3a9c0d1e2b4a5f", True, id="hex"),
        pytest.param("wJalrXUtnFEMIK7MDENGbPxRfiCY", True, id="mixed-case-long"),
        pytest.param("AuthenticationFailedException", False, id="camel-case"),
        pytest.param("authentication", False, id="word"),
        pytest.param("2026-11-28T05:35:14Z", False, id="timestamp"),
        pytest.param("12345", False, id="short-number"),
        pytest.param("123456789012", True, id="long-number"),
    ],
)
def test_looks_opaque(value: str, opaque: bool) -> None:
    assert looks_opaque(value, 8) is opaque


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==", id="user-password"),
        pytest.param("Basic YWRtaW5pc3RyYXRvcg==", None, id="no-colon"),
        pytest.param("Basic authentication", None, id="prose"),
    ],
)
def test_basic_credentials(text: str, expected: str | None) -> None:
    assert _verdict("BEARER_TOKEN/basic", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("for user Maria Garcia", "Maria Garcia", id="name"),
        pytest.param("for user Admin", None, id="deny-list"),
        pytest.param("customer: Unknown", None, id="deny-list-2"),
        pytest.param("user: maria", None, id="lowercase"),
    ],
)
def test_person_name(text: str, expected: str | None) -> None:
    assert _verdict("PERSON_NAME/context", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("/x?token=abc", "abc", id="token"),
        pytest.param("/x?max_tokens=100000", None, id="count"),
        pytest.param("/x?session=true", None, id="flag"),
    ],
)
def test_query_secret(text: str, expected: str | None) -> None:
    assert _verdict("URL_TOKEN/query", text) == expected
