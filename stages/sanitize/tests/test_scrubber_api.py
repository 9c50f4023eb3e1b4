"""The scrubber's public API: shapes, nulls, counts, digest, markers, engine edge cases."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re

import polars as pl
import pytest
import ryuzen_sanitize
from ryuzen_sanitize import scrubber
from ryuzen_sanitize.scrubber import (
    RULE_IDS,
    RULES,
    RULESET_VERSION,
    SCRUBBER_VERSION,
    Finding,
    Rule,
    ScrubResult,
    detect,
    engine,
    find_spans,
    marker,
    rules,
    ruleset_digest,
    scrub,
    second_scan,
)


def test_versions() -> None:
    assert re.fullmatch(r"[0-9]{4}\.[0-9]{1,2}\.[0-9]+", RULESET_VERSION)
    assert ryuzen_sanitize.__version__ == SCRUBBER_VERSION


def test_digest_is_sha256_of_canonical_json() -> None:
    canonical = rules.ruleset_canonical_json()
    assert ruleset_digest() == hashlib.sha256(canonical.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", ruleset_digest())
    assert ruleset_digest() == ruleset_digest()
    document = json.loads(canonical)
    assert document["ruleset_version"] == RULESET_VERSION
    assert [(r["id"], r["pattern"], r["validator"]) for r in document["rules"]] == [
        (rule.id, rule.pattern, rule.validator) for rule in RULES
    ]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda r: dataclasses.replace(r, pattern=r.pattern + "x"), id="pattern"),
        pytest.param(lambda r: dataclasses.replace(r, validator=None), id="validator"),
        pytest.param(lambda r: dataclasses.replace(r, flags=""), id="flags"),
        pytest.param(lambda r: dataclasses.replace(r, id=r.id + "_X"), id="rule-id"),
    ],
)
def test_digest_changes_with_any_rule(monkeypatch: pytest.MonkeyPatch, change: object) -> None:
    before = ruleset_digest()
    changed = list(RULES)
    changed[10] = change(changed[10])  # type: ignore[operator]
    monkeypatch.setattr(rules, "RULES", tuple(changed))
    assert ruleset_digest() != before


def test_digest_changes_with_version(monkeypatch: pytest.MonkeyPatch) -> None:
    before = ruleset_digest()
    monkeypatch.setattr(rules, "RULESET_VERSION", "1999.1.1")
    assert ruleset_digest() != before


def test_rule_table_is_well_formed() -> None:
    keys = [rule.key for rule in RULES]
    assert len(keys) == len(set(keys))
    assert tuple(dict.fromkeys(rule.id for rule in RULES)) == RULE_IDS
    for rule in RULES:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", rule.id)
        # Compiles in polars' Rust engine (no lookaround, no backreferences) ...
        pl.Series(["x"]).str.contains(rule.rust_pattern)
        # ... never matches the empty string (a zero-width match would loop) ...
        assert rule.python_regex.search("") is None
        # ... and avoids the classes whose Unicode tables differ between the engines.
        assert not re.search(r"\\[wdsWDS]", rule.pattern), rule.key
        assert "(?<" not in rule.pattern.replace("(?P<", ""), rule.key
    with pytest.raises(ValueError, match="unknown validator"):
        Rule("X", "y", "x", validator="nope")


MARKER_CONTEXTS = [
    "{m}",
    "token={m}",
    "api_key: {m}",
    "Authorization: Bearer {m}",
    "Basic {m}",
    "customer: {m}",
    "for user {m} {m}",
    "{m}@example.com",
    "https://{m}@host/x?token={m}&sig={m}",
    "+1 {m} {m}",
    "from {m}:8443",
    "[{m}]:{m}",
    "{m}:{m}:{m}:{m}",
    "{m}-{m}-{m}",
    "1600 {m} Avenue",
    "phone: {m}",
    "SSN {m}",
]


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_markers_never_match_any_rule(rule_id: str) -> None:
    texts = [template.format(m=marker(rule_id)) for template in MARKER_CONTEXTS]
    texts.append("".join(marker(other) for other in RULE_IDS))
    texts.append(" ".join(marker(other) for other in RULE_IDS))
    assert second_scan(texts) == []
    result = scrub(pl.Series(texts))
    assert result.redacted.to_list() == texts
    assert result.counts == {}


def test_result_shape_nulls_and_empty_strings() -> None:
    texts = pl.Series("error_message", [None, "", "mail maria@example.com", None, "ok"])
    result = scrub(texts)
    assert isinstance(result, ScrubResult)
    assert result.redacted.dtype == pl.String
    assert result.rules_hit.dtype == pl.List(pl.String)
    assert result.redacted.name == "error_message"
    assert result.redacted.to_list() == [None, "", "mail [REDACTED:EMAIL]", None, "ok"]
    assert result.rules_hit.to_list() == [[], [], ["EMAIL"], [], []]
    assert result.counts == {"EMAIL": 1}
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.counts = {}  # type: ignore[misc]


def test_empty_and_all_null_series() -> None:
    empty = scrub(pl.Series([], dtype=pl.String))
    assert empty.redacted.len() == 0 and empty.rules_hit.len() == 0 and empty.counts == {}
    nulls = scrub(pl.Series([None, None]))  # dtype Null
    assert nulls.redacted.to_list() == [None, None]
    assert nulls.rules_hit.to_list() == [[], []]


def test_non_string_series_is_refused() -> None:
    with pytest.raises(TypeError, match=r"pl\.String"):
        scrub(pl.Series([1, 2]))


def test_counts_and_sorted_unique_rules_hit() -> None:
    texts = pl.Series(
        [
            "a@example.com, b@example.org from 10.0.0.1 and 10.0.0.2 and a@example.com",
            "call +44 20 7946 0958",
        ]
    )
    result = scrub(texts)
    assert result.rules_hit.to_list() == [["EMAIL", "IPV4"], ["PHONE"]]
    assert result.counts == {"EMAIL": 3, "IPV4": 2, "PHONE": 1}
    assert detect(texts).to_list() == result.rules_hit.to_list()
    # findings attribute every redaction to its row, and sum to the counts
    assert sorted(result.findings.iter_rows()) == [(0, "EMAIL", 3), (0, "IPV4", 2), (1, "PHONE", 1)]


def test_detect_does_not_change_anything_and_matches_scrub() -> None:
    texts = pl.Series(["retry for user Maria Garcia failed", None, "build 10.0.19045.3803"])
    assert detect(texts).to_list() == [["PERSON_NAME"], [], []]
    assert texts.to_list() == ["retry for user Maria Garcia failed", None, "build 10.0.19045.3803"]


def test_dollar_signs_in_text_are_not_replacement_syntax() -> None:
    text = "customer: Omar Khan paid $100 ${ctx} $0 $1 token=$ecret_Value_123456"
    assert scrub(pl.Series([text])).redacted[0] == (
        "customer: [REDACTED:PERSON_NAME] paid $100 ${ctx} $0 $1 token=[REDACTED:SECRET]"
    )


def test_verdicts_do_not_leak_between_rows() -> None:
    # The same dotted quad is a version in one row and an address in another; a valid
    # address must not be redacted inside a longer dotted number either.
    texts = pl.Series(["version 1.0.2.45", "peer 1.0.2.45", "oid 110.0.0.1.5", "from 10.0.0.1"])
    assert scrub(texts).redacted.to_list() == [
        "version 1.0.2.45",
        "peer [REDACTED:IPV4]",
        "oid 110.0.0.1.5",
        "from [REDACTED:IPV4]",
    ]


def test_noncharacters_in_text_survive_and_do_not_confuse_the_engine() -> None:
    text = "\ufdd0\ufdd1 from 10.12.0.7 \ufdd0 version 1.0.2.45"
    result = scrub(pl.Series([text]))
    assert result.redacted[0] == "\ufdd0\ufdd1 from [REDACTED:IPV4] \ufdd0 version 1.0.2.45"


def test_all_noncharacters_present_fails_closed() -> None:
    text = "".join(chr(c) for c in range(0xFDD0, 0xFDF0)) + " from 10.12.0.7"
    result = scrub(pl.Series([text, "from 10.0.0.9"]))
    assert result.redacted.to_list() == ["[REDACTED:IPV4]", "from [REDACTED:IPV4]"]
    assert second_scan(result.redacted.to_list()) == []


def test_rounds_until_nothing_fires(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rule B can only match after rule A (which runs later) has redacted: a second
    # round is needed, and the result is then a fixed point.
    contrived = (Rule("B", "t", r"x\["), Rule("A", "t", r"cd"))
    monkeypatch.setattr(engine, "RULES", contrived)
    monkeypatch.setattr(engine, "RULE_IDS", ("B", "A"))
    result = engine.scrub(pl.Series(["xcd", "zz"]))
    assert result.redacted.to_list() == ["[REDACTED:B]REDACTED:A]", "zz"]
    assert result.rules_hit.to_list() == [["A", "B"], []]
    assert result.counts == {"A": 1, "B": 1}


def test_non_converging_value_is_replaced_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    contrived = (Rule("LOOP", "t", r"REDACTED:LOOP|zz"),)
    monkeypatch.setattr(engine, "RULES", contrived)
    monkeypatch.setattr(engine, "RULE_IDS", ("LOOP",))
    result = engine.scrub(pl.Series(["a zz b", "clean"]))
    assert result.redacted.to_list() == ["[REDACTED:LOOP]", "clean"]
    assert result.rules_hit.to_list() == [["LOOP"], []]


def test_find_spans_offsets_never_values() -> None:
    text = "mail maria@example.com from 10.12.0.7:8443 for user Maria Garcia"
    spans = find_spans(text)
    assert [(f.rule, text[f.start : f.end]) for f in spans] == [
        ("EMAIL", "maria@example.com"),
        ("IPV4", "10.12.0.7:8443"),
        ("PERSON_NAME", "Maria Garcia"),
    ]
    assert all(isinstance(f, Finding) for f in spans)
    assert Finding("EMAIL", 5, 22) == spans[0]
    assert find_spans("") == []


def test_second_scan_reports_index_and_rule() -> None:
    texts = [None, "", "clean", "mail maria@example.com from 10.0.0.1", "ssn 536-22-1234"]
    assert second_scan(texts) == [(3, "EMAIL"), (3, "IPV4"), (4, "SSN")]
    assert second_scan(iter(texts)) == second_scan(texts)


def test_public_names() -> None:
    assert set(scrubber.__all__) >= {
        "RULESET_VERSION",
        "SCRUBBER_VERSION",
        "RULES",
        "ruleset_digest",
        "scrub",
        "detect",
        "second_scan",
        "find_spans",
        "Finding",
        "ScrubResult",
    }
