"""The second scan's fast path: its prefilters are necessary conditions, so it finds
exactly what the plain scan (every rule's pattern and validator over every text) finds.

The plain scan is kept as ``_rules_found_reference`` / ``_second_scan_reference``. The
properties here compare the two on random texts, on texts generated from each rule's
own pattern, and on every positive and negative of the per-rule tables; the table tests
check that a known positive of each rule variant gets through its prefilter.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ryuzen_sanitize.scrubber import RULE_IDS, RULES, Rule, marker, prefilters
from ryuzen_sanitize.scrubber.prefilters import (
    ALL_TRAITS,
    PREFILTERS,
    TRAITS,
    current_prefilters,
    fingerprint,
    holds,
    is_current,
    shape,
    trait_mask,
    traits,
)
from ryuzen_sanitize.scrubber.second_scan import (
    _plans,
    _rules_found,
    _rules_found_reference,
    _second_scan_reference,
    second_scan,
)
from ryuzen_sanitize.scrubber.validators import validate
from test_scrubber_properties import DECOYS, ENGINE_TRAPS, PII, SEPARATORS
from test_scrubber_rules import NEGATIVES, POSITIVES

RULES_BY_KEY = {rule.key: rule for rule in RULES}
# The module (the package's ``second_scan`` attribute is the function of that name).
SECOND_SCAN_MODULE = importlib.import_module("ryuzen_sanitize.scrubber.second_scan")

# 100 examples per property keep the suite fast; raise for a long hunt.
EXAMPLES = int(os.environ.get("SCRUBBER_HYPOTHESIS_EXAMPLES", "100"))
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def finds_valid(rule: Rule, text: str) -> bool:
    """Whether ``rule`` alone (pattern and validator) finds PII in ``text``."""
    return any(validate(rule.validator, m) is not None for m in rule.python_regex.finditer(text))


# --- the prefilter table --------------------------------------------------------------


def test_every_rule_has_a_current_prefilter() -> None:
    # One prefilter per rule variant, in rule-set order, derived from today's pattern:
    # a changed rule makes this fail until its prefilter is derived (and argued) again.
    assert [prefilter.key for prefilter in PREFILTERS] == [rule.key for rule in RULES]
    stale = [p.key for p in PREFILTERS if not is_current(p, RULES_BY_KEY[p.key])]
    assert stale == [], {key: fingerprint(RULES_BY_KEY[key].pattern) for key in stale}
    assert set(current_prefilters()) == set(RULES_BY_KEY)
    assert all(prefilter.gates and prefilter.why for prefilter in PREFILTERS)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda r: dataclasses.replace(r, pattern=r.pattern + "|zzz"), id="pattern"),
        pytest.param(lambda r: dataclasses.replace(r, flags=""), id="flags"),
        pytest.param(lambda r: dataclasses.replace(r, variant="other"), id="variant"),
    ],
)
def test_a_stale_prefilter_is_not_used(
    monkeypatch: pytest.MonkeyPatch, change: Callable[[Rule], Rule]
) -> None:
    # EMAIL's prefilter needs a "@": a rule changed to match "zzz" too must no longer be
    # gated by it. The changed rule then runs on every text, which is exact.
    index = next(i for i, rule in enumerate(RULES) if rule.id == "EMAIL")
    changed = change(RULES[index])
    rules = (*RULES[:index], changed, *RULES[index + 1 :])
    monkeypatch.setattr(prefilters, "RULES", rules)
    monkeypatch.setattr(SECOND_SCAN_MODULE, "RULES", rules)
    assert changed.key not in current_prefilters()
    plans = _plans()
    for plan in plans:
        steps = [step for step in plan if step.rule_id == "EMAIL"]
        assert len(steps) == 1
        assert steps[0].gates == ()
    if "zzz" in changed.pattern:
        monkeypatch.setattr(SECOND_SCAN_MODULE, "_PLANS", plans)
        assert _rules_found("zzz") == ["EMAIL"] == _rules_found_reference("zzz")


def test_plans_keep_rule_order_and_drop_only_rules_needing_an_absent_trait() -> None:
    plans = _plans()
    assert len(plans) == ALL_TRAITS + 1
    assert [step.rule_id for step in plans[ALL_TRAITS]] == [rule.id for rule in RULES]
    for mask, plan in enumerate(plans):
        present = {name for bit, name in enumerate(TRAITS) if mask >> bit & 1}
        expected = [RULES_BY_KEY[p.key].id for p in PREFILTERS if p.needs <= present]
        assert [step.rule_id for step in plan] == expected


# --- traits and shapes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected_shape", "expected_traits"),
    [
        ("req_a5e60d98f9cd7ded", b"aaaaa0a00a00a0aa0aaa", {"digit"}),
        ("enterprise", b"aaaaaaaaaa", set()),
        ("HTTP", b"AAAA", {"upper"}),
        ("a b", b"a.a", {"symbol"}),
        ("Ab1_ -\t", b"Aa0a...", {"symbol", "digit", "upper"}),
        ("é", b"UU", {"symbol", "upper"}),
        ("é7", b"UU0", {"symbol", "digit", "upper"}),
        ("\ud800", b"UUU", {"symbol", "upper"}),  # a lone surrogate
        ("\x1c\x7f", b"..", {"symbol"}),
    ],
)
def test_shape_and_traits(text: str, expected_shape: bytes, expected_traits: set[str]) -> None:
    assert shape(text) == expected_shape
    assert traits(text) == expected_traits
    assert trait_mask(shape(text)) == sum(1 << TRAITS.index(name) for name in expected_traits)


@given(st.text())
def test_traits_are_what_they_say(text: str) -> None:
    # The definitions, checked character by character.
    word = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
    found = traits(text)
    assert ("symbol" in found) == any(char not in word for char in text)
    assert ("digit" in found) == any("0" <= char <= "9" for char in text)
    assert ("upper" in found) == any("A" <= char <= "Z" or char > "\x7f" for char in text)
    assert len(shape(text)) == len(text.encode("utf-8", "surrogatepass"))


# --- the prefilters are necessary: texts that hold a match of the rule ------------------


def _check_necessary(rule: Rule, text: str) -> None:
    match = rule.python_regex.search(text)
    assert match is not None
    prefilter = current_prefilters()[rule.key]
    # The traits must come from the match itself, not from the padding around it.
    assert prefilter.needs <= traits(match.group()), (prefilter.needs, match.group())
    assert holds(prefilter, text), text
    assert holds(prefilter, match.group()), match.group()
    assert _rules_found(text) == _rules_found_reference(text)


@pytest.mark.parametrize("rule", RULES, ids=[rule.key for rule in RULES])
@PROPERTY_SETTINGS
@given(data=st.data())
def test_prefilter_holds_for_any_match_of_its_rule(rule: Rule, data: st.DataObject) -> None:
    # Hypothesis builds texts from the rule's own pattern (padded with arbitrary text),
    # so every one holds a match: the prefilter must pass it, whatever the validator says.
    _check_necessary(rule, data.draw(st.from_regex(rule.python_regex), label="text"))


@pytest.mark.parametrize("rule", RULES, ids=[rule.key for rule in RULES])
@PROPERTY_SETTINGS
@given(data=st.data())
def test_prefilter_holds_for_any_ascii_match_of_its_rule(rule: Rule, data: st.DataObject) -> None:
    # ASCII only: the case where the shape and folded arguments do all the work.
    ascii_text = st.from_regex(rule.python_regex, alphabet=st.characters(codec="ascii"))
    _check_necessary(rule, data.draw(ascii_text, label="text"))


@pytest.mark.parametrize(
    ("text", "rule"),
    [pytest.param(text, rule, id=case) for case, text, rule, _ in POSITIVES],
)
def test_table_positives_pass_every_prefilter_that_matters(text: str, rule: str) -> None:
    # Every rule variant whose pattern matches the text (valid or not) is let through,
    # and the fast scan reports exactly what the plain one does, the expected rule too.
    for variant in RULES:
        if variant.python_regex.search(text) is not None:
            assert holds(current_prefilters()[variant.key], text), variant.key
    assert _rules_found(text) == _rules_found_reference(text)
    assert (0, rule) in second_scan([text])


@pytest.mark.parametrize(("text",), [pytest.param(text, id=case) for case, text in NEGATIVES])
def test_table_negatives_agree(text: str) -> None:
    assert _rules_found(text) == _rules_found_reference(text) == []


# One known positive per rule variant, and a few that take the rarer paths through the
# prefilters (upper-case context words, a non-ASCII name right after its context word,
# characters whose lower case is longer than one character).
VARIANT_POSITIVES: list[tuple[str, str]] = [
    ("URL_CREDENTIALS/userinfo", "connect failed: postgres://admin:s3cret@db.internal:5432/app"),
    ("URL_TOKEN/query", "GET https://api.example.com/v1/export?token=abc123XYZ&format=csv"),
    ("URL_TOKEN/query", "GET /cb?X-Amz-Signature=9f86d0818a2feaa0c55ad015"),
    ("JWT/compact", "bad token " + PII[15]),
    ("AWS_ACCESS_KEY/key_id", "InvalidAccessKeyId: AKIAIOSFODNN7EXAMPLE does not exist"),
    ("API_TOKEN/vendor", "push denied for ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
    ("API_TOKEN/vendor", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("BEARER_TOKEN/bearer", "Authorization: Bearer abcDEF1234567890xyz rejected"),
    ("BEARER_TOKEN/bearer", "\u0130\u0130 BEARER ABCDEF1234567890XYZ9"),
    ("BEARER_TOKEN/basic", "proxy auth: Basic dXNlcjpwYXNzd29yZA== refused"),
    ("SECRET/assignment", "token=8f3a9c0d1e2b4a5f6a7b8c9d expired"),
    ("SECRET/assignment", "X-API-KEY: 9f86d081884c7d659a2feaa0c55ad015"),
    ("SECRET/assignment", "\u212a\u017f PassPhrase is Tr0ub4dor&3"),
    ("EMAIL/address", "delivery failed for maria.garcia@example.com"),
    ("IBAN/iban", "SEPA payout to DE89 3704 0044 0532 0130 00 rejected"),
    ("IBAN/iban", "iban NL91ABNA0417164300 closed"),
    ("CREDIT_CARD/pan", "payment declined for card 4111 1111 1111 1111"),
    ("CREDIT_CARD/pan", "amex 3782 822463 10005 refused"),
    ("CREDIT_CARD/pan", "pan=4111111111111111"),
    ("SSN/formatted", "kyc failed for ssn 536-22-1234"),
    ("SSN/formatted", "identity 536 22 1234 mismatch"),
    ("SSN/context", "SSN: 219099999 on file"),
    ("SSN/context", "Social Security No: 219099999"),
    ("PHONE/e164", "otp sent to +14155550134"),
    ("PHONE/nanp", "callback (415) 555-0134 failed"),
    ("PHONE/nanp", "call center 1-800-555-0199 closed"),
    ("PHONE/context", "phone: 030 901820"),
    ("PHONE/context", "TEL (0)30-90-18-20"),
    ("MAC_ADDRESS/mac", "device 00:1A:2B:3C:4D:5E not registered"),
    ("MAC_ADDRESS/mac", "lease for 00-1a-2b-3c-4d-5e expired"),
    ("MAC_ADDRESS/mac", "port security 001a.2b3c.4d5e violation"),
    ("IPV6/address", "from 2001:db8::8a2e:370:7334 denied"),
    ("IPV6/address", "client ::ffff:10.49.63.194 blocked"),
    ("IPV6/address", "dial [2001:db8::1]:8443 refused"),
    ("IPV4/address", "upstream refused connection from 10.12.0.7:8443"),
    ("PERSON_NAME/context", "retry for user Maria Garcia failed"),
    ("PERSON_NAME/context", "CARDHOLDER: 'Jean-Luc van der Berg'"),
    ("PERSON_NAME/context", "customer\u00c9mile Zola"),
    ("PERSON_NAME/honorific", "escalated to Mr. John Smith"),
    ("PERSON_NAME/honorific", "Dr \u0160tefan Nov\u00e1k"),
    ("STREET_ADDRESS/us", "ship to 1600 Pennsylvania Avenue NW, Washington, DC 20500"),
    ("STREET_ADDRESS/us", "deliver to 221B Baker Street"),
    ("STREET_ADDRESS/eu_compound", "Lieferung an Hauptstra\u00dfe 5, 10115 Berlin"),
    ("STREET_ADDRESS/eu_compound", "adres Kerkstraat 12, 1017 GC Amsterdam"),
    ("STREET_ADDRESS/eu_type_first", "env\u00edo a Calle Mayor 10, 28013 Madrid"),
    ("STREET_ADDRESS/eu_type_first", "Pra\u00e7a do Com\u00e9rcio 7"),
    ("STREET_ADDRESS/fr_number_first", "livraison 12 rue de la Paix, 75002 Paris"),
    ("STREET_ADDRESS/fr_number_first", "au 3bis, Avenue Foch"),
]


def test_variant_table_covers_every_rule_variant() -> None:
    assert {key for key, _ in VARIANT_POSITIVES} == set(RULES_BY_KEY)


@pytest.mark.parametrize(
    ("key", "text"), [pytest.param(key, text, id=key) for key, text in VARIANT_POSITIVES]
)
def test_known_positive_of_each_variant_is_still_found(key: str, text: str) -> None:
    rule = RULES_BY_KEY[key]
    assert finds_valid(rule, text), "the example must be a positive of this variant itself"
    assert holds(current_prefilters()[key], text)
    assert rule.id in _rules_found(text)
    assert _rules_found(text) == _rules_found_reference(text)
    assert (0, rule.id) in second_scan([text])


# Every alternative of every word list the prefilters weaken (context words, vendor
# prefixes, street types), each in a text its rule matches: hypothesis picks among
# alternatives at random, this goes through all of them.
_BODY = "Zx9Wv8Ut7Q2mK4pLr5Tb6Nc3Hd1Jf0Gs8Ky7Ae"
_WORD_LISTS: dict[str, tuple[str, list[str]]] = {
    "URL_TOKEN/query": ("GET /x?{}=Zx9Wv8Ut7&y=1", [
        "token", "secret", "passw", "apikey", "api_key", "api-key", "signature", "credential",
        "session", "private_key", "access_key", "key", "sig", "code", "otp", "jwt", "auth", "sid",
        "pwd", "pass", "x_TOKEN_y",
    ]),
    "API_TOKEN/vendor": ("{}" + _BODY, [
        "sk-", "sk-proj-", "sk-svcacct-", "sk-admin-", "sk-ant-", "sk-ant-api03-",
        "sk-ant-admin01-", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xoxa-", "xoxb-",
        "xoxp-", "xoxo-", "xoxs-", "xoxr-", "glpat-", "AIza", "rk_live_", "sk_test_", "pk_live_",
        "hf_", "npm_",
    ]),
    "SECRET/assignment": ("{}: Zx9Wv8Ut7Q2mK4pL", [
        "api_key", "api-key", "apikey", "access_key", "accesskey", "secret_key", "private-key",
        "signing_key", "auth_key", "encryption_key", "master_key", "client_secret", "clientsecret",
        "secret", "token", "password", "passwd", "pwd", "passphrase", "credential", "credentials",
        "db.password", "aws_secret_access_key", "PassWord", "TOKEN",
    ]),
    "SSN/context": ("{} 219099999", [
        "ssn", "SSN:", "ssn #", "ssn no", "SSN number:", "social security",
        "Social Security Number", "social\tsecurity no =", "social security no #",
    ]),
    "PHONE/context": ("{} 030 901820", [
        "phone", "tel", "telephone", "mobile", "cell", "cellphone", "fax", "sms", "whatsapp",
        "call", "called", "dial", "dialed", "PHONE:", "TEL#", "contact number", "phone number",
        "phone no.", "mobile nr:", "fax #", "tel no:",
    ]),
    "PERSON_NAME/context": ("{} Maria Garcia", [
        "user", "customer", "client", "member", "accountholder", "cardholder", "patient",
        "employee", "contact", "subscriber", "recipient", "sender", "owner", "guest", "passenger",
        "applicant", "attn", "dear", "full_name", "display-name", "contactname", "customer_name",
        "user-name", "first_name", "last_name", "holder_name", "USER:", "Customer=", "owner:",
        "account holder", "card holder", "requested by", "submitted by", "created by",
        "initiated by", "assigned to", "approved by", "display name",
    ]),
    "PERSON_NAME/honorific": ("to {} John Smith", [
        "Mr", "Mr.", "Mrs", "Mrs.", "Ms", "Ms.", "Miss", "Mx", "Dr", "Dr.", "Prof", "Prof.",
    ]),
    "STREET_ADDRESS/us": ("ship to 742 Evergreen {}", [
        "Street", "St", "Avenue", "Ave", "Road", "Rd", "Boulevard", "Blvd", "Lane", "Ln", "Drive",
        "Dr", "Court", "Ct", "Way", "Place", "Pl", "Terrace", "Ter", "Parkway", "Pkwy", "Highway",
        "Hwy", "Circle", "Cir", "Square", "Sq", "Trail", "Trl", "Alley", "Loop", "Plaza", "Row",
    ]),
    "STREET_ADDRESS/eu_compound": ("an {} 5", [
        "Hauptstraße", "Hauptstrasse", "Hauptstr.", "Ahornweg", "Lindenallee", "Marktplatz",
        "Mühlgasse", "Ostring", "Steindamm", "Elbufer", "Kölnchaussee", "Waldpfad", "Kerkstraat",
        "Dorpslaan", "Keizersgracht", "Marktplein", "Hoogkade", "Zeedijk", "Nørrevej", "Storgade",
        "Storgatan", "Kungsvägen", "Karljohansveien", "Storgata", "Berliner-Straße",
        "Berliner Straße", "Berliner Strasse", "Unter Allee", "Am Platz", "Alter Weg", "Enge Gasse",
        "Innerer Ring", "Hoher Damm",
    ]),
    "STREET_ADDRESS/eu_type_first": ("{} Mayor 10", [
        "Calle", "Avenida", "Avda.", "Paseo", "Plaza", "Carrer", "Via", "Viale", "Piazza", "Corso",
        "Largo", "Rua", "Travessa", "Praça", "Rue", "Avenue", "Boulevard", "Place", "Chemin",
        "Quai", "Ulica", "ul.",
    ]),
    "STREET_ADDRESS/fr_number_first": ("12 {} de la Paix", [
        "rue", "avenue", "boulevard", "bd", "chemin", "place", "impasse", "allée", "quai", "cours",
        "Rue", "Avenue", "Boulevard", "Chemin", "Place", "Impasse", "Allée", "Quai", "Cours",
    ]),
}  # fmt: skip

WORD_LIST_CASES = [
    (key, template.format(word)) for key, (template, words) in _WORD_LISTS.items() for word in words
]


@pytest.mark.parametrize(
    ("key", "text"), [pytest.param(k, t, id=f"{k}:{t}") for k, t in WORD_LIST_CASES]
)
def test_every_alternative_of_a_word_list_gets_through(key: str, text: str) -> None:
    rule = RULES_BY_KEY[key]
    assert rule.python_regex.search(text) is not None, "the case must hold a match"
    assert holds(current_prefilters()[key], text)
    assert _rules_found(text) == _rules_found_reference(text)


def test_ordinary_telemetry_gets_through_no_prefilter() -> None:
    # The speed-up: strings like these run no rule's pattern at all.
    for text in (
        "req_a5e60d98f9cd7ded",
        "enterprise",
        "upstream timeout",
        "/v1/chat/completions",
        "model titan-large-2024-06-01 unavailable",
        "callback number [REDACTED:PHONE] unreachable",
    ):
        assert [p.key for p in PREFILTERS if holds(p, text)] == [], text


# --- the fast scan equals the plain one on random texts --------------------------------

# Case-mangled context words and vendor prefixes: texts that get through the prefilters
# often, so the full pattern and validator decide.
_WORDS = [
    "token", "secret", "password", "pwd", "api_key", "x-api-key", "bearer ", "basic ",
    "ssn ", "social security no ", "phone ", "tel:", "call ", "user ", "customer: ",
    "cardholder ", "requested by ", "Mr. ", "Dr ", "Street", "Ave", "straße", "Via ",
    "rue ", "bis", "?token=", "&sig=", ";code=", "://", "@", "sk-", "ghp_", "AIza",
    "xoxb-", "k_live_", "AKIA", "eyJ", ".eyJ", "::", "ffff:", "%eth0", "]:443",
]  # fmt: skip
_CASE_TRAPS = ["\u0130", "\u212a", "\u017f", "\u1e9e", "\u03a3", "\u00c9", "\u0160"]

words = st.sampled_from(_WORDS).flatmap(
    lambda word: st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda upper: "".join(c.upper() if u else c for c, u in zip(word, upper, strict=True))
    )
)
fragments = st.one_of(
    st.sampled_from(
        PII
        + DECOYS
        + SEPARATORS
        + ENGINE_TRAPS
        + _CASE_TRAPS
        + [marker(rule_id) for rule_id in RULE_IDS]
        + [text for _, text in VARIANT_POSITIVES]
    ),
    words,
    st.text(alphabet="0123456789", min_size=1, max_size=20),
    st.text(alphabet="0123456789 .-:+()[]/@abcdefABCDEF", max_size=24),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ _-'\t", max_size=16),
    st.text(max_size=12),
)
texts = st.lists(fragments, max_size=8).map("".join)


@PROPERTY_SETTINGS
@given(texts)
def test_fast_scan_equals_plain_scan_per_text(text: str) -> None:
    assert _rules_found(text) == _rules_found_reference(text)


@PROPERTY_SETTINGS
@given(st.lists(st.one_of(st.none(), st.just(""), texts), max_size=12))
def test_second_scan_equals_plain_scan(values: list[str | None]) -> None:
    # Repeats included: a verdict reused within a call is reported at every index.
    doubled = values + values[::-1]
    assert second_scan(doubled) == _second_scan_reference(doubled)


def test_second_scan_reports_repeated_texts_at_every_index() -> None:
    email = "mail maria.garcia@example.com"
    values = ["x", email, None, "", email, "SSN: 219099999 " + email]
    expected = [(1, "EMAIL"), (4, "EMAIL"), (5, "EMAIL"), (5, "SSN")]
    assert second_scan(values) == expected == _second_scan_reference(values)
    assert second_scan(iter(values)) == expected
